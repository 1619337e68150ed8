//! The ledger over Kafka, and replay against what plain Kafka and NATS consumers got.

use flotilla_proto::compliance::v1 as pb;
use flotilla_proto::compliance::v1::compliance_service_client::ComplianceServiceClient;
use flotilla_runtime::config::BusKind;
use flotilla_tests::Deployment;

use crate::support::*;

/// Over Kafka (three partitions keyed by stream: a service's events arrive out of order across
/// streams) the ledger still links every position; and what Replay gives is what a plain Kafka
/// consumer of `<namespace>.dependency-mapping.events` and a plain NATS consumer of its
/// JetStream stream got: the same events, by the same CloudEvents ids, with the same data.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_kafka_the_ledger_links_and_replays_what_both_buses_carried() {
    let mut deployment = Deployment::new(vec![BusKind::Kafka, BusKind::Nats]).expect("deployment");
    settings(&mut deployment);
    let ns = deployment.config.namespace.clone();
    let node = deployment.start(&SERVICES).await.expect("start");
    let admin = node
        .as_caller("ops", &["admin"], "central")
        .await
        .expect("admin");
    for name in ["till", "basket", "checkout", "loyalty", "receipts"] {
        register(&admin, name).await;
    }
    let mut ledger = ComplianceServiceClient::new(
        node.as_caller("aud", &["auditor"], "central")
            .await
            .expect("auditor"),
    );
    for s in ledgered(&admin, &mut ledger).await {
        assert_eq!((s.waiting, s.alerts), (0, 0), "{s:?}");
    }
    let replayed: Vec<pb::ReplayedEvent> = replay_all(
        &mut ledger,
        pb::ReplayRequest {
            services: vec!["dependency-mapping".into()],
            ..Default::default()
        },
    )
    .await;
    let mut ours: Vec<(String, Vec<u8>)> = replayed
        .iter()
        .map(|r| {
            let ce = r.event.clone().expect("ce");
            (ce.id, ce.data)
        })
        .collect();
    ours.sort();
    let kafka = flotilla_tests::probe::kafka_messages(
        &format!("{ns}.dependency-mapping.events"),
        ours.len(),
    )
    .await;
    let mut on_kafka: Vec<(String, Vec<u8>)> = kafka
        .iter()
        .map(|m| (m.headers["ce_id"].clone(), m.data.clone()))
        .collect();
    on_kafka.sort();
    on_kafka.dedup();
    let stream = format!("{ns}_dependency_mapping").to_ascii_uppercase();
    let nats = flotilla_tests::probe::nats_messages(&stream, ours.len()).await;
    let mut on_nats: Vec<(String, Vec<u8>)> = nats
        .iter()
        .map(|m| (m.headers["ce-id"].clone(), m.data.clone()))
        .collect();
    on_nats.sort();
    on_nats.dedup();
    assert_eq!(ours, on_kafka, "replay and the Kafka topic");
    assert_eq!(ours, on_nats, "replay and the NATS stream");
    node.stop().await.expect("stop");
}
