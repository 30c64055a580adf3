# Storefront browser suite (tests/browser): Debian's chromium (make deps installs it through
# scripts/deps-system) driven by Playwright for Python by its executable path (no browser
# download), against the real native stack that tests/e2e's harness starts on free ports.
DEPS_TARGETS += deps-browser
E2E_TARGETS += test-browser

BROWSER_REQS := tests/browser/requirements.txt
BROWSER_STAMP := $(VENV)/.polyshop-browser
BROWSER_HASH = $(shell cat $(BROWSER_REQS) $(GW)/requirements.lock | sha256sum | cut -c1-16)

.PHONY: deps-browser test-browser docs-screenshots
deps-browser: deps-python ## Playwright for Python into .venv (pinned by tests/browser/requirements.txt; no browser download)
	@if [ "$$(cat $(BROWSER_STAMP) 2>/dev/null)" = "$(BROWSER_HASH)" ]; then \
	  echo "deps-browser: playwright is up to date"; \
	else \
	  echo "deps-browser: installing playwright (pinned by $(BROWSER_REQS))"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check \
	    -c $(GW)/requirements.lock -r $(BROWSER_REQS); \
	  echo "$(BROWSER_HASH)" > $(BROWSER_STAMP); \
	fi

test-browser: build deps-browser ## the storefront in chromium against the real stack; screenshots in tests/browser/artifacts (ARTIFACTS_DIR)
	@test -x $(PY) || { echo "test-browser: .venv missing, run make deps" >&2; exit 2; }
	@cd tests/browser && $(PY) -m pytest -q $(BROWSER_ARGS)

docs-screenshots: build deps-browser ## rewrite docs/storefront.png and docs/status.png from a browser run
	@cd tests/browser && BROWSER_DOCS_SHOTS=1 $(PY) -m pytest -q -k "browse or status_page"
