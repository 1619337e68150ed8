//! Orchestration's events as stored: protobuf payloads of `flotilla.orchestration.v1.*`, schema
//! version 1. A service's end in an environment is stored (and published) as the contract other
//! services consume, `DeploymentFinished`.
//!
//! Decoding takes what was recorded as it is ([`stored`]): no rule of the API applies.

use flotilla_core::decider::{StoredEvents, own_type};
use flotilla_proto::orchestration::v1 as pb;
use prost::Message;

use crate::domain::*;
use crate::messages::*;

#[cfg(test)]
mod golden;
mod stored;

const PREFIX: &str = "flotilla.orchestration.v1.";
/// Schema version of every orchestration event today.
pub const SCHEMA_VERSION: u32 = 1;

/// Orchestration's events to and from stored payloads.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrchestrationEvents;

impl StoredEvents<Event> for OrchestrationEvents {
    fn encode(&self, event: &Event) -> (String, u32, Vec<u8>) {
        let (name, payload) = encode(event);
        (format!("{PREFIX}{name}"), SCHEMA_VERSION, payload)
    }

    fn decode(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<Option<Event>, String> {
        match own_type(PREFIX, SCHEMA_VERSION, event_type, schema_version)? {
            Some(name) => stored::decode(name, payload).map(Some),
            None => Ok(None),
        }
    }
}

fn ending_pb(e: &Ending) -> (pb::DeploymentEnding, String) {
    match e {
        Ending::Succeeded => (pb::DeploymentEnding::Succeeded, String::new()),
        Ending::RolledBack { reason } => (pb::DeploymentEnding::RolledBack, reason.clone()),
        Ending::Failed { reason } => (pb::DeploymentEnding::Failed, reason.clone()),
    }
}

fn verdict_pb(v: Verdict) -> pb::Verdict {
    match v {
        Verdict::Passed => pb::Verdict::Passed,
        Verdict::Failed => pb::Verdict::Failed,
        Verdict::Inconclusive => pb::Verdict::Inconclusive,
    }
}

fn encode(event: &Event) -> (&'static str, Vec<u8>) {
    match event {
        Event::PolicySet { policy, at } => (
            "OrchestrationPolicySet",
            pb::OrchestrationPolicySet {
                policy: Some(policy_pb(policy)),
                set_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::ArtifactRegistered(a) => (
            "ArtifactRegistered",
            pb::ArtifactRegistered {
                artifact: Some(artifact_pb(a, Vec::new())),
            }
            .encode_to_vec(),
        ),
        Event::PromotionPathSet {
            business_unit,
            environments,
            at,
        } => (
            "PromotionPathSet",
            pb::PromotionPathSet {
                business_unit: business_unit.clone(),
                environments: environments.clone(),
                set_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::EnvironmentDefined { spec, created, at } => (
            "EnvironmentDefined",
            pb::EnvironmentDefined {
                spec: Some(environment_spec_pb(spec)),
                defined_at: Some(ts(*at)),
                created: *created,
            }
            .encode_to_vec(),
        ),
        Event::EnvironmentRemoved {
            business_unit,
            name,
            at,
        } => (
            "EnvironmentRemoved",
            pb::EnvironmentRemoved {
                business_unit: business_unit.clone(),
                environment: name.clone(),
                removed_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::SharedInfrastructureDefined(i) => (
            "SharedInfrastructureDefined",
            pb::SharedInfrastructureDefined {
                infrastructure: Some(pb::SharedInfrastructure {
                    name: i.name.clone(),
                    capacity: i.capacity,
                }),
            }
            .encode_to_vec(),
        ),
        Event::TriggerRuleDefined(r) => (
            "TriggerRuleDefined",
            pb::TriggerRuleDefined {
                rule: Some(rule_pb(r)),
            }
            .encode_to_vec(),
        ),
        Event::TriggerRuleRemoved { id } => (
            "TriggerRuleRemoved",
            pb::TriggerRuleRemoved {
                rule_id: id.to_string(),
            }
            .encode_to_vec(),
        ),
        Event::ConfigurationReported {
            business_unit,
            environment,
            actual,
            at,
        } => (
            "ConfigurationReported",
            pb::ConfigurationReported {
                business_unit: business_unit.clone(),
                environment: environment.clone(),
                actual: actual.clone().into_iter().collect(),
                reported_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::DriftDetected {
            business_unit,
            environment,
            key,
            desired,
            actual,
            at,
        } => (
            "DriftDetected",
            pb::DriftDetected {
                business_unit: business_unit.clone(),
                environment: environment.clone(),
                difference: Some(difference_pb(key, desired, actual)),
                detected_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::DataRefreshed {
            business_unit,
            environment,
            refresh,
        } => (
            "DataRefreshed",
            pb::DataRefreshed {
                business_unit: business_unit.clone(),
                environment: environment.clone(),
                refresh: Some(refresh_pb(refresh)),
            }
            .encode_to_vec(),
        ),
        Event::TestWindowBooked {
            business_unit,
            environment,
            window,
        } => (
            "TestWindowBooked",
            pb::TestWindowBooked {
                business_unit: business_unit.clone(),
                environment: environment.clone(),
                window: Some(window_pb(window)),
            }
            .encode_to_vec(),
        ),
        Event::TestWindowSignedOff {
            business_unit,
            environment,
            window,
            sign_off,
        } => (
            "TestWindowSignedOff",
            pb::TestWindowSignedOff {
                business_unit: business_unit.clone(),
                environment: environment.clone(),
                window_id: window.to_string(),
                sign_off: Some(sign_off_pb(sign_off)),
            }
            .encode_to_vec(),
        ),
        Event::ValidationRecorded {
            business_unit,
            environment,
            release,
            check,
            passed,
            at,
        } => (
            "ValidationRecorded",
            pb::ValidationRecorded {
                business_unit: business_unit.clone(),
                environment: environment.clone(),
                validation: Some(pb::Validation {
                    release: release.clone(),
                    check: check.clone(),
                    passed: *passed,
                    at: Some(ts(*at)),
                }),
            }
            .encode_to_vec(),
        ),
        Event::ReleaseCreated(r) => (
            "ReleaseCreated",
            pb::ReleaseCreated {
                release: Some(release_pb(r)),
            }
            .encode_to_vec(),
        ),
        Event::ReleasePlanned { release, plan, at } => (
            "ReleasePlanned",
            pb::ReleasePlanned {
                release_id: release.to_string(),
                plan: Some(plan_pb(plan)),
                planned_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::DeploymentStarted(d) => (
            "DeploymentStarted",
            pb::DeploymentStarted {
                deployment: Some(deployment_pb(d)),
            }
            .encode_to_vec(),
        ),
        Event::StepStarted {
            deployment,
            index,
            at,
        } => (
            "StepStarted",
            pb::StepStarted {
                deployment_id: deployment.to_string(),
                index: *index,
                started_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::StepFinished {
            deployment,
            index,
            outcome,
            at,
        } => (
            "StepFinished",
            pb::StepFinished {
                deployment_id: deployment.to_string(),
                index: *index,
                outcome: Some(outcome_pb(outcome)),
                finished_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::DeploymentPaused {
            deployment,
            reason,
            at,
        } => (
            "DeploymentPaused",
            pb::DeploymentPaused {
                deployment_id: deployment.to_string(),
                reason: reason.clone(),
                paused_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::RollbackDecisionAwaited {
            deployment,
            decision,
            reason,
            decide_by,
            notify,
            at,
        } => (
            "RollbackDecisionAwaited",
            pb::RollbackDecisionAwaited {
                deployment_id: deployment.to_string(),
                decision_id: decision.to_string(),
                reason: reason.clone(),
                decide_by: Some(ts(*decide_by)),
                notify: notify.clone(),
                awaited_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::DeploymentResumed { deployment, by, at } => (
            "DeploymentResumed",
            pb::DeploymentResumed {
                deployment_id: deployment.to_string(),
                resumed_by: by.clone(),
                resumed_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::AnalysisRecorded {
            deployment,
            index,
            verdict,
            detail,
            at,
        } => (
            "AnalysisRecorded",
            pb::AnalysisRecorded {
                deployment_id: deployment.to_string(),
                index: *index,
                verdict: verdict_pb(*verdict) as i32,
                detail: detail.clone(),
                recorded_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::RollbackStarted {
            deployment,
            reason,
            steps,
            at,
        } => (
            "RollbackStarted",
            pb::RollbackStarted {
                deployment_id: deployment.to_string(),
                reason: reason.clone(),
                steps: steps.iter().map(step_pb).collect(),
                started_at: Some(ts(*at)),
            }
            .encode_to_vec(),
        ),
        Event::ServiceFinished {
            deployment,
            release,
            environment,
            service,
            version,
            artifact,
            previous_version,
            outcome,
            started_at,
            at,
            deployed_by,
        } => (
            "DeploymentFinished",
            pb::DeploymentFinished {
                deployment_id: deployment.to_string(),
                release_id: release.clone(),
                environment: environment.clone(),
                service: service.clone(),
                version: version.clone(),
                outcome: match outcome {
                    ServiceOutcome::Succeeded => pb::DeploymentOutcome::Succeeded,
                    ServiceOutcome::Failed => pb::DeploymentOutcome::Failed,
                    ServiceOutcome::RolledBack => pb::DeploymentOutcome::RolledBack,
                } as i32,
                started_at: Some(ts(*started_at)),
                finished_at: Some(ts(*at)),
                deployed_by: deployed_by.clone(),
                artifact: artifact.clone(),
                previous_version: previous_version.clone(),
            }
            .encode_to_vec(),
        ),
        Event::DeploymentCompleted {
            deployment,
            release,
            environment,
            ending,
            at,
        } => {
            let (ending, reason) = ending_pb(ending);
            (
                "DeploymentCompleted",
                pb::DeploymentCompleted {
                    deployment_id: deployment.to_string(),
                    release: release.clone(),
                    environment: environment.clone(),
                    ending: ending as i32,
                    reason,
                    completed_at: Some(ts(*at)),
                }
                .encode_to_vec(),
            )
        }
    }
}
