//! An insider edits a service's store by hand: the service finds the broken hash chain while it
//! rebuilds (or as the row arrives, while running), stops serving (health NOT_SERVING, calls
//! DATA_LOSS naming the position, GetStatus says where, `/readyz` 503), and serves again only
//! when the operator accepts that break by position, which is recorded in the store.

use std::time::Duration;

use flotilla_proto::common::v1::GetStatusRequest;
use flotilla_proto::governance::v1 as pb;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::config::BusKind;
use flotilla_tests::{Deployment, RunningNode, postgres_url};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const GOVERNANCE: &str = "flotilla.governance.v1.GovernanceService";

async fn health(node: &RunningNode) -> i32 {
    HealthClient::new(node.channel().await.expect("connect"))
        .check(HealthCheckRequest {
            service: GOVERNANCE.into(),
        })
        .await
        .expect("health")
        .into_inner()
        .status
}

fn admin(
    ch: tonic::transport::Channel,
) -> GovernanceServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        flotilla_auth::Bearer,
    >,
> {
    GovernanceServiceClient::with_interceptor(ch, RunningNode::bearer("ops", &["admin"], "central"))
}

async fn pg() -> sqlx::PgPool {
    sqlx::PgPool::connect(&postgres_url())
        .await
        .expect("postgres")
}

/// Flips the low bit of the first byte of `text` in the payload of the event at `position`, as
/// an insider with database access would edit a value (the event still decodes).
async fn flip_payload_bit(schema: &str, position: i64, text: &str) {
    let q = format!(
        "UPDATE \"{schema}\".events SET payload = set_byte(payload, position('{text}'::bytea in payload) - 1, get_byte(payload, position('{text}'::bytea in payload) - 1) # 1) WHERE global_position = $1 AND position('{text}'::bytea in payload) > 0"
    );
    let done = sqlx::query(sqlx::AssertSqlSafe(q))
        .bind(position)
        .execute(&pg().await)
        .await
        .expect("tamper");
    assert_eq!(done.rows_affected(), 1);
}

async fn window_position(deployment: &Deployment) -> i64 {
    let store = deployment.store("governance").await.expect("store");
    let events = store.read_all(1, 100).await.expect("read");
    events
        .iter()
        .find(|e| e.event_type == "flotilla.governance.v1.FreezeWindowCreated")
        .map(|e| e.global_position as i64)
        .expect("window event")
}

