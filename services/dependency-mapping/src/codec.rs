//! Catalog events as stored: protobuf payloads of `flotilla.dependency.v1.*`, schema version 1.
//!
//! Decoding takes what was recorded as it is: no naming or range rule of the API is applied,
//! so tightening one cannot make an old event fail to replay.

use flotilla_core::decider::{StoredEvents, own_type};
use flotilla_proto::dependency::v1 as pb;
use prost::Message;

use crate::domain::*;
use crate::messages::*;

const PREFIX: &str = "flotilla.dependency.v1.";
/// Schema version of every catalog event today.
pub const SCHEMA_VERSION: u32 = 1;

/// Catalog events to and from stored payloads.
#[derive(Debug, Default, Clone, Copy)]
pub struct CatalogEvents;

impl StoredEvents<Event> for CatalogEvents {
    fn encode(&self, event: &Event) -> (String, u32, Vec<u8>) {
        let (name, bytes) = match event {
            Event::ServiceRegistered(s) => (
                "ServiceRegistered",
                pb::ServiceRegistered {
                    service: Some(service_entry(s)),
                }
                .encode_to_vec(),
            ),
            Event::ServiceUpdated(s) => (
                "ServiceUpdated",
                pb::ServiceUpdated {
                    service: Some(service_entry(s)),
                }
                .encode_to_vec(),
            ),
            Event::DependencyDeclared(d) => (
                "DependencyDeclared",
                pb::DependencyDeclared {
                    dependency: Some(dependency_pb(d)),
                }
                .encode_to_vec(),
            ),
            Event::DependencyRemoved { consumer, provider } => (
                "DependencyRemoved",
                pb::DependencyRemoved {
                    consumer: consumer.to_string(),
                    provider: provider.to_string(),
                }
                .encode_to_vec(),
            ),
            Event::CoDeploymentPinned(p) => (
                "CoDeploymentPinned",
                pb::CoDeploymentPinned {
                    pin: Some(pin_pb(p)),
                }
                .encode_to_vec(),
            ),
            Event::CallsObserved { calls, at } => (
                "CallsObserved",
                pb::CallsObserved {
                    calls: observed_calls_pb(calls),
                    observed_at: Some(timestamp(*at)),
                }
                .encode_to_vec(),
            ),
            Event::DeploymentRecorded(d) => (
                "DeploymentRecorded",
                pb::DeploymentRecorded {
                    environment: d.environment.clone(),
                    service: d.service.to_string(),
                    version: d.version.to_string(),
                    finished_at: Some(timestamp(d.at)),
                }
                .encode_to_vec(),
            ),
            Event::FootprintTagged(t) => (
                "FootprintTagged",
                pb::FootprintTagged {
                    environment: t.environment.clone(),
                    tag: t.tag.clone(),
                    at: Some(timestamp(t.at)),
                    services: running_pb(&t.services),
                }
                .encode_to_vec(),
            ),
            Event::VersionRequirementDeclared {
                consumer,
                provider,
                requirement,
            } => (
                "VersionRequirementDeclared",
                pb::VersionRequirementDeclared {
                    consumer: consumer.to_string(),
                    provider: provider.to_string(),
                    requirement: requirement.to_string(),
                }
                .encode_to_vec(),
            ),
            Event::CompatibilityChecked(v) => (
                "CompatibilityChecked",
                pb::CompatibilityChecked {
                    verdict: Some(verdict_pb(v, false)),
                    checked_at: Some(timestamp(v.at)),
                }
                .encode_to_vec(),
            ),
            Event::SchemaPublished(d) => (
                "SchemaPublished",
                pb::SchemaPublished {
                    service: d.service.to_string(),
                    name: d.name.clone(),
                    version: d.version.to_string(),
                    format: schema_format_pb(d.format) as i32,
                    content: d.content.clone(),
                }
                .encode_to_vec(),
            ),
            Event::SchemaUseDeclared {
                consumer,
                provider,
                name,
                version,
            } => (
                "SchemaUseDeclared",
                pb::SchemaUseDeclared {
                    consumer: consumer.to_string(),
                    provider: provider.to_string(),
                    name: name.clone(),
                    version: version.to_string(),
                }
                .encode_to_vec(),
            ),
        };
        (format!("{PREFIX}{name}"), 1, bytes)
    }

