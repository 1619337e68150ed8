//! What the ledger's tests share: the deployment they start, the catalog entries they
//! register, waiting for the ledger, and reading its answers.

use std::time::Duration;

use flotilla_proto::common::v1::GetStatusRequest;
use flotilla_proto::compliance::v1 as pb;
use flotilla_proto::compliance::v1::compliance_service_client::ComplianceServiceClient;
use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_tests::Deployment;
use flotilla_transparency::note::NoteVerifier;
use tokio_stream::StreamExt;

pub type Channel = tonic::service::interceptor::InterceptedService<
    tonic::transport::Channel,
    flotilla_auth::Bearer,
>;

pub const SERVICES: [&str; 3] = ["governance", "dependency-mapping", "compliance"];

pub fn entry(name: &str) -> dm::ServiceEntry {
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

pub fn settings(deployment: &mut Deployment) {
    let mut c = toml::Table::new();
    c.insert("checkpoint_secs".into(), toml::Value::Integer(1));
    c.insert("gap_grace_secs".into(), toml::Value::Integer(3600));
    deployment.config.sections.insert("compliance".into(), c);
}

pub async fn register(ch: &Channel, name: &str) {
    DependencyMappingServiceClient::new(ch.clone())
        .register_service(dm::RegisterServiceRequest {
            service: Some(entry(name)),
        })
        .await
        .expect("register");
}

pub async fn head(ch: &Channel, service: &str) -> u64 {
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
pub async fn ledgered(
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

pub async fn newest_checkpoint(
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

/// Rewrites `service`'s store consistently from the event at `from` on (see
/// `flotilla_tests::insider`).
pub async fn rewrite_consistently(deployment: &Deployment, service: &str, from: u64) {
    flotilla_tests::insider::rewrite_consistently(
        &deployment.config.store_url,
        &deployment.config.namespace,
        service,
        from,
    )
    .await
    .expect("rewrite");
}

/// Every event a replay gives.
pub async fn replay_all(
    ledger: &mut ComplianceServiceClient<Channel>,
    request: pb::ReplayRequest,
) -> Vec<pb::ReplayedEvent> {
    ledger
        .replay(request)
        .await
        .expect("replay")
        .into_inner()
        .map(|r| r.expect("event"))
        .collect()
        .await
}

/// A proof's hashes as the verifiers take them.
pub fn proof_hashes<B: AsRef<[u8]>>(raw: &[B]) -> Vec<[u8; 32]> {
    raw.iter()
        .map(|h| <[u8; 32]>::try_from(h.as_ref()).expect("32 bytes"))
        .collect()
}

/// The verifier key the ledger's checkpoints are signed with.
pub async fn verifier_key(ledger: &mut ComplianceServiceClient<Channel>) -> NoteVerifier {
    let listed = ledger
        .list_checkpoints(pb::ListCheckpointsRequest {})
        .await
        .expect("list")
        .into_inner();
    NoteVerifier::parse(&listed.verifier_key).expect("verifier key")
}
