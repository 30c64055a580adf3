# Deploy layer (deploy/, docker-compose.yml, load-tests/, tests/dashboards): validator
# install, offline lint of every manifest, the dashboard proof, Locust and `make up`.
DEPS_TARGETS += deps-deploy
LINT_TARGETS += lint-deploy
FMT_TARGETS += fmt-deploy
UNIT_TARGETS += test-healthcheck test-k8s-policy
E2E_TARGETS += test-dashboards

DEPLOY_TOOLS := deploy/requirements-tools.txt
DEPLOY_STAMP := $(VENV)/.polyshop-deploy-tools
DEPLOY_HASH = $(shell sha256sum $(DEPLOY_TOOLS) | cut -c1-16)
# kustomize v5.8.3 needs Go 1.27; v5.8.2 builds with the Go 1.26 of this project.
KUSTOMIZE_VERSION := v5.8.2
LOCUST_VENV := $(ROOT)/.cache/locust-venv
LOCUST_STAMP := $(LOCUST_VENV)/.polyshop-locust
LOCUST_HASH = $(shell sha256sum load-tests/requirements.txt | cut -c1-16)
LOADTEST_HOST ?= http://127.0.0.1:8000
LOADTEST_USERS ?= 20
LOADTEST_SPAWN_RATE ?= 5
LOADTEST_TIME ?= 60s
RUFF_CFG := --config $(ROOT)/gateway-python/pyproject.toml
DOCKERFILES := pricing-rust/Dockerfile inventory-go/Dockerfile gateway-python/Dockerfile
DEPLOY_PY := deploy/grafana/dashboards.py tests/dashboards tests/manifests tests/k8s load-tests

# Oldest and newest Kubernetes the manifests are validated against (kubernetes-validate
# carries schemas 1.25-1.37; the preStop sleep action needs 1.30+, where it is on by default).
K8S_VERSIONS := 1.30.0 1.37.0
HEALTHCHECK_DIR := deploy/docker/healthcheck

.PHONY: deps-deploy lint-deploy fmt-deploy test-healthcheck test-k8s-policy test-dashboards loadtest up down
deps-deploy: deps-python ## check-jsonschema, kubernetes-validate, hadolint into .venv (pinned); kustomize if no kubectl
	@if [ "$$(cat $(DEPLOY_STAMP) 2>/dev/null)" = "$(DEPLOY_HASH)" ]; then \
	  echo "deps-deploy: validators are up to date"; \
	else \
	  echo "deps-deploy: installing check-jsonschema, kubernetes-validate, hadolint (pinned by $(DEPLOY_TOOLS))"; \
	  $(PY) -m pip install --quiet --disable-pip-version-check \
	    -c $(GW)/requirements.lock -r $(DEPLOY_TOOLS); \
	  echo "$(DEPLOY_HASH)" > $(DEPLOY_STAMP); \
	fi
	@if ! command -v kubectl >/dev/null && ! command -v kustomize >/dev/null; then \
	  echo "deps-deploy: installing kustomize $(KUSTOMIZE_VERSION) (no kubectl here)"; \
	  go install sigs.k8s.io/kustomize/kustomize/v5@$(KUSTOMIZE_VERSION); \
	fi

