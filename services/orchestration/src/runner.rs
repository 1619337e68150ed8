//! The runner: moves every deployment under way, one step at a time per deployment, through the
//! executor. A step is recorded as started before the executor runs it; its outcome is recorded
//! after. A step found started but not finished when the service starts again was interrupted:
//! the executor's kept outcome is recorded if it has one (the deployment resumes), otherwise the
//! step fails as interrupted; it is never run twice.
//!
//! A forward step that fails applies governance's rollback criteria for the release's tier:
//! the runner opens governance's rollback decision, and the deployment holds for it until the
//! tier's time limit (then it rolls back); criteria that allow no time roll back at once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flotilla_core::event::Metadata;
use flotilla_runtime::kit::{self, Scheduler, Shutdown};
use futures::FutureExt;
use uuid::Uuid;

use crate::app::OrchestrationApp;
use crate::domain::*;
use crate::executor::{DescriptorRef, StepContext};
use crate::peers::FailedStep;

/// How long before a trigger rule's release that could not move on is tried again: a second at
/// first (governance's approval request is opened from risk-validation's assessment moments
/// after the plan), doubling to at most 30 s.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const RETRY_MOVE_ON: Duration = Duration::from_secs(30);

enum MoveOn {
    Done,
    /// When it was last tried and the pause before the next try.
    Tried(std::time::Instant, Duration),
}

/// How often the runner looks even when nothing changed (timed waits end).
const TICK: Duration = Duration::from_millis(250);

/// The runner as a task of the module. On shutdown it starts nothing more and gives the steps
/// it is running up to `grace` to finish (their outcomes are recorded); those still running
/// then are stopped, and found interrupted at the next start. A runner whose replica lost the
/// duty lease stops its steps at once.
pub fn run(app: Arc<OrchestrationApp>, grace: Duration) -> Scheduler {
    Arc::new(move |shutdown: Shutdown| runner(app.clone(), grace, shutdown).boxed())
}

struct Runner {
    app: Arc<OrchestrationApp>,
    /// Steps this process is running (by step id).
    in_flight: Arc<Mutex<HashSet<Uuid>>>,
    /// Trigger-rule releases moved on, by (release, environments reached): done, or when it
    /// was last tried (a promotion the gate blocks is tried again, at most [`RETRY_MOVE_ON`]
    /// later).
    moved_on: std::collections::HashMap<(Uuid, usize), MoveOn>,
    /// The executor's runs under way.
    steps: tokio::task::JoinSet<()>,
    /// Steps whose start could not be confirmed (the store's answer was lost): if they show up
    /// started, this process never ran them.
    unconfirmed: HashSet<Uuid>,
}

async fn runner(app: Arc<OrchestrationApp>, grace: Duration, mut shutdown: Shutdown) {
    let mut changes = app.watch_position();
    let mut r = Runner {
        app,
        in_flight: Arc::default(),
        moved_on: std::collections::HashMap::new(),
        steps: tokio::task::JoinSet::new(),
        unconfirmed: HashSet::new(),
    };
    loop {
        r.round().await;
        while r.steps.try_join_next().is_some() {}
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.wait() => break,
        }
    }
    let running = r.steps.len();
    if running > 0 && !kit::term_lost() {
        tracing::info!(
            steps = running,
            grace_secs = grace.as_secs(),
            "waiting for running steps before stopping"
        );
        // Cut short if the lease is lost meanwhile.
        let finished = tokio::time::timeout(grace, async {
            loop {
                tokio::select! {
                    next = r.steps.join_next() => if next.is_none() { return true },
                    _ = tokio::time::sleep(TICK) => if kit::term_lost() { return false },
                }
            }
        })
        .await;
        if finished != Ok(true) && !r.steps.is_empty() {
            tracing::warn!(
                steps = r.steps.len(),
                "steps still running at shutdown were stopped; they are found interrupted at the next start and not run again"
            );
            r.steps.shutdown().await;
        }
    }
    // Deposed (another replica took the duty over): the new holder finds these steps
    // interrupted and acts on them, so they stop now rather than run on beside it.
    if !r.steps.is_empty() {
        tracing::warn!(
            steps = r.steps.len(),
            "this replica lost the duty lease: its running steps are stopped now; the new holder finds them interrupted"
        );
        r.steps.shutdown().await;
    }
}

fn md(d: &Deployment) -> Metadata {
    Metadata::by("orchestration-runner", d.business_unit.clone())
}

impl Runner {
    /// One look at every deployment under way.
    async fn round(&mut self) {
        let work: Vec<(Deployment, Next, Option<DescriptorRef>)> = self.app.query(|o| {
            o.active_deployments()
                .map(|d| {
                    let next = d.next();
                    let descriptor = match next {
                        Next::Start(i) | Next::Running(i) => {
                            d.step(i).and_then(|s| descriptor_of(o, d, &s.service))
                        }
                        _ => None,
                    };
                    (d.clone(), next, descriptor)
                })
                .collect()
        });
        for (d, next, descriptor) in work {
            if let Err(e) = self.advance(&d, next, descriptor).await {
                tracing::warn!(deployment = %d.id, error = %e, "a deployment step could not be recorded; trying again");
            }
        }
        self.move_on().await;
    }

