# Fault suite (tests/faults): the real stack in Redis mode behind a real Toxiproxy, under
# retrying client load, with an invariant check after every fault. Toxiproxy is built with
# go install at a pinned version into a tools cache outside git (CI builds it afresh).
DEPS_TARGETS += deps-faults
E2E_TARGETS += test-faults

TOXIPROXY_VERSION := v2.5.0
POLYSHOP_TOOLS ?= $(HOME)/.cache/polyshop/tools
TOXIPROXY := $(POLYSHOP_TOOLS)/toxiproxy-$(TOXIPROXY_VERSION)/toxiproxy-server
export POLYSHOP_TOOLS TOXIPROXY_VERSION

.PHONY: deps-faults test-faults faults
deps-faults: ## Toxiproxy (pinned) into the tools cache, unless it is there
	@if [ -x $(TOXIPROXY) ]; then echo "deps-faults: toxiproxy $(TOXIPROXY_VERSION) is cached"; else \
	  echo "deps-faults: building toxiproxy $(TOXIPROXY_VERSION) (go install)"; \
	  tmp=$$(mktemp -d) && GOBIN=$$tmp go install github.com/Shopify/toxiproxy/v2/cmd/server@$(TOXIPROXY_VERSION) && \
	  mkdir -p $(dir $(TOXIPROXY)) && mv $$tmp/server $(TOXIPROXY) && rmdir $$tmp; fi

test-faults: build deps-faults ## the short fault suite (each scenario <= 30 s), part of make test
	@test -x $(PY) || { echo "test-faults: .venv missing, run make deps" >&2; exit 2; }
	@cd tests/faults && $(PY) -m pytest -q $(FAULTS_ARGS)

faults: build deps-faults ## the long fault suite (longer load, more clients)
	@cd tests/faults && FAULTS_LONG=1 $(PY) -m pytest -q $(FAULTS_ARGS)
