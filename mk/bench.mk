# make bench: the bare-framework baselines and the wrk harness (bench/run.py).
BENCH_TARGETS += bench-run

.PHONY: bench-baselines bench-run
bench-baselines:
	@echo "bench: building baselines (axum hello, net/http hello)"
	@cd bench/baselines/axum-hello && CARGO_TARGET_DIR=$(ROOT)/target/bench-baselines cargo build --release --quiet
	@cd bench/baselines/go-hello && go build -o $(BIN)/go-hello .

bench-run: build bench-baselines
	@$(PY) bench/run.py
