//! A deployment's progress as the runner, analyses and people report it: steps started and
//! finished, analysis verdicts (an inconclusive one pauses for a person and never counts as a
//! pass), resumption, and rollback of everything touched, in reverse.

use flotilla_core::decider::Decision;

use super::*;

fn key(d: &Deployment) -> StreamKey {
    StreamKey::Deployment(d.id)
}

/// The step a deployment is at, when it is `index` (refused otherwise: a runner's report that
/// is late or out of order changes nothing).
fn at_step(d: &Deployment, index: u32, what: &str) -> Result<()> {
    let current = match d.next() {
        Next::Start(i) | Next::Running(i) | Next::WaitUntil(i, _) | Next::Waiting(i) => Some(i),
        Next::Decide(_) | Next::Close | Next::Nothing => None,
    };
    if current == Some(index) {
        return Ok(());
    }
    Err(precondition(format!(
        "deployment {} cannot {what} step {index}: it is at {}",
        d.id,
        current.map_or("no step (it is over)".into(), |i| format!("step {i}"))
    )))
}

impl Orchestration {
    pub(super) fn start_step(&self, c: StartStep) -> Result<Decision<Event>> {
        let d = self.deployment_or_refuse(c.deployment)?;
        if d.next() != Next::Start(c.index) {
            at_step(d, c.index, "start")?;
            return Err(precondition(format!(
                "step {} of deployment {} has started already",
                c.index, d.id
            )));
        }
        decided(
            key(d),
            vec![Event::StepStarted {
                deployment: d.id,
                index: c.index,
                at: c.at,
            }],
        )
    }

    pub(super) fn finish_step(&self, c: FinishStep) -> Result<Decision<Event>> {
        let d = self.deployment_or_refuse(c.deployment)?;
        let step = d.step(c.index).ok_or_else(|| {
            DomainError::NotFound(format!("step {} of deployment {}", c.index, d.id))
        })?;
        if step.started_at().is_none() {
            return Err(precondition(format!(
                "step {} of deployment {} is not running",
                c.index, d.id
            )));
        }
        let mut events = vec![Event::StepFinished {
            deployment: d.id,
            index: c.index,
            outcome: c.outcome.clone(),
            at: c.at,
        }];
        // A forward step that ends once the rollback has begun is only recorded: the rollback
        // (which waited for it) decides what runs.
        let turned = !step.rollback
            && matches!(
                d.status,
                DeploymentStatus::RollingBack { .. }
                    | DeploymentStatus::RolledBack { .. }
                    | DeploymentStatus::Failed { .. }
            );
        if !turned {
            events.extend(after_step(d, c.index, &c.outcome, c.hold.as_ref(), c.at));
        }
        decided(key(d), events)
    }

    pub(super) fn record_analysis(&self, c: RecordAnalysis) -> Result<Decision<Event>> {
        let d = self.deployment_or_refuse(c.deployment)?;
        names::optional_text("detail", &c.detail, 4096).map_err(name_error)?;
        if !matches!(
            d.status,
            DeploymentStatus::Running | DeploymentStatus::Paused { .. }
        ) {
            return Err(precondition(format!(
                "deployment {} is not going forward (it is {}); an analysis verdict changes nothing now",
                d.id,
                d.status.as_str()
            )));
        }
        let waiting = d.steps.iter().find(|s| {
            !s.rollback
                && s.finished().is_none()
                && s.started_at().is_some()
                && matches!(&s.kind, StepKind::Analysis { name, .. } if *name == c.name)
        });
        let Some(step) = waiting else {
            return Err(precondition(format!(
                "deployment {} is not waiting for analysis {}",
                d.id,
                shown(&c.name)
            )));
        };
        if matches!(d.status, DeploymentStatus::Paused { .. }) {
            return Err(precondition(format!(
                "analysis {} of deployment {} was inconclusive; a person resumes it or rolls it back",
                c.name, d.id
            )));
        }
        let mut events = vec![Event::AnalysisRecorded {
            deployment: d.id,
            index: step.index,
            verdict: c.verdict,
            detail: c.detail.clone(),
            at: c.at,
        }];
        match c.verdict {
            Verdict::Inconclusive => events.push(Event::DeploymentPaused {
                deployment: d.id,
                reason: format!(
                    "analysis {} was inconclusive ({}); a person resumes it or rolls it back",
                    c.name, c.detail
                ),
                at: c.at,
            }),
            Verdict::Passed | Verdict::Failed => {
                let outcome = StepOutcome {
                    succeeded: c.verdict == Verdict::Passed,
                    exit_code: None,
                    duration_ms: duration_ms(step, c.at),
                    output_tail: format!("analysis {}: {}", c.verdict.as_str(), c.detail),
                };
                events.push(Event::StepFinished {
                    deployment: d.id,
                    index: step.index,
                    outcome: outcome.clone(),
                    at: c.at,
                });
                // A failed analysis aborts at once (Argo Rollouts' rule): no decision is awaited.
                events.extend(after_step(d, step.index, &outcome, None, c.at));
            }
        }
        decided(key(d), events)
    }

