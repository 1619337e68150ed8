//! The compliance ledger as an auditor relies on it, on PostgreSQL and NATS: it takes every
//! event of the other services from the bus (withheld refusals as digests) with every link of
//! each chain checked; its checkpoints are signed notes and its proofs RFC 9162's, checked here
//! with the transparency crate's verifiers only; a bundle it exports verifies offline and fails
//! on any changed byte; and an insider who rewrites a service's store consistently (so that
//! the service's own check passes) is caught by the ledger when the service's next event no
//! longer links to what the ledger saw.

use std::time::Duration;

use flotilla_core::chain::Hash;
use flotilla_proto::common::v1::GetStatusRequest;
use flotilla_proto::compliance::v1 as pb;
use flotilla_proto::compliance::v1::compliance_service_client::ComplianceServiceClient;
use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_proto::governance::v1 as gv;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::config::BusKind;
use flotilla_tests::{Deployment, postgres_url};
use flotilla_transparency::checkpoint::Checkpoint;
use flotilla_transparency::ledger::Leaf;
use flotilla_transparency::merkle::{leaf_hash, verify_consistency, verify_inclusion};
use flotilla_transparency::note::NoteVerifier;
use tokio_stream::StreamExt;

type Channel = tonic::service::interceptor::InterceptedService<
    tonic::transport::Channel,
    flotilla_auth::Bearer,
>;

const SERVICES: [&str; 3] = ["governance", "dependency-mapping", "compliance"];

fn entry(name: &str) -> dm::ServiceEntry {
    dm::ServiceEntry {
        name: name.into(),
        owner_team: "retail-team".into(),
        business_unit: "retail".into(),
        criticality_tier: 2,
        handles_personal_data: false,
        data_classification: dm::DataClassification::Internal as i32,
        runtime: dm::Runtime::Microservice as i32,
    }
}

fn settings(deployment: &mut Deployment) {
    let mut c = toml::Table::new();
    c.insert("checkpoint_secs".into(), toml::Value::Integer(1));
    c.insert("gap_grace_secs".into(), toml::Value::Integer(3600));
    deployment.config.sections.insert("compliance".into(), c);
}

async fn register(ch: &Channel, name: &str) {
    DependencyMappingServiceClient::new(ch.clone())
        .register_service(dm::RegisterServiceRequest {
            service: Some(entry(name)),
        })
        .await
        .expect("register");
}

async fn head(ch: &Channel, service: &str) -> u64 {
    let ch = ch.clone();
    let status = match service {
        "governance" => {
            GovernanceServiceClient::new(ch)
                .get_status(GetStatusRequest {})
                .await
        }
        _ => {
            DependencyMappingServiceClient::new(ch)
                .get_status(GetStatusRequest {})
                .await
        }
    };
    status.expect("status").into_inner().head_position
}

