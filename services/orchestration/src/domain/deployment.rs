//! A deployment of a release into an environment: its steps, wave by wave, each service's
//! migrations then its strategy, and the rollback steps that undo what was touched, in reverse.
//! Steps are planned here, purely; the app runs them through an executor and records each step
//! as started before it runs it, so a restarted service never runs one twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Timestamp;
use super::model::*;

/// Which part of a strategy a deploy step is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Rolling update to the new version.
    Rolling,
    /// Blue-green: the new colour deployed as the preview.
    Preview,
    /// Blue-green: the active service switched to the new colour.
    Switch,
    /// Blue-green: the old colour scaled down (after the delay).
    ScaleDownOld,
    /// Canary: this percentage of traffic to the new version.
    SetWeight(u8),
    /// Canary: all traffic to the new version, the canary becomes stable.
    Promote,
}

impl Phase {
    pub fn as_str(&self) -> String {
        match self {
            Phase::Rolling => "rolling".into(),
            Phase::Preview => "preview".into(),
            Phase::Switch => "switch".into(),
            Phase::ScaleDownOld => "scale-down-old".into(),
            Phase::SetWeight(w) => format!("set-weight-{w}"),
            Phase::Promote => "promote".into(),
        }
    }
}

/// When in a blue-green deployment an analysis runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnalysisStage {
    PrePromotion,
    PostPromotion,
    Canary,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepKind {
    /// Runs a migration's forward script (its rollback script is kept for the rollback).
    Migrate {
        migration: String,
        script: String,
        rollback_script: String,
    },
    /// Runs one phase of the service's strategy.
    Deploy(Phase),
    /// Waits this long (a timed pause, draining sticky sessions, the scale-down delay).
    Wait { seconds: u32, why: String },
    /// Waits until a person resumes the deployment.
    Hold,
    /// Waits for an analysis verdict.
    Analysis { name: String, stage: AnalysisStage },
    /// Puts back what ran before (None: the service did not run here before: remove it).
    RollbackDeploy { to: Option<String> },
    /// Runs a migration's rollback script.
    RollbackMigrate { migration: String, script: String },
}

impl StepKind {
    /// Whether the executor runs it (the others wait for time, a person or a verdict).
    pub fn runs(&self) -> bool {
        matches!(
            self,
            StepKind::Migrate { .. }
                | StepKind::Deploy(_)
                | StepKind::RollbackDeploy { .. }
                | StepKind::RollbackMigrate { .. }
        )
    }

    /// A short name for logs, events and the executor's environment.
    pub fn name(&self) -> String {
        match self {
            StepKind::Migrate { .. } => "migrate".into(),
            StepKind::Deploy(p) => format!("deploy-{}", p.as_str()),
            StepKind::Wait { .. } => "wait".into(),
            StepKind::Hold => "hold".into(),
            StepKind::Analysis { .. } => "analysis".into(),
            StepKind::RollbackDeploy { .. } => "rollback-deploy".into(),
            StepKind::RollbackMigrate { .. } => "rollback-migrate".into(),
        }
    }
}

/// What running a step came to (an executor's exit code, how long, the end of its output).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub succeeded: bool,
    pub exit_code: Option<i32>,
    pub duration_ms: u64,
    pub output_tail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepState {
    Pending,
    Started { at: Timestamp },
    Finished { at: Timestamp, outcome: StepOutcome },
}

/// One step of a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub index: u32,
    /// Stable across restarts: an executor can use it to be idempotent.
    pub id: Uuid,
    pub wave: u32,
    pub service: String,
    /// The version it deploys (None for a partner redeployed as it runs).
    pub version: Option<String>,
    pub kind: StepKind,
    pub state: StepState,
    /// Part of the rollback (undoes earlier steps).
    pub rollback: bool,
}

impl Step {
    pub fn finished(&self) -> Option<&StepOutcome> {
        match &self.state {
            StepState::Finished { outcome, .. } => Some(outcome),
            _ => None,
        }
    }

