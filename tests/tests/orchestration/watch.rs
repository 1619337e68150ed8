//! Monitoring on the bus after a deployment: orchestration's DeploymentFinished opens each
//! service's watch window with its tier's thresholds; samples come by a gRPC client stream or
//! from a real Prometheus (Debian's, scraping an exporter this test serves); the first sample
//! across a threshold asks for the rollback (RollbackRequested, orchestration rolls the release
//! back) and tells governance (RollbackThresholdBreached opens its rollback decision).

use std::time::{Duration, SystemTime};

use crate::flow::*;
use flotilla_proto::governance::v1 as gv;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::monitoring::v1 as mon;
use flotilla_proto::monitoring::v1::monitoring_service_client::MonitoringServiceClient;
use flotilla_proto::orchestration::v1 as pb;
use tonic::Code;

async fn monitoring(flow: &Flow, who: &str, roles: &[&str]) -> MonitoringServiceClient<Authed> {
    MonitoringServiceClient::new(authed(&flow.node, who, roles, UNIT).await)
}

/// Waits for the open watch window of `service` in `env`.
async fn open_watch(flow: &Flow, service: &str, env: &str) -> mon::Watch {
    let mut m = monitoring(flow, "sam", &["service-owner"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let w = m
            .list_watches(mon::ListWatchesRequest {
                service: service.into(),
                environment: env.into(),
                status: mon::WatchStatus::Open as i32,
            })
            .await
            .expect("watches")
            .into_inner()
            .watches;
        if let Some(w) = w.into_iter().next() {
            return w;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no watch window opened for {service} in {env}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `ms` milliseconds after the window opened.
fn after(w: &mon::Watch, ms: u64) -> prost_types::Timestamp {
    let opened: SystemTime = w
        .opened_at
        .and_then(|t| t.try_into().ok())
        .expect("opened at");
    (opened + Duration::from_millis(ms)).into()
}

fn batch(w: &mon::Watch, service: &str, metric: &str, values: &[(u64, f64)]) -> mon::SampleBatch {
    mon::SampleBatch {
        service: service.into(),
        environment: "dev".into(),
        metric: metric.into(),
        samples: values
            .iter()
            .map(|(ms, v)| mon::Sample {
                at: Some(after(w, *ms)),
                value: *v,
            })
            .collect(),
    }
}

/// The release was rolled back out of dev by monitoring's request; answers the deployment (a
/// succeeded one's watch stream has ended: asked until then).
async fn rolled_back(flow: &mut Flow, deployment: &str) -> pb::Deployment {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let d = flow
            .orch
            .get_deployment(pb::GetDeploymentRequest {
                deployment_id: deployment.into(),
            })
            .await
            .expect("deployment")
            .into_inner();
        if d.status == pb::DeploymentStatus::RolledBack as i32 {
            return d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never rolled back: {d:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pushed_sample_across_a_threshold_rolls_the_release_back_and_tells_governance() {
    // dev counts as production here, for the DORA figures at the end.
    let mut section = toml::Table::new();
    section.insert(
        "production_environments".into(),
        toml::Value::Array(vec!["dev".into()]),
    );
    let mut sections = toml::Table::new();
    sections.insert("monitoring".into(), toml::Value::Table(section));
    let mut flow = Flow::start_with(sections).await;
    set_up(&mut flow).await;
    let d = deployed(
        &mut flow,
        "payments-2.0.0",
        vec![
            item("payments-ledger", "2.0.0"),
            item("payments-api", "2.0.0"),
        ],
        "dev",
    )
    .await;
    let w = open_watch(&flow, "payments-api", "dev").await;
    // The catalog's tier 3: 15 minutes, error rate above 0.05, p99 above 1000 ms.
    assert_eq!(
        (w.criticality_tier, w.release.as_str()),
        (3, "payments-2.0.0")
    );
    let error_rate = w
        .thresholds
        .iter()
        .find(|t| t.metric == "error_rate")
        .expect("error rate threshold");
    assert_eq!(error_rate.threshold, 0.05);

    let mut sre = monitoring(&flow, "sam", &["service-owner"]).await;
    // Bad samples are refused with what is wrong, and change nothing.
    for (bad, want) in [
        (
            batch(&w, "payments-api", "error_rate", &[(3, f64::NAN)]),
            "is NaN",
        ),
        (batch(&w, "payments-api", "error_rate", &[]), "is empty"),
        (
            batch(&w, "payments-api", "eror_rate", &[(3, 0.0)]),
            "is not watched for payments-api in dev",
        ),
        (
            batch(&w, "payments-api", "error_rate", &[(3, 0.0), (2, 0.0)]),
            "send a batch in time order",
        ),
    ] {
        let s = sre
            .push_samples(futures::stream::iter(vec![bad]))
            .await
            .expect_err(want);
        assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
        assert!(
            s.message().contains(want) && s.message().starts_with("batch 0:"),
            "{}",
            s.message()
        );
    }
    let mut developer = monitoring(&flow, "dev-1", &["developer"]).await;
    let s = developer
        .push_samples(futures::stream::iter(vec![batch(
            &w,
            "payments-api",
            "error_rate",
            &[(3, 0.0)],
        )]))
        .await
        .expect_err("not allowed");
    assert_eq!(s.code(), Code::PermissionDenied, "{s:?}");

    // Healthy samples, then one across the error-rate threshold, on one stream.
    let pushed = sre
        .push_samples(futures::stream::iter(vec![
            batch(
                &w,
                "payments-api",
                "latency_p99_ms",
                &[(1, 210.0), (2, 230.0)],
            ),
            batch(
                &w,
                "payments-api",
                "error_rate",
                &[(1, 0.001), (2, 0.002), (3, 0.31), (4, 0.4)],
            ),
            // Unwatched service: taken as outside any window.
            batch(&w, "payments-web", "error_rate", &[(3, 0.9)]),
        ]))
        .await
        .expect("pushed")
        .into_inner();
    assert_eq!(
        (pushed.batches, pushed.samples, pushed.outside_windows),
        (3, 5, 1)
    );
    assert_eq!(pushed.breach_ids.len(), 1);

    // Orchestration rolls the release back out of dev, saying why.
    let done = rolled_back(&mut flow, &d.deployment_id).await;
    assert!(
        done.reason.contains(
            "error_rate of payments-api in dev was 0.31 (above the threshold 0.05 of tier 3)"
        ),
        "{}",
        done.reason
    );
    // The watch holds the breach and its evidence; governance opened a rollback decision.
    let w = MonitoringServiceClient::new(flow.admin().await)
        .get_watch(mon::GetWatchRequest {
            watch_id: w.watch_id.clone(),
        })
        .await
        .expect("watch")
        .into_inner();
    assert_eq!(w.status, mon::WatchStatus::Breached as i32);
    assert_eq!(w.breach_id, pushed.breach_ids[0]);
    let coverage = w
        .coverage
        .iter()
        .find(|c| c.metric == "error_rate")
        .expect("coverage");
    assert_eq!(
        (coverage.samples, coverage.worst),
        (3, 0.31),
        "judged up to the breach"
    );
    let mut g =
        GovernanceServiceClient::new(authed(&flow.node, "rita", &["release-manager"], UNIT).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let decisions = g
            .list_rollback_decisions(gv::ListRollbackDecisionsRequest {
                release: "payments-2.0.0".into(),
                business_unit: UNIT.into(),
            })
            .await
            .expect("decisions")
            .into_inner()
            .decisions;
        if let Some(d) = decisions.iter().find(|d| d.metric == "error_rate") {
            assert_eq!((d.observed, d.service.as_str()), (0.31, "payments-api"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{decisions:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The ledger's window ends as rolled back.
    let mut m = monitoring(&flow, "sam", &["service-owner"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ledger = m
            .list_watches(mon::ListWatchesRequest {
                service: "payments-ledger".into(),
                environment: "dev".into(),
                status: mon::WatchStatus::RolledBack as i32,
            })
            .await
            .expect("watches")
            .into_inner()
            .watches;
        if !ledger.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ledger's window did not end"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    crate::aftermath::after_the_rollback(&flow).await;
    drop((sre, developer, g, m));
    flow.node.stop().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_business_health_check_read_from_prometheus_rolls_the_release_back() {
    let prometheus = prometheus_url();
    let label = format!("watch-{}", uuid::Uuid::now_v7().simple());
    let exporter = Exporter::start(&label, "checkout_success_ratio 0.999\n").await;
    let mut section = toml::Table::new();
    section.insert("prometheus_url".into(), prometheus.clone().into());
    section.insert("poll_secs".into(), 1.into());
    let mut sections = toml::Table::new();
    sections.insert("monitoring".into(), toml::Value::Table(section));
    let mut flow = Flow::start_with(sections).await;
    set_up(&mut flow).await;
    // Checkout success ratio at least 0.995: a business transaction, not uptime.
    let mut owner = monitoring(&flow, "sam", &["service-owner"]).await;
    owner
        .define_health_check(mon::DefineHealthCheckRequest {
            check: Some(mon::HealthCheck {
                name: "checkout_success_ratio".into(),
                service: "payments-api".into(),
                business_unit: UNIT.into(),
                promql: format!("checkout_success_ratio{{flotilla_test=\"{label}\"}}"),
                comparison: mon::Comparison::Below as i32,
                threshold: 0.995,
                description: "orders paid / orders placed".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("health check");
    let d = deployed(
        &mut flow,
        "payments-2.0.0",
        vec![item("payments-api", "2.0.0")],
        "dev",
    )
    .await;
    let w = open_watch(&flow, "payments-api", "dev").await;
    assert!(
        w.thresholds
            .iter()
            .any(|t| t.metric == "checkout_success_ratio")
    );
    // Prometheus scrapes the exporter; monitoring polls the expression into the window.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let w = owner
            .get_watch(mon::GetWatchRequest {
                watch_id: w.watch_id.clone(),
            })
            .await
            .expect("watch")
            .into_inner();
        if w.coverage
            .iter()
            .any(|c| c.metric == "checkout_success_ratio" && c.samples >= 2)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sample of the check came from prometheus at {prometheus}: {w:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Checkouts start failing: the ratio drops below 0.995 and the release is rolled back.
    exporter.set("checkout_success_ratio 0.91\n");
    let done = rolled_back(&mut flow, &d.deployment_id).await;
    assert!(
        done.reason.contains(
            "checkout_success_ratio of payments-api in dev was 0.91 (below the threshold 0.995"
        ),
        "{}",
        done.reason
    );
    drop(owner);
    flow.node.stop().await.expect("stop");
}
