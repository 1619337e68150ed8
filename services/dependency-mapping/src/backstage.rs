//! Import from Backstage `catalog-info.yaml` (one or more YAML documents), so teams do not type
//! their catalog twice. Components and Resources become catalog services; `spec.dependsOn`,
//! and APIs a component consumes from the component that provides them, become dependencies.
//!
//! Flotilla fields Backstage does not have come from annotations, with defaults:
//! `flotilla.dev/criticality-tier` (1-4, default 3), `flotilla.dev/business-unit` (default the
//! entity's `spec.system`, else `unassigned`), `flotilla.dev/handles-personal-data` (`true` or
//! `false`, default false), `flotilla.dev/data-classification` (public, internal, confidential,
//! restricted; default internal).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::domain::{
    DataClassification, Dependency, DomainError, EdgeKind, Result, RuntimeKind, ServiceName,
    ServiceSpec, Tier,
};

#[derive(Debug, Deserialize)]
struct Entity {
    kind: String,
    metadata: EntityMetadata,
    #[serde(default)]
    spec: EntitySpec,
}

#[derive(Debug, Deserialize)]
struct EntityMetadata {
    name: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EntitySpec {
    #[serde(default, rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    depends_on: Vec<String>,
    #[serde(default)]
    provides_apis: Vec<String>,
    #[serde(default)]
    consumes_apis: Vec<String>,
}

/// What a catalog file describes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Import {
    pub services: Vec<ServiceSpec>,
    pub dependencies: Vec<Dependency>,
    /// References that could not be resolved (e.g. an API nobody provides), for the report.
    pub skipped: Vec<String>,
}

fn invalid(reason: String) -> DomainError {
    DomainError::Invalid {
        field: "catalog-info.yaml",
        reason,
    }
}

/// `component:default/foo` or `resource:foo` or `foo` -> (kind, name).
fn entity_ref(r: &str, default_kind: &str) -> (String, String) {
    let (kind, rest) = match r.split_once(':') {
        Some((k, rest)) => (k.to_ascii_lowercase(), rest),
        None => (default_kind.to_owned(), r),
    };
    let name = rest.rsplit('/').next().unwrap_or(rest);
    (kind, name.to_owned())
}

