#!/usr/bin/env bash
# The whole test suite: starts what the tests need (scripts/services.sh), builds once, runs
# every test of the workspace against the real PostgreSQL, NATS JetStream and Kafka-API broker.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/services.sh

export FLOTILLA_TEST_POSTGRES_URL="${FLOTILLA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export FLOTILLA_TEST_NATS_URL="${FLOTILLA_TEST_NATS_URL:-nats://127.0.0.1:4222}"
export FLOTILLA_TEST_KAFKA_BROKERS="${FLOTILLA_TEST_KAFKA_BROKERS:-127.0.0.1:9092}"
# The CDEvents spec's schemas, when scripts/services.sh could fetch them.
if [ -z "${FLOTILLA_CDEVENTS_SCHEMAS:-}" ] && [ -d target/services/cdevents-spec/schemas ]; then
  export FLOTILLA_CDEVENTS_SCHEMAS="$PWD/target/services/cdevents-spec/schemas"
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
else
  cargo test --workspace --no-fail-fast "$@"
fi
