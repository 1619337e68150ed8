//! Orchestration's state: every aggregate, rebuilt from the recorded events, and what the rules
//! ask of it.

use std::collections::BTreeMap;

use flotilla_core::decider::{Decider, Decision, Recorded};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;

/// Orchestration's state.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Orchestration {
    pub policy: OrchestrationPolicy,
    /// Artifacts by package URL.
    pub artifacts: BTreeMap<String, Artifact>,
    /// Each unit's promotion path, in order.
    pub paths: BTreeMap<String, Vec<String>>,
    /// Environments by (unit, name).
    pub environments: BTreeMap<(String, String), Environment>,
    pub infrastructure: BTreeMap<String, SharedInfrastructure>,
    pub triggers: BTreeMap<Uuid, TriggerRule>,
    pub releases: BTreeMap<Uuid, Release>,
    pub deployments: BTreeMap<Uuid, Deployment>,
}

impl Decider for Orchestration {
    type Command = Command;
    type Event = Event;
    type Error = DomainError;

    fn decide(&self, command: Command) -> Result<Decision<Event>> {
        super::decide::decide(self, command)
    }

    fn evolve(&mut self, recorded: &Recorded<Event>) {
        let actor = &recorded.metadata.actor;
        match &recorded.event {
            Event::PolicySet { policy, .. } => self.policy = policy.clone(),
            Event::ArtifactRegistered(a) => {
                self.artifacts.insert(a.purl.clone(), (**a).clone());
            }
            Event::PromotionPathSet {
                business_unit,
                environments,
                ..
            } => {
                self.paths
                    .insert(business_unit.clone(), environments.clone());
            }
            Event::EnvironmentDefined { spec, .. } => {
                let env = self
                    .environments
                    .entry((spec.business_unit.clone(), spec.name.clone()))
                    .or_insert_with(|| Environment {
                        business_unit: spec.business_unit.clone(),
                        name: spec.name.clone(),
                        checks: Vec::new(),
                        data: None,
                        test_teams: Vec::new(),
                        shared: Vec::new(),
                        desired: BTreeMap::new(),
                        actual: BTreeMap::new(),
                        last_refresh: None,
                        windows: Vec::new(),
                        validations: BTreeMap::new(),
                        running: BTreeMap::new(),
                    });
                env.checks = spec.checks.clone();
                env.data = spec.data.clone();
                env.test_teams = spec.test_teams.clone();
                env.shared = spec.shared.clone();
                env.desired = spec.desired.clone();
            }
            Event::EnvironmentRemoved {
                business_unit,
                name,
                ..
            } => {
                self.environments
                    .remove(&(business_unit.clone(), name.clone()));
            }
            Event::SharedInfrastructureDefined(i) => {
                self.infrastructure.insert(i.name.clone(), i.clone());
            }
            Event::TriggerRuleDefined(r) => {
                self.triggers.insert(r.id, r.clone());
            }
            Event::TriggerRuleRemoved { id } => {
                self.triggers.remove(id);
            }
            Event::ConfigurationReported {
                business_unit,
                environment,
                actual,
                ..
            } => {
                if let Some(env) = self.env_mut(business_unit, environment) {
                    env.actual = actual.clone();
                }
            }
            Event::DriftDetected { .. } | Event::AnalysisRecorded { .. } => {}
            Event::DataRefreshed {
                business_unit,
                environment,
                refresh,
            } => {
                if let Some(env) = self.env_mut(business_unit, environment) {
                    env.last_refresh = Some(refresh.clone());
                }
            }
            Event::TestWindowBooked {
                business_unit,
                environment,
                window,
            } => {
                if let Some(env) = self.env_mut(business_unit, environment) {
                    env.windows.push(window.clone());
                }
            }
            Event::TestWindowSignedOff {
                business_unit,
                environment,
                window,
                sign_off,
            } => {
                if let Some(w) = self
                    .env_mut(business_unit, environment)
                    .and_then(|e| e.windows.iter_mut().find(|w| w.id == *window))
                {
                    w.signed_off = Some(sign_off.clone());
                }
            }
            Event::ValidationRecorded {
                business_unit,
                environment,
                release,
                check,
                passed,
                at,
            } => {
                if let Some(env) = self.env_mut(business_unit, environment) {
                    env.validations
                        .insert((release.clone(), check.clone()), (*passed, *at));
                }
            }
            Event::ReleaseCreated(r) => {
                let mut r = (**r).clone();
                if r.created_by.is_empty() {
                    r.created_by = actor.clone();
                }
                self.releases.insert(r.id, r);
            }
            Event::ReleasePlanned { release, plan, .. } => {
                if let Some(r) = self.releases.get_mut(release) {
                    r.plan = Some(plan.clone());
                    if matches!(r.status, ReleaseStatus::Created) {
                        r.status = ReleaseStatus::Planned;
                    }
                }
            }
            Event::DeploymentStarted(d) => {
                if let Some(r) = self.releases.get_mut(&d.release_id) {
                    r.status = ReleaseStatus::Promoting {
                        environment: d.environment.clone(),
                        deployment: d.id,
                    };
                    r.deployments.push(d.id);
                }
                self.deployments.insert(d.id, (**d).clone());
            }
            Event::StepStarted {
                deployment,
                index,
                at,
            } => {
                if let Some(s) = self.step_mut(deployment, *index) {
                    s.state = StepState::Started { at: *at };
                }
            }
            Event::StepFinished {
                deployment,
                index,
                outcome,
                at,
            } => {
                if let Some(s) = self.step_mut(deployment, *index) {
                    s.state = StepState::Finished {
                        at: *at,
                        outcome: outcome.clone(),
                    };
                }
            }
            Event::DeploymentPaused {
                deployment, reason, ..
            } => {
                if let Some(d) = self.deployments.get_mut(deployment) {
                    d.status = DeploymentStatus::Paused {
                        reason: reason.clone(),
                    };
                }
            }
            Event::RollbackDecisionAwaited {
                deployment,
                decision,
                reason,
                decide_by,
                notify,
                ..
            } => {
                if let Some(d) = self.deployments.get_mut(deployment) {
                    d.status = DeploymentStatus::AwaitingRollbackDecision {
                        reason: reason.clone(),
                        decision: *decision,
                        decide_by: *decide_by,
                        notify: notify.clone(),
                    };
                }
            }
            Event::DeploymentResumed { deployment, .. } => {
                if let Some(d) = self.deployments.get_mut(deployment) {
                    d.status = DeploymentStatus::Running;
                }
            }
            Event::RollbackStarted {
                deployment,
                reason,
                steps,
                ..
            } => {
                if let Some(d) = self.deployments.get_mut(deployment) {
                    d.steps.extend(steps.iter().cloned());
                    d.status = DeploymentStatus::RollingBack {
                        reason: reason.clone(),
                    };
                    d.finished_at = None;
                    if let Some(r) = self.releases.get_mut(&d.release_id) {
                        r.status = ReleaseStatus::Promoting {
                            environment: d.environment.clone(),
                            deployment: d.id,
                        };
                    }
                }
            }
            Event::ServiceFinished {
                deployment,
                service,
                version,
                outcome,
                ..
            } => {
                let place = self
                    .deployments
                    .get(deployment)
                    .map(|d| (d.business_unit.clone(), d.environment.clone()));
                if let Some((unit, env)) = place
                    && let Some(env) = self.env_mut(&unit, &env)
                    && *outcome != ServiceOutcome::Failed
                {
                    if version.is_empty() {
                        env.running.remove(service);
                    } else {
                        env.running.insert(service.clone(), version.clone());
                    }
                }
            }
            Event::DeploymentCompleted {
                deployment,
                ending,
                at,
                ..
            } => {
                let Some(d) = self.deployments.get_mut(deployment) else {
                    return;
                };
                d.finished_at = Some(*at);
                d.status = match ending {
                    Ending::Succeeded => DeploymentStatus::Succeeded,
                    Ending::RolledBack { reason } => DeploymentStatus::RolledBack {
                        reason: reason.clone(),
                    },
                    Ending::Failed { reason } => DeploymentStatus::Failed {
                        reason: reason.clone(),
                    },
                };
                let environment = d.environment.clone();
                if let Some(r) = self.releases.get_mut(&d.release_id) {
                    r.status = match ending {
                        Ending::Succeeded => {
                            if r.deployed_to.last() != Some(&environment) {
                                r.deployed_to.push(environment.clone());
                            }
                            ReleaseStatus::Deployed { environment }
                        }
                        Ending::RolledBack { .. } | Ending::Failed { .. } => {
                            // Rolled back out of it: the release has not reached it (any more).
                            if r.deployed_to.last() == Some(&environment) {
                                r.deployed_to.pop();
                            }
                            ReleaseStatus::RolledBack { environment }
                        }
                    };
                }
            }
        }
    }
}

