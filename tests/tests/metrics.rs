//! Prometheus metrics: a node with `metrics_listen` serves `/metrics`; the real Prometheus
//! (Debian's, started by scripts/services.sh) scrapes it, and its HTTP API gives back the gRPC
//! calls a client made, by method and code, and after a release's scenario the store's, the
//! bus's and the domain's figures.

#[path = "flow/mod.rs"]
mod flow;

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
    let scraped = Scraped::new(port);
    let label = scraped.label.clone();
    let ask = |q: String| {
        let p = &scraped.prometheus;
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

/// A node's metrics scraped by the test Prometheus (a file_sd target labelled for this test),
/// and queries of them.
struct Scraped {
    label: String,
    _target: flow::Target,
    prometheus: Prometheus,
}

impl Scraped {
    fn new(port: u16) -> Self {
        let label = format!("metrics-{}", uuid::Uuid::new_v4().simple());
        Self {
            _target: flow::Target::new(&label, port),
            prometheus: Prometheus::new(&flow::prometheus_url()).expect("prometheus client"),
            label,
        }
    }

    /// `metric{flotilla_test="<this test>",labels}`.
    fn query(&self, metric: &str, labels: &str) -> String {
        let sep = if labels.is_empty() { "" } else { "," };
        format!("{metric}{{flotilla_test=\"{}\"{sep}{labels}}}", self.label)
    }

    /// Waits (at most 30 s) until `promql` has a value `wanted` accepts; answers the last value.
    async fn until(&self, promql: &str, wanted: impl Fn(f64) -> bool) -> Option<f64> {
        let mut last = None;
        for _ in 0..60 {
            last = self
                .prometheus
                .query(promql, Timestamp::now())
                .await
                .unwrap_or_default()
                .first()
                .map(|p| p.value);
            if last.is_some_and(&wanted) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        last
    }
}

/// A release through governance's gate (denied, then approved), deployed to dev (production
/// for DORA here) and held in staging for a rollback decision: Prometheus reads back the
/// store writer's latency and batch sizes, each consumer group's lag, the releases in flight,
/// the deployments by outcome, the gate's denials by reason, the pending approvals and their
/// age, and the unit's DORA figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn prometheus_reads_back_store_bus_and_domain_metrics_after_a_release() {
    use flotilla_proto::orchestration::v1 as pb;
    use flow::*;

    let port = free_port();
    let mut monitoring = toml::Table::new();
    monitoring.insert(
        "production_environments".into(),
        toml::Value::Array(vec!["dev".into()]),
    );
    let mut sections = toml::Table::new();
    sections.insert("monitoring".into(), toml::Value::Table(monitoring));
    let mut flow = Flow::start_configured(sections, |c| {
        c.metrics_listen = format!("127.0.0.1:{port}");
    })
    .await;
    let scraped = Scraped::new(port);
    set_up(&mut flow).await;
    let name = "payments-2.0.0";
    planned(
        &mut flow,
        name,
        ["payments-web", "payments-api", "payments-ledger"]
            .into_iter()
            .map(|s| item(s, ""))
            .collect(),
    )
    .await;
    let promote = |env: &str| pb::PromoteReleaseRequest {
        release: name.into(),
        environment: env.into(),
    };

    // The plan's assessment opens an approval request per environment of the path (dev,
    // staging, prod): pending, and aging.
    let pending = scraped.query("flotilla_approvals_pending", "business_unit=\"payments\"");
    assert_eq!(
        scraped.until(&pending, |v| v == 3.0).await,
        Some(3.0),
        "{pending}"
    );
    let age = scraped.query(
        "flotilla_approvals_oldest_pending_age_seconds",
        "business_unit=\"payments\"",
    );
    assert!(
        scraped
            .until(&age, |v| v > 0.0)
            .await
            .is_some_and(|v| v < 600.0),
        "{age}"
    );
    // Promoting before it is approved: denied for its missing approvals.
    let denied = flow
        .orch
        .promote_release(promote("dev"))
        .await
        .expect_err("not approved");
    assert!(
        denied.message().contains("needs 1 approval(s)"),
        "{denied:?}"
    );
    let denials = scraped.query(
        "flotilla_gate_denials_total",
        "reason=\"missing_approvals\"",
    );
    assert_eq!(
        scraped.until(&denials, |v| v >= 1.0).await,
        Some(1.0),
        "{denials}"
    );
    let other = scraped.query("flotilla_gate_denials_total", "reason=\"freeze_window\"");
    assert_eq!(scraped.until(&other, |_| true).await, Some(0.0), "{other}");

    approve(&flow, name, "dev").await;
    let started = flow
        .orch
        .promote_release(promote("dev"))
        .await
        .expect("promote")
        .into_inner();
    let done = flow.finished(&started.deployment_id).await;
    assert_eq!(done.status, pb::DeploymentStatus::Succeeded as i32);

    // Staging: its prerequisites, then a failing step held for governance's decision.
    ready_for_staging(&mut flow, name).await;
    approve(&flow, name, "staging").await;
    flow.fail("payments-web");
    let held = flow
        .orch
        .promote_release(promote("staging"))
        .await
        .expect("promote")
        .into_inner();
    flow.until(&held.deployment_id, "awaiting a rollback decision", |d| {
        d.status == pb::DeploymentStatus::AwaitingRollbackDecision as i32
    })
    .await;

    let in_flight = scraped.query(
        "flotilla_releases_in_flight",
        "business_unit=\"payments\",environment=\"staging\",status=\"awaiting_a_rollback_decision\"",
    );
    assert_eq!(
        scraped.until(&in_flight, |v| v == 1.0).await,
        Some(1.0),
        "{in_flight}"
    );
    let succeeded = scraped.query(
        "flotilla_deployments_finished",
        "business_unit=\"payments\",outcome=\"succeeded\"",
    );
    assert_eq!(
        scraped.until(&succeeded, |v| v == 1.0).await,
        Some(1.0),
        "{succeeded}"
    );
    // Dev and staging approved: prod's request is still pending.
    assert_eq!(
        scraped.until(&pending, |v| v == 1.0).await,
        Some(1.0),
        "{pending}"
    );
    // DORA: the dev deployment, production here, in the last 30 days.
    let dora = scraped.query(
        "flotilla_dora_deployments_30d",
        "business_unit=\"payments\"",
    );
    assert_eq!(
        scraped.until(&dora, |v| v == 1.0).await,
        Some(1.0),
        "{dora}"
    );
    let failure_rate = scraped.query(
        "flotilla_dora_change_failure_rate",
        "business_unit=\"payments\"",
    );
    assert_eq!(
        scraped.until(&failure_rate, |v| v == 0.0).await,
        Some(0.0),
        "{failure_rate}"
    );
    // The store writer: orchestration's appends timed, its transactions' sizes counted.
    let appends = scraped.query(
        "flotilla_store_append_duration_seconds_count",
        "service=\"orchestration\"",
    );
    assert!(
        scraped
            .until(&appends, |v| v >= 5.0)
            .await
            .is_some_and(|v| v >= 5.0),
        "{appends}"
    );
    // Transactions were counted, and every one's size is in a bucket (none past 10,000 events).
    let transactions = scraped.query(
        "flotilla_store_batch_events_count",
        "service=\"orchestration\"",
    );
    assert!(
        scraped
            .until(&transactions, |v| v >= 1.0)
            .await
            .is_some_and(|v| v >= 1.0),
        "{transactions}"
    );
    let batches = format!(
        "{} - ignoring(le) {}",
        scraped.query(
            "flotilla_store_batch_events_count",
            "service=\"orchestration\""
        ),
        scraped.query(
            "flotilla_store_batch_events_bucket",
            "service=\"orchestration\",le=\"10000\""
        ),
    );
    assert_eq!(
        scraped.until(&batches, |_| true).await,
        Some(0.0),
        "{batches}"
    );
    let events = scraped.query(
        "flotilla_store_batch_events_sum",
        "service=\"orchestration\"",
    );
    assert!(
        scraped
            .until(&events, |v| v >= 5.0)
            .await
            .is_some_and(|v| v >= 5.0),
        "{events}"
    );
    // Compliance ledgers every orchestration event: its group catches up to no lag.
    let lag = scraped.query(
        "flotilla_consumer_lag_events",
        "group=\"compliance\",source=\"orchestration\",bus=\"inprocess\"",
    );
    assert_eq!(scraped.until(&lag, |v| v == 0.0).await, Some(0.0), "{lag}");
    flow.node.stop().await.expect("stop");
}
