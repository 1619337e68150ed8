//! What people, other services and the scheduler ask governance to do. Time and ids come in
//! with each command; each is decided in `decide/` by its family.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::*;

/// Every command, by family: policy, approvals, CAB, windows, deviations, rollbacks, the
/// catalog, and what the scheduler and refusals record.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    SetPolicy(SetPolicy),
    ReplaceAccessPolicy(ReplaceAccessPolicy),
    OpenApprovalRequest(OpenApprovalRequest),
    Approve(Approve),
    Reject(Reject),
    RecordCabDecision(RecordCabDecision),
    CreateFreezeWindow(CreateFreezeWindow),
    CancelFreezeWindow(CancelFreezeWindow),
    RequestDeviation(RequestDeviation),
    DecideDeviation(DecideDeviation),
    OpenRollbackDecision(OpenRollbackDecision),
    DecideRollback(DecideRollback),
    RecordCatalogService(RecordCatalogService),
    RecordFmeaActions(RecordFmeaActions),
    RecordViolation(RecordViolation),
    RecordDeadline(RecordDeadline),
}

#[derive(Clone, Debug, PartialEq)]
pub struct SetPolicy {
    pub policy: PolicyDocument,
    pub expected_version: u64,
    pub at: Timestamp,
    /// The roles anyone can hold (those the access policy in force names).
    pub known_roles: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReplaceAccessPolicy {
    pub policy: String,
    pub sha256: String,
    pub expected_version: u64,
    pub at: Timestamp,
    /// Signed (by the app, which holds the key) for version `expected_version + 1`.
    pub signed: PolicySignature,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OpenApprovalRequest {
    pub id: Uuid,
    pub release: ReleaseFacts,
    pub emergency: bool,
    /// From risk-validation's assessment: its facts supersede a pending request's.
    pub authoritative: bool,
    /// The unit the caller was allowed to open it in (None: no caller, a consumed event).
    pub authorized_unit: Option<String>,
    pub by: Actor,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Approve {
    pub key: ReleaseEnv,
    pub role: String,
    pub comment: String,
    pub by: Actor,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Reject {
    pub key: ReleaseEnv,
    pub role: String,
    pub comment: String,
    pub by: Actor,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecordCabDecision {
    pub decision: CabDecision,
    /// Now: a decision dated later is refused.
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CreateFreezeWindow {
    pub window: FreezeWindow,
    pub by: Actor,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CancelFreezeWindow {
    pub id: Uuid,
    pub reason: String,
    pub by: Actor,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RequestDeviation {
    pub deviation: Deviation,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DecideDeviation {
    pub id: Uuid,
    pub approve: bool,
    pub role: String,
    pub comment: String,
    pub by: Actor,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OpenRollbackDecision {
    pub decision: RollbackDecision,
}

#[derive(Clone, Debug, PartialEq)]
pub struct DecideRollback {
    pub id: Uuid,
    pub roll_back: bool,
    pub comment: String,
    pub by: Actor,
    pub at: Timestamp,
}

/// The catalog registered or updated a service (consumed from dependency-mapping).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordCatalogService {
    pub service: CatalogService,
    pub source_event_id: Uuid,
    pub source_sequence: u64,
}

/// Risk-validation recorded a release's FMEA (consumed from its `FmeaRecorded`).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordFmeaActions {
    pub release: String,
    pub business_unit: String,
    pub open_actions: Vec<String>,
    pub at: Timestamp,
    pub source_event_id: Uuid,
}

/// What a refused segregation-of-duties attempt concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViolationTarget {
    Request(ReleaseEnv),
    Deviation(Uuid),
}

/// Records a refused attempt that broke segregation of duties (nothing when the target does not
/// exist).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordViolation {
    pub target: ViolationTarget,
    pub actor: String,
    pub role: String,
    pub rule: String,
    pub detail: String,
    pub at: Timestamp,
}

/// Records what of one aggregate's deadlines passed by `now` (escalation, expiry, overdue
/// rollback decision, expired deviation); nothing when none did.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordDeadline {
    pub key: StreamKey,
    pub now: Timestamp,
}

macro_rules! from_commands {
    ($($name:ident),*) => {
        $(impl From<$name> for Command {
            fn from(c: $name) -> Self {
                Command::$name(c)
            }
        })*
    };
}

from_commands!(
    SetPolicy,
    ReplaceAccessPolicy,
    OpenApprovalRequest,
    Approve,
    Reject,
    RecordCabDecision,
    CreateFreezeWindow,
    CancelFreezeWindow,
    RequestDeviation,
    DecideDeviation,
    OpenRollbackDecision,
    DecideRollback,
    RecordCatalogService,
    RecordFmeaActions,
    RecordViolation,
    RecordDeadline
);
