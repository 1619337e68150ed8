//! A canary's analysis step waits for risk-validation's judgement, which reaches orchestration
//! through risk-validation's events: a failing judgement rolls the deployment back, a passing
//! one lets it go on, and a marginal one pauses it for a person (never a pass).

use crate::flow::*;
use flotilla_proto::orchestration::v1 as pb;
use flotilla_proto::risk::v1 as risk;
use flotilla_proto::risk::v1::risk_validation_service_client::RiskValidationServiceClient;

fn canary_item() -> pb::RequestedItem {
    let mut it = item("payments-ledger", "2.0.0");
    it.strategy = Some(pb::Strategy {
        kind: Some(pb::strategy::Kind::Canary(pb::CanaryStrategy {
            steps: vec![
                pb::CanaryStep {
                    step: Some(pb::canary_step::Step::SetWeight(25)),
                },
                pb::CanaryStep {
                    step: Some(pb::canary_step::Step::Analysis("canary-judge".into())),
                },
            ],
        })),
    });
    it
}

/// The release promoted into dev, waiting at its analysis step; answers the deployment id.
async fn at_analysis(flow: &mut Flow, name: &str) -> String {
    planned(flow, name, vec![canary_item()]).await;
    approve_for(flow, UNIT, "payments-ledger", name, "dev").await;
    let d = flow
        .orch
        .promote_release(pb::PromoteReleaseRequest {
            release: name.into(),
            environment: "dev".into(),
        })
        .await
        .expect("promote")
        .into_inner();
    flow.until(&d.deployment_id, "waiting at its analysis", |d| {
        waiting_at(d).is_some_and(|s| s.kind == "analysis")
    })
    .await;
    d.deployment_id
}

fn metric(name: &str, critical: bool) -> risk::MetricConfig {
    risk::MetricConfig {
        name: name.into(),
        groups: vec!["latency".into()],
        direction: risk::Direction::Increase as i32,
        critical,
        ..Default::default()
    }
}

fn samples(name: &str, experiment: &[f64], control: &[f64]) -> risk::MetricSamples {
    risk::MetricSamples {
        name: name.into(),
        experiment: experiment.to_vec(),
        control: control.to_vec(),
    }
}

const BASELINE: [f64; 10] = [
    180.0, 175.0, 182.0, 178.0, 185.0, 177.0, 181.0, 179.0, 176.0, 183.0,
];
const SLOW: [f64; 10] = [
    412.0, 398.0, 420.0, 405.0, 431.0, 415.0, 409.0, 402.0, 418.0, 425.0,
];
const SAME: [f64; 10] = [
    181.0, 176.0, 180.0, 179.0, 184.0, 178.0, 182.0, 177.0, 175.0, 183.0,
];

