//! Answers of the API: requests with their status at a time, gate decisions.

use flotilla_proto::governance::v1 as pb;
use uuid::Uuid;

use crate::domain::*;
use crate::messages::*;

pub fn status_pb(s: ApprovalStatus) -> pb::ApprovalStatus {
    match s {
        ApprovalStatus::Pending => pb::ApprovalStatus::Pending,
        ApprovalStatus::Approved => pb::ApprovalStatus::Approved,
        ApprovalStatus::Rejected => pb::ApprovalStatus::Rejected,
        ApprovalStatus::Expired => pb::ApprovalStatus::Expired,
    }
}

/// The API view of a request at `at`.
pub fn request_pb(gov: &Governance, r: &ApprovalRequest, at: Timestamp) -> pb::ApprovalRequest {
    let key = ReleaseEnv {
        release: r.release.release.clone(),
        environment: r.release.environment.clone(),
    };
    pb::ApprovalRequest {
        risk_assessed: r.assessed,
        request_id: r.id.to_string(),
        release: Some(facts_pb(&r.release)),
        status: status_pb(r.status(gov, at)) as i32,
        requirements: r
            .requirements
            .iter()
            .map(|q| {
                let cab = gov.cab_satisfying(&key, &q.role, at);
                pb::RequirementState {
                    role: q.role.clone(),
                    required: q.count,
                    given: if cab.is_some() {
                        q.count
                    } else {
                        r.given(&q.role, at)
                    },
                    cab_change_request: cab
                        .map(|d| d.change_request_id.clone())
                        .unwrap_or_default(),
                }
            })
            .collect(),
        approvals: r.approvals.iter().map(approval_pb).collect(),
        opened_at: Some(ts(r.opened_at)),
        due_at: Some(ts(r.due_at)),
        expires_at: Some(ts(r.expires_at)),
        escalated: r.escalated,
        emergency: r.emergency,
        policy_version: r.policy_version,
        opened_by: r.opened_by.clone(),
        rejected_by: r
            .rejection
            .as_ref()
            .map(|x| x.0.clone())
            .unwrap_or_default(),
        rejection_comment: r
            .rejection
            .as_ref()
            .map(|x| x.1.clone())
            .unwrap_or_default(),
        version: r.version,
    }
}

pub fn gate_pb(key: &ReleaseEnv, at: Timestamp, d: &GateDecision) -> pb::GateDecision {
    pb::GateDecision {
        allowed: d.allowed,
        reasons: d
            .reasons
            .iter()
            .map(|r| pb::GateReason {
                kind: match r.kind {
                    GateReasonKind::NoApprovalRequest => pb::GateReasonKind::NoApprovalRequest,
                    GateReasonKind::MissingApprovals => pb::GateReasonKind::MissingApprovals,
                    GateReasonKind::ApprovalExpired => pb::GateReasonKind::ApprovalExpired,
                    GateReasonKind::RequestExpired => pb::GateReasonKind::RequestExpired,
                    GateReasonKind::Rejected => pb::GateReasonKind::Rejected,
                    GateReasonKind::FreezeWindow => pb::GateReasonKind::FreezeWindow,
                    GateReasonKind::Embargo => pb::GateReasonKind::Embargo,
                    GateReasonKind::EmergencyMismatch => pb::GateReasonKind::EmergencyMismatch,
                    GateReasonKind::FmeaActionOpen => pb::GateReasonKind::FmeaActionOpen,
                } as i32,
                message: r.message.clone(),
                subject: r.subject.clone(),
                waived_by_deviation: r.waived_by.map(|u| u.to_string()).unwrap_or_default(),
            })
            .collect(),
        deviations_used: d.deviations_used.iter().map(Uuid::to_string).collect(),
        release: key.release.clone(),
        environment: key.environment.clone(),
        at: Some(ts(at)),
    }
}

/// Whether a version follows the policy's naming rule, and which rule that is.
pub fn release_name(policy: &PolicyDocument, version: &str) -> pb::CheckReleaseNameResponse {
    let scheme = match &policy.naming.scheme {
        VersionScheme::Semver => "semver".to_owned(),
        VersionScheme::Calver(p) => format!("calver {p}"),
    };
    match policy.check_version(version) {
        Ok(()) => pb::CheckReleaseNameResponse {
            valid: true,
            scheme,
            reason: String::new(),
        },
        Err(e) => pb::CheckReleaseNameResponse {
            valid: false,
            scheme,
            reason: e.to_string(),
        },
    }
}

/// A status to list by (0: every status).
pub fn status_filter(status: i32) -> Result<Option<i32>, DomainError> {
    if status == 0 {
        return Ok(None);
    }
    pb::ApprovalStatus::try_from(status).map_err(|_| {
        invalid(
            "status",
            format!(
                "{status} is not an approval status; use APPROVAL_STATUS_PENDING, _APPROVED, _REJECTED or _EXPIRED (or leave it out)"
            ),
        )
    })?;
    Ok(Some(status))
}