    async fn advance(
        &mut self,
        d: &Deployment,
        next: Next,
        descriptor: Option<DescriptorRef>,
    ) -> Result<(), crate::app::AppError> {
        let now = Timestamp::now();
        match next {
            Next::Start(i) => {
                let Some(step) = d.step(i).cloned() else {
                    return Ok(());
                };
                if step.kind.runs() {
                    // In flight before it is recorded started: this process will not take it
                    // for interrupted.
                    self.in_flight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(step.id);
                }
                let started = self
                    .app
                    .execute(
                        StartStep {
                            deployment: d.id,
                            index: i,
                            at: now,
                        },
                        md(d),
                    )
                    .await;
                if let Err(e) = started {
                    self.in_flight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&step.id);
                    // The store may have recorded it all the same (a lost answer): if it shows
                    // up started, this process knows it never ran it and runs it then.
                    if !matches!(e, crate::app::AppError::Domain(_)) {
                        self.unconfirmed.insert(step.id);
                    }
                    return Err(e);
                }
                self.unconfirmed.remove(&step.id);
                if step.kind.runs() {
                    self.spawn_run(d, &step, descriptor);
                }
            }
            Next::Running(i) => {
                let Some(step) = d.step(i) else { return Ok(()) };
                let ours = self
                    .in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&step.id);
                if !ours && self.unconfirmed.remove(&step.id) && step.kind.runs() {
                    tracing::info!(deployment = %d.id, step = i, "a step recorded started whose start was not confirmed: it never ran here, so it runs now");
                    self.in_flight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(step.id);
                    self.spawn_run(d, &step.clone(), descriptor);
                    return Ok(());
                }
                self.interrupted(d, i, now).await?;
            }
            Next::WaitUntil(i, until) => {
                self.wait_over(d, i, until, now).await?;
            }
            Next::Decide(by) if now >= by => {
                let DeploymentStatus::AwaitingRollbackDecision { decision, .. } = &d.status else {
                    return Ok(());
                };
                tracing::warn!(deployment = %d.id, %decision, "nobody took the rollback decision within the tier's time limit: rolling back");
                self.app
                    .execute(
                        RollbackRelease {
                            release: d.release_id,
                            reason: format!(
                                "rollback decision {decision} was not taken within the tier's time limit"
                            ),
                            by: "orchestration-runner".into(),
                            at: now,
                        },
                        md(d),
                    )
                    .await?;
            }
            Next::Decide(_) | Next::Waiting(_) | Next::Close | Next::Nothing => {}
        }
        Ok(())
    }

    /// Runs a step recorded started through the executor, and records its outcome.
    fn spawn_run(&mut self, d: &Deployment, step: &Step, descriptor: Option<DescriptorRef>) {
        let i = step.index;
        let ctx = StepContext::of(d, step, descriptor);
        let app = self.app.clone();
        let in_flight = self.in_flight.clone();
        let md = md(d);
        tracing::info!(deployment = %d.id, step = i, kind = %step.kind.name(), service = %step.service, "step started");
        // The step's outcome is recorded in this term of the lease, or not at all.
        self.steps.spawn(kit::carry_term(async move {
            let outcome = app.executor.run(&ctx).await;
            let at = Timestamp::now();
            let hold = if outcome.succeeded || ctx.rollback {
                None
            } else {
                hold_after(&app, &ctx, &outcome, at).await
            };
            let finished = FinishStep {
                deployment: ctx.deployment_id,
                index: i,
                outcome,
                at,
                hold,
            };
            if let Err(e) = app.execute(finished, md).await {
                tracing::error!(deployment = %ctx.deployment_id, step = i, error = %e, "a step's outcome could not be recorded; it is taken for interrupted at the next start");
            }
            in_flight
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&ctx.step_id);
        }));
    }

    /// A step recorded started and not finished that this process is not running: one an
    /// earlier run of the service started gets the outcome the executor kept, or fails as
    /// interrupted; it is never run again.
    async fn interrupted(
        &self,
        d: &Deployment,
        i: u32,
        now: Timestamp,
    ) -> Result<(), crate::app::AppError> {
        let Some(step) = d.step(i) else { return Ok(()) };
        let ours = self
            .in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&step.id);
        let before_us = step.started_at().is_some_and(|t| t < self.app.started_at);
        if ours || !before_us {
            return Ok(());
        }
        let outcome = match self.app.executor.outcome_of(step.id).await {
            Some(o) => {
                tracing::info!(deployment = %d.id, step = i, "a step that finished before the restart: its outcome is recorded");
                o
            }
            None => {
                tracing::warn!(deployment = %d.id, step = i, "a step was interrupted by a restart; it is not run again");
                StepOutcome {
                    succeeded: false,
                    exit_code: None,
                    duration_ms: 0,
                    output_tail: "interrupted: the service stopped while the step ran and its outcome is unknown; it is not run twice".into(),
                }
            }
        };
        let hold = if outcome.succeeded || step.rollback {
            None
        } else {
            hold_after(&self.app, &StepContext::of(d, step, None), &outcome, now).await
        };
        self.app
            .execute(
                FinishStep {
                    deployment: d.id,
                    index: i,
                    outcome,
                    at: now,
                    hold,
                },
                md(d),
            )
            .await?;
        Ok(())
    }

    /// A timed wait that is over is finished.
    async fn wait_over(
        &self,
        d: &Deployment,
        i: u32,
        until: Timestamp,
        now: Timestamp,
    ) -> Result<(), crate::app::AppError> {
        if now < until {
            return Ok(());
        }
        let why = match d.step(i).map(|s| &s.kind) {
            Some(StepKind::Wait { seconds, why }) => format!("waited {seconds} s: {why}"),
            _ => String::new(),
        };
        let outcome = StepOutcome {
            succeeded: true,
            exit_code: None,
            duration_ms: u64::try_from((now.0 - until.0).max(0) / 1_000).unwrap_or(0),
            output_tail: why,
        };
        self.app
            .execute(
                FinishStep {
                    deployment: d.id,
                    index: i,
                    outcome,
                    at: now,
                    hold: None,
                },
                md(d),
            )
            .await?;
        Ok(())
    }

    /// Releases a trigger rule created move on along the path: into the first environment
    /// when the promotion inside the build's registration was blocked, and on once a
    /// deployment succeeded.
    async fn move_on(&mut self) {
        let ready: Vec<(Uuid, usize)> = self.app.query(|o| {
            o.releases
                .values()
                .filter(|r| r.promote_to.is_some())
                .filter(|r| {
                    matches!(
                        r.status,
                        ReleaseStatus::Deployed { .. } | ReleaseStatus::Planned
                    )
                })
                .filter(|r| r.deployed_to.last() != r.promote_to.as_ref())
                .map(|r| (r.id, r.deployed_to.len()))
                .collect()
        });
        // Forget releases that moved on, were rolled back or are gone.
        self.moved_on.retain(|k, _| ready.contains(k));
        for key in ready {
            let pause = match self.moved_on.get(&key) {
                Some(MoveOn::Done) => continue,
                Some(MoveOn::Tried(at, pause)) if at.elapsed() < *pause => continue,
                Some(MoveOn::Tried(_, pause)) => (*pause * 2).min(RETRY_MOVE_ON),
                // Planned: the first try was the registration's own.
                None if key.1 == 0 => {
                    self.moved_on
                        .insert(key, MoveOn::Tried(std::time::Instant::now(), FIRST_RETRY));
                    continue;
                }
                None => FIRST_RETRY,
            };
            match self.app.promote_next(key.0).await {
                Ok(()) => {
                    self.moved_on.insert(key, MoveOn::Done);
                }
                Err(e) => {
                    tracing::warn!(release = %key.0, error = %e.message(), retry_in_s = pause.as_secs(), "a trigger rule's release did not move on");
                    self.moved_on
                        .insert(key, MoveOn::Tried(std::time::Instant::now(), pause));
                }
            }
        }
    }
}

