//! Import from Backstage `catalog-info.yaml` (one or more YAML documents), so teams do not type
//! their catalog twice. Components and Resources become catalog services; `spec.dependsOn`,
//! and APIs a component consumes from the component that provides them, become dependencies.
//!
//! Flotilla fields Backstage does not have come from annotations, with defaults:
//! `flotilla.dev/criticality-tier` (1-4, default 3), `flotilla.dev/business-unit` (default the
//! entity's `spec.system`, else `unassigned`), `flotilla.dev/handles-personal-data` (`true` or
//! `false`, default false), `flotilla.dev/data-classification` (public, internal, confidential,
//! restricted; default internal). On re-import, a field whose annotation is absent keeps the
//! value the catalog has (see [`Import::explicit`]), so a hand-set tier is not reset.
//!
//! Names: an entity in a namespace other than `default` becomes `<name>.<namespace>` (so equal
//! names in two namespaces do not collide), names are lowercased with `_` turned into `-`, and
//! an entity whose name is still not a DNS name is reported and skipped, not fatal.

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
    namespace: Option<String>,
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
    /// Per service, the fields the file states (annotations, or `spec.system` for the unit):
    /// `criticality-tier`, `business-unit`, `handles-personal-data`, `data-classification`.
    /// Others are defaults that should not overwrite what the catalog already has.
    pub explicit: BTreeMap<ServiceName, BTreeSet<&'static str>>,
}

fn invalid(reason: String) -> DomainError {
    DomainError::Invalid {
        field: "catalog-info.yaml",
        reason,
    }
}

/// The catalog name of a Backstage entity: lowercased, `_` as `-`, `<name>.<namespace>` outside
/// the default namespace.
fn qualified(name: &str, namespace: &str) -> String {
    let norm = |s: &str| s.trim().to_ascii_lowercase().replace('_', "-");
    let ns = norm(namespace);
    if ns.is_empty() || ns == "default" {
        norm(name)
    } else {
        format!("{}.{ns}", norm(name))
    }
}

/// `component:ns/foo`, `resource:foo` or `foo` -> (kind, qualified name); a reference without
/// a namespace is in the referring entity's namespace.
fn entity_ref(r: &str, default_kind: &str, default_ns: &str) -> (String, String) {
    let (kind, rest) = match r.split_once(':') {
        Some((k, rest)) => (k.to_ascii_lowercase(), rest),
        None => (default_kind.to_owned(), r),
    };
    let (ns, name) = rest.split_once('/').unwrap_or((default_ns, rest));
    (kind, qualified(name, ns))
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
    let ns_of = |e: &Entity| e.metadata.namespace.clone().unwrap_or_default();
    for e in &entities {
        let own = qualified(&e.metadata.name, &ns_of(e));
        match e.kind.as_str() {
            "Resource" => {
                resource_types.insert(own.clone(), e.spec.ty.clone().unwrap_or_default());
            }
            "API" => {
                api_types.insert(own.clone(), e.spec.ty.clone().unwrap_or_default());
            }
            "Component" => {
                for api in &e.spec.provides_apis {
                    providers_of_api
                        .entry(entity_ref(api, "api", &ns_of(e)).1)
                        .or_default()
                        .push(own.clone());
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
        let ns = ns_of(e);
        let name = match ServiceName::parse(&qualified(&e.metadata.name, &ns)) {
            Ok(n) => n,
            Err(err) => {
                out.skipped.push(format!(
                    "{} {:?}: not imported: {err}",
                    e.kind, e.metadata.name
                ));
                continue;
            }
        };
        let mut explicit = BTreeSet::new();
        let ann = |k: &str| {
            e.metadata
                .annotations
                .get(&format!("flotilla.dev/{k}"))
                .map(String::as_str)
        };
        for field in [
            "criticality-tier",
            "business-unit",
            "handles-personal-data",
            "data-classification",
        ] {
            if ann(field).is_some() {
                explicit.insert(field);
            }
        }
        if e.spec.system.is_some() {
            explicit.insert("business-unit");
        }
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
            .map(|o| entity_ref(o, "group", &ns).1)
            .unwrap_or_else(|| "unowned".into());
        let business_unit = ann("business-unit")
            .map(str::to_owned)
            .or_else(|| {
                e.spec
                    .system
                    .as_deref()
                    .map(|sys| entity_ref(sys, "system", &ns).1)
            })
            .unwrap_or_else(|| "unassigned".into());
        out.explicit.insert(name.clone(), explicit);
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
            let (kind, target) = entity_ref(d, "component", &ns);
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
            match ServiceName::parse(&target) {
                Ok(t) => {
                    edges.insert(t, edge);
                }
                Err(err) => out
                    .skipped
                    .push(format!("{name} dependsOn {d}: not imported: {err}")),
            }
        }
        for api in &e.spec.consumes_apis {
            let api = entity_ref(api, "api", &ns).1;
            let kind = if api_types.get(&api).is_some_and(|t| t == "asyncapi") {
                EdgeKind::AsyncMessage
            } else {
                EdgeKind::SyncApi
            };
            match providers_of_api.get(&api) {
                Some(ps) => {
                    for p in ps {
                        if let Ok(p) = ServiceName::parse(p) {
                            edges.entry(p).or_insert(kind);
                        }
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
    fn namespaces_odd_names_and_explicit_fields() {
        let yaml = "kind: Component\nmetadata: { name: Web_Shop }\nspec: { dependsOn: [\"component:web\", \"component:payments/web\"] }\n---\nkind: Component\nmetadata: { name: web, annotations: { flotilla.dev/criticality-tier: \"1\" } }\nspec: { dependsOn: [\"component:9lives\"] }\n---\nkind: Component\nmetadata: { name: web, namespace: payments }\nspec: { system: cards, dependsOn: [\"component:ledger\"] }\n---\nkind: Component\nmetadata: { name: 9lives }\n";
        let i = parse(yaml).expect("parse");
        let names: Vec<_> = i.services.iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names, vec!["web-shop", "web", "web.payments"]);
        let edges: Vec<_> = i
            .dependencies
            .iter()
            .map(|d| format!("{}->{}", d.consumer, d.provider))
            .collect();
        // A reference without a namespace stays in the referring entity's namespace.
        assert_eq!(
            edges,
            vec![
                "web-shop->web",
                "web-shop->web.payments",
                "web.payments->ledger.payments"
            ]
        );
        assert!(
            i.skipped.iter().any(|s| s.contains("9lives")),
            "{:?}",
            i.skipped
        );
        let explicit = |n: &str| i.explicit[&ServiceName::parse(n).expect("name")].clone();
        assert!(explicit("web-shop").is_empty());
        assert_eq!(explicit("web"), ["criticality-tier"].into());
        assert_eq!(explicit("web.payments"), ["business-unit"].into());
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let e = parse("kind: Component\nmetadata:\n  name: x\n  annotations: { flotilla.dev/criticality-tier: \"7\" }\n").expect_err("tier");
        assert!(e.to_string().contains("criticality tier"), "{e}");
        assert!(parse("kind: [unclosed").is_err());
    }
}
