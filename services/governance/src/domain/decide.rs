//! Deciding commands: every rule that can refuse one lives here.

use super::*;

const MINUTE: i64 = 60_000_000;
const MAX_DEVIATION_DAYS: i64 = 30;

fn plus_minutes(t: Timestamp, m: u32) -> Timestamp {
    Timestamp(t.0 + i64::from(m) * MINUTE)
}

fn label(field: &str, s: &str) -> Result<()> {
    names::label(field, s).map_err(name_error)
}

fn id(field: &str, s: &str) -> Result<()> {
    names::id(field, s).map_err(name_error)
}

fn reference(field: &str, s: &str, max: usize) -> Result<()> {
    names::reference(field, s, max).map_err(name_error)
}

fn role_name(field: &str, s: &str) -> Result<()> {
    names::role(field, s).map_err(name_error)
}

fn list<T: PartialEq>(field: &str, items: &[T], max: usize) -> Result<()> {
    names::list(field, items, max).map_err(name_error)
}

/// How far ahead of the server's clock a time that should be past may be (clock skew).
const SKEW: i64 = 5 * MINUTE;

pub(crate) fn check_text(field: &str, s: &str, max: usize) -> Result<()> {
    if s.trim().is_empty() {
        return Err(invalid(field, "is empty"));
    }
    if s.len() > max {
        return Err(invalid(field, format!("is longer than {max} bytes")));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(invalid(field, "holds control characters"));
    }
    Ok(())
}

fn check_optional(field: &str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        return Ok(());
    }
    check_text(field, s, max)
}

/// What a request must hold before the catalog is asked: the ids and the bounded lists.
fn check_facts_shape(f: &ReleaseFacts) -> Result<()> {
    names::id("release.release", &f.release).map_err(name_error)?;
    names::label("release.environment", &f.environment).map_err(name_error)?;
    names::id("release.service", &f.service).map_err(name_error)?;
    names::optional_label("release.business_unit", &f.business_unit).map_err(name_error)?;
    names::list("release.committers", &f.committers, 200).map_err(name_error)?;
    Ok(())
}

fn check_facts(f: &ReleaseFacts) -> Result<()> {
    // The unit, tier and personal-data flag are the catalog's, checked where they were made.
    check_text("release.author", &f.author, 256)?;
    check_text("release.version", &f.version, 64)?;
    if !(1..=4).contains(&f.tier) {
        return Err(invalid(
            "release.criticality_tier",
            format!("{} is not 1-4", f.tier),
        ));
    }
    if f.risk_score > 100 {
        return Err(invalid(
            "release.risk_score",
            format!("{} is not 0-100", f.risk_score),
        ));
    }
    if f.committers.len() > 200 {
        return Err(invalid("release.committers", "more than 200 committers"));
    }
    for c in &f.committers {
        check_text("release.committers", c, 256)?;
    }
    Ok(())
}

