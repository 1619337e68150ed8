//! Approval requests: opening (with the catalog's facts), approving with segregation of duties,
//! rejecting.

use flotilla_core::decider::Decision;

use super::*;

impl Governance {
    /// Opens the approval request of a release in an environment, with the catalog's facts and
    /// the policy's requirements.
    pub(super) fn open_approval_request(&self, c: OpenApprovalRequest) -> Result<Decision<Event>> {
        let OpenApprovalRequest {
            id,
            release,
            emergency,
            authoritative,
            authorized_unit,
            by,
            at,
        } = c;
        check_facts_shape(&release)?;
        let release = self.facts_from_catalog(release, authoritative)?;
        if let Some(unit) = authorized_unit
            && unit != release.business_unit
        {
            return Err(DomainError::FailedPrecondition(format!(
                "{} belongs to unit {} now, not {unit} as when the request was checked; try again",
                release.service, release.business_unit
            )));
        }
        check_facts(&release)?;
        self.policy.check_version(&release.version)?;
        let key = ReleaseEnv {
            release: release.release.clone(),
            environment: release.environment.clone(),
        };
        if let Some(r) = self.requests.get(&key) {
            match r.status(self, at) {
                // Risk-validation's assessment is authoritative: a pending or approved
                // request opened with other facts is superseded (approvals start over).
                ApprovalStatus::Pending | ApprovalStatus::Approved
                    if authoritative && (r.release != release || r.emergency != emergency) => {}
                ApprovalStatus::Pending | ApprovalStatus::Approved => {
                    return Err(DomainError::AlreadyExists(format!(
                        "release {} already has an open approval request for {} ({})",
                        key.release, key.environment, r.id
                    )));
                }
                ApprovalStatus::Rejected | ApprovalStatus::Expired => {}
            }
        }
        // Once risk-validation assessed a release, facts given by hand must match.
        if !authoritative
            && let Some((facts, assessed_emergency)) = self.assessed.get(&key)
            && (*facts != release || *assessed_emergency != emergency)
        {
            return Err(DomainError::FailedPrecondition(format!(
                "risk-validation assessed release {} in {} with other facts; reopen with those (tier {}, risk {}, author {})",
                key.release, key.environment, facts.tier, facts.risk_score, facts.author
            )));
        }
        let requirements = self
            .policy
            .requirements_for(
                &release.business_unit,
                &release.environment,
                release.tier,
                release.risk_score,
                release.personal_data,
            )
            .ok_or_else(|| {
                DomainError::FailedPrecondition(format!(
                    "no approval rule of policy version {} covers tier {} at risk {} in unit {} and environment {}",
                    self.policy_version,
                    release.tier,
                    release.risk_score,
                    release.business_unit,
                    release.environment
                ))
            })?;
        let request = ApprovalRequest {
            id,
            requirements,
            approvals: Vec::new(),
            opened_at: at,
            opened_by: by.subject,
            due_at: plus_minutes(at, self.policy.decision_deadline_minutes),
            expires_at: plus_minutes(at, self.policy.expire_after_minutes),
            escalate_to: self.policy.escalate_to.clone(),
            validity_minutes: self.policy.approval_validity_minutes,
            policy_version: self.policy_version,
            emergency,
            assessed: authoritative,
            escalated: false,
            expired: false,
            rejection: None,
            rejected_at: None,
            version: 0,
            release,
        };
        let read: Vec<_> = self
            .cab_streams(&key)
            .chain([
                StreamKey::Policy.stream(),
                StreamKey::CatalogService(request.release.service.clone()).stream(),
            ])
            .collect();
        Ok(Decision::new(
            StreamKey::Approval(key).stream(),
            vec![Event::ApprovalRequestOpened(Box::new(request))],
        )
        .reading(read))
    }

    /// One approval in a required role, with segregation of duties.
    pub(super) fn approve(&self, c: Approve) -> Result<Decision<Event>> {
        let Approve {
            key,
            role,
            comment,
            by,
            at,
        } = c;
        role_name("role", &role)?;
        let r = self.pending_request(&key, at)?;
        check_optional("comment", &comment, 4096)?;
        self.check_role_for(r, &key, &role, &by, at)?;
        if let Some(v) = self.sod_violation(r, &role, &by) {
            return Err(v);
        }
        if r.approvals.iter().any(|a| {
            a.approver == by.subject && a.role == role && a.valid_until.is_none_or(|u| at < u)
        }) {
            return Err(DomainError::AlreadyExists(format!(
                "{} has already approved release {} in {} as {role}",
                by.subject, key.release, key.environment
            )));
        }
        let need = r
            .requirements
            .iter()
            .find(|q| q.role == role)
            .map(|q| q.count)
            .unwrap_or(0);
        if r.given(&role, at) >= need {
            return Err(DomainError::AlreadyExists(format!(
                "the {role} approvals of release {} in {} are already complete",
                key.release, key.environment
            )));
        }
        let valid_until = (r.validity_minutes > 0).then(|| plus_minutes(at, r.validity_minutes));
        let read: Vec<_> = self.cab_streams(&key).collect();
        Ok(Decision::new(
            StreamKey::Approval(key).stream(),
            vec![Event::ApprovalGranted {
                request_id: r.id,
                approval: Approval {
                    approver: by.subject,
                    role,
                    comment,
                    at,
                    valid_until,
                },
            }],
        )
        .reading(read))
    }

