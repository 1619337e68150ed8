//! Requests of the API as domain values. Every rule of the API's shape is checked here; anything
//! invalid is a [`DomainError::Invalid`] (INVALID_ARGUMENT) naming the field. Stored events are
//! decoded apart (`codec`), without these rules.

use flotilla_proto::dependency::v1 as pb;

use crate::domain::{
    CoDeploymentPin, DataClassification, Dependency, DomainError, EdgeKind, Result, RuntimeKind,
    ServiceName, ServiceSpec, Tier, Timestamp,
};

fn missing(field: &'static str) -> DomainError {
    DomainError::Invalid {
        field,
        reason: "is required".into(),
    }
}

pub fn name(field: &'static str, s: &str) -> Result<ServiceName> {
    if s.is_empty() {
        return Err(missing(field));
    }
    ServiceName::parse(s)
}

fn runtime(v: i32) -> Result<RuntimeKind> {
    match pb::Runtime::try_from(v) {
        Ok(pb::Runtime::Microservice) => Ok(RuntimeKind::Microservice),
        Ok(pb::Runtime::Database) => Ok(RuntimeKind::Database),
        Ok(pb::Runtime::Queue) => Ok(RuntimeKind::Queue),
        Ok(pb::Runtime::ExternalApi) => Ok(RuntimeKind::ExternalApi),
        Ok(pb::Runtime::SharedInfrastructure) => Ok(RuntimeKind::SharedInfrastructure),
        _ => Err(DomainError::Invalid {
            field: "runtime",
            reason: format!(
                "{v} is not a runtime; use RUNTIME_MICROSERVICE, _DATABASE, _QUEUE, _EXTERNAL_API or _SHARED_INFRASTRUCTURE"
            ),
        }),
    }
}

fn classification(v: i32) -> Result<DataClassification> {
    match pb::DataClassification::try_from(v) {
        Ok(pb::DataClassification::Public) => Ok(DataClassification::Public),
        Ok(pb::DataClassification::Internal) => Ok(DataClassification::Internal),
        Ok(pb::DataClassification::Confidential) => Ok(DataClassification::Confidential),
        Ok(pb::DataClassification::Restricted) => Ok(DataClassification::Restricted),
        _ => Err(DomainError::Invalid {
            field: "data_classification",
            reason: format!(
                "{v} is not a classification; use PUBLIC, INTERNAL, CONFIDENTIAL or RESTRICTED"
            ),
        }),
    }
}

pub fn edge_kind(v: i32) -> Result<EdgeKind> {
    match pb::EdgeKind::try_from(v) {
        Ok(pb::EdgeKind::SyncApi) => Ok(EdgeKind::SyncApi),
        Ok(pb::EdgeKind::AsyncMessage) => Ok(EdgeKind::AsyncMessage),
        Ok(pb::EdgeKind::Database) => Ok(EdgeKind::Database),
        Ok(pb::EdgeKind::SharedInfrastructure) => Ok(EdgeKind::SharedInfrastructure),
        _ => Err(DomainError::Invalid {
            field: "kind",
            reason: format!(
                "{v} is not an edge kind; use SYNC_API, ASYNC_MESSAGE, DATABASE or SHARED_INFRASTRUCTURE"
            ),
        }),
    }
}

pub fn service_spec(e: Option<pb::ServiceEntry>) -> Result<ServiceSpec> {
    let e = e.ok_or_else(|| missing("service"))?;
    Ok(ServiceSpec {
        name: name("service.name", &e.name)?,
        owner_team: e.owner_team,
        business_unit: e.business_unit,
        tier: Tier::new(e.criticality_tier)?,
        handles_personal_data: e.handles_personal_data,
        classification: classification(e.data_classification)?,
        runtime: runtime(e.runtime)?,
    })
}

pub fn dependency(d: Option<pb::Dependency>) -> Result<Dependency> {
    let d = d.ok_or_else(|| missing("dependency"))?;
    Ok(Dependency {
        consumer: name("dependency.consumer", &d.consumer)?,
        provider: name("dependency.provider", &d.provider)?,
        kind: edge_kind(d.kind)?,
        data_flows: d.data_flows.into_iter().collect(),
    })
}

