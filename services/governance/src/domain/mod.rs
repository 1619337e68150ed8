//! Governance's pure domain: policies, approval requests with segregation of duties, CAB
//! decisions, freeze windows and embargoes, deviations, rollback decisions and the gate.
//!
//! `Governance::decide(&self, command)` answers the events a command causes (or why it is
//! refused); `Governance::evolve(&mut self, &event)` applies one. Time and ids come in with the
//! commands: nothing here reads a clock, draws an id or does I/O.

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use flotilla_core::event::Timestamp;
pub use flotilla_core::names::{self, NameError, shown};
use uuid::Uuid;

mod calendar;
mod decide;
pub mod gate;
pub mod policy;
mod scope;
#[cfg(test)]
mod tests;

pub use calendar::{MonthlySchedule, Schedule, WeeklySchedule};
pub use gate::{GateDecision, GateReason, GateReasonKind};
pub use policy::{
    ApprovalRule, NamingRule, PolicyDocument, RoleRequirement, RollbackCriteria, RollbackThreshold,
    VersionScheme,
};

/// Role that any approver who is neither author nor committer may fill on personal-data systems.
pub const PEER_REVIEW: &str = "peer-review";
/// Role a CAB decision satisfies unless it says otherwise.
pub const CAB_ROLE: &str = "cab";
/// Role that must approve deviations from an embargo, and alone sets or lifts embargoes.
pub const COMPLIANCE_OFFICER: &str = "compliance-officer";
/// Platform administrators.
pub const ADMIN: &str = "admin";

/// Why a command is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// Segregation of duties: `rule` names the rule broken.
    #[error("segregation of duties rule {rule}: {detail}")]
    SegregationOfDuties { rule: &'static str, detail: String },
    /// The caller does not hold the role they claim to act in.
    #[error("{0}")]
    NotInRole(String),
    #[error("policy version {expected} is not the current version {current}")]
    StalePolicy { expected: u64, current: u64 },
    /// Something it names is not known yet (a consumed event may be applied later).
    #[error("{0}")]
    NotYetKnown(String),
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

/// A name that breaks the platform's naming rule, as a refusal naming the field.
pub fn name_error(e: NameError) -> DomainError {
    DomainError::Invalid {
        field: e.field,
        reason: e.reason,
    }
}

pub fn invalid(field: &str, reason: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// The person or service account acting, as the verified token named them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub subject: String,
    pub roles: BTreeSet<String>,
    pub business_unit: String,
}

/// What governance knows of a release when deciding on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReleaseFacts {
    pub release: String,
    pub version: String,
    pub environment: String,
    pub service: String,
    pub business_unit: String,
    pub tier: u8,
    pub risk_score: u8,
    pub personal_data: bool,
    pub author: String,
    pub committers: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Rejected,
    Expired,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub approver: String,
    pub role: String,
    pub comment: String,
    pub at: Timestamp,
    pub valid_until: Option<Timestamp>,
}

