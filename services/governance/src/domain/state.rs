//! Governance's state: every aggregate, rebuilt from the recorded events, and what the rules
//! ask of it (CAB decisions in force, a request's status).

use std::collections::{BTreeMap, HashMap};

use flotilla_core::decider::{Decider, Decision, Recorded};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;

/// Governance's state: every aggregate, rebuilt from the events.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
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
    /// Who set each policy version and who last replaced the access policy (the actors of
    /// their events).
    pub policy_set_by: HashMap<u64, String>,
    pub access_policy_replaced_by: String,
    /// The services of the catalog, by name (from dependency-mapping's events).
    pub catalog: HashMap<String, CatalogService>,
    /// Per service, the position in dependency-mapping's store of the event last recorded.
    pub catalog_sequences: HashMap<String, u64>,
    /// Each release's open FMEA actions and when risk-validation recorded them.
    pub fmea_open: HashMap<String, (Vec<String>, Timestamp)>,
    /// The business unit each release id belongs to (from its first approval request).
    pub release_units: HashMap<String, String>,
}

impl Decider for Governance {
    type Command = Command;
    type Event = Event;
    type Error = DomainError;

    fn decide(&self, command: Command) -> Result<Decision<Event>> {
        super::decide::decide(self, command)
    }

    /// Applies one recorded event; who and when come from its envelope.
    fn evolve(&mut self, recorded: &Recorded<Event>) {
        let version = recorded.stream_version;
        let event = &recorded.event;
        match event {
            Event::PolicySet {
                version,
                policy,
                at,
            } => {
                self.policy = policy.clone();
                self.policy_version = *version;
                self.policy_history.insert(*version, (policy.clone(), *at));
                self.policy_set_by
                    .insert(*version, recorded.metadata.actor.clone());
            }
            Event::ApprovalRequestOpened(r) => {
                let key = ReleaseEnv {
                    release: r.release.release.clone(),
                    environment: r.release.environment.clone(),
                };
                let mut r = (**r).clone();
                r.version = version;
                // Stored requests do not carry who opened them: the envelope's actor did.
                if r.opened_by.is_empty() {
                    r.opened_by = recorded.metadata.actor.clone();
                }
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
                let mut w = w.clone();
                // Windows recorded before they carried their creation time: it is when the
                // event was recorded.
                if w.created_at.0 == 0 {
                    w.created_at = recorded.recorded_at;
                }
                self.windows.insert(w.id, w);
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
                self.access_policy_replaced_by = recorded.metadata.actor.clone();
            }
            Event::FmeaActionsRecorded {
                release,
                open_actions,
                at,
                ..
            } => {
                self.fmea_open
                    .insert(release.clone(), (open_actions.clone(), *at));
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
}

impl Governance {
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