    fn decode(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<Option<Event>, String> {
        // Not the catalog's: recorded access refusals and adopted policies.
        match own_type(PREFIX, SCHEMA_VERSION, event_type, schema_version)? {
            Some(name) => decode(name, payload).map(Some),
            None => Ok(None),
        }
    }
}

fn dec<M: Message + Default>(payload: &[u8]) -> Result<M, String> {
    M::decode(payload).map_err(|e| format!("the payload does not decode: {e}"))
}

fn decode(name: &str, payload: &[u8]) -> Result<Event, String> {
    Ok(match name {
        "ServiceRegistered" => {
            Event::ServiceRegistered(stored::spec(dec::<pb::ServiceRegistered>(payload)?.service))
        }
        "ServiceUpdated" => {
            Event::ServiceUpdated(stored::spec(dec::<pb::ServiceUpdated>(payload)?.service))
        }
        "DependencyDeclared" => Event::DependencyDeclared(stored::dependency(
            dec::<pb::DependencyDeclared>(payload)?
                .dependency
                .unwrap_or_default(),
        )),
        "DependencyRemoved" => {
            let e: pb::DependencyRemoved = dec(payload)?;
            Event::DependencyRemoved {
                consumer: ServiceName::stored(&e.consumer),
                provider: ServiceName::stored(&e.provider),
            }
        }
        "CoDeploymentPinned" => {
            let p = dec::<pb::CoDeploymentPinned>(payload)?
                .pin
                .unwrap_or_default();
            Event::CoDeploymentPinned(CoDeploymentPin {
                group: p.group,
                services: p.services.iter().map(|s| ServiceName::stored(s)).collect(),
                reason: p.reason,
            })
        }
        "CompatibilityChecked" => {
            let e: pb::CompatibilityChecked = dec(payload)?;
            Event::CompatibilityChecked(stored::verdict(
                e.verdict.unwrap_or_default(),
                stored::at(e.checked_at.as_ref()),
            )?)
        }
        "SchemaPublished" => {
            let e: pb::SchemaPublished = dec(payload)?;
            Event::SchemaPublished(SchemaDoc {
                service: ServiceName::stored(&e.service),
                name: e.name,
                version: stored::version(&e.version)?,
                format: stored::schema_format(e.format),
                content: e.content,
            })
        }
        "SchemaUseDeclared" => {
            let e: pb::SchemaUseDeclared = dec(payload)?;
            Event::SchemaUseDeclared {
                consumer: ServiceName::stored(&e.consumer),
                provider: ServiceName::stored(&e.provider),
                name: e.name,
                version: stored::version(&e.version)?,
            }
        }
        "DeploymentRecorded" => {
            let e: pb::DeploymentRecorded = dec(payload)?;
            Event::DeploymentRecorded(Deployment {
                environment: e.environment,
                service: ServiceName::stored(&e.service),
                version: stored::version(&e.version)?,
                at: stored::at(e.finished_at.as_ref()),
            })
        }
        "FootprintTagged" => {
            let e: pb::FootprintTagged = dec(payload)?;
            Event::FootprintTagged(FootprintTag {
                environment: e.environment,
                tag: e.tag,
                at: stored::at(e.at.as_ref()),
                services: e
                    .services
                    .into_iter()
                    .map(|s| {
                        Ok((
                            ServiceName::stored(&s.service),
                            stored::version(&s.version)?,
                        ))
                    })
                    .collect::<Result<_, String>>()?,
            })
        }
        "VersionRequirementDeclared" => {
            let e: pb::VersionRequirementDeclared = dec(payload)?;
            Event::VersionRequirementDeclared {
                consumer: ServiceName::stored(&e.consumer),
                provider: ServiceName::stored(&e.provider),
                requirement: semver::VersionReq::parse(e.requirement.trim())
                    .map_err(|err| format!("requirement {:?}: {err}", e.requirement))?,
            }
        }
        "CallsObserved" => {
            let e: pb::CallsObserved = dec(payload)?;
            Event::CallsObserved {
                calls: e
                    .calls
                    .into_iter()
                    .map(|c| ObservedCall {
                        client: ServiceName::stored(&c.client),
                        server: ServiceName::stored(&c.server),
                        calls: c.calls,
                    })
                    .collect(),
                at: stored::at(e.observed_at.as_ref()),
            }
        }
        other => return Err(format!("catalog event {other} is not known to this build")),
    })
}

/// Stored messages as catalog values, as they were recorded.
mod stored {
    use flotilla_proto::dependency::v1 as pb;

