//! Risk-validation's app: the kit's event-sourced app over the domain. One instance per
//! process serves the gRPC edge.

use std::sync::Arc;

use flotilla_core::decider::Decision;
use flotilla_core::event::Metadata;
use flotilla_runtime::kit::{self, App, Executed, Snapshotted, UnitOf};
use flotilla_runtime::{Consumer, ServiceContext};
use tonic::service::RoutesBuilder;

use crate::codec::RiskEvents;
use crate::domain::*;

/// Inbox name of risk-validation's consumers.
pub const CONSUMER: &str = "risk-validation";

/// What risk-validation's app answers when something fails.
pub type AppError = kit::AppError<DomainError>;

impl UnitOf for RiskValidation {
    /// A judgement belongs to the unit of the release it judges.
    fn unit_of(&self, decision: &Decision<Event>) -> Option<String> {
        decision.events.iter().find_map(|e| match e {
            Event::CanaryJudged(j) => Some(j.business_unit.clone()),
            Event::RiskAssessed(a) => Some(a.business_unit.clone()),
            Event::FmeaRecorded(f) => Some(f.business_unit.clone()),
            Event::ValidationRecorded(v) => Some(v.business_unit.clone()),
            Event::ReleaseNoted(r) => Some(r.business_unit.clone()),
            Event::CatalogServiceNoted(c) => Some(c.business_unit.clone()),
            Event::PromotionPathNoted { business_unit, .. } => Some(business_unit.clone()),
            Event::DeploymentNoted(_) | Event::RiskWeightsSet { .. } | Event::PlanNoted { .. } => {
                None
            }
        })
    }
}

impl Snapshotted for RiskValidation {
    /// 2: the state gained assessments, FMEA and validations (issue 11); older snapshots are replayed past.
    const SNAPSHOT_VERSION: u32 = 2;
}

/// Risk-validation's state and commands over its store.
#[derive(Debug)]
pub struct RiskApp {
    app: Arc<App<RiskValidation>>,
}

impl RiskApp {
    /// Decides a command and records its events.
    pub async fn execute(
        &self,
        command: Command,
        md: Metadata,
    ) -> Result<Executed<Event>, AppError> {
        self.app.execute(command, md).await
    }

    /// Takes another service's event as the command `command_of` maps it to (once, by its id).
    pub async fn take_event(
        &self,
        event: &flotilla_bus::CloudEvent,
        command_of: impl FnOnce(&RiskValidation, uuid::Uuid) -> Result<Option<Command>, DomainError>,
    ) -> Result<(), flotilla_runtime::HandlerError> {
        self.app
            .take_event(CONSUMER, "risk-validation-consumer", event, command_of)
            .await
    }

    /// Runs a query on the current state.
    pub fn query<T>(&self, f: impl FnOnce(&RiskValidation) -> T) -> T {
        self.app.query(f)
    }
}

/// Builds risk-validation for the node: the app, its routes and its consumers.
pub async fn start(
    ctx: ServiceContext,
    routes: &mut RoutesBuilder,
) -> Result<kit::Started, kit::StartError> {
    let (app, follower) = App::builder(&ctx, Arc::new(RiskEvents))
        .start()
        .await
        .map_err(|e| kit::StartError::new(crate::NAME, e))?;
    let app = Arc::new(RiskApp { app });
    // `[risk_validation] prometheus_url`: where canary samples named by PromQL are read.
    let prometheus = match ctx.section_value::<String>("prometheus_url") {
        Some(url) if !url.is_empty() => Some(
            flotilla_runtime::prometheus::Prometheus::new(&url)
                .map_err(|e| kit::StartError::new(crate::NAME, e))?,
        ),
        _ => None,
    };
    routes.add_service(crate::grpc::server(ctx, app.clone(), prometheus));
    let inbound = Arc::new(crate::inbound::Inbound(app));
    Ok(crate::inbound::SOURCES
        .iter()
        .fold(kit::Started::with_app(follower), |started, source| {
            started.consume(Consumer {
                source: (*source).into(),
                handler: inbound.clone(),
            })
        }))
}
