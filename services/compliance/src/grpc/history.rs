//! Point in time: `GetStateAt` (any aggregate as of an instant) and `GetApprovalEvidence`
//! (what was known when an approval was given) and `GetEvidencePack` (the controls tested over
//! a period), against a checkpoint signed for the ledger as it is.

use flotilla_core::names::{shown, text};
use flotilla_proto::compliance::v1 as pb;
use flotilla_runtime::kit::time::{from_request, to_proto};
use flotilla_runtime::kit::{Caller, status};
use tonic::{Code, Status};

use super::report::everything;
use crate::app::Ledger;
use crate::domain::Timestamp;
use crate::report::controls::{self, Case, Conclusion, Period};
use crate::report::point_in_time::{
    AggregateState, ApprovalGiven, MAX_AGGREGATES, StateQuery, approval_evidence, states_at,
};
use crate::report::{Line, read};

fn invalid(field: &str, reason: &str) -> Status {
    status(Code::InvalidArgument, &format!("{field}: {reason}"))
}

fn checked(field: &str, v: &str, max: usize) -> Result<(), Status> {
    text(field, v, max)
        .map(|_| ())
        .map_err(|e| invalid(&e.field, &e.reason))
}

impl TryFrom<pb::GetStateAtRequest> for StateQuery {
    type Error = Status;

    fn try_from(r: pb::GetStateAtRequest) -> Result<Self, Status> {
        if r.aggregate.is_empty() {
            return Err(invalid(
                "aggregate",
                "name the aggregate type (the stream's prefix), e.g. release, environment, approval, policy, window, deviation, deployment or artifact",
            ));
        }
        checked("aggregate", &r.aggregate, 64)?;
        if !r.key.is_empty() {
            checked("key", &r.key, 256)?;
        }
        if !r.service.is_empty() {
            checked("service", &r.service, 64)?;
        }
        let at = match r.at {
            Some(t) => from_request(&t).map_err(|e| invalid("at", &e))?,
            None => Timestamp::now(),
        };
        Ok(StateQuery {
            aggregate: r.aggregate,
            key: r.key,
            service: r.service,
            at,
        })
    }
}

fn cited(l: Line) -> pb::CitedEvent {
    pb::CitedEvent {
        index: l.index,
        service: l.service,
        sequence: l.sequence,
        event_id: l.event_id,
        event_type: l.event_type,
        event_hash: l.event_hash,
        actor: l.actor,
        recorded_at: Some(to_proto(l.recorded_at)),
        summary: l.summary,
        leaf: hex::decode(&l.leaf).unwrap_or_default(),
        proof: l
            .proof
            .iter()
            .map(|h| hex::decode(h).unwrap_or_default())
            .collect(),
    }
}

impl From<AggregateState> for pb::AggregateState {
    fn from(s: AggregateState) -> Self {
        let last = s.events.last().map(|l| to_proto(l.recorded_at));
        pb::AggregateState {
            service: s.service,
            stream: s.stream,
            aggregate: s.aggregate,
            version: s.version,
            last_event_type: s.last_event_type,
            last_recorded_at: last,
            fields: s
                .fields
                .into_iter()
                .map(|f| pb::StateField {
                    name: f.name,
                    values: f.values,
                    set_by: f.set_by,
                    set_by_type: f.set_by_type,
                })
                .collect(),
            events: s.events.into_iter().map(cited).collect(),
        }
    }
}

impl From<ApprovalGiven> for pb::ApprovalGiven {
    fn from(a: ApprovalGiven) -> Self {
        pb::ApprovalGiven {
            approver: a.approver,
            role: a.role,
            approval: Some(cited(a.approval)),
            evidence_digest: a.evidence_digest,
            evidence: a.evidence.into_iter().map(cited).collect(),
        }
    }
}

