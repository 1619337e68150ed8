//! The bus contract as a subscribing team reads it, with plain NATS and Kafka clients (not
//! Flotilla's own subscription code): two deployments in their own namespaces share one NATS
//! server and one Kafka broker and see nothing of each other, neither events nor access
//! policies; subjects follow `<namespace>.<service>.<aggregate>.<event>`; `businessunit` is
//! the unit the event is about; the content type travels as each binding says; refusals of
//! callers without a token stay off the bus.

use std::time::Duration;

use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_proto::governance::v1 as gv;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::config::BusKind;
use flotilla_tests::probe::Seen;
use flotilla_tests::{Deployment, RunningNode, nats_url};

fn entry(name: &str, bu: &str) -> dm::ServiceEntry {
    dm::ServiceEntry {
        name: name.into(),
        owner_team: format!("{bu}-team"),
        business_unit: bu.into(),
        criticality_tier: 2,
        handles_personal_data: false,
        data_classification: dm::DataClassification::Internal as i32,
        runtime: dm::Runtime::Microservice as i32,
    }
}

/// Everything on a deployment's JetStream stream of a service.
async fn nats_messages(namespace: &str, service: &str, at_least: usize) -> Vec<Seen> {
    let stream_name = format!("{namespace}_{service}")
        .to_ascii_uppercase()
        .replace('-', "_");
    flotilla_tests::probe::nats_messages(&stream_name, at_least).await
}