/// Waits until the ledger linked each service up to its store's head.
async fn ledgered(
    admin: &Channel,
    ledger: &mut ComplianceServiceClient<Channel>,
) -> Vec<pb::SourceChain> {
    let mut last = Vec::new();
    for _ in 0..300 {
        let heads = [
            head(admin, "governance").await,
            head(admin, "dependency-mapping").await,
        ];
        last = ledger
            .list_sources(pb::ListSourcesRequest {})
            .await
            .expect("sources")
            .into_inner()
            .sources;
        let at = |s: &str| last.iter().find(|c| c.service == s).map(|c| c.linked_to);
        if at("governance") == Some(heads[0]) && at("dependency-mapping") == Some(heads[1]) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the ledger did not catch up: {last:?}");
}

async fn newest_checkpoint(
    ledger: &mut ComplianceServiceClient<Channel>,
    size: u64,
) -> pb::CheckpointSigned {
    for _ in 0..100 {
        let c = ledger
            .sign_checkpoint(pb::SignCheckpointRequest {})
            .await
            .expect("sign")
            .into_inner();
        if c.size >= size {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no checkpoint of size {size}");
}

/// Rewrites `service`'s store from the event at `from` on as an insider who knows the chain
/// rule would: the event's payload changed, every hash from there recomputed, the head moved.
async fn rewrite_consistently(deployment: &Deployment, service: &str, from: u64) {
    let store = deployment.store(service).await.expect("store");
    let mut events = store.read_all(1, 100_000).await.expect("read");
    let schema = flotilla_store::schema_for(&deployment.config.namespace, service);
    let pool = sqlx::PgPool::connect(&postgres_url()).await.expect("pg");
    let mut prev = events[from as usize - 2].hash;
    for e in events.iter_mut().skip(from as usize - 1) {
        if e.global_position == from {
            // An unknown field appended: the event still decodes, its bytes are not the same.
            e.payload.extend([0x78, 0x01]);
        }
        e.prev_hash = prev;
        e.hash = e.compute_hash();
        prev = e.hash;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE \"{schema}\".events SET payload = $1, prev_hash = $2, hash = $3 WHERE global_position = $4"
        )))
        .bind(&e.payload)
        .bind(e.prev_hash.0.to_vec())
        .bind(e.hash.0.to_vec())
        .bind(e.global_position as i64)
        .execute(&pool)
        .await
        .expect("rewrite");
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{schema}\".store_head SET hash = $1"
    )))
    .bind(prev.0.to_vec())
    .execute(&pool)
    .await
    .expect("head");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_ledger_proves_what_it_saw_and_catches_a_rewritten_store() {
    let mut deployment = Deployment::new(vec![BusKind::Nats]).expect("deployment");
    settings(&mut deployment);
    let node = deployment.start(&SERVICES).await.expect("start");
    let admin = node
        .as_caller("ops", &["admin"], "central")
        .await
        .expect("admin");
    let auditor = node
        .as_caller("aud", &["auditor"], "central")
        .await
        .expect("auditor");
    register(&admin, "till").await;
    register(&admin, "basket").await;
    // A caller without a token: its refusal's content stays in governance's store, its digest
    // keeps the ledger's view of the chain whole.
    let anonymous = GovernanceServiceClient::new(node.channel().await.expect("connect"))
        .get_status(GetStatusRequest {})
        .await;
    assert_eq!(
        anonymous.expect_err("no token").code(),
        tonic::Code::Unauthenticated
    );
    register(&admin, "checkout").await;

    let mut ledger = ComplianceServiceClient::new(auditor.clone());
    let sources = ledgered(&admin, &mut ledger).await;
    for s in &sources {
        assert_eq!((s.waiting, s.alerts), (0, 0), "{s:?}");
    }
    let gov = sources
        .iter()
        .find(|s| s.service == "governance")
        .expect("governance");
    assert_eq!(gov.withheld, 1, "{gov:?}");

    // A signed checkpoint, checked with the verifier key only.
    let mut officer = ComplianceServiceClient::new(
        node.as_caller("cora", &["compliance-officer"], "central")
            .await
            .expect("officer"),
    );
    let total: u64 = sources.iter().map(|s| s.events).sum();
    let first = newest_checkpoint(&mut officer, total).await;
    let listed = ledger
        .list_checkpoints(pb::ListCheckpointsRequest {})
        .await
        .expect("list")
        .into_inner();
    let key = NoteVerifier::parse(&listed.verifier_key).expect("verifier key");
    let cp = Checkpoint::open(&first.note, std::slice::from_ref(&key)).expect("signed");
    assert_eq!(
        (cp.size, cp.root.to_vec()),
        (first.size, first.root.clone())
    );

    // The inclusion proof of dependency-mapping's first event, checked as RFC 9162 says.
    let proof = ledger
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            event: Some(pb::get_inclusion_proof_request::Event::Position(
                pb::ServicePosition {
                    service: "dependency-mapping".into(),
                    sequence: 1,
                },
            )),
            tree_size: cp.size,
        })
        .await
        .expect("inclusion")
        .into_inner();
    let leaf = Leaf::decode(&proof.leaf).expect("a ledger leaf");
    assert_eq!(
        (leaf.service.as_str(), leaf.sequence),
        ("dependency-mapping", 1)
    );
    let store = deployment.store("dependency-mapping").await.expect("store");
    let stored = store.read_all(1, 1).await.expect("read").remove(0);
    assert_eq!(
        leaf.event_hash, stored.hash.0,
        "the leaf names the stored event"
    );
    let hashes: Vec<[u8; 32]> = proof
        .hashes
        .iter()
        .map(|h| <[u8; 32]>::try_from(h.as_slice()).expect("32 bytes"))
        .collect();
    verify_inclusion(
        proof.index,
        cp.size,
        &leaf_hash(&proof.leaf),
        &hashes,
        &cp.root,
    )
    .expect("included");
    let mut flipped = proof.leaf.clone();
    flipped[30] ^= 1;
    assert!(
        verify_inclusion(
            proof.index,
            cp.size,
            &leaf_hash(&flipped),
            &hashes,
            &cp.root
        )
        .is_err()
    );

    // A bundle of governance's events verifies offline; a changed byte of an event fails it.
    let bundle = ledger
        .export_audit_bundle(pb::ExportAuditBundleRequest {
            filter: Some(pb::ReplayRequest {
                services: vec!["governance".into()],
                ..Default::default()
            }),
            tree_size: cp.size,
        })
        .await
        .expect("bundle")
        .into_inner();
    assert_eq!(bundle.entries, gov.events);
    let verified = flotilla_transparency::bundle::verify(&bundle.json, &key).expect("verifies");
    assert_eq!(verified.entries as u64, gov.events);
    let mut doc: serde_json::Value = serde_json::from_slice(&bundle.json).expect("json");
    let with_event = doc["entries"]
        .as_array_mut()
        .expect("entries")
        .iter_mut()
        .find(|e| e.get("event").is_some())
        .expect("an entry with its event");
    with_event["event"]["actor"] = "mallory".into();
    let tampered = serde_json::to_vec(&doc).expect("json");
    assert!(flotilla_transparency::bundle::verify(&tampered, &key).is_err());

    // The audit report of a release: the approval request governance opened for it, cited
    // and proven against a signed checkpoint, as JSON and as a page a browser renders.
    let mut rm = GovernanceServiceClient::new(
        node.as_caller("rita", &["release-manager"], "retail")
            .await
            .expect("release manager"),
    );
    let facts = gv::ReleaseFacts {
        release: "till-1.0.0".into(),
        version: "1.0.0".into(),
        environment: "dev".into(),
        service: "till".into(),
        business_unit: "retail".into(),
        criticality_tier: 2,
        risk_score: 5,
        author: "alice".into(),
        ..Default::default()
    };
    let opened = rm
        .open_approval_request(gv::OpenApprovalRequestRequest {
            release: Some(facts),
            emergency: false,
        })
        .await
        .expect("open")
        .into_inner();
    let mut report = None;
    for _ in 0..300 {
        match ledger
            .get_audit_report(pb::GetAuditReportRequest {
                release: "till-1.0.0".into(),
                ..Default::default()
            })
            .await
        {
            Ok(r) => {
                report = Some(r.into_inner());
                break;
            }
            Err(s) if s.code() == tonic::Code::NotFound => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(s) => panic!("report: {s:?}"),
        }
    }
    let report = report.expect("a report once the approval request is ledgered");
    let doc: serde_json::Value = serde_json::from_str(&report.json).expect("json");
    let approvals = doc["sections"]
        .as_array()
        .expect("sections")
        .iter()
        .find(|s| {
            s["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("Approvals"))
        })
        .expect("an approvals section");
    let line = &approvals["lines"][0];
    assert_eq!(
        line["event_type"],
        "flotilla.governance.v1.ApprovalRequestOpened"
    );
    assert_eq!(line["actor"], "rita");
    assert!(
        line["fields"]
            .as_array()
            .expect("fields")
            .iter()
            .any(|f| f["value"] == opened.request_id),
        "{line}"
    );
    let report_cp =
        Checkpoint::open(&report.checkpoint, std::slice::from_ref(&key)).expect("signed");
    let leaf = hex::decode(line["leaf"].as_str().expect("leaf")).expect("hex");
    let hashes: Vec<[u8; 32]> = line["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|h| {
            let b = hex::decode(h.as_str().expect("hex")).expect("hex");
            <[u8; 32]>::try_from(b.as_slice()).expect("32 bytes")
        })
        .collect();
    let index = line["index"].as_u64().expect("index");
    verify_inclusion(
        index,
        report_cp.size,
        &leaf_hash(&leaf),
        &hashes,
        &report_cp.root,
    )
    .expect("the line is proven");
    assert_eq!(
        Leaf::decode(&leaf).expect("leaf").event_hash.to_vec(),
        hex::decode(line["event_hash"].as_str().expect("hash")).expect("hex")
    );
    // The page, as headless Chromium renders it: the release, the cited event, the checkpoint.
    let dir = tempfile::tempdir().expect("dir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, &report.html).expect("write");
    let chromium = std::env::var("FLOTILLA_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let dom = std::process::Command::new(&chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap_or_else(|e| {
            panic!("{chromium} does not run ({e}); scripts/services.sh installs it")
        });
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<span id=\"release\">till-1.0.0</span>"),
        "{dom}"
    );
    assert!(
        dom.contains(&format!(
            "data-hash=\"{}\"",
            line["event_hash"].as_str().expect("hash")
        )),
        "{dom}"
    );
    assert!(dom.contains(report_cp.origin.as_str()), "{dom}");

    // Replay: dependency-mapping's events in order, the ids its store gave them, resumable.
    let replayed: Vec<pb::ReplayedEvent> = ledger
        .replay(pb::ReplayRequest {
            services: vec!["dependency-mapping".into()],
            ..Default::default()
        })
        .await
        .expect("replay")
        .into_inner()
        .map(|r| r.expect("event"))
        .collect()
        .await;
    let in_store = store.read_all(1, 1000).await.expect("read");
    assert_eq!(
        replayed
            .iter()
            .map(|r| r.event.as_ref().expect("ce").id.clone())
            .collect::<Vec<_>>(),
        in_store
            .iter()
            .map(|e| e.event_id.0.to_string())
            .collect::<Vec<_>>()
    );
    let resumed: Vec<pb::ReplayedEvent> = ledger
        .replay(pb::ReplayRequest {
            services: vec!["dependency-mapping".into()],
            from_index: replayed[1].index + 1,
            limit: 1,
            ..Default::default()
        })
        .await
        .expect("replay")
        .into_inner()
        .map(|r| r.expect("event"))
        .collect()
        .await;
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].index, replayed[2].index);
    // Replay is the auditors' and compliance officers': a developer is refused.
    let dev = node
        .as_caller("dev", &["developer"], "retail")
        .await
        .expect("dev");
    let refused = ComplianceServiceClient::new(dev)
        .replay(pb::ReplayRequest::default())
        .await
        .expect_err("refused");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    // An insider rewrites dependency-mapping's store from its second event on, consistently.
    node.stop().await.expect("stop");
    let catalog_head = store.head().await.expect("head").position;
    let original_head = store
        .read_all(catalog_head, 1)
        .await
        .expect("read")
        .remove(0)
        .hash;
    rewrite_consistently(&deployment, "dependency-mapping", 2).await;
    let node = deployment.start(&SERVICES).await.expect("restart");
    let admin = node
        .as_caller("ops", &["admin"], "central")
        .await
        .expect("admin");
    // The service's own check passes (the chain is consistent): it serves, and records more.
    register(&admin, "payments").await;
    let mut ledger = ComplianceServiceClient::new(
        node.as_caller("aud", &["auditor"], "central")
            .await
            .expect("auditor"),
    );
    let mut alerts = Vec::new();
    for _ in 0..300 {
        alerts = ledger
            .list_chain_alerts(pb::ListChainAlertsRequest {
                service: "dependency-mapping".into(),
            })
            .await
            .expect("alerts")
            .into_inner()
            .alerts;
        if !alerts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mismatch = alerts
        .iter()
        .find(|a| a.kind == pb::AlertKind::Mismatch as i32)
        .unwrap_or_else(|| panic!("no mismatch alerted: {alerts:?}"));
    assert_eq!(mismatch.sequence, catalog_head + 1);
    assert_eq!(mismatch.expected, Hash::to_hex(&original_head));

    // The ledger only grew: the old checkpoint is consistent with a new one.
    let mut officer = ComplianceServiceClient::new(
        node.as_caller("cora", &["compliance-officer"], "central")
            .await
            .expect("officer"),
    );
    let second = newest_checkpoint(&mut officer, cp.size + 1).await;
    let c = ledger
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first: cp.size,
            second: second.size,
        })
        .await
        .expect("consistency")
        .into_inner();
    let second_cp =
        Checkpoint::open(&c.second_checkpoint, std::slice::from_ref(&key)).expect("signed");
    let hashes: Vec<[u8; 32]> = c
        .hashes
        .iter()
        .map(|h| <[u8; 32]>::try_from(h.as_slice()).expect("32 bytes"))
        .collect();
    verify_consistency(cp.size, second_cp.size, &hashes, &cp.root, &second_cp.root)
        .expect("consistent");
    node.stop().await.expect("stop");
}

