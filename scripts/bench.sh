#!/usr/bin/env bash
# The store benchmark recorded in BENCHMARKS.md: append throughput on PostgreSQL and SQLite for
# 1 writer, 64 single-event writers and batches of 100, the raw-INSERT baselines of the same
# PostgreSQL in the same run, and replay of 1,000,000 events. Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh >/dev/null
cargo build --release -p flotilla-cli
bin=target/release/flotilla
pg="${FLOTILLA_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "== PostgreSQL ($pg), synchronous_commit=$(psql "$pg" -Atc 'show synchronous_commit' 2>/dev/null || echo '?')"
$bin store bench --url "$pg" --events 20000 --writers 1
$bin store bench --url "$pg" --events 200000 --writers 64 --baseline
$bin store bench --url "$pg" --events 1000000 --writers 64 --batch 100 --replay

echo "== SQLite ($tmp)"
$bin store bench --url "sqlite://$tmp/one.db" --events 20000 --writers 1
$bin store bench --url "sqlite://$tmp/many.db" --events 200000 --writers 64
$bin store bench --url "sqlite://$tmp/batch.db" --events 1000000 --writers 64 --batch 100 --replay

echo "== dependency-mapping: 10,000 services, 50,000 edges (replay on PostgreSQL)"
FLOTILLA_BENCH_POSTGRES_URL="$pg" cargo bench -q -p flotilla-dependency-mapping --bench graph

echo "== dependency-mapping: restart with 1,000,000 events, without and with a snapshot (PostgreSQL)"
FLOTILLA_BENCH_POSTGRES_URL="$pg" cargo bench -q -p flotilla-dependency-mapping --bench restart

echo "== governance: CheckGate over gRPC (10,000 releases, 40 windows, 500 deviations)"
cargo bench -q -p flotilla-governance --bench gate

echo "== relay: backlog to NATS and Kafka, append -> NATS consumer latency"
cargo bench -q -p flotilla-tests --bench relay
