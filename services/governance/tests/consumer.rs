//! Governance consumes dependency-mapping's `ServiceRegistered` (the facts of a service),
//! risk-validation's `RiskAssessed` (opens approval requests) and monitoring's
//! `RollbackThresholdBreached` (opens rollback decisions) through a bus; a redelivered event is
//! applied once, and the scheduler flags a decision not taken in time.

use std::sync::Arc;

use flotilla_bus::inprocess::InProcessBus;
use flotilla_bus::{Publisher, Subscriber};
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_core::{ExpectedVersion, MemoryStore};
use flotilla_governance::GovernanceModule;
use flotilla_governance::app::GovernanceApp;
use flotilla_governance::domain::{ReleaseEnv, RollbackStatus, Timestamp};
use flotilla_governance::inbound::{RISK_ASSESSED, SERVICE_REGISTERED, THRESHOLD_BREACHED};
use flotilla_proto::monitoring::v1::RollbackThresholdBreached;
use flotilla_proto::risk::v1::RiskAssessed;
use flotilla_runtime::testkit::{TestServer, run_task};
use prost::Message;

#[tokio::test]
async fn assessments_and_breaches_open_requests_and_decisions_once() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let (app, follower) =
        GovernanceApp::start(&TestServer::context(&GovernanceModule, store.clone()))
            .await
            .expect("start");
    let _following = run_task(follower);
    let at = prost_types::Timestamp {
        seconds: 1_790_000_000,
        nanos: 0,
    };
    let risk = RiskAssessed {
        assessment_id: "a1".into(),
        release: "r7".into(),
        version: "3.1.0".into(),
        environment: "prod".into(),
        service: "ledger".into(),
        business_unit: "finance".into(),
        criticality_tier: 1,
        risk_score: 75,
        handles_personal_data: true,
        author: "ann".into(),
        committers: vec!["cid".into()],
        assessed_at: Some(at),
        emergency: false,
        ..Default::default()
    };
    let breach = RollbackThresholdBreached {
        breach_id: "b1".into(),
        release: "r7".into(),
        environment: "prod".into(),
        service: "ledger".into(),
        business_unit: "finance".into(),
        criticality_tier: 2,
        metric: "error_rate".into(),
        observed: 0.12,
        threshold: 0.05,
        observed_at: Some(at),
        ..Default::default()
    };
    // The catalog's word on ledger comes first, through dependency-mapping's stream, twice.
    let catalog: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    catalog
        .append(AppendRequest::new(
            StreamId::parse("dependency-catalog").expect("id"),
            ExpectedVersion::NoStream,
            vec![NewEvent::new(
                SERVICE_REGISTERED,
                1,
                flotilla_proto::dependency::v1::ServiceRegistered {
                    service: Some(flotilla_proto::dependency::v1::ServiceEntry {
                        name: "ledger".into(),
                        owner_team: "core-banking".into(),
                        business_unit: "finance".into(),
                        criticality_tier: 1,
                        handles_personal_data: true,
                        data_classification: 3,
                        runtime: 1,
                    }),
                }
                .encode_to_vec(),
                Metadata::by("importer", "finance"),
            )],
        ))
        .await
        .expect("append");
    let bus = InProcessBus::new();
    let registered = catalog.read_all(1, 10).await.expect("read");
    let out = flotilla_bus::conformance::outgoing(&bus, "dependency-mapping", &registered);
    bus.publish("dependency-mapping", &out)
        .await
        .expect("publish");
    bus.publish("dependency-mapping", &out)
        .await
        .expect("publish again");
    let mut from_catalog = bus
        .subscribe("dependency-mapping", "governance")
        .await
        .expect("subscribe");
    let mut learnt = 0;
    for _ in 0..2 {
        let d = from_catalog.next().await.expect("delivery");
        if app.on_event(&d.event).await.expect("applied") {
            learnt += 1;
        }
        d.ack().await.expect("ack");
    }
    assert_eq!(learnt, 1, "the catalog's event is recorded once");
    assert_eq!(app.query(|g| g.catalog["ledger"].tier), 1);

    let source: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let bad = NewEvent::new(
        RISK_ASSESSED,
        1,
        vec![0xff, 0xff, 0xff],
        Metadata::by("risk", "finance"),
    );
    source
        .append(AppendRequest::new(
            StreamId::new_for("assessment"),
            ExpectedVersion::NoStream,
            vec![
                NewEvent::new(
                    RISK_ASSESSED,
                    1,
                    risk.encode_to_vec(),
                    Metadata::by("risk", "finance"),
                ),
                NewEvent::new(
                    THRESHOLD_BREACHED,
                    1,
                    breach.encode_to_vec(),
                    Metadata::by("monitoring", "finance"),
                ),
                bad,
            ],
        ))
        .await
        .expect("append");
    let recorded = source.read_all(1, 100).await.expect("read");
    bus.publish(
        "risk-validation",
        &flotilla_bus::conformance::outgoing(&bus, "risk-validation", &recorded),
    )
    .await
    .expect("publish");
    bus.publish(
        "risk-validation",
        &flotilla_bus::conformance::outgoing(&bus, "risk-validation", &recorded),
    )
    .await
    .expect("publish again");
    let mut deliveries = bus
        .subscribe("risk-validation", "governance")
        .await
        .expect("subscribe");
    let mut applied = 0;
    let mut rejected = 0;
    for _ in 0..recorded.len() * 2 {
        let d = deliveries.next().await.expect("delivery");
        match app.on_event(&d.event).await {
            Ok(true) => applied += 1,
            Ok(false) => {}
            Err(_) => rejected += 1,
        }
        d.ack().await.expect("ack");
    }
    assert_eq!(applied, 2, "one request and one decision, each once");
    assert_eq!(
        rejected, 2,
        "the undecodable event is refused on each delivery"
    );
    let key = ReleaseEnv {
        release: "r7".into(),
        environment: "prod".into(),
    };
    let roles = app.query(|g| {
        g.requests[&key]
            .requirements
            .iter()
            .map(|q| q.role.clone())
            .collect::<Vec<_>>()
    });
    assert_eq!(
        roles,
        vec![
            "business",
            "cab",
            "peer-review",
            "security",
            "service-owner"
        ]
    );
    let (decide_by, notify) = app.query(|g| {
        let d = g.rollbacks.values().next().expect("decision");
        (d.decide_by, d.notify.clone())
    });
    assert_eq!(
        decide_by.0,
        1_790_000_000 * 1_000_000 + 15 * 60_000_000,
        "the release is tier 1 (the breach said 2): 15 minutes"
    );
    assert!(notify.contains(&"release-manager".to_owned()));
    // Nobody decided in time: the scheduler records it once.
    let report = app
        .process_deadlines(Timestamp(decide_by.0 + 1), Metadata::by("scheduler", ""))
        .await
        .expect("deadlines");
    assert_eq!(report.rollbacks_overdue, 1);
    let again = app
        .process_deadlines(Timestamp(decide_by.0 + 2), Metadata::by("scheduler", ""))
        .await
        .expect("deadlines");
    assert_eq!(again.rollbacks_overdue, 0);
    let all = store.read_all(1, 100).await.expect("read");
    assert_eq!(
        all.iter()
            .filter(|e| e.event_type == "flotilla.governance.v1.RollbackDecisionOverdue")
            .count(),
        1
    );
    assert!(app.query(|g| {
        g.rollbacks
            .values()
            .all(|d| d.overdue && d.status == RollbackStatus::Pending)
    }));
    // A rebuilt app from the same store knows the same.
    let (rebuilt, _) = GovernanceApp::start(&TestServer::context(&GovernanceModule, store.clone()))
        .await
        .expect("rebuilt");
    let at_check = Timestamp(1_790_000_000 * 1_000_000);
    assert_eq!(
        rebuilt.check_gate(&key, at_check, None),
        app.check_gate(&key, at_check, None)
    );
}
