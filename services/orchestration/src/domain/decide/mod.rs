//! Deciding commands: every rule that can refuse one lives here, one file per family. Each
//! decision names the stream its events go to and the other streams it read.

use flotilla_core::decider::Decision;

use super::*;

mod artifacts;
mod deployments;
mod environments;
mod promotion;
mod releases;

/// The events `command` causes, or why it is refused.
pub(super) fn decide(o: &Orchestration, command: Command) -> Result<Decision<Event>> {
    match command {
        Command::SetPolicy(c) => o.set_policy(c),
        Command::RegisterArtifact(c) => o.register_artifact(c),
        Command::SetPromotionPath(c) => o.set_promotion_path(c),
        Command::DefineEnvironment(c) => o.define_environment(c),
        Command::RemoveEnvironment(c) => o.remove_environment(c),
        Command::DefineSharedInfrastructure(c) => o.define_shared_infrastructure(c),
        Command::DefineTriggerRule(c) => o.define_trigger_rule(c),
        Command::RemoveTriggerRule(c) => o.remove_trigger_rule(c),
        Command::ReportConfiguration(c) => o.report_configuration(c),
        Command::RecordDataRefresh(c) => o.record_data_refresh(c),
        Command::BookTestWindow(c) => o.book_test_window(c),
        Command::SignOffTestWindow(c) => o.sign_off_test_window(c),
        Command::RecordValidation(c) => o.record_validation(c),
        Command::CreateRelease(c) => o.create_release(c),
        Command::PlanRelease(c) => o.plan_release(c),
        Command::PromoteRelease(c) => o.promote_release(c),
        Command::StartStep(c) => o.start_step(c),
        Command::FinishStep(c) => o.finish_step(c),
        Command::RecordAnalysis(c) => o.record_analysis(c),
        Command::ResumeDeployment(c) => o.resume_deployment(c),
        Command::RollbackRelease(c) => o.rollback_release(c),
        Command::DeclineRollback(c) => o.decline_rollback(c),
    }
}

/// Events for one aggregate's stream.
pub(super) fn decided(key: StreamKey, events: Vec<Event>) -> Result<Decision<Event>> {
    Ok(Decision::new(key.stream(), events))
}

pub(super) fn label(field: &str, s: &str) -> Result<()> {
    names::label(field, s).map_err(name_error)
}

pub(super) fn id(field: &str, s: &str) -> Result<()> {
    names::id(field, s).map_err(name_error)
}

pub(super) fn text(field: &str, s: &str, max: usize) -> Result<()> {
    names::text(field, s, max).map_err(name_error)
}

pub(super) fn list<T: PartialEq>(field: &str, items: &[T], max: usize) -> Result<()> {
    names::list(field, items, max).map_err(name_error)
}

pub(super) fn precondition(reason: impl Into<String>) -> DomainError {
    DomainError::FailedPrecondition(reason.into())
}

impl Orchestration {
    pub(super) fn env_or_refuse(&self, unit: &str, name: &str) -> Result<&Environment> {
        self.environment(unit, name).ok_or_else(|| {
            DomainError::NotFound(format!(
                "environment {} of unit {}",
                shown(name),
                shown(unit)
            ))
        })
    }

    pub(super) fn release_or_refuse(&self, id: uuid::Uuid) -> Result<&Release> {
        self.releases
            .get(&id)
            .ok_or_else(|| DomainError::NotFound(format!("release {id}")))
    }

    pub(super) fn deployment_or_refuse(&self, id: uuid::Uuid) -> Result<&Deployment> {
        self.deployments
            .get(&id)
            .ok_or_else(|| DomainError::NotFound(format!("deployment {id}")))
    }
}
