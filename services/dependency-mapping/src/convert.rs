//! Conversions between the protobuf contract and the domain, used by the gRPC edge and the
//! event codec. Proto input is validated here; anything invalid is a [`DomainError::Invalid`]
//! (InvalidArgument at the edge) naming the field.

use flotilla_proto::dependency::v1 as pb;

use crate::domain::{
    CoDeploymentPin, DataClassification, Dependency, DomainError, EdgeKind, Result, RuntimeKind,
    ServiceName, ServiceSpec, Tier,
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

fn runtime_pb(r: RuntimeKind) -> pb::Runtime {
    match r {
        RuntimeKind::Microservice => pb::Runtime::Microservice,
        RuntimeKind::Database => pb::Runtime::Database,
        RuntimeKind::Queue => pb::Runtime::Queue,
        RuntimeKind::ExternalApi => pb::Runtime::ExternalApi,
        RuntimeKind::SharedInfrastructure => pb::Runtime::SharedInfrastructure,
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

fn classification_pb(c: DataClassification) -> pb::DataClassification {
    match c {
        DataClassification::Public => pb::DataClassification::Public,
        DataClassification::Internal => pb::DataClassification::Internal,
        DataClassification::Confidential => pb::DataClassification::Confidential,
        DataClassification::Restricted => pb::DataClassification::Restricted,
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

pub fn edge_kind_pb(k: EdgeKind) -> pb::EdgeKind {
    match k {
        EdgeKind::SyncApi => pb::EdgeKind::SyncApi,
        EdgeKind::AsyncMessage => pb::EdgeKind::AsyncMessage,
        EdgeKind::Database => pb::EdgeKind::Database,
        EdgeKind::SharedInfrastructure => pb::EdgeKind::SharedInfrastructure,
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

pub fn service_entry(s: &ServiceSpec) -> pb::ServiceEntry {
    pb::ServiceEntry {
        name: s.name.to_string(),
        owner_team: s.owner_team.clone(),
        business_unit: s.business_unit.clone(),
        criticality_tier: u32::from(s.tier.get()),
        handles_personal_data: s.handles_personal_data,
        data_classification: classification_pb(s.classification) as i32,
        runtime: runtime_pb(s.runtime) as i32,
    }
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

pub fn dependency_pb(d: &Dependency) -> pb::Dependency {
    pb::Dependency {
        consumer: d.consumer.to_string(),
        provider: d.provider.to_string(),
        kind: edge_kind_pb(d.kind) as i32,
        data_flows: d.data_flows.iter().cloned().collect(),
    }
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

pub fn pin_pb(p: &CoDeploymentPin) -> pb::CoDeploymentPin {
    pb::CoDeploymentPin {
        group: p.group.clone(),
        services: p.services.iter().map(|s| s.to_string()).collect(),
        reason: p.reason.clone(),
    }
}

pub fn timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

/// Microseconds since the epoch of a stored timestamp: never refused (what was once recorded
/// replays), saturating at the ends of the range.
pub fn stored_micros(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1_000_000)
        .saturating_add(i64::from(t.nanos) / 1_000)
}

/// Microseconds since the epoch of the timestamp in `field`.
pub fn micros(field: &'static str, t: &prost_types::Timestamp) -> Result<i64> {
    flotilla_core::event::Timestamp::from_parts(t.seconds, t.nanos)
        .map(|t| t.as_micros())
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

pub fn observed_calls_pb(calls: &[crate::domain::ObservedCall]) -> Vec<pb::ObservedCall> {
    calls
        .iter()
        .map(|c| pb::ObservedCall {
            client: c.client.to_string(),
            server: c.server.to_string(),
            calls: c.calls,
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
            .map(|t| micros("finished_at", t))
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

pub fn running_pb(
    services: &std::collections::BTreeMap<ServiceName, semver::Version>,
) -> Vec<pb::RunningService> {
    services
        .iter()
        .map(|(s, v)| pb::RunningService {
            service: s.to_string(),
            version: v.to_string(),
        })
        .collect()
}

pub fn skew_pb(v: &crate::domain::graph::SkewViolation) -> pb::SkewViolation {
    pb::SkewViolation {
        environment: v.environment.clone(),
        consumer: v.consumer.to_string(),
        consumer_version: v.consumer_version.to_string(),
        provider: v.provider.to_string(),
        provider_version: v.provider_version.to_string(),
        requirement: v.requirement.to_string(),
    }
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

pub fn schema_format_pb(f: crate::domain::SchemaFormat) -> pb::SchemaFormat {
    match f {
        crate::domain::SchemaFormat::Protobuf => pb::SchemaFormat::ProtobufDescriptorSet,
        crate::domain::SchemaFormat::JsonSchema => pb::SchemaFormat::JsonSchema,
    }
}

pub fn verdict_pb(
    v: &crate::domain::CompatibilityVerdict,
    published: bool,
) -> pb::CompatibilityVerdict {
    pb::CompatibilityVerdict {
        service: v.service.to_string(),
        name: v.name.clone(),
        version: v.version.to_string(),
        compatible: v.breaking.is_empty(),
        breaking_changes: v.breaking.clone(),
        compared_against: v
            .compared
            .iter()
            .map(|(u, ver)| pb::SchemaBaseline {
                used_by: u.clone(),
                version: ver.to_string(),
            })
            .collect(),
        published,
    }
}

pub fn verdict(
    v: pb::CompatibilityVerdict,
    at: i64,
) -> Result<crate::domain::CompatibilityVerdict> {
    Ok(crate::domain::CompatibilityVerdict {
        service: name("verdict.service", &v.service)?,
        name: v.name,
        version: version("verdict.version", &v.version)?,
        compared: v
            .compared_against
            .into_iter()
            .map(|b| Ok((b.used_by, version("verdict.compared_against", &b.version)?)))
            .collect::<Result<_>>()?,
        breaking: v.breaking_changes,
        at,
    })
}
