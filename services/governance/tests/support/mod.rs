//! What governance's gRPC tests share: clients with tokens, a store that knows a catalog, and
//! request builders.
#![allow(dead_code)]

use std::sync::Arc;

use flotilla_auth::Bearer;
use flotilla_core::store::EventStore;
use flotilla_proto::governance::v1 as pb;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::testkit;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type Gov = GovernanceServiceClient<InterceptedService<Channel, Bearer>>;

pub fn gov(ch: &Channel, subject: &str, roles: &[&str], bu: &str) -> Gov {
    GovernanceServiceClient::with_interceptor(
        ch.clone(),
        Bearer::new(&testkit::token(subject, roles, bu)),
    )
}

pub async fn open_store(path: &std::path::Path) -> Arc<dyn EventStore> {
    let fresh = !path.exists();
    let store = flotilla_store::open(&format!("sqlite://{}", path.display()), "governance")
        .await
        .expect("store");
    if fresh {
        seed_catalog(&store).await;
    }
    store
}

pub fn service(bu: &str, tier: u32, pii: bool) -> String {
    flotilla_governance::testing::service_name(bu, tier as u8, pii)
}

/// What governance would have learnt from dependency-mapping's events.
pub async fn seed_catalog(store: &Arc<dyn EventStore>) {
    flotilla_governance::testing::seed_catalog(
        store,
        flotilla_governance::testing::every_kind(&[
            "payments", "cards", "finance", "retail", "lending",
        ]),
    )
    .await
    .expect("seed the catalog");
}

pub fn ts(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

pub fn facts(release: &str, bu: &str, tier: u32, risk: u32, pii: bool) -> pb::ReleaseFacts {
    pb::ReleaseFacts {
        release: release.into(),
        version: "2.3.0".into(),
        environment: "prod".into(),
        service: service(bu, tier, pii),
        business_unit: bu.into(),
        criticality_tier: tier,
        risk_score: risk,
        handles_personal_data: pii,
        author: "alice".into(),
        committers: vec!["carol".into()],
    }
}

pub fn decide(release: &str, role: &str) -> pb::DecideApprovalRequest {
    pb::DecideApprovalRequest {
        release: release.into(),
        environment: "prod".into(),
        role: role.into(),
        comment: "looks fine".into(),
    }
}

pub fn gate(release: &str, at: i64) -> pb::CheckGateRequest {
    pb::CheckGateRequest {
        release: release.into(),
        environment: "prod".into(),
        at: Some(ts(at)),
        emergency: None,
    }
}

pub fn code<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> tonic::Status {
    r.expect_err("expected a refusal")
}

pub async fn events_of(store: &Arc<dyn EventStore>, ty: &str) -> usize {
    store
        .read_all(1, 100_000)
        .await
        .expect("read")
        .iter()
        .filter(|e| e.event_type == ty)
        .count()
}
