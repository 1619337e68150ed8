//! Orchestration started again over a store in which a step was recorded as started and never
//! finished (the process stopped while the executor ran it). The step is never run again: the
//! outcome the executor kept for its step id is recorded and the deployment resumes; without
//! one the step fails as interrupted and the deployment rolls back what it touched, at once or,
//! when governance's rollback criteria give people time, once that time is up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_core::event::Metadata;
use flotilla_core::{EventStore, MemoryStore};
use flotilla_orchestration::OrchestrationModule;
use flotilla_orchestration::app::OrchestrationApp;
use flotilla_orchestration::domain::*;
use flotilla_orchestration::executor::{Executor, StepContext};
use flotilla_orchestration::peers::{FailedStep, PeerError, Peers, Token};
use flotilla_runtime::testkit::{TestServer, run_scheduler, run_task};
use uuid::Uuid;

/// No other service is asked: the commands below carry the answers. A rollback decision is
/// answered with `decide_within` (None: governance cannot be reached) and recorded.
#[derive(Default)]
struct NoPeers {
    decide_within: Option<Duration>,
    asked: Mutex<Vec<FailedStep>>,
}

#[async_trait::async_trait]
impl Peers for NoPeers {
    async fn gate(
        &self,
        _: &str,
        _: &str,
        _: bool,
        _: Timestamp,
        _: &Token,
    ) -> Result<GateAnswer, PeerError> {
        Ok(GateAnswer {
            allowed: true,
            reasons: Vec::new(),
        })
    }
    async fn name_refused(&self, _: &str, _: &Token) -> Result<Option<String>, PeerError> {
        Ok(None)
    }
    async fn plan(&self, _: &[(String, String)], _: &Token) -> Result<ReleasePlan, PeerError> {
        Ok(ReleasePlan::default())
    }
    async fn open_rollback_decision(
        &self,
        step: &FailedStep,
        _: &Token,
    ) -> Result<RollbackHold, PeerError> {
        self.asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(step.clone());
        let within = self.decide_within.ok_or_else(|| PeerError {
            service: "governance",
            status: tonic::Status::unavailable("governance is down"),
        })?;
        Ok(RollbackHold {
            decision: step.decision,
            decide_by: Timestamp(step.at.0 + within.as_micros() as i64),
            notify: vec!["release-manager".into()],
        })
    }
}

/// Records what it runs; answers a kept outcome for the steps it is told about.
#[derive(Default)]
struct Recording {
    ran: Mutex<Vec<(Uuid, String, String)>>,
    kept: BTreeMap<Uuid, StepOutcome>,
}

#[async_trait::async_trait]
impl Executor for Recording {
    async fn run(&self, step: &StepContext) -> StepOutcome {
        self.ran.lock().unwrap_or_else(|p| p.into_inner()).push((
            step.step_id,
            step.step.name(),
            step.service.clone(),
        ));
        StepOutcome {
            succeeded: true,
            exit_code: Some(0),
            duration_ms: 1,
            output_tail: "ok".into(),
        }
    }
    async fn outcome_of(&self, step_id: Uuid) -> Option<StepOutcome> {
        self.kept.get(&step_id).cloned()
    }
}

fn descriptor(service: &str) -> Descriptor {
    Descriptor {
        kind: DescriptorKind::Helm,
        reference: format!("oci://charts/{service}"),
        version: "1.0.0".into(),
        values: BTreeMap::new(),
        labels: BTreeMap::new(),
        cpu_limit: String::new(),
        memory_limit: String::new(),
        uses: Vec::new(),
    }
}

fn artifact(service: &str, n: u8) -> Artifact {
    let image_digest = format!("sha256:{}", format!("{n:02x}").repeat(32));
    Artifact {
        purl: Artifact::purl_of(service, &image_digest),
        service: service.into(),
        version: semver::Version::new(2, 0, 0),
        commit: "c0ffee".into(),
        repository: format!("https://git.example.com/{service}"),
        build_url: String::new(),
        tests: TestResults::default(),
        analysis: Analysis {
            tool: String::new(),
            passed: true,
            findings: 0,
        },
        licences: Vec::new(),
        image_digest,
        registered_at: Timestamp::now(),
        source: ArtifactSource::Api,
        committed_at: None,
    }
}

