//! Orchestration speaks CDEvents v0.5.1 on `<namespace>.cdevents`: a pipeline's
//! `artifact.packaged` published with a plain NATS client registers the build, and a release
//! deployed from it is announced as `environment.created` and `service.deployed` on NATS and
//! Kafka alike (same CloudEvents ids), each one a CDEvent the CDEvents SDK (generated from the
//! spec's schemas, unknown fields refused) reads back.

use std::time::Duration;

use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_proto::governance::v1 as gov;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::orchestration::v1 as pb;
use flotilla_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use flotilla_runtime::config::BusKind;
use flotilla_tests::probe::{Seen, kafka_messages, nats_messages};
use flotilla_tests::{Deployment, nats_url};

const DIGEST: &str = "sha256:7b3c1e0f2d9a8b6c5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d";

fn packaged(purl: &str) -> serde_json::Value {
    serde_json::json!({
        "context": {
            "specversion": "0.5.1",
            "id": "jenkins-build-118",
            "source": "https://jenkins.example.com/job/payments-api/118",
            "type": "dev.cdevents.artifact.packaged.0.3.0",
            "timestamp": "2026-12-01T10:00:00Z"
        },
        "subject": {
            "id": purl,
            "content": {
                "change": { "id": "9f2c1e7", "source": "https://git.example.com/payments/api" }
            }
        }
    })
}

/// The CDEvents a log holds, read strictly.
fn cdevents(seen: &[Seen]) -> Vec<(String, cdevents_sdk::CDEvent, serde_json::Value)> {
    seen.iter()
        .map(|m| {
            let json: serde_json::Value = serde_json::from_slice(&m.data).expect("JSON");
            let e: cdevents_sdk::CDEvent = serde_json::from_value(json.clone())
                .unwrap_or_else(|err| panic!("not a valid CDEvent ({err}): {json}"));
            let id = m
                .headers
                .get("ce-id")
                .or_else(|| m.headers.get("ce_id"))
                .cloned()
                .unwrap_or_default();
            let ty = m
                .headers
                .get("ce-type")
                .or_else(|| m.headers.get("ce_type"))
                .cloned()
                .unwrap_or_default();
            assert_eq!(ty, e.ty(), "the CloudEvents type is the CDEvent's");
            (id, e, json)
        })
        .collect()
}

