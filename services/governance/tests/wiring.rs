//! Governance as a node wires it (TestServer runs its consumers, relay and tasks): one app per
//! process, so an event its consumer applied is in the very next gRPC answer; reads answer from
//! memory even while the store cannot be read; a malformed command id is refused, not ignored.

use std::sync::Arc;
use std::time::Duration;

use flotilla_bus::Publisher;
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_core::{ExpectedVersion, MemoryStore};
use flotilla_governance::GovernanceModule;
use flotilla_governance::inbound::{RISK_ASSESSED, SERVICE_REGISTERED};
use flotilla_proto::governance::v1 as pb;
use flotilla_runtime::testkit::{ReadsSwitch, TestServer};
use prost::Message;
use tonic::Code;

mod support;
use support::*;

/// What risk-validation and dependency-mapping would have published, as their relays do.
async fn publish_from(server: &TestServer, service: &str, events: Vec<NewEvent>) -> usize {
    let source: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    source
        .append(AppendRequest::new(
            StreamId::new_for("source"),
            ExpectedVersion::NoStream,
            events,
        ))
        .await
        .expect("append");
    let recorded = source.read_all(1, 100).await.expect("read");
    let out = flotilla_bus::conformance::outgoing(&**server.bus(), service, &recorded);
    server.bus().publish(service, &out).await.expect("publish");
    out.len()
}