/// The approval request of one release in one environment.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalRequest {
    pub id: Uuid,
    pub release: ReleaseFacts,
    pub requirements: Vec<RoleRequirement>,
    pub approvals: Vec<Approval>,
    pub opened_at: Timestamp,
    pub opened_by: String,
    pub due_at: Timestamp,
    pub expires_at: Timestamp,
    pub escalate_to: Vec<String>,
    pub validity_minutes: u32,
    pub policy_version: u64,
    pub emergency: bool,
    /// Opened from risk-validation's assessment (its facts are authoritative).
    pub assessed: bool,
    pub escalated: bool,
    pub expired: bool,
    pub rejection: Option<(String, String)>,
    pub rejected_at: Option<Timestamp>,
    /// Stream version of the request's stream.
    pub version: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReleaseEnv {
    pub release: String,
    pub environment: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CabDecision {
    pub change_request_id: String,
    pub approved: bool,
    pub covers: Vec<ReleaseEnv>,
    pub satisfies_roles: Vec<String>,
    pub members: Vec<String>,
    pub decided_at: Timestamp,
    pub recorded_by: String,
    pub comment: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowKind {
    Freeze,
    Embargo,
}

/// Empty lists mean "all".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowScope {
    pub business_units: Vec<String>,
    pub environments: Vec<String>,
    pub tiers: Vec<u8>,
}

impl WindowScope {
    /// Does the scope take in a release of this unit, environment and tier? Unknown facts
    /// (no approval request yet) match, so a window is never missed for lack of facts.
    pub fn covers(&self, bu: Option<&str>, env: &str, tier: Option<u8>) -> bool {
        (self.business_units.is_empty()
            || bu.is_none_or(|b| self.business_units.iter().any(|x| x == b)))
            && (self.environments.is_empty() || self.environments.iter().any(|e| e == env))
            && (self.tiers.is_empty() || tier.is_none_or(|t| self.tiers.contains(&t)))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct FreezeWindow {
    pub id: Uuid,
    pub name: String,
    pub kind: WindowKind,
    pub scope: WindowScope,
    pub schedule: Schedule,
    pub reason: String,
    pub created_by: String,
    /// When it was created: the gate answers for earlier times without it.
    pub created_at: Timestamp,
    /// Unit that owns the window ("" = platform-wide).
    pub business_unit: String,
    pub cancelled: bool,
    pub cancelled_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GateRule {
    Approvals,
    FreezeWindow,
    Embargo,
}

impl GateRule {
    pub fn name(self) -> &'static str {
        match self {
            GateRule::Approvals => "approvals",
            GateRule::FreezeWindow => "freeze-window",
            GateRule::Embargo => "embargo",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviationStatus {
    Requested,
    Approved,
    Rejected,
    Expired,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Deviation {
    pub id: Uuid,
    pub rule: GateRule,
    pub release: String,
    pub environment: String,
    pub business_unit: String,
    pub justification: String,
    pub compensating_controls: Vec<String>,
    pub expires_at: Timestamp,
    pub requested_by: String,
    pub requester_role: String,
    pub status: DeviationStatus,
    pub decided_by: String,
    pub decider_role: String,
    pub comment: String,
    /// When it was approved or rejected.
    pub decided_at: Option<Timestamp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RollbackStatus {
    Pending,
    RollBack,
    Continue,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RollbackDecision {
    pub id: Uuid,
    pub release: String,
    pub environment: String,
    pub service: String,
    pub business_unit: String,
    pub tier: u8,
    pub metric: String,
    pub observed: f64,
    pub opened_at: Timestamp,
    pub decide_by: Timestamp,
    pub notify: Vec<String>,
    pub status: RollbackStatus,
    pub overdue: bool,
    pub decided_by: String,
    pub comment: String,
}

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
    CatalogServiceRecorded {
        service: CatalogService,
        /// The dependency-mapping event it came from, and its position there.
        source_event_id: Uuid,
        source_sequence: u64,
    },
}

/// Governance's signature over an access policy replacement, so other services adopt it only
/// from their own deployment's governance (empty in replacements recorded before signing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicySignature {
    pub namespace: String,
    /// Base64 Ed25519 signature.
    pub signature: String,
    /// Base64 public key.
    pub signing_key: String,
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
}

impl StreamKey {
    /// The store's stream id: `<aggregate>-<uuid>` (v5 of the natural key where there is one).
    pub fn stream_id(&self) -> String {
        const NS: Uuid = Uuid::from_u128(0x6f1c_2d44_9a7e_4d0b_8f3e_5b1a_0c2d_7e91);
        match self {
            StreamKey::Policy => "governance-policy".into(),
            StreamKey::AccessPolicy => "governance-access-policy".into(),
            StreamKey::Approval(k) => format!(
                "approval-{}",
                Uuid::new_v5(&NS, format!("{}\n{}", k.release, k.environment).as_bytes())
            ),
            StreamKey::Cab(id) => format!("cab-{}", Uuid::new_v5(&NS, id.as_bytes())),
            StreamKey::Window(id) => format!("window-{id}"),
            StreamKey::Deviation(id) => format!("deviation-{id}"),
            StreamKey::Rollback(id) => format!("rollback-{id}"),
            StreamKey::CatalogService(name) => {
                format!("catalog-service-{}", Uuid::new_v5(&NS, name.as_bytes()))
            }
        }
    }
}

/// What a refused segregation-of-duties attempt concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ViolationTarget {
    Request(ReleaseEnv),
    Deviation(Uuid),
}

/// What people and the scheduler ask governance to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    SetPolicy {
        policy: PolicyDocument,
        expected_version: u64,
        at: Timestamp,
        /// The roles anyone can hold (those the access policy in force names).
        known_roles: BTreeSet<String>,
    },
    OpenApprovalRequest {
        id: Uuid,
        release: ReleaseFacts,
        emergency: bool,
        /// From risk-validation's assessment: its facts supersede a pending request's.
        authoritative: bool,
        /// The unit the caller was allowed to open it in (None: no caller, a consumed event).
        authorized_unit: Option<String>,
        by: Actor,
        at: Timestamp,
    },
    Approve {
        key: ReleaseEnv,
        role: String,
        comment: String,
        by: Actor,
        at: Timestamp,
    },
    Reject {
        key: ReleaseEnv,
        role: String,
        comment: String,
        by: Actor,
        at: Timestamp,
    },
    RecordCabDecision {
        decision: CabDecision,
        /// Now: a decision dated later is refused.
        at: Timestamp,
    },
    CreateFreezeWindow {
        window: FreezeWindow,
        by: Actor,
    },
    CancelFreezeWindow {
        id: Uuid,
        reason: String,
        by: Actor,
        at: Timestamp,
    },
    RequestDeviation {
        deviation: Deviation,
        at: Timestamp,
    },
    DecideDeviation {
        id: Uuid,
        approve: bool,
        role: String,
        comment: String,
        by: Actor,
        at: Timestamp,
    },
    OpenRollbackDecision {
        decision: RollbackDecision,
    },
    DecideRollback {
        id: Uuid,
        roll_back: bool,
        comment: String,
        by: Actor,
        at: Timestamp,
    },
    ReplaceAccessPolicy {
        policy: String,
        sha256: String,
        expected_version: u64,
        at: Timestamp,
        /// Signed (by the edge, which holds the key) for version `expected_version + 1`.
        signed: PolicySignature,
    },
    /// The catalog registered or updated a service (consumed from dependency-mapping).
    RecordCatalogService {
        service: CatalogService,
        source_event_id: Uuid,
        source_sequence: u64,
    },
}

/// A service as the catalog (dependency-mapping) describes it: whose it is and how critical.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogService {
    pub name: String,
    pub business_unit: String,
    pub tier: u8,
    pub personal_data: bool,
    pub owner_team: String,
}

/// Governance's state: every aggregate, rebuilt from the events.
#[derive(Clone, Debug, Default)]
pub struct Governance {
    pub policy: PolicyDocument,
    pub policy_version: u64,
    pub policy_history: BTreeMap<u64, (PolicyDocument, Timestamp)>,
    pub requests: HashMap<ReleaseEnv, ApprovalRequest>,
    /// The facts (and emergency flag) risk-validation last assessed per release/environment.
    pub assessed: HashMap<ReleaseEnv, (ReleaseFacts, bool)>,
    /// Which release/environment each request id belongs to.
    pub request_keys: HashMap<Uuid, ReleaseEnv>,
    pub cab: BTreeMap<String, CabDecision>,
    /// Approved CAB decisions by the release/environment they cover.
    pub cab_by_release: HashMap<ReleaseEnv, Vec<String>>,
    pub windows: BTreeMap<Uuid, FreezeWindow>,
    pub deviations: BTreeMap<Uuid, Deviation>,
    pub deviations_by_release: HashMap<ReleaseEnv, Vec<Uuid>>,
    pub rollbacks: BTreeMap<Uuid, RollbackDecision>,
    pub access_policy: Option<(u64, String, String, Timestamp)>,
    /// Who set each policy version and who last replaced the access policy (from the events'
    /// metadata, filled in by the application layer).
    pub policy_set_by: HashMap<u64, String>,
    pub access_policy_replaced_by: String,
    /// Stream versions, for expected-version appends.
    pub versions: HashMap<String, u64>,
    /// The services of the catalog, by name (from dependency-mapping's events).
    pub catalog: HashMap<String, CatalogService>,
    /// Per service, the position in dependency-mapping's store of the event last recorded.
    pub catalog_sequences: HashMap<String, u64>,
    /// The business unit each release id belongs to (from its first approval request).
    pub release_units: HashMap<String, String>,
}

impl Governance {
    /// The expected version of an aggregate's stream (0 = no stream yet).
    pub fn version_of(&self, key: &StreamKey) -> u64 {
        self.versions.get(&key.stream_id()).copied().unwrap_or(0)
    }

    /// Applies one event of `stream` (its stream version is `version`).
    pub fn evolve(&mut self, stream: &str, version: u64, event: &Event) {
        self.versions.insert(stream.to_owned(), version);
        match event {
            Event::PolicySet {
                version,
                policy,
                at,
            } => {
                self.policy = policy.clone();
                self.policy_version = *version;
                self.policy_history.insert(*version, (policy.clone(), *at));
            }
            Event::ApprovalRequestOpened(r) => {
                let key = ReleaseEnv {
                    release: r.release.release.clone(),
                    environment: r.release.environment.clone(),
                };
                let mut r = (**r).clone();
                r.version = version;
                if r.assessed {
                    self.assessed
                        .insert(key.clone(), (r.release.clone(), r.emergency));
                }
                self.release_units
                    .entry(r.release.release.clone())
                    .or_insert_with(|| r.release.business_unit.clone());
                self.request_keys.insert(r.id, key.clone());
                self.requests.insert(key, r);
            }
            Event::ApprovalGranted {
                request_id,
                approval,
            } => {
                if let Some(r) = self.request_by_id(*request_id) {
                    r.approvals.push(approval.clone());
                    r.version = version;
                }
            }
            Event::ApprovalRejected {
                request_id,
                approver,
                comment,
                at,
                ..
            } => {
                if let Some(r) = self.request_by_id(*request_id) {
                    r.rejection = Some((approver.clone(), comment.clone()));
                    r.rejected_at = Some(*at);
                    r.version = version;
                }
            }
            Event::ApprovalEscalated { request_id, .. } => {
                if let Some(r) = self.request_by_id(*request_id) {
                    r.escalated = true;
                    r.version = version;
                }
            }
            Event::ApprovalRequestExpired { request_id, .. } => {
                if let Some(r) = self.request_by_id(*request_id) {
                    r.expired = true;
                    r.version = version;
                }
            }
            Event::SegregationOfDutiesViolated { request_id, .. } => {
                if let Some(r) = self.request_by_id(*request_id) {
                    r.version = version;
                }
            }
            Event::CabDecisionRecorded(d) => {
                {
                    for k in &d.covers {
                        let ids = self.cab_by_release.entry(k.clone()).or_default();
                        if !ids.contains(&d.change_request_id) {
                            ids.push(d.change_request_id.clone());
                        }
                    }
                }
                self.cab.insert(d.change_request_id.clone(), d.clone());
            }
            Event::FreezeWindowCreated(w) => {
                self.windows.insert(w.id, w.clone());
            }
            Event::FreezeWindowCancelled { window_id, at, .. } => {
                if let Some(w) = self.windows.get_mut(window_id) {
                    w.cancelled = true;
                    w.cancelled_at = Some(*at);
                }
            }
            Event::DeviationRequested { deviation, .. } => {
                self.deviations_by_release
                    .entry(ReleaseEnv {
                        release: deviation.release.clone(),
                        environment: deviation.environment.clone(),
                    })
                    .or_default()
                    .push(deviation.id);
                self.deviations.insert(deviation.id, deviation.clone());
            }
            Event::DeviationApproved {
                deviation_id,
                approver,
                role,
                comment,
                at,
            }
            | Event::DeviationRejected {
                deviation_id,
                approver,
                role,
                comment,
                at,
            } => {
                if let Some(d) = self.deviations.get_mut(deviation_id) {
                    d.decided_at = Some(*at);
                    d.status = if matches!(event, Event::DeviationApproved { .. }) {
                        DeviationStatus::Approved
                    } else {
                        DeviationStatus::Rejected
                    };
                    d.decided_by = approver.clone();
                    d.decider_role = role.clone();
                    d.comment = comment.clone();
                }
            }
            Event::DeviationExpired { deviation_id, .. } => {
                if let Some(d) = self.deviations.get_mut(deviation_id) {
                    d.status = DeviationStatus::Expired;
                }
            }
            Event::RollbackDecisionOpened(d) => {
                self.rollbacks.insert(d.id, d.clone());
            }
            Event::RollbackDecided {
                decision_id,
                roll_back,
                decided_by,
                comment,
                ..
            } => {
                if let Some(d) = self.rollbacks.get_mut(decision_id) {
                    d.status = if *roll_back {
                        RollbackStatus::RollBack
                    } else {
                        RollbackStatus::Continue
                    };
                    d.decided_by = decided_by.clone();
                    d.comment = comment.clone();
                }
            }
            Event::RollbackDecisionOverdue { decision_id, .. } => {
                if let Some(d) = self.rollbacks.get_mut(decision_id) {
                    d.overdue = true;
                }
            }
            Event::AccessPolicyReplaced {
                version,
                policy,
                sha256,
                at,
                ..
            } => {
                self.access_policy = Some((*version, policy.clone(), sha256.clone(), *at));
            }
            Event::CatalogServiceRecorded {
                service,
                source_sequence,
                ..
            } => {
                self.catalog.insert(service.name.clone(), service.clone());
                self.catalog_sequences
                    .insert(service.name.clone(), *source_sequence);
            }
        }
    }

    fn request_by_id(&mut self, id: Uuid) -> Option<&mut ApprovalRequest> {
        let key = self.request_keys.get(&id)?;
        self.requests.get_mut(key).filter(|r| r.id == id)
    }

    /// The newest CAB decision (by decision time, taken by `at`) covering a release/environment.
    fn latest_cab(&self, key: &ReleaseEnv, at: Timestamp) -> Option<&CabDecision> {
        self.cab_by_release
            .get(key)?
            .iter()
            .filter_map(|id| self.cab.get(id))
            .filter(|d| d.decided_at <= at)
            .max_by_key(|d| d.decided_at)
    }

    /// The CAB decision that satisfies `role` (the cab requirement only) for a
    /// release/environment: the newest decision, if it approved and no member (nor whoever
    /// recorded it) wrote or committed to the release.
    pub fn cab_satisfying(
        &self,
        key: &ReleaseEnv,
        role: &str,
        at: Timestamp,
    ) -> Option<&CabDecision> {
        if role != CAB_ROLE {
            return None;
        }
        let d = self.latest_cab(key, at)?;
        let facts = self.requests.get(key).map(|r| &r.release);
        let conflicted = facts.is_some_and(|f| {
            d.members
                .iter()
                .chain(std::iter::once(&d.recorded_by))
                .any(|m| *m == f.author || f.committers.contains(m))
        });
        (d.approved && !conflicted).then_some(d)
    }

    /// The newest CAB decision, if it refused the release/environment.
    pub fn cab_refusal(&self, key: &ReleaseEnv, at: Timestamp) -> Option<&CabDecision> {
        self.latest_cab(key, at).filter(|d| !d.approved)
    }
}

impl ApprovalRequest {
    /// Approvals given in `role` by `at` and still valid then.
    pub fn given(&self, role: &str, at: Timestamp) -> u32 {
        self.approvals
            .iter()
            .filter(|a| a.role == role && a.at <= at && a.valid_until.is_none_or(|u| at < u))
            .count() as u32
    }

    /// Whether it was rejected by `at`.
    pub fn rejected_by(&self, at: Timestamp) -> bool {
        self.rejection.is_some() && self.rejected_at.is_none_or(|t| t <= at)
    }

    /// Status at `at`, with CAB decisions taken into account through `gov`.
    pub fn status(&self, gov: &Governance, at: Timestamp) -> ApprovalStatus {
        let key = ReleaseEnv {
            release: self.release.release.clone(),
            environment: self.release.environment.clone(),
        };
        if self.rejected_by(at) || gov.cab_refusal(&key, at).is_some() {
            return ApprovalStatus::Rejected;
        }
        let met = self.requirements.iter().all(|r| {
            gov.cab_satisfying(&key, &r.role, at).is_some() || self.given(&r.role, at) >= r.count
        });
        if met {
            ApprovalStatus::Approved
        } else if self.expired || at >= self.expires_at {
            ApprovalStatus::Expired
        } else {
            ApprovalStatus::Pending
        }
    }
}