impl Governance {
    /// The events `command` causes, and the stream they go to; or why it is refused.
    pub fn decide(&self, command: Command) -> Result<(StreamKey, Vec<Event>)> {
        match command {
            Command::SetPolicy {
                policy,
                expected_version,
                at,
                known_roles,
            } => {
                if expected_version != self.policy_version {
                    return Err(DomainError::StalePolicy {
                        expected: expected_version,
                        current: self.policy_version,
                    });
                }
                policy.validate_with(&known_roles)?;
                Ok((
                    StreamKey::Policy,
                    vec![Event::PolicySet {
                        version: self.policy_version + 1,
                        policy,
                        at,
                    }],
                ))
            }
            Command::OpenApprovalRequest {
                id,
                release,
                emergency,
                authoritative,
                authorized_unit,
                by,
                at,
            } => {
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
                            if authoritative
                                && (r.release != release || r.emergency != emergency) => {}
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
                Ok((
                    StreamKey::Approval(key),
                    vec![Event::ApprovalRequestOpened(Box::new(request))],
                ))
            }
            Command::Approve {
                key,
                role,
                comment,
                by,
                at,
            } => {
                role_name("role", &role)?;
                let r = self.pending_request(&key, at)?;
                check_optional("comment", &comment, 4096)?;
                self.check_role_for(r, &key, &role, &by, at)?;
                if let Some(v) = self.sod_violation(r, &role, &by) {
                    return Err(v);
                }
                if r.approvals.iter().any(|a| {
                    a.approver == by.subject
                        && a.role == role
                        && a.valid_until.is_none_or(|u| at < u)
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
                let valid_until =
                    (r.validity_minutes > 0).then(|| plus_minutes(at, r.validity_minutes));
                Ok((
                    StreamKey::Approval(key),
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
                ))
            }
            Command::Reject {
                key,
                role,
                comment,
                by,
                at,
            } => {
                role_name("role", &role)?;
                let r = self.pending_request(&key, at)?;
                check_text("comment", &comment, 4096)?;
                self.check_role_for(r, &key, &role, &by, at)?;
                Ok((
                    StreamKey::Approval(key),
                    vec![Event::ApprovalRejected {
                        request_id: r.id,
                        approver: by.subject,
                        role,
                        comment,
                        at,
                    }],
                ))
            }
            Command::RecordCabDecision { mut decision, at } => {
                id("decision.change_request_id", &decision.change_request_id)?;
                if decision.covers.is_empty() || decision.covers.len() > 1_000 {
                    return Err(invalid(
                        "decision.covers",
                        "a CAB decision covers 1 to 1000 release/environment pairs",
                    ));
                }
                list("decision.covers", &decision.covers, 1_000)?;
                for c in &decision.covers {
                    reference("decision.covers.release", &c.release, 128)?;
                    reference("decision.covers.environment", &c.environment, 64)?;
                }
                list("decision.satisfies_roles", &decision.satisfies_roles, 10)?;
                list("decision.members", &decision.members, 100)?;
                if decision.decided_at.0 > at.0 + SKEW {
                    return Err(invalid(
                        "decision.decided_at",
                        format!(
                            "{} is in the future (now {}); record a decision once it is taken",
                            decision.decided_at.to_rfc3339(),
                            at.to_rfc3339()
                        ),
                    ));
                }
                if decision.satisfies_roles.is_empty() {
                    decision.satisfies_roles = vec![CAB_ROLE.to_owned()];
                }
                if let Some(r) = decision.satisfies_roles.iter().find(|r| *r != CAB_ROLE) {
                    return Err(invalid(
                        "satisfies_roles",
                        format!(
                            "a CAB decision satisfies the {CAB_ROLE} requirement only, not {r:?}"
                        ),
                    ));
                }
                if decision.members.is_empty() || decision.members.len() > 100 {
                    return Err(invalid(
                        "members",
                        "name the board members who decided (1 to 100)",
                    ));
                }
                for m in &decision.members {
                    check_text("members", m, 256)?;
                }
                for k in &decision.covers {
                    if let Some(r) = self.requests.get(k)
                        && let Some(m) = decision
                            .members
                            .iter()
                            .chain(std::iter::once(&decision.recorded_by))
                            .find(|m| **m == r.release.author || r.release.committers.contains(m))
                    {
                        return Err(DomainError::SegregationOfDuties {
                            rule: "sod-cab-member-authored",
                            detail: format!(
                                "CAB member {m} wrote or committed to release {}",
                                k.release
                            ),
                        });
                    }
                }
                check_optional("comment", &decision.comment, 4096)?;
                if self.cab.contains_key(&decision.change_request_id) {
                    return Err(DomainError::AlreadyExists(format!(
                        "CAB decision {} is already recorded",
                        decision.change_request_id
                    )));
                }
                Ok((
                    StreamKey::Cab(decision.change_request_id.clone()),
                    vec![Event::CabDecisionRecorded(decision)],
                ))
            }
            Command::CreateFreezeWindow { window, by } => {
                check_text("window.name", &window.name, 128)?;
                names::optional_label("window.business_unit", &window.business_unit)
                    .map_err(name_error)?;
                list(
                    "window.scope.business_units",
                    &window.scope.business_units,
                    100,
                )?;
                for u in &window.scope.business_units {
                    label("window.scope.business_units", u)?;
                }
                list("window.scope.environments", &window.scope.environments, 50)?;
                for e in &window.scope.environments {
                    label("window.scope.environments", e)?;
                }
                list("window.scope.tiers", &window.scope.tiers, 4)?;
                if window.kind == WindowKind::Embargo && !Self::may_set_embargo(&by) {
                    return Err(DomainError::NotInRole(format!(
                        "only a {COMPLIANCE_OFFICER} sets embargoes; {} is not one",
                        by.subject
                    )));
                }
                check_optional("window.reason", &window.reason, 4096)?;
                window.schedule.validate()?;
                if let Schedule::Once { end, .. } = window.schedule
                    && end <= window.created_at
                {
                    return Err(invalid(
                        "window.once.end",
                        format!(
                            "the window ends at {}, before it is created ({}); a window that is over cannot be created",
                            end.to_rfc3339(),
                            window.created_at.to_rfc3339()
                        ),
                    ));
                }
                if let Some(t) = window.scope.tiers.iter().find(|t| !(1..=4).contains(*t)) {
                    return Err(invalid("window.scope.tiers", format!("{t} is not 1-4")));
                }
                if self.windows.contains_key(&window.id) {
                    return Err(DomainError::AlreadyExists(format!(
                        "window {} already exists",
                        window.id
                    )));
                }
                if self
                    .windows
                    .values()
                    .any(|w| !w.cancelled && w.name == window.name)
                {
                    return Err(DomainError::AlreadyExists(format!(
                        "a window named {:?} already exists",
                        window.name
                    )));
                }
                Ok((
                    StreamKey::Window(window.id),
                    vec![Event::FreezeWindowCreated(window)],
                ))
            }
            Command::CancelFreezeWindow { id, reason, by, at } => {
                let w = self
                    .windows
                    .get(&id)
                    .ok_or_else(|| DomainError::NotFound(format!("window {id}")))?;
                if w.kind == WindowKind::Embargo && !Self::may_set_embargo(&by) {
                    return Err(DomainError::NotInRole(format!(
                        "only a {COMPLIANCE_OFFICER} lifts embargoes; {} is not one",
                        by.subject
                    )));
                }
                if w.cancelled {
                    return Err(DomainError::FailedPrecondition(format!(
                        "window {:?} is already cancelled",
                        w.name
                    )));
                }
                check_optional("reason", &reason, 4096)?;
                Ok((
                    StreamKey::Window(id),
                    vec![Event::FreezeWindowCancelled {
                        window_id: id,
                        reason,
                        at,
                    }],
                ))
            }
            Command::RequestDeviation { deviation, at } => {
                reference("deviation.release", &deviation.release, 128)?;
                reference("deviation.environment", &deviation.environment, 64)?;
                reference("deviation.business_unit", &deviation.business_unit, 128)?;
                role_name("deviation.requester_role", &deviation.requester_role)?;
                check_text("deviation.justification", &deviation.justification, 8192)?;
                if deviation.compensating_controls.is_empty() {
                    return Err(invalid(
                        "deviation.compensating_controls",
                        "name at least one compensating control",
                    ));
                }
                list(
                    "deviation.compensating_controls",
                    &deviation.compensating_controls,
                    20,
                )?;
                for c in &deviation.compensating_controls {
                    check_text("deviation.compensating_controls", c, 1024)?;
                }
                if deviation.expires_at <= at
                    || deviation.expires_at.0 > at.0 + MAX_DEVIATION_DAYS * 24 * 60 * MINUTE
                {
                    return Err(invalid(
                        "deviation.expires_at",
                        format!("must be after now and within {MAX_DEVIATION_DAYS} days"),
                    ));
                }
                if self.deviations.contains_key(&deviation.id) {
                    return Err(DomainError::AlreadyExists(format!(
                        "deviation {} already exists",
                        deviation.id
                    )));
                }
                let key = ReleaseEnv {
                    release: deviation.release.clone(),
                    environment: deviation.environment.clone(),
                };
                let request = self.requests.get(&key).ok_or_else(|| {
                    DomainError::FailedPrecondition(format!(
                        "release {} has no approval request for {}; a deviation applies to a release governance knows",
                        key.release, key.environment
                    ))
                })?;
                if request.release.business_unit != deviation.business_unit {
                    return Err(invalid(
                        "deviation.business_unit",
                        format!(
                            "release {} belongs to unit {}, not {}",
                            key.release, request.release.business_unit, deviation.business_unit
                        ),
                    ));
                }
                Ok((
                    StreamKey::Deviation(deviation.id),
                    vec![Event::DeviationRequested { deviation, at }],
                ))
            }
            Command::DecideDeviation {
                id,
                approve,
                role,
                comment,
                by,
                at,
            } => {
                role_name("role", &role)?;
                let d = self
                    .deviations
                    .get(&id)
                    .ok_or_else(|| DomainError::NotFound(format!("deviation {id}")))?;
                if d.status != DeviationStatus::Requested {
                    return Err(DomainError::FailedPrecondition(format!(
                        "deviation {id} is already {:?}",
                        d.status
                    )));
                }
                if at >= d.expires_at {
                    return Err(DomainError::FailedPrecondition(format!(
                        "deviation {id} expired before it was decided"
                    )));
                }
                if !by.roles.contains(&role) {
                    return Err(DomainError::NotInRole(format!(
                        "{} does not hold role {role}",
                        by.subject
                    )));
                }
                if by.subject == d.requested_by {
                    return Err(DomainError::SegregationOfDuties {
                        rule: "sod-deviation-self-approval",
                        detail: format!(
                            "{} requested deviation {id} and may not decide it",
                            by.subject
                        ),
                    });
                }
                if role == d.requester_role {
                    return Err(DomainError::SegregationOfDuties {
                        rule: "sod-deviation-same-role",
                        detail: format!(
                            "deviation {id} was requested as {role}; it must be decided by another role"
                        ),
                    });
                }
                if approve && d.rule == GateRule::Embargo && role != COMPLIANCE_OFFICER {
                    return Err(DomainError::NotInRole(format!(
                        "a deviation from an embargo must be approved by a {COMPLIANCE_OFFICER}"
                    )));
                }
                check_optional("comment", &comment, 4096)?;
                let event = if approve {
                    Event::DeviationApproved {
                        deviation_id: id,
                        approver: by.subject,
                        role,
                        comment,
                        at,
                    }
                } else {
                    Event::DeviationRejected {
                        deviation_id: id,
                        approver: by.subject,
                        role,
                        comment,
                        at,
                    }
                };
                Ok((StreamKey::Deviation(id), vec![event]))
            }
            Command::OpenRollbackDecision { mut decision } => {
                id("decision.release", &decision.release)?;
                label("decision.environment", &decision.environment)?;
                id("decision.service", &decision.service)?;
                label("decision.business_unit", &decision.business_unit)?;
                id("decision.metric", &decision.metric)?;
                if !decision.observed.is_finite() {
                    return Err(invalid("decision.observed", "is not a finite number"));
                }
                let key = ReleaseEnv {
                    release: decision.release.clone(),
                    environment: decision.environment.clone(),
                };
                if let Some(r) = self.requests.get(&key) {
                    if r.release.business_unit != decision.business_unit {
                        return Err(invalid(
                            "decision.business_unit",
                            format!(
                                "release {} belongs to unit {}, not {}",
                                key.release, r.release.business_unit, decision.business_unit
                            ),
                        ));
                    }
                    // The release's own tier sets the time limit, not the caller's.
                    decision.tier = r.release.tier;
                }
                let criteria = self.policy.rollback_for(decision.tier).ok_or_else(|| {
                    invalid(
                        "decision.tier",
                        format!("no rollback criteria for tier {}", decision.tier),
                    )
                })?;
                if self.rollbacks.contains_key(&decision.id) {
                    return Err(DomainError::AlreadyExists(format!(
                        "rollback decision {} already exists",
                        decision.id
                    )));
                }
                decision.decide_by = plus_minutes(decision.opened_at, criteria.decision_minutes);
                decision.notify = criteria.notify.clone();
                decision.status = RollbackStatus::Pending;
                decision.overdue = false;
                Ok((
                    StreamKey::Rollback(decision.id),
                    vec![Event::RollbackDecisionOpened(decision)],
                ))
            }
            Command::DecideRollback {
                id,
                roll_back,
                comment,
                by,
                at,
            } => {
                let d = self
                    .rollbacks
                    .get(&id)
                    .ok_or_else(|| DomainError::NotFound(format!("rollback decision {id}")))?;
                if d.status != RollbackStatus::Pending {
                    return Err(DomainError::FailedPrecondition(format!(
                        "rollback decision {id} is already taken"
                    )));
                }
                check_optional("comment", &comment, 4096)?;
                Ok((
                    StreamKey::Rollback(id),
                    vec![Event::RollbackDecided {
                        decision_id: id,
                        roll_back,
                        decided_by: by.subject,
                        comment,
                        at,
                    }],
                ))
            }
            Command::RecordCatalogService {
                service,
                source_event_id,
                source_sequence,
            } => {
                let key = StreamKey::CatalogService(service.name.clone());
                // The same facts again, or an older word (a redelivery out of order), change
                // nothing.
                let newer = self
                    .catalog_sequences
                    .get(&service.name)
                    .is_none_or(|s| source_sequence > *s);
                if self.catalog.get(&service.name) == Some(&service) || !newer {
                    return Ok((key, Vec::new()));
                }
                Ok((
                    key,
                    vec![Event::CatalogServiceRecorded {
                        service,
                        source_event_id,
                        source_sequence,
                    }],
                ))
            }
            Command::ReplaceAccessPolicy {
                policy,
                sha256,
                expected_version,
                at,
                signed,
            } => {
                let current = self.access_policy.as_ref().map(|p| p.0).unwrap_or(0);
                if expected_version != current {
                    return Err(DomainError::StalePolicy {
                        expected: expected_version,
                        current,
                    });
                }
                Ok((
                    StreamKey::AccessPolicy,
                    vec![Event::AccessPolicyReplaced {
                        version: current + 1,
                        policy,
                        sha256,
                        at,
                        signed,
                    }],
                ))
            }
        }
    }

    fn may_set_embargo(by: &Actor) -> bool {
        by.roles.contains(COMPLIANCE_OFFICER) || by.roles.contains(ADMIN)
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

    /// The event recording a refused attempt that broke segregation of duties, if the target
    /// exists (it goes to the target's stream).
    pub fn violation(
        &self,
        target: &ViolationTarget,
        actor: &str,
        role: &str,
        rule: &str,
        detail: &str,
        at: Timestamp,
    ) -> Option<(StreamKey, Event)> {
        let (stream, id) = match target {
            ViolationTarget::Request(key) => {
                (StreamKey::Approval(key.clone()), self.requests.get(key)?.id)
            }
            ViolationTarget::Deviation(id) => {
                self.deviations.get(id)?;
                (StreamKey::Deviation(*id), *id)
            }
        };
        Some((
            stream,
            Event::SegregationOfDutiesViolated {
                request_id: id,
                actor: actor.to_owned(),
                role: role.chars().take(64).collect(),
                rule: rule.to_owned(),
                detail: detail.to_owned(),
                at,
            },
        ))
    }

    /// Everything whose deadline passed by `now`: escalations, expiries, overdue rollback
    /// decisions, expired deviations (each for its own stream).
    pub fn deadlines(&self, now: Timestamp) -> Vec<(StreamKey, Event)> {
        let mut out = Vec::new();
        let mut requests: Vec<_> = self.requests.iter().collect();
        requests.sort_by_key(|(_, r)| r.id);
        for (key, r) in requests {
            if r.rejection.is_some() || r.expired {
                continue;
            }
            // Approved ones are done; only undecided requests escalate and expire.
            let undecided = r.requirements.iter().any(|q| {
                self.cab_satisfying(key, &q.role, now).is_none() && r.given(&q.role, now) < q.count
            });
            if !undecided {
                continue;
            }
            if now >= r.expires_at {
                out.push((
                    StreamKey::Approval(key.clone()),
                    Event::ApprovalRequestExpired {
                        request_id: r.id,
                        at: now,
                    },
                ));
            } else if now >= r.due_at && !r.escalated {
                out.push((
                    StreamKey::Approval(key.clone()),
                    Event::ApprovalEscalated {
                        request_id: r.id,
                        at: now,
                        notify: r.escalate_to.clone(),
                    },
                ));
            }
        }
        for d in self.rollbacks.values() {
            if d.status == RollbackStatus::Pending && !d.overdue && now >= d.decide_by {
                out.push((
                    StreamKey::Rollback(d.id),
                    Event::RollbackDecisionOverdue {
                        decision_id: d.id,
                        at: now,
                        notify: d.notify.clone(),
                    },
                ));
            }
        }
        for d in self.deviations.values() {
            if matches!(
                d.status,
                DeviationStatus::Requested | DeviationStatus::Approved
            ) && now >= d.expires_at
            {
                out.push((
                    StreamKey::Deviation(d.id),
                    Event::DeviationExpired {
                        deviation_id: d.id,
                        at: now,
                    },
                ));
            }
        }
        out
    }
}
