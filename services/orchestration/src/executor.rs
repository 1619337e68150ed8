//! Executors run a deployment's steps. The `command` executor runs the configured command per
//! step kind (`helm upgrade --install …`, `terraform apply`, `psql -f …`) through `sh -c`, with
//! what the step is about in its environment, a timeout, and the tail of its output kept; the
//! `dry-run` executor (the embedded default) runs nothing and says what it would have run.
//!
//! Every step comes with a step id that stays the same after a restart: the command sees it
//! (`FLOTILLA_STEP_ID`) to be idempotent, and the command executor keeps each finished step's
//! outcome under its state folder, so a step that finished while the service was going down is
//! not run again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use uuid::Uuid;

use crate::domain::{Deployment, Phase, Step, StepKind, StepOutcome};

/// Most output kept of a step (its end).
pub const TAIL_BYTES: usize = 4_096;

/// A descriptor's kind, reference and version, as a step's environment gives them.
pub type DescriptorRef = (String, String, String);

/// What a step is about, as the executor sees it.
#[derive(Clone, Debug)]
pub struct StepContext {
    pub step_id: Uuid,
    pub deployment_id: Uuid,
    pub release: String,
    pub business_unit: String,
    pub environment: String,
    pub service: String,
    pub version: String,
    pub step: StepKind,
    /// Part of a rollback.
    pub rollback: bool,
    /// The descriptor of the service in the release (kind, reference, version).
    pub descriptor: Option<DescriptorRef>,
}

impl StepContext {
    pub fn of(d: &Deployment, s: &Step, descriptor: Option<DescriptorRef>) -> Self {
        Self {
            step_id: s.id,
            deployment_id: d.id,
            release: d.release.clone(),
            business_unit: d.business_unit.clone(),
            environment: d.environment.clone(),
            service: s.service.clone(),
            version: s.version.clone().unwrap_or_default(),
            step: s.kind.clone(),
            rollback: s.rollback,
            descriptor,
        }
    }

    /// The environment a step's command runs with.
    pub fn env(&self) -> BTreeMap<&'static str, String> {
        let mut env = BTreeMap::from([
            ("FLOTILLA_STEP_ID", self.step_id.to_string()),
            ("FLOTILLA_DEPLOYMENT_ID", self.deployment_id.to_string()),
            ("FLOTILLA_RELEASE", self.release.clone()),
            ("FLOTILLA_BUSINESS_UNIT", self.business_unit.clone()),
            ("FLOTILLA_ENVIRONMENT", self.environment.clone()),
            ("FLOTILLA_SERVICE", self.service.clone()),
            ("FLOTILLA_VERSION", self.version.clone()),
            ("FLOTILLA_STEP", self.step.name()),
        ]);
        match &self.step {
            StepKind::Migrate {
                migration, script, ..
            }
            | StepKind::RollbackMigrate { migration, script } => {
                env.insert("FLOTILLA_MIGRATION", migration.clone());
                env.insert("FLOTILLA_SCRIPT", script.clone());
            }
            StepKind::Deploy(phase) => {
                env.insert("FLOTILLA_PHASE", phase.as_str());
                if let Phase::SetWeight(w) = phase {
                    env.insert("FLOTILLA_WEIGHT", w.to_string());
                }
            }
            StepKind::RollbackDeploy { to } => {
                env.insert("FLOTILLA_ROLLBACK_TO", to.clone().unwrap_or_default());
            }
            StepKind::Wait { .. } | StepKind::Hold | StepKind::Analysis { .. } => {}
        }
        if let Some((kind, reference, version)) = &self.descriptor {
            env.insert("FLOTILLA_DESCRIPTOR_KIND", kind.clone());
            env.insert("FLOTILLA_DESCRIPTOR_REFERENCE", reference.clone());
            env.insert("FLOTILLA_DESCRIPTOR_VERSION", version.clone());
        }
        env
    }
}

/// Runs steps.
#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// Runs a step to its end.
    async fn run(&self, step: &StepContext) -> StepOutcome;

    /// The outcome of a step that ran to its end before, if this executor kept it (after a
    /// restart: a step recorded as started but not finished).
    async fn outcome_of(&self, _step_id: Uuid) -> Option<StepOutcome> {
        None
    }
}

/// The commands of the `command` executor, by step kind (empty: the step succeeds at once,
/// saying no command is configured).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StepCommands {
    /// Every deploy phase (`FLOTILLA_PHASE`: rolling, preview, switch, scale-down-old,
    /// set-weight-N, promote).
    pub deploy: String,
    pub migrate: String,
    pub rollback_deploy: String,
    pub rollback_migrate: String,
}

