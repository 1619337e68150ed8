# Flotilla recipes. Each calls the same scripts the README names, so `just` is optional.

# Run all six services on embedded defaults (SQLite under .flotilla/, in-process bus).
up:
    cargo run -p flotilla-cli -- up

# Start PostgreSQL, NATS with JetStream and tansu if they are not running.
services:
    ./scripts/services.sh

# The whole test suite (starts what it needs).
test *ARGS:
    ./scripts/test.sh {{ARGS}}

# The store benchmark figures recorded in BENCHMARKS.md.
bench:
    ./scripts/bench.sh

fmt:
    cargo fmt --all

lint:
    cargo clippy --workspace --all-targets -- -D warnings