/// The requests `keep` keeps, as seen at `at`, by id.
pub fn requests(
    g: &Governance,
    at: Timestamp,
    keep: impl Fn(&ApprovalRequest) -> bool,
) -> Vec<pb::ApprovalRequest> {
    let mut out: Vec<_> = g
        .requests
        .values()
        .filter(|r| keep(r))
        .map(|r| request_pb(g, r, at))
        .collect();
    out.sort_by(|a, b| a.request_id.cmp(&b.request_id));
    out
}

pub fn windows(g: &Governance, keep: impl Fn(&FreezeWindow) -> bool) -> Vec<pb::FreezeWindow> {
    g.windows
        .values()
        .filter(|w| keep(w))
        .map(window_pb)
        .collect()
}

pub fn deviations(g: &Governance, keep: impl Fn(&Deviation) -> bool) -> Vec<pb::Deviation> {
    g.deviations
        .values()
        .filter(|d| keep(d))
        .map(deviation_pb)
        .collect()
}

pub fn rollbacks(
    g: &Governance,
    keep: impl Fn(&RollbackDecision) -> bool,
) -> Vec<pb::RollbackDecision> {
    g.rollbacks
        .values()
        .filter(|d| keep(d))
        .map(rollback_pb)
        .collect()
}

pub fn deadlines_pb(r: crate::app::DeadlineReport) -> pb::ProcessDeadlinesResponse {
    pb::ProcessDeadlinesResponse {
        escalated: r.escalated,
        expired: r.expired,
        rollback_decisions_overdue: r.rollbacks_overdue,
        deviations_expired: r.deviations_expired,
    }
}

impl super::GovernanceApi {
    /// A view of something in the state, or NOT_FOUND naming `what`.
    pub(super) fn found<T>(
        &self,
        what: String,
        view: impl FnOnce(&Governance) -> Option<T>,
    ) -> Result<tonic::Response<T>, tonic::Status> {
        self.lookup(what, view).map(tonic::Response::new)
    }

    /// Something of the state, or NOT_FOUND naming `what`.
    pub(super) fn lookup<T>(
        &self,
        what: String,
        view: impl FnOnce(&Governance) -> Option<T>,
    ) -> Result<T, tonic::Status> {
        self.app
            .query(view)
            .ok_or_else(|| DomainError::NotFound(what).into())
    }

    pub(super) fn request_view(
        &self,
        key: &ReleaseEnv,
        at: Timestamp,
    ) -> Result<tonic::Response<pb::ApprovalRequest>, tonic::Status> {
        self.found(
            format!(
                "approval request of release {} in {}",
                key.release, key.environment
            ),
            |g| g.requests.get(key).map(|r| request_pb(g, r, at)),
        )
    }

    pub(super) fn window_view(
        &self,
        id: Uuid,
    ) -> Result<tonic::Response<pb::FreezeWindow>, tonic::Status> {
        self.found(format!("window {id}"), |g| {
            g.windows.get(&id).map(window_pb)
        })
    }

    pub(super) fn deviation_view(
        &self,
        id: Uuid,
    ) -> Result<tonic::Response<pb::Deviation>, tonic::Status> {
        self.found(format!("deviation {id}"), |g| {
            g.deviations.get(&id).map(deviation_pb)
        })
    }

    pub(super) fn rollback_view(
        &self,
        id: Uuid,
    ) -> Result<tonic::Response<pb::RollbackDecision>, tonic::Status> {
        self.found(format!("rollback decision {id}"), |g| {
            g.rollbacks.get(&id).map(rollback_pb)
        })
    }

    /// A policy version (0: the current one).
    pub(super) fn policy_view(
        &self,
        v: u64,
    ) -> Result<tonic::Response<pb::PolicyVersion>, tonic::Status> {
        self.found(format!("policy version {v}"), |g| {
            let version = if v == 0 { g.policy_version } else { v };
            if version == 0 {
                return Some(pb::PolicyVersion {
                    version: 0,
                    policy: Some(policy_pb(&g.policy)),
                    set_by: String::new(),
                    set_at: None,
                });
            }
            g.policy_history
                .get(&version)
                .map(|(p, at)| pb::PolicyVersion {
                    version,
                    policy: Some(policy_pb(p)),
                    set_by: g.policy_set_by.get(&version).cloned().unwrap_or_default(),
                    set_at: Some(ts(*at)),
                })
        })
    }

    /// The access policy as recorded, or the one in force when none was replaced yet.
    pub(super) fn access_policy_view(&self) -> pb::AccessPolicy {
        let current = self.ctx.authorizer.policy();
        self.app.query(|g| match &g.access_policy {
            Some((version, text, sha, at)) => pb::AccessPolicy {
                version: *version,
                policy: text.clone(),
                sha256: sha.clone(),
                replaced_by: g.access_policy_replaced_by.clone(),
                replaced_at: Some(ts(*at)),
            },
            None => pb::AccessPolicy {
                version: 0,
                policy: current.text().to_owned(),
                sha256: current.digest().to_owned(),
                replaced_by: String::new(),
                replaced_at: None,
            },
        })
    }
}
