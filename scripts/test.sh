#!/usr/bin/env bash
# The whole test suite: starts what the tests need (scripts/services.sh), builds once, runs
# every test of the workspace against the real PostgreSQL, NATS JetStream, Kafka-API broker and
# Prometheus.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/services.sh

export FLOTILLA_TEST_POSTGRES_URL="${FLOTILLA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export FLOTILLA_TEST_NATS_URL="${FLOTILLA_TEST_NATS_URL:-nats://127.0.0.1:4222}"
export FLOTILLA_TEST_KAFKA_BROKERS="${FLOTILLA_TEST_KAFKA_BROKERS:-127.0.0.1:9092}"
# Prometheus, and the folder of file_sd target files it scrapes (tests add their exporters).
export FLOTILLA_TEST_PROMETHEUS_URL="${FLOTILLA_TEST_PROMETHEUS_URL:-http://127.0.0.1:9090}"
export FLOTILLA_TEST_PROMETHEUS_TARGETS="${FLOTILLA_TEST_PROMETHEUS_TARGETS:-${FLOTILLA_PROMETHEUS_DIR:-/tmp/flotilla-prometheus}/targets}"
# Headless Chromium for the audit report's page.
export FLOTILLA_TEST_CHROMIUM="${FLOTILLA_TEST_CHROMIUM:-$(command -v chromium || echo /usr/bin/chromium)}"
# The CDEvents spec's schemas, when scripts/services.sh could fetch them.
if [ -z "${FLOTILLA_CDEVENTS_SCHEMAS:-}" ] && [ -d target/services/cdevents-spec/schemas ]; then
  export FLOTILLA_CDEVENTS_SCHEMAS="$PWD/target/services/cdevents-spec/schemas"
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
