#!/usr/bin/env bash
# Starts, if absent, everything Flotilla's tests and `flotilla serve` need on this machine:
# PostgreSQL (127.0.0.1:5432), NATS with JetStream (127.0.0.1:4222) and a Kafka-API broker
# (tansu, 127.0.0.1:9092, in-memory storage), and Debian's Prometheus (127.0.0.1:9090) scraping
# every second whatever exporters the tests list in $FLOTILLA_PROMETHEUS_DIR/targets/*.json
# (default /tmp/flotilla-prometheus: one folder for the machine, whichever clone runs the tests).
# Safe to run any number of times.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
state="$root/target/services"
mkdir -p "$state"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port name seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    port_open "$1" && return 0
    sleep 0.1
  done
  echo "error: $2 did not come up on 127.0.0.1:$1; see $state/$2.log" >&2
  return 1
}

ensure_postgres() {
  if port_open 5432; then echo "postgres: running on 127.0.0.1:5432"; return; fi
  if ! ls /etc/postgresql >/dev/null 2>&1; then
    echo "postgres: not installed; installing Debian's postgresql" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  local version
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  echo "postgres: starting cluster $version/main"
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || pg_ctlcluster "$version" main start
  wait_port 5432 postgres 30
}

ensure_nats() {
  if port_open 4222; then echo "nats: running on 127.0.0.1:4222"; return; fi
  local bin
  bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  if [ ! -x "$bin" ]; then
    echo "nats: not installed; installing Debian's nats-server" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
    bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  fi
  echo "nats: starting with JetStream"
  mkdir -p "$state/nats"
  nohup "$bin" -a 127.0.0.1 -p 4222 -js -sd "$state/nats" >"$state/nats.log" 2>&1 &
  wait_port 4222 nats 30
}

ensure_tansu() {
  if port_open 9092; then echo "kafka: a broker is running on 127.0.0.1:9092"; return; fi
  local bin
  bin="$(command -v tansu || echo "$HOME/.cargo/bin/tansu")"
  if [ ! -x "$bin" ]; then
    echo "kafka: installing tansu from crates.io (about 9 minutes on 2 cores, once per machine)"
    cargo install tansu --locked --features dynostore
    bin="$HOME/.cargo/bin/tansu"
  fi
  echo "kafka: starting tansu (in-memory storage)"
  nohup "$bin" broker --listener-url tcp://127.0.0.1:9092 --advertised-listener-url tcp://127.0.0.1:9092 \
    --storage-engine memory://tansu/ >"$state/tansu.log" 2>&1 &
  wait_port 9092 tansu 60
}

# The CDEvents spec's JSON schemas (v0.5.1), which the CDEvents test checks Flotilla's events
# against, with Python's jsonschema. Fetched where GitHub can be reached; without them the test
# checks with the CDEvents SDK's strict types only, and says so.
ensure_cdevents_schemas() {
  local dir="$state/cdevents-spec"
  if [ ! -d "$dir/schemas" ]; then
    rm -rf "$dir"
    if ! timeout 60 git clone -q --depth 1 --branch v0.5.1 https://github.com/cdevents/spec "$dir" 2>/dev/null; then
      rm -rf "$dir"
      echo "cdevents: the spec's schemas could not be fetched (no GitHub here); the SDK's types check the events"
      return 0
    fi
  fi
  python3 -c "import jsonschema" 2>/dev/null || pip install -q jsonschema >/dev/null 2>&1 || true
  echo "cdevents: spec v0.5.1 schemas in $dir/schemas"
}

# Debian's prometheus, scraping the tests' exporters: a test writes a file_sd target file
# ([{"targets": ["127.0.0.1:PORT"], "labels": {...}}]) into $prom/targets, which Prometheus
# watches, and queries it back over the HTTP API.
prom="${FLOTILLA_PROMETHEUS_DIR:-/tmp/flotilla-prometheus}"
ensure_prometheus() {
  if port_open 9090; then
    echo "prometheus: running on 127.0.0.1:9090 (the tests' exporters go to $prom/targets)"
    return
  fi
  local bin
  bin="$(command -v prometheus || echo /usr/bin/prometheus)"
  if [ ! -x "$bin" ]; then
    echo "prometheus: not installed; installing Debian's prometheus" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    bin="$(command -v prometheus || echo /usr/bin/prometheus)"
  fi
  mkdir -p "$prom/targets" "$prom/data"
  cat >"$prom/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: flotilla-tests
    scrape_interval: 1s
    scrape_timeout: 1s
    file_sd_configs:
      - files: ["$prom/targets/*.json"]
        refresh_interval: 1s
YAML
  echo "prometheus: starting (scrapes $prom/targets/*.json every second)"
  nohup "$bin" --config.file="$prom/prometheus.yml" \
    --storage.tsdb.path="$prom/data" --storage.tsdb.retention.time=1d \
    --web.listen-address=127.0.0.1:9090 >"$prom/prometheus.log" 2>&1 &
  wait_port 9090 prometheus 60
}

# Debian's Chromium, headless: the audit report's HTML page is opened in it by a test.
ensure_chromium() {
  if command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(command -v chromium)"
    return
  fi
  echo "chromium: not installed; installing Debian's chromium (headless browser tests)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
  echo "chromium: $(command -v chromium)"
}

# kubernetes-validate (PyPI; its schemas are in the package, so it works offline) for the
# Kubernetes manifests' test, with PyYAML to read them.
ensure_kubernetes_validate() {
  if python3 -c "import kubernetes_validate, yaml" 2>/dev/null; then
    echo "kubernetes-validate: installed"
    return 0
  fi
  echo "kubernetes-validate: not installed; installing it from PyPI" >&2
  pip install -q kubernetes-validate pyyaml >/dev/null 2>&1
  echo "kubernetes-validate: $(python3 -c 'import kubernetes_validate; print(kubernetes_validate.__version__)' 2>/dev/null || echo missing)"
}

# An OTLP trace receiver for the traces test: the OTLP gRPC service definitions from PyPI's
# opentelemetry-proto, served by grpcio (scripts/otlp_receiver.py).
ensure_otlp_receiver() {
  if python3 -c "import grpc; from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc" 2>/dev/null; then
    echo "otlp receiver: grpcio and opentelemetry-proto installed"
    return 0
  fi
  echo "otlp receiver: installing grpcio and opentelemetry-proto from PyPI" >&2
  pip install -q grpcio opentelemetry-proto >/dev/null 2>&1
  python3 -c "import grpc; from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc" \
    && echo "otlp receiver: installed" || echo "otlp receiver: missing"
}

# The openssl command line makes the certificates of the mutual TLS test.
ensure_openssl() {
  if command -v openssl >/dev/null 2>&1; then
    echo "openssl: $(openssl version)"
    return
  fi
  echo "openssl: not installed; installing Debian's openssl" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null
  echo "openssl: $(openssl version)"
}

ensure_postgres
ensure_nats
ensure_tansu
ensure_prometheus
ensure_cdevents_schemas
ensure_chromium
ensure_kubernetes_validate
ensure_otlp_receiver
ensure_openssl
