//! Every stored catalog event type has a golden file (`tests/golden/<type>.v<version>.bin`,
//! the payload as recorded): today's encoding must produce exactly those bytes, the file must
//! decode to the event, and the files replayed through the app rebuild the catalog they
//! describe.
//!
//! A new event type: add a sample below and record its file with `FLOTILLA_BLESS=1`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use flotilla_core::decider::StoredEvents;
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_core::{ExpectedVersion, MemoryStore};
use flotilla_dependency_mapping::DependencyMappingModule;
use flotilla_dependency_mapping::app::CatalogApp;
use flotilla_dependency_mapping::codec::CatalogEvents;
use flotilla_dependency_mapping::domain::*;
use flotilla_runtime::testkit::TestServer;

const T: i64 = 1_793_577_600_000_000;

fn name(s: &str) -> ServiceName {
    ServiceName::parse(s).expect("name")
}

fn v(s: &str) -> semver::Version {
    semver::Version::parse(s).expect("version")
}

fn spec(n: &str, unit: &str, tier: u32) -> ServiceSpec {
    ServiceSpec {
        name: name(n),
        owner_team: "core-banking".into(),
        business_unit: unit.into(),
        tier: Tier::new(tier).expect("tier"),
        handles_personal_data: true,
        classification: DataClassification::Confidential,
        runtime: RuntimeKind::Microservice,
    }
}

fn samples() -> Vec<Event> {
    vec![
        Event::ServiceRegistered(spec("ledger", "payments", 1)),
        Event::ServiceRegistered(spec("checkout", "retail", 2)),
        Event::ServiceUpdated(ServiceSpec {
            runtime: RuntimeKind::Database,
            classification: DataClassification::Restricted,
            ..spec("ledger", "payments", 1)
        }),
        Event::DependencyDeclared(Dependency {
            consumer: name("checkout"),
            provider: name("ledger"),
            kind: EdgeKind::AsyncMessage,
            data_flows: ["customer-pii".to_owned(), "payment-card".to_owned()].into(),
        }),
        Event::DependencyRemoved {
            consumer: name("checkout"),
            provider: name("ledger"),
        },
        Event::CoDeploymentPinned(CoDeploymentPin {
            group: "ledger-pair".into(),
            services: vec![name("checkout"), name("ledger")],
            reason: "shared schema migration".into(),
        }),
        Event::CallsObserved {
            calls: vec![ObservedCall {
                client: name("checkout"),
                server: name("ledger"),
                calls: 1_234,
            }],
            at: Timestamp(T + 1),
        },
        Event::DeploymentRecorded(Deployment {
            environment: "prod".into(),
            service: name("ledger"),
            version: v("2.3.0"),
            at: Timestamp(T + 2),
        }),
        Event::CompatibilityChecked(CompatibilityVerdict {
            service: name("ledger"),
            name: "ledger-api".into(),
            version: v("2.4.0"),
            compared: vec![("checkout".into(), v("2.3.0"))],
            breaking: vec!["field ledger.v1.Entry.amount (number 2) was removed".into()],
            at: Timestamp(T + 3),
        }),
        Event::SchemaPublished(SchemaDoc {
            service: name("ledger"),
            name: "ledger-api".into(),
            version: v("2.3.0"),
            format: SchemaFormat::JsonSchema,
            content: br#"{"type":"object"}"#.to_vec(),
        }),
        Event::SchemaUseDeclared {
            consumer: name("checkout"),
            provider: name("ledger"),
            name: "ledger-api".into(),
            version: v("2.3.0"),
        },
        Event::FootprintTagged(FootprintTag {
            environment: "prod".into(),
            tag: "2026-q4-release".into(),
            at: Timestamp(T + 4),
            services: BTreeMap::from([(name("ledger"), v("2.3.0"))]),
        }),
        Event::VersionRequirementDeclared {
            consumer: name("checkout"),
            provider: name("ledger"),
            requirement: semver::VersionReq::parse(">=2.1.0, <3.0.0").expect("range"),
        },
    ]
}

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn file_of(ty: &str, version: u32) -> PathBuf {
    dir().join(format!("{ty}.v{version}.bin"))
}

