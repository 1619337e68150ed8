//! Orchestration with governance and dependency-mapping on one embedded node: a release is
//! created (its name checked by governance), planned in dependency-mapping's waves, refused
//! promotion with every reason from every source at once, promoted through the command executor
//! running real scripts, and rolled back atomically, in reverse, when a step fails.

mod flow;

use flotilla_proto::governance::v1 as gv;
use flotilla_proto::orchestration::v1 as pb;
use flow::*;
use std::time::Duration;
use tonic::Code;

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
    // No approval request for dev yet: governance's reason comes back.
    refused(
        flow.orch.promote_release(promote("dev")).await,
        Code::FailedPrecondition,
        &["governance:", "no approval request"],
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
    flow.orch
        .record_validation(pb::RecordValidationRequest {
            business_unit: UNIT.into(),
            environment: "dev".into(),
            release: name.into(),
            check: "smoke".into(),
            passed: true,
        })
        .await
        .expect("validation");
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
    flow.orch
        .record_data_refresh(pb::RecordDataRefreshRequest {
            business_unit: UNIT.into(),
            environment: "staging".into(),
            masked: true,
            copied_at: Some(prost_types::Timestamp::from(
                std::time::SystemTime::now() - Duration::from_secs(86_400),
            )),
            volume_percent: 80,
        })
        .await
        .expect("refresh");
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
    let cards_manager = flow::authed(&flow.node, "carl", &["release-manager"], "cards").await;
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

fn migration(name: &str, forward: &str, rollback: &str) -> pb::Migration {
    pb::Migration {
        name: name.into(),
        forward: forward.into(),
        rollback: rollback.into(),
    }
}

async fn columns(pool: &sqlx::PgPool, schema: &str) -> Vec<String> {
    sqlx::query_scalar::<_, String>(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'accounts' ORDER BY ordinal_position",
    )
    .bind(schema)
    .fetch_all(pool)
    .await
    .expect("columns")
}

/// Schema migrations are steps: forward scripts run with the service, in order, and a rollback
/// runs their rollback scripts in reverse — real SQL, through psql, on the test PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migrations_run_forward_and_back_on_postgres() {
    let schema = flotilla_tests::fresh_namespace();
    let pool = sqlx::PgPool::connect(&flotilla_tests::postgres_url())
        .await
        .expect("postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
        .execute(&pool)
        .await
        .expect("schema");
    let mut flow = Flow::start().await;
    flow.migrate_on(&flotilla_tests::postgres_url());
    policy(&flow).await;
    catalog(&flow, UNIT, &["payments-ledger"], &[]).await;
    artifacts(&mut flow, &["payments-ledger"], "2.0.0").await;
    artifacts(&mut flow, &["payments-ledger"], "2.1.0").await;
    environments(&mut flow, UNIT, vec![env("dev")]).await;

    let release =
        |name: &str, version: &str, migrations: Vec<pb::Migration>| pb::CreateReleaseRequest {
            name: name.into(),
            business_unit: UNIT.into(),
            items: vec![pb::RequestedItem {
                migrations,
                ..item("payments-ledger", version)
            }],
            ..Default::default()
        };
    let t = format!("\"{schema}\".accounts");
    flow.orch
        .create_release(release(
            "payments-2.0.0",
            "2.0.0",
            vec![
                migration(
                    "001-accounts",
                    &format!("CREATE TABLE {t} (id bigint PRIMARY KEY)"),
                    &format!("DROP TABLE {t}"),
                ),
                migration(
                    "002-iban",
                    &format!("ALTER TABLE {t} ADD COLUMN iban text"),
                    &format!("ALTER TABLE {t} DROP COLUMN iban"),
                ),
            ],
        ))
        .await
        .expect("create");
    flow.orch
        .plan_release(pb::PlanReleaseRequest {
            release: "payments-2.0.0".into(),
        })
        .await
        .expect("plan");
    approve_for(&flow, UNIT, "payments-ledger", "payments-2.0.0", "dev").await;
    let d = flow
        .orch
        .promote_release(pb::PromoteReleaseRequest {
            release: "payments-2.0.0".into(),
            environment: "dev".into(),
        })
        .await
        .expect("promote")
        .into_inner();
    let kinds: Vec<&str> = d.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(kinds, ["migrate", "migrate", "deploy-rolling"]);
    let done = flow.finished(&d.deployment_id).await;
    assert_eq!(
        done.status,
        pb::DeploymentStatus::Succeeded as i32,
        "{done:#?}"
    );
    assert_eq!(columns(&pool, &schema).await, ["id", "iban"]);

    // 2.1.0 adds a column and its deploy fails: its migration is undone, 2.0.0's stay.
    flow.orch
        .create_release(release(
            "payments-2.1.0",
            "2.1.0",
            vec![migration(
                "003-currency",
                &format!("ALTER TABLE {t} ADD COLUMN currency char(3) NOT NULL DEFAULT 'EUR'"),
                &format!("ALTER TABLE {t} DROP COLUMN currency"),
            )],
        ))
        .await
        .expect("create 2.1.0");
    flow.orch
        .plan_release(pb::PlanReleaseRequest {
            release: "payments-2.1.0".into(),
        })
        .await
        .expect("plan");
    approve_for(&flow, UNIT, "payments-ledger", "payments-2.1.0", "dev").await;
    flow.fail("payments-ledger");
    let d = flow
        .orch
        .promote_release(pb::PromoteReleaseRequest {
            release: "payments-2.1.0".into(),
            environment: "dev".into(),
        })
        .await
        .expect("promote 2.1.0")
        .into_inner();
    decide_rollback(&mut flow, &d.deployment_id, true).await;
    let done = flow.finished(&d.deployment_id).await;
    assert_eq!(
        done.status,
        pb::DeploymentStatus::RolledBack as i32,
        "{done:#?}"
    );
    let steps: Vec<(&str, &str)> = done
        .steps
        .iter()
        .map(|s| (s.kind.as_str(), s.version.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("migrate", "2.1.0"),
            ("deploy-rolling", "2.1.0"),
            ("rollback-deploy", "2.0.0"),
            ("rollback-migrate", "2.0.0")
        ],
        "the rollback puts 2.0.0 back, then undoes 2.1.0's migration"
    );
    assert_eq!(columns(&pool, &schema).await, ["id", "iban"]);

    // Rolling back 2.0.0 by hand undoes its migrations in reverse: the table is gone.
    flow.succeed("payments-ledger");
    let back = flow
        .orch
        .rollback_release(pb::RollbackReleaseRequest {
            release: "payments-2.0.0".into(),
            reason: "the ledger team asked".into(),
        })
        .await
        .expect("rollback 2.0.0")
        .into_inner();
    let done = flow.finished(&back.deployment_id).await;
    assert_eq!(
        done.status,
        pb::DeploymentStatus::RolledBack as i32,
        "{done:#?}"
    );
    assert!(
        columns(&pool, &schema).await.is_empty(),
        "both migrations were undone"
    );
    let log = flow.log();
    let undone = log
        .iter()
        .filter(|l| l.starts_with("rollback-migrate"))
        .count();
    assert_eq!(
        undone, 3,
        "one rollback script of 2.1.0, two of 2.0.0: {log:#?}"
    );

    flow.node.stop().await.expect("stop");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await
    .expect("drop schema");
}

/// A trigger rule on service-level versions: a patch of a `payments-*` service creates a release
/// of it (with the descriptor its last release used) that is planned and promoted into dev by
/// itself; a major bump needs a planned release.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_patch_of_a_matching_service_is_released_by_its_trigger_rule() {
    let mut flow = Flow::start().await;
    policy(&flow).await;
    catalog(&flow, UNIT, &["payments-api"], &[]).await;
    artifacts(&mut flow, &["payments-api"], "2.0.0").await;
    environments(&mut flow, UNIT, vec![env("dev"), env("prod")]).await;
    deployed(
        &mut flow,
        "payments-2.0.0",
        vec![item("payments-api", "2.0.0")],
        "dev",
    )
    .await;
    flow.orch
        .define_trigger_rule(pb::DefineTriggerRuleRequest {
            rule: Some(pb::TriggerRule {
                business_unit: UNIT.into(),
                services: "payments-*".into(),
                up_to: pb::Bump::Patch as i32,
                environment: "dev".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("trigger rule");
    // The standard change is approved ahead for dev (governance's gate still decides).
    approve(&flow, "payments-api-2.0.1", "dev").await;
    let _ = flow
        .orch
        .register_artifact(flow::artifact("payments-api", "2.0.1", "Apache-2.0"))
        .await
        .expect("patch build");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let release = loop {
        let r = flow
            .orch
            .get_release(pb::GetReleaseRequest {
                release: "payments-api-2.0.1".into(),
            })
            .await
            .map(tonic::Response::into_inner);
        if let Ok(r) = &r
            && r.status == pb::ReleaseStatus::Deployed as i32
        {
            break r.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the patch was not released into dev by its rule: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        release.deployed_to,
        ["dev"],
        "up to the rule's environment, not beyond"
    );
    assert_eq!(release.promote_to, "dev");
    assert_eq!(
        release.items[0]
            .descriptor
            .as_ref()
            .map(|d| d.version.as_str()),
        Some("2.0.1")
    );
    assert!(
        flow.log()
            .iter()
            .any(|l| l.starts_with("deploy-rolling payments-api 2.0.1 dev")),
        "{:#?}",
        flow.log()
    );

    // A rebuild of an older version, and a major bump, create nothing by themselves.
    let _ = flow
        .orch
        .register_artifact(flow::artifact(
            "payments-api",
            "2.0.0-hotfix.1",
            "Apache-2.0",
        ))
        .await
        .expect("older rebuild");
    refused(
        flow.orch
            .get_release(pb::GetReleaseRequest {
                release: "payments-api-2.0.0-hotfix.1".into(),
            })
            .await,
        Code::NotFound,
        &[],
    );
    let _ = flow
        .orch
        .register_artifact(flow::artifact("payments-api", "3.0.0", "Apache-2.0"))
        .await
        .expect("major build");
    tokio::time::sleep(Duration::from_millis(500)).await;
    refused(
        flow.orch
            .get_release(pb::GetReleaseRequest {
                release: "payments-api-3.0.0".into(),
            })
            .await,
        Code::NotFound,
        &[],
    );
    flow.node.stop().await.expect("stop");
}

/// A planned release that would break a deployed consumer's declared range is refused with the
/// range, from dependency-mapping's own answer (its footprint of dev comes from orchestration's
/// DeploymentFinished events).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_plan_that_breaks_a_deployed_consumers_range_is_refused() {
    let mut flow = Flow::start().await;
    policy(&flow).await;
    catalog(
        &flow,
        UNIT,
        &["payments-api", "payments-web"],
        &[("payments-web", "payments-api")],
    )
    .await;
    let admin = flow.admin().await;
    flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient::new(admin)
        .declare_version_requirement(flotilla_proto::dependency::v1::DeclareVersionRequirementRequest {
            consumer: "payments-web".into(),
            provider: "payments-api".into(),
            requirement: ">=2.0.0, <3.0.0".into(),
        })
        .await
        .expect("requirement");
    artifacts(&mut flow, &["payments-api", "payments-web"], "2.0.0").await;
    artifacts(&mut flow, &["payments-api"], "3.0.0").await;
    environments(&mut flow, UNIT, vec![env("dev")]).await;
    let d = deployed(
        &mut flow,
        "payments-2.0.0",
        vec![item("payments-api", "2.0.0"), item("payments-web", "2.0.0")],
        "dev",
    )
    .await;
    assert_eq!(d.status, pb::DeploymentStatus::Succeeded as i32);
    flow.orch
        .create_release(pb::CreateReleaseRequest {
            name: "payments-3.0.0".into(),
            business_unit: UNIT.into(),
            items: vec![item("payments-api", "3.0.0")],
            ..Default::default()
        })
        .await
        .expect("create 3.0.0");
    // Dependency-mapping learns what runs in dev from orchestration's events: wait for it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match flow
            .orch
            .plan_release(pb::PlanReleaseRequest {
                release: "payments-3.0.0".into(),
            })
            .await
        {
            Err(s) if s.code() == Code::FailedPrecondition => {
                assert!(
                    s.message()
                        .contains("payments-web@2.0.0 requires payments-api >=2.0.0, <3.0.0"),
                    "{}",
                    s.message()
                );
                break;
            }
            other => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the plan was never refused: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    flow.node.stop().await.expect("stop");
}
