# Rust workspace (pricing-rust + services/crates/*): deps, lint, fmt, tests, release build, bench.
# Tests run in the dev profile (fast to compile); only build-rust pays for the release build.
DEPS_TARGETS += deps-rust
LINT_TARGETS += lint-rust
FMT_TARGETS += fmt-rust
UNIT_TARGETS += test-rust
BUILD_TARGETS += build-rust
BENCH_TARGETS += bench-rust

CARGO ?= cargo

.PHONY: deps-rust lint-rust fmt-rust test-rust build-rust bench-rust
deps-rust: ## Rust crates of Cargo.lock (download only)
	@command -v $(CARGO) >/dev/null || { echo "deps-rust: cargo is not installed (need Rust >= 1.85, rustup.rs)" >&2; exit 2; }
	@$(CARGO) --version >/dev/null
	@echo "deps-rust: fetching crates (Cargo.lock)"
	@$(CARGO) fetch --locked

lint-rust: ## cargo fmt --check, cargo clippy --workspace --all-targets -D warnings
	@echo "lint-rust: cargo fmt --check"
	@$(CARGO) fmt --all -- --check
	@echo "lint-rust: cargo clippy (workspace, all targets; first run compiles everything)"
	@$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	@echo "lint-rust: ok"

fmt-rust: ## cargo fmt
	@$(CARGO) fmt --all

test-rust: ## cargo test --workspace (dev profile; Redis tests start their own redis-server)
	@echo "test-rust: cargo test --workspace (compiling in the dev profile first)"
	@$(CARGO) test --workspace --locked

build-rust: ## release build of the pricing binary -> target/release/pricing
	@echo "build-rust: cargo build --release -p pricing (thin LTO: a few minutes on 2 cores)"
	@$(CARGO) build --release --locked -p pricing
	@echo "build-rust: target/release/pricing"

bench-rust: ## criterion benchmark of the price calculation (pricing-rust/benches)
	@echo "bench-rust: cargo bench -p pricing --bench calculate"
	@$(CARGO) bench --locked -p pricing --bench calculate
