//! Orchestration's domain gauges, read from its state at each scrape: the releases in flight
//! (deployments under way) by business unit, environment and status, and the finished
//! deployments by business unit and outcome.

use std::collections::BTreeMap;
use std::sync::Arc;

use flotilla_runtime::kit::{Gauges, Sample};

use crate::app::OrchestrationApp;

/// A status as a label value (`rolled_back`).
fn label(status: &str) -> String {
    status.replace(' ', "_")
}

pub fn of(app: Arc<OrchestrationApp>) -> Gauges {
    Arc::new(move || {
        app.query(|o| {
            let mut in_flight: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
            let mut finished: BTreeMap<(&str, &str), u64> = BTreeMap::new();
            for d in o.deployments.values() {
                let status = d.status.as_str();
                if d.status.is_over() {
                    *finished.entry((&d.business_unit, status)).or_default() += 1;
                } else {
                    *in_flight
                        .entry((&d.business_unit, &d.environment, status))
                        .or_default() += 1;
                }
            }
            let mut samples = Vec::with_capacity(in_flight.len() + finished.len());
            for ((unit, env, status), n) in in_flight {
                samples.push(
                    Sample::new(
                        "flotilla_releases_in_flight",
                        "Releases being deployed, by business unit, environment and deployment status.",
                        n as f64,
                    )
                    .label("business_unit", unit)
                    .label("environment", env)
                    .label("status", label(status)),
                );
            }
            for ((unit, outcome), n) in finished {
                samples.push(
                    Sample::new(
                        "flotilla_deployments_finished",
                        "Finished deployments, by business unit and outcome (succeeded, rolled_back, failed).",
                        n as f64,
                    )
                    .label("business_unit", unit)
                    .label("outcome", label(outcome)),
                );
            }
            samples
        })
    })
}
