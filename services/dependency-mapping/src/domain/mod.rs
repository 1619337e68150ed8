//! The dependency-mapping domain: the service catalog and the dependency graph, kept as one
//! consistency boundary (the [`Catalog`]) so every edge names services that exist.
//!
//! Pure: `decide` and `evolve` do no I/O and read no clock; graph queries ([`graph`]) are pure
//! functions of the state.

pub mod graph;
pub mod model;

use std::collections::{BTreeMap, BTreeSet};

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
        at: i64,
    },
    /// A deployment finished: `service@version` now runs in `environment` (from orchestration's
    /// `DeploymentFinished`).
    RecordDeployment(Deployment),
    /// Names the footprint of an environment as it is now (e.g. `2026-q4-release`).
    TagFootprint {
        environment: String,
        tag: String,
        at: i64,
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
        at: i64,
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    pub deployments: BTreeMap<String, BTreeMap<ServiceName, Vec<(i64, semver::Version)>>>,
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
    /// The business unit a command is about (its events carry it as `businessunit`): the
    /// service's own unit, the consumer's for what a consumer declares; empty when it concerns
    /// several units or none (an environment's footprint).
    pub fn unit_of(&self, command: &Command) -> String {
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
        match command {
            Command::RegisterService(s) | Command::UpdateService(s) => {
                Some(s.business_unit.clone())
            }
            Command::DeclareDependency(d) => unit(&d.consumer),
            Command::RemoveDependency { consumer, .. }
            | Command::DeclareSchemaUse { consumer, .. }
            | Command::DeclareVersionRequirement { consumer, .. } => unit(consumer),
            Command::PinCoDeployment(p) => one(p.services.iter().map(unit).collect()),
            Command::RecordObservedCalls { calls, .. } => {
                one(calls.iter().map(|c| unit(&c.client)).collect())
            }
            Command::RecordDeployment(d) => unit(&d.service),
            Command::CheckSchema { doc, .. } => unit(&doc.service),
            Command::TagFootprint { .. } => None,
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
        as_of: Option<i64>,
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

    /// Decides what a command changes; refuses invalid commands and changes nothing then.
    pub fn decide(&self, command: Command) -> Result<Vec<Event>> {
        match command {
            Command::RegisterService(spec) => {
                spec.validate()?;
                if self.services.contains_key(&spec.name) {
                    return Err(DomainError::AlreadyRegistered(spec.name));
                }
                Ok(vec![Event::ServiceRegistered(spec)])
            }
            Command::UpdateService(spec) => {
                spec.validate()?;
                match self.services.get(&spec.name) {
                    None => Err(DomainError::UnknownService(spec.name)),
                    Some(current) if *current == spec => Ok(vec![]),
                    Some(_) => Ok(vec![Event::ServiceUpdated(spec)]),
                }
            }
            Command::DeclareDependency(dep) => {
                dep.validate()?;
                if dep.consumer == dep.provider {
                    return Err(DomainError::SelfDependency(dep.consumer));
                }
                self.require(&dep.consumer)?;
                self.require(&dep.provider)?;
                match self
                    .dependencies
                    .get(&(dep.consumer.clone(), dep.provider.clone()))
                {
                    Some(current) if *current == dep => Ok(vec![]),
                    _ => Ok(vec![Event::DependencyDeclared(dep)]),
                }
            }
            Command::RemoveDependency { consumer, provider } => {
                if !self
                    .dependencies
                    .contains_key(&(consumer.clone(), provider.clone()))
                {
                    return Err(DomainError::UnknownDependency { consumer, provider });
                }
                Ok(vec![Event::DependencyRemoved { consumer, provider }])
            }
            Command::RecordObservedCalls { calls, at } => {
                if calls.is_empty() {
                    return Err(DomainError::Invalid {
                        field: "calls",
                        reason: "report at least one observed call".into(),
                    });
                }
                for c in &calls {
                    if c.client == c.server {
                        return Err(DomainError::SelfDependency(c.client.clone()));
                    }
                    if c.calls == 0 {
                        return Err(DomainError::Invalid {
                            field: "calls",
                            reason: format!("{} -> {} reports 0 calls", c.client, c.server),
                        });
                    }
                }
                Ok(vec![Event::CallsObserved { calls, at }])
            }
            Command::CheckSchema {
                doc,
                verdict,
                publish,
            } => {
                self.require(&doc.service)?;
                named("name", flotilla_core::names::id("name", &doc.name))?;
                if let Some(existing) = self
                    .schemas
                    .get(&(doc.service.clone(), doc.name.clone()))
                    .and_then(|v| v.get(&doc.version))
                    && (existing.content != doc.content || existing.format != doc.format)
                {
                    return Err(DomainError::Conflict(format!(
                        "{} {} {} is already published with other content; publish a new version",
                        doc.service, doc.name, doc.version
                    )));
                }
                let clean = verdict.breaking.is_empty();
                let mut events = vec![Event::CompatibilityChecked(verdict)];
                if publish && clean {
                    events.push(Event::SchemaPublished(doc));
                }
                Ok(events)
            }
            Command::DeclareSchemaUse {
                consumer,
                provider,
                name,
                version,
            } => {
                self.require(&consumer)?;
                self.require(&provider)?;
                let published = self
                    .schemas
                    .get(&(provider.clone(), name.clone()))
                    .is_some_and(|v| v.contains_key(&version));
                if !published {
                    return Err(DomainError::Invalid {
                        field: "version",
                        reason: format!("{provider} has not published {name} {version}"),
                    });
                }
                if self
                    .schema_uses
                    .get(&(consumer.clone(), provider.clone(), name.clone()))
                    == Some(&version)
                {
                    return Ok(vec![]);
                }
                Ok(vec![Event::SchemaUseDeclared {
                    consumer,
                    provider,
                    name,
                    version,
                }])
            }
            Command::RecordDeployment(d) => {
                check_environment(&d.environment)?;
                self.require(&d.service)?;
                Ok(vec![Event::DeploymentRecorded(d)])
            }
            Command::TagFootprint {
                environment,
                tag,
                at,
            } => {
                check_environment(&environment)?;
                named("tag", flotilla_core::names::id("tag", &tag))?;
                if self.tags.contains_key(&(environment.clone(), tag.clone())) {
                    return Err(DomainError::Conflict(format!(
                        "{tag} already names a footprint of {environment}; tags are immutable"
                    )));
                }
                let services = self.footprint(&environment, Some(at));
                if services.is_empty() {
                    return Err(DomainError::Invalid {
                        field: "environment",
                        reason: format!("nothing is deployed in {environment}"),
                    });
                }
                Ok(vec![Event::FootprintTagged(FootprintTag {
                    environment,
                    tag,
                    at,
                    services,
                })])
            }
            Command::DeclareVersionRequirement {
                consumer,
                provider,
                requirement,
            } => {
                if consumer == provider {
                    return Err(DomainError::SelfDependency(consumer));
                }
                self.require(&consumer)?;
                self.require(&provider)?;
                if self.requirements.get(&(consumer.clone(), provider.clone()))
                    == Some(&requirement)
                {
                    return Ok(vec![]);
                }
                Ok(vec![Event::VersionRequirementDeclared {
                    consumer,
                    provider,
                    requirement,
                }])
            }
            Command::PinCoDeployment(pin) => {
                pin.validate()?;
                if pin.services.len() < 2 {
                    return Err(DomainError::Invalid {
                        field: "services",
                        reason: "a co-deployment group pins at least two services".into(),
                    });
                }
                for s in &pin.services {
                    self.require(s)?;
                }
                if self.pins.get(&pin.group) == Some(&pin) {
                    return Ok(vec![]);
                }
                Ok(vec![Event::CoDeploymentPinned(pin)])
            }
        }
    }

    /// Applies one event.
    pub fn evolve(mut self, event: &Event) -> Self {
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
        self
    }
}

impl flotilla_core::Aggregate for Catalog {
    type Command = Command;
    type Event = Event;
    type Error = DomainError;

    fn decide(&self, command: Command) -> Result<Vec<Event>> {
        Catalog::decide(self, command)
    }

    fn evolve(self, event: &Event) -> Self {
        Catalog::evolve(self, event)
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
