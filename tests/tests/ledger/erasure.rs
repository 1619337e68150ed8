//! Crypto-shredding across services, on PostgreSQL and NATS: a ticket's reporter and every
//! caller are stored, published and ledgered only sealed; answers reveal them; a legal hold
//! refuses an erasure; once a subject is erased every answer shows their placeholder, while
//! every store's chain and the ledger's proofs still verify over the unchanged bytes.

use std::time::Duration;

use flotilla_proto::compliance::v1 as pb;
use flotilla_proto::compliance::v1::compliance_service_client::ComplianceServiceClient;
use flotilla_proto::monitoring::v1 as mon;
use flotilla_proto::monitoring::v1::monitoring_service_client::MonitoringServiceClient;
use flotilla_runtime::config::BusKind;
use flotilla_tests::Deployment;
use flotilla_transparency::merkle::{leaf_hash, verify_consistency, verify_inclusion};

use crate::support::*;

const REPORTER: &str = "zoe.customer@example.com";
const AGENT: &str = "erin.agent@bank.example";

fn ticket() -> mon::Ticket {
    mon::Ticket {
        ticket_id: "INC-77".into(),
        service: "till".into(),
        business_unit: "retail".into(),
        severity: mon::Severity::Sev3 as i32,
        summary: "receipt printed twice".into(),
        opened_at: Some(prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 0,
        }),
        reporter: REPORTER.into(),
        ..Default::default()
    }
}

/// The ledger's replay of monitoring's ticket events.
async fn tickets_replayed(ledger: &mut ComplianceServiceClient<Channel>) -> Vec<pb::ReplayedEvent> {
    replay_all(
        ledger,
        pb::ReplayRequest {
            services: vec!["monitoring".into()],
            event_types: vec!["flotilla.monitoring.v1.TicketRecorded".into()],
            ..Default::default()
        },
    )
    .await
}

fn root(c: &pb::CheckpointSigned) -> [u8; 32] {
    <[u8; 32]>::try_from(c.root.as_slice()).expect("a 32-byte root")
}