impl StepCommands {
    fn for_step(&self, step: &StepKind) -> &str {
        match step {
            StepKind::Deploy(_) => &self.deploy,
            StepKind::Migrate { .. } => &self.migrate,
            StepKind::RollbackDeploy { .. } => &self.rollback_deploy,
            StepKind::RollbackMigrate { .. } => &self.rollback_migrate,
            StepKind::Wait { .. } | StepKind::Hold | StepKind::Analysis { .. } => "",
        }
    }
}

/// Runs the configured command per step kind through `sh -c`.
#[derive(Clone, Debug)]
pub struct CommandExecutor {
    pub commands: StepCommands,
    pub timeout: Duration,
    /// Where each finished step's outcome is kept (by step id).
    pub state_dir: PathBuf,
}

impl CommandExecutor {
    fn marker(&self, step_id: Uuid) -> PathBuf {
        self.state_dir.join(format!("{step_id}.json"))
    }

    async fn keep(&self, step_id: Uuid, outcome: &StepOutcome) {
        let Ok(json) = serde_json::to_vec(outcome) else {
            return;
        };
        let path = self.marker(step_id);
        let tmp = path.with_extension("tmp");
        let written = async {
            tokio::fs::create_dir_all(&self.state_dir).await?;
            tokio::fs::write(&tmp, json).await?;
            tokio::fs::rename(&tmp, &path).await
        }
        .await;
        if let Err(e) = written {
            tracing::warn!(step = %step_id, error = %e, "the step's outcome could not be kept for a restart");
        }
    }
}

#[async_trait::async_trait]
impl Executor for CommandExecutor {
    async fn run(&self, step: &StepContext) -> StepOutcome {
        let command = self.commands.for_step(&step.step);
        if command.trim().is_empty() {
            let outcome = StepOutcome {
                succeeded: true,
                exit_code: None,
                duration_ms: 0,
                output_tail: format!(
                    "no command is configured for {}: nothing ran",
                    step.step.name()
                ),
            };
            self.keep(step.step_id, &outcome).await;
            return outcome;
        }
        let outcome = run_command(command, &step.env(), self.timeout).await;
        self.keep(step.step_id, &outcome).await;
        outcome
    }

    async fn outcome_of(&self, step_id: Uuid) -> Option<StepOutcome> {
        let bytes = tokio::fs::read(self.marker(step_id)).await.ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// Runs `sh -c command` with `env`, its output (stdout and stderr together) kept to its last
/// [`TAIL_BYTES`], killed after `timeout`.
pub async fn run_command(
    command: &str,
    env: &BTreeMap<&'static str, String>,
    timeout: Duration,
) -> StepOutcome {
    let started = Instant::now();
    let spawned = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("exec 2>&1; {command}"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return StepOutcome {
                succeeded: false,
                exit_code: None,
                duration_ms: 0,
                output_tail: format!("the command could not be started: {e}"),
            };
        }
    };
    let mut stdout = child.stdout.take();
    let read = async {
        let mut tail = Vec::new();
        let mut buf = [0u8; 8192];
        if let Some(out) = stdout.as_mut() {
            loop {
                match out.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        tail.extend_from_slice(&buf[..n]);
                        if tail.len() > TAIL_BYTES * 2 {
                            tail.drain(..tail.len() - TAIL_BYTES);
                        }
                    }
                }
            }
        }
        tail
    };
    let finished = tokio::time::timeout(timeout, async {
        let tail = read.await;
        (child.wait().await, tail)
    })
    .await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match finished {
        Ok((status, tail)) => {
            let output_tail = tail_text(&tail);
            match status {
                Ok(s) => StepOutcome {
                    succeeded: s.success(),
                    exit_code: s.code(),
                    duration_ms,
                    output_tail,
                },
                Err(e) => StepOutcome {
                    succeeded: false,
                    exit_code: None,
                    duration_ms,
                    output_tail: format!("{output_tail}\nwaiting for the command failed: {e}"),
                },
            }
        }
        Err(_) => StepOutcome {
            succeeded: false,
            exit_code: None,
            duration_ms,
            output_tail: format!("timed out after {} s (killed)", timeout.as_secs()),
        },
    }
}

fn tail_text(bytes: &[u8]) -> String {
    let start = bytes.len().saturating_sub(TAIL_BYTES);
    String::from_utf8_lossy(&bytes[start..])
        .trim_end()
        .to_owned()
}

/// Runs nothing: says what the command executor would run (the embedded default, so
/// `flotilla up` can move releases without touching anything).
#[derive(Clone, Debug, Default)]
pub struct DryRun;

#[async_trait::async_trait]
impl Executor for DryRun {
    async fn run(&self, step: &StepContext) -> StepOutcome {
        StepOutcome {
            succeeded: true,
            exit_code: Some(0),
            duration_ms: 0,
            output_tail: format!(
                "dry run: {} {} {} in {} (configure [orchestration.executor] to run commands)",
                step.step.name(),
                step.service,
                step.version,
                step.environment
            ),
        }
    }
}