pub async fn state_at(
    ledger: &Ledger,
    q: StateQuery,
    call: &Caller,
) -> Result<pb::StateAt, Status> {
    let (checkpoint, events) = everything(ledger, call).await?;
    let read = read(events, &checkpoint);
    let (states, truncated) = ledger.query(|s| states_at(s, &read, &q, &checkpoint));
    if states.is_empty() {
        let key = if q.key.is_empty() {
            String::new()
        } else {
            format!(" named {}", shown(&q.key))
        };
        return Err(status(
            Code::NotFound,
            &format!(
                "the ledger holds no {} aggregate{key} recorded by {}; check the type (the stream's prefix, e.g. release, approval, policy) and the key (a name, an id or a stream id)",
                shown(&q.aggregate),
                q.at.to_rfc3339()
            ),
        ));
    }
    if truncated {
        tracing::info!(aggregate = %q.aggregate, limit = MAX_AGGREGATES, "state at: more aggregates matched than one answer holds");
    }
    Ok(pb::StateAt {
        at: Some(to_proto(q.at)),
        states: states.into_iter().map(Into::into).collect(),
        truncated,
        checkpoint: checkpoint.note,
        tree_size: checkpoint.size,
    })
}

pub async fn approval(
    ledger: &Ledger,
    r: pb::GetApprovalEvidenceRequest,
    call: &Caller,
) -> Result<pb::ApprovalEvidence, Status> {
    if uuid::Uuid::parse_str(&r.request_id).is_err() {
        return Err(invalid(
            "request_id",
            &format!(
                "{} is not an approval request id (a uuid)",
                shown(&r.request_id)
            ),
        ));
    }
    if !r.approver.is_empty() {
        checked("approver", &r.approver, 256)?;
    }
    let (checkpoint, events) = everything(ledger, call).await?;
    let read = read(events, &checkpoint);
    let found = ledger
        .query(|s| approval_evidence(s, &read, &r.request_id, &r.approver, &checkpoint))
        .ok_or_else(|| {
            status(
                Code::NotFound,
                &format!(
                    "the ledger holds no approval request {} of a unit you see",
                    r.request_id
                ),
            )
        })?;
    Ok(pb::ApprovalEvidence {
        request_id: found.request_id,
        release: found.release,
        environment: found.environment,
        opened: Some(cited(found.opened)),
        approvals: found.approvals.into_iter().map(Into::into).collect(),
        checkpoint: checkpoint.note,
        tree_size: checkpoint.size,
    })
}

/// Passing cases drawn per control when the request leaves it at 0, and the most it may ask.
const SAMPLES: u32 = 25;
const MAX_SAMPLES: u32 = 200;

pub async fn pack(
    ledger: &Ledger,
    r: pb::GetEvidencePackRequest,
    call: &Caller,
) -> Result<pb::EvidencePack, Status> {
    let time = |field: &str, t: Option<prost_types::Timestamp>| {
        let t = t.ok_or_else(|| invalid(field, "is required (the period tested is [from, to))"))?;
        from_request(&t).map_err(|e| invalid(field, &e))
    };
    let period = Period {
        from: time("from", r.from)?,
        to: time("to", r.to)?,
    };
    if period.to <= period.from {
        return Err(invalid("to", "must be after from"));
    }
    if r.sample_size > MAX_SAMPLES {
        return Err(invalid(
            "sample_size",
            &format!("{} is more than {MAX_SAMPLES}", r.sample_size),
        ));
    }
    let sample_size = if r.sample_size == 0 {
        SAMPLES
    } else {
        r.sample_size
    };
    let (checkpoint, events) = everything(ledger, call).await?;
    let read = read(events, &checkpoint);
    let pack = ledger
        .query(|s| controls::evidence_pack(s, &read, period, sample_size as usize, &checkpoint));
    let case = |c: Case| pb::ControlCase {
        key: c.key,
        subject: c.subject,
        detail: c.detail,
        events: c.events.into_iter().map(cited).collect(),
    };
    Ok(pb::EvidencePack {
        from: Some(to_proto(period.from)),
        to: Some(to_proto(period.to)),
        sample_size,
        controls: pack
            .controls
            .into_iter()
            .map(|c| pb::ControlTest {
                id: c.id.into(),
                objective: c.objective.into(),
                test: c.test.into(),
                limits: c.limits.into(),
                population: c.population,
                conclusion: match c.conclusion {
                    Conclusion::Effective => pb::ControlConclusion::Effective,
                    Conclusion::ExceptionsFound => pb::ControlConclusion::ExceptionsFound,
                    Conclusion::NotExercised => pb::ControlConclusion::NotExercised,
                } as i32,
                exceptions: c.exceptions.into_iter().map(case).collect(),
                samples: c.samples.into_iter().map(case).collect(),
                operated: c.operated.into_iter().map(cited).collect(),
            })
            .collect(),
        checkpoint: pack.checkpoint,
        tree_size: pack.tree_size,
    })
}
