# OpenAPI fuzzing (tests/schemathesis: Schemathesis against the three services' documents in
# services/contracts, real processes) and `make fuzz`, every fuzzer of the repo run longer.
DEPS_TARGETS += deps-schemathesis
E2E_TARGETS += test-schemathesis

SCHEMATHESIS_REQS := tests/schemathesis/requirements.txt
SCHEMATHESIS_STAMP := $(VENV)/.polyshop-schemathesis
SCHEMATHESIS_HASH = $(shell cat $(SCHEMATHESIS_REQS) $(GW)/requirements.lock | sha256sum | cut -c1-16)
# Test cases per operation: ~1 min for the three documents in make test; make fuzz raises it.
SCHEMATHESIS_MAX_EXAMPLES ?= 25
FUZZ_SCHEMATHESIS_MAX_EXAMPLES ?= 300
# make fuzz: each Go fuzz target this long, proptest cases per property, hypothesis profile.
FUZZ_TIME ?= 60s
FUZZ_PROPTEST_CASES ?= 5000
export SCHEMATHESIS_MAX_EXAMPLES

.PHONY: deps-schemathesis test-schemathesis fuzz
deps-schemathesis: deps-python ## Schemathesis into .venv (pinned by tests/schemathesis/requirements.txt)
	@if [ "$$(cat $(SCHEMATHESIS_STAMP) 2>/dev/null)" = "$(SCHEMATHESIS_HASH)" ]; then \
	  echo "deps-schemathesis: schemathesis is up to date"; \
	else \
	  echo "deps-schemathesis: installing schemathesis (pinned by $(SCHEMATHESIS_REQS))"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check \
	    -c $(GW)/requirements.lock -r $(SCHEMATHESIS_REQS); \
	  echo "$(SCHEMATHESIS_HASH)" > $(SCHEMATHESIS_STAMP); \
	fi

test-schemathesis: build deps-schemathesis ## Schemathesis on every operation of the 3 OpenAPI documents, real stack (SCHEMATHESIS_MAX_EXAMPLES)
	@cd tests/schemathesis && $(PY) -m pytest -q $(SCHEMATHESIS_ARGS)

fuzz: build deps-schemathesis ## every fuzzer, longer: Go fuzz (FUZZ_TIME each), hypothesis profile fuzz, proptest, Schemathesis
	@summary=$$(mktemp); trap 'rm -f $$summary' EXIT; status=0; \
	part() { name=$$1; shift; start=$$(date +%s); \
	  if "$$@"; then r=ok; else r=FAILED; status=1; fi; \
	  echo "fuzz: $$name: $$r in $$(( $$(date +%s) - start ))s" >> $$summary; }; \
	go_fuzz() ( cd $(GO_DIR) && for pt in $(GO_FUZZ_TARGETS); do pkg=$${pt%%:*}; t=$${pt#*:}; \
	  echo "fuzz: go $$t for $(FUZZ_TIME)"; \
	  go test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(FUZZ_TIME) $$pkg || exit 1; done ); \
	part "go fuzz ($(words $(GO_FUZZ_TARGETS)) targets x $(FUZZ_TIME))" go_fuzz; \
	part "gateway hypothesis (HYPOTHESIS_PROFILE=fuzz)" \
	  env -C $(GW) HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q; \
	part "rust proptest (PROPTEST_CASES=$(FUZZ_PROPTEST_CASES))" \
	  env PROPTEST_CASES=$(FUZZ_PROPTEST_CASES) $(CARGO) test --workspace --locked --test properties; \
	part "schemathesis ($(FUZZ_SCHEMATHESIS_MAX_EXAMPLES) examples/operation, memory + redis)" \
	  env -C tests/schemathesis SCHEMATHESIS_MAX_EXAMPLES=$(FUZZ_SCHEMATHESIS_MAX_EXAMPLES) \
	    SCHEMATHESIS_MODES="memory redis" $(PY) -m pytest -q $(SCHEMATHESIS_ARGS); \
	echo "--- fuzz summary"; cat $$summary; exit $$status