/// A release of ledger then api promoted into dev, its first step (ledger's deploy) recorded
/// as started by a process that then stopped. Answers the deployment and that step's id.
async fn interrupted(store: &Arc<dyn EventStore>) -> (Uuid, Uuid) {
    let ctx = TestServer::context(&OrchestrationModule, store.clone());
    let (app, follow) = OrchestrationApp::start(
        &ctx,
        Arc::new(NoPeers::default()),
        Arc::new(Recording::default()),
        "",
    )
    .await
    .expect("start");
    let _follow = run_task(follow);
    let md = || Metadata::by("rita", "payments");
    let now = Timestamp::now;
    app.execute(
        DefineEnvironment {
            spec: EnvironmentSpec {
                business_unit: "payments".into(),
                name: "dev".into(),
                checks: Vec::new(),
                data: None,
                test_teams: Vec::new(),
                shared: Vec::new(),
                desired: BTreeMap::new(),
            },
            at: now(),
        },
        md(),
    )
    .await
    .expect("environment");
    app.execute(
        SetPromotionPath {
            business_unit: "payments".into(),
            environments: vec!["dev".into()],
            at: now(),
        },
        md(),
    )
    .await
    .expect("path");
    for (i, s) in ["ledger", "api"].into_iter().enumerate() {
        app.execute(
            RegisterArtifact {
                artifact: artifact(s, i as u8 + 1),
            },
            md(),
        )
        .await
        .expect("artifact");
    }
    let items = ["ledger", "api"]
        .into_iter()
        .map(|s| RequestedItem {
            service: s.into(),
            version: None,
            descriptor: descriptor(s),
            strategy: Strategy::Rolling,
            migrations: Vec::new(),
        })
        .collect();
    app.execute(
        CreateRelease {
            name: "r1".into(),
            business_unit: "payments".into(),
            emergency: false,
            items,
            include: Vec::new(),
            default_descriptor: None,
            name_refused: None,
            promote_to: None,
            by: "rita".into(),
            at: now(),
        },
        md(),
    )
    .await
    .expect("create");
    let release = release_id("r1");
    let p = |s: &str| PlannedService {
        service: s.into(),
        version: None,
        group: None,
    };
    app.execute(
        PlanRelease {
            release,
            plan: ReleasePlan {
                waves: vec![vec![p("ledger")], vec![p("api")]],
                impact: Vec::new(),
                skew: Vec::new(),
            },
            at: now(),
        },
        md(),
    )
    .await
    .expect("plan");
    app.execute(
        PromoteRelease {
            release,
            environment: "dev".into(),
            gate: GateAnswer {
                allowed: true,
                reasons: Vec::new(),
            },
            by: "rita".into(),
            at: now(),
        },
        md(),
    )
    .await
    .expect("promote");
    let deployment = deployment_id(release, 0);
    app.execute(
        StartStep {
            deployment,
            index: 0,
            at: now(),
        },
        md(),
    )
    .await
    .expect("start step");
    let step = app.query(|o| o.deployments[&deployment].steps[0].id);
    (deployment, step)
}

/// Starts orchestration again with `executor` and its runner; waits until the deployment is
/// over.
async fn restarted(
    store: &Arc<dyn EventStore>,
    executor: Arc<Recording>,
    deployment: Uuid,
) -> Deployment {
    restarted_with(
        store,
        Arc::new(NoPeers::default()),
        "",
        executor,
        deployment,
    )
    .await
    .0
}

