//! The demo's departures from the ordinary path: a break-glass deviation from a freeze,
//! approved by a second role, and a production threshold breach that monitoring answers with
//! an automatic rollback.

use std::time::{Duration, Instant};

use flotilla_proto::governance::v1 as gov;
use flotilla_proto::monitoring::v1 as mon;
use flotilla_proto::monitoring::v1::monitoring_service_client::MonitoringServiceClient;
use flotilla_proto::orchestration::v1 as pb;

use super::story::{Story, over};
use crate::client::failed;
use crate::orchestration::view::DeploymentView;

impl Story {
    /// Cards' release manager asks to deviate from the unit's freeze for one release into one
    /// environment, with a justification, compensating controls and an expiry; security, a
    /// second role, approves it. The gate then shows the freeze as waived.
    pub(super) async fn deviate_from_freeze(
        &mut self,
        release: &str,
        env: &str,
    ) -> anyhow::Result<()> {
        let now = crate::format::now()?;
        let mut carl = self.gov("carl", &["release-manager"], "cards").await?;
        let asked = carl
            .request_deviation(gov::RequestDeviationRequest {
                deviation: Some(gov::Deviation {
                    rule: gov::GateRule::FreezeWindow as i32,
                    release: release.into(),
                    environment: env.into(),
                    business_unit: "cards".into(),
                    justification:
                        "a card-authorisation defect declines valid cards during the close".into(),
                    compensating_controls: vec![
                        "a second engineer watches the canary".into(),
                        "finance is told before and after".into(),
                    ],
                    expires_at: Some(prost_types::Timestamp {
                        seconds: now.seconds + 2 * 3600,
                        nanos: 0,
                    }),
                    requester_role: "release-manager".into(),
                    ..Default::default()
                }),
            })
            .await
            .map_err(|s| failed("request a deviation", s))?
            .into_inner();
        self.say(format!(
            "cards asks to deviate from its freeze for {release} into {env}: justified, two compensating controls, expires in 2 h"
        ));
        let mut sofia = self.gov("sofia", &["security"], "cards").await?;
        sofia
            .approve_deviation(gov::DecideDeviationRequest {
                deviation_id: asked.deviation_id.clone(),
                role: "security".into(),
                comment: "controls in place".into(),
            })
            .await
            .map_err(|s| failed("approve the deviation", s))?;
        self.say(
            "security, a second role, approves the deviation: the gate shows the freeze as waived",
        );
        Ok(())
    }

    /// Monitoring watches a finished production deployment; the service's error rate crosses
    /// the tier's threshold inside the window, monitoring asks for a rollback and
    /// orchestration rolls the release back by itself.
    pub(super) async fn breach(
        &mut self,
        unit: &str,
        release: &str,
        service: &str,
        deployment: &str,
    ) -> anyhow::Result<bool> {
        let addr = self.addrs.monitoring.clone();
        let mut m = MonitoringServiceClient::new(
            self.authed(&addr, "otto", &["scheduler"], "central")
                .await?,
        );
        // Monitoring opens the watch when it takes orchestration's DeploymentFinished.
        let deadline = Instant::now() + Duration::from_secs(60);
        let watch = loop {
            let open = m
                .list_watches(mon::ListWatchesRequest {
                    service: service.into(),
                    environment: "prod".into(),
                    status: mon::WatchStatus::Open as i32,
                })
                .await
                .map_err(|s| failed("list watches", s))?
                .into_inner()
                .watches
                .into_iter()
                .find(|w| w.deployment_id == deployment);
            match open {
                Some(w) => break w,
                None if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                None => anyhow::bail!(
                    "monitoring opened no watch of {service} in prod for deployment {deployment} within a minute"
                ),
            }
        };
        let thresholds: Vec<String> = watch
            .thresholds
            .iter()
            .map(|t| format!("{} above {}", t.metric, t.threshold))
            .collect();
        self.say(format!(
            "monitoring watches {service} in prod after {release}: {}",
            thresholds.join(", ")
        ));
        // Samples of the last moments, to the nanosecond: the window opened when the
        // deployment finished, perhaps within this very second.
        let now = crate::format::instant()?;
        let sample = |ms_ago: i64, value: f64| {
            let nanos = i64::from(now.nanos) - ms_ago * 1_000_000;
            mon::Sample {
                at: Some(prost_types::Timestamp {
                    seconds: now.seconds + nanos.div_euclid(1_000_000_000),
                    nanos: nanos.rem_euclid(1_000_000_000) as i32,
                }),
                value,
            }
        };
        let batch = mon::SampleBatch {
            service: service.into(),
            environment: "prod".into(),
            metric: "error_rate".into(),
            samples: vec![sample(20, 0.004), sample(10, 0.006), sample(0, 0.091)],
        };
        let pushed = m
            .push_samples(tokio_stream::iter(vec![batch]))
            .await
            .map_err(|s| failed("push samples", s))?
            .into_inner();
        anyhow::ensure!(
            !pushed.breach_ids.is_empty(),
            "an error rate of 0.091 should have breached the watch of {service} ({} samples taken, {} outside its window)",
            pushed.samples,
            pushed.outside_windows
        );
        self.say(format!(
            "{service}'s error rate reaches 0.091: monitoring records the breach and asks for a rollback; orchestration rolls {release} back"
        ));
        let d = self
            .follow(unit, deployment, |d| {
                over(d) && d.status == pb::DeploymentStatus::RolledBack as i32
            })
            .await?;
        let view = DeploymentView::from(&d);
        self.outcome(
            release,
            unit,
            "prod",
            format!("{}: {}", view.status, view.reason),
        );
        Ok(view.status == "rolled-back")
    }
}
