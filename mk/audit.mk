# make audit: known-vulnerability scans of the pinned dependencies of every language. Not part
# of make test (it needs each advisory database over the network): a database that cannot be
# reached prints "<tool>: skipped: advisory database unreachable", never a silent pass; a real
# vulnerability makes the target fail. Tools go to the tools cache outside git, pinned.
POLYSHOP_TOOLS ?= $(HOME)/.cache/polyshop/tools
PIP_AUDIT_VERSION := 2.10.1
PIP_AUDIT_VENV := $(POLYSHOP_TOOLS)/pip-audit-$(PIP_AUDIT_VERSION)
PIP_AUDIT := $(PIP_AUDIT_VENV)/bin/pip-audit
GOVULNCHECK_VERSION := v1.9.0
GOVULNCHECK := $(POLYSHOP_TOOLS)/govulncheck-$(GOVULNCHECK_VERSION)/govulncheck
CARGO_AUDIT_VERSION := 0.22.1
CARGO_AUDIT_ROOT := $(POLYSHOP_TOOLS)/cargo-audit-$(CARGO_AUDIT_VERSION)
CARGO_AUDIT := $(CARGO_AUDIT_ROOT)/bin/cargo-audit
# Every pinned Python requirements/lock file (pip-audit checks each pin; .venv's freeze adds
# the transitive dependencies of files that pin only their top-level package).
PY_LOCKS := $(wildcard gateway-python/requirements.lock deploy/requirements-tools.txt \
  load-tests/requirements.txt tests/*/requirements.txt)
# pip-audit asks PyPI's per-release JSON (/pypi/NAME/VERSION/json) for its vulnerabilities;
# a registry mirror that serves only /pypi/NAME/json leaves every package unaudited.
PYPI_JSON_PROBE := https://pypi.org/pypi/pip/24.0/json
GOVULNDB ?= https://vuln.go.dev
RUSTSEC_DB := https://github.com/RustSec/advisory-db.git

.PHONY: deps-audit audit audit-python audit-go audit-rust
deps-audit: ## pip-audit, govulncheck, cargo-audit (pinned) into the tools cache; cargo-audit compiles for minutes
	@test -x $(PIP_AUDIT) || { echo "deps-audit: installing pip-audit $(PIP_AUDIT_VERSION)"; \
	  python3 -m venv $(PIP_AUDIT_VENV) && $(PIP_AUDIT_VENV)/bin/pip install --quiet \
	    --disable-pip-version-check pip-audit==$(PIP_AUDIT_VERSION); }
	@test -x $(GOVULNCHECK) || { echo "deps-audit: installing govulncheck $(GOVULNCHECK_VERSION)"; \
	  GOBIN=$(dir $(GOVULNCHECK)) go install golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION); }
	@test -x $(CARGO_AUDIT) || { echo "deps-audit: building cargo-audit $(CARGO_AUDIT_VERSION) (cargo install --locked)"; \
	  $(CARGO) install --locked --quiet --root $(CARGO_AUDIT_ROOT) cargo-audit --version $(CARGO_AUDIT_VERSION); }
	@echo "deps-audit: pip-audit, govulncheck, cargo-audit are installed in $(POLYSHOP_TOOLS)"

# Each part prints one line or the tool's findings; all three run, then the status is theirs.
audit: ## vulnerability scan: pip-audit (Python locks), govulncheck (Go), cargo audit (Rust); network
	@status=0; for part in audit-python audit-go audit-rust; do \
	  $(MAKE) $$part || status=1; done; exit $$status

audit-python:
	@if ! curl -fsS -m 15 -o /dev/null $(PYPI_JSON_PROBE) 2>/dev/null; then \
	  echo "pip-audit: skipped: advisory database unreachable"; exit 0; fi; \
	test -x $(PIP_AUDIT) || { python3 -m venv $(PIP_AUDIT_VENV) && $(PIP_AUDIT_VENV)/bin/pip install \
	  --quiet --disable-pip-version-check pip-audit==$(PIP_AUDIT_VERSION); }; \
	freeze=$$(mktemp --suffix=.txt); trap 'rm -f $$freeze' EXIT; \
	files="$(PY_LOCKS)"; \
	if [ -x $(PY) ]; then $(PY) -m pip freeze --exclude-editable --disable-pip-version-check > $$freeze; \
	  files="$$files $$freeze"; fi; \
	status=0; for f in $$files; do \
	  name=$${f/#$$freeze/.venv (pip freeze)}; \
	  if out=$$($(PIP_AUDIT) --vulnerability-service pypi --no-deps --disable-pip --strict \
	      --progress-spinner off -r $$f 2>&1) && ! grep -q "could not be audited" <<< "$$out"; then \
	    echo "pip-audit: $$name: no known vulnerabilities"; \
	  else echo "pip-audit: $$name: FAILED (vulnerable, or packages it could not audit):"; \
	    grep -v "^WARNING:pip_audit" <<< "$$out"; status=1; fi; \
	done; exit $$status

audit-go:
	@case "$(GOVULNDB)" in file:*) ;; *) \
	  if ! curl -fsS -m 15 -o /dev/null $(GOVULNDB)/index/db.json 2>/dev/null; then \
	    echo "govulncheck: skipped: advisory database unreachable"; exit 0; fi;; esac; \
	test -x $(GOVULNCHECK) || GOBIN=$(dir $(GOVULNCHECK)) go install \
	  golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION); \
	cd $(GO_DIR) && GOVULNDB=$(GOVULNDB) $(GOVULNCHECK) ./... && echo "govulncheck: inventory-go: ok"

audit-rust:
	@if ! timeout 20 git ls-remote --exit-code $(RUSTSEC_DB) HEAD >/dev/null 2>&1; then \
	  echo "cargo-audit: skipped: advisory database unreachable"; exit 0; fi; \
	if [ ! -x $(CARGO_AUDIT) ]; then \
	  echo "cargo-audit: skipped: not installed, make deps-audit installs it"; exit 0; fi; \
	$(CARGO_AUDIT) audit --file Cargo.lock && echo "cargo-audit: Cargo.lock: ok"