async fn judge(
    flow: &Flow,
    deployment: &str,
    name: &str,
    config: risk::JudgeConfig,
    samples: Vec<risk::MetricSamples>,
) -> risk::CanaryJudgement {
    RiskValidationServiceClient::new(authed(&flow.node, "rita", &["release-manager"], UNIT).await)
        .judge_canary(risk::JudgeCanaryRequest {
            deployment_id: deployment.into(),
            analysis: "canary-judge".into(),
            release: name.into(),
            environment: "dev".into(),
            business_unit: UNIT.into(),
            config: Some(config),
            samples,
            prometheus: vec![],
        })
        .await
        .expect("judge")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_canary_judgement_decides_the_analysis_step() {
    let mut flow = Flow::start().await;
    set_up(&mut flow).await;

    // p99 latency more than doubled on a critical metric: Fail, rolled back.
    let d = at_analysis(&mut flow, "payments-2.0.1").await;
    let j = judge(
        &flow,
        &d,
        "payments-2.0.1",
        risk::JudgeConfig {
            metrics: vec![metric("latency_p99", true)],
            ..Default::default()
        },
        vec![samples("latency_p99", &SLOW, &BASELINE)],
    )
    .await;
    assert_eq!(j.label, risk::JudgementLabel::Fail as i32, "{j:#?}");
    assert_eq!(j.score, 0.0);
    let m = &j.metrics[0];
    assert_eq!(m.label, risk::MetricLabel::High as i32);
    assert!(
        m.critical_failure && m.lower > 0.0 && m.estimate > 200.0,
        "{m:#?}"
    );
    let done = flow.finished(&d).await;
    assert_eq!(
        done.status,
        pb::DeploymentStatus::RolledBack as i32,
        "{done:#?}"
    );
    assert!(done.reason.contains("canary judgement"), "{}", done.reason);

    // The same latency as the baseline: Pass, and the canary is promoted. A passing judgement
    // that names another release for the deployment is not taken first.
    let d = at_analysis(&mut flow, "payments-2.0.2").await;
    let stray = judge(
        &flow,
        &d,
        "payments-9.9.9",
        risk::JudgeConfig {
            metrics: vec![metric("latency_p99", true)],
            ..Default::default()
        },
        vec![samples("latency_p99", &SAME, &BASELINE)],
    )
    .await;
    assert_eq!(stray.label, risk::JudgementLabel::Pass as i32);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let still = flow.until(&d, "still at its analysis", |_| true).await;
    assert!(
        waiting_at(&still).is_some_and(|s| s.kind == "analysis"),
        "a judgement of another release passed the step: {still:#?}"
    );
    let j = judge(
        &flow,
        &d,
        "payments-2.0.2",
        risk::JudgeConfig {
            metrics: vec![metric("latency_p99", true)],
            ..Default::default()
        },
        vec![samples("latency_p99", &SAME, &BASELINE)],
    )
    .await;
    assert_eq!(j.label, risk::JudgementLabel::Pass as i32, "{j:#?}");
    let done = flow.finished(&d).await;
    assert_eq!(
        done.status,
        pb::DeploymentStatus::Succeeded as i32,
        "{done:#?}"
    );

    // One of two metrics worse (not critical): 50 of 100, marginal. The deployment pauses for
    // a person; the judgement is not a pass.
    let d = at_analysis(&mut flow, "payments-2.0.3").await;
    let j = judge(
        &flow,
        &d,
        "payments-2.0.3",
        risk::JudgeConfig {
            metrics: vec![metric("latency_p99", false), metric("latency_p50", false)],
            ..Default::default()
        },
        vec![
            samples("latency_p99", &SLOW, &BASELINE),
            samples("latency_p50", &SAME, &BASELINE),
        ],
    )
    .await;
    assert_eq!(j.label, risk::JudgementLabel::Marginal as i32, "{j:#?}");
    assert_eq!(j.score, 50.0);
    let paused = flow
        .until(&d, "paused", |d| {
            d.status == pb::DeploymentStatus::Paused as i32
        })
        .await;
    assert!(paused.reason.contains("inconclusive"), "{}", paused.reason);

    // Bad input is refused with the field named, and records nothing.
    let mut client = RiskValidationServiceClient::new(
        authed(&flow.node, "rita", &["release-manager"], UNIT).await,
    );
    let e = client
        .judge_canary(risk::JudgeCanaryRequest {
            deployment_id: d.clone(),
            analysis: "canary-judge".into(),
            release: "payments-2.0.3".into(),
            environment: "dev".into(),
            business_unit: UNIT.into(),
            config: Some(risk::JudgeConfig {
                metrics: vec![metric("latency_p99", false)],
                ..Default::default()
            }),
            samples: vec![samples("error_rate", &[0.1], &[0.0])],
            prometheus: vec![],
        })
        .await
        .expect_err("an unknown metric");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(e.message().contains("samples[0]"), "{}", e.message());
    let e = RiskValidationServiceClient::new(authed(&flow.node, "dev", &["developer"], UNIT).await)
        .judge_canary(risk::JudgeCanaryRequest::default())
        .await
        .expect_err("developers do not judge canaries");
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{}", e.message());
    flow.node.stop().await.expect("stop");
}

/// Samples named by PromQL: risk-validation reads the canary's and the baseline's series from
/// the test Prometheus over the range, judges them, and keeps the queries with the judgement.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canary_samples_are_read_from_prometheus_ranges() {
    let label = format!("canary-{}", uuid::Uuid::now_v7().simple());
    let _exporter = Exporter::start(
        &label,
        "latency_ms{variant=\"canary\"} 412\nlatency_ms{variant=\"baseline\"} 180\n",
    )
    .await;
    let mut section = toml::Table::new();
    section.insert("prometheus_url".into(), prometheus_url().into());
    let mut sections = toml::Table::new();
    sections.insert("risk_validation".into(), toml::Value::Table(section));
    let flow = Flow::start_with(sections).await;
    let mut risk =
        RiskValidationServiceClient::new(authed(&flow.node, "sre", &["service-owner"], UNIT).await);
    let range = |start: std::time::SystemTime, end: std::time::SystemTime| risk::PrometheusRange {
        name: "latency_ms".into(),
        experiment_query: format!("latency_ms{{flotilla_test=\"{label}\",variant=\"canary\"}}"),
        control_query: format!("latency_ms{{flotilla_test=\"{label}\",variant=\"baseline\"}}"),
        start: Some(start.into()),
        end: Some(end.into()),
        step_seconds: 1,
    };
    let request = |ranges: Vec<risk::PrometheusRange>| risk::JudgeCanaryRequest {
        deployment_id: "0190d5a2-7b3c-7d4e-8f10-aa11bb22cc33".into(),
        analysis: "canary-judge".into(),
        release: "payments-2.0.0".into(),
        environment: "dev".into(),
        business_unit: UNIT.into(),
        config: Some(risk::JudgeConfig {
            metrics: vec![risk::MetricConfig {
                name: "latency_ms".into(),
                direction: risk::Direction::Increase as i32,
                critical: true,
                must_have_data: true,
                ..Default::default()
            }],
            ..Default::default()
        }),
        samples: vec![],
        prometheus: ranges,
    };
    // Wait for Prometheus to have scraped some seconds of both series.
    let began = std::time::SystemTime::now() - std::time::Duration::from_secs(1);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let judged = loop {
        let now = std::time::SystemTime::now();
        let j = risk
            .judge_canary(request(vec![range(began, now)]))
            .await
            .expect("judged")
            .into_inner();
        let m = &j.metrics[0];
        if m.experiment_count >= 3 && m.control_count >= 3 {
            break j;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no samples from prometheus: {j:?}"
        );
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    };
    assert_eq!(
        judged.label,
        risk::JudgementLabel::Fail as i32,
        "{judged:?}"
    );
    assert_eq!(judged.metrics[0].label, risk::MetricLabel::High as i32);
    assert_eq!(judged.sources.len(), 1);
    assert!(
        judged.sources[0]
            .experiment_query
            .contains("variant=\"canary\"")
    );
    // Each expression must answer one series; a range upside down is refused.
    let mut both = range(began, std::time::SystemTime::now());
    both.experiment_query = format!("latency_ms{{flotilla_test=\"{label}\"}}");
    let s = risk
        .judge_canary(request(vec![both]))
        .await
        .expect_err("two series");
    assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
    assert!(s.message().contains("answers 2 series"), "{}", s.message());
    let now = std::time::SystemTime::now();
    let s = risk
        .judge_canary(request(vec![range(now, began)]))
        .await
        .expect_err("upside down");
    assert_eq!(s.code(), tonic::Code::InvalidArgument, "{s:?}");
    drop(risk);
    flow.node.stop().await.expect("stop");
}

