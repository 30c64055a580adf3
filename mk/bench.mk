# make bench: the bare-framework baselines, the Python references (bench/references) and the
# wrk harness (bench/run.py), then SVG charts (bench/charts.py) from a bench-only virtualenv.
# make test-references proves the references give the services' answers (tests/references).
BENCH_TARGETS += bench-run bench-scale
UNIT_TARGETS += test-references

# Each wrk run, interleaved rounds, each open-loop rate (seconds): about 6 minutes in all.
BENCH_SECONDS ?= 6
BENCH_REPEATS ?= 3
BENCH_OPEN_SECONDS ?= 5
BENCH_ARGS ?=
# The cost-of-growth pass (bench/scale.py): catalog sizes, memory and Redis, about 3 minutes.
BENCH_SCALE_SIZES ?= 1000,100000,1000000
BENCH_SCALE_ARGS ?=
BENCH_VENV := $(ROOT)/.cache/bench-venv
BENCH_STAMP := $(BENCH_VENV)/.polyshop-bench
BENCH_HASH = $(shell sha256sum bench/requirements.txt | cut -c1-16)
VEGETA_VERSION := v12.13.0
VEGETA_DIR := $(HOME)/.cache/polyshop/tools/vegeta-$(VEGETA_VERSION)
export POLYSHOP_VEGETA := $(VEGETA_DIR)/vegeta

.PHONY: bench-baselines bench-venv bench-vegeta bench-run bench-scale test-references
bench-baselines:
	@echo "bench: building baselines (axum hello, net/http hello)"
	@cd bench/baselines/axum-hello && CARGO_TARGET_DIR=$(ROOT)/target/bench-baselines cargo build --release --quiet
	@cd bench/baselines/go-hello && go build -o $(BIN)/go-hello .

# matplotlib for the charts, on first use only (never into .venv: make deps does not need it).
bench-venv:
	@if [ "$$(cat $(BENCH_STAMP) 2>/dev/null)" != "$(BENCH_HASH)" ]; then \
	  echo "bench: installing matplotlib into $(BENCH_VENV) (first use)"; \
	  [ -x $(BENCH_VENV)/bin/python ] || python3 -m venv $(BENCH_VENV); \
	  $(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt; \
	  echo "$(BENCH_HASH)" > $(BENCH_STAMP); \
	fi

# vegeta for the open-loop pass, pinned, built once into ~/.cache/polyshop/tools. A failed
# install is reported and the bench runs without the open-loop figures.
bench-vegeta:
	@if [ ! -x $(POLYSHOP_VEGETA) ]; then \
	  echo "bench: go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION) (first use)"; \
	  mkdir -p $(VEGETA_DIR); \
	  (cd /tmp && GOBIN=$(VEGETA_DIR) go install github.com/tsenart/vegeta/v12@$(VEGETA_VERSION)) || \
	    echo "bench: vegeta install failed; the open-loop pass will be skipped" >&2; \
	fi

bench-run: build bench-baselines bench-venv bench-vegeta ## wrk: services vs Python references vs baselines; seed claims, targets, charts
	@$(PY) bench/run.py --seconds $(BENCH_SECONDS) --repeats $(BENCH_REPEATS) \
	  --open-seconds $(BENCH_OPEN_SECONDS) $(BENCH_ARGS)
	@$(BENCH_VENV)/bin/python bench/charts.py

# Listed after bench-run in BENCH_TARGETS, so make bench runs the passes one after the other.
bench-scale: build bench-venv ## cost of growth: catalogs of 10^3/10^5/10^6 products, memory and Redis (bench/scale.py)
	@$(PY) bench/scale.py --sizes $(BENCH_SCALE_SIZES) $(BENCH_SCALE_ARGS)
	@$(BENCH_VENV)/bin/python bench/charts.py

test-references: ## the Python references of make bench over real HTTP (pricing vectors, holds, seed answers)
	@test -x $(PY) || { echo "test-references: .venv missing, run make deps" >&2; exit 2; }
	@cd tests/references && $(PY) -m pytest -q $(REFERENCES_ARGS)
