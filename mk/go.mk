# Go inventory service (inventory-go/): deps, lint, fmt, tests (race + fuzz), build, bench.
DEPS_TARGETS += deps-go
LINT_TARGETS += lint-go
FMT_TARGETS += fmt-go
UNIT_TARGETS += test-go
BUILD_TARGETS += build-go
BENCH_TARGETS += bench-go

GO_DIR := $(ROOT)/inventory-go
GOBIN_DIR := $(shell go env GOPATH 2>/dev/null)/bin
STATICCHECK := $(GOBIN_DIR)/staticcheck
# 2026.2.2 is the first staticcheck release that builds with Go 1.26.
STATICCHECK_VERSION := v0.8.2
# Each fuzz target runs this many inputs in test-go (4 targets, ~5 s each). A count, not a
# duration: with -fuzztime=7s Go 1.26's coordinator can report its own deadline as a
# failure (golang/go#75804, fixed in 1.27), which failed CI once with no crasher written.
GO_FUZZ_TIME ?= 20000x
# package:target pairs; a crasher lands in that package's testdata/fuzz/<target>/.
GO_FUZZ_TARGETS := ./internal/httpapi:FuzzDecodeReserve ./internal/httpapi:FuzzDecodeBatch \
  ./internal/httpapi:FuzzDecodeRestock ./internal/wire:FuzzHeaders

.PHONY: deps-go lint-go fmt-go test-go build-go bench-go
deps-go: ## Go modules and staticcheck (installed only if missing)
	@command -v go >/dev/null || { echo "deps-go: go is not installed (need Go >= 1.26)" >&2; exit 2; }
	@cd $(GO_DIR) && go mod download
	@test -x $(STATICCHECK) || { echo "deps-go: installing staticcheck $(STATICCHECK_VERSION)"; \
	  go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); }

lint-go: ## gofmt (must list nothing), go vet, staticcheck
	@cd $(GO_DIR) && unformatted=$$(gofmt -l .) && \
	  if [ -n "$$unformatted" ]; then echo "gofmt: these files need formatting:"; echo "$$unformatted"; exit 1; fi
	@cd $(GO_DIR) && go vet ./...
	@test -x $(STATICCHECK) || { echo "lint-go: staticcheck missing, run make deps-go" >&2; exit 2; }
	@cd $(GO_DIR) && $(STATICCHECK) ./...
	@echo "lint-go: ok"

fmt-go: ## gofmt -w
	@cd $(GO_DIR) && gofmt -w .

test-go: ## go test -race, then each fuzz target for GO_FUZZ_TIME
	@cd $(GO_DIR) && go test -race -count=1 ./...
	@cd $(GO_DIR) && for pt in $(GO_FUZZ_TARGETS); do pkg=$${pt%%:*}; t=$${pt#*:}; \
	  go test -run='^$$' -fuzz="^$$t\$$" -fuzztime=$(GO_FUZZ_TIME) $$pkg || exit 1; done

build-go: ## bin/inventory and bin/inventoryctl (rebalance)
	@cd $(GO_DIR) && go build -trimpath -o $(BIN)/inventory ./cmd/inventory
	@cd $(GO_DIR) && go build -trimpath -o $(BIN)/inventoryctl ./cmd/inventoryctl

bench-go: ## Go benchmarks (GET and reserve, memory and Redis)
	@cd $(GO_DIR) && go test -run='^$$' -bench=. -benchmem ./internal/httpapi
