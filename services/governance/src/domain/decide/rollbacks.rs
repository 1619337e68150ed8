//! Rollback decisions opened on a threshold breach and taken by people.

use flotilla_core::decider::Decision;

use super::*;

impl Governance {
    /// A rollback decision with the release's own tier's time limit.
    pub(super) fn open_rollback_decision(
        &self,
        c: OpenRollbackDecision,
    ) -> Result<Decision<Event>> {
        let OpenRollbackDecision { mut decision } = c;
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
        // The release's tier (from its request) and the policy set the time limit.
        let read = [
            StreamKey::Approval(key).stream(),
            StreamKey::Policy.stream(),
        ];
        Ok(Decision::new(
            StreamKey::Rollback(decision.id).stream(),
            vec![Event::RollbackDecisionOpened(decision)],
        )
        .reading(read))
    }

    /// Rolls back or continues.
    pub(super) fn decide_rollback(&self, c: DecideRollback) -> Result<Decision<Event>> {
        let DecideRollback {
            id,
            roll_back,
            comment,
            by,
            at,
        } = c;
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
        decided(
            StreamKey::Rollback(id),
            vec![Event::RollbackDecided {
                decision_id: id,
                roll_back,
                decided_by: by.subject,
                comment,
                at,
            }],
        )
    }
}
