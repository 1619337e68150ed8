//! The poller of PromQL health checks: every open window's checks asked for their value now
//! (Prometheus' HTTP API, through the runtime's client) and recorded as samples.

use std::sync::Arc;
use std::time::Duration;

use flotilla_core::event::Metadata;
use flotilla_runtime::kit::{Scheduler, Shutdown};
use flotilla_runtime::prometheus::Prometheus;
use futures::FutureExt;
use uuid::Uuid;

use crate::app::MonitoringApp;
use crate::domain::*;

/// Every `every`, the value now of each open window's PromQL health checks, recorded as
/// samples (source `prometheus`).
pub fn poll(app: Arc<MonitoringApp>, prometheus: Prometheus, every: Duration) -> Scheduler {
    Arc::new(move |mut shutdown: Shutdown| {
        let app = app.clone();
        let prometheus = prometheus.clone();
        async move {
            let mut clock = tokio::time::interval(every);
            clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = clock.tick() => {}
                    _ = shutdown.wait() => return,
                }
                let asks: Vec<(String, String, String, String)> = app.query(|m| {
                    m.open
                        .values()
                        .filter_map(|id| m.watches.get(id))
                        .flat_map(|w| {
                            m.checks_for(&w.service, &w.environment)
                                .filter(|c| !c.promql.is_empty())
                                .map(|c| {
                                    (
                                        w.service.clone(),
                                        w.environment.clone(),
                                        c.name.clone(),
                                        c.promql.clone(),
                                    )
                                })
                                .collect::<Vec<_>>()
                        })
                        .collect()
                });
                for (service, environment, metric, promql) in asks {
                    let now = Timestamp::now();
                    let samples = match prometheus.query(&promql, now).await {
                        Ok(points) if points.is_empty() => {
                            tracing::debug!(%service, %metric, "prometheus has no value for the check now");
                            continue;
                        }
                        Ok(points) => points
                            .into_iter()
                            .map(|p| Sample {
                                at: p.at,
                                value: p.value,
                            })
                            .collect(),
                        Err(e) => {
                            tracing::warn!(%service, %metric, error = %e, "a health check's PromQL could not be read; trying again at the next poll");
                            continue;
                        }
                    };
                    let c = RecordSamples {
                        service: service.clone(),
                        environment,
                        metric: metric.clone(),
                        samples,
                        source: "prometheus".into(),
                        seed: Uuid::now_v7(),
                        now,
                    };
                    if let Err(e) = app
                        .record_samples(c, Metadata::by("monitoring-prometheus", ""))
                        .await
                    {
                        tracing::warn!(%service, %metric, error = %e, "prometheus' samples were not taken");
                    }
                }
            }
        }
        .boxed()
    })
}
