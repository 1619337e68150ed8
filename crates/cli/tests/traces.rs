//! One OpenTelemetry trace across two services: a RegisterService call to `flotilla serve
//! dependency-mapping`, parented on the caller's `traceparent`, through the store append, the
//! relay's publish to NATS (the trace context in the CloudEvents `traceparent` extension), and
//! `flotilla serve compliance`'s handling of the event with its own append. The spans are read
//! back from a real OTLP/gRPC receiver (PyPI's opentelemetry-proto served by grpcio).

use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flotilla_proto::dependency::v1 as pb;
use serde_json::Value;

mod support;
use support::{
    catalog_client, catalog_entry, free_port, serve_with, served_config, stop, token_for_config,
};

/// The OpenTelemetry SDK's batch exporter sends every 200 ms (its default is 5 s).
const QUICK_EXPORT: &[(&str, &str)] = &[("OTEL_BSP_SCHEDULE_DELAY", "200")];

/// The receiver, stopped when dropped.
struct Receiver(Child);

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn receiver(out: &std::path::Path) -> (Receiver, u16) {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/otlp_receiver.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg(out)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 scripts/otlp_receiver.py (scripts/services.sh installs its packages)");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the receiver prints its port");
    let port = line.trim().parse().unwrap_or_else(|_| {
        panic!("the OTLP receiver did not start ({line:?}); run scripts/services.sh")
    });
    (Receiver(child), port)
}

fn spans(out: &std::path::Path, trace: &str) -> Vec<Value> {
    std::fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|s| s["trace_id"] == trace)
        .collect()
}

/// The spans the trace must have: (service, span name).
const EXPECTED: [(&str, &str); 6] = [
    (
        "dependency-mapping",
        "flotilla.dependency.v1.DependencyMappingService/RegisterService",
    ),
    ("dependency-mapping", "register_service"),
    ("dependency-mapping", "store.append"),
    ("dependency-mapping", "publish dependency-mapping"),
    ("compliance", "process dependency-mapping"),
    ("compliance", "store.append"),
];

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_a_grpc_call_through_the_bus_into_another_service() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("spans.jsonl");
    let (_receiver, otlp) = receiver(&out);
    let (config, namespace) = served_config(
        dir.path(),
        &format!("otlp_endpoint = \"http://127.0.0.1:{otlp}\"\n"),
    );
    let (catalog_port, ledger_port) = (free_port(), free_port());
    let log = |name: &str| dir.path().join(format!("{name}.log"));
    let nodes: Vec<Child> = vec![
        serve_with(
            &config,
            "dependency-mapping",
            catalog_port,
            &log("catalog"),
            QUICK_EXPORT,
        ),
        serve_with(
            &config,
            "compliance",
            ledger_port,
            &log("compliance"),
            QUICK_EXPORT,
        ),
    ];
    struct Nodes(Vec<Child>);
    impl Drop for Nodes {
        fn drop(&mut self) {
            self.0.drain(..).for_each(stop);
        }
    }
    let _nodes = Nodes(nodes);
    let logs = || {
        ["catalog", "compliance"]
            .iter()
            .map(|n| std::fs::read_to_string(log(n)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let token = token_for_config(&config, "tracer", "admin", "central");
    let mut client = catalog_client(catalog_port, &token, logs).await;

    // The caller's own span: the trace is its, and the server's span its child.
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let mut request = tonic::Request::new(pb::RegisterServiceRequest {
        service: Some(catalog_entry("traced")),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{caller_span}-01")
            .parse()
            .expect("header"),
    );
    client.register_service(request).await.expect("registered");

    // Spans are exported in batches (every 200 ms here): wait for every span of the trace.
    let deadline = Instant::now() + Duration::from_secs(60);
    let found = loop {
        let found = spans(&out, &trace);
        let done = EXPECTED.iter().all(|(service, name)| {
            found
                .iter()
                .any(|s| s["service"] == *service && s["name"] == *name)
        });
        if done {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "not every span of the trace came within 60 s; spans of the trace: {found:#?}\n{}",
            logs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let by_id = |id: &Value| found.iter().find(|s| &s["span_id"] == id);
    let shown: String = found
        .iter()
        .map(|s| {
            format!(
                "{} {} {} <- {}\n",
                s["service"], s["name"], s["span_id"], s["parent_span_id"]
            )
        })
        .collect();
    eprintln!("the trace (service, span, id <- parent):\n{shown}");
    let one = |service: &str, name: &str| {
        let matching: Vec<&Value> = found
            .iter()
            .filter(|s| s["service"] == service && s["name"] == name)
            .collect();
        assert_eq!(
            matching.len(),
            1,
            "one {name} span of {service}: {found:#?}"
        );
        matching[0]
    };

    // dependency-mapping: the server span, a child of the caller's.
    let server = one(
        "dependency-mapping",
        "flotilla.dependency.v1.DependencyMappingService/RegisterService",
    );
    assert_eq!(server["kind"], "server");
    assert_eq!(server["parent_span_id"], caller_span);
    assert_eq!(attr(server, "rpc.system"), "grpc");
    assert_eq!(attr(server, "rpc.method"), "RegisterService");
    assert_eq!(server["resource"]["service.namespace"], namespace.as_str());

    // The handler's span, then its append.
    let handler = one("dependency-mapping", "register_service");
    assert_eq!(handler["parent_span_id"], server["span_id"]);
    let append = one("dependency-mapping", "store.append");
    assert_eq!(append["parent_span_id"], handler["span_id"]);
    assert_eq!(attr(append, "flotilla.service"), "dependency-mapping");
    let position = attr(append, "flotilla.position")
        .as_i64()
        .unwrap_or_else(|| panic!("the append records the position it reached: {append:#?}"));

    // The relay's publish to NATS, a child of the append it publishes.
    let publish = one("dependency-mapping", "publish dependency-mapping");
    assert_eq!(publish["kind"], "producer");
    assert_eq!(publish["parent_span_id"], append["span_id"]);
    assert_eq!(attr(publish, "messaging.system"), "nats");
    assert_eq!(attr(publish, "flotilla.position"), position);
    let event_id = attr(publish, "messaging.message.id").clone();

    // compliance: the handling of that event, parented through the CloudEvent's traceparent
    // on the append's span, and the append it caused, a child of the handling.
    let consume = one("compliance", "process dependency-mapping");
    assert_eq!(consume["kind"], "consumer");
    assert_eq!(consume["parent_span_id"], append["span_id"]);
    assert_eq!(attr(consume, "messaging.message.id"), &event_id);
    assert_eq!(attr(consume, "messaging.system"), "nats");
    assert!(
        attr(consume, "messaging.consumer.group.name")
            .as_str()
            .is_some_and(|g| g.contains("compliance")),
        "the consumer group is compliance's: {consume:#?}"
    );
    let ledgered = one("compliance", "store.append");
    assert_eq!(ledgered["parent_span_id"], consume["span_id"]);
    assert_eq!(attr(ledgered, "flotilla.service"), "compliance");

    // Every span of the trace hangs from the caller's, through parents that were exported.
    for s in &found {
        let mut at = s;
        while at["parent_span_id"] != caller_span {
            at = by_id(&at["parent_span_id"])
                .unwrap_or_else(|| panic!("span {s:#?} has a parent outside the trace"));
        }
    }
}
