//! What orchestration takes from other services' event streams: monitoring's
//! `RollbackRequested` rolls a release back in the environment it names; governance's
//! `RollbackDecided` about a deployment held after a failed step rolls it back, or ends it
//! failed where it stands when people decided not to; risk-validation's `CanaryJudged` decides
//! an analysis step and its `ValidationRecorded` records an environment's check.

use std::sync::Arc;

use flotilla_bus::CloudEvent;
use flotilla_core::event::Metadata;
use flotilla_runtime::kit;
use flotilla_runtime::{EventHandler, HandlerError};
use prost::Message;
use uuid::Uuid;

use crate::app::OrchestrationApp;
use crate::domain::*;

/// The services whose events orchestration takes.
pub const SOURCES: [&str; 3] = ["monitoring", "governance", "risk-validation"];

/// Monitoring's event that asks for a rollback.
pub const ROLLBACK_REQUESTED: &str = "flotilla.monitoring.v1.RollbackRequested";

/// Governance's event: people took a rollback decision.
pub const ROLLBACK_DECIDED: &str = "flotilla.governance.v1.RollbackDecided";

/// Risk-validation's event: a canary was judged for an analysis step.
pub const CANARY_JUDGED: &str = "flotilla.risk.v1.CanaryJudged";

/// Risk-validation's event: a validation of a release in an environment passed or failed.
pub const VALIDATION_RECORDED: &str = "flotilla.risk.v1.ValidationRecorded";

/// The command one kind of event asks for, or `None` when it asks for nothing here.
type Taken = Result<Option<(Uuid, Command)>, DomainError>;
type Taker = fn(&Orchestration, &CloudEvent, Uuid) -> Taken;

/// The command another service's event asks for, with the event's id; `None` for events
/// orchestration does not take, or a rollback of a release it does not run there.
pub fn command_of(o: &Orchestration, event: &CloudEvent) -> Taken {
    let take: Taker = match event.ty.as_str() {
        ROLLBACK_REQUESTED => rollback_requested,
        ROLLBACK_DECIDED => rollback_decided,
        CANARY_JUDGED => canary_judged,
        VALIDATION_RECORDED => validation_recorded,
        _ => return Ok(None),
    };
    let id = event
        .event_id()
        .map_err(|e| invalid(&event.ty, e.to_string()))?;
    take(o, event, id)
}

/// Monitoring's rollback request for a release in the environment it runs in; `None` for
/// another environment.
fn rollback_requested(o: &Orchestration, event: &CloudEvent, id: Uuid) -> Taken {
    let bad = |reason: String| invalid(&event.ty, reason);
    let e = flotilla_proto::monitoring::v1::RollbackRequested::decode(event.data.as_slice())
        .map_err(|err| bad(format!("event {} does not decode: {err}", event.id)))?;
    let Some(r) = o.release_named(&e.release) else {
        return Err(DomainError::NotFound(format!(
            "release {}",
            shown(&e.release)
        )));
    };
    // A request about another environment than the one the release runs in changes nothing.
    let here = match &r.status {
        ReleaseStatus::Promoting { environment, .. } | ReleaseStatus::Deployed { environment } => {
            environment == &e.environment
        }
        _ => false,
    };
    if !here {
        return Ok(None);
    }
    let at = flotilla_runtime::kit::time::stored(e.requested_at.as_ref());
    Ok(Some((
        id,
        RollbackRelease {
            release: r.id,
            reason: if e.reason.is_empty() {
                "monitoring requested a rollback".into()
            } else {
                e.reason
            },
            by: "monitoring".into(),
            at: if at.0 == 0 { Timestamp::now() } else { at },
        }
        .into(),
    )))
}

/// Governance's rollback decision about a deployment held after a failed step; `None` for a
/// decision about anything else (a threshold breach that monitoring acts on, a deployment that
/// no longer waits).
fn rollback_decided(o: &Orchestration, event: &CloudEvent, id: Uuid) -> Taken {
    let e = flotilla_proto::governance::v1::RollbackDecided::decode(event.data.as_slice())
        .map_err(|err| {
            invalid(
                &event.ty,
                format!("event {} does not decode: {err}", event.id),
            )
        })?;
    let Ok(decision) = e.decision_id.parse::<Uuid>() else {
        return Ok(None);
    };
    let held = o.active_deployments().find(|d| {
        matches!(&d.status, DeploymentStatus::AwaitingRollbackDecision { decision: awaited, .. } if *awaited == decision)
    });
    let Some(d) = held else {
        return Ok(None);
    };
    let at = flotilla_runtime::kit::time::stored(e.decided_at.as_ref());
    let at = if at.0 == 0 { Timestamp::now() } else { at };
    let by = if e.decided_by.is_empty() {
        "governance".to_owned()
    } else {
        e.decided_by
    };
    let command: Command = if e.roll_back {
        RollbackRelease {
            release: d.release_id,
            reason: if e.comment.is_empty() {
                format!("rollback decision {decision} taken in governance")
            } else {
                format!(
                    "rollback decision {decision} taken in governance: {}",
                    e.comment
                )
            },
            by,
            at,
        }
        .into()
    } else {
        DeclineRollback {
            deployment: d.id,
            decision,
            by,
            comment: e.comment,
            at,
        }
        .into()
    };
    Ok(Some((id, command)))
}