/// A probe of the node's HTTP address: status and body.
async fn probe(port: u16, path: &str) -> (u16, String) {
    let r = reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .expect("probe");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tampered_store_is_refused_until_the_operator_accepts_the_break() {
    let mut deployment = Deployment::new(vec![BusKind::Nats]).expect("deployment");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    deployment.config.metrics_listen = format!("127.0.0.1:{port}");
    let schema = flotilla_store::schema_for(&deployment.config.namespace, "governance");
    let node = deployment.start(&["governance"]).await.expect("start");
    let mut gov = admin(node.channel().await.expect("connect"));
    gov.create_freeze_window(pb::CreateFreezeWindowRequest {
        window: Some(pb::FreezeWindow {
            name: "quarter-close".into(),
            kind: pb::WindowKind::Freeze as i32,
            schedule: Some(pb::freeze_window::Schedule::Once(pb::OnceSchedule {
                start: Some(prost_types::Timestamp {
                    seconds: 4_000_000_000,
                    nanos: 0,
                }),
                end: Some(prost_types::Timestamp {
                    seconds: 4_000_086_400,
                    nanos: 0,
                }),
            })),
            reason: "financial close".into(),
            ..Default::default()
        }),
    })
    .await
    .expect("window");
    assert_eq!(health(&node).await, ServingStatus::Serving as i32);
    assert_eq!(probe(port, "/readyz").await, (200, "ready\n".into()));
    node.stop().await.expect("stop");

    let position = window_position(&deployment).await;
    flip_payload_bit(&schema, position, "quarter-close").await;

    // Restarted: the break is found while the state is rebuilt, before anything is answered.
    let node = deployment.start(&["governance"]).await.expect("restart");
    assert_eq!(health(&node).await, ServingStatus::NotServing as i32);
    // Probes that cannot speak to the gRPC port (TLS) read the same on HTTP.
    let (status, why) = probe(port, "/readyz").await;
    assert_eq!(status, 503, "{why}");
    assert!(
        why.contains("governance: not serving") && why.contains(&position.to_string()),
        "{why}"
    );
    assert_eq!(probe(port, "/healthz").await.0, 200);
    let mut gov = admin(node.channel().await.expect("connect"));
    let refused = gov
        .list_freeze_windows(pb::ListFreezeWindowsRequest::default())
        .await
        .expect_err("a broken store is not served");
    assert_eq!(refused.code(), tonic::Code::DataLoss);
    assert!(
        refused
            .message()
            .contains(&format!("broken at position {position}")),
        "{refused:?}"
    );
    assert!(
        refused.message().contains(&format!(
            "accept_chain_breaks = [\"governance@{position}\"]"
        )),
        "{refused:?}"
    );
    let status = gov
        .get_status(GetStatusRequest {})
        .await
        .expect("status still answers")
        .into_inner();
    assert!(!status.chain_intact);
    assert!(
        status.chain_break.contains("altered"),
        "{}",
        status.chain_break
    );
    node.stop().await.expect("stop");

    // The operator looked at it and accepts this break: recorded, served again.
    deployment.config.accept_chain_breaks = vec![format!("governance@{position}")];
    let node = deployment.start(&["governance"]).await.expect("restart");
    assert_eq!(health(&node).await, ServingStatus::Serving as i32);
    assert_eq!(probe(port, "/readyz").await.0, 200);
    let mut gov = admin(node.channel().await.expect("connect"));
    let windows = gov
        .list_freeze_windows(pb::ListFreezeWindowsRequest::default())
        .await
        .expect("served after the accepted break")
        .into_inner()
        .windows;
    // Served as it is stored, altered, because the operator said so.
    assert_eq!(windows[0].name, "puarter-close");
    node.stop().await.expect("stop");
    let store = deployment.store("governance").await.expect("store");
    let accepted: Vec<_> = store
        .read_all(1, 100)
        .await
        .expect("read")
        .into_iter()
        .filter(|e| e.event_type == "flotilla.common.v1.ChainBreakAccepted")
        .collect();
    assert_eq!(accepted.len(), 1, "the acceptance is recorded once");
    let a = <flotilla_proto::common::v1::ChainBreakAccepted as prost::Message>::decode(
        accepted[0].payload.as_slice(),
    )
    .expect("decode");
    assert_eq!(a.position, position as u64);
    assert!(a.accepted_by.starts_with("operator"), "{}", a.accepted_by);

    // Without the override the recorded acceptance still holds...
    deployment.config.accept_chain_breaks.clear();
    let node = deployment.start(&["governance"]).await.expect("restart");
    assert_eq!(health(&node).await, ServingStatus::Serving as i32);
    node.stop().await.expect("stop");
    // ...for that content only: changed again, the store is refused again.
    flip_payload_bit(&schema, position, "financial").await;
    let node = deployment.start(&["governance"]).await.expect("restart");
    assert_eq!(health(&node).await, ServingStatus::NotServing as i32);
    // Probes that cannot speak to the gRPC port (TLS) read the same on HTTP.
    let (status, why) = probe(port, "/readyz").await;
    assert_eq!(status, 503, "{why}");
    assert!(
        why.contains("governance: not serving") && why.contains(&position.to_string()),
        "{why}"
    );
    assert_eq!(probe(port, "/healthz").await.0, 200);
    node.stop().await.expect("stop");
}

/// A row an insider adds while the service runs is checked as it arrives: the service stops
/// serving within moments.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_inserted_while_running_stops_the_service() {
    let deployment = Deployment::new(vec![BusKind::Nats]).expect("deployment");
    let schema = flotilla_store::schema_for(&deployment.config.namespace, "governance");
    let node = deployment.start(&["governance"]).await.expect("start");
    let mut gov = admin(node.channel().await.expect("connect"));
    gov.list_freeze_windows(pb::ListFreezeWindowsRequest::default())
        .await
        .expect("served");
    // A forged event at the next position, with a made-up hash, and the head moved to it.
    let pool = pg().await;
    let head: (i64, Vec<u8>) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT position, hash FROM \"{schema}\".store_head WHERE id = 1"
    )))
    .fetch_one(&pool)
    .await
    .expect("head");
    let next = head.0 + 1;
    let forged_id = uuid::Uuid::now_v7();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".events (global_position, stream_id, stream_version, event_id, event_type, schema_version, payload, actor, business_unit, recorded_at_us, prev_hash, hash) VALUES ($1, 'window-forged', 0, $2, 'flotilla.governance.v1.FreezeWindowCancelled', 1, '\\x0a00', 'insider', '', 0, $3, $4)"
    )))
    .bind(next)
    .bind(forged_id)
    .bind(head.1.clone())
    .bind(vec![9u8; 32])
    .execute(&pool)
    .await
    .expect("insert");
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE \"{schema}\".store_head SET position = $1, hash = $2 WHERE id = 1"
    )))
    .bind(next)
    .bind(vec![9u8; 32])
    .execute(&pool)
    .await
    .expect("move head");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match gov
            .list_freeze_windows(pb::ListFreezeWindowsRequest::default())
            .await
        {
            Err(e) if e.code() == tonic::Code::DataLoss => {
                assert!(e.message().contains(&format!("position {next}")), "{e:?}");
                break;
            }
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the forged row was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health(&node).await, ServingStatus::NotServing as i32);
    // The relay published what was checked, never the forged row.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let js = async_nats::jetstream::new(
        async_nats::connect(flotilla_tests::nats_url())
            .await
            .expect("nats"),
    );
    let stream_name = format!("{}_GOVERNANCE", deployment.config.namespace).to_ascii_uppercase();
    if let Ok(stream) = js.get_stream(&stream_name).await {
        use futures::StreamExt as _;
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        while let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(500), messages.next()).await
        {
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("ce-id"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            assert_ne!(id, forged_id.to_string(), "the forged row was published");
        }
    }
    // The relay published what was checked, never the forged row.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let js = async_nats::jetstream::new(
        async_nats::connect(flotilla_tests::nats_url())
            .await
            .expect("nats"),
    );
    let stream_name = format!("{}_GOVERNANCE", deployment.config.namespace).to_ascii_uppercase();
    if let Ok(stream) = js.get_stream(&stream_name).await {
        use futures::StreamExt as _;
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        while let Ok(Some(Ok(m))) =
            tokio::time::timeout(Duration::from_millis(500), messages.next()).await
        {
            let id = m
                .headers
                .as_ref()
                .and_then(|h| h.get("ce-id"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            assert_ne!(id, forged_id.to_string(), "the forged row was published");
        }
    }
    node.stop().await.expect("stop");
}
