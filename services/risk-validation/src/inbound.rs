//! What risk-validation takes from other services' event streams: orchestration's releases,
//! plans, promotion paths and finished deployments, and the catalog's services. Each becomes a
//! command on the one app, applied once by the event's id; a plan is what assesses a release.

use std::sync::Arc;

use flotilla_bus::CloudEvent;
use flotilla_proto::dependency::v1 as dm;
use flotilla_proto::orchestration::v1 as orch;
use flotilla_runtime::kit::time::stored;
use flotilla_runtime::{EventHandler, HandlerError};
use prost::Message;
use uuid::Uuid;

use crate::app::RiskApp;
use crate::domain::*;

/// The services whose events risk-validation takes.
pub const SOURCES: [&str; 2] = ["orchestration", "dependency-mapping"];

pub const RELEASE_CREATED: &str = "flotilla.orchestration.v1.ReleaseCreated";
pub const RELEASE_PLANNED: &str = "flotilla.orchestration.v1.ReleasePlanned";
pub const PROMOTION_PATH_SET: &str = "flotilla.orchestration.v1.PromotionPathSet";
pub const DEPLOYMENT_FINISHED: &str = "flotilla.orchestration.v1.DeploymentFinished";
pub const SERVICE_REGISTERED: &str = "flotilla.dependency.v1.ServiceRegistered";
pub const SERVICE_UPDATED: &str = "flotilla.dependency.v1.ServiceUpdated";

type Taken = Result<Option<Command>, DomainError>;

/// The command another service's event asks for; `None` for events risk-validation does not
/// take. `id` seeds what the command names, so a redelivery names the same.
pub fn command_of(s: &RiskValidation, event: &CloudEvent, id: Uuid) -> Taken {
    let bad = |reason: String| invalid(&event.ty, reason);
    let undecodable =
        |e: prost::DecodeError| bad(format!("event {} does not decode: {e}", event.id));
    let data = event.data.as_slice();
    let now_or = |t: Option<&prost_types::Timestamp>| {
        let at = stored(t);
        if at.0 == 0 { Timestamp::now() } else { at }
    };
    let command: Command = match event.ty.as_str() {
        RELEASE_CREATED => {
            let r = orch::ReleaseCreated::decode(data)
                .map_err(undecodable)?
                .release
                .ok_or_else(|| bad(format!("event {} names no release", event.id)))?;
            NoteRelease {
                release: NotedRelease {
                    id: r.release_id,
                    name: r.name,
                    business_unit: r.business_unit,
                    emergency: r.emergency,
                    created_by: r.created_by,
                    items: r
                        .items
                        .into_iter()
                        .map(|i| NotedItem {
                            migrations: i.migrations.len() as u32,
                            schema_changes: i
                                .migrations
                                .iter()
                                .filter(|m| changes_schema(&m.forward))
                                .count() as u32,
                            service: i.service,
                            version: i.version,
                        })
                        .collect(),
                    created_at: now_or(r.created_at.as_ref()),
                },
            }
            .into()
        }
        RELEASE_PLANNED => {
            let e = orch::ReleasePlanned::decode(data).map_err(undecodable)?;
            AssessRelease {
                release_id: e.release_id,
                impact: e.plan.map(|p| p.impact).unwrap_or_default(),
                seed: id,
                at: now_or(e.planned_at.as_ref()),
            }
            .into()
        }
        PROMOTION_PATH_SET => {
            let e = orch::PromotionPathSet::decode(data).map_err(undecodable)?;
            NotePromotionPath {
                business_unit: e.business_unit,
                environments: e.environments,
                seed: id,
                at: now_or(e.set_at.as_ref()),
            }
            .into()
        }
        DEPLOYMENT_FINISHED => {
            let e = orch::DeploymentFinished::decode(data).map_err(undecodable)?;
            let outcome = match orch::DeploymentOutcome::try_from(e.outcome) {
                Ok(orch::DeploymentOutcome::Succeeded) => Outcome::Succeeded,
                Ok(orch::DeploymentOutcome::RolledBack) => Outcome::RolledBack,
                Ok(orch::DeploymentOutcome::Failed) => Outcome::Failed,
                _ => return Ok(None),
            };
            // Orchestration's release_id field carries the release's name; an id is taken too.
            let release = if s.releases.contains_key(&e.release_id) {
                e.release_id.clone()
            } else {
                s.releases
                    .values()
                    .find(|r| r.id == e.release_id)
                    .map(|r| r.name.clone())
                    .unwrap_or_default()
            };
            NoteDeployment {
                note: DeploymentNote {
                    deployment: e.deployment_id,
                    release,
                    service: e.service,
                    environment: e.environment,
                    outcome,
                    finished_at: now_or(e.finished_at.as_ref()),
                },
            }
            .into()
        }
        SERVICE_REGISTERED | SERVICE_UPDATED => {
            let entry = if event.ty == SERVICE_REGISTERED {
                dm::ServiceRegistered::decode(data).map(|e| e.service)
            } else {
                dm::ServiceUpdated::decode(data).map(|e| e.service)
            }
            .map_err(undecodable)?
            .ok_or_else(|| bad(format!("event {} names no service", event.id)))?;
            NoteCatalogService {
                entry: CatalogEntry {
                    service: entry.name,
                    business_unit: entry.business_unit,
                    tier: u8::try_from(entry.criticality_tier).unwrap_or(1),
                    personal_data: entry.handles_personal_data,
                },
                seed: id,
                at: Timestamp::now(),
            }
            .into()
        }
        _ => return Ok(None),
    };
    Ok(Some(command))
}

/// Whether a migration's forward script changes a schema: SQL data-definition statements. A
/// script named by path (not inline SQL) cannot be read here and counts as a migration only.
pub fn changes_schema(forward: &str) -> bool {
    const DDL: [&str; 5] = ["CREATE ", "ALTER ", "DROP ", "RENAME ", "TRUNCATE "];
    let upper = forward.to_uppercase();
    upper
        .split(';')
        .map(str::trim_start)
        .any(|statement| DDL.iter().any(|k| statement.starts_with(k)))
}

/// Applies orchestration's and the catalog's events to risk-validation's one app.
pub struct Inbound(pub Arc<RiskApp>);

#[async_trait::async_trait]
impl EventHandler for Inbound {
    async fn handle(&self, event: &CloudEvent) -> Result<(), HandlerError> {
        self.0
            .take_event(event, |s, id| command_of(s, event, id))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::changes_schema;

    #[test]
    fn data_definition_statements_change_a_schema() {
        assert!(changes_schema("alter table entries drop column legacy"));
        assert!(changes_schema(
            "UPDATE t SET a = 1; CREATE INDEX i ON t (a)"
        ));
        assert!(!changes_schema("UPDATE accounts SET tier = 2 WHERE id = 7"));
        assert!(!changes_schema("migrations/0042_backfill.sh"));
        assert!(!changes_schema("INSERT INTO notes VALUES ('drop table x')"));
    }
}
