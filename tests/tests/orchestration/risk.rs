//! Risk-validation on the bus between orchestration and governance: a plan is assessed for
//! every environment of the path (governance's requests carry the score and tier), an FMEA's
//! open required action shuts governance's gate until it is closed, an environment that
//! requires a validation kind holds the release until one passed, and new weights reassess
//! the release (governance's approvals start over on the new facts).

use std::time::Duration;

use crate::flow::*;
use flotilla_proto::governance::v1 as gov;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::orchestration::v1 as pb;
use flotilla_proto::risk::v1 as risk;
use flotilla_proto::risk::v1::risk_validation_service_client::RiskValidationServiceClient;
use tonic::Code;

const NAME: &str = "payments-3.0.0";

async fn risk_client(
    flow: &Flow,
    who: &str,
    roles: &[&str],
) -> RiskValidationServiceClient<Authed> {
    RiskValidationServiceClient::new(authed(&flow.node, who, roles, UNIT).await)
}

/// Waits until `check` holds for the gate's answer for the release entering `env`.
async fn gate_until(
    flow: &Flow,
    env: &str,
    what: &str,
    check: impl Fn(&gov::GateDecision) -> bool,
) {
    let mut g =
        GovernanceServiceClient::new(authed(&flow.node, "rita", &["release-manager"], UNIT).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let d = g
            .check_gate(gov::CheckGateRequest {
                release: NAME.into(),
                environment: env.into(),
                ..Default::default()
            })
            .await
            .expect("gate")
            .into_inner();
        if check(&d) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the gate never came to {what}: {d:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn promote(flow: &mut Flow, env: &str) -> Result<pb::Deployment, tonic::Status> {
    flow.orch
        .promote_release(pb::PromoteReleaseRequest {
            release: NAME.into(),
            environment: env.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_planned_release_is_assessed_held_by_its_fmea_and_validations_and_reassessed() {
    let mut flow = Flow::start().await;
    let services = ["payments-ledger", "payments-api", "payments-web"];
    catalog(
        &flow,
        UNIT,
        &services,
        &[
            ("payments-api", "payments-ledger"),
            ("payments-web", "payments-api"),
        ],
    )
    .await;
    policy(&flow).await;
    artifacts(&mut flow, &services, "2.0.0").await;
    // dev requires a performance validation before a release leaves it.
    environments(
        &mut flow,
        UNIT,
        vec![
            pb::EnvironmentSpec {
                checks: vec!["performance".into()],
                ..env("dev")
            },
            env("prod"),
        ],
    )
    .await;
    let mut ledger = item("payments-ledger", "2.0.0");
    ledger.migrations = vec![pb::Migration {
        name: "drop-legacy-column".into(),
        forward: "ALTER TABLE entries DROP COLUMN legacy".into(),
        rollback: "ALTER TABLE entries ADD COLUMN legacy text".into(),
    }];
    planned(&mut flow, NAME, vec![ledger]).await;

    // Assessed for both environments from orchestration's plan, every factor explained.
    let mut rita = risk_client(&flow, "rita", &["release-manager"]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let assessments = loop {
        let a = rita
            .get_risk_assessments(risk::GetRiskAssessmentsRequest {
                release: NAME.into(),
                environment: String::new(),
            })
            .await
            .map(|r| r.into_inner().assessments);
        if let Ok(a) = &a
            && a.len() == 2
        {
            break a.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not assessed: {a:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let dev = &assessments[0];
    assert_eq!(
        (
            dev.environment.as_str(),
            dev.service.as_str(),
            dev.criticality_tier
        ),
        ("dev", "payments-ledger", 3)
    );
    assert_eq!(dev.author, "rita", "the release's creator is its author");
    let points: f64 = dev.factors.iter().map(|f| f.points).sum();
    assert_eq!(points.round() as u32, dev.risk_score, "{:#?}", dev.factors);
    let factor = |name: &str| {
        dev.factors
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert_eq!(factor("schema_changes").value, 1.0);
    assert_eq!(factor("migrations").value, 1.0);
    assert!(
        factor("blast_radius").explanation.contains("payments-api"),
        "the impact analysis reaches the ledger's consumers: {}",
        factor("blast_radius").explanation
    );
    // Governance opened the request from it: the assessed score and tier.
    let request = approve_in(&flow, UNIT, NAME, "dev").await;
    let facts = request.release.expect("facts");
    assert_eq!(
        (facts.risk_score, facts.criticality_tier),
        (dev.risk_score, 3)
    );

    // An FMEA with a mode at the threshold: the gate is shut until its action is closed.
    let mode = |action: &str| risk::FailureMode {
        name: "ledger double-posts".into(),
        effect: "balances are wrong".into(),
        severity: 9,
        occurrence: 4,
        detection: 3,
        action: action.into(),
        action_owner: "sam".into(),
        ..Default::default()
    };
    // The release's author does not judge its failure modes: security records the FMEA.
    let by_author = rita
        .record_fmea(risk::RecordFmeaRequest {
            release: NAME.into(),
            modes: vec![mode("idempotent postings")],
        })
        .await
        .expect_err("the author");
    assert_eq!(by_author.code(), Code::PermissionDenied, "{by_author:?}");
    let mut quinn = risk_client(&flow, "quinn", &["security"]).await;
    let refused = quinn
        .record_fmea(risk::RecordFmeaRequest {
            release: NAME.into(),
            modes: vec![risk::FailureMode {
                action_owner: String::new(),
                ..mode("")
            }],
        })
        .await
        .expect_err("a required action is missing");
    assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
    let fmea = quinn
        .record_fmea(risk::RecordFmeaRequest {
            release: NAME.into(),
            modes: vec![mode("idempotent postings")],
        })
        .await
        .expect("fmea")
        .into_inner();
    assert_eq!((fmea.highest_rpn, fmea.open_actions.len()), (108, 1));
    gate_until(&flow, "dev", "the FMEA's open action", |d| {
        d.reasons
            .iter()
            .any(|r| r.kind == gov::GateReasonKind::FmeaActionOpen as i32)
    })
    .await;
    // The RPN counts in the score: reassessed, governance's request follows (approvals again).
    approve_in(&flow, UNIT, NAME, "dev").await;
    let s = promote(&mut flow, "dev").await.expect_err("fmea open");
    assert_eq!(s.code(), Code::FailedPrecondition);
    assert!(
        s.message()
            .contains("required action of ledger double-posts open"),
        "{}",
        s.message()
    );
    let mut sam = risk_client(&flow, "sam", &["service-owner"]).await;
    sam.close_fmea_action(risk::CloseFmeaActionRequest {
        release: NAME.into(),
        failure_mode: "ledger double-posts".into(),
        evidence: "https://ci.example.com/payments/runs/118".into(),
    })
    .await
    .expect("closed");
    gate_until(&flow, "dev", "open", |d| d.allowed).await;
    let d = promote(&mut flow, "dev").await.expect("promote");
    let done = flow.finished(&d.deployment_id).await;
    assert_eq!(done.status, pb::DeploymentStatus::Succeeded as i32);

    // dev requires a passed performance validation before the release leaves it.
    approve_in(&flow, UNIT, NAME, "prod").await;
    let s = promote(&mut flow, "prod").await.expect_err("not validated");
    assert!(
        s.message()
            .contains("check performance has not been recorded"),
        "{}",
        s.message()
    );
    let perf = |p99: f64| risk::PerformanceEvidence {
        baseline_p95_ms: 120.0,
        measured_p95_ms: 118.0,
        baseline_p99_ms: 300.0,
        measured_p99_ms: p99,
        baseline_throughput_rps: 800.0,
        measured_throughput_rps: 810.0,
        baseline_error_rate: 0.001,
        measured_error_rate: 0.001,
        latency_tolerance_percent: 10.0,
        throughput_tolerance_percent: 5.0,
        error_rate_tolerance: 0.002,
    };
    let v = sam
        .record_validation(risk::RecordValidationRequest {
            release: NAME.into(),
            environment: "dev".into(),
            evidence: Some(risk::record_validation_request::Evidence::Performance(
                perf(390.0),
            )),
            evidence_refs: vec!["https://k6.example.com/run/41".into()],
        })
        .await
        .expect("recorded")
        .into_inner();
    assert!(!v.passed);
    assert!(
        v.failures[0].starts_with("p99 390 ms is above the baseline 300 ms + 10%"),
        "{:?}",
        v.failures
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let s = promote(&mut flow, "prod")
            .await
            .expect_err("failed validation");
        if s.message().contains("check performance failed") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{}", s.message());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sam.record_validation(risk::RecordValidationRequest {
        release: NAME.into(),
        environment: "dev".into(),
        evidence: Some(risk::record_validation_request::Evidence::Performance(
            perf(305.0),
        )),
        evidence_refs: vec![],
    })
    .await
    .expect("recorded");

    // New weights (the tier counts alone) reassess prod: governance's
    // request is superseded with the new score and its approvals start over.
    let mut admin = RiskValidationServiceClient::new(flow.admin().await);
    let before = current_assessment(&flow, UNIT, NAME, "prod")
        .await
        .expect("prod");
    admin
        .set_risk_weights(risk::SetRiskWeightsRequest {
            weights: Some(risk::RiskWeights {
                criticality_tier: 1,
                ..Default::default()
            }),
        })
        .await
        .expect("weights");
    let after = current_assessment(&flow, UNIT, NAME, "prod")
        .await
        .expect("prod");
    assert_eq!(after.supersedes, before.assessment_id);
    assert_eq!((after.risk_score, after.weights_version), (33, 1));
    assert!(
        current_assessment(&flow, UNIT, NAME, "dev")
            .await
            .expect("dev")
            .weights_version
            == 0,
        "dev, reached, is not assessed again"
    );
    // Governance takes the new assessment from the bus: its request for prod is superseded.
    let mut g =
        GovernanceServiceClient::new(authed(&flow.node, "rita", &["release-manager"], UNIT).await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = g
            .get_approval_request(gov::GetApprovalRequestRequest {
                release: NAME.into(),
                environment: "prod".into(),
            })
            .await
            .expect("request")
            .into_inner();
        if r.release.as_ref().is_some_and(|f| f.risk_score == 33) {
            assert!(r.approvals.is_empty(), "approvals start over: {r:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = loop {
        match promote(&mut flow, "prod").await {
            Err(s) if s.message().contains("check performance") => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other.expect_err("approvals start over"),
        }
    };
    assert!(
        s.message()
            .contains("service-owner needs 1 approval(s), has 0"),
        "{}",
        s.message()
    );
    approve_in(&flow, UNIT, NAME, "prod").await;
    let d = promote(&mut flow, "prod").await.expect("promote into prod");
    let done = flow.finished(&d.deployment_id).await;
    assert_eq!(done.status, pb::DeploymentStatus::Succeeded as i32);
    drop((rita, sam, admin, quinn));
    flow.node.stop().await.expect("stop");
}