/// As [`restarted`], with these peers and service token; answers also every status the
/// deployment was seen in, in order.
async fn restarted_with(
    store: &Arc<dyn EventStore>,
    peers: Arc<NoPeers>,
    token: &str,
    executor: Arc<Recording>,
    deployment: Uuid,
) -> (Deployment, Vec<DeploymentStatus>) {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let ctx = TestServer::context(&OrchestrationModule, store.clone());
    let (app, follow) = OrchestrationApp::start(&ctx, peers, executor, token)
        .await
        .expect("restart");
    let _follow = run_task(follow);
    let _runner = run_scheduler(flotilla_orchestration::runner::run(
        app.clone(),
        Duration::from_secs(5),
    ));
    let mut seen: Vec<DeploymentStatus> = Vec::new();
    for _ in 0..1000 {
        let d = app.query(|o| o.deployments[&deployment].clone());
        if seen.last() != Some(&d.status) {
            seen.push(d.status.clone());
        }
        if d.status.is_over() {
            return (d, seen);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the deployment did not end after the restart: {seen:?}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_whose_outcome_was_kept_is_recorded_and_the_deployment_resumes() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let (deployment, step) = interrupted(&store).await;
    let kept = StepOutcome {
        succeeded: true,
        exit_code: Some(0),
        duration_ms: 4_200,
        output_tail: "Release \"ledger\" has been upgraded. Happy Helming!".into(),
    };
    let executor = Arc::new(Recording {
        kept: [(step, kept.clone())].into(),
        ..Recording::default()
    });
    let d = restarted(&store, executor.clone(), deployment).await;
    assert_eq!(d.status, DeploymentStatus::Succeeded);
    assert_eq!(
        d.steps[0].finished(),
        Some(&kept),
        "the kept outcome is the step's"
    );
    let ran = executor
        .ran
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert!(
        ran.iter().all(|(id, _, _)| *id != step),
        "the started step was not run again: {ran:?}"
    );
    assert_eq!(
        ran.iter()
            .map(|(_, k, s)| format!("{k} {s}"))
            .collect::<Vec<_>>(),
        ["deploy-rolling api"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_without_a_kept_outcome_fails_as_interrupted_and_rolls_back() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let (deployment, step) = interrupted(&store).await;
    let executor = Arc::new(Recording::default());
    let d = restarted(&store, executor.clone(), deployment).await;
    assert!(
        matches!(d.status, DeploymentStatus::RolledBack { .. }),
        "{:?}",
        d.status
    );
    let first = d.steps[0].finished().expect("finished");
    assert!(
        !first.succeeded && first.output_tail.contains("interrupted"),
        "{first:?}"
    );
    let ran = executor
        .ran
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert!(ran.iter().all(|(id, _, _)| *id != step), "{ran:?}");
    assert_eq!(
        ran.iter()
            .map(|(_, k, s)| format!("{k} {s}"))
            .collect::<Vec<_>>(),
        ["rollback-deploy ledger"],
        "only the touched service is put back; api never started"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_holds_for_governances_rollback_decision_until_the_tiers_limit() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let (deployment, step) = interrupted(&store).await;
    let peers = Arc::new(NoPeers {
        decide_within: Some(Duration::from_millis(800)),
        ..NoPeers::default()
    });
    let executor = Arc::new(Recording::default());
    let (d, seen) =
        restarted_with(&store, peers.clone(), "token", executor.clone(), deployment).await;
    let asked = peers
        .asked
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert_eq!(
        asked.len(),
        1,
        "one decision for the one failed step: {asked:?}"
    );
    assert_eq!(asked[0].decision, Uuid::new_v5(&step, b"rollback-decision"));
    assert_eq!(
        (asked[0].service.as_str(), asked[0].exit_code),
        ("ledger", -1),
        "an interrupted step has no exit code"
    );
    let held = seen
        .iter()
        .find_map(|s| match s {
            DeploymentStatus::AwaitingRollbackDecision {
                decision,
                decide_by,
                notify,
                reason,
            } => Some((*decision, *decide_by, notify.clone(), reason.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("the deployment never held for the decision: {seen:?}"));
    assert_eq!(held.0, asked[0].decision);
    assert_eq!(
        held.1.0 - asked[0].at.0,
        800_000,
        "held until the tier's limit"
    );
    assert_eq!(held.2, ["release-manager"]);
    assert!(held.3.contains("ledger"), "{}", held.3);
    // Nobody decided: rolled back once the time was up.
    match &d.status {
        DeploymentStatus::RolledBack { reason } => {
            assert!(reason.contains("not taken within"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    let rolled_back_at = d.finished_at.expect("finished");
    assert!(rolled_back_at >= held.1, "not rolled back before the limit");
    let ran = executor
        .ran
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert_eq!(
        ran.iter()
            .map(|(_, k, s)| format!("{k} {s}"))
            .collect::<Vec<_>>(),
        ["rollback-deploy ledger"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_rolls_back_at_once_when_governance_cannot_be_asked() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let (deployment, _) = interrupted(&store).await;
    let peers = Arc::new(NoPeers::default());
    let (d, seen) = restarted_with(
        &store,
        peers.clone(),
        "token",
        Arc::new(Recording::default()),
        deployment,
    )
    .await;
    assert_eq!(
        peers.asked.lock().unwrap_or_else(|p| p.into_inner()).len(),
        1
    );
    assert!(
        seen.iter()
            .all(|s| !matches!(s, DeploymentStatus::AwaitingRollbackDecision { .. })),
        "{seen:?}"
    );
    assert!(
        matches!(d.status, DeploymentStatus::RolledBack { .. }),
        "{:?}",
        d.status
    );
}