impl Orchestration {
    fn env_mut(&mut self, unit: &str, name: &str) -> Option<&mut Environment> {
        self.environments
            .get_mut(&(unit.to_owned(), name.to_owned()))
    }

    pub fn environment(&self, unit: &str, name: &str) -> Option<&Environment> {
        self.environments.get(&(unit.to_owned(), name.to_owned()))
    }

    fn step_mut(&mut self, deployment: &Uuid, index: u32) -> Option<&mut Step> {
        self.deployments
            .get_mut(deployment)
            .and_then(|d| d.steps.get_mut(index as usize))
    }

    pub fn release_named(&self, name: &str) -> Option<&Release> {
        self.releases.get(&release_id(name))
    }

    /// The newest artifact of a service (by version), and of a given version.
    pub fn artifact_of(
        &self,
        service: &str,
        version: Option<&semver::Version>,
    ) -> Option<&Artifact> {
        self.artifacts
            .values()
            .filter(|a| a.service == service && version.is_none_or(|v| a.version == *v))
            .max_by(|a, b| {
                a.version
                    .cmp(&b.version)
                    .then(a.registered_at.cmp(&b.registered_at))
            })
    }

    /// Why an artifact may not go into a release (empty: it may).
    pub fn blocked(&self, a: &Artifact) -> Vec<String> {
        let mut out = Vec::new();
        let allow = &self.policy.licence_allow_list;
        let refused: Vec<&str> = a
            .licences
            .iter()
            .filter(|l| !allow.is_empty() && !allow.contains(*l))
            .map(String::as_str)
            .collect();
        if !refused.is_empty() {
            out.push(format!(
                "{} {}: licence {} is not on the policy's allow-list",
                a.service,
                a.version,
                refused.join(", ")
            ));
        }
        if !a.analysis.passed {
            out.push(format!(
                "{} {}: static analysis ({}) failed with {} findings",
                a.service, a.version, a.analysis.tool, a.analysis.findings
            ));
        }
        if a.tests.failed > 0 {
            out.push(format!(
                "{} {}: {} tests failed",
                a.service, a.version, a.tests.failed
            ));
        }
        out
    }

    /// Deployments under way (not over), holding shared infrastructure.
    pub fn active_deployments(&self) -> impl Iterator<Item = &Deployment> {
        self.deployments.values().filter(|d| !d.status.is_over())
    }

    /// What an environment reports that differs from what it should be, key by key:
    /// (key, desired, actual).
    pub fn drift(&self, unit: &str, env: &str) -> Vec<(String, Option<String>, Option<String>)> {
        let Some(e) = self.environment(unit, env) else {
            return Vec::new();
        };
        diff(&e.desired, &e.actual)
    }
}

/// Two configurations key by key: (key, left, right) where they differ.
pub fn diff(
    left: &BTreeMap<String, String>,
    right: &BTreeMap<String, String>,
) -> Vec<(String, Option<String>, Option<String>)> {
    let keys: std::collections::BTreeSet<&String> = left.keys().chain(right.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (l, r) = (left.get(k), right.get(k));
            (l != r).then(|| (k.clone(), l.cloned(), r.cloned()))
        })
        .collect()
}