    /// A person resumes a deployment held by `pause {}` or paused by an inconclusive analysis:
    /// the step passes on their word (recorded as such).
    pub(super) fn resume_deployment(&self, c: ResumeDeployment) -> Result<Decision<Event>> {
        let d = self.deployment_or_refuse(c.deployment)?;
        let index = match d.next() {
            Next::Waiting(i) => i,
            _ => {
                return Err(precondition(format!(
                    "deployment {} is not waiting for a person",
                    d.id
                )));
            }
        };
        let step = d
            .step(index)
            .ok_or_else(|| DomainError::NotFound(format!("step {index}")))?;
        let paused = matches!(d.status, DeploymentStatus::Paused { .. });
        if !paused && !matches!(step.kind, StepKind::Hold) {
            return Err(precondition(format!(
                "deployment {} waits for an analysis verdict, not for a person",
                d.id
            )));
        }
        let outcome = StepOutcome {
            succeeded: true,
            exit_code: None,
            duration_ms: duration_ms(step, c.at),
            output_tail: if paused {
                format!("resumed by {} after an inconclusive analysis", c.by)
            } else {
                format!("resumed by {}", c.by)
            },
        };
        let mut events = Vec::new();
        if paused {
            events.push(Event::DeploymentResumed {
                deployment: d.id,
                by: c.by.clone(),
                at: c.at,
            });
        }
        events.push(Event::StepFinished {
            deployment: d.id,
            index,
            outcome: outcome.clone(),
            at: c.at,
        });
        let mut resumed = d.clone();
        resumed.status = DeploymentStatus::Running;
        events.extend(after_step(&resumed, index, &outcome, None, c.at));
        decided(key(d), events)
    }

    /// Rolls back the release's deployment where it runs now (or is being deployed), every
    /// touched service, in reverse order.
    pub(super) fn rollback_release(&self, c: RollbackRelease) -> Result<Decision<Event>> {
        let r = self.release_or_refuse(c.release)?;
        text("reason", &c.reason, 4096)?;
        let d = r
            .deployments
            .last()
            .and_then(|id| self.deployments.get(id))
            .ok_or_else(|| {
                precondition(format!(
                    "release {} was never deployed; there is nothing to roll back",
                    r.name
                ))
            })?;
        match &d.status {
            DeploymentStatus::RollingBack { .. } => {
                return Err(precondition(format!(
                    "release {} is being rolled back in {} already",
                    r.name, d.environment
                )));
            }
            // Ended failed after people decided not to roll back: it can be rolled back now.
            DeploymentStatus::Failed { .. } if !d.steps.iter().any(|s| s.rollback) => {}
            DeploymentStatus::RolledBack { .. } | DeploymentStatus::Failed { .. } => {
                return Err(precondition(format!(
                    "release {}'s last deployment (to {}) was rolled back already",
                    r.name, d.environment
                )));
            }
            DeploymentStatus::Succeeded => {
                let running = self.environment(&d.business_unit, &d.environment);
                let replaced: Vec<String> = d
                    .steps
                    .iter()
                    .filter(|s| !s.rollback)
                    .filter_map(|s| Some((s.service.as_str(), s.version.as_deref()?)))
                    .filter(|(svc, v)| {
                        running
                            .and_then(|e| e.running.get(*svc))
                            .map(String::as_str)
                            != Some(*v)
                    })
                    .map(|(svc, v)| format!("{svc} {v}"))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if !replaced.is_empty() {
                    return Err(precondition(format!(
                        "release {} no longer runs in {} as deployed ({} replaced since); roll back the release that replaced it",
                        r.name,
                        d.environment,
                        replaced.join(", ")
                    )));
                }
            }
            DeploymentStatus::Running
            | DeploymentStatus::Paused { .. }
            | DeploymentStatus::AwaitingRollbackDecision { .. } => {}
        }
        let reason = match &d.status {
            // What failed stays in the reason, with who decided.
            DeploymentStatus::AwaitingRollbackDecision { reason, .. } => {
                format!("{reason}; {} (by {})", c.reason, c.by)
            }
            _ => format!("{} (by {})", c.reason, c.by),
        };
        decided(key(d), start_rollback(d, reason, c.at))
    }

