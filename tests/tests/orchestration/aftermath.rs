//! After monitoring's rollback of payments-2.0.0 out of dev (the watch module's first test):
//! the anomaly correlated with the releases through the catalog's graph, a support ticket and
//! feature adoption against the release's objective, the post-mortem with its timeline from
//! every service, read by another unit, and DORA's keys for the day.

use std::time::{Duration, SystemTime};

use crate::flow::*;
use flotilla_proto::monitoring::v1 as mon;
use flotilla_proto::monitoring::v1::monitoring_service_client::MonitoringServiceClient;
use tonic::Code;

async fn monitoring(flow: &Flow, who: &str, roles: &[&str]) -> MonitoringServiceClient<Authed> {
    MonitoringServiceClient::new(authed(&flow.node, who, roles, UNIT).await)
}

/// Everything monitoring answers about the rolled-back release (dev counts as production).
pub async fn after_the_rollback(flow: &Flow) {
    let mut m = monitoring(flow, "sam", &["service-owner"]).await;
    let mut sre = monitoring(flow, "sam", &["service-owner"]).await;
    // The anomaly on the api, correlated through the catalog's graph: its own deployment first,
    // then the ledger it calls.
    let suspects = m
        .correlate_anomaly(mon::CorrelateAnomalyRequest {
            service: "payments-api".into(),
            environment: "dev".into(),
            ..Default::default()
        })
        .await
        .expect("correlate")
        .into_inner()
        .suspects;
    let ranked: Vec<(&str, u32)> = suspects
        .iter()
        .map(|s| (s.service.as_str(), s.distance))
        .collect();
    assert_eq!(
        ranked,
        [("payments-api", 0), ("payments-ledger", 1)],
        "{suspects:?}"
    );
    assert!(
        suspects[1]
            .why
            .starts_with("payments-api depends on payments-ledger"),
        "{}",
        suspects[1].why
    );
    // A support ticket about the api is linked to the release; with a declared adoption target
    // not reached and a sev-2 ticket, the release did not meet its objective.
    let t = sre
        .record_ticket(mon::RecordTicketRequest {
            ticket: Some(mon::Ticket {
                ticket_id: "INC-4711".into(),
                service: "payments-api".into(),
                environment: "dev".into(),
                severity: mon::Severity::Sev2 as i32,
                summary: "card payments declined".into(),
                opened_at: Some(SystemTime::now().into()),
                ..Default::default()
            }),
        })
        .await
        .expect("ticket")
        .into_inner();
    assert_eq!(t.release, "payments-2.0.0", "{t:?}");
    let mut manager = monitoring(flow, "rita", &["release-manager"]).await;
    manager
        .declare_adoption_target(mon::DeclareAdoptionTargetRequest {
            target: Some(mon::AdoptionTarget {
                release: "payments-2.0.0".into(),
                feature: "wallet".into(),
                metric: "wallet_share".into(),
                target: 0.3,
                due: Some((SystemTime::now() + Duration::from_secs(86_400)).into()),
                business_unit: UNIT.into(),
                ..Default::default()
            }),
        })
        .await
        .expect("target");
    sre.record_adoption(mon::RecordAdoptionRequest {
        release: "payments-2.0.0".into(),
        feature: "wallet".into(),
        value: 0.41,
        measured_at: None,
    })
    .await
    .expect("adoption");
    let o = m
        .get_release_outcome(mon::GetReleaseOutcomeRequest {
            release: "payments-2.0.0".into(),
        })
        .await
        .expect("outcome")
        .into_inner();
    assert_eq!(o.features[0].verdict, mon::AdoptionVerdict::Achieved as i32);
    assert_eq!(o.tickets.len(), 1);
    assert_eq!(o.objective_met, Some(false), "{o:?}");
    drop(manager);
    // The post-mortem: recorded by the unit, read by another; its timeline from every service.
    let mut manager = monitoring(flow, "rita", &["release-manager"]).await;
    manager
        .record_postmortem(mon::RecordPostmortemRequest {
            release: "payments-2.0.0".into(),
            summary: "error rate of the api rose after the deploy; rolled back".into(),
            factors: vec![mon::ContributingFactor {
                kind: mon::FactorKind::Testing as i32,
                description: "no load test of the new retry path".into(),
            }],
            actions: vec![mon::FollowUp {
                action: "load-test retries in staging".into(),
                owner: "sam".into(),
                due: Some((SystemTime::now() + Duration::from_secs(7 * 86_400)).into()),
                done: false,
            }],
        })
        .await
        .expect("post-mortem");
    let mut other_unit =
        MonitoringServiceClient::new(authed(&flow.node, "cody", &["developer"], "cards").await);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let p = loop {
        let p = other_unit
            .get_postmortem(mon::GetPostmortemRequest {
                release: "payments-2.0.0".into(),
            })
            .await
            .expect("readable by another unit")
            .into_inner();
        let sources: std::collections::BTreeSet<&str> =
            p.timeline.iter().map(|e| e.source.as_str()).collect();
        if [
            "risk-validation",
            "governance",
            "orchestration",
            "monitoring",
            "support",
        ]
        .iter()
        .all(|s| sources.contains(s))
        {
            break p;
        }
        assert!(tokio::time::Instant::now() < deadline, "{:#?}", p.timeline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let said: Vec<&str> = p.timeline.iter().map(|e| e.what.as_str()).collect();
    assert!(
        said.iter()
            .any(|w| w.starts_with("approved by sam as service-owner")),
        "{said:#?}"
    );
    assert!(
        said.contains(&"payments-api rolled back in dev (nothing ran before)"),
        "{said:#?}"
    );
    let found = other_unit
        .list_postmortems(mon::ListPostmortemsRequest {
            service: "payments-ledger".into(),
            factor: mon::FactorKind::Testing as i32,
        })
        .await
        .expect("search")
        .into_inner()
        .postmortems;
    assert_eq!(found.len(), 1);
    let none = other_unit
        .list_postmortems(mon::ListPostmortemsRequest {
            service: String::new(),
            factor: mon::FactorKind::Capacity as i32,
        })
        .await
        .expect("search")
        .into_inner()
        .postmortems;
    assert!(none.is_empty());
    drop((manager, other_unit));
    // DORA for today, from what monitoring recorded: one deployment, failed by its rollback,
    // restored within the test's seconds; lead time from the builds' registration.
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let dora = m
        .get_dora_metrics(mon::GetDoraMetricsRequest {
            business_unit: UNIT.into(),
            start_date: today.clone(),
            end_date: today.clone(),
            interval: mon::DoraInterval::Daily as i32,
            ..Default::default()
        })
        .await
        .expect("dora")
        .into_inner();
    let value = |metric: mon::DoraMetric| {
        dora.series
            .iter()
            .find(|s| s.metric == metric as i32)
            .and_then(|s| s.points.first())
            .and_then(|p| p.value)
    };
    assert_eq!(
        value(mon::DoraMetric::DeploymentFrequency),
        Some(1.0),
        "{dora:?}"
    );
    assert_eq!(value(mon::DoraMetric::ChangeFailureRate), Some(1.0));
    assert_eq!(value(mon::DoraMetric::RollbackIncidence), Some(1.0));
    let restore = value(mon::DoraMetric::TimeToRestoreService).expect("restored");
    assert!((0.0..60.0).contains(&restore), "{restore}");
    // The builds were committed two hours before they registered.
    let lead = value(mon::DoraMetric::LeadTimeForChanges).expect("lead time");
    assert!((7_200.0..7_500.0).contains(&lead), "{lead}");
    let refused = m
        .get_dora_metrics(mon::GetDoraMetricsRequest {
            business_unit: UNIT.into(),
            start_date: "yesterday".into(),
            end_date: today,
            ..Default::default()
        })
        .await
        .expect_err("not a date");
    assert_eq!(refused.code(), Code::InvalidArgument);
}