/// Risk-validation's canary judgement for an analysis step: Pass passes it, Fail fails it, and
/// Marginal is inconclusive (the deployment pauses for a person; never a pass). `None` for a
/// deployment orchestration does not run.
fn canary_judged(o: &Orchestration, event: &CloudEvent, id: Uuid) -> Taken {
    use flotilla_proto::risk::v1 as risk;
    let e = risk::CanaryJudged::decode(event.data.as_slice()).map_err(|err| {
        invalid(
            &event.ty,
            format!("event {} does not decode: {err}", event.id),
        )
    })?;
    let Some(j) = e.judgement else {
        return Ok(None);
    };
    let Ok(deployment) = j.deployment_id.parse::<Uuid>() else {
        return Ok(None);
    };
    let Some(d) = o.deployments.get(&deployment) else {
        return Ok(None);
    };
    // A judgement about another unit's, release's or environment's deployment is not taken.
    if d.business_unit != j.business_unit
        || d.release != j.release
        || d.environment != j.environment
    {
        tracing::warn!(judgement = %j.judgement_id, %deployment, "a canary judgement names a deployment of another unit, release or environment; ignored");
        return Ok(None);
    }
    let at = flotilla_runtime::kit::time::stored(j.judged_at.as_ref());
    // A judgement from before the analysis step started (a stale or repeated one) is not its.
    let started = d.steps.iter().find_map(|s| {
        matches!(&s.kind, StepKind::Analysis { name, .. } if *name == j.analysis)
            .then(|| s.started_at())
            .flatten()
    });
    if started.is_some_and(|s| at.0 != 0 && at < s) {
        return Ok(None);
    }
    let label = risk::JudgementLabel::try_from(j.label).ok();
    let verdict = match label {
        Some(risk::JudgementLabel::Pass) => Verdict::Passed,
        Some(risk::JudgementLabel::Marginal) => Verdict::Inconclusive,
        _ => Verdict::Failed,
    };
    let mut detail = format!(
        "canary judgement {}: score {} ({}); {}",
        j.judgement_id,
        j.score,
        label.map_or("unknown", |l| l.as_str_name()),
        j.reason
    );
    // An analysis detail holds 4 KiB: a long reason is cut, never a reason to drop the verdict.
    if detail.len() > 4096 {
        detail.truncate(detail.floor_char_boundary(4093));
        detail.push_str("...");
    }
    Ok(Some((
        id,
        RecordAnalysis {
            deployment,
            name: j.analysis,
            verdict,
            detail,
            at: if at.0 == 0 { Timestamp::now() } else { at },
        }
        .into(),
    )))
}

/// Risk-validation's validation of a release in an environment, as the environment's check
/// named by its kind (`performance`, `security-controls`, `backup-restore`, `third-party`);
/// `None` where the environment does not require that kind or the release is not orchestration's.
fn validation_recorded(o: &Orchestration, event: &CloudEvent, id: Uuid) -> Taken {
    use flotilla_proto::risk::v1 as risk;
    let e = risk::ValidationRecorded::decode(event.data.as_slice()).map_err(|err| {
        invalid(
            &event.ty,
            format!("event {} does not decode: {err}", event.id),
        )
    })?;
    let Some(v) = e.validation else {
        return Ok(None);
    };
    let check = match risk::ValidationKind::try_from(v.kind) {
        Ok(risk::ValidationKind::Performance) => "performance",
        Ok(risk::ValidationKind::SecurityControls) => "security-controls",
        Ok(risk::ValidationKind::BackupRestore) => "backup-restore",
        Ok(risk::ValidationKind::ThirdParty) => "third-party",
        _ => return Ok(None),
    };
    let required = o
        .environment(&v.business_unit, &v.environment)
        .is_some_and(|env| env.checks.iter().any(|c| c == check));
    if !required || o.release_named(&v.release).is_none() {
        return Ok(None);
    }
    let at = flotilla_runtime::kit::time::stored(v.recorded_at.as_ref());
    Ok(Some((
        id,
        RecordValidation {
            business_unit: v.business_unit,
            environment: v.environment,
            release: v.release,
            check: check.to_owned(),
            passed: v.passed,
            at: if at.0 == 0 { Timestamp::now() } else { at },
        }
        .into(),
    )))
}

/// Applies monitoring's, governance's and risk-validation's events to orchestration's one app.
pub struct Inbound(pub Arc<OrchestrationApp>);

#[async_trait::async_trait]
impl EventHandler for Inbound {
    async fn handle(&self, event: &CloudEvent) -> Result<(), HandlerError> {
        let command = self
            .0
            .query(|o| command_of(o, event))
            .map_err(|e| HandlerError::Reject(e.to_string()))?;
        let Some((id, command)) = command else {
            return Ok(());
        };
        let md = Metadata::by(
            "orchestration-consumer",
            event.extension("businessunit").unwrap_or_default(),
        )
        .with_causation(id);
        match self.0.consume(id, command, md).await {
            Ok(_) => Ok(()),
            // Rolled back already, or never deployed: nothing to do.
            Err(kit::AppError::Domain(DomainError::FailedPrecondition(reason))) => {
                tracing::info!(event = %event.id, %reason, "rollback request changes nothing");
                Ok(())
            }
            Err(kit::AppError::Domain(e)) => Err(HandlerError::Reject(e.to_string())),
            Err(e) => Err(HandlerError::Retry(e.to_string())),
        }
    }
}
