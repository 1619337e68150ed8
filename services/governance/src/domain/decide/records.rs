//! What governance records without a person deciding: refused attempts that broke segregation
//! of duties, and deadlines that passed (escalations, expiries, overdue rollback decisions,
//! expired deviations), one aggregate at a time.

use flotilla_core::decider::Decision;

use super::*;

impl Governance {
    /// The refused attempt, on the target's stream; nothing when the target does not exist.
    pub(super) fn record_violation(&self, c: RecordViolation) -> Result<Decision<Event>> {
        let (key, id) = match &c.target {
            ViolationTarget::Request(k) => match self.requests.get(k) {
                Some(r) => (StreamKey::Approval(k.clone()), r.id),
                None => return Ok(Decision::nothing(StreamKey::Approval(k.clone()).stream())),
            },
            ViolationTarget::Deviation(id) => {
                let key = StreamKey::Deviation(*id);
                if !self.deviations.contains_key(id) {
                    return Ok(Decision::nothing(key.stream()));
                }
                (key, *id)
            }
        };
        decided(
            key,
            vec![Event::SegregationOfDutiesViolated {
                request_id: id,
                actor: c.actor,
                role: c.role.chars().take(64).collect(),
                rule: c.rule,
                detail: c.detail,
                at: c.at,
            }],
        )
    }

    /// What of one aggregate's deadlines passed by `now`, decided on the state as it is (an
    /// approval or decision that came in since the scheduler looked leaves nothing to record).
    pub(super) fn record_deadline(&self, c: RecordDeadline) -> Result<Decision<Event>> {
        let events = self.deadline_of(&c.key, c.now).into_iter().collect();
        // Whether a request is still undecided depends on the CAB decisions covering it.
        let read: Vec<_> = match &c.key {
            StreamKey::Approval(k) => self.cab_streams(k).collect(),
            _ => Vec::new(),
        };
        Ok(Decision::new(c.key.stream(), events).reading(read))
    }

    /// The aggregates with a deadline that passed by `now`, in a stable order (requests by id,
    /// then rollback decisions, then deviations).
    pub fn due(&self, now: Timestamp) -> Vec<StreamKey> {
        let mut requests: Vec<_> = self.requests.iter().collect();
        requests.sort_by_key(|(_, r)| r.id);
        requests
            .into_iter()
            .map(|(k, _)| StreamKey::Approval(k.clone()))
            .chain(self.rollbacks.keys().map(|id| StreamKey::Rollback(*id)))
            .chain(self.deviations.keys().map(|id| StreamKey::Deviation(*id)))
            .filter(|k| self.deadline_of(k, now).is_some())
            .collect()
    }

    /// Everything whose deadline passed by `now`, each with its stream.
    pub fn deadlines(&self, now: Timestamp) -> Vec<(StreamKey, Event)> {
        self.due(now)
            .into_iter()
            .filter_map(|k| self.deadline_of(&k, now).map(|e| (k, e)))
            .collect()
    }

    fn deadline_of(&self, key: &StreamKey, now: Timestamp) -> Option<Event> {
        match key {
            StreamKey::Approval(k) => {
                let r = self.requests.get(k)?;
                if r.rejection.is_some() || r.expired {
                    return None;
                }
                // Approved ones are done; only undecided requests escalate and expire.
                let undecided = r.requirements.iter().any(|q| {
                    self.cab_satisfying(k, &q.role, now).is_none()
                        && r.given(&q.role, now) < q.count
                });
                if !undecided {
                    None
                } else if now >= r.expires_at {
                    Some(Event::ApprovalRequestExpired {
                        request_id: r.id,
                        at: now,
                    })
                } else if now >= r.due_at && !r.escalated {
                    Some(Event::ApprovalEscalated {
                        request_id: r.id,
                        at: now,
                        notify: r.escalate_to.clone(),
                    })
                } else {
                    None
                }
            }
            StreamKey::Rollback(id) => {
                let d = self.rollbacks.get(id)?;
                (d.status == RollbackStatus::Pending && !d.overdue && now >= d.decide_by).then(
                    || Event::RollbackDecisionOverdue {
                        decision_id: d.id,
                        at: now,
                        notify: d.notify.clone(),
                    },
                )
            }
            StreamKey::Deviation(id) => {
                let d = self.deviations.get(id)?;
                (matches!(
                    d.status,
                    DeviationStatus::Requested | DeviationStatus::Approved
                ) && now >= d.expires_at)
                    .then_some(Event::DeviationExpired {
                        deviation_id: d.id,
                        at: now,
                    })
            }
            _ => None,
        }
    }
}
