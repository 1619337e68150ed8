//! Checkpoints, proofs, bundles and replay, checked with the transparency crate's verifiers
//! only; and an insider's consistent rewrite of a store, caught by the ledger.

use std::time::Duration;

use flotilla_core::chain::Hash;
use flotilla_proto::common::v1::GetStatusRequest;
use flotilla_proto::compliance::v1 as pb;
use flotilla_proto::compliance::v1::compliance_service_client::ComplianceServiceClient;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::config::BusKind;
use flotilla_tests::Deployment;
use flotilla_transparency::checkpoint::Checkpoint;
use flotilla_transparency::ledger::Leaf;
use flotilla_transparency::merkle::{leaf_hash, verify_consistency, verify_inclusion};

use crate::support::*;

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
    let key = verifier_key(&mut ledger).await;
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
    let hashes = proof_hashes(&proof.hashes);
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
    // Every governance event below the checkpoint (governance may have recorded more since
    // the sources were read: it takes the catalog's events too).
    let below = replay_all(
        &mut ledger,
        pb::ReplayRequest {
            services: vec!["governance".into()],
            ..Default::default()
        },
    )
    .await
    .iter()
    .filter(|r| r.index < cp.size)
    .count() as u64;
    assert!(below >= gov.events);
    assert_eq!(bundle.entries, below);
    let verified = flotilla_transparency::bundle::verify(&bundle.json, &key).expect("verifies");
    assert_eq!(verified.entries as u64, below);
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

    // Replay: dependency-mapping's events in order, the ids its store gave them, resumable.
    let replayed: Vec<pb::ReplayedEvent> = replay_all(
        &mut ledger,
        pb::ReplayRequest {
            services: vec!["dependency-mapping".into()],
            ..Default::default()
        },
    )
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
    let resumed: Vec<pb::ReplayedEvent> = replay_all(
        &mut ledger,
        pb::ReplayRequest {
            services: vec!["dependency-mapping".into()],
            from_index: replayed[1].index + 1,
            limit: 1,
            ..Default::default()
        },
    )
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
    let hashes = proof_hashes(&c.hashes);
    verify_consistency(cp.size, second_cp.size, &hashes, &cp.root, &second_cp.root)
        .expect("consistent");
    node.stop().await.expect("stop");
}
