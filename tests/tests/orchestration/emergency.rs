//! An emergency release: out of cycle, planned (impact analysis) first, its flag carried to
//! governance's gate with every promotion, and refused in a freeze like any other release
//! unless a deviation covers it.

use crate::flow::*;
use flotilla_proto::governance::v1 as gv;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::orchestration::v1 as pb;
use tonic::Code;

const NAME: &str = "payments-2.0.1";

async fn promote(
    flow: &mut Flow,
    release: &str,
) -> Result<tonic::Response<pb::Deployment>, tonic::Status> {
    flow.orch
        .promote_release(pb::PromoteReleaseRequest {
            release: release.into(),
            environment: "dev".into(),
        })
        .await
}

/// An emergency release of the ledger, created and planned (its impact analysed); answers the
/// plan's impact set.
async fn emergency_release(flow: &mut Flow, name: &str) -> Vec<String> {
    let created = flow
        .orch
        .create_release(pb::CreateReleaseRequest {
            name: name.into(),
            business_unit: UNIT.into(),
            emergency: true,
            items: vec![item("payments-ledger", "2.0.0")],
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner();
    assert!(created.emergency);
    // Impact analysis first: an unplanned release is not promoted, emergency or not.
    refused(
        promote(flow, name).await,
        Code::FailedPrecondition,
        &["plan"],
    );
    let planned = flow
        .orch
        .plan_release(pb::PlanReleaseRequest {
            release: name.into(),
        })
        .await
        .expect("plan")
        .into_inner();
    planned.plan.map(|p| p.impact).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_emergency_release_meets_freezes_unless_a_deviation_covers_it() {
    let mut flow = Flow::start().await;
    set_up(&mut flow).await;
    let impact = emergency_release(&mut flow, NAME).await;
    assert!(
        impact.iter().any(|s| s == "payments-api"),
        "the ledger's consumers are in the impact set: {impact:?}"
    );

    let now = std::time::SystemTime::now();
    let mut manager =
        GovernanceServiceClient::new(authed(&flow.node, "rita", &["release-manager"], UNIT).await);
    manager
        .create_freeze_window(gv::CreateFreezeWindowRequest {
            window: Some(gv::FreezeWindow {
                name: "payments month-end".into(),
                kind: gv::WindowKind::Freeze as i32,
                scope: Some(gv::WindowScope {
                    business_units: vec![UNIT.into()],
                    environments: vec!["dev".into()],
                    tiers: vec![],
                }),
                schedule: Some(gv::freeze_window::Schedule::Once(gv::OnceSchedule {
                    start: Some((now - std::time::Duration::from_secs(60)).into()),
                    end: Some((now + std::time::Duration::from_secs(3600)).into()),
                })),
                reason: "month-end close".into(),
                business_unit: UNIT.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("freeze");

    // Risk-validation's assessment carries the flag, so governance's request is opened as an
    // emergency (a request opened as a normal change is refused by the gate told otherwise:
    // governance's own tests). Approved, it is still refused in the freeze, and told how to
    // pass it.
    let name = NAME;
    let request = approve_in(&flow, UNIT, name, "dev").await;
    assert!(request.emergency, "{request:?}");
    let facts = request.release.expect("facts");
    assert_eq!(facts.service, "payments-ledger");
    let before = flow.head().await;
    let s = promote(&mut flow, name).await.expect_err("frozen");
    assert_eq!(s.code(), Code::FailedPrecondition, "{}", s.message());
    assert!(
        s.message().contains("only with an approved deviation")
            && !s.message().contains("where it is moved"),
        "{}",
        s.message()
    );
    assert_eq!(flow.head().await, before, "refusals record nothing");

    // A deviation for the freeze, requested by the service owner, approved by the manager.
    let mut owner =
        GovernanceServiceClient::new(authed(&flow.node, "sam", &["service-owner"], UNIT).await);
    let deviation = owner
        .request_deviation(gv::RequestDeviationRequest {
            deviation: Some(gv::Deviation {
                rule: gv::GateRule::FreezeWindow as i32,
                release: name.into(),
                environment: "dev".into(),
                business_unit: UNIT.into(),
                justification: "ledger double-posts refunds".into(),
                compensating_controls: vec!["incident bridge open".into()],
                expires_at: Some((now + std::time::Duration::from_secs(1800)).into()),
                requester_role: "service-owner".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("request deviation")
        .into_inner();
    manager
        .approve_deviation(gv::DecideDeviationRequest {
            deviation_id: deviation.deviation_id.clone(),
            role: "release-manager".into(),
            comment: "go".into(),
        })
        .await
        .expect("approve deviation");
    let d = promote(&mut flow, name)
        .await
        .expect("the deviation covers the freeze")
        .into_inner();
    assert!(d.emergency, "the deployment carries the flag");
    let done = flow.finished(&d.deployment_id).await;
    assert_eq!(
        done.status,
        pb::DeploymentStatus::Succeeded as i32,
        "{done:#?}"
    );
    // Open channels would hold the node's graceful stop until they time out.
    drop((manager, owner));
    flow.node.stop().await.expect("stop");
}
