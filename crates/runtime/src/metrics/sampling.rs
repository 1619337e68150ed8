//! What a node samples for its metrics every few seconds: each service's store head, whether
//! this replica reads it, how far each relay's checkpoint is behind it, what the store's writer
//! measured, and how many events each consumer group has not acknowledged on the bus it
//! consumes from (asked by the replica holding the group's service's duty lease only, each ask
//! bounded, in a task of its own so a slow bus holds nothing else back).

use std::sync::Arc;
use std::time::Duration;

use flotilla_bus::Bus;
use flotilla_core::store::EventStore;
use tokio::sync::watch;

use super::Metrics;

/// How often a node samples its stores and consumer groups.
const EVERY: Duration = Duration::from_secs(5);
/// The longest one consumer group's lag is waited for.
const LAG_WAIT: Duration = Duration::from_secs(3);

/// A service's store, and this replica's check of it.
pub(crate) struct SampledStore {
    pub service: &'static str,
    pub store: Arc<dyn EventStore>,
    pub chain: Arc<crate::integrity::ChainGuard>,
}

/// The consumer groups of a bus: each (group, source) consuming on it.
pub(crate) struct Consumed {
    pub bus: Arc<dyn Bus>,
    pub groups: Vec<(String, String)>,
}

/// What a node samples.
pub(crate) struct Sampled {
    /// Each service's store.
    pub stores: Vec<SampledStore>,
    /// The buses its relays publish to.
    pub buses: Vec<Arc<dyn Bus>>,
    /// The bus consumers take from, and its groups.
    pub consumers: Option<Consumed>,
}

/// Samples until `stop` turns true.
pub(crate) async fn sample(metrics: Arc<Metrics>, sampled: Sampled, stop: watch::Receiver<bool>) {
    if let Some(consumed) = sampled.consumers {
        tokio::spawn(sample_lag(metrics.clone(), consumed, stop.clone()));
    }
    sample_stores(metrics, sampled.stores, sampled.buses, stop).await;
}

async fn sample_stores(
    metrics: Arc<Metrics>,
    stores: Vec<SampledStore>,
    buses: Vec<Arc<dyn Bus>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        for s in &stores {
            metrics.set_readable(s.service, s.chain.broken().is_none());
            if let Some(stats) = s.store.writer_stats() {
                metrics.set_writer(s.service, stats);
            }
            let Ok(head) = s.store.head().await else {
                continue;
            };
            let mut relays = Vec::new();
            for bus in &buses {
                let name = format!("relay:{}:{}", s.service, bus.name());
                if let Ok(published) = s.store.load_checkpoint(&name).await {
                    relays.push((bus.name().to_owned(), published.unwrap_or(0)));
                }
            }
            metrics.set_store(s.service, head.position, &relays);
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Each consumer group's lag, asked by the holder of its service's duty lease only (one
/// replica asks the bus; the others show nothing for the group).
async fn sample_lag(metrics: Arc<Metrics>, consumed: Consumed, mut stop: watch::Receiver<bool>) {
    let Consumed { bus, groups } = consumed;
    loop {
        for (group, source) in &groups {
            let lag = if metrics.holds(group) {
                match tokio::time::timeout(LAG_WAIT, bus.consumer_lag(source, group)).await {
                    Ok(Ok(lag)) => lag,
                    Ok(Err(e)) => {
                        tracing::debug!(group, source, error = %e, "consumer lag not sampled");
                        None
                    }
                    Err(_) => {
                        tracing::debug!(group, source, "consumer lag not sampled in time");
                        None
                    }
                }
            } else {
                None
            };
            // Unknown now: the series goes away rather than showing a stale figure.
            metrics.set_consumer_lag(group, source, bus.name(), lag);
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