/// Parses a catalog file.
pub fn parse(yaml: &str) -> Result<Import> {
    let mut entities = Vec::new();
    for (i, doc) in serde_norway::Deserializer::from_str(yaml).enumerate() {
        let value = serde_norway::Value::deserialize(doc)
            .map_err(|e| invalid(format!("document {}: {e}", i + 1)))?;
        if value.is_null() {
            continue;
        }
        let e: Entity = serde_norway::from_value(value)
            .map_err(|e| invalid(format!("document {}: {e}", i + 1)))?;
        entities.push(e);
    }
    let mut out = Import::default();
    let mut resource_types: BTreeMap<String, String> = BTreeMap::new();
    let mut api_types: BTreeMap<String, String> = BTreeMap::new();
    let mut providers_of_api: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in &entities {
        match e.kind.as_str() {
            "Resource" => {
                resource_types.insert(
                    e.metadata.name.clone(),
                    e.spec.ty.clone().unwrap_or_default(),
                );
            }
            "API" => {
                api_types.insert(
                    e.metadata.name.clone(),
                    e.spec.ty.clone().unwrap_or_default(),
                );
            }
            "Component" => {
                for api in &e.spec.provides_apis {
                    providers_of_api
                        .entry(entity_ref(api, "api").1)
                        .or_default()
                        .push(e.metadata.name.clone());
                }
            }
            _ => {}
        }
    }
    for e in &entities {
        let runtime = match (e.kind.as_str(), e.spec.ty.as_deref().unwrap_or_default()) {
            ("Component", _) => RuntimeKind::Microservice,
            ("Resource", "database") => RuntimeKind::Database,
            ("Resource", "queue" | "topic" | "message-broker") => RuntimeKind::Queue,
            ("Resource", "external-api" | "saas") => RuntimeKind::ExternalApi,
            ("Resource", _) => RuntimeKind::SharedInfrastructure,
            _ => continue,
        };
        let name = ServiceName::parse(&e.metadata.name)?;
        let ann = |k: &str| {
            e.metadata
                .annotations
                .get(&format!("flotilla.dev/{k}"))
                .map(String::as_str)
        };
        let tier = match ann("criticality-tier") {
            Some(t) => Tier::new(t.trim().parse().map_err(|_| {
                invalid(format!("{name}: criticality tier {t:?} is not a number"))
            })?)?,
            None => Tier::new(3)?,
        };
        let handles_personal_data = match ann("handles-personal-data") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(invalid(format!(
                    "{name}: handles-personal-data {other:?} is not true or false"
                )));
            }
        };
        let classification = match ann("data-classification").unwrap_or("internal") {
            "public" => DataClassification::Public,
            "internal" => DataClassification::Internal,
            "confidential" => DataClassification::Confidential,
            "restricted" => DataClassification::Restricted,
            other => {
                return Err(invalid(format!(
                    "{name}: data classification {other:?} is not public, internal, confidential or restricted"
                )));
            }
        };
        let owner = e
            .spec
            .owner
            .as_deref()
            .map(|o| entity_ref(o, "group").1)
            .unwrap_or_else(|| "unowned".into());
        let business_unit = ann("business-unit")
            .map(str::to_owned)
            .or_else(|| {
                e.spec
                    .system
                    .as_deref()
                    .map(|sys| entity_ref(sys, "system").1)
            })
            .unwrap_or_else(|| "unassigned".into());
        out.services.push(ServiceSpec {
            name: name.clone(),
            owner_team: owner,
            business_unit,
            tier,
            handles_personal_data,
            classification,
            runtime,
        });
        let mut edges: BTreeMap<ServiceName, EdgeKind> = BTreeMap::new();
        for d in &e.spec.depends_on {
            let (kind, target) = entity_ref(d, "component");
            let edge = match kind.as_str() {
                "resource" => match resource_types.get(&target).map(String::as_str) {
                    Some("database") => EdgeKind::Database,
                    Some("queue" | "topic" | "message-broker") => EdgeKind::AsyncMessage,
                    _ => EdgeKind::SharedInfrastructure,
                },
                "component" => EdgeKind::SyncApi,
                _ => {
                    out.skipped.push(format!(
                        "{name} dependsOn {d}: only components and resources are imported"
                    ));
                    continue;
                }
            };
            edges.insert(ServiceName::parse(&target)?, edge);
        }
        for api in &e.spec.consumes_apis {
            let api = entity_ref(api, "api").1;
            let kind = if api_types.get(&api).is_some_and(|t| t == "asyncapi") {
                EdgeKind::AsyncMessage
            } else {
                EdgeKind::SyncApi
            };
            match providers_of_api.get(&api) {
                Some(ps) => {
                    for p in ps {
                        edges.entry(ServiceName::parse(p)?).or_insert(kind);
                    }
                }
                None => out.skipped.push(format!(
                    "{name} consumes API {api}, which no component provides"
                )),
            }
        }
        for (provider, kind) in edges {
            if provider != name {
                out.dependencies.push(Dependency {
                    consumer: name.clone(),
                    provider,
                    kind,
                    data_flows: BTreeSet::new(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
  annotations:
    flotilla.dev/criticality-tier: "1"
    flotilla.dev/handles-personal-data: "true"
    flotilla.dev/business-unit: retail
spec:
  type: service
  owner: group:default/checkout-team
  system: shop
  dependsOn: ["resource:orders-db", "component:pricing"]
  consumesApis: ["payments-api", "order-events"]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: { name: payments }
spec: { type: service, owner: payments-team, system: "system:default/finance", providesApis: ["payments-api"] }
---
kind: Component
metadata: { name: pricing }
spec: { type: service, owner: pricing-team, providesApis: ["order-events"] }
---
kind: API
metadata: { name: order-events }
spec: { type: asyncapi, owner: pricing-team }
---
kind: Resource
metadata: { name: orders-db }
spec: { type: database, owner: dba }
---
kind: System
metadata: { name: shop }
"#;

    #[test]
    fn components_resources_and_api_edges_are_imported() {
        let i = parse(FILE).expect("parses");
        let names: Vec<&str> = i.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["checkout", "payments", "pricing", "orders-db"]);
        let checkout = &i.services[0];
        assert_eq!(
            (
                checkout.tier.get(),
                checkout.handles_personal_data,
                checkout.business_unit.as_str(),
                checkout.owner_team.as_str()
            ),
            (1, true, "retail", "checkout-team")
        );
        assert_eq!(i.services[1].business_unit, "finance");
        assert_eq!(i.services[2].business_unit, "unassigned");
        assert_eq!(i.services[3].runtime, RuntimeKind::Database);
        let edges: Vec<(&str, &str, EdgeKind)> = i
            .dependencies
            .iter()
            .map(|d| (d.consumer.as_str(), d.provider.as_str(), d.kind))
            .collect();
        // pricing is both depended on and the provider of an async API: the explicit dependsOn wins.
        assert_eq!(
            edges,
            [
                ("checkout", "orders-db", EdgeKind::Database),
                ("checkout", "payments", EdgeKind::SyncApi),
                ("checkout", "pricing", EdgeKind::SyncApi)
            ]
        );
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        assert!(parse("kind: Component\nmetadata: { name: Bad_Name }\n").is_err());
        let e = parse("kind: Component\nmetadata:\n  name: x\n  annotations: { flotilla.dev/criticality-tier: \"7\" }\n").expect_err("tier");
        assert!(e.to_string().contains("criticality tier"), "{e}");
        assert!(parse("kind: [unclosed").is_err());
    }
}
