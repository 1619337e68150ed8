//! Monitoring's domain gauges: the four DORA metrics per business unit over the last 30 days
//! (production environments only), computed from the state as `GetDoraMetrics` computes them:
//! again only when the state moved or [`FRESH`] passed (they scan every deployment recorded;
//! other scrapes get the figures computed last).

use std::collections::BTreeSet;
use std::sync::Arc;

use flotilla_runtime::kit::{Gauges, Sample};

use crate::app::MonitoringApp;
use crate::domain::{Breach, DoraMetric, DoraQuery, Interval, dora};

/// The window the gauges cover, in days (today included).
const WINDOW_DAYS: i64 = 30;
/// How long computed figures are served before they are computed again.
const FRESH: std::time::Duration = std::time::Duration::from_secs(30);

const METRICS: [(DoraMetric, &str, &str); 4] = [
    (
        DoraMetric::DeploymentFrequency,
        "flotilla_dora_deployments_30d",
        "DORA deployment frequency: production deployments in the last 30 days, by business unit.",
    ),
    (
        DoraMetric::LeadTimeForChanges,
        "flotilla_dora_lead_time_seconds",
        "DORA lead time for changes over the last 30 days (median, commit to production), by business unit.",
    ),
    (
        DoraMetric::ChangeFailureRate,
        "flotilla_dora_change_failure_rate",
        "DORA change failure rate over the last 30 days (0 to 1), by business unit.",
    ),
    (
        DoraMetric::TimeToRestoreService,
        "flotilla_dora_time_to_restore_seconds",
        "DORA time to restore service over the last 30 days (median), by business unit.",
    ),
];

pub fn of(app: Arc<MonitoringApp>) -> Gauges {
    let last: std::sync::Mutex<Option<(std::time::Instant, u64, Vec<Sample>)>> =
        std::sync::Mutex::new(None);
    Arc::new(move || {
        let mut last = last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let position = app.position();
        // Computed again when the state moved, or the window did (the date).
        if let Some((at, seen, samples)) = last.as_ref()
            && *seen == position
            && at.elapsed() < FRESH
        {
            return samples.clone();
        }
        let samples = compute(&app);
        *last = Some((std::time::Instant::now(), position, samples.clone()));
        samples
    })
}

fn compute(app: &MonitoringApp) -> Vec<Sample> {
    let to = time::OffsetDateTime::now_utc().date();
    let from = to - time::Duration::days(WINDOW_DAYS - 1);
    let production = app.production.clone();
    app.query(|m| {
        let breaches: Vec<&Breach> = m.breaches.values().collect();
        let units: BTreeSet<&str> = m
            .deployments
            .iter()
            .map(|n| n.business_unit.as_str())
            .collect();
        let mut samples = Vec::new();
        for unit in units {
            for (metric, name, help) in METRICS {
                let q = DoraQuery {
                    metric,
                    business_unit: unit.to_owned(),
                    service: String::new(),
                    from,
                    to,
                    interval: Interval::All,
                    production: production.clone(),
                };
                let value = dora(&m.deployments, &m.artifacts, &breaches, &q)
                    .ok()
                    .and_then(|points| points.first().and_then(|p| p.value));
                if let Some(v) = value {
                    samples.push(Sample::new(name, help, v).label("business_unit", unit));
                }
            }
        }
        samples
    })
}
