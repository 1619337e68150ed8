//! Risk-validation's app: the kit's event-sourced app over the domain. One instance per
//! process serves the gRPC edge.

use std::sync::Arc;

use flotilla_core::decider::Decision;
use flotilla_core::event::Metadata;
use flotilla_runtime::ServiceContext;
use flotilla_runtime::kit::{self, App, Executed, Snapshotted, UnitOf};
use tonic::service::RoutesBuilder;

use crate::codec::RiskEvents;
use crate::domain::*;

/// What risk-validation's app answers when something fails.
pub type AppError = kit::AppError<DomainError>;

impl UnitOf for RiskValidation {
    /// A judgement belongs to the unit of the release it judges.
    fn unit_of(&self, decision: &Decision<Event>) -> Option<String> {
        decision.events.first().map(|e| match e {
            Event::CanaryJudged(j) => j.business_unit.clone(),
        })
    }
}

impl Snapshotted for RiskValidation {
    const SNAPSHOT_VERSION: u32 = 1;
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

    /// Runs a query on the current state.
    pub fn query<T>(&self, f: impl FnOnce(&RiskValidation) -> T) -> T {
        self.app.query(f)
    }
}

/// Builds risk-validation for the node: the app and its routes.
pub async fn start(
    ctx: ServiceContext,
    routes: &mut RoutesBuilder,
) -> Result<kit::Started, kit::StartError> {
    let (app, follower) = App::builder(&ctx, Arc::new(RiskEvents))
        .start()
        .await
        .map_err(|e| kit::StartError::new(crate::NAME, e))?;
    let app = Arc::new(RiskApp { app });
    routes.add_service(crate::grpc::server(ctx, app));
    Ok(kit::Started::with_app(follower))
}
