//! The dependency-mapping domain: the service catalog and the dependency graph, kept as one
//! consistency boundary (the [`Catalog`]) so every edge names services that exist.
//!
//! Pure: `decide` and `evolve` do no I/O and read no clock; graph queries ([`graph`]) are pure
//! functions of the state.

mod decide;
pub mod graph;
pub mod model;

use std::collections::{BTreeMap, BTreeSet};

use flotilla_core::decider::{Decider, Decision, Recorded};
use flotilla_core::ids::StreamId;
use serde::{Deserialize, Serialize};

pub use flotilla_core::event::Timestamp;
pub use model::*;

/// Errors of the dependency-mapping domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: String },
    #[error("service {0} is not in the catalog")]
    UnknownService(ServiceName),
    #[error("service {0} is already registered; update it instead")]
    AlreadyRegistered(ServiceName),
    #[error("a service cannot depend on itself ({0})")]
    SelfDependency(ServiceName),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{consumer} does not depend on {provider}")]
    UnknownDependency {
        consumer: ServiceName,
        provider: ServiceName,
    },
}

pub type Result<T, E = DomainError> = std::result::Result<T, E>;

/// Commands on the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    RegisterService(ServiceSpec),
    UpdateService(ServiceSpec),
    DeclareDependency(Dependency),
    RemoveDependency {
        consumer: ServiceName,
        provider: ServiceName,
    },
    PinCoDeployment(CoDeploymentPin),
    /// Calls seen at runtime (e.g. from an OpenTelemetry service graph); `at` is when.
    RecordObservedCalls {
        calls: Vec<ObservedCall>,
        at: Timestamp,
    },
    /// A deployment finished: `service@version` now runs in `environment` (from orchestration's
    /// `DeploymentFinished`).
    RecordDeployment(Deployment),
    /// Names the footprint of an environment as it is now (e.g. `2026-q4-release`).
    TagFootprint {
        environment: String,
        tag: String,
        at: Timestamp,
    },
    /// Records a compatibility verdict for a schema version and, when asked and the verdict is
    /// clean, publishes the version.
    CheckSchema {
        doc: SchemaDoc,
        verdict: CompatibilityVerdict,
        publish: bool,
    },
    /// A consumer uses `version` of a provider's schema `name`.
    DeclareSchemaUse {
        consumer: ServiceName,
        provider: ServiceName,
        name: String,
        version: semver::Version,
    },
    /// A consumer needs provider versions in a semver range.
    DeclareVersionRequirement {
        consumer: ServiceName,
        provider: ServiceName,
        requirement: semver::VersionReq,
    },
}

/// Facts about the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    ServiceRegistered(ServiceSpec),
    ServiceUpdated(ServiceSpec),
    DependencyDeclared(Dependency),
    DependencyRemoved {
        consumer: ServiceName,
        provider: ServiceName,
    },
    CoDeploymentPinned(CoDeploymentPin),
    CallsObserved {
        calls: Vec<ObservedCall>,
        at: Timestamp,
    },
    DeploymentRecorded(Deployment),
    CompatibilityChecked(CompatibilityVerdict),
    SchemaPublished(SchemaDoc),
    SchemaUseDeclared {
        consumer: ServiceName,
        provider: ServiceName,
        name: String,
        version: semver::Version,
    },
    FootprintTagged(FootprintTag),
    VersionRequirementDeclared {
        consumer: ServiceName,
        provider: ServiceName,
        requirement: semver::VersionReq,
    },
}

/// The catalog: services, declared dependencies and co-deployment pins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    pub services: BTreeMap<ServiceName, ServiceSpec>,
    /// Declared dependencies by (consumer, provider).
    pub dependencies: BTreeMap<(ServiceName, ServiceName), Dependency>,
    /// Pins by group name.
    pub pins: BTreeMap<String, CoDeploymentPin>,
    /// Reverse index of `dependencies`: (provider, consumer).
    pub dependents: BTreeSet<(ServiceName, ServiceName)>,
    /// Observed edges by (client, server): runtime truth to hold declarations against.
    pub observed: BTreeMap<(ServiceName, ServiceName), ObservedEdge>,
    /// Per environment, per service: versions with the time each started running, in order.
    pub deployments: BTreeMap<String, BTreeMap<ServiceName, Vec<(Timestamp, semver::Version)>>>,
    /// Named footprints by (environment, tag).
    pub tags: BTreeMap<(String, String), FootprintTag>,
    /// Published schemas by (service, name), then version.
    pub schemas: BTreeMap<(ServiceName, String), BTreeMap<semver::Version, SchemaDoc>>,
    /// Schema versions consumers use, by (consumer, provider, schema name).
    pub schema_uses: BTreeMap<(ServiceName, ServiceName, String), semver::Version>,
    /// The latest verdict per (service, schema name, version).
    pub verdicts: BTreeMap<(ServiceName, String, semver::Version), CompatibilityVerdict>,
    /// Version ranges consumers need of providers, by (consumer, provider).
    pub requirements: BTreeMap<(ServiceName, ServiceName), semver::VersionReq>,
}