pub fn pin(p: Option<pb::CoDeploymentPin>) -> Result<CoDeploymentPin> {
    let p = p.ok_or_else(|| missing("pin"))?;
    Ok(CoDeploymentPin {
        group: p.group,
        services: p
            .services
            .iter()
            .map(|s| name("pin.services", s))
            .collect::<Result<_>>()?,
        reason: p.reason,
    })
}

/// The time in `field`.
pub fn time(field: &'static str, t: &prost_types::Timestamp) -> Result<Timestamp> {
    Timestamp::from_parts(t.seconds, t.nanos)
        .map_err(|reason| DomainError::Invalid { field, reason })
}

pub fn observed_calls(calls: Vec<pb::ObservedCall>) -> Result<Vec<crate::domain::ObservedCall>> {
    calls
        .into_iter()
        .map(|c| {
            Ok(crate::domain::ObservedCall {
                client: name("calls.client", &c.client)?,
                server: name("calls.server", &c.server)?,
                calls: c.calls,
            })
        })
        .collect()
}

pub fn version(field: &'static str, v: &str) -> Result<semver::Version> {
    semver::Version::parse(v.trim()).map_err(|e| DomainError::Invalid {
        field,
        reason: format!(
            "{} is not a semantic version ({e}); use MAJOR.MINOR.PATCH",
            flotilla_core::names::shown(v)
        ),
    })
}

pub fn requirement(r: &str) -> Result<semver::VersionReq> {
    semver::VersionReq::parse(r.trim()).map_err(|e| DomainError::Invalid {
        field: "requirement",
        reason: format!(
            "{} is not a semver range ({e}); e.g. \">=2.1.0, <3.0.0\" or \"^2.1\"",
            flotilla_core::names::shown(r)
        ),
    })
}

/// A deployment from its wire fields; `at` is required here (the edge fills in its clock).
pub fn deployment(
    environment: String,
    service: &str,
    v: &str,
    at: Option<&prost_types::Timestamp>,
) -> Result<crate::domain::Deployment> {
    Ok(crate::domain::Deployment {
        environment,
        service: name("service", service)?,
        version: version("version", v)?,
        at: at
            .map(|t| time("finished_at", t))
            .transpose()?
            .ok_or_else(|| missing("finished_at"))?,
    })
}

pub fn running(
    services: Vec<pb::RunningService>,
) -> Result<std::collections::BTreeMap<ServiceName, semver::Version>> {
    services
        .into_iter()
        .map(|s| {
            Ok((
                name("services.service", &s.service)?,
                version("services.version", &s.version)?,
            ))
        })
        .collect()
}

pub fn schema_format(v: i32) -> Result<crate::domain::SchemaFormat> {
    match pb::SchemaFormat::try_from(v) {
        Ok(pb::SchemaFormat::ProtobufDescriptorSet) => Ok(crate::domain::SchemaFormat::Protobuf),
        Ok(pb::SchemaFormat::JsonSchema) => Ok(crate::domain::SchemaFormat::JsonSchema),
        _ => Err(DomainError::Invalid {
            field: "format",
            reason: format!(
                "{v} is not a schema format; use SCHEMA_FORMAT_PROTOBUF_DESCRIPTOR_SET or SCHEMA_FORMAT_JSON_SCHEMA"
            ),
        }),
    }
}

/// The items of a release plan: each a service and the version it moves to (at most `max`).
pub fn plan_items(items: Vec<pb::ReleaseItem>, max: usize) -> Result<Vec<(ServiceName, String)>> {
    if items.len() > max {
        return Err(DomainError::Invalid {
            field: "items",
            reason: format!("{} items, at most {max} in one release plan", items.len()),
        });
    }
    items
        .into_iter()
        .map(|i| {
            if i.version.trim().is_empty() {
                return Err(DomainError::Invalid {
                    field: "items.version",
                    reason: format!("{} needs a version", i.service),
                });
            }
            let version = version("items.version", &i.version)?;
            Ok((name("items.service", &i.service)?, version.to_string()))
        })
        .collect()
}