    /// People decided in governance not to roll back a deployment held after a failed step:
    /// it ends failed where it stands (fixed forward by a later release, or rolled back by
    /// hand).
    pub(super) fn decline_rollback(&self, c: DeclineRollback) -> Result<Decision<Event>> {
        let d = self.deployment_or_refuse(c.deployment)?;
        names::optional_text("comment", &c.comment, 4096).map_err(name_error)?;
        let DeploymentStatus::AwaitingRollbackDecision {
            reason, decision, ..
        } = &d.status
        else {
            return Err(precondition(format!(
                "deployment {} is not awaiting a rollback decision (it is {})",
                d.id,
                d.status.as_str()
            )));
        };
        if *decision != c.decision {
            return Err(precondition(format!(
                "deployment {} awaits rollback decision {decision}, not {}",
                d.id, c.decision
            )));
        }
        let said = if c.comment.is_empty() {
            String::new()
        } else {
            format!(" ({})", c.comment)
        };
        decided(
            key(d),
            vec![Event::DeploymentCompleted {
                deployment: d.id,
                release: d.release.clone(),
                environment: d.environment.clone(),
                ending: Ending::Failed {
                    reason: format!(
                        "{reason}; {} decided not to roll back{said}: it stays as it stands, to be fixed forward or rolled back by hand",
                        c.by
                    ),
                },
                at: c.at,
            }],
        )
    }
}

fn duration_ms(step: &Step, at: Timestamp) -> u64 {
    step.started_at()
        .map_or(0, |s| u64::try_from((at.0 - s.0) / 1_000).unwrap_or(0))
}

/// The rollback of everything a deployment touched (or its end, when it touched nothing).
fn start_rollback(d: &Deployment, reason: String, at: Timestamp) -> Vec<Event> {
    let steps = deployment::rollback_steps(d);
    if steps.is_empty() {
        return vec![Event::DeploymentCompleted {
            deployment: d.id,
            release: d.release.clone(),
            environment: d.environment.clone(),
            ending: Ending::RolledBack { reason },
            at,
        }];
    }
    vec![Event::RollbackStarted {
        deployment: d.id,
        reason,
        steps,
        at,
    }]
}

