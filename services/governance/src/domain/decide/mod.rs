//! Deciding commands: every rule that can refuse one lives here, one file per family. Each
//! decision names the stream its events go to and the other streams it read, so the append
//! holds only if nothing was appended to those since.

use flotilla_core::decider::Decision;

use super::*;

mod approvals;
mod cab;
mod catalog;
mod deviations;
mod policy;
mod records;
mod rollbacks;
mod windows;

/// The events `command` causes, or why it is refused.
pub(super) fn decide(g: &Governance, command: Command) -> Result<Decision<Event>> {
    match command {
        Command::SetPolicy(c) => g.set_policy(c),
        Command::ReplaceAccessPolicy(c) => g.replace_access_policy(c),
        Command::OpenApprovalRequest(c) => g.open_approval_request(c),
        Command::Approve(c) => g.approve(c),
        Command::Reject(c) => g.reject(c),
        Command::RecordCabDecision(c) => g.record_cab_decision(c),
        Command::CreateFreezeWindow(c) => g.create_freeze_window(c),
        Command::CancelFreezeWindow(c) => g.cancel_freeze_window(c),
        Command::RequestDeviation(c) => g.request_deviation(c),
        Command::DecideDeviation(c) => g.decide_deviation(c),
        Command::OpenRollbackDecision(c) => g.open_rollback_decision(c),
        Command::DecideRollback(c) => g.decide_rollback(c),
        Command::RecordCatalogService(c) => g.record_catalog_service(c),
        Command::RecordFmeaActions(c) => g.record_fmea_actions(c),
        Command::RecordViolation(c) => g.record_violation(c),
        Command::RecordDeadline(c) => g.record_deadline(c),
    }
}

/// Events for one aggregate's stream.
pub(super) fn decided(key: StreamKey, events: Vec<Event>) -> Result<Decision<Event>> {
    Ok(Decision::new(key.stream(), events))
}

pub(super) const MINUTE: i64 = 60_000_000;
pub(super) const MAX_DEVIATION_DAYS: i64 = 30;

pub(super) fn plus_minutes(t: Timestamp, m: u32) -> Timestamp {
    Timestamp(t.0 + i64::from(m) * MINUTE)
}

pub(super) fn label(field: &str, s: &str) -> Result<()> {
    names::label(field, s).map_err(name_error)
}

pub(super) fn id(field: &str, s: &str) -> Result<()> {
    names::id(field, s).map_err(name_error)
}

pub(super) fn reference(field: &str, s: &str, max: usize) -> Result<()> {
    names::reference(field, s, max).map_err(name_error)
}

pub(super) fn role_name(field: &str, s: &str) -> Result<()> {
    names::role(field, s).map_err(name_error)
}

pub(super) fn list<T: PartialEq>(field: &str, items: &[T], max: usize) -> Result<()> {
    names::list(field, items, max).map_err(name_error)
}

/// How far ahead of the server's clock a time that should be past may be (clock skew).
pub(super) const SKEW: i64 = 5 * MINUTE;

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

pub(super) fn check_optional(field: &str, s: &str, max: usize) -> Result<()> {
    if s.is_empty() {
        return Ok(());
    }
    check_text(field, s, max)
}

/// What a request must hold before the catalog is asked: the ids and the bounded lists.
pub(super) fn check_facts_shape(f: &ReleaseFacts) -> Result<()> {
    names::id("release.release", &f.release).map_err(name_error)?;
    names::label("release.environment", &f.environment).map_err(name_error)?;
    names::id("release.service", &f.service).map_err(name_error)?;
    names::optional_label("release.business_unit", &f.business_unit).map_err(name_error)?;
    names::list("release.committers", &f.committers, 200).map_err(name_error)?;
    Ok(())
}

pub(super) fn check_facts(f: &ReleaseFacts) -> Result<()> {
    // The unit, tier and personal-data flag are the catalog's, checked where they were made.
    // The author and committers arrive sealed (tokens of values the edge held to 256 bytes).
    check_text("release.author", &f.author, SEALED_MAX)?;
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
        check_text("release.committers", c, SEALED_MAX)?;
    }
    Ok(())
}

/// The longest sealed token of a 256-byte value.
const SEALED_MAX: usize = 512;