#[test]
fn every_event_type_encodes_as_recorded_and_decodes() {
    let codec = CatalogEvents;
    let mut written = BTreeSet::new();
    let mut seen = BTreeSet::new();
    for sample in samples() {
        let (ty, version, payload) = codec.encode(&sample);
        // One file per type: the first sample of a type is its golden one.
        if !seen.insert(ty.clone()) {
            continue;
        }
        flotilla_core::testing::golden(&file_of(&ty, version), &payload);
        let stored = std::fs::read(file_of(&ty, version)).expect("golden file");
        assert_eq!(
            codec
                .decode(&ty, version, &stored)
                .expect("decodes")
                .as_ref(),
            Some(&sample),
            "{ty}"
        );
        written.insert(format!("{ty}.v{version}.bin"));
    }
    assert_eq!(written.len(), 12, "one file per event type");
    let on_disk: BTreeSet<String> = std::fs::read_dir(dir())
        .expect("golden dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(on_disk, written);
}

/// The golden files (and the samples of a type beyond its first), appended as recorded,
/// replay into the catalog they describe.
#[tokio::test]
async fn golden_files_replay() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let codec = CatalogEvents;
    let mut seen = BTreeSet::new();
    let events = samples()
        .into_iter()
        .map(|sample| {
            let (ty, version, payload) = codec.encode(&sample);
            let payload = if seen.insert(ty.clone()) {
                std::fs::read(file_of(&ty, version)).expect("golden file")
            } else {
                payload
            };
            NewEvent::new(ty, version, payload, Metadata::by("importer", "payments"))
        })
        .collect();
    store
        .append(AppendRequest::new(
            StreamId::singleton(CATALOG_STREAM),
            ExpectedVersion::NoStream,
            events,
        ))
        .await
        .expect("append");
    let ctx = TestServer::context(&DependencyMappingModule, store);
    let (app, _) = CatalogApp::start(&ctx).await.expect("replays");
    assert!(ctx.chain.broken().is_none());
    app.query(|c| {
        assert_eq!(c.services[&name("ledger")].runtime, RuntimeKind::Database);
        assert!(c.dependencies.is_empty(), "declared, then removed");
        assert_eq!(c.pins["ledger-pair"].services.len(), 2);
        assert_eq!(c.observed.values().next().map(|o| o.calls), Some(1_234));
        assert_eq!(
            c.footprint("prod", None).get(&name("ledger")),
            Some(&v("2.3.0"))
        );
        assert_eq!(c.verdicts.len(), 1);
        assert_eq!(c.schemas.len(), 1);
        assert_eq!(c.schema_uses.len(), 1);
        assert_eq!(c.tags.len(), 1);
        assert_eq!(c.requirements.len(), 1);
    });
}

/// What an older, looser rule accepted replays, whatever the API refuses today: a name that is
/// not a DNS name, a tier out of range, an unknown runtime.
#[tokio::test]
async fn what_older_rules_accepted_replays() {
    use flotilla_proto::dependency::v1 as pb;
    use prost::Message;
    let old = pb::ServiceRegistered {
        service: Some(pb::ServiceEntry {
            name: "Legacy_Billing".into(),
            owner_team: "Billing Team".into(),
            business_unit: "Payments Dept".into(),
            criticality_tier: 7,
            handles_personal_data: false,
            data_classification: 0,
            runtime: 99,
        }),
    };
    assert!(
        ServiceName::parse("Legacy_Billing").is_err(),
        "refused by today's rule"
    );
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    store
        .append(AppendRequest::new(
            StreamId::singleton(CATALOG_STREAM),
            ExpectedVersion::NoStream,
            vec![NewEvent::new(
                "flotilla.dependency.v1.ServiceRegistered",
                1,
                old.encode_to_vec(),
                Metadata::by("importer", "payments"),
            )],
        ))
        .await
        .expect("append");
    let ctx = TestServer::context(&DependencyMappingModule, store);
    let (app, _) = CatalogApp::start(&ctx).await.expect("replays");
    assert!(ctx.chain.broken().is_none(), "nothing unreadable");
    let s = app
        .query(|c| c.services.values().next().cloned())
        .expect("kept");
    assert_eq!(s.name.as_str(), "Legacy_Billing");
    assert_eq!(s.business_unit, "Payments Dept");
}
