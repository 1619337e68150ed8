//! Deviations from a gate rule, requested and decided by different people in different roles.

use flotilla_core::decider::Decision;

use super::*;

impl Governance {
    /// A deviation from one gate rule for a release governance knows.
    pub(super) fn request_deviation(&self, c: RequestDeviation) -> Result<Decision<Event>> {
        let RequestDeviation { deviation, at } = c;
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
        Ok(Decision::new(
            StreamKey::Deviation(deviation.id).stream(),
            vec![Event::DeviationRequested { deviation, at }],
        )
        .reading([StreamKey::Approval(key).stream()]))
    }

    /// Approves or rejects a deviation, never by its requester or in their role.
    pub(super) fn decide_deviation(&self, c: DecideDeviation) -> Result<Decision<Event>> {
        let DecideDeviation {
            id,
            approve,
            role,
            comment,
            by,
            at,
        } = c;
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
        decided(StreamKey::Deviation(id), vec![event])
    }
}
