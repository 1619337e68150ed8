//! Blue-green and canary in Argo Rollouts' terms, and two units' releases on one shared
//! database cluster.

use flotilla_proto::orchestration::v1 as pb;
use tonic::Code;

use crate::flow::*;

fn blue_green(pre: &str, post: &str) -> pb::Strategy {
    pb::Strategy {
        kind: Some(pb::strategy::Kind::BlueGreen(pb::BlueGreenStrategy {
            pre_promotion_analysis: pre.into(),
            post_promotion_analysis: post.into(),
            scale_down_delay_seconds: 1,
            session_drain_seconds: 1,
        })),
    }
}

fn canary(steps: Vec<pb::canary_step::Step>) -> pb::Strategy {
    pb::Strategy {
        kind: Some(pb::strategy::Kind::Canary(pb::CanaryStrategy {
            steps: steps
                .into_iter()
                .map(|s| pb::CanaryStep { step: Some(s) })
                .collect(),
        })),
    }
}

async fn analysis(
    flow: &mut Flow,
    deployment: &str,
    name: &str,
    verdict: pb::Verdict,
) -> Result<pb::Deployment, tonic::Status> {
    flow.orch
        .record_analysis(pb::RecordAnalysisRequest {
            deployment_id: deployment.into(),
            analysis: name.into(),
            verdict: verdict as i32,
            detail: "judged by the test".into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Blue-green and canary in Argo Rollouts' terms, and two units' releases on one shared database
/// cluster that takes one deployment at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blue_green_canary_and_shared_capacity() {
    let mut flow = Flow::start().await;
    policy(&flow).await;
    catalog(&flow, "payments", &["payments-api"], &[]).await;
    catalog(&flow, "cards", &["cards-api"], &[]).await;
    artifacts(&mut flow, &["payments-api", "cards-api"], "2.0.0").await;
    let admin = flow.admin().await;
    flotilla_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient::new(admin)
        .define_shared_infrastructure(pb::DefineSharedInfrastructureRequest {
            infrastructure: Some(pb::SharedInfrastructure { name: "pg-shared".into(), capacity: 1 }),
        })
        .await
        .expect("shared infrastructure");
    let on_shared = |name: &str| pb::EnvironmentSpec {
        shared: vec!["pg-shared".into()],
        ..env(name)
    };
    environments(&mut flow, "payments", vec![on_shared("dev")]).await;
    let cards_manager =
        crate::flow::authed(&flow.node, "carl", &["release-manager"], "cards").await;
    let mut cards =
        pb::orchestration_service_client::OrchestrationServiceClient::new(cards_manager);
    // The cards unit's manager defines the cards environment (the payments manager may not).
    refused(
        flow.orch
            .define_environment(pb::DefineEnvironmentRequest {
                spec: Some(pb::EnvironmentSpec {
                    business_unit: "cards".into(),
                    ..on_shared("dev")
                }),
            })
            .await,
        Code::PermissionDenied,
        &[],
    );
    std::mem::swap(&mut flow.orch, &mut cards);
    environments(&mut flow, "cards", vec![on_shared("dev")]).await;
    std::mem::swap(&mut flow.orch, &mut cards);

    let mut bg = item("payments-api", "2.0.0");
    bg.strategy = Some(blue_green("preview-smoke", "active-smoke"));
    flow.orch
        .create_release(pb::CreateReleaseRequest {
            name: "payments-2.0.0".into(),
            business_unit: "payments".into(),
            items: vec![bg],
            ..Default::default()
        })
        .await
        .expect("create");
    flow.orch
        .plan_release(pb::PlanReleaseRequest {
            release: "payments-2.0.0".into(),
        })
        .await
        .expect("plan");
    approve_in(&flow, "payments", "payments-2.0.0", "dev").await;
    let bg = flow
        .orch
        .promote_release(pb::PromoteReleaseRequest {
            release: "payments-2.0.0".into(),
            environment: "dev".into(),
        })
        .await
        .expect("promote")
        .into_inner();
    let kinds: Vec<&str> = bg.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "deploy-preview",
            "analysis",
            "wait",
            "deploy-switch",
            "analysis",
            "wait",
            "deploy-scale-down-old"
        ],
        "blue-green in Argo Rollouts' order"
    );
    let id = bg.deployment_id.clone();
    let at = flow
        .until(&id, "the pre-promotion analysis", |d| {
            waiting_at(d).is_some_and(|s| s.kind == "analysis")
        })
        .await;
    assert_eq!(
        waiting_at(&at).map(|s| s.detail.as_str()),
        Some("preview-smoke")
    );

    // The cards release wants the same cluster while payments holds it.
    let mut cards_item = item("cards-api", "2.0.0");
    cards_item.strategy = Some(canary(vec![
        pb::canary_step::Step::SetWeight(20),
        pb::canary_step::Step::Pause(pb::Pause {
            duration_seconds: 0,
            indefinite: true,
        }),
        pb::canary_step::Step::Analysis("canary-judge".into()),
        pb::canary_step::Step::SetWeight(50),
        pb::canary_step::Step::Pause(pb::Pause {
            duration_seconds: 1,
            indefinite: false,
        }),
    ]));
    cards
        .create_release(pb::CreateReleaseRequest {
            name: "cards-2.0.0".into(),
            business_unit: "cards".into(),
            items: vec![cards_item],
            ..Default::default()
        })
        .await
        .expect("create cards");
    cards
        .plan_release(pb::PlanReleaseRequest {
            release: "cards-2.0.0".into(),
        })
        .await
        .expect("plan cards");
    approve_in(&flow, "cards", "cards-2.0.0", "dev").await;
    let into_dev = pb::PromoteReleaseRequest {
        release: "cards-2.0.0".into(),
        environment: "dev".into(),
    };
    refused(
        cards.promote_release(into_dev.clone()).await,
        Code::FailedPrecondition,
        &[
            "CapacityConflict",
            "pg-shared",
            "release payments-2.0.0 of payments",
            "cards-2.0.0",
        ],
    );
    // The payments manager cannot see the cards release at all.
    refused(
        flow.orch
            .get_release(pb::GetReleaseRequest {
                release: "cards-2.0.0".into(),
            })
            .await,
        Code::NotFound,
        &[],
    );

    // Inconclusive is never a pass: the deployment pauses for a person.
    let paused = analysis(&mut flow, &id, "preview-smoke", pb::Verdict::Inconclusive)
        .await
        .expect("inconclusive");
    assert_eq!(
        paused.status,
        pb::DeploymentStatus::Paused as i32,
        "{paused:#?}"
    );
    assert!(
        paused.steps[1].outcome.is_none(),
        "the analysis step did not pass"
    );
    refused(
        analysis(&mut flow, &id, "preview-smoke", pb::Verdict::Passed)
            .await
            .map(tonic::Response::new),
        Code::FailedPrecondition,
        &["inconclusive", "a person"],
    );
    let before_switch = flow
        .log()
        .iter()
        .filter(|l| l.starts_with("deploy-switch"))
        .count();
    assert_eq!(before_switch, 0, "nothing switched while paused");
    flow.orch
        .resume_deployment(pb::ResumeDeploymentRequest {
            deployment_id: id.clone(),
        })
        .await
        .expect("resume");
    flow.until(&id, "the post-promotion analysis", |d| {
        waiting_at(d).is_some_and(|s| s.kind == "analysis" && s.detail == "active-smoke")
    })
    .await;
    analysis(&mut flow, &id, "active-smoke", pb::Verdict::Passed)
        .await
        .expect("passed");
    let done = flow.finished(&id).await;
    assert_eq!(
        done.status,
        pb::DeploymentStatus::Succeeded as i32,
        "{done:#?}"
    );
    let phases: Vec<String> = flow
        .log()
        .iter()
        .map(|l| l.split(' ').next().unwrap_or("").to_owned())
        .collect();
    assert_eq!(
        phases,
        ["deploy-preview", "deploy-switch", "deploy-scale-down-old"]
    );
    let waits: Vec<&str> = done
        .steps
        .iter()
        .filter(|s| s.kind == "wait")
        .map(|s| s.detail.as_str())
        .collect();
    assert!(
        waits.iter().any(|w| w.contains("sticky sessions"))
            && waits.iter().any(|w| w.contains("scaleDownDelaySeconds")),
        "{waits:?}"
    );

    // The two units' dev environments, key by key.
    let admin = flow.admin().await;
    let mut admin = pb::orchestration_service_client::OrchestrationServiceClient::new(admin);
    for (unit, kafka) in [("payments", "3.7"), ("cards", "3.6")] {
        admin
            .report_configuration(pb::ReportConfigurationRequest {
                business_unit: unit.into(),
                environment: "dev".into(),
                actual: [
                    ("kafka".to_owned(), kafka.to_owned()),
                    ("tls".to_owned(), "1.3".to_owned()),
                ]
                .into_iter()
                .collect(),
            })
            .await
            .expect("report");
    }
    let parity = admin
        .get_parity(pb::GetParityRequest {
            business_unit: "payments".into(),
            environment: "dev".into(),
            other_business_unit: "cards".into(),
            other_environment: "dev".into(),
        })
        .await
        .expect("parity")
        .into_inner();
    let diffs: Vec<(&str, &str, &str)> = parity
        .differences
        .iter()
        .map(|d| (d.key.as_str(), d.desired.as_str(), d.actual.as_str()))
        .collect();
    assert_eq!(diffs, [("kafka", "3.7", "3.6")]);
    // A unit's people see only their unit's environments.
    refused(
        flow.orch
            .get_parity(pb::GetParityRequest {
                business_unit: "payments".into(),
                environment: "dev".into(),
                other_business_unit: "cards".into(),
                other_environment: "dev".into(),
            })
            .await,
        Code::NotFound,
        &[],
    );

    // The cluster is free again: the canary goes ahead, is held for a person, then fails its
    // judgement and is rolled back.
    let c = cards
        .promote_release(into_dev)
        .await
        .expect("promote cards")
        .into_inner();
    let cid = c.deployment_id.clone();
    std::mem::swap(&mut flow.orch, &mut cards);
    let held = flow
        .until(&cid, "the indefinite pause", |d| {
            waiting_at(d).is_some_and(|s| s.kind == "hold")
        })
        .await;
    assert_eq!(held.steps[0].kind, "deploy-set-weight-20");
    refused(
        analysis(&mut flow, &cid, "canary-judge", pb::Verdict::Passed)
            .await
            .map(tonic::Response::new),
        Code::FailedPrecondition,
        &["not waiting for analysis"],
    );
    flow.orch
        .resume_deployment(pb::ResumeDeploymentRequest {
            deployment_id: cid.clone(),
        })
        .await
        .expect("resume canary");
    flow.until(&cid, "the canary judgement", |d| {
        waiting_at(d).is_some_and(|s| s.kind == "analysis")
    })
    .await;
    analysis(&mut flow, &cid, "canary-judge", pb::Verdict::Failed)
        .await
        .expect("failed judgement");
    let done = flow.finished(&cid).await;
    std::mem::swap(&mut flow.orch, &mut cards);
    assert_eq!(
        done.status,
        pb::DeploymentStatus::RolledBack as i32,
        "{done:#?}"
    );
    let log = flow.log();
    let cards_log: Vec<&str> = log
        .iter()
        .filter(|l| l.contains("cards-api"))
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(
        cards_log,
        ["deploy-set-weight-20", "rollback-deploy"],
        "{log:#?}"
    );
    flow.node.stop().await.expect("stop");
}