    pub fn started_at(&self) -> Option<Timestamp> {
        match &self.state {
            StepState::Started { at } => Some(*at),
            StepState::Finished { .. } | StepState::Pending => None,
        }
    }

    /// Whether it changed anything (it started: running it may have taken effect). A
    /// migration that failed rolled back in its own transaction: it touched nothing.
    pub fn touched(&self) -> bool {
        match (&self.state, &self.kind) {
            (StepState::Pending, _) => false,
            (StepState::Finished { outcome, .. }, StepKind::Migrate { .. }) => outcome.succeeded,
            _ => true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeploymentStatus {
    Running,
    /// Waiting for a person: a `pause {}`, or an analysis that was inconclusive.
    Paused {
        reason: String,
    },
    /// A forward step failed and governance's rollback criteria for the release's tier give
    /// people until `decide_by` to decide (decision `decision` in governance); rolled back then
    /// if nobody decided.
    AwaitingRollbackDecision {
        reason: String,
        decision: Uuid,
        decide_by: Timestamp,
        notify: Vec<String>,
    },
    RollingBack {
        reason: String,
    },
    Succeeded,
    RolledBack {
        reason: String,
    },
    /// It ended neither deployed nor rolled back (its rollback failed, or people decided not
    /// to roll back after a failed step): people must look.
    Failed {
        reason: String,
    },
}

impl DeploymentStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeploymentStatus::Running => "running",
            DeploymentStatus::Paused { .. } => "paused",
            DeploymentStatus::AwaitingRollbackDecision { .. } => "awaiting a rollback decision",
            DeploymentStatus::RollingBack { .. } => "rolling back",
            DeploymentStatus::Succeeded => "succeeded",
            DeploymentStatus::RolledBack { .. } => "rolled back",
            DeploymentStatus::Failed { .. } => "failed",
        }
    }

    pub fn is_over(&self) -> bool {
        matches!(
            self,
            DeploymentStatus::Succeeded
                | DeploymentStatus::RolledBack { .. }
                | DeploymentStatus::Failed { .. }
        )
    }
}

/// A release's deployment into one environment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub id: Uuid,
    pub release: String,
    pub release_id: Uuid,
    pub environment: String,
    pub business_unit: String,
    pub emergency: bool,
    pub steps: Vec<Step>,
    pub status: DeploymentStatus,
    /// What ran in the environment before, by service (rollback puts it back).
    pub previous: BTreeMap<String, String>,
    /// The package URL of the build each service is deployed at.
    pub artifacts: BTreeMap<String, String>,
    /// The package URL of what ran before, where that build is registered.
    pub previous_artifacts: BTreeMap<String, String>,
    /// Shared infrastructure it holds while it runs.
    pub holds: Vec<String>,
    pub started_by: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

/// What a deployment waits for next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Start this step (record it started, then run it).
    Start(u32),
    /// This step was started and has no outcome: it is running, or the service stopped while
    /// it ran.
    Running(u32),
    /// A timed wait that ends at this time.
    WaitUntil(u32, Timestamp),
    /// Waiting for a person (resume) or an analysis verdict.
    Waiting(u32),
    /// Waiting for governance's rollback decision, until this time (then it rolls back).
    Decide(Timestamp),
    /// Every step of the current direction finished: the deployment can be closed.
    Close,
    /// Over.
    Nothing,
}

impl Deployment {
    /// The steps of the direction it goes now (forward, or the rollback once it started).
    fn current(&self) -> impl Iterator<Item = &Step> {
        let rolling_back = matches!(
            self.status,
            DeploymentStatus::RollingBack { .. }
                | DeploymentStatus::RolledBack { .. }
                | DeploymentStatus::Failed { .. }
        );
        self.steps
            .iter()
            .filter(move |s| s.rollback == rolling_back)
    }

