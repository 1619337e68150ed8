//! Change advisory board decisions.

use flotilla_core::decider::Decision;

use super::*;

impl Governance {
    /// A change advisory board's decision on the releases it covers.
    pub(super) fn record_cab_decision(&self, c: RecordCabDecision) -> Result<Decision<Event>> {
        let RecordCabDecision { mut decision, at } = c;
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
                format!("a CAB decision satisfies the {CAB_ROLE} requirement only, not {r:?}"),
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
                    detail: format!("CAB member {m} wrote or committed to release {}", k.release),
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
        // Who wrote the releases it covers was read from their requests.
        let read: Vec<_> = decision
            .covers
            .iter()
            .filter(|k| self.requests.contains_key(*k))
            .map(|k| StreamKey::Approval(k.clone()).stream())
            .collect();
        Ok(Decision::new(
            StreamKey::Cab(decision.change_request_id.clone()).stream(),
            vec![Event::CabDecisionRecorded(decision)],
        )
        .reading(read))
    }
}