/// What follows a finished step: the service's own end when it was its last step, after a
/// failure a rollback (or, when governance's criteria give people time, a hold for their
/// decision), the deployment's end after its last step.
fn after_step(
    before: &Deployment,
    index: u32,
    outcome: &StepOutcome,
    hold: Option<&RollbackHold>,
    at: Timestamp,
) -> Vec<Event> {
    let mut d = before.clone();
    let Some(step) = d.steps.get_mut(index as usize) else {
        return Vec::new();
    };
    step.state = StepState::Finished {
        at,
        outcome: outcome.clone(),
    };
    let step = step.clone();
    let rolling_back = matches!(d.status, DeploymentStatus::RollingBack { .. });
    let mut out = Vec::new();
    if !outcome.succeeded {
        if step.rollback {
            out.push(Event::DeploymentCompleted {
                deployment: d.id,
                release: d.release.clone(),
                environment: d.environment.clone(),
                ending: Ending::Failed {
                    reason: format!(
                        "rollback step {} ({} of {}) failed: {}; the environment needs a person",
                        step.index,
                        step.kind.name(),
                        step.service,
                        failure(outcome)
                    ),
                },
                at,
            });
            return out;
        }
        if rolling_back {
            // A forward step that was running when the rollback began: its end is recorded.
            return out;
        }
        out.push(Event::ServiceFinished {
            deployment: d.id,
            release: d.release.clone(),
            environment: d.environment.clone(),
            service: step.service.clone(),
            version: step.version.clone().unwrap_or_default(),
            artifact: d.artifacts.get(&step.service).cloned().unwrap_or_default(),
            previous_version: d.previous.get(&step.service).cloned().unwrap_or_default(),
            outcome: ServiceOutcome::Failed,
            started_at: d.started_at,
            at,
            deployed_by: d.started_by.clone(),
        });
        let reason = format!(
            "step {} ({} of {}) failed: {}",
            step.index,
            step.kind.name(),
            step.service,
            failure(outcome)
        );
        if let Some(h) = hold.filter(|h| h.decide_by > at) {
            out.push(Event::RollbackDecisionAwaited {
                deployment: d.id,
                decision: h.decision,
                reason,
                decide_by: h.decide_by,
                notify: h.notify.clone(),
                at,
            });
            return out;
        }
        out.extend(start_rollback(&d, reason, at));
        return out;
    }
    if step.rollback {
        if matches!(step.kind, StepKind::RollbackDeploy { .. }) {
            out.push(Event::ServiceFinished {
                deployment: d.id,
                release: d.release.clone(),
                environment: d.environment.clone(),
                service: step.service.clone(),
                version: d.previous.get(&step.service).cloned().unwrap_or_default(),
                artifact: d
                    .previous_artifacts
                    .get(&step.service)
                    .cloned()
                    .unwrap_or_default(),
                previous_version: d.previous.get(&step.service).cloned().unwrap_or_default(),
                outcome: ServiceOutcome::RolledBack,
                started_at: d.started_at,
                at,
                deployed_by: d.started_by.clone(),
            });
        }
    } else if !rolling_back {
        let service_done = d
            .steps
            .iter()
            .filter(|s| !s.rollback && s.service == step.service)
            .all(|s| s.finished().is_some_and(|o| o.succeeded));
        if service_done {
            out.push(Event::ServiceFinished {
                deployment: d.id,
                release: d.release.clone(),
                environment: d.environment.clone(),
                service: step.service.clone(),
                // A co-deployment partner is redeployed as it runs: it keeps its version.
                version: step
                    .version
                    .clone()
                    .or_else(|| d.previous.get(&step.service).cloned())
                    .unwrap_or_default(),
                artifact: d
                    .artifacts
                    .get(&step.service)
                    .or_else(|| d.previous_artifacts.get(&step.service))
                    .cloned()
                    .unwrap_or_default(),
                previous_version: d.previous.get(&step.service).cloned().unwrap_or_default(),
                outcome: ServiceOutcome::Succeeded,
                started_at: d.started_at,
                at,
                deployed_by: d.started_by.clone(),
            });
        }
    }
    if d.next() == Next::Close {
        let ending = match &d.status {
            DeploymentStatus::RollingBack { reason } => Ending::RolledBack {
                reason: reason.clone(),
            },
            _ => Ending::Succeeded,
        };
        out.push(Event::DeploymentCompleted {
            deployment: d.id,
            release: d.release.clone(),
            environment: d.environment.clone(),
            ending,
            at,
        });
    }
    out
}

fn failure(o: &StepOutcome) -> String {
    let code = o
        .exit_code
        .map_or("no exit code".to_owned(), |c| format!("exit code {c}"));
    let tail = o.output_tail.lines().last().unwrap_or_default();
    if tail.is_empty() {
        code
    } else {
        format!("{code}: {tail}")
    }
}