async fn acknowledged(server: &TestServer, service: &str, count: usize) {
    for _ in 0..500 {
        if server.bus().acknowledged(service, "governance") >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("governance's consumer never acknowledged {count} events of {service}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumed_assessment_is_in_the_next_grpc_answer() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let server = TestServer::start(&GovernanceModule, store.clone()).await;
    let ch = server.channel().await;
    let catalog = flotilla_proto::dependency::v1::ServiceRegistered {
        service: Some(flotilla_proto::dependency::v1::ServiceEntry {
            name: "ledger".into(),
            owner_team: "core-banking".into(),
            business_unit: "finance".into(),
            criticality_tier: 2,
            handles_personal_data: false,
            data_classification: 2,
            runtime: 1,
        }),
    };
    let n = publish_from(
        &server,
        "dependency-mapping",
        vec![NewEvent::new(
            SERVICE_REGISTERED,
            1,
            catalog.encode_to_vec(),
            Metadata::by("importer", "finance"),
        )],
    )
    .await;
    acknowledged(&server, "dependency-mapping", n).await;
    let assessed = flotilla_proto::risk::v1::RiskAssessed {
        assessment_id: "a1".into(),
        release: "r7".into(),
        version: "3.1.0".into(),
        environment: "prod".into(),
        service: "ledger".into(),
        business_unit: "finance".into(),
        criticality_tier: 2,
        risk_score: 20,
        handles_personal_data: false,
        author: "ann".into(),
        committers: vec![],
        assessed_at: Some(ts(now_secs())),
        emergency: false,
        ..Default::default()
    };
    let n = publish_from(
        &server,
        "risk-validation",
        vec![NewEvent::new(
            RISK_ASSESSED,
            1,
            assessed.encode_to_vec(),
            Metadata::by("risk", "finance"),
        )],
    )
    .await;
    acknowledged(&server, "risk-validation", n).await;
    // At once, no waiting: the consumer's app is the one that answers.
    let r = gov(&ch, "fay", &["release-manager"], "finance")
        .get_approval_request(pb::GetApprovalRequestRequest {
            release: "r7".into(),
            environment: "prod".into(),
        })
        .await
        .expect("the request the assessment opened")
        .into_inner();
    assert!(r.risk_assessed);
    assert_eq!(r.release.map(|f| f.criticality_tier), Some(2));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_from_memory_without_the_store() {
    let switch = ReadsSwitch::over(Arc::new(MemoryStore::new()));
    let store: Arc<dyn EventStore> = switch.clone();
    seed_catalog(&store).await;
    let server = TestServer::start(&GovernanceModule, store).await;
    let ch = server.channel().await;
    let mut rm = gov(&ch, "rita", &["release-manager"], "payments");
    rm.open_approval_request(pb::OpenApprovalRequestRequest {
        release: Some(facts("r1", "payments", 3, 10, false)),
        emergency: false,
    })
    .await
    .expect("open");
    switch.refuse_reads(true);
    let before = switch
        .refused_reads
        .load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..20 {
        let d = rm
            .check_gate(gate("r1", now_secs()))
            .await
            .expect("gate")
            .into_inner();
        assert!(!d.allowed);
        rm.get_approval_request(pb::GetApprovalRequestRequest {
            release: "r1".into(),
            environment: "prod".into(),
        })
        .await
        .expect("request");
        rm.list_approval_requests(pb::ListApprovalRequestsRequest::default())
            .await
            .expect("list");
        rm.get_policy(pb::GetPolicyRequest { version: 0 })
            .await
            .expect("policy");
    }
    // Only the background follower may have tried the store (its poll), not the 80 reads.
    let tried = switch
        .refused_reads
        .load(std::sync::atomic::Ordering::SeqCst)
        - before;
    assert!(tried < 20, "{tried} store reads during 80 answered queries");
    switch.refuse_reads(false);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_command_id_is_refused() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    seed_catalog(&store).await;
    let server = TestServer::start(&GovernanceModule, store.clone()).await;
    let ch = server.channel().await;
    let mut rm = gov(&ch, "rita", &["release-manager"], "payments");
    let mut req = tonic::Request::new(pb::OpenApprovalRequestRequest {
        release: Some(facts("r1", "payments", 3, 10, false)),
        emergency: false,
    });
    req.metadata_mut().insert(
        "x-flotilla-command-id",
        "retry-me-please".parse().expect("header"),
    );
    let e = code(rm.open_approval_request(req).await);
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("x-flotilla-command-id"), "{e:?}");
    assert_eq!(
        events_of(&store, "flotilla.governance.v1.ApprovalRequestOpened").await,
        0,
        "nothing was opened"
    );
    // A well-formed one makes the call retryable: the retry opens nothing twice.
    let id = uuid::Uuid::now_v7().to_string();
    for _ in 0..2 {
        let mut req = tonic::Request::new(pb::OpenApprovalRequestRequest {
            release: Some(facts("r1", "payments", 3, 10, false)),
            emergency: false,
        });
        req.metadata_mut()
            .insert("x-flotilla-command-id", id.parse().expect("header"));
        rm.open_approval_request(req).await.expect("open");
    }
    assert_eq!(
        events_of(&store, "flotilla.governance.v1.ApprovalRequestOpened").await,
        1
    );
    server.stop().await;
}

/// The deadline scheduler is one of governance's tasks: it runs under the node (here the
/// TestServer) on the tick its `[governance]` section sets, without anyone calling
/// ProcessDeadlines.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_runs_on_the_tick_of_its_section() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    seed_catalog(&store).await;
    let mut ctx = TestServer::context(&GovernanceModule, store.clone());
    let mut config = flotilla_runtime::Config::default();
    let mut section = toml::Table::new();
    section.insert("deadline_tick_secs".into(), toml::Value::Integer(1));
    config.sections.insert("governance".into(), section);
    ctx.config = Arc::new(config);
    let server = TestServer::start_with(&GovernanceModule, ctx).await;
    let ch = server.channel().await;
    // An assessment made 25 hours ago: its request's decision deadline (24 h) has passed.
    let assessed = flotilla_proto::risk::v1::RiskAssessed {
        assessment_id: "a1".into(),
        release: "r9".into(),
        version: "1.0.0".into(),
        environment: "prod".into(),
        service: service("payments", 3, false),
        business_unit: "payments".into(),
        criticality_tier: 3,
        risk_score: 10,
        handles_personal_data: false,
        author: "ann".into(),
        committers: vec![],
        assessed_at: Some(ts(now_secs() - 25 * 3600)),
        emergency: false,
        ..Default::default()
    };
    let n = publish_from(
        &server,
        "risk-validation",
        vec![NewEvent::new(
            RISK_ASSESSED,
            1,
            assessed.encode_to_vec(),
            Metadata::by("risk", "payments"),
        )],
    )
    .await;
    acknowledged(&server, "risk-validation", n).await;
    let mut escalated = false;
    for _ in 0..100 {
        let r = gov(&ch, "rita", &["release-manager"], "payments")
            .get_approval_request(pb::GetApprovalRequestRequest {
                release: "r9".into(),
                environment: "prod".into(),
            })
            .await
            .expect("request")
            .into_inner();
        if r.escalated {
            escalated = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(escalated, "escalated by the scheduler within seconds");
    assert_eq!(
        events_of(&store, "flotilla.governance.v1.ApprovalEscalated").await,
        1
    );
    server.stop().await;
}