/// Governance's rollback decision about a forward step that failed, opened under the rollback
/// criteria for the release's tier. None, so the deployment rolls back at once, when governance
/// cannot be asked (no service token, unreachable, refused): a failed deployment is not left
/// standing on an unanswered call.
async fn hold_after(
    app: &OrchestrationApp,
    ctx: &StepContext,
    failed: &StepOutcome,
    at: Timestamp,
) -> Option<RollbackHold> {
    if app.service_token.0.is_none() {
        tracing::warn!(deployment = %ctx.deployment_id, "[orchestration] service_token is not set: governance's rollback criteria cannot be asked, so a failed step rolls back at once");
        return None;
    }
    let step = FailedStep {
        decision: Uuid::new_v5(&ctx.step_id, b"rollback-decision"),
        release: ctx.release.clone(),
        environment: ctx.environment.clone(),
        service: ctx.service.clone(),
        business_unit: ctx.business_unit.clone(),
        exit_code: failed.exit_code.unwrap_or(-1),
        at,
    };
    match app
        .peers
        .open_rollback_decision(&step, &app.service_token)
        .await
    {
        Ok(hold) => {
            tracing::info!(deployment = %ctx.deployment_id, decision = %hold.decision, notify = ?hold.notify, "a step failed: governance's rollback decision is open");
            Some(hold)
        }
        Err(e) => {
            tracing::warn!(deployment = %ctx.deployment_id, error = %e, "governance's rollback criteria could not be applied: rolling back at once");
            None
        }
    }
}

/// A service's descriptor in the deployment's release, for the executor's environment.
fn descriptor_of(o: &Orchestration, d: &Deployment, service: &str) -> Option<DescriptorRef> {
    let r = o.releases.get(&d.release_id)?;
    let item = r.items.iter().find(|i| i.service == service)?;
    Some((
        item.descriptor.kind.as_str().to_owned(),
        item.descriptor.reference.clone(),
        item.descriptor.version.clone(),
    ))
}
