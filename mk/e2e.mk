# End-to-end suite (tests/e2e): the real release binaries, the real gateway and a real
# redis-server on free ports, driven over HTTP in memory and Redis modes.
E2E_TARGETS += test-e2e-stack

.PHONY: test-e2e-stack
test-e2e-stack: build ## black-box tests of the whole stack (memory + Redis modes)
	@test -x $(PY) || { echo "test-e2e: .venv missing, run make deps" >&2; exit 2; }
	@cd tests/e2e && $(PY) -m pytest -q -p no:cacheprovider $(E2E_ARGS)
