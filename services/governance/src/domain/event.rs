//! Every fact governance records, and the stream each aggregate's facts go to.

use flotilla_core::ids::StreamId;
use uuid::Uuid;

use super::*;

/// Every fact governance records.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    PolicySet {
        version: u64,
        policy: PolicyDocument,
        at: Timestamp,
    },
    ApprovalRequestOpened(Box<ApprovalRequest>),
    ApprovalGranted {
        request_id: Uuid,
        approval: Approval,
    },
    ApprovalRejected {
        request_id: Uuid,
        approver: String,
        role: String,
        comment: String,
        at: Timestamp,
    },
    ApprovalEscalated {
        request_id: Uuid,
        at: Timestamp,
        notify: Vec<String>,
    },
    ApprovalRequestExpired {
        request_id: Uuid,
        at: Timestamp,
    },
    SegregationOfDutiesViolated {
        request_id: Uuid,
        actor: String,
        role: String,
        rule: String,
        detail: String,
        at: Timestamp,
    },
    CabDecisionRecorded(CabDecision),
    FreezeWindowCreated(FreezeWindow),
    FreezeWindowCancelled {
        window_id: Uuid,
        reason: String,
        at: Timestamp,
    },
    DeviationRequested {
        deviation: Deviation,
        at: Timestamp,
    },
    DeviationApproved {
        deviation_id: Uuid,
        approver: String,
        role: String,
        comment: String,
        at: Timestamp,
    },
    DeviationRejected {
        deviation_id: Uuid,
        approver: String,
        role: String,
        comment: String,
        at: Timestamp,
    },
    DeviationExpired {
        deviation_id: Uuid,
        at: Timestamp,
    },
    RollbackDecisionOpened(RollbackDecision),
    RollbackDecided {
        decision_id: Uuid,
        roll_back: bool,
        decided_by: String,
        comment: String,
        at: Timestamp,
    },
    RollbackDecisionOverdue {
        decision_id: Uuid,
        at: Timestamp,
        notify: Vec<String>,
    },
    AccessPolicyReplaced {
        version: u64,
        policy: String,
        sha256: String,
        at: Timestamp,
        signed: PolicySignature,
    },
    /// Risk-validation's FMEA of a release: its open required actions.
    FmeaActionsRecorded {
        release: String,
        business_unit: String,
        open_actions: Vec<String>,
        at: Timestamp,
        source_event_id: Uuid,
    },
    CatalogServiceRecorded {
        service: CatalogService,
        /// The dependency-mapping event it came from, and its position there.
        source_event_id: Uuid,
        source_sequence: u64,
    },
}

/// The stream an aggregate's events go to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StreamKey {
    Policy,
    AccessPolicy,
    Approval(ReleaseEnv),
    Cab(String),
    Window(Uuid),
    Deviation(Uuid),
    Rollback(Uuid),
    /// One service of the catalog, by name.
    CatalogService(String),
    /// Risk-validation's FMEA of a release, by name.
    Fmea(String),
}

impl StreamKey {
    /// The store's stream: `<aggregate>-<uuid>` (v5 of the natural key where there is one).
    pub fn stream(&self) -> StreamId {
        const NS: Uuid = Uuid::from_u128(0x6f1c_2d44_9a7e_4d0b_8f3e_5b1a_0c2d_7e91);
        match self {
            StreamKey::Policy => StreamId::singleton(POLICY_STREAM),
            StreamKey::AccessPolicy => StreamId::singleton(ACCESS_POLICY_STREAM),
            StreamKey::Approval(k) => StreamId::for_aggregate(
                "approval",
                Uuid::new_v5(&NS, format!("{}\n{}", k.release, k.environment).as_bytes()),
            ),
            StreamKey::Cab(id) => StreamId::for_aggregate("cab", Uuid::new_v5(&NS, id.as_bytes())),
            StreamKey::Window(id) => StreamId::for_aggregate("window", *id),
            StreamKey::Deviation(id) => StreamId::for_aggregate("deviation", *id),
            StreamKey::Rollback(id) => StreamId::for_aggregate("rollback", *id),
            StreamKey::CatalogService(name) => {
                StreamId::for_aggregate("catalog-service", Uuid::new_v5(&NS, name.as_bytes()))
            }
            StreamKey::Fmea(release) => {
                StreamId::for_aggregate("fmea", Uuid::new_v5(&NS, release.as_bytes()))
            }
        }
    }
}

/// The singleton stream of the governance policy (aggregate `policy`).
pub const POLICY_STREAM: &str = "governance-policy";
/// The singleton stream of the platform's access policy (aggregate `access-policy`).
pub const ACCESS_POLICY_STREAM: &str = "governance-access-policy";