    /// What the deployment waits for.
    pub fn next(&self) -> Next {
        match &self.status {
            DeploymentStatus::Succeeded
            | DeploymentStatus::RolledBack { .. }
            | DeploymentStatus::Failed { .. } => return Next::Nothing,
            DeploymentStatus::Paused { .. } => {
                return self
                    .current()
                    .find(|s| s.finished().is_none())
                    .map_or(Next::Close, |s| Next::Waiting(s.index));
            }
            DeploymentStatus::AwaitingRollbackDecision { decide_by, .. } => {
                return Next::Decide(*decide_by);
            }
            DeploymentStatus::Running => {}
            DeploymentStatus::RollingBack { .. } => {
                // A forward step still running when the rollback began is waited for: nothing
                // is put back while it may still change the environment.
                if let Some(s) = self
                    .steps
                    .iter()
                    .find(|s| !s.rollback && s.kind.runs() && s.started_at().is_some())
                {
                    return Next::Running(s.index);
                }
            }
        }
        let Some(step) = self.current().find(|s| s.finished().is_none()) else {
            return Next::Close;
        };
        match (&step.state, &step.kind) {
            (StepState::Pending, _) => Next::Start(step.index),
            (StepState::Started { at }, StepKind::Wait { seconds, .. }) => Next::WaitUntil(
                step.index,
                Timestamp(at.0.saturating_add(i64::from(*seconds) * 1_000_000)),
            ),
            (StepState::Started { .. }, StepKind::Hold | StepKind::Analysis { .. }) => {
                Next::Waiting(step.index)
            }
            (StepState::Started { .. }, _) => Next::Running(step.index),
            (StepState::Finished { .. }, _) => Next::Close,
        }
    }

    pub fn step(&self, index: u32) -> Option<&Step> {
        self.steps.get(index as usize)
    }

    /// Services whose forward steps all succeeded (what runs now at the new version).
    pub fn deployed_services(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for s in self.steps.iter().filter(|s| !s.rollback) {
            if !out.contains(&s.service.as_str()) {
                out.push(&s.service);
            }
        }
        out.retain(|svc| {
            self.steps
                .iter()
                .filter(|s| !s.rollback && s.service == *svc)
                .all(|s| s.finished().is_some_and(|o| o.succeeded))
        });
        out
    }
}

/// The forward steps of a release into an environment: wave by wave (the waves of
/// dependency-mapping's plan, co-deployment groups together), each service's migrations and
/// then its strategy.
pub fn forward_steps(deployment: Uuid, release: &Release, plan: &ReleasePlan) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut add = |wave: u32, service: &str, version: Option<String>, kind: StepKind| {
        let index = steps.len() as u32;
        steps.push(Step {
            index,
            id: step_id(deployment, index),
            wave,
            service: service.to_owned(),
            version,
            kind,
            state: StepState::Pending,
            rollback: false,
        });
    };
    for (w, wave) in plan.waves.iter().enumerate() {
        let w = w as u32;
        for planned in wave {
            let item = release.items.iter().find(|i| i.service == planned.service);
            let version = planned
                .version
                .clone()
                .or_else(|| item.map(|i| i.version.to_string()));
            let Some(item) = item else {
                // A co-deployment partner the release did not name: redeployed as it runs.
                add(w, &planned.service, None, StepKind::Deploy(Phase::Rolling));
                continue;
            };
            for m in &item.migrations {
                add(
                    w,
                    &item.service,
                    version.clone(),
                    StepKind::Migrate {
                        migration: m.name.clone(),
                        script: m.forward.clone(),
                        rollback_script: m.rollback.clone(),
                    },
                );
            }
            for kind in strategy_steps(&item.strategy) {
                add(w, &item.service, version.clone(), kind);
            }
        }
    }
    steps
}

