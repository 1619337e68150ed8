//! Dependency-mapping as a node wires it: reads answer from memory (no store round trip, no
//! lock), so they answer even while the store cannot be read; a deployment its consumer applied
//! is in the next footprint answer; a schema verdict and a malformed schema are what the table
//! says.

use std::sync::Arc;
use std::time::Duration;

use flotilla_bus::Publisher;
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_core::{ExpectedVersion, MemoryStore};
use flotilla_dependency_mapping::DependencyMappingModule;
use flotilla_dependency_mapping::inbound::DEPLOYMENT_FINISHED;
use flotilla_proto::dependency::v1 as pb;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_runtime::testkit::{self, Bearer, ReadsSwitch, TestServer};
use prost::Message;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

type Client = DependencyMappingServiceClient<InterceptedService<Channel, Bearer>>;

fn client(ch: Channel) -> Client {
    DependencyMappingServiceClient::with_interceptor(
        ch,
        Bearer::new(&testkit::token("release-bot", &["admin"], "central")),
    )
}

fn entry(name: &str, bu: &str) -> pb::ServiceEntry {
    pb::ServiceEntry {
        name: name.into(),
        owner_team: "team-a".into(),
        business_unit: bu.into(),
        criticality_tier: 1,
        handles_personal_data: true,
        data_classification: pb::DataClassification::Confidential as i32,
        runtime: pb::Runtime::Microservice as i32,
    }
}

async fn catalog(c: &mut Client) {
    for (n, bu) in [
        ("web", "retail"),
        ("checkout", "retail"),
        ("ledger", "finance"),
    ] {
        c.register_service(pb::RegisterServiceRequest {
            service: Some(entry(n, bu)),
        })
        .await
        .expect("register");
    }
    for (a, b) in [("web", "checkout"), ("checkout", "ledger")] {
        c.declare_dependency(pb::DeclareDependencyRequest {
            dependency: Some(pb::Dependency {
                consumer: a.into(),
                provider: b.into(),
                kind: pb::EdgeKind::SyncApi as i32,
                data_flows: vec![],
            }),
        })
        .await
        .expect("declare");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answer_from_memory_without_the_store() {
    let switch = ReadsSwitch::over(Arc::new(MemoryStore::new()));
    let server = TestServer::start(&DependencyMappingModule, switch.clone()).await;
    let mut c = client(server.channel().await);
    catalog(&mut c).await;
    switch.refuse_reads(true);
    let before = switch
        .refused_reads
        .load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..20 {
        c.get_service(pb::GetServiceRequest {
            name: "ledger".into(),
        })
        .await
        .expect("get");
        assert_eq!(
            c.list_services(pb::ListServicesRequest::default())
                .await
                .expect("list")
                .into_inner()
                .services
                .len(),
            3
        );
        let impact = c
            .analyze_impact(pb::AnalyzeImpactRequest {
                service: "ledger".into(),
            })
            .await
            .expect("impact")
            .into_inner();
        assert_eq!(impact.entries.len(), 2, "checkout and web depend on ledger");
        c.get_dependency_drift(pb::GetDependencyDriftRequest::default())
            .await
            .expect("drift");
    }
    let tried = switch
        .refused_reads
        .load(std::sync::atomic::Ordering::SeqCst)
        - before;
    assert!(tried < 20, "{tried} store reads during 80 answered queries");
    switch.refuse_reads(false);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumed_deployment_is_in_the_next_footprint() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let server = TestServer::start(&DependencyMappingModule, store).await;
    let mut c = client(server.channel().await);
    catalog(&mut c).await;
    let finished = flotilla_proto::orchestration::v1::DeploymentFinished {
        deployment_id: uuid::Uuid::now_v7().to_string(),
        release_id: "r1".into(),
        environment: "prod".into(),
        service: "ledger".into(),
        version: "4.2.0".into(),
        outcome: flotilla_proto::orchestration::v1::DeploymentOutcome::Succeeded as i32,
        started_at: None,
        finished_at: Some(prost_types::Timestamp {
            seconds: 1_790_000_000,
            nanos: 0,
        }),
        deployed_by: "deployer".into(),
        ..Default::default()
    };
    let source: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    source
        .append(AppendRequest::new(
            StreamId::new_for("deployment"),
            ExpectedVersion::NoStream,
            vec![NewEvent::new(
                DEPLOYMENT_FINISHED,
                1,
                finished.encode_to_vec(),
                Metadata::by("orchestration", "finance"),
            )],
        ))
        .await
        .expect("append");
    let recorded = source.read_all(1, 10).await.expect("read");
    let out = flotilla_bus::conformance::outgoing(&**server.bus(), "orchestration", &recorded);
    server
        .bus()
        .publish("orchestration", &out)
        .await
        .expect("publish");
    let mut acked = false;
    for _ in 0..500 {
        if server
            .bus()
            .acknowledged("orchestration", "dependency-mapping")
            >= 1
        {
            acked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(acked, "the consumer acknowledged the deployment");
    let footprint = c
        .get_footprint(pb::GetFootprintRequest {
            environment: "prod".into(),
            ..Default::default()
        })
        .await
        .expect("footprint")
        .into_inner();
    assert_eq!(
        footprint
            .services
            .iter()
            .map(|s| (s.service.as_str(), s.version.as_str()))
            .collect::<Vec<_>>(),
        vec![("ledger", "4.2.0")]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_refusals_have_the_callers_codes() {
    let store: Arc<dyn EventStore> = Arc::new(MemoryStore::new());
    let server = TestServer::start(&DependencyMappingModule, store).await;
    let mut c = client(server.channel().await);
    catalog(&mut c).await;
    let publish = |content: &[u8], version: &str| pb::PublishSchemaRequest {
        service: "ledger".into(),
        name: "ledger-events".into(),
        version: version.into(),
        format: pb::SchemaFormat::JsonSchema as i32,
        content: content.to_vec(),
        check_only: false,
    };
    // Not JSON: the caller's mistake, INVALID_ARGUMENT (not DATA_LOSS).
    let e = c
        .publish_schema(publish(b"{not json", "1.0.0"))
        .await
        .expect_err("malformed");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let v1 = br#"{"type":"object","properties":{"id":{"type":"string"}}}"#;
    let verdict = c
        .publish_schema(publish(v1, "1.0.0"))
        .await
        .expect("publish")
        .into_inner();
    assert!(verdict.published && verdict.compatible);
    // The new version's verdict is against what is published, decided with the command.
    let v2 = br#"{"type":"object","properties":{}}"#;
    let verdict = c
        .publish_schema(publish(v2, "2.0.0"))
        .await
        .expect("checked")
        .into_inner();
    assert!(!verdict.compatible && !verdict.published);
    assert!(
        verdict.breaking_changes[0].contains("property id was removed"),
        "{verdict:?}"
    );
    server.stop().await;
}
