//! A release created (its name checked by governance), planned in dependency-mapping's waves,
//! refused promotion with every reason from every source at once, promoted through the command
//! executor running real scripts, and rolled back atomically, in reverse, when a step fails and
//! governance's rollback decision says so.

use flotilla_proto::governance::v1 as gv;
use flotilla_proto::orchestration::v1 as pb;
use std::time::Duration;
use tonic::Code;

use crate::flow::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_is_planned_gated_deployed_and_rolled_back_atomically() {
    let mut flow = Flow::start().await;
    set_up(&mut flow).await;

    // A name governance's rule (semantic versions) refuses.
    refused(
        flow.orch
            .create_release(pb::CreateReleaseRequest {
                name: "payments-next".into(),
                business_unit: UNIT.into(),
                items: vec![item("payments-api", "2.0.0")],
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        &["payments-next"],
    );

    let name = "payments-2.0.0";
    let release = flow
        .orch
        .create_release(pb::CreateReleaseRequest {
            name: name.into(),
            business_unit: UNIT.into(),
            items: ["payments-web", "payments-api", "payments-ledger"]
                .into_iter()
                .map(|s| item(s, ""))
                .collect(),
            ..Default::default()
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(release.items.len(), 3);
    assert!(
        release.items.iter().all(|i| i.version == "2.0.0"),
        "the newest artifacts fill the release"
    );

    // Promoting before planning, and rolling back what never ran, change nothing.
    let promote = |env: &str| pb::PromoteReleaseRequest {
        release: name.into(),
        environment: env.into(),
    };
    let before_refusals = flow.head().await;
    refused(
        flow.orch.promote_release(promote("dev")).await,
        Code::FailedPrecondition,
        &["not planned"],
    );
    refused(
        flow.orch
            .rollback_release(pb::RollbackReleaseRequest {
                release: name.into(),
                reason: String::new(),
            })
            .await,
        Code::FailedPrecondition,
        &[],
    );

    assert_eq!(
        flow.head().await,
        before_refusals,
        "refused commands appended nothing"
    );
    let planned = flow
        .orch
        .plan_release(pb::PlanReleaseRequest {
            release: name.into(),
        })
        .await
        .expect("plan")
        .into_inner();
    let waves: Vec<Vec<String>> = planned
        .plan
        .expect("a plan")
        .waves
        .into_iter()
        .map(|w| w.services.into_iter().map(|s| s.service).collect())
        .collect();
    assert_eq!(
        waves,
        vec![
            vec!["payments-ledger".to_owned()],
            vec!["payments-api".into()],
            vec!["payments-web".into()]
        ],
        "providers go first"
    );

    let before_refusals = flow.head().await;
    refused(
        flow.orch.promote_release(promote("staging")).await,
        Code::FailedPrecondition,
        &["skip", "dev first"],
    );
    // Not approved for dev yet (risk-validation's assessment may or may not have opened the
    // request by now): governance's reason comes back.
    let s = flow
        .orch
        .promote_release(promote("dev"))
        .await
        .expect_err("not approved");
    assert_eq!(s.code(), Code::FailedPrecondition, "{s:?}");
    assert!(
        s.message().contains("governance: ")
            && (s.message().contains("no approval request")
                || s.message()
                    .contains("service-owner needs 1 approval(s), has 0")),
        "{}",
        s.message()
    );

    assert_eq!(
        flow.head().await,
        before_refusals,
        "refused commands appended nothing"
    );
    approve(&flow, name, "dev").await;
    let started = flow
        .orch
        .promote_release(promote("dev"))
        .await
        .expect("promote")
        .into_inner();
    // A second promotion while the first runs is refused.
    refused(
        flow.orch.promote_release(promote("dev")).await,
        Code::FailedPrecondition,
        &["being deployed"],
    );
    let done = flow.finished(&started.deployment_id).await;
    assert_eq!(
        done.status,
        pb::DeploymentStatus::Succeeded as i32,
        "{done:#?}"
    );
    let log = flow.log();
    let deployed: Vec<&str> = log.iter().filter_map(|l| l.split(' ').nth(1)).collect();
    assert_eq!(
        deployed,
        ["payments-ledger", "payments-api", "payments-web"],
        "{log:#?}"
    );
    assert!(
        log[0].starts_with("deploy-rolling payments-ledger 2.0.0 dev rolling"),
        "{}",
        log[0]
    );
    assert!(
        log[0].ends_with("oci://charts.example.com/payments-ledger"),
        "{}",
        log[0]
    );
    let step = done
        .steps
        .iter()
        .find(|s| s.service == "payments-api")
        .expect("api step");
    let outcome = step.outcome.as_ref().expect("outcome");
    assert_eq!(outcome.exit_code, Some(0));
    assert!(
        outcome
            .output_tail
            .contains("deploying payments-api to dev"),
        "{}",
        outcome.output_tail
    );
    assert!(
        log[1].contains(&step.step_id),
        "the executor got the step id"
    );

    // Leaving dev for staging: dev's check, governance and staging's data, all at once.
    refused(
        flow.orch.promote_release(promote("staging")).await,
        Code::FailedPrecondition,
        &[
            "dev: check smoke has not been recorded",
            "governance: ",
            "staging: no data refresh recorded",
        ],
    );
    refused(
        flow.orch
            .record_data_refresh(pb::RecordDataRefreshRequest {
                business_unit: UNIT.into(),
                environment: "staging".into(),
                masked: true,
                copied_at: Some(prost_types::Timestamp::from(
                    std::time::SystemTime::now() + Duration::from_secs(86_400),
                )),
                volume_percent: 80,
            })
            .await,
        Code::InvalidArgument,
        &["copied_at", "in the future"],
    );
    ready_for_staging(&mut flow, name).await;
    approve(&flow, name, "staging").await;

    // The web tier's deploy fails in staging. Governance's rollback criteria for the release's
    // tier (3: an hour, the release manager and the service owner told) hold it for a
    // decision; the release manager decides to roll back, and everything the release touched
    // there is put back, in reverse.
    flow.fail("payments-web");
    let before = flow.log().len();
    let started = flow
        .orch
        .promote_release(promote("staging"))
        .await
        .expect("promote")
        .into_inner();
    let held = flow
        .until(
            &started.deployment_id,
            "awaiting a rollback decision",
            |d| d.status == pb::DeploymentStatus::AwaitingRollbackDecision as i32,
        )
        .await;
    assert!(held.reason.contains("payments-web"), "{}", held.reason);
    assert_eq!(held.notify, ["release-manager", "service-owner"]);
    let mut governance = gv::governance_service_client::GovernanceServiceClient::new(
        authed(&flow.node, "rita", &["release-manager"], UNIT).await,
    );
    let decisions = governance
        .list_rollback_decisions(gv::ListRollbackDecisionsRequest {
            release: name.into(),
            business_unit: UNIT.into(),
        })
        .await
        .expect("decisions")
        .into_inner()
        .decisions;
    let decision = decisions
        .iter()
        .find(|d| d.decision_id == held.rollback_decision_id)
        .unwrap_or_else(|| panic!("governance holds the decision: {decisions:#?}"));
    assert_eq!(
        (
            decision.service.as_str(),
            decision.environment.as_str(),
            decision.tier
        ),
        ("payments-web", "staging", 3)
    );
    let minutes = |t: &Option<prost_types::Timestamp>| t.as_ref().map_or(0, |t| t.seconds) / 60;
    assert_eq!(
        minutes(&decision.decide_by) - minutes(&decision.opened_at),
        60
    );
    assert_eq!(
        held.decide_by.map(|t| t.seconds),
        decision.decide_by.map(|t| t.seconds)
    );
    assert_eq!(
        flow.log().len() - before,
        3,
        "nothing is put back before the decision: {:#?}",
        flow.log()
    );
    governance
        .decide_rollback(gv::DecideRollbackRequest {
            decision_id: held.rollback_decision_id.clone(),
            roll_back: true,
            comment: "web does not come up; back to 2.0.0".into(),
        })
        .await
        .expect("decide");
    let done = flow.finished(&started.deployment_id).await;
    assert!(done.reason.contains("by rita"), "{}", done.reason);
    assert_eq!(
        done.status,
        pb::DeploymentStatus::RolledBack as i32,
        "{done:#?}"
    );
    assert!(done.reason.contains("payments-web"), "{}", done.reason);
    let log = flow.log();
    let staging: Vec<String> = log[before..]
        .iter()
        .map(|l| l.split(' ').take(2).collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        staging,
        [
            "deploy-rolling payments-ledger",
            "deploy-rolling payments-api",
            "deploy-rolling payments-web",
            "rollback-deploy payments-web",
            "rollback-deploy payments-api",
            "rollback-deploy payments-ledger",
        ],
        "{log:#?}"
    );
    let release = flow
        .orch
        .get_release(pb::GetReleaseRequest {
            release: name.into(),
        })
        .await
        .expect("release")
        .into_inner();
    assert_eq!(release.status, pb::ReleaseStatus::RolledBack as i32);
    assert_eq!(release.deployed_to, ["dev"]);

    flow.node.stop().await.expect("stop");
}
