//! Prometheus metrics: a node with `metrics_listen` serves `/metrics`; the real Prometheus
//! (Debian's, started by scripts/services.sh) scrapes it, and its HTTP API gives back the gRPC
//! calls a client made, by method and code.

use std::time::Duration;

use flotilla_core::event::Timestamp;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::orchestration::v1 as orch;
use flotilla_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use flotilla_runtime::prometheus::Prometheus;
use flotilla_runtime::{Config, NodeMode};
use flotilla_tests::RunningNode;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_grpc_calls_by_method_and_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let port = free_port();
    let config = Config {
        data_dir: data.clone(),
        metrics_listen: format!("127.0.0.1:{port}"),
        ..Config::default()
    };
    let node = RunningNode::start(
        config,
        flotilla_tests::all_services(),
        NodeMode::Embedded { data_dir: data },
    )
    .await
    .expect("node");
    let caller = node
        .as_caller("ops", &["admin"], "central")
        .await
        .expect("caller");
    for _ in 0..3 {
        GovernanceServiceClient::new(caller.clone())
            .get_status(flotilla_proto::common::v1::GetStatusRequest {})
            .await
            .expect("status");
    }
    let missing = OrchestrationServiceClient::new(caller.clone())
        .get_release(orch::GetReleaseRequest {
            release: "no-such-release".into(),
        })
        .await
        .expect_err("no such release");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // The node's own page, then Prometheus scraping it.
    let page = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        page.contains("flotilla_grpc_requests_total{method=\"/flotilla.orchestration.v1.OrchestrationService/GetRelease\",code=\"NOT_FOUND\"} 1"),
        "{page}"
    );
    assert!(
        page.contains("flotilla_store_head_position{service=\"governance\"}"),
        "{page}"
    );
    let label = format!("metrics-{}", uuid::Uuid::new_v4().simple());
    let targets = std::env::var("FLOTILLA_TEST_PROMETHEUS_TARGETS")
        .unwrap_or_else(|_| "/tmp/flotilla-prometheus/targets".into());
    std::fs::create_dir_all(&targets).expect("targets folder");
    let file = std::path::Path::new(&targets).join(format!("{label}.json"));
    std::fs::write(
        &file,
        format!(r#"[{{"targets":["127.0.0.1:{port}"],"labels":{{"flotilla_test":"{label}"}}}}]"#),
    )
    .expect("target file");
    let prometheus = Prometheus::new(
        &std::env::var("FLOTILLA_TEST_PROMETHEUS_URL")
            .unwrap_or_else(|_| "http://127.0.0.1:9090".into()),
    )
    .expect("prometheus client");
    let ask = |q: String| {
        let p = &prometheus;
        async move { p.query(&q, Timestamp::now()).await.unwrap_or_default() }
    };
    let status = format!(
        "flotilla_grpc_requests_total{{flotilla_test=\"{label}\",method=\"/flotilla.governance.v1.GovernanceService/GetStatus\",code=\"OK\"}}"
    );
    let not_found =
        format!("flotilla_grpc_requests_total{{flotilla_test=\"{label}\",code=\"NOT_FOUND\"}}");
    let latency = format!(
        "flotilla_grpc_request_duration_seconds_count{{flotilla_test=\"{label}\",method=\"/flotilla.governance.v1.GovernanceService/GetStatus\"}}"
    );
    // This node alone runs every service's duty (relays and schedulers); every relay is
    // sampled against its store's head.
    let leases = format!("sum(flotilla_lease_held{{flotilla_test=\"{label}\"}})");
    let terms = format!("count(flotilla_lease_term{{flotilla_test=\"{label}\"}} >= 1)");
    let lag = format!(
        "count(flotilla_relay_lag_events{{flotilla_test=\"{label}\",service=\"governance\"}})"
    );
    let mut seen = (Vec::new(), Vec::new(), Vec::new());
    let mut duty = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..60 {
        seen = (
            ask(status.clone()).await,
            ask(not_found.clone()).await,
            ask(latency.clone()).await,
        );
        duty = (
            ask(leases.clone()).await,
            ask(terms.clone()).await,
            ask(lag.clone()).await,
        );
        if !seen.0.is_empty()
            && !seen.1.is_empty()
            && !seen.2.is_empty()
            && duty.0.first().is_some_and(|p| p.value == 6.0)
            && !duty.2.is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = std::fs::remove_file(&file);
    assert_eq!(seen.0.first().map(|p| p.value), Some(3.0), "{seen:?}");
    assert_eq!(seen.1.first().map(|p| p.value), Some(1.0), "{seen:?}");
    assert!(seen.2.first().is_some_and(|p| p.value >= 3.0), "{seen:?}");
    assert_eq!(
        duty.0.first().map(|p| p.value),
        Some(6.0),
        "the node holds all six duty leases: {duty:?}"
    );
    assert_eq!(duty.1.first().map(|p| p.value), Some(6.0), "{duty:?}");
    assert_eq!(
        duty.2.first().map(|p| p.value),
        Some(1.0),
        "one bus, one relay lag: {duty:?}"
    );
    node.stop().await.expect("stop");
}
