//! Freeze windows and embargoes.

use flotilla_core::decider::Decision;

use super::*;

impl Governance {
    /// A freeze window or embargo (embargoes by compliance officers only).
    pub(super) fn create_freeze_window(&self, c: CreateFreezeWindow) -> Result<Decision<Event>> {
        let CreateFreezeWindow { window, by } = c;
        check_text("window.name", &window.name, 128)?;
        names::optional_label("window.business_unit", &window.business_unit).map_err(name_error)?;
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
        decided(
            StreamKey::Window(window.id),
            vec![Event::FreezeWindowCreated(window)],
        )
    }

    /// Cancels a window (an embargo by compliance officers only).
    pub(super) fn cancel_freeze_window(&self, c: CancelFreezeWindow) -> Result<Decision<Event>> {
        let CancelFreezeWindow { id, reason, by, at } = c;
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
        decided(
            StreamKey::Window(id),
            vec![Event::FreezeWindowCancelled {
                window_id: id,
                reason,
                at,
            }],
        )
    }

    fn may_set_embargo(by: &Actor) -> bool {
        by.roles.contains(COMPLIANCE_OFFICER) || by.roles.contains(ADMIN)
    }
}