/// The ticket's reporter as the ledger's point-in-time answer shows it.
async fn reporter_shown(ledger: &mut ComplianceServiceClient<Channel>) -> Option<String> {
    let state = ledger
        .get_state_at(pb::GetStateAtRequest {
            // Monitoring keeps one stream; the ticket is found by its id.
            aggregate: "monitoring-watches".into(),
            key: "INC-77".into(),
            service: "monitoring".into(),
            at: None,
        })
        .await
        .ok()?
        .into_inner();
    state.states.iter().flat_map(|s| &s.fields).find_map(|f| {
        (f.name == "ticket.reporter").then(|| f.values.first().cloned().unwrap_or_default())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_erased_subject_is_unreadable_everywhere_and_every_proof_still_holds() {
    let mut deployment = Deployment::new(vec![BusKind::Nats]).expect("deployment");
    settings(&mut deployment);
    let node = deployment
        .start(&["dependency-mapping", "monitoring", "compliance"])
        .await
        .expect("start");
    let admin = node
        .as_caller("ops", &["admin"], "central")
        .await
        .expect("admin");
    register(&admin, "till").await;
    let agent = node
        .as_caller(AGENT, &["service-owner"], "retail")
        .await
        .expect("agent");
    let mut monitoring = MonitoringServiceClient::new(agent);
    // Monitoring learns the catalog from dependency-mapping's events.
    let mut recorded = None;
    for _ in 0..100 {
        match monitoring
            .record_ticket(mon::RecordTicketRequest {
                ticket: Some(ticket()),
            })
            .await
        {
            Ok(t) => {
                recorded = Some(t.into_inner());
                break;
            }
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(s) => panic!("record ticket: {s:?}"),
        }
    }
    let recorded = recorded.expect("the ticket was recorded");
    assert_eq!(
        recorded.reporter, REPORTER,
        "the answer reveals the reporter"
    );

    // At rest and on the bus: tokens only, never the people.
    let store = deployment.store("monitoring").await.expect("store");
    let events = store.read_all(1, 10_000).await.expect("read");
    let ticket_event = events
        .iter()
        .find(|e| e.event_type == "flotilla.monitoring.v1.TicketRecorded")
        .expect("the ticket's event");
    let raw = String::from_utf8_lossy(&ticket_event.payload).into_owned();
    assert!(!raw.contains("zoe"), "{raw}");
    assert!(raw.contains("pii:v1:"), "{raw}");
    assert!(ticket_event.metadata.actor.starts_with("pii:v1:"));
    assert!(!ticket_event.metadata.actor.contains("erin"));

    // Nobody gets someone's token revealed by sending it back in a field.
    let mut smuggled = ticket();
    smuggled.ticket_id = "INC-78".into();
    smuggled.summary = format!("see {}", ticket_event.metadata.actor);
    let refused = monitoring
        .record_ticket(mon::RecordTicketRequest {
            ticket: Some(smuggled),
        })
        .await
        .expect_err("a token in a request");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(
        refused
            .message()
            .contains("may not carry sealed personal data"),
        "{refused:?}"
    );

    // The ledger has it; answers through compliance reveal it.
    let auditor = node
        .as_caller("aud", &["auditor"], "central")
        .await
        .expect("auditor");
    let mut ledger = ComplianceServiceClient::new(auditor);
    let mut shown = None;
    for _ in 0..100 {
        shown = reporter_shown(&mut ledger).await;
        if shown.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shown.as_deref(), Some(REPORTER));
    let replayed = tickets_replayed(&mut ledger).await;
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].actor, AGENT, "the replay shows who, revealed");
    let data_before = replayed[0].event.as_ref().expect("event").data.clone();
    assert_eq!(
        data_before, ticket_event.payload,
        "the replay carries the sealed bytes"
    );

    let mut officer = ComplianceServiceClient::new(
        node.as_caller("cora", &["compliance-officer"], "central")
            .await
            .expect("officer"),
    );
    let before = newest_checkpoint(&mut officer, 1).await;

    // A legal hold on the agent's data refuses erasing them; the reporter is not held.
    officer
        .place_legal_hold(pb::PlaceLegalHoldRequest {
            hold: Some(pb::LegalHold {
                id: "hold-doe".into(),
                matter: "Doe v. Bank".into(),
                subjects: vec![AGENT.into()],
                ..Default::default()
            }),
        })
        .await
        .expect("hold");
    let held = officer
        .erase_subject(pb::EraseSubjectRequest {
            subject: AGENT.into(),
            reason: "GDPR art. 17 request".into(),
            request_ref: "DSR-1".into(),
        })
        .await
        .expect_err("held");
    assert_eq!(held.code(), tonic::Code::FailedPrecondition);
    assert!(
        held.message().contains("legal hold hold-doe"),
        "{}",
        held.message()
    );
    // Only compliance officers erase.
    let refused = ledger
        .erase_subject(pb::EraseSubjectRequest {
            subject: REPORTER.into(),
            reason: "x".into(),
            request_ref: String::new(),
        })
        .await
        .expect_err("an auditor may not erase");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    let erased = officer
        .erase_subject(pb::EraseSubjectRequest {
            subject: REPORTER.into(),
            reason: "GDPR art. 17 request".into(),
            request_ref: "DSR-2".into(),
        })
        .await
        .expect("erased")
        .into_inner();
    assert_eq!(erased.erased_by, "cora", "who erased is revealed");
    assert!(!erased.subject_key.is_empty());

    // Everywhere: the placeholder, the same stored bytes.
    let placeholder = format!("[erased:{}]", &erased.subject_key[..16]);
    assert_eq!(
        reporter_shown(&mut ledger).await.as_deref(),
        Some(placeholder.as_str())
    );
    let again = tickets_replayed(&mut ledger).await;
    assert_eq!(again[0].event.as_ref().expect("event").data, data_before);
    assert_eq!(again[0].actor, AGENT, "the agent was not erased");
    let after = store.read_all(1, 10_000).await.expect("read");
    assert_eq!(
        after.iter().find(|e| e.event_id == ticket_event.event_id),
        Some(ticket_event),
        "no stored byte changed"
    );
    let gone = officer
        .erase_subject(pb::EraseSubjectRequest {
            subject: REPORTER.into(),
            reason: "again".into(),
            request_ref: String::new(),
        })
        .await
        .expect_err("nothing left");
    assert_eq!(gone.code(), tonic::Code::NotFound);

    // Every chain verifies; the ledger's proofs hold across the erasure.
    for service in ["dependency-mapping", "monitoring", "compliance"] {
        let report = deployment
            .store(service)
            .await
            .expect("store")
            .verify(&|_| {})
            .await
            .expect("verify");
        assert!(report.holds(), "{service}: {report:?}");
    }
    // The ledger grows after the erasure (compliance does not ledger its own events).
    register(&admin, "basket").await;
    let after_cp = newest_checkpoint(&mut officer, before.size + 1).await;
    let consistency = officer
        .get_consistency_proof(pb::GetConsistencyProofRequest {
            first: before.size,
            second: after_cp.size,
        })
        .await
        .expect("consistency")
        .into_inner();
    verify_consistency(
        before.size,
        after_cp.size,
        &proof_hashes(&consistency.hashes),
        &root(&before),
        &root(&after_cp),
    )
    .expect("consistent across the erasure");
    let inclusion = officer
        .get_inclusion_proof(pb::GetInclusionProofRequest {
            event: Some(pb::get_inclusion_proof_request::Event::EventId(
                ticket_event.event_id.0.to_string(),
            )),
            tree_size: after_cp.size,
        })
        .await
        .expect("inclusion")
        .into_inner();
    verify_inclusion(
        inclusion.index,
        after_cp.size,
        &leaf_hash(&inclusion.leaf),
        &proof_hashes(&inclusion.hashes),
        &root(&after_cp),
    )
    .expect("the ticket's event is still proven");
    let retention = officer
        .get_retention(pb::GetRetentionRequest {})
        .await
        .expect("retention")
        .into_inner();
    assert_eq!(retention.erasures.len(), 1);
    assert_eq!(retention.holds.len(), 1);
    assert!(retention.subjects_seen >= 2, "{retention:?}");
    node.stop().await.expect("stop");
}
