# Python gateway recipes: the one repo-root virtualenv (.venv), lint/format/unit targets.
# deps-python is idempotent and instant when nothing changed (stamp keyed on the hash of
# pyproject.toml + requirements.lock).
DEPS_TARGETS += deps-python
LINT_TARGETS += lint-python
FMT_TARGETS += fmt-python
UNIT_TARGETS += test-python

GW := gateway-python
PY_STAMP := $(VENV)/.polyshop-deps
PY_HASH = $(shell cat $(GW)/pyproject.toml $(GW)/requirements.lock | sha256sum | cut -c1-16)

.PHONY: deps-python lint-python fmt-python test-python
deps-python: ## virtualenv .venv with the gateway (editable) and its pinned test tools
	@if [ -x "$(PY)" ] && [ "$$(cat $(PY_STAMP) 2>/dev/null)" = "$(PY_HASH)" ]; then \
	  echo "deps-python: .venv is up to date"; \
	else \
	  echo "deps-python: installing into .venv (pinned by $(GW)/requirements.lock)"; \
	  [ -x "$(PY)" ] || python3 -m venv $(VENV); \
	  $(PY) -m pip install --quiet --disable-pip-version-check \
	    -c $(GW)/requirements.lock -e '$(GW)[dev]'; \
	  echo "$(PY_HASH)" > $(PY_STAMP); \
	fi

lint-python: ## ruff check, ruff format --check, mypy --strict on the gateway
	@cd $(GW) && $(VENV)/bin/ruff check src tests scripts ../tests/e2e ../tests/faults ../tests/compose ../tests/schemathesis ../tests/browser ../tests/harness.py ../bench ../tests/references
	@cd $(GW) && $(VENV)/bin/ruff format --check src tests scripts ../tests/e2e ../tests/faults ../tests/compose ../tests/schemathesis ../tests/browser ../tests/harness.py ../bench ../tests/references
	@cd $(GW) && $(VENV)/bin/mypy src
	@echo "lint-python: clean"

fmt-python: ## ruff format + safe fixes
	@cd $(GW) && $(VENV)/bin/ruff check --fix --quiet src tests scripts ../tests/e2e ../tests/faults ../tests/compose ../tests/schemathesis ../tests/browser ../tests/harness.py ../bench ../tests/references || true
	@cd $(GW) && $(VENV)/bin/ruff format src tests scripts ../tests/e2e ../tests/faults ../tests/compose ../tests/schemathesis ../tests/browser ../tests/harness.py ../bench ../tests/references

test-python: ## gateway unit tests (fake upstreams over real HTTP, real redis-server)
	@cd $(GW) && $(PY) -m pytest -q
