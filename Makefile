# polyshop's front door: every command a user or CI runs starts here.
# Per-language recipes live in mk/*.mk; each registers its targets in the lists below,
# so the aggregates (lint, test-unit, build...) pick up a language by including its file.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

ROOT := $(abspath .)
VENV := $(ROOT)/.venv
PY := $(VENV)/bin/python
BIN := $(ROOT)/bin
export PATH := $(BIN):$(HOME)/go/bin:$(PATH)

DEPS_TARGETS :=
LINT_TARGETS :=
FMT_TARGETS :=
UNIT_TARGETS :=
E2E_TARGETS :=
BUILD_TARGETS :=
BENCH_TARGETS :=

include $(sort $(wildcard mk/*.mk))

.PHONY: help deps lint fmt test test-unit test-e2e build bench run run-redis wipe-data doctor clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sort | \
	  awk 'BEGIN {FS = ":.*## "}; {printf "  make %-16s %s\n", $$1, $$2}'

deps: $(DEPS_TARGETS) ## install what builds and tests need (idempotent; apt when root)

lint: $(LINT_TARGETS) ## every linter and format check, all languages

fmt: $(FMT_TARGETS) ## format all code in place

test-unit: $(UNIT_TARGETS) ## fast loop: unit tests of every language (< 5 min)

test-e2e: $(E2E_TARGETS) ## black-box tests against the real processes and a real redis-server

build: $(BUILD_TARGETS) ## release builds of the services

bench: $(BENCH_TARGETS) ## benchmarks; prints ratios against bare-framework baselines

test: ## the full gate (what CI runs): deps, lint, unit, e2e, each stage timed
	@MAKE="$(MAKE)" scripts/stages deps lint test-unit test-e2e

# make run needs nothing but the toolchains: it makes the virtualenv itself (deps-python,
# never a system package) and builds the services.
run: deps-python build ## start the whole stack natively (in-memory stores unless REDIS_URL is set; SHARDS=3: three inventory shards on Redis)
	@SHARDS=$(SHARDS) scripts/run-stack

run-redis: deps-python build ## same stack on a local redis-server (AOF, data kept in .run/redis)
	@SHARDS=$(SHARDS) scripts/run-stack --redis

wipe-data: ## forget what make run-redis stored (.run/redis: stock, orders, idempotency keys)
	rm -rf .run/redis

doctor: ## check toolchain versions and say what is missing
	@scripts/doctor

clean: ## remove build outputs and the virtualenv
	rm -rf target bin .venv .cache
