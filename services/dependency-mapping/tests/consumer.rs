//! Dependency-mapping consumes orchestration's `DeploymentFinished` through a bus: footprints
//! follow succeeded and rolled-back deployments, failed ones change nothing, and a redelivered
//! event is applied once.

use std::sync::Arc;

use flotilla_bus::inprocess::InProcessBus;
use flotilla_bus::{Publisher, Subscriber};
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, Direction, EventStore};
use flotilla_core::{ExpectedVersion, MemoryStore};
use flotilla_dependency_mapping::DependencyMappingModule;
use flotilla_dependency_mapping::app::CatalogApp;
use flotilla_dependency_mapping::domain::*;
use flotilla_dependency_mapping::inbound::DEPLOYMENT_FINISHED;
use flotilla_proto::orchestration::v1::{DeploymentFinished, DeploymentOutcome};
use flotilla_runtime::testkit::{TestServer, run_task};
use prost::Message;

#[tokio::test]
async fn deployments_update_footprints_once() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let (app, follower) = CatalogApp::start(&TestServer::context(
        &DependencyMappingModule,
        store.clone(),
    ))
    .await
    .expect("start");
    let _following = run_task(follower);
    let spec = ServiceSpec {
        name: ServiceName::parse("checkout").expect("name"),
        owner_team: "shop".into(),
        business_unit: "retail".into(),
        tier: Tier::new(1).expect("tier"),
        handles_personal_data: true,
        classification: DataClassification::Confidential,
        runtime: RuntimeKind::Microservice,
    };
    app.execute(
        Command::RegisterService(spec),
        Metadata::by("test", "retail"),
    )
    .await
    .expect("register");

    // Orchestration's store and relay, on the in-process bus.
    let orchestration: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let deployment = |version: &str, outcome: DeploymentOutcome, secs: i64| {
        let payload = DeploymentFinished {
            deployment_id: uuid::Uuid::now_v7().to_string(),
            release_id: "release-1".into(),
            environment: "prod".into(),
            service: "checkout".into(),
            version: version.into(),
            outcome: outcome as i32,
            started_at: None,
            finished_at: Some(prost_types::Timestamp {
                seconds: secs,
                nanos: 0,
            }),
            deployed_by: "deployer@example.com".into(),
            ..Default::default()
        }
        .encode_to_vec();
        NewEvent::new(
            DEPLOYMENT_FINISHED,
            1,
            payload,
            Metadata::by("orchestration", "retail"),
        )
    };
    let events = vec![
        deployment("1.0.0", DeploymentOutcome::Succeeded, 100),
        deployment("1.1.0", DeploymentOutcome::Failed, 200),
        deployment("1.2.0", DeploymentOutcome::Succeeded, 300),
        deployment("1.0.0", DeploymentOutcome::RolledBack, 400),
    ];
    orchestration
        .append(AppendRequest::new(
            StreamId::new_for("deployment"),
            ExpectedVersion::NoStream,
            events,
        ))
        .await
        .expect("append");
    let recorded = orchestration.read_all(1, 100).await.expect("read");
    let bus = InProcessBus::new();
    // At least once: the relay published everything twice.
    bus.publish(
        "orchestration",
        &flotilla_bus::conformance::outgoing(&bus, "orchestration", &recorded),
    )
    .await
    .expect("publish");
    bus.publish(
        "orchestration",
        &flotilla_bus::conformance::outgoing(&bus, "orchestration", &recorded),
    )
    .await
    .expect("publish again");

    let mut deliveries = bus
        .subscribe("orchestration", "dependency-mapping")
        .await
        .expect("subscribe");
    let mut changed = 0;
    for _ in 0..recorded.len() * 2 {
        let d = deliveries.next().await.expect("delivery");
        if app.on_event(&d.event).await.expect("apply") {
            changed += 1;
        }
        d.ack().await.expect("ack");
    }
    assert_eq!(changed, 3, "two successes and a rollback, each once");
    let footprint = app.query(|c| c.footprint("prod", None));
    assert_eq!(
        footprint
            .get(&ServiceName::parse("checkout").expect("name"))
            .map(|v| v.to_string())
            .as_deref(),
        Some("1.0.0")
    );
    let as_of = app.query(|c| c.footprint("prod", Some(Timestamp(350 * 1_000_000))));
    assert_eq!(
        as_of.values().next().map(|v| v.to_string()).as_deref(),
        Some("1.2.0")
    );
    let stream = StreamId::parse(CATALOG_STREAM).expect("stream");
    let catalog_events = store
        .read_stream(&stream, None, Direction::Forwards, 100)
        .await
        .expect("read");
    assert_eq!(
        catalog_events
            .iter()
            .filter(|e| e.event_type.ends_with("DeploymentRecorded"))
            .count(),
        3
    );
    // Each deployment record names the event that caused it.
    assert!(
        catalog_events
            .iter()
            .filter(|e| e.event_type.ends_with("DeploymentRecorded"))
            .all(
                |e| e.metadata.causation_id.is_some() && e.metadata.actor == "deployer@example.com"
            )
    );
}