impl Catalog {
    /// The business unit events are about (they carry it as `businessunit`): the service's
    /// own unit, the consumer's for what a consumer declares; empty when they concern several
    /// units or none (an environment's footprint).
    pub fn unit_of_events(&self, events: &[Event]) -> String {
        let unit = |n: &ServiceName| self.services.get(n).map(|s| s.business_unit.clone());
        let one = |units: Vec<Option<String>>| {
            let mut distinct: Vec<String> = units.into_iter().flatten().collect();
            distinct.sort_unstable();
            distinct.dedup();
            if distinct.len() == 1 {
                distinct.pop()
            } else {
                None
            }
        };
        let Some(first) = events.first() else {
            return String::new();
        };
        match first {
            Event::ServiceRegistered(s) | Event::ServiceUpdated(s) => Some(s.business_unit.clone()),
            Event::DependencyDeclared(d) => unit(&d.consumer),
            Event::DependencyRemoved { consumer, .. }
            | Event::SchemaUseDeclared { consumer, .. }
            | Event::VersionRequirementDeclared { consumer, .. } => unit(consumer),
            Event::CoDeploymentPinned(p) => one(p.services.iter().map(unit).collect()),
            Event::CallsObserved { calls, .. } => {
                one(calls.iter().map(|c| unit(&c.client)).collect())
            }
            Event::DeploymentRecorded(d) => unit(&d.service),
            Event::CompatibilityChecked(v) => unit(&v.service),
            Event::SchemaPublished(d) => unit(&d.service),
            Event::FootprintTagged(_) => None,
        }
        .unwrap_or_default()
    }

    fn require(&self, name: &ServiceName) -> Result<()> {
        if self.services.contains_key(name) {
            Ok(())
        } else {
            Err(DomainError::UnknownService(name.clone()))
        }
    }