/// Against the spec's own JSON schemas, when a checkout of cdevents/spec v0.5.1 is at hand
/// (`FLOTILLA_CDEVENTS_SCHEMAS` = its `schemas` folder; `scripts/services.sh` fetches it where
/// GitHub can be reached): `scripts/cdevents-validate.py` (Python jsonschema) checks each event.
fn schemas_hold(events: &[(String, cdevents_sdk::CDEvent, serde_json::Value)]) {
    let Ok(dir) = std::env::var("FLOTILLA_CDEVENTS_SCHEMAS") else {
        eprintln!(
            "FLOTILLA_CDEVENTS_SCHEMAS is not set: the spec's JSON schemas are not checked here (the SDK's strict types are)"
        );
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let files: Vec<std::path::PathBuf> = events
        .iter()
        .enumerate()
        .map(|(i, (_, _, json))| {
            let f = tmp.path().join(format!("event-{i}.json"));
            std::fs::write(&f, serde_json::to_vec_pretty(json).expect("json")).expect("write");
            f
        })
        .collect();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scripts/cdevents-validate.py"
    );
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&dir)
        .args(&files)
        .output()
        .expect("python3");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the spec's schemas refuse an event:\n{said}"
    );
    assert_eq!(said.matches(": valid").count(), events.len(), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn builds_come_in_and_deployments_go_out_as_cdevents_on_nats_and_kafka() {
    let deployment = Deployment::new(vec![BusKind::Nats, BusKind::Kafka]).expect("deployment");
    let node = deployment
        .start(&["governance", "dependency-mapping", "orchestration"])
        .await
        .expect("node");
    let ns = deployment.namespace();
    let admin = node
        .as_caller("ops", &["admin"], "central")
        .await
        .expect("admin");
    let rm = node
        .as_caller("rita", &["release-manager"], "payments")
        .await
        .expect("rm");
    let mut orch = OrchestrationServiceClient::new(rm.clone());

    // A Jenkins pipeline announces the build with a plain NATS client.
    let purl = format!(
        "pkg:oci/payments-api@{}?tag=2.4.1",
        DIGEST.replace(':', "%3A")
    );
    let js = async_nats::jetstream::new(async_nats::connect(nats_url()).await.expect("nats"));
    let mut headers = async_nats::HeaderMap::new();
    for (k, v) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "jenkins-build-118"),
        (
            "ce-source",
            "https://jenkins.example.com/job/payments-api/118",
        ),
        ("ce-type", "dev.cdevents.artifact.packaged.0.3.0"),
        ("content-type", "application/json"),
    ] {
        headers.insert(k, v);
    }
    let body = serde_json::to_vec(&packaged(&purl)).expect("json");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // The CDEvents stream exists once orchestration subscribes to it.
        let sent = js
            .publish_with_headers(ns.cdevents(), headers.clone(), body.clone().into())
            .await;
        if let Ok(ack) = sent
            && ack.await.is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the CDEvents stream never appeared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let registered_purl = format!("pkg:oci/payments-api@{}", DIGEST.replace(':', "%3A"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let artifact = loop {
        let list = orch
            .list_artifacts(pb::ListArtifactsRequest {
                service: "payments-api".into(),
            })
            .await
            .map(tonic::Response::into_inner);
        if let Ok(l) = list
            && let Some(a) = l.artifacts.into_iter().next()
        {
            break a;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the packaged build was never registered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(artifact.purl, registered_purl);
    assert_eq!(
        (artifact.version.as_str(), artifact.commit.as_str()),
        ("2.4.1", "9f2c1e7")
    );
    assert_eq!(artifact.source, pb::ArtifactSource::Cdevents as i32);

    // The release of that build into dev.
    let mut catalog = DependencyMappingServiceClient::new(admin.clone());
    catalog
        .register_service(dm::RegisterServiceRequest {
            service: Some(dm::ServiceEntry {
                name: "payments-api".into(),
                owner_team: "payments-core".into(),
                business_unit: "payments".into(),
                criticality_tier: 3,
                data_classification: dm::DataClassification::Internal as i32,
                runtime: dm::Runtime::Microservice as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("catalog");
    orch.define_environment(pb::DefineEnvironmentRequest {
        spec: Some(pb::EnvironmentSpec {
            business_unit: "payments".into(),
            name: "dev".into(),
            ..Default::default()
        }),
    })
    .await
    .expect("environment");
    orch.set_promotion_path(pb::SetPromotionPathRequest {
        business_unit: "payments".into(),
        environments: vec!["dev".into()],
    })
    .await
    .expect("path");
    orch.create_release(pb::CreateReleaseRequest {
        name: "payments-2.4.1".into(),
        business_unit: "payments".into(),
        items: vec![pb::RequestedItem {
            service: "payments-api".into(),
            descriptor: Some(pb::Descriptor {
                kind: pb::DescriptorKind::Helm as i32,
                reference: "oci://charts.example.com/payments-api".into(),
                version: "2.4.1".into(),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    })
    .await
    .expect("create");
    orch.plan_release(pb::PlanReleaseRequest {
        release: "payments-2.4.1".into(),
    })
    .await
    .expect("plan");
    let mut governance = GovernanceServiceClient::new(rm.clone());
    let facts = gov::ReleaseFacts {
        release: "payments-2.4.1".into(),
        version: "2.4.1".into(),
        environment: "dev".into(),
        service: "payments-api".into(),
        business_unit: "payments".into(),
        criticality_tier: 3,
        risk_score: 5,
        author: "alice".into(),
        ..Default::default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Err(s) = governance
        .open_approval_request(gov::OpenApprovalRequestRequest {
            release: Some(facts.clone()),
            emergency: false,
        })
        .await
    {
        assert!(
            s.message().contains("not in the service catalog")
                && tokio::time::Instant::now() < deadline,
            "{s:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    GovernanceServiceClient::new(
        node.as_caller("sam", &["service-owner"], "payments")
            .await
            .expect("owner"),
    )
    .approve(gov::DecideApprovalRequest {
        release: "payments-2.4.1".into(),
        environment: "dev".into(),
        role: "service-owner".into(),
        comment: "ok".into(),
    })
    .await
    .expect("approve");
    let d = orch
        .promote_release(pb::PromoteReleaseRequest {
            release: "payments-2.4.1".into(),
            environment: "dev".into(),
        })
        .await
        .expect("promote")
        .into_inner();
    let mut watch = orch
        .watch_deployment(pb::GetDeploymentRequest {
            deployment_id: d.deployment_id.clone(),
        })
        .await
        .expect("watch")
        .into_inner();
    let mut last = None;
    while let Some(x) = tokio::time::timeout(Duration::from_secs(60), watch.message())
        .await
        .expect("in time")
        .expect("watched")
    {
        last = Some(x);
    }
    assert_eq!(
        last.map(|d| d.status),
        Some(pb::DeploymentStatus::Succeeded as i32)
    );

    // Out, on both buses: the environment, then the service deployed from the build.
    let on_kafka = kafka_messages(&ns.cdevents(), 2).await;
    let stream = format!(
        "{}_CDEVENTS",
        deployment
            .config
            .namespace
            .to_ascii_uppercase()
            .replace('-', "_")
    );
    let on_nats = nats_messages(&stream, 3).await;
    let kafka = cdevents(&on_kafka);
    let nats: Vec<_> = cdevents(&on_nats)
        .into_iter()
        .filter(|(_, e, _)| !e.ty().starts_with("dev.cdevents.artifact"))
        .collect();
    // Kafka keeps order per key (partition), not across keys: compare as sets.
    let mut types: Vec<&str> = kafka.iter().map(|(_, e, _)| e.ty()).collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "dev.cdevents.environment.created.0.3.0",
            "dev.cdevents.service.deployed.0.3.0"
        ],
        "{on_kafka:#?}"
    );
    let ids = |l: &[(String, cdevents_sdk::CDEvent, serde_json::Value)]| {
        let mut ids = l.iter().map(|(id, _, _)| id.clone()).collect::<Vec<_>>();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(&kafka),
        ids(&nats),
        "the same CloudEvents ids on both buses"
    );
    let of_type = |l: &[(String, cdevents_sdk::CDEvent, serde_json::Value)], ty: &str| {
        l.iter()
            .find(|(_, e, _)| e.ty() == ty)
            .cloned()
            .unwrap_or_else(|| panic!("no {ty}"))
    };
    let (_, deployed, json) = &of_type(&kafka, "dev.cdevents.service.deployed.0.3.0");
    assert_eq!(
        json["subject"]["content"]["artifactId"],
        registered_purl.as_str()
    );
    assert_eq!(
        json["subject"]["content"]["environment"]["id"],
        "payments/dev"
    );
    assert_eq!(json["context"]["specversion"], "0.5.1");
    assert_eq!(
        deployed.source().to_string(),
        format!("/{}/orchestration", deployment.config.namespace)
    );
    assert_eq!(
        on_kafka[0].headers.get("content-type").map(String::as_str),
        Some("application/json")
    );

    // Monitoring asks for a rollback (its relay's CloudEvent, sent here with a plain client):
    // the release is rolled back and, new in dev, removed from it.
    let request = flotilla_proto::monitoring::v1::RollbackRequested {
        request_id: "breach-1".into(),
        release: "payments-2.4.1".into(),
        environment: "dev".into(),
        reason: "checkout success ratio 97.1% under 99.5%".into(),
        requested_at: None,
        ..Default::default()
    };
    let mut headers = async_nats::HeaderMap::new();
    let event_id = uuid::Uuid::now_v7().to_string();
    let source = ns.source("monitoring");
    for (k, v) in [
        ("ce-specversion", "1.0"),
        ("ce-id", event_id.as_str()),
        ("ce-source", source.as_str()),
        ("ce-type", "flotilla.monitoring.v1.RollbackRequested"),
        ("ce-businessunit", "payments"),
        ("content-type", "application/protobuf"),
    ] {
        headers.insert(k, v);
    }
    let subject = ns.subject(
        "monitoring",
        "rollback",
        "flotilla.monitoring.v1.RollbackRequested",
    );
    let body = prost::Message::encode_to_vec(&request);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let sent = js
            .publish_with_headers(subject.clone(), headers.clone(), body.clone().into())
            .await;
        if let Ok(ack) = sent
            && ack.await.is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "monitoring's stream never appeared"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = orch
            .get_release(pb::GetReleaseRequest {
                release: "payments-2.4.1".into(),
            })
            .await
            .expect("release")
            .into_inner();
        if r.status == pb::ReleaseStatus::RolledBack as i32 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rollback request was not acted on: {r:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A sandbox defined and removed again.
    orch.define_environment(pb::DefineEnvironmentRequest {
        spec: Some(pb::EnvironmentSpec {
            business_unit: "payments".into(),
            name: "sandbox".into(),
            ..Default::default()
        }),
    })
    .await
    .expect("sandbox");
    orch.remove_environment(pb::RemoveEnvironmentRequest {
        business_unit: "payments".into(),
        environment: "sandbox".into(),
    })
    .await
    .expect("remove sandbox");
    let on_kafka = kafka_messages(&ns.cdevents(), 5).await;
    let kafka = cdevents(&on_kafka);
    let mut types: Vec<&str> = kafka.iter().map(|(_, e, _)| e.ty()).collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "dev.cdevents.environment.created.0.3.0",
            "dev.cdevents.environment.created.0.3.0",
            "dev.cdevents.environment.deleted.0.3.0",
            "dev.cdevents.service.deployed.0.3.0",
            "dev.cdevents.service.removed.0.3.0",
        ],
        "{on_kafka:#?}"
    );
    // One key's events in order: the sandbox created, then deleted.
    let sandbox: Vec<&str> = kafka
        .iter()
        .filter(|(_, _, j)| j["subject"]["id"] == "payments/sandbox")
        .map(|(_, e, _)| e.ty())
        .collect();
    assert_eq!(
        sandbox,
        [
            "dev.cdevents.environment.created.0.3.0",
            "dev.cdevents.environment.deleted.0.3.0"
        ]
    );
    let removed = of_type(&kafka, "dev.cdevents.service.removed.0.3.0");
    assert_eq!(
        removed.2["subject"]["content"]["environment"]["id"],
        "payments/dev"
    );
    schemas_hold(&kafka);
    node.stop().await.expect("stop");
}