/// A strategy as steps, in Argo Rollouts' order.
fn strategy_steps(strategy: &Strategy) -> Vec<StepKind> {
    match strategy {
        Strategy::Rolling => vec![StepKind::Deploy(Phase::Rolling)],
        Strategy::BlueGreen {
            pre_promotion_analysis,
            post_promotion_analysis,
            scale_down_delay_secs,
            session_drain_secs,
        } => {
            let mut out = vec![StepKind::Deploy(Phase::Preview)];
            if let Some(name) = pre_promotion_analysis {
                out.push(StepKind::Analysis {
                    name: name.clone(),
                    stage: AnalysisStage::PrePromotion,
                });
            }
            if *session_drain_secs > 0 {
                out.push(StepKind::Wait {
                    seconds: *session_drain_secs,
                    why: "draining sticky sessions before the switch".into(),
                });
            }
            out.push(StepKind::Deploy(Phase::Switch));
            if let Some(name) = post_promotion_analysis {
                out.push(StepKind::Analysis {
                    name: name.clone(),
                    stage: AnalysisStage::PostPromotion,
                });
            }
            out.push(StepKind::Wait {
                seconds: *scale_down_delay_secs,
                why: "the old colour kept for instant rollback (scaleDownDelaySeconds)".into(),
            });
            out.push(StepKind::Deploy(Phase::ScaleDownOld));
            out
        }
        Strategy::Canary { steps } => {
            let mut out: Vec<StepKind> = steps
                .iter()
                .map(|s| match s {
                    CanaryStep::SetWeight(w) => StepKind::Deploy(Phase::SetWeight(*w)),
                    CanaryStep::Pause(Some(secs)) => StepKind::Wait {
                        seconds: *secs,
                        why: "canary pause".into(),
                    },
                    CanaryStep::Pause(None) => StepKind::Hold,
                    CanaryStep::Analysis(name) => StepKind::Analysis {
                        name: name.clone(),
                        stage: AnalysisStage::Canary,
                    },
                })
                .collect();
            out.push(StepKind::Deploy(Phase::Promote));
            out
        }
    }
}

/// The steps that undo what a deployment touched: services in reverse order of their first
/// step (providers were deployed first, so consumers are rolled back first), each service's
/// deployment put back and then its migrations rolled back in reverse.
pub fn rollback_steps(d: &Deployment) -> Vec<Step> {
    let mut order: Vec<&str> = Vec::new();
    for s in d.steps.iter().filter(|s| !s.rollback && s.touched()) {
        if !order.contains(&s.service.as_str()) {
            order.push(&s.service);
        }
    }
    let mut steps = Vec::new();
    let base = d.steps.len() as u32;
    for service in order.into_iter().rev() {
        let touched: Vec<&Step> = d
            .steps
            .iter()
            .filter(|s| !s.rollback && s.service == service && s.touched())
            .collect();
        let wave = touched.first().map_or(0, |s| s.wave);
        let mut add = |kind: StepKind| {
            let index = base + steps.len() as u32;
            steps.push(Step {
                index,
                id: step_id(d.id, index),
                wave,
                service: service.to_owned(),
                version: d.previous.get(service).cloned(),
                kind,
                state: StepState::Pending,
                rollback: true,
            });
        };
        if touched
            .iter()
            .any(|s| matches!(s.kind, StepKind::Deploy(_)))
        {
            add(StepKind::RollbackDeploy {
                to: d.previous.get(service).cloned(),
            });
        }
        for s in touched.iter().rev() {
            if let StepKind::Migrate {
                migration,
                rollback_script,
                ..
            } = &s.kind
            {
                add(StepKind::RollbackMigrate {
                    migration: migration.clone(),
                    script: rollback_script.clone(),
                });
            }
        }
    }
    steps
}

/// A step's id: the deployment's and its index, so it is the same after any restart.
pub fn step_id(deployment: Uuid, index: u32) -> Uuid {
    Uuid::new_v5(&deployment, &index.to_be_bytes())
}
