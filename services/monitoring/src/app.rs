//! Monitoring's app: the kit's event-sourced app over the domain. One instance per process
//! serves the gRPC edge, the consumers of orchestration's and the catalog's events, the
//! scheduler that ends windows whose time is up, and the poller of Prometheus health checks.

use std::sync::Arc;
use std::time::Duration;

use flotilla_core::decider::Decision;
use flotilla_core::event::Metadata;
use flotilla_runtime::kit::{self, App, Executed, Scheduler, Shutdown, Snapshotted, UnitOf};
use flotilla_runtime::{Consumer, ServiceContext};
use futures::FutureExt;
use serde::Deserialize;
use tonic::service::RoutesBuilder;
use uuid::Uuid;

use crate::codec::MonitoringEvents;
use crate::domain::*;

/// Inbox name of monitoring's consumers.
pub const CONSUMER: &str = "monitoring";

pub type AppError = kit::AppError<DomainError>;

/// `[monitoring]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Prometheus' base URL (e.g. `http://127.0.0.1:9090`); empty: health checks with a PromQL
    /// expression are not polled (their samples may still be pushed).
    pub prometheus_url: String,
    /// How often open windows' PromQL checks are queried (default 15 s).
    pub poll_secs: Option<u64>,
    /// How often windows whose time is up are ended (default 5 s).
    pub tick_secs: Option<u64>,
    /// The environments DORA counts as production (default prod and production).
    pub production_environments: Option<Vec<String>>,
}

impl UnitOf for Monitoring {
    fn unit_of(&self, decision: &Decision<Event>) -> Option<String> {
        decision.events.iter().find_map(|e| match e {
            Event::HealthCheckDefined(c) => Some(c.business_unit.clone()),
            Event::CatalogServiceNoted { business_unit, .. } => Some(business_unit.clone()),
            Event::WatchOpened(w) => Some(w.business_unit.clone()),
            Event::DeploymentNoted(d) => Some(d.business_unit.clone()),
            Event::TicketRecorded(t) => Some(t.business_unit.clone()),
            Event::PostmortemRecorded(p) => Some(p.business_unit.clone()),
            Event::TimelineNoted(_) => None,
            Event::AdoptionTargetDeclared(t) => Some(t.business_unit.clone()),
            Event::AdoptionMeasured {
                release, feature, ..
            } => self
                .adoption_targets
                .get(&(release.clone(), feature.clone()))
                .map(|t| t.business_unit.clone()),
            Event::ArtifactNoted { .. } | Event::DependencyNoted { .. } => None,
            Event::RollbackThresholdBreached(b) => Some(b.business_unit.clone()),
            Event::SamplesObserved { watch, .. } | Event::WatchClosed { watch, .. } => {
                self.watches.get(watch).map(|w| w.business_unit.clone())
            }
            Event::HealthCheckRemoved { service, name } => self
                .checks
                .get(&(service.clone(), name.clone()))
                .map(|c| c.business_unit.clone()),
            Event::RollbackRequested(_) | Event::WatchPolicySet { .. } => None,
        })
    }
}

impl Snapshotted for Monitoring {
    const SNAPSHOT_VERSION: u32 = 1;
}

#[derive(Debug)]
pub struct MonitoringApp {
    app: Arc<App<Monitoring>>,
    /// The environments DORA counts as production.
    pub production: Vec<String>,
}

impl MonitoringApp {
    pub async fn execute(
        &self,
        command: Command,
        md: Metadata,
    ) -> Result<Executed<Event>, AppError> {
        self.app.execute(command, md).await
    }

    /// Samples of one metric, judged against the open window on the state they are decided
    /// on; answers what they did.
    pub async fn record_samples(&self, c: RecordSamples, md: Metadata) -> Result<Taken, AppError> {
        let taken = std::sync::Mutex::new(Taken::default());
        self.app
            .execute_with(
                |s| {
                    let (t, _) = s.take_samples(&c)?;
                    if let Ok(mut slot) = taken.lock() {
                        *slot = t;
                    }
                    Ok(c.clone().into())
                },
                md,
            )
            .await?;
        Ok(taken.into_inner().unwrap_or_default())
    }

