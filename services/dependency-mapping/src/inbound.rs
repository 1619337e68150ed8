//! What dependency-mapping takes from other services' event streams: orchestration's
//! `DeploymentFinished` keeps each environment's footprint current.

use std::sync::Arc;

use flotilla_bus::CloudEvent;
use flotilla_core::event::Metadata;
use flotilla_proto::orchestration::v1::{DeploymentFinished, DeploymentOutcome};
use flotilla_runtime::kit;
use flotilla_runtime::{EventHandler, HandlerError};
use prost::Message;

use crate::app::CatalogApp;
use crate::domain::{Command, DomainError};

/// Type of orchestration's deployment event this service consumes.
pub const DEPLOYMENT_FINISHED: &str = "flotilla.orchestration.v1.DeploymentFinished";

/// The command a consumed event asks for, with the event's id and who caused it; `None` for
/// events that change nothing here (other types, deployments that failed).
pub fn command_of(
    event: &CloudEvent,
) -> Result<Option<(uuid::Uuid, Command, Metadata)>, DomainError> {
    if event.ty != DEPLOYMENT_FINISHED {
        return Ok(None);
    }
    let bad = |reason: String| DomainError::Invalid {
        field: "DeploymentFinished",
        reason,
    };
    let e = DeploymentFinished::decode(event.data.as_slice())
        .map_err(|err| bad(format!("event {} does not decode: {err}", event.id)))?;
    match DeploymentOutcome::try_from(e.outcome) {
        Ok(DeploymentOutcome::Succeeded | DeploymentOutcome::RolledBack) => {}
        _ => return Ok(None),
    }
    let id = event.event_id().map_err(|err| bad(err.to_string()))?;
    let d = crate::grpc::convert::deployment(
        e.environment,
        &e.service,
        &e.version,
        e.finished_at.as_ref(),
    )?;
    let actor = if e.deployed_by.is_empty() {
        "orchestration".to_owned()
    } else {
        e.deployed_by
    };
    let md =
        Metadata::by(actor, event.extension("businessunit").unwrap_or_default()).with_causation(id);
    Ok(Some((id, Command::RecordDeployment(d), md)))
}

/// Keeps footprints current from orchestration's deployments, on the service's one app.
pub struct Deployments(pub Arc<CatalogApp>);

#[async_trait::async_trait]
impl EventHandler for Deployments {
    async fn handle(&self, event: &CloudEvent) -> Result<(), HandlerError> {
        match self.0.on_event(event).await {
            Ok(_) => Ok(()),
            Err(kit::AppError::Domain(e)) => Err(HandlerError::Reject(e.to_string())),
            // The store, a conflict or a stopped service: the event is delivered again.
            Err(e) => Err(HandlerError::Retry(e.to_string())),
        }
    }
}
