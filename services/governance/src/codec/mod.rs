//! Governance's events as stored: protobuf payloads of `flotilla.governance.v1.*` (and
//! `flotilla.common.v1.AccessPolicyReplaced`), schema version 1.
//!
//! Decoding never applies the API's rules ([`stored`] takes what was once accepted as it is):
//! tightening a rule of the API cannot make an audit event of years ago fail to replay.

use flotilla_core::decider::StoredEvents;
use flotilla_proto::governance::v1 as pb;
use prost::Message;
use uuid::Uuid;

use crate::domain::*;
use crate::messages::*;

mod stored;

const PREFIX: &str = "flotilla.governance.v1.";
const COMMON: &str = "flotilla.common.v1.";
/// Schema version of every governance event today.
pub const SCHEMA_VERSION: u32 = 1;

/// Governance's events to and from stored payloads.
#[derive(Clone, Copy, Debug, Default)]
pub struct GovernanceEvents;

impl StoredEvents<Event> for GovernanceEvents {
    fn encode(&self, event: &Event) -> (String, u32, Vec<u8>) {
        let (ty, payload) = encode(event);
        (ty, SCHEMA_VERSION, payload)
    }

    fn decode(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<Option<Event>, String> {
        decode(event_type, schema_version, payload)
    }
}

fn encode(event: &Event) -> (String, Vec<u8>) {
    let (name, bytes) = match event {
        Event::PolicySet {
            version,
            policy,
            at,
        } => (
            "PolicySet",
            pb::PolicySet {
                version: *version,
                policy: Some(policy_pb(policy)),
                set_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::ApprovalRequestOpened(r) => (
            "ApprovalRequestOpened",
            pb::ApprovalRequestOpened {
                request_id: r.id.to_string(),
                release: Some(facts_pb(&r.release)),
                requirements: r
                    .requirements
                    .iter()
                    .map(|q| pb::RoleRequirement {
                        role: q.role.clone(),
                        count: q.count,
                    })
                    .collect(),
                opened_at: Some(ts(r.opened_at)),
                due_at: Some(ts(r.due_at)),
                expires_at: Some(ts(r.expires_at)),
                policy_version: r.policy_version,
                emergency: r.emergency,
                escalate_to: r.escalate_to.clone(),
                approval_validity_minutes: r.validity_minutes,
                from_assessment: r.assessed,
            }
            .encode_to_vec(),
        ),
        Event::ApprovalGranted {
            request_id,
            approval,
        } => (
            "ApprovalGranted",
            pb::ApprovalGranted {
                request_id: request_id.to_string(),
                approval: Some(approval_pb(approval)),
            }
            .encode_to_vec(),
        ),
        Event::ApprovalRejected {
            request_id,
            approver,
            role,
            comment,
            at,
        } => (
            "ApprovalRejected",
            pb::ApprovalRejected {
                request_id: request_id.to_string(),
                approver: approver.clone(),
                role: role.clone(),
                comment: comment.clone(),
                rejected_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::ApprovalEscalated {
            request_id,
            at,
            notify,
        } => (
            "ApprovalEscalated",
            pb::ApprovalEscalated {
                request_id: request_id.to_string(),
                escalated_at: Some(ts(*at)),
                notify: notify.clone(),
            }
            .encode_to_vec(),
        ),
        Event::ApprovalRequestExpired { request_id, at } => (
            "ApprovalRequestExpired",
            pb::ApprovalRequestExpired {
                request_id: request_id.to_string(),
                expired_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::SegregationOfDutiesViolated {
            request_id,
            actor,
            role,
            rule,
            detail,
            at,
        } => (
            "SegregationOfDutiesViolated",
            pb::SegregationOfDutiesViolated {
                request_id: request_id.to_string(),
                actor: actor.clone(),
                role: role.clone(),
                rule: rule.clone(),
                detail: detail.clone(),
                attempted_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::CabDecisionRecorded(d) => (
            "CabDecisionRecorded",
            pb::CabDecisionRecorded {
                decision: Some(cab_pb(d)),
            }
            .encode_to_vec(),
        ),
        Event::FreezeWindowCreated(w) => (
            "FreezeWindowCreated",
            pb::FreezeWindowCreated {
                window: Some(window_pb(w)),
            }
            .encode_to_vec(),
        ),
        Event::FreezeWindowCancelled {
            window_id,
            reason,
            at,
        } => (
            "FreezeWindowCancelled",
            pb::FreezeWindowCancelled {
                window_id: window_id.to_string(),
                reason: reason.clone(),
                cancelled_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::DeviationRequested { deviation, at } => (
            "DeviationRequested",
            pb::DeviationRequested {
                deviation: Some(deviation_pb(deviation)),
                requested_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::DeviationApproved {
            deviation_id,
            approver,
            role,
            comment,
            at,
        } => (
            "DeviationApproved",
            pb::DeviationApproved {
                deviation_id: deviation_id.to_string(),
                approver: approver.clone(),
                role: role.clone(),
                comment: comment.clone(),
                approved_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::DeviationRejected {
            deviation_id,
            approver,
            role,
            comment,
            at,
        } => (
            "DeviationRejected",
            pb::DeviationRejected {
                deviation_id: deviation_id.to_string(),
                approver: approver.clone(),
                role: role.clone(),
                comment: comment.clone(),
                rejected_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::DeviationExpired { deviation_id, at } => (
            "DeviationExpired",
            pb::DeviationExpired {
                deviation_id: deviation_id.to_string(),
                expired_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::RollbackDecisionOpened(d) => (
            "RollbackDecisionOpened",
            pb::RollbackDecisionOpened {
                decision: Some(rollback_pb(d)),
            }
            .encode_to_vec(),
        ),
        Event::RollbackDecided {
            decision_id,
            roll_back,
            decided_by,
            comment,
            at,
        } => (
            "RollbackDecided",
            pb::RollbackDecided {
                decision_id: decision_id.to_string(),
                roll_back: *roll_back,
                decided_by: decided_by.clone(),
                comment: comment.clone(),
                decided_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::RollbackDecisionOverdue {
            decision_id,
            at,
            notify,
        } => (
            "RollbackDecisionOverdue",
            pb::RollbackDecisionOverdue {
                decision_id: decision_id.to_string(),
                overdue_at: Some(ts(*at)),
                notify: notify.clone(),
            }
            .encode_to_vec(),
        ),
        Event::AccessPolicyReplaced {
            version,
            policy,
            sha256,
            at,
            signed,
        } => (
            "AccessPolicyReplaced",
            flotilla_proto::common::v1::AccessPolicyReplaced {
                version: *version,
                policy: policy.clone(),
                sha256: sha256.clone(),
                replaced_at: Some(ts(*at)),
                namespace: signed.namespace.clone(),
                signature: signed.signature.clone(),
                signing_key: signed.signing_key.clone(),
            }
            .encode_to_vec(),
        ),
        Event::FmeaActionsRecorded {
            release,
            business_unit,
            open_actions,
            at,
            source_event_id,
        } => (
            "FmeaActionsRecorded",
            pb::FmeaActionsRecorded {
                release: release.clone(),
                business_unit: business_unit.clone(),
                open_actions: open_actions.clone(),
                recorded_at: Some(ts(*at)),
                source_event_id: source_event_id.to_string(),
            }
            .encode_to_vec(),
        ),
        Event::CatalogServiceRecorded {
            service,
            source_event_id,
            source_sequence,
        } => (
            "CatalogServiceRecorded",
            pb::CatalogServiceRecorded {
                service: service.name.clone(),
                business_unit: service.business_unit.clone(),
                criticality_tier: u32::from(service.tier),
                handles_personal_data: service.personal_data,
                owner_team: service.owner_team.clone(),
                source_event_id: source_event_id.to_string(),
                source_sequence: *source_sequence,
            }
            .encode_to_vec(),
        ),
    };
    let prefix = if name == "AccessPolicyReplaced" {
        COMMON
    } else {
        PREFIX
    };
    (format!("{prefix}{name}"), bytes)
}

fn dec<M: Message + Default>(bytes: &[u8]) -> Result<M, String> {
    M::decode(bytes).map_err(|e| format!("the payload does not decode: {e}"))
}

/// A UUID the service generated when it recorded the event.
fn uuid(field: &str, s: &str) -> Result<Uuid, String> {
    Uuid::parse_str(s).map_err(|_| format!("{field}: {} is not a UUID", names::shown(s)))
}

/// Decodes a stored event; `Ok(None)` for types governance keeps no state from (recorded
/// access refusals, other services' types).
pub fn decode(
    event_type: &str,
    schema_version: u32,
    bytes: &[u8],
) -> Result<Option<Event>, String> {
    let name = if let Some(n) = event_type.strip_prefix(PREFIX) {
        n
    } else if event_type == "flotilla.common.v1.AccessPolicyReplaced" {
        "AccessPolicyReplaced"
    } else {
        return Ok(None);
    };
    if schema_version != SCHEMA_VERSION {
        return Err(format!(
            "{event_type} version {schema_version} is not known to this build"
        ));
    }
    let e = match name {
        "PolicySet" => {
            let m: pb::PolicySet = dec(bytes)?;
            Event::PolicySet {
                version: m.version,
                policy: stored::policy(m.policy.unwrap_or_default()),
                at: stored::at(m.set_at.as_ref()),
            }
        }
        "ApprovalRequestOpened" => {
            let m: pb::ApprovalRequestOpened = dec(bytes)?;
            Event::ApprovalRequestOpened(Box::new(ApprovalRequest {
                id: uuid("request_id", &m.request_id)?,
                release: stored::facts(m.release.unwrap_or_default()),
                requirements: m
                    .requirements
                    .into_iter()
                    .map(|q| RoleRequirement {
                        role: q.role,
                        count: q.count,
                    })
                    .collect(),
                approvals: Vec::new(),
                opened_at: stored::at(m.opened_at.as_ref()),
                opened_by: String::new(),
                due_at: stored::at(m.due_at.as_ref()),
                expires_at: stored::at(m.expires_at.as_ref()),
                escalate_to: m.escalate_to,
                validity_minutes: m.approval_validity_minutes,
                policy_version: m.policy_version,
                emergency: m.emergency,
                assessed: m.from_assessment,
                escalated: false,
                expired: false,
                rejection: None,
                rejected_at: None,
                version: 0,
            }))
        }
        "ApprovalGranted" => {
            let m: pb::ApprovalGranted = dec(bytes)?;
            Event::ApprovalGranted {
                request_id: uuid("request_id", &m.request_id)?,
                approval: stored::approval(m.approval.unwrap_or_default()),
            }
        }
        "ApprovalRejected" => {
            let m: pb::ApprovalRejected = dec(bytes)?;
            Event::ApprovalRejected {
                request_id: uuid("request_id", &m.request_id)?,
                approver: m.approver,
                role: m.role,
                comment: m.comment,
                at: stored::at(m.rejected_at.as_ref()),
            }
        }
        "ApprovalEscalated" => {
            let m: pb::ApprovalEscalated = dec(bytes)?;
            Event::ApprovalEscalated {
                request_id: uuid("request_id", &m.request_id)?,
                at: stored::at(m.escalated_at.as_ref()),
                notify: m.notify,
            }
        }
        "ApprovalRequestExpired" => {
            let m: pb::ApprovalRequestExpired = dec(bytes)?;
            Event::ApprovalRequestExpired {
                request_id: uuid("request_id", &m.request_id)?,
                at: stored::at(m.expired_at.as_ref()),
            }
        }
        "SegregationOfDutiesViolated" => {
            let m: pb::SegregationOfDutiesViolated = dec(bytes)?;
            Event::SegregationOfDutiesViolated {
                request_id: uuid("request_id", &m.request_id)?,
                actor: m.actor,
                role: m.role,
                rule: m.rule,
                detail: m.detail,
                at: stored::at(m.attempted_at.as_ref()),
            }
        }
        "CabDecisionRecorded" => {
            let m: pb::CabDecisionRecorded = dec(bytes)?;
            Event::CabDecisionRecorded(stored::cab(m.decision.unwrap_or_default()))
        }
        "FreezeWindowCreated" => {
            let m: pb::FreezeWindowCreated = dec(bytes)?;
            let w = m.window.unwrap_or_default();
            let id = uuid("window_id", &w.window_id)?;
            Event::FreezeWindowCreated(stored::window(w, id))
        }
        "FreezeWindowCancelled" => {
            let m: pb::FreezeWindowCancelled = dec(bytes)?;
            Event::FreezeWindowCancelled {
                window_id: uuid("window_id", &m.window_id)?,
                reason: m.reason,
                at: stored::at(m.cancelled_at.as_ref()),
            }
        }
        "DeviationRequested" => {
            let m: pb::DeviationRequested = dec(bytes)?;
            let d = m.deviation.unwrap_or_default();
            let id = uuid("deviation_id", &d.deviation_id)?;
            Event::DeviationRequested {
                deviation: stored::deviation(d, id),
                at: stored::at(m.requested_at.as_ref()),
            }
        }
        "DeviationApproved" => {
            let m: pb::DeviationApproved = dec(bytes)?;
            Event::DeviationApproved {
                deviation_id: uuid("deviation_id", &m.deviation_id)?,
                approver: m.approver,
                role: m.role,
                comment: m.comment,
                at: stored::at(m.approved_at.as_ref()),
            }
        }
        "DeviationRejected" => {
            let m: pb::DeviationRejected = dec(bytes)?;
            Event::DeviationRejected {
                deviation_id: uuid("deviation_id", &m.deviation_id)?,
                approver: m.approver,
                role: m.role,
                comment: m.comment,
                at: stored::at(m.rejected_at.as_ref()),
            }
        }
        "DeviationExpired" => {
            let m: pb::DeviationExpired = dec(bytes)?;
            Event::DeviationExpired {
                deviation_id: uuid("deviation_id", &m.deviation_id)?,
                at: stored::at(m.expired_at.as_ref()),
            }
        }
        "RollbackDecisionOpened" => {
            let m: pb::RollbackDecisionOpened = dec(bytes)?;
            let d = m.decision.unwrap_or_default();
            let id = uuid("decision_id", &d.decision_id)?;
            Event::RollbackDecisionOpened(stored::rollback(d, id))
        }
        "RollbackDecided" => {
            let m: pb::RollbackDecided = dec(bytes)?;
            Event::RollbackDecided {
                decision_id: uuid("decision_id", &m.decision_id)?,
                roll_back: m.roll_back,
                decided_by: m.decided_by,
                comment: m.comment,
                at: stored::at(m.decided_at.as_ref()),
            }
        }
        "RollbackDecisionOverdue" => {
            let m: pb::RollbackDecisionOverdue = dec(bytes)?;
            Event::RollbackDecisionOverdue {
                decision_id: uuid("decision_id", &m.decision_id)?,
                at: stored::at(m.overdue_at.as_ref()),
                notify: m.notify,
            }
        }
        "AccessPolicyReplaced" => {
            // Recorded under governance's package before the contract moved to common: the
            // same fields.
            let m: flotilla_proto::common::v1::AccessPolicyReplaced = dec(bytes)?;
            Event::AccessPolicyReplaced {
                version: m.version,
                policy: m.policy,
                sha256: m.sha256,
                at: stored::at(m.replaced_at.as_ref()),
                signed: crate::domain::PolicySignature {
                    namespace: m.namespace,
                    signature: m.signature,
                    signing_key: m.signing_key,
                },
            }
        }
        "FmeaActionsRecorded" => {
            let m: pb::FmeaActionsRecorded = dec(bytes)?;
            Event::FmeaActionsRecorded {
                release: m.release,
                business_unit: m.business_unit,
                open_actions: m.open_actions,
                at: stored::at(m.recorded_at.as_ref()),
                source_event_id: uuid("source_event_id", &m.source_event_id)?,
            }
        }
        "CatalogServiceRecorded" => {
            let m: pb::CatalogServiceRecorded = dec(bytes)?;
            Event::CatalogServiceRecorded {
                service: CatalogService {
                    name: m.service,
                    business_unit: m.business_unit,
                    tier: u8::try_from(m.criticality_tier).unwrap_or(u8::MAX),
                    personal_data: m.handles_personal_data,
                    owner_team: m.owner_team,
                },
                source_event_id: uuid("source_event_id", &m.source_event_id)?,
                source_sequence: m.source_sequence,
            }
        }
        other => {
            return Err(format!(
                "governance event {other} is not known to this build"
            ));
        }
    };
    Ok(Some(e))
}
