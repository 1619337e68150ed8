//! A node of all six services: health, reflection (v1 and v1alpha), status, graceful shutdown,
//! and state rebuilt from the stores on restart. Then one service served on PostgreSQL with its
//! relay publishing to real NATS JetStream and Kafka.

use std::time::Duration;

use flotilla_bus::Bus;
use flotilla_core::ExpectedVersion;
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::ids::StreamId;
use flotilla_core::store::AppendRequest;
use flotilla_proto::common::v1::GetStatusRequest;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::config::BusKind;
use flotilla_tests::{Deployment, RunningNode, kafka_brokers, nats_url, reflected_services};
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const SERVICES: [&str; 6] = [
    "flotilla.governance.v1.GovernanceService",
    "flotilla.dependency.v1.DependencyMappingService",
    "flotilla.orchestration.v1.OrchestrationService",
    "flotilla.risk.v1.RiskValidationService",
    "flotilla.monitoring.v1.MonitoringService",
    "flotilla.compliance.v1.ComplianceService",
];

async fn reflection_v1alpha_describes(channel: tonic::transport::Channel, symbol: &str) -> bool {
    use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(symbol.into())),
    };
    let mut resp = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter(vec![req]))
        .await
        .expect("reflection call")
        .into_inner();
    match resp.next().await {
        Some(Ok(r)) => {
            matches!(r.message_response, Some(MessageResponse::FileDescriptorResponse(f)) if !f.file_descriptor_proto.is_empty())
        }
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_node_serves_health_reflection_and_status_and_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = RunningNode::embedded(dir.path().join("data"))
        .await
        .expect("start node");
    let channel = node.channel().await.expect("connect");

    let mut health = HealthClient::new(channel.clone());
    for s in SERVICES {
        let r = health
            .check(HealthCheckRequest { service: s.into() })
            .await
            .expect("health")
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{s}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "flotilla.nope.v1.Nope".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    let listed = reflected_services(channel.clone()).await;
    for s in SERVICES {
        assert!(listed.contains(s), "reflection v1 lists {s}: {listed:?}");
    }
    assert!(listed.contains("grpc.health.v1.Health"));
    assert!(
        reflection_v1alpha_describes(channel.clone(), "flotilla.governance.v1.GovernanceService")
            .await
    );

    let status = GovernanceServiceClient::with_interceptor(
        channel.clone(),
        RunningNode::bearer("ops", &["admin"], "central"),
    )
    .get_status(GetStatusRequest {})
    .await
    .expect("status")
    .into_inner();
    assert_eq!(status.service, "governance");
    assert_eq!(status.store_backend, "sqlite");
    assert_eq!(status.head_position, 0);
    node.stop().await.expect("graceful stop");
    assert!(dir.path().join("data/governance.db").exists());

    // Events written to the governance store are there after a restart, with the same head.
    let store = flotilla_store::open(
        &format!(
            "sqlite://{}",
            dir.path().join("data/governance.db").display()
        ),
        "unused",
    )
    .await
    .expect("open store");
    let e = NewEvent::new(
        "flotilla.eventstore.v1.SyntheticEventRecorded",
        1,
        vec![1, 2, 3],
        Metadata::by("tester", "bu-a"),
    );
    store
        .append(AppendRequest::new(
            StreamId::new_for("probe"),
            ExpectedVersion::NoStream,
            vec![e],
        ))
        .await
        .expect("append");
    let head = store.head().await.expect("head");
    drop(store);
    let node = RunningNode::embedded(dir.path().join("data"))
        .await
        .expect("restart node");
    let channel = node.channel().await.expect("connect");
    let status = GovernanceServiceClient::with_interceptor(
        channel,
        RunningNode::bearer("ops", &["admin"], "central"),
    )
    .get_status(GetStatusRequest {})
    .await
    .expect("status")
    .into_inner();
    assert_eq!(status.head_position, 1);
    assert_eq!(status.head_hash, head.hash.to_hex());
    node.stop().await.expect("graceful stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn served_service_relays_its_events_to_nats_and_kafka() {
    let deployment = Deployment::new(vec![BusKind::Nats, BusKind::Kafka]).expect("deployment");
    let node = deployment
        .start(&["governance"])
        .await
        .expect("start served node");
    let channel = node.channel().await.expect("connect");
    let before = GovernanceServiceClient::with_interceptor(
        channel.clone(),
        RunningNode::bearer("ops", &["admin"], "central"),
    )
    .get_status(GetStatusRequest {})
    .await
    .expect("status")
    .into_inner();
    assert_eq!(before.store_backend, "postgres");

    // An event appended to the governance store (as its handlers will) is published by the relay.
    let store = deployment.store("governance").await.expect("open store");
    let e = NewEvent::new(
        "flotilla.eventstore.v1.SyntheticEventRecorded",
        1,
        vec![9, 9],
        Metadata::by("tester", "bu-a"),
    );
    let id = e.event_id.to_string();
    let o = store
        .append(AppendRequest::new(
            StreamId::new_for("probe"),
            ExpectedVersion::NoStream,
            vec![e],
        ))
        .await
        .expect("append");
    let group = format!("e2e-{}", uuid::Uuid::now_v7().simple());
    let nats: Box<dyn Bus> = Box::new(
        flotilla_bus::nats::NatsBus::connect(&nats_url(), deployment.namespace())
            .await
            .expect("nats"),
    );
    let kafka: Box<dyn Bus> = Box::new(
        flotilla_bus::kafka::KafkaBus::connect(&kafka_brokers(), deployment.namespace(), &[])
            .expect("kafka"),
    );
    for bus in [nats, kafka] {
        let mut d = bus
            .subscribe("governance", &group)
            .await
            .expect("subscribe");
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let x = d.next().await.expect("delivery");
                let mine = x.event.id == id;
                let seq = x.event.sequence();
                x.ack().await.expect("ack");
                if mine {
                    return seq;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("event {id} not delivered on {}", bus.name()));
        assert_eq!(found, Some(o.first_position));
    }
    let after = GovernanceServiceClient::with_interceptor(
        channel,
        RunningNode::bearer("ops", &["admin"], "central"),
    )
    .get_status(GetStatusRequest {})
    .await
    .expect("status")
    .into_inner();
    assert_eq!(after.head_position, o.last_position);
    node.stop().await.expect("graceful stop");
}

/// The choreography across services: orchestration's store records a finished deployment, its
/// relay publishes it, and dependency-mapping's consumer updates the environment's footprint.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_finished_deployment_reaches_the_footprint() {
    use flotilla_proto::dependency::v1 as dm;
    use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
    use flotilla_proto::orchestration::v1::{DeploymentFinished, DeploymentOutcome};
    use prost::Message;

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let node = RunningNode::embedded(data.clone())
        .await
        .expect("start node");
    let mut catalog = DependencyMappingServiceClient::with_interceptor(
        node.channel().await.expect("connect"),
        RunningNode::bearer("ops", &["admin"], "central"),
    );
    catalog
        .register_service(dm::RegisterServiceRequest {
            service: Some(dm::ServiceEntry {
                name: "checkout".into(),
                owner_team: "shop".into(),
                business_unit: "retail".into(),
                criticality_tier: 1,
                handles_personal_data: true,
                data_classification: dm::DataClassification::Confidential as i32,
                runtime: dm::Runtime::Microservice as i32,
            }),
        })
        .await
        .expect("register");

    let orchestration = flotilla_store::open(
        &format!("sqlite://{}", data.join("orchestration.db").display()),
        "unused",
    )
    .await
    .expect("orchestration store");
    let payload = DeploymentFinished {
        deployment_id: uuid::Uuid::now_v7().to_string(),
        release_id: "release-7".into(),
        environment: "prod".into(),
        service: "checkout".into(),
        version: "2.4.1".into(),
        outcome: DeploymentOutcome::Succeeded as i32,
        started_at: None,
        finished_at: Some(prost_types::Timestamp {
            seconds: 1_764_000_000,
            nanos: 0,
        }),
        deployed_by: "deployer@example.com".into(),
        artifact: String::new(),
        previous_version: String::new(),
    }
    .encode_to_vec();
    let e = NewEvent::new(
        "flotilla.orchestration.v1.DeploymentFinished",
        1,
        payload,
        Metadata::by("orchestration", "retail"),
    );
    orchestration
        .append(AppendRequest::new(
            StreamId::new_for("deployment"),
            ExpectedVersion::NoStream,
            vec![e],
        ))
        .await
        .expect("append");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let f = catalog
            .get_footprint(dm::GetFootprintRequest {
                environment: "prod".into(),
                as_of: None,
                tag: String::new(),
            })
            .await
            .expect("footprint")
            .into_inner();
        if let Some(s) = f.services.first() {
            assert_eq!(
                (s.service.as_str(), s.version.as_str()),
                ("checkout", "2.4.1")
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deployment never reached the footprint"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    node.stop().await.expect("graceful stop");
}

/// Refused calls are part of the audit history: each service records them in its own store as
/// `flotilla.common.v1.AccessRefused` events (who, what, why, which policy).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_calls_are_recorded_in_the_called_services_store() {
    use flotilla_proto::dependency::v1 as dm;
    use flotilla_proto::governance::v1 as gv;
    use prost::Message;

    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let node = RunningNode::embedded(data.clone())
        .await
        .expect("start node");
    let channel = node.channel().await.expect("connect");
    let e = GovernanceServiceClient::new(channel.clone())
        .check_gate(gv::CheckGateRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
    let e =
        dm::dependency_mapping_service_client::DependencyMappingServiceClient::with_interceptor(
            channel.clone(),
            RunningNode::bearer("audrey", &["auditor"], "central"),
        )
        .register_service(dm::RegisterServiceRequest::default())
        .await
        .expect_err("auditors do not write");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    let open = |name: &str| {
        let url = format!("sqlite://{}", data.join(format!("{name}.db")).display());
        async move {
            flotilla_store::open(&url, "unused")
                .await
                .expect("open store")
        }
    };
    let refusals = |store: std::sync::Arc<dyn flotilla_core::store::EventStore>| async move {
        store
            .read_all(1, 1000)
            .await
            .expect("read")
            .into_iter()
            .filter(|e| e.event_type == "flotilla.common.v1.AccessRefused")
            .map(|e| {
                (
                    e.stream_id.as_str().to_owned(),
                    flotilla_proto::common::v1::AccessRefused::decode(e.payload.as_slice())
                        .expect("decode"),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut found = (Vec::new(), Vec::new());
    for _ in 0..50 {
        found = (
            refusals(open("governance").await).await,
            refusals(open("dependency-mapping").await).await,
        );
        if !found.0.is_empty() && !found.1.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (gov, dep) = found;
    assert_eq!(gov.len(), 1, "{gov:?}");
    assert_eq!(gov[0].0, "access-refusals");
    assert_eq!(gov[0].1.code, "UNAUTHENTICATED");
    assert_eq!(
        gov[0].1.operation,
        "/flotilla.governance.v1.GovernanceService/CheckGate"
    );
    assert_eq!(dep.len(), 1, "{dep:?}");
    assert_eq!(dep[0].1.code, "PERMISSION_DENIED");
    // Stored sealed; the node's keyring opens it.
    assert!(dep[0].1.subject.starts_with("pii:v1:"), "{:?}", dep[0].1);
    let ring = flotilla_store::open_keyring(
        &format!("sqlite://{}", data.join("keyring.db").display()),
        "flotilla",
    )
    .await
    .expect("keyring");
    let personal =
        flotilla_core::personal::PersonalData::new(ring, std::time::Duration::from_secs(1));
    assert_eq!(personal.reveal(&dep[0].1.subject).await, "audrey");
    assert!(
        dep[0].1.reason.contains("no policy permits it"),
        "{:?}",
        dep[0].1
    );
    node.stop().await.expect("stop");
}

/// Served mode, two processes' worth of nodes over PostgreSQL and NATS: an admin replaces the
/// access policy in governance; dependency-mapping, running apart, follows it from the bus,
/// records the adoption in its own store and starts with it after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_policy_replacements_reach_services_running_apart() {
    use flotilla_proto::dependency::v1 as dm;
    use flotilla_proto::governance::v1 as gv;

    // Its own namespace: its own schemas, streams and consumers.
    let deployment = Deployment::new(vec![BusKind::Nats]).expect("deployment");
    let governance = deployment
        .start(&["governance"])
        .await
        .expect("governance node");
    let catalog = deployment
        .start(&["dependency-mapping"])
        .await
        .expect("dependency-mapping node");
    // A second replica: it shares the consumer group, so the replacement reaches one of them
    // from the bus and the other from the store where the first recorded it.
    let replica = deployment
        .start(&["dependency-mapping"])
        .await
        .expect("a second dependency-mapping replica");
    // A role no policy knows yet, unique to this run.
    let role = format!("probe-{}", uuid::Uuid::now_v7().simple());
    let register = || dm::RegisterServiceRequest::default();
    let probe = |node: &RunningNode| {
        let url = node.url();
        let role = role.clone();
        async move {
            let ch = tonic::transport::Channel::from_shared(url)
                .expect("uri")
                .connect()
                .await
                .expect("connect");
            dm::dependency_mapping_service_client::DependencyMappingServiceClient::with_interceptor(
                ch,
                RunningNode::bearer("prober", &[role.as_str()], "central"),
            )
            .register_service(register())
            .await
            // Past the access checks, the empty request is refused as invalid.
            .map_or_else(|e| e.code() != tonic::Code::PermissionDenied, |_| true)
        }
    };
    // Unknown role: no policy lets it write to the catalog.
    let _ = catalog.channel().await.expect("connect");
    let _ = replica.channel().await.expect("connect");
    assert!(!probe(&catalog).await, "unknown role refused");
    assert!(
        !probe(&replica).await,
        "unknown role refused by the replica"
    );

    let mut admin = GovernanceServiceClient::with_interceptor(
        governance.channel().await.expect("connect"),
        RunningNode::bearer("root", &["admin"], "central"),
    );
    let current = admin
        .get_access_policy(gv::GetAccessPolicyRequest {})
        .await
        .expect("get")
        .into_inner();
    let widened = format!(
        "{}\n@id(\"probe-writes\")\npermit (principal in Flotilla::Role::\"{role}\", action in Flotilla::Action::\"catalog-write\", resource);\n",
        current.policy
    );
    admin
        .replace_access_policy(gv::ReplaceAccessPolicyRequest {
            policy: widened,
            expected_version: current.version,
        })
        .await
        .expect("replace");
    let followed = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if probe(&catalog).await && probe(&replica).await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        followed.is_ok(),
        "both replicas of dependency-mapping follow the replacement"
    );
    replica.stop().await.expect("stop");
    catalog.stop().await.expect("stop");
    // Restarted (its bus consumer has acknowledged the event): the policy comes from its store.
    let catalog = deployment
        .start(&["dependency-mapping"])
        .await
        .expect("restart");
    let _ = catalog.channel().await.expect("connect");
    assert!(
        probe(&catalog).await,
        "the adopted policy is in force after a restart"
    );
    catalog.stop().await.expect("stop");
    governance.stop().await.expect("stop");
}