/// Over Kafka (three partitions keyed by stream: a service's events arrive out of order across
/// streams) the ledger still links every position; and what Replay gives is what a plain Kafka
/// consumer of `<namespace>.dependency-mapping.events` and a plain NATS consumer of its
/// JetStream stream got: the same events, by the same CloudEvents ids, with the same data.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_kafka_the_ledger_links_and_replays_what_both_buses_carried() {
    let mut deployment = Deployment::new(vec![BusKind::Kafka, BusKind::Nats]).expect("deployment");
    settings(&mut deployment);
    let ns = deployment.config.namespace.clone();
    let node = deployment.start(&SERVICES).await.expect("start");
    let admin = node
        .as_caller("ops", &["admin"], "central")
        .await
        .expect("admin");
    for name in ["till", "basket", "checkout", "loyalty", "receipts"] {
        register(&admin, name).await;
    }
    let mut ledger = ComplianceServiceClient::new(
        node.as_caller("aud", &["auditor"], "central")
            .await
            .expect("auditor"),
    );
    for s in ledgered(&admin, &mut ledger).await {
        assert_eq!((s.waiting, s.alerts), (0, 0), "{s:?}");
    }
    let replayed: Vec<pb::ReplayedEvent> = ledger
        .replay(pb::ReplayRequest {
            services: vec!["dependency-mapping".into()],
            ..Default::default()
        })
        .await
        .expect("replay")
        .into_inner()
        .map(|r| r.expect("event"))
        .collect()
        .await;
    let mut ours: Vec<(String, Vec<u8>)> = replayed
        .iter()
        .map(|r| {
            let ce = r.event.clone().expect("ce");
            (ce.id, ce.data)
        })
        .collect();
    ours.sort();
    let kafka = flotilla_tests::probe::kafka_messages(
        &format!("{ns}.dependency-mapping.events"),
        ours.len(),
    )
    .await;
    let mut on_kafka: Vec<(String, Vec<u8>)> = kafka
        .iter()
        .map(|m| (m.headers["ce_id"].clone(), m.data.clone()))
        .collect();
    on_kafka.sort();
    on_kafka.dedup();
    let stream = format!("{ns}_dependency_mapping").to_ascii_uppercase();
    let nats = flotilla_tests::probe::nats_messages(&stream, ours.len()).await;
    let mut on_nats: Vec<(String, Vec<u8>)> = nats
        .iter()
        .map(|m| (m.headers["ce-id"].clone(), m.data.clone()))
        .collect();
    on_nats.sort();
    on_nats.dedup();
    assert_eq!(ours, on_kafka, "replay and the Kafka topic");
    assert_eq!(ours, on_nats, "replay and the NATS stream");
    node.stop().await.expect("stop");
}