/// Everything on a Kafka topic, with each message's key.
async fn kafka_messages(topic: &str, at_least: usize) -> Vec<(Option<String>, Seen)> {
    flotilla_tests::probe::kafka_messages(topic, at_least)
        .await
        .into_iter()
        .map(|m| (m.key.clone(), m))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_deployments_on_one_nats_and_kafka_see_only_their_own() {
    let a = Deployment::new(vec![BusKind::Nats, BusKind::Kafka]).expect("deployment a");
    let b = Deployment::new(vec![BusKind::Nats, BusKind::Kafka]).expect("deployment b");
    let (ns_a, ns_b) = (a.config.namespace.clone(), b.config.namespace.clone());
    let node_a = a
        .start(&["governance", "dependency-mapping"])
        .await
        .expect("a");
    let node_b = b
        .start(&["governance", "dependency-mapping"])
        .await
        .expect("b");
    let _ = node_a.channel().await.expect("a up");
    let _ = node_b.channel().await.expect("b up");
    let admin_a = node_a
        .as_caller("ops", &["admin"], "central")
        .await
        .expect("a");
    let admin_b = node_b
        .as_caller("ops", &["admin"], "central")
        .await
        .expect("b");
    let mut catalog_a = DependencyMappingServiceClient::new(admin_a.clone());
    let mut gov_a = GovernanceServiceClient::new(admin_a);
    let mut catalog_b = DependencyMappingServiceClient::new(admin_b.clone());
    let mut gov_b = GovernanceServiceClient::new(admin_b);
    // A central admin registers a retail service in A, a lending one in B.
    catalog_a
        .register_service(dm::RegisterServiceRequest {
            service: Some(entry("till", "retail")),
        })
        .await
        .expect("register in a");
    catalog_b
        .register_service(dm::RegisterServiceRequest {
            service: Some(entry("loans", "lending")),
        })
        .await
        .expect("register in b");
    // In A: a caller without a token, and an authenticated one the policies refuse.
    let ch_a = node_a.channel().await.expect("connect");
    let anonymous = GovernanceServiceClient::new(ch_a.clone())
        .list_freeze_windows(gv::ListFreezeWindowsRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(anonymous.code(), tonic::Code::Unauthenticated);
    let refused = GovernanceServiceClient::with_interceptor(
        ch_a,
        RunningNode::bearer("dev", &["developer"], "retail"),
    )
    .set_policy(gv::SetPolicyRequest::default())
    .await
    .expect_err("developers do not set policy");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    // NATS, read with async-nats: A's catalog stream holds A's event only.
    let seen = nats_messages(&ns_a, "dependency-mapping", 1).await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    let m = &seen[0];
    assert_eq!(
        m.subject,
        format!("{ns_a}.dependency-mapping.catalog.ServiceRegistered"),
        "one subject rule: <namespace>.<service>.<aggregate>.<event>"
    );
    assert_eq!(
        m.headers["ce-businessunit"], "retail",
        "the unit the event is about"
    );
    assert_eq!(
        m.headers["ce-source"],
        format!("/{ns_a}/dependency-mapping")
    );
    assert_eq!(
        m.headers["ce-type"],
        "flotilla.dependency.v1.ServiceRegistered"
    );
    assert_eq!(m.headers["ce-datacontenttype"], "application/protobuf");
    assert_eq!(m.headers["ce-aggregatetype"], "catalog");
    assert_eq!(m.headers["nats-msg-id"], m.headers["ce-id"]);
    assert_eq!(m.headers["ce-specversion"], "1.0");
    assert!(
        !m.headers.contains_key("content-type"),
        "NATS binding: ce-datacontenttype only"
    );
    let seen_b = nats_messages(&ns_b, "dependency-mapping", 1).await;
    assert_eq!(seen_b.len(), 1);
    assert_eq!(seen_b[0].headers["ce-businessunit"], "lending");
    assert_ne!(seen_b[0].headers["ce-id"], m.headers["ce-id"]);

    // The stream keeps what the configuration says (documented defaults: 7 days, 120 s dedupe).
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.expect("nats"));
    let mut stream = js
        .get_stream(format!("{ns_a}_DEPENDENCY_MAPPING").to_ascii_uppercase())
        .await
        .expect("stream");
    let info = stream.info().await.expect("info");
    assert_eq!(info.config.max_age, Duration::from_secs(7 * 24 * 3600));
    assert_eq!(info.config.duplicate_window, Duration::from_secs(120));
    assert_eq!(
        info.config.subjects,
        vec![format!("{ns_a}.dependency-mapping.>")]
    );

    // Governance's stream in A: the authenticated refusal is there, the anonymous one is not.
    let gov_seen = nats_messages(&ns_a, "governance", 2).await;
    let refusals: Vec<&Seen> = gov_seen
        .iter()
        .filter(|s| {
            s.headers.get("ce-type").map(String::as_str) == Some("flotilla.common.v1.AccessRefused")
        })
        .collect();
    assert_eq!(refusals.len(), 1, "{gov_seen:?}");
    assert_eq!(
        refusals[0].subject,
        format!("{ns_a}.governance.access-refusal.AccessRefused")
    );
    // The actor travels sealed; the deployment's keyring opens it.
    let actor = &refusals[0].headers["ce-actor"];
    assert!(actor.starts_with("pii:v1:"), "{actor}");
    assert_eq!(a.reveal(actor).await, "dev");
    // What governance learnt from the catalog is an event of its own, in the unit it is about.
    assert!(
        gov_seen.iter().any(|s| s.subject
            == format!("{ns_a}.governance.catalog-service.CatalogServiceRecorded")
            && s.headers["ce-businessunit"] == "retail"),
        "{gov_seen:?}"
    );

    // Kafka, read with rdkafka: the same event on A's topic, key = stream id, content-type.
    let topic = format!("{ns_a}.dependency-mapping.events");
    let records = kafka_messages(&topic, 1).await;
    assert_eq!(records.len(), 1, "{records:?}");
    let (key, r) = &records[0];
    assert_eq!(key.as_deref(), Some("dependency-catalog"));
    assert_eq!(
        r.headers["ce_id"], m.headers["ce-id"],
        "the same event id on both buses"
    );
    assert_eq!(r.headers["ce_businessunit"], "retail");
    assert_eq!(r.headers["content-type"], "application/protobuf");
    assert!(
        !r.headers.contains_key("ce_datacontenttype"),
        "Kafka binding: content-type"
    );
    assert_eq!(
        r.headers["ce_source"],
        format!("/{ns_a}/dependency-mapping")
    );

    // Access policies: a replacement in B widens B's catalog for a role; A's stays as it was.
    let role = format!("probe-{}", uuid::Uuid::now_v7().simple());
    let current = gov_b
        .get_access_policy(gv::GetAccessPolicyRequest {})
        .await
        .expect("get")
        .into_inner();
    gov_b
        .replace_access_policy(gv::ReplaceAccessPolicyRequest {
            policy: format!(
                "{}\n@id(\"probe-writes\")\npermit (principal in Flotilla::Role::\"{role}\", action in Flotilla::Action::\"catalog-write\", resource);\n",
                current.policy
            ),
            expected_version: current.version,
        })
        .await
        .expect("replace in b");
    let probe_a = node_a
        .as_caller("prober", &[role.as_str()], "central")
        .await
        .expect("a");
    let probe_b = node_b
        .as_caller("prober", &[role.as_str()], "central")
        .await
        .expect("b");
    // Past the access checks, the empty request is refused as invalid.
    let may_write = |ch: &tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        flotilla_auth::Bearer,
    >| {
        let mut client = DependencyMappingServiceClient::new(ch.clone());
        async move {
            client
                .register_service(dm::RegisterServiceRequest::default())
                .await
                .map_or_else(|e| e.code() != tonic::Code::PermissionDenied, |_| true)
        }
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !may_write(&probe_b).await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "b's dependency-mapping never followed b's replacement"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !may_write(&probe_a).await,
        "a's dependency-mapping adopted b's access policy"
    );
    let a_policy = gov_a
        .get_access_policy(gv::GetAccessPolicyRequest {})
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        a_policy.version, 0,
        "a's governance knows nothing of b's replacement"
    );
    node_a.stop().await.expect("stop a");
    node_b.stop().await.expect("stop b");
}
