//! Catalog values as protobuf messages: what stored events carry and API answers show.

use flotilla_proto::dependency::v1 as pb;

use crate::domain::{
    CoDeploymentPin, DataClassification, Dependency, EdgeKind, RuntimeKind, ServiceName,
    ServiceSpec,
};

pub fn runtime_pb(r: RuntimeKind) -> pb::Runtime {
    match r {
        RuntimeKind::Microservice => pb::Runtime::Microservice,
        RuntimeKind::Database => pb::Runtime::Database,
        RuntimeKind::Queue => pb::Runtime::Queue,
        RuntimeKind::ExternalApi => pb::Runtime::ExternalApi,
        RuntimeKind::SharedInfrastructure => pb::Runtime::SharedInfrastructure,
    }
}

pub fn classification_pb(c: DataClassification) -> pb::DataClassification {
    match c {
        DataClassification::Public => pb::DataClassification::Public,
        DataClassification::Internal => pb::DataClassification::Internal,
        DataClassification::Confidential => pb::DataClassification::Confidential,
        DataClassification::Restricted => pb::DataClassification::Restricted,
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

pub fn dependency_pb(d: &Dependency) -> pb::Dependency {
    pb::Dependency {
        consumer: d.consumer.to_string(),
        provider: d.provider.to_string(),
        kind: edge_kind_pb(d.kind) as i32,
        data_flows: d.data_flows.iter().cloned().collect(),
    }
}

pub fn pin_pb(p: &CoDeploymentPin) -> pb::CoDeploymentPin {
    pb::CoDeploymentPin {
        group: p.group.clone(),
        services: p.services.iter().map(|s| s.to_string()).collect(),
        reason: p.reason.clone(),
    }
}

pub use flotilla_runtime::kit::time::to_proto as timestamp;

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

pub fn impact_pb(e: &crate::domain::graph::ImpactEntry) -> pb::ImpactEntry {
    pb::ImpactEntry {
        service: e.service.to_string(),
        distance: e.distance,
        criticality_tier: u32::from(e.tier.get()),
        business_unit: e.business_unit.clone(),
        handles_personal_data: e.handles_personal_data,
        edge_kinds: e
            .edge_kinds
            .iter()
            .map(|k| edge_kind_pb(*k) as i32)
            .collect(),
        risk: e.risk,
    }
}

pub fn group_pb(g: crate::domain::graph::CoDeploymentGroup) -> pb::CoDeploymentGroup {
    pb::CoDeploymentGroup {
        name: g.name,
        members: g
            .members
            .into_iter()
            .map(|(s, reasons)| pb::CoDeploymentMember {
                service: s.to_string(),
                reasons,
            })
            .collect(),
    }
}

pub fn plan_pb(
    plan: &crate::domain::graph::ReleasePlan,
    skew: &[crate::domain::graph::SkewViolation],
) -> pb::ReleasePlan {
    pb::ReleasePlan {
        waves: plan
            .waves
            .iter()
            .map(|w| pb::Wave {
                services: w
                    .iter()
                    .map(|p| pb::PlannedService {
                        service: p.service.to_string(),
                        version: p.version.clone().unwrap_or_default(),
                        co_deployment_group: p.group.clone().unwrap_or_default(),
                    })
                    .collect(),
            })
            .collect(),
        impact: plan.impact.iter().map(impact_pb).collect(),
        skew_violations: skew.iter().map(skew_pb).collect(),
    }
}

/// Declared dependencies never observed, and observed calls never declared.
pub fn drift_pb(
    c: &crate::domain::Catalog,
    d: &crate::domain::graph::Drift,
) -> pb::DependencyDrift {
    pb::DependencyDrift {
        declared_not_observed: d
            .declared_not_observed
            .iter()
            .filter_map(|(consumer, provider, _)| {
                c.dependencies.get(&(consumer.clone(), provider.clone()))
            })
            .map(dependency_pb)
            .collect(),
        observed_not_declared: d
            .observed_not_declared
            .iter()
            .map(|(client, server, o)| pb::ObservedEdge {
                client: client.to_string(),
                server: server.to_string(),
                calls: o.calls,
                first_seen: Some(timestamp(o.first_seen)),
                last_seen: Some(timestamp(o.last_seen)),
            })
            .collect(),
    }
}