    /// A rejection, which ends the request.
    pub(super) fn reject(&self, c: Reject) -> Result<Decision<Event>> {
        let Reject {
            key,
            role,
            comment,
            by,
            at,
        } = c;
        role_name("role", &role)?;
        let r = self.pending_request(&key, at)?;
        check_text("comment", &comment, 4096)?;
        self.check_role_for(r, &key, &role, &by, at)?;
        let read: Vec<_> = self.cab_streams(&key).collect();
        Ok(Decision::new(
            StreamKey::Approval(key).stream(),
            vec![Event::ApprovalRejected {
                request_id: r.id,
                approver: by.subject,
                role,
                comment,
                at,
            }],
        )
        .reading(read))
    }

    /// The streams of the CAB decisions covering a release in an environment (what the status
    /// of its request depends on besides its own stream).
    pub(super) fn cab_streams(
        &self,
        key: &ReleaseEnv,
    ) -> impl Iterator<Item = flotilla_core::ids::StreamId> {
        self.cab_by_release
            .get(key)
            .into_iter()
            .flatten()
            .map(|id| StreamKey::Cab(id.clone()).stream())
    }

    fn pending_request(&self, key: &ReleaseEnv, at: Timestamp) -> Result<&ApprovalRequest> {
        let r = self.requests.get(key).ok_or_else(|| {
            DomainError::NotFound(format!(
                "approval request of release {} in {}",
                key.release, key.environment
            ))
        })?;
        match r.status(self, at) {
            ApprovalStatus::Pending => Ok(r),
            ApprovalStatus::Approved => Err(DomainError::FailedPrecondition(format!(
                "the approval request of release {} in {} is already approved",
                key.release, key.environment
            ))),
            ApprovalStatus::Rejected => Err(DomainError::FailedPrecondition(format!(
                "the approval request of release {} in {} was rejected; open a new one",
                key.release, key.environment
            ))),
            ApprovalStatus::Expired => Err(DomainError::FailedPrecondition(format!(
                "the approval request of release {} in {} has expired; open a new one",
                key.release, key.environment
            ))),
        }
    }

    /// The role must be required, held by the caller (peer review: any approver), and not
    /// already satisfied by a CAB decision (nothing is reviewed twice).
    fn check_role_for(
        &self,
        r: &ApprovalRequest,
        key: &ReleaseEnv,
        role: &str,
        by: &Actor,
        at: Timestamp,
    ) -> Result<()> {
        if !r.requirements.iter().any(|q| q.role == role) {
            return Err(DomainError::FailedPrecondition(format!(
                "role {role} is not required for release {} in {}; required: {}",
                key.release,
                key.environment,
                r.requirements
                    .iter()
                    .map(|q| format!("{} x{}", q.role, q.count))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if role != PEER_REVIEW && !by.roles.contains(role) {
            return Err(DomainError::NotInRole(format!(
                "{} does not hold role {role}",
                by.subject
            )));
        }
        if let Some(d) = self.cab_satisfying(key, role, at) {
            return Err(DomainError::AlreadyExists(format!(
                "the {role} requirement of release {} in {} is already satisfied by CAB decision {}; it is not reviewed twice",
                key.release, key.environment, d.change_request_id
            )));
        }
        Ok(())
    }

    /// Segregation of duties for an approval: author, committers and approvers differ, and one
    /// person fills one role per request.
    fn sod_violation(&self, r: &ApprovalRequest, role: &str, by: &Actor) -> Option<DomainError> {
        if by.subject == r.release.author {
            return Some(DomainError::SegregationOfDuties {
                rule: "sod-author-approves",
                detail: format!(
                    "{} is the author of release {} and may not approve it",
                    by.subject, r.release.release
                ),
            });
        }
        if by.subject == r.opened_by {
            return Some(DomainError::SegregationOfDuties {
                rule: "sod-opener-approves",
                detail: format!(
                    "{} opened the approval request of release {} and may not approve it",
                    by.subject, r.release.release
                ),
            });
        }
        if r.release.committers.contains(&by.subject) {
            return Some(DomainError::SegregationOfDuties {
                rule: "sod-committer-approves",
                detail: format!(
                    "{} committed to release {} and may not approve it",
                    by.subject, r.release.release
                ),
            });
        }
        if let Some(a) = r
            .approvals
            .iter()
            .find(|a| a.approver == by.subject && a.role != role)
        {
            return Some(DomainError::SegregationOfDuties {
                rule: "sod-one-person-one-role",
                detail: format!(
                    "{} already approved release {} as {}; one person fills one required role",
                    by.subject, r.release.release, a.role
                ),
            });
        }
        None
    }
}