    use crate::domain::*;

    pub use flotilla_runtime::kit::time::stored as at;

    /// A version the API checked when it was recorded (semver's own grammar, no other rule).
    pub fn version(v: &str) -> Result<semver::Version, String> {
        semver::Version::parse(v.trim()).map_err(|e| format!("version {v:?}: {e}"))
    }

    pub fn spec(e: Option<pb::ServiceEntry>) -> ServiceSpec {
        let e = e.unwrap_or_default();
        ServiceSpec {
            name: ServiceName::stored(&e.name),
            owner_team: e.owner_team,
            business_unit: e.business_unit,
            tier: Tier::stored(e.criticality_tier),
            handles_personal_data: e.handles_personal_data,
            classification: match pb::DataClassification::try_from(e.data_classification) {
                Ok(pb::DataClassification::Public) => DataClassification::Public,
                Ok(pb::DataClassification::Confidential) => DataClassification::Confidential,
                Ok(pb::DataClassification::Restricted) => DataClassification::Restricted,
                _ => DataClassification::Internal,
            },
            runtime: match pb::Runtime::try_from(e.runtime) {
                Ok(pb::Runtime::Database) => RuntimeKind::Database,
                Ok(pb::Runtime::Queue) => RuntimeKind::Queue,
                Ok(pb::Runtime::ExternalApi) => RuntimeKind::ExternalApi,
                Ok(pb::Runtime::SharedInfrastructure) => RuntimeKind::SharedInfrastructure,
                _ => RuntimeKind::Microservice,
            },
        }
    }

    pub fn dependency(d: pb::Dependency) -> Dependency {
        Dependency {
            consumer: ServiceName::stored(&d.consumer),
            provider: ServiceName::stored(&d.provider),
            kind: match pb::EdgeKind::try_from(d.kind) {
                Ok(pb::EdgeKind::AsyncMessage) => EdgeKind::AsyncMessage,
                Ok(pb::EdgeKind::Database) => EdgeKind::Database,
                Ok(pb::EdgeKind::SharedInfrastructure) => EdgeKind::SharedInfrastructure,
                _ => EdgeKind::SyncApi,
            },
            data_flows: d.data_flows.into_iter().collect(),
        }
    }

    pub fn schema_format(v: i32) -> SchemaFormat {
        if v == pb::SchemaFormat::JsonSchema as i32 {
            SchemaFormat::JsonSchema
        } else {
            SchemaFormat::Protobuf
        }
    }

    pub fn verdict(
        v: pb::CompatibilityVerdict,
        at: Timestamp,
    ) -> Result<CompatibilityVerdict, String> {
        Ok(CompatibilityVerdict {
            service: ServiceName::stored(&v.service),
            name: v.name,
            version: version(&v.version)?,
            compared: v
                .compared_against
                .into_iter()
                .map(|b| Ok((b.used_by, version(&b.version)?)))
                .collect::<Result<_, String>>()?,
            breaking: v.breaking_changes,
            at,
        })
    }
}