    /// Providers a service depends on.
    pub fn providers_of(&self, consumer: &ServiceName) -> impl Iterator<Item = &Dependency> + '_ {
        let consumer = consumer.clone();
        self.dependencies
            .range((consumer.clone(), ServiceName::min())..)
            .take_while(move |((c, _), _)| *c == consumer)
            .map(|(_, d)| d)
    }

    /// Which version of each service runs in `environment`, now or as of a time (microseconds).
    pub fn footprint(
        &self,
        environment: &str,
        as_of: Option<Timestamp>,
    ) -> BTreeMap<ServiceName, semver::Version> {
        let Some(env) = self.deployments.get(environment) else {
            return BTreeMap::new();
        };
        env.iter()
            .filter_map(|(s, history)| {
                let upto = match as_of {
                    Some(t) => history.partition_point(|(at, _)| *at <= t),
                    None => history.len(),
                };
                upto.checked_sub(1)
                    .map(|i| (s.clone(), history[i].1.clone()))
            })
            .collect()
    }

    /// What a new version of `service`'s schema `name` must stay compatible with: the version
    /// each consumer declared it uses, or, when none did, the latest earlier published version.
    pub fn schema_baselines(
        &self,
        service: &ServiceName,
        name: &str,
        candidate: &semver::Version,
    ) -> Vec<(String, &SchemaDoc)> {
        let Some(versions) = self.schemas.get(&(service.clone(), name.to_owned())) else {
            return Vec::new();
        };
        let mut out: Vec<(String, &SchemaDoc)> = self
            .schema_uses
            .iter()
            .filter(|((_, p, n), _)| p == service && n == name)
            .filter_map(|((c, _, _), v)| versions.get(v).map(|doc| (c.to_string(), doc)))
            .collect();
        if out.is_empty()
            && let Some((_, doc)) = versions.range(..candidate.clone()).next_back()
        {
            out.push(("latest published".to_owned(), doc));
        }
        out
    }

    /// Services that depend on a provider.
    pub fn consumers_of(&self, provider: &ServiceName) -> impl Iterator<Item = &ServiceName> + '_ {
        let provider = provider.clone();
        self.dependents
            .range((provider.clone(), ServiceName::min())..)
            .take_while(move |(p, _)| *p == provider)
            .map(|(_, c)| c)
    }

    /// Applies one event.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::ServiceRegistered(spec) | Event::ServiceUpdated(spec) => {
                self.services.insert(spec.name.clone(), spec.clone());
            }
            Event::DependencyDeclared(dep) => {
                self.dependencies
                    .insert((dep.consumer.clone(), dep.provider.clone()), dep.clone());
                self.dependents
                    .insert((dep.provider.clone(), dep.consumer.clone()));
            }
            Event::DependencyRemoved { consumer, provider } => {
                self.dependencies
                    .remove(&(consumer.clone(), provider.clone()));
                self.dependents
                    .remove(&(provider.clone(), consumer.clone()));
            }
            Event::CoDeploymentPinned(pin) => {
                self.pins.insert(pin.group.clone(), pin.clone());
            }
            Event::CompatibilityChecked(v) => {
                self.verdicts.insert(
                    (v.service.clone(), v.name.clone(), v.version.clone()),
                    v.clone(),
                );
            }
            Event::SchemaPublished(doc) => {
                self.schemas
                    .entry((doc.service.clone(), doc.name.clone()))
                    .or_default()
                    .insert(doc.version.clone(), doc.clone());
            }
            Event::SchemaUseDeclared {
                consumer,
                provider,
                name,
                version,
            } => {
                self.schema_uses.insert(
                    (consumer.clone(), provider.clone(), name.clone()),
                    version.clone(),
                );
            }
            Event::DeploymentRecorded(d) => {
                let history = self
                    .deployments
                    .entry(d.environment.clone())
                    .or_default()
                    .entry(d.service.clone())
                    .or_default();
                let at = history.partition_point(|(t, _)| *t <= d.at);
                history.insert(at, (d.at, d.version.clone()));
            }
            Event::FootprintTagged(tag) => {
                self.tags
                    .insert((tag.environment.clone(), tag.tag.clone()), tag.clone());
            }
            Event::VersionRequirementDeclared {
                consumer,
                provider,
                requirement,
            } => {
                self.requirements
                    .insert((consumer.clone(), provider.clone()), requirement.clone());
            }
            Event::CallsObserved { calls, at } => {
                for c in calls {
                    let edge = self
                        .observed
                        .entry((c.client.clone(), c.server.clone()))
                        .or_insert(ObservedEdge {
                            calls: 0,
                            first_seen: *at,
                            last_seen: *at,
                        });
                    edge.calls = edge.calls.saturating_add(c.calls);
                    edge.first_seen = edge.first_seen.min(*at);
                    edge.last_seen = edge.last_seen.max(*at);
                }
            }
        }
    }
}

/// The catalog's one stream (aggregate `catalog`).
pub const CATALOG_STREAM: &str = "dependency-catalog";

impl Decider for Catalog {
    type Command = Command;
    type Event = Event;
    type Error = DomainError;

    /// Every command changes the catalog's one stream.
    fn decide(&self, command: Command) -> Result<Decision<Event>> {
        Ok(Decision::new(
            StreamId::singleton(CATALOG_STREAM),
            self.changes(command)?,
        ))
    }

    fn evolve(&mut self, recorded: &Recorded<Event>) {
        self.apply(&recorded.event);
    }
}

#[cfg(test)]
mod tests;

/// The platform's naming rule (flotilla_core::names) as this service's refusal of `field`.
pub(crate) fn named(
    field: &'static str,
    checked: std::result::Result<(), flotilla_core::names::NameError>,
) -> Result<()> {
    checked.map_err(|e| DomainError::Invalid {
        field,
        reason: e.reason,
    })
}

fn check_environment(env: &str) -> Result<()> {
    named(
        "environment",
        flotilla_core::names::label("environment", env),
    )
}
