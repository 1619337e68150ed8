//! Which business unit a release, and the events of a stream, belong to.

use uuid::Uuid;

use super::*;

impl Governance {
    /// The business unit recorded events are about (the `businessunit` they carry): the
    /// request's, window's, deviation's, rollback decision's or service's unit, the one unit a
    /// CAB decision's releases share; empty for platform-wide facts and mixed CAB decisions.
    pub fn unit_of_events(&self, events: &[Event]) -> String {
        events
            .iter()
            .find_map(|e| self.unit_of_event(e))
            .unwrap_or_default()
    }

    fn unit_of_event(&self, event: &Event) -> Option<String> {
        let of_request = |id: &Uuid| {
            self.request_keys
                .get(id)
                .and_then(|k| self.business_unit_of(k))
                .map(str::to_owned)
        };
        let of_deviation = |id: &Uuid| self.deviations.get(id).map(|d| d.business_unit.clone());
        let of_rollback = |id: &Uuid| self.rollbacks.get(id).map(|d| d.business_unit.clone());
        match event {
            Event::ApprovalRequestOpened(r) => Some(r.release.business_unit.clone()),
            Event::FreezeWindowCreated(w) => Some(w.business_unit.clone()),
            Event::DeviationRequested { deviation, .. } => Some(deviation.business_unit.clone()),
            Event::RollbackDecisionOpened(d) => Some(d.business_unit.clone()),
            Event::CatalogServiceRecorded { service, .. } => Some(service.business_unit.clone()),
            Event::FmeaActionsRecorded { business_unit, .. } => Some(business_unit.clone()),
            Event::CabDecisionRecorded(d) => {
                let mut units: Vec<&str> = d
                    .covers
                    .iter()
                    .filter_map(|c| self.business_unit_of(c))
                    .collect();
                units.sort_unstable();
                units.dedup();
                Some(if units.len() == 1 {
                    units[0].to_owned()
                } else {
                    String::new()
                })
            }
            Event::ApprovalGranted { request_id, .. }
            | Event::ApprovalRejected { request_id, .. }
            | Event::ApprovalEscalated { request_id, .. }
            | Event::ApprovalRequestExpired { request_id, .. } => of_request(request_id),
            // A violation names a request or a deviation.
            Event::SegregationOfDutiesViolated { request_id, .. } => {
                of_request(request_id).or_else(|| of_deviation(request_id))
            }
            Event::FreezeWindowCancelled { window_id, .. } => {
                self.windows.get(window_id).map(|w| w.business_unit.clone())
            }
            Event::DeviationApproved { deviation_id, .. }
            | Event::DeviationRejected { deviation_id, .. }
            | Event::DeviationExpired { deviation_id, .. } => of_deviation(deviation_id),
            Event::RollbackDecided { decision_id, .. }
            | Event::RollbackDecisionOverdue { decision_id, .. } => of_rollback(decision_id),
            Event::PolicySet { .. } | Event::AccessPolicyReplaced { .. } => Some(String::new()),
        }
    }

    /// The business unit a release belongs to in an environment (from its approval request).
    pub fn business_unit_of(&self, key: &ReleaseEnv) -> Option<&str> {
        self.requests
            .get(key)
            .map(|r| r.release.business_unit.as_str())
    }
}

impl Governance {
    /// The facts of a release to open a request with: what the catalog says of its service fills
    /// what the request leaves out (unit, tier 0, personal data), and a request that says
    /// otherwise, names a service the catalog does not know, or reuses a release id of another
    /// unit is refused with the catalog's values.
    ///
    /// An `authoritative` assessment (risk-validation's) is not refused for its facts: the
    /// catalog's replace them; a service the catalog does not know yet is `NotYetKnown` (the
    /// catalog's event may not have arrived yet).
    pub(crate) fn facts_from_catalog(
        &self,
        mut f: ReleaseFacts,
        authoritative: bool,
    ) -> Result<ReleaseFacts> {
        let Some(known) = self.catalog.get(&f.service) else {
            let message = format!(
                "service {} is not in the service catalog; register it in dependency-mapping first (governance takes its unit, tier and personal-data facts from there)",
                crate::domain::shown(&f.service)
            );
            return Err(if authoritative {
                DomainError::NotYetKnown(message)
            } else {
                DomainError::FailedPrecondition(message)
            });
        };
        if authoritative {
            f.business_unit = known.business_unit.clone();
            f.tier = known.tier;
            f.personal_data = known.personal_data;
        }
        let pii = |p: bool| {
            if p {
                "handles personal data"
            } else {
                "no personal data"
            }
        };
        let said = (f.business_unit.clone(), f.tier, f.personal_data);
        if f.business_unit.is_empty() {
            f.business_unit = known.business_unit.clone();
        }
        if f.tier == 0 {
            f.tier = known.tier;
        }
        // Leaving the flag out (false) takes the catalog's.
        f.personal_data |= known.personal_data;
        if f.business_unit != known.business_unit
            || f.tier != known.tier
            || f.personal_data != known.personal_data
        {
            return Err(DomainError::FailedPrecondition(format!(
                "the request contradicts the service catalog: {} belongs to unit {}, tier {}, {}; the request says unit {}, tier {}, {}. Open it with the catalog's facts, or leave them out",
                known.name,
                known.business_unit,
                known.tier,
                pii(known.personal_data),
                crate::domain::shown(&said.0),
                said.1,
                pii(said.2)
            )));
        }
        if let Some(unit) = self.release_units.get(&f.release)
            && *unit != f.business_unit
        {
            return Err(DomainError::FailedPrecondition(format!(
                "release id {} belongs to unit {unit}; a release id names one unit's release, choose another id",
                f.release
            )));
        }
        Ok(f)
    }
}