/// Without `[risk_validation] prometheus_url`, samples named by PromQL are refused, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn canary_samples_by_promql_need_prometheus_configured() {
    let flow = Flow::start().await;
    let mut risk =
        RiskValidationServiceClient::new(authed(&flow.node, "sre", &["service-owner"], UNIT).await);
    let now = std::time::SystemTime::now();
    let s = risk
        .judge_canary(risk::JudgeCanaryRequest {
            deployment_id: "d".into(),
            analysis: "canary-judge".into(),
            release: "r".into(),
            environment: "dev".into(),
            business_unit: UNIT.into(),
            config: Some(risk::JudgeConfig {
                metrics: vec![risk::MetricConfig {
                    name: "latency_ms".into(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            samples: vec![],
            prometheus: vec![risk::PrometheusRange {
                name: "latency_ms".into(),
                experiment_query: "up".into(),
                control_query: "up".into(),
                start: Some((now - std::time::Duration::from_secs(60)).into()),
                end: Some(now.into()),
                step_seconds: 1,
            }],
        })
        .await
        .expect_err("not configured");
    assert_eq!(s.code(), tonic::Code::FailedPrecondition);
    assert!(
        s.message().contains("prometheus_url is not set"),
        "{}",
        s.message()
    );
    drop(risk);
    flow.node.stop().await.expect("stop");
}