lint-deploy: ## promtool config/rules/tests, dashboards, compose schema, hadolint, kustomize + kubernetes-validate
	@command -v promtool >/dev/null || { echo "lint-deploy: promtool missing, run make deps" >&2; exit 2; }
	@test -x $(VENV)/bin/hadolint || { echo "lint-deploy: validators missing, run make deps" >&2; exit 2; }
	@promtool check config --lint=all deploy/prometheus/prometheus.yml >/dev/null
	@promtool check rules --lint=all deploy/prometheus/rules/*.yml >/dev/null
	@promtool test rules deploy/prometheus/tests/*.yml >/dev/null
	@echo "lint-deploy: promtool config, rules and $(words $(wildcard deploy/prometheus/tests/*.yml)) rule test files ok"
	@$(PY) deploy/grafana/dashboards.py check
	@$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml docker-compose.shards.yml
	@$(VENV)/bin/hadolint --no-color $(DOCKERFILES)
	@echo "lint-deploy: hadolint clean on $(DOCKERFILES)"
	@mkdir -p $(ROOT)/.cache; set -e; for overlay in dev prod; do \
	  if command -v kustomize >/dev/null; then kustomize build deploy/k8s/overlays/$$overlay; \
	  else kubectl kustomize deploy/k8s/overlays/$$overlay; fi > $(ROOT)/.cache/k8s-$$overlay.yaml; \
	  for v in $(K8S_VERSIONS); do \
	    $(VENV)/bin/kubernetes-validate -k $$v --strict --quiet $(ROOT)/.cache/k8s-$$overlay.yaml; \
	  done; \
	  echo "lint-deploy: k8s overlay $$overlay valid (kubernetes-validate --strict, $(K8S_VERSIONS))"; \
	done
	@cd $(HEALTHCHECK_DIR) && test -z "$$(gofmt -l .)" || { echo "gofmt: $(HEALTHCHECK_DIR) needs formatting" >&2; exit 1; }
	@cd $(HEALTHCHECK_DIR) && go vet ./...
	@$(VENV)/bin/ruff check $(RUFF_CFG) $(DEPLOY_PY)
	@$(VENV)/bin/ruff format $(RUFF_CFG) --check $(DEPLOY_PY)
	@echo "lint-deploy: ok"

fmt-deploy: ## ruff format the deploy Python, gofmt the healthcheck, regenerate the dashboards
	@$(VENV)/bin/ruff check $(RUFF_CFG) --fix --quiet $(DEPLOY_PY) || true
	@$(VENV)/bin/ruff format $(RUFF_CFG) $(DEPLOY_PY)
	@cd $(HEALTHCHECK_DIR) && gofmt -w .
	@$(PY) deploy/grafana/dashboards.py generate

test-healthcheck: ## the container healthcheck binary against real listeners
	@cd $(HEALTHCHECK_DIR) && go test -count=1 ./...

test-k8s-policy: ## every rendered overlay keeps its hardening; each of 19 mutations is caught
	@test -x $(PY) || { echo "test-k8s-policy: .venv missing, run make deps" >&2; exit 2; }
	@cd tests/manifests && $(PY) -m pytest -q $(K8S_POLICY_ARGS)

test-dashboards: build ## every dashboard panel + recording rule returns data from a real Prometheus scraping the stack under load
	@test -x $(PY) || { echo "test-dashboards: .venv missing, run make deps" >&2; exit 2; }
	@cd tests/dashboards && $(PY) -m pytest -q $(DASHBOARDS_ARGS)

loadtest: ## headless Locust against a running stack (LOADTEST_HOST, _USERS, _TIME); installs Locust on first use
	@if [ "$$(cat $(LOCUST_STAMP) 2>/dev/null)" != "$(LOCUST_HASH)" ]; then \
	  echo "loadtest: installing Locust into $(LOCUST_VENV) (first use)"; \
	  [ -x $(LOCUST_VENV)/bin/python ] || python3 -m venv $(LOCUST_VENV); \
	  $(LOCUST_VENV)/bin/pip install --quiet --disable-pip-version-check -r load-tests/requirements.txt; \
	  echo "$(LOCUST_HASH)" > $(LOCUST_STAMP); \
	fi
	@curl -fsS -o /dev/null $(LOADTEST_HOST)/health || { echo "loadtest: nothing answers at $(LOADTEST_HOST); start it with make run (or make up)" >&2; exit 2; }
	@$(LOCUST_VENV)/bin/locust -f load-tests/locustfile.py --headless --host $(LOADTEST_HOST) \
	  --users $(LOADTEST_USERS) --spawn-rate $(LOADTEST_SPAWN_RATE) --run-time $(LOADTEST_TIME) \
	  --stop-timeout 5 --only-summary

COMPOSE_FILES := $(if $(filter 3,$(SHARDS)),-f docker-compose.yml -f docker-compose.shards.yml)
up: ## docker compose up --build: the stack + Redis + Prometheus (:9090) + Grafana (:3000); SHARDS=3: three inventory shards; needs a Docker engine
	@if [ -n "$(SHARDS)" ] && [ "$(SHARDS)" != 1 ] && [ "$(SHARDS)" != 3 ]; then echo "up: SHARDS=1 or 3 (docker-compose.shards.yml)" >&2; exit 2; fi
	docker compose $(COMPOSE_FILES) up --build

down: ## stop and remove the compose stack
	docker compose $(COMPOSE_FILES) down

.PHONY: compose-test
compose-test: deps-python ## docker compose up --build for real (own dockerd, local base-image stand-ins), checks, teardown
	@scripts/compose-test