    /// Takes another service's event as the command `command_of` maps it to (once, by its id).
    pub async fn take_event(
        &self,
        event: &flotilla_bus::CloudEvent,
        command_of: impl FnOnce(&Monitoring, Uuid) -> Result<Option<Command>, DomainError>,
    ) -> Result<(), flotilla_runtime::HandlerError> {
        self.app
            .take_event(CONSUMER, "monitoring-consumer", event, command_of)
            .await
    }

    /// The store position the state includes.
    pub fn position(&self) -> u64 {
        self.app.position()
    }

    pub fn query<T>(&self, f: impl FnOnce(&Monitoring) -> T) -> T {
        self.app.query(f)
    }

    /// Ends the windows whose time is up, every `tick`.
    fn scheduler(self: Arc<Self>, tick: Duration) -> Scheduler {
        Arc::new(move |mut shutdown: Shutdown| {
            let this = self.clone();
            async move {
                let mut clock = tokio::time::interval(tick);
                clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                loop {
                    tokio::select! {
                        _ = clock.tick() => {}
                        _ = shutdown.wait() => return,
                    }
                    let due = this.query(|m| {
                        let now = Timestamp::now();
                        m.open
                            .values()
                            .filter_map(|id| m.watches.get(id))
                            .any(|w| w.closes_at < now)
                    });
                    if !due {
                        continue;
                    }
                    let md = Metadata::by("monitoring-scheduler", "");
                    let c = CloseDueWatches {
                        now: Timestamp::now(),
                    };
                    if let Err(e) = this.execute(c.into(), md).await {
                        tracing::warn!(error = %e, "ending watch windows failed; trying again at the next tick");
                    }
                }
            }
            .boxed()
        })
    }
}

/// Builds monitoring for the node: the app, its routes, its consumers and its tasks.
pub async fn start(
    ctx: ServiceContext,
    routes: &mut RoutesBuilder,
) -> Result<kit::Started, kit::StartError> {
    let settings: Settings = ctx
        .section()
        .map_err(|e| kit::StartError::new(crate::NAME, e))?;
    let (app, follower) = App::builder(&ctx, Arc::new(MonitoringEvents))
        .start()
        .await
        .map_err(|e| kit::StartError::new(crate::NAME, e))?;
    let app = Arc::new(MonitoringApp {
        app,
        production: settings
            .production_environments
            .clone()
            .unwrap_or_else(|| vec!["prod".into(), "production".into()]),
    });
    routes.add_service(crate::grpc::server(ctx, app.clone()));
    let tick = Duration::from_secs(settings.tick_secs.unwrap_or(5).max(1));
    let mut started = kit::Started::with_app(follower)
        .scheduled(app.clone().scheduler(tick))
        .gauges(crate::gauges::of(app.clone()));
    if settings.prometheus_url.is_empty() {
        tracing::info!(
            "[monitoring] prometheus_url is not set: PromQL health checks are not polled (push their samples)"
        );
    } else {
        let poll = Duration::from_secs(settings.poll_secs.unwrap_or(15).max(1));
        let prometheus = flotilla_runtime::prometheus::Prometheus::new(&settings.prometheus_url)
            .map_err(|e| kit::StartError::new(crate::NAME, e))?;
        started = started.scheduled(crate::prometheus::poll(app.clone(), prometheus, poll));
    }
    let inbound = Arc::new(crate::inbound::Inbound(app));
    Ok(crate::inbound::SOURCES
        .iter()
        .fold(started, |started, source| {
            started.consume(Consumer {
                source: (*source).into(),
                handler: inbound.clone(),
            })
        }))
}
