//! Who and what the demo's story is about: the catalog of two units, their services, and the
//! descriptors and strategies their releases carry.

use flotilla_proto::orchestration::v1 as pb;

pub(super) const CATALOG: &str = r#"
kind: Component
metadata: { name: payments-web, annotations: { flotilla.dev/criticality-tier: "3" } }
spec: { owner: payments-core, system: payments, dependsOn: ["component:payments-api"] }
---
kind: Component
metadata: { name: payments-api, annotations: { flotilla.dev/criticality-tier: "2" } }
spec: { owner: payments-core, system: payments, dependsOn: ["component:payments-ledger", "component:payments-fraud"] }
---
kind: Component
metadata: { name: payments-ledger, annotations: { flotilla.dev/criticality-tier: "2" } }
spec: { owner: payments-core, system: payments }
---
kind: Component
metadata: { name: payments-fraud }
spec: { owner: payments-risk, system: payments }
---
kind: Component
metadata: { name: payments-notify }
spec: { owner: payments-core, system: payments, dependsOn: ["component:payments-api"] }
---
kind: Component
metadata: { name: payments-reports }
spec: { owner: payments-data, system: payments, dependsOn: ["component:payments-ledger"] }
---
kind: Component
metadata: { name: cards-web }
spec: { owner: cards-core, system: cards, dependsOn: ["component:cards-api"] }
---
kind: Component
metadata: { name: cards-api, annotations: { flotilla.dev/criticality-tier: "2" } }
spec: { owner: cards-core, system: cards, dependsOn: ["component:cards-auth", "component:cards-ledger"] }
---
kind: Component
metadata: { name: cards-auth }
spec: { owner: cards-security, system: cards }
---
kind: Component
metadata: { name: cards-ledger }
spec: { owner: cards-core, system: cards }
---
kind: Component
metadata: { name: cards-statements }
spec: { owner: cards-data, system: cards, dependsOn: ["component:cards-ledger"] }
---
kind: Component
metadata: { name: cards-rewards }
spec: { owner: cards-growth, system: cards, dependsOn: ["component:cards-api"] }
"#;

pub(super) const SERVICES: [&str; 12] = [
    "payments-web",
    "payments-api",
    "payments-ledger",
    "payments-fraud",
    "payments-notify",
    "payments-reports",
    "cards-web",
    "cards-api",
    "cards-auth",
    "cards-ledger",
    "cards-statements",
    "cards-rewards",
];

pub(super) fn descriptor(service: &str, unit: &str) -> pb::Descriptor {
    pb::Descriptor {
        kind: pb::DescriptorKind::Helm as i32,
        reference: format!("oci://charts.example.com/{service}"),
        version: "2.0.0".into(),
        values: [("replicas".to_owned(), "3".to_owned())]
            .into_iter()
            .collect(),
        labels: [("team".to_owned(), format!("{unit}-core"))]
            .into_iter()
            .collect(),
        cpu_limit: "500m".into(),
        memory_limit: "512Mi".into(),
        uses: vec![],
    }
}

pub(super) fn item(
    service: &str,
    unit: &str,
    strategy: Option<pb::strategy::Kind>,
) -> pb::RequestedItem {
    pb::RequestedItem {
        service: service.into(),
        version: "2.0.0".into(),
        descriptor: Some(descriptor(service, unit)),
        strategy: strategy.map(|k| pb::Strategy { kind: Some(k) }),
        migrations: vec![],
    }
}
