//! Deciding catalog commands: every rule that can refuse one.

use super::*;

impl Catalog {
    /// The events a command causes; refuses invalid commands and changes nothing then.
    pub fn changes(&self, command: Command) -> Result<Vec<Event>> {
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
}
