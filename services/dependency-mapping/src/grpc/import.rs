//! Importing a Backstage catalog-info.yaml: parsed here (so clients send the file, nothing
//! else), each service registered or updated and each dependency declared as its own change.

use flotilla_auth::AccessContext;
use flotilla_proto::dependency::v1 as pb;
use flotilla_runtime::kit::{self, Caller};
use tonic::Status;
use uuid::Uuid;

use super::DependencyMappingApi;
use crate::backstage;
use crate::domain::{Command, DomainError, ServiceSpec};

/// Most entities one import may hold.
pub const MAX_ENTITIES: usize = 10_000;

/// Keeps per-item command ids of one import apart.
const ITEMS: Uuid = Uuid::from_u128(0x2c5e_8a41_6b0d_4f27_9e13_7a4c_d2b8_5f60);

impl DependencyMappingApi {
    pub(super) async fn import(
        &self,
        call: &Caller,
        yaml: &str,
    ) -> Result<pb::ImportBackstageCatalogResponse, Status> {
        let parsed = backstage::parse(yaml)?;
        let count = parsed.services.len() + parsed.dependencies.len();
        if count > MAX_ENTITIES {
            return Err(DomainError::Invalid {
                field: "catalog_yaml",
                reason: format!(
                    "{count} services and dependencies, at most {MAX_ENTITIES} in one import; split the file"
                ),
            }
            .into());
        }
        // Each change is its own command: with a command id, each gets one derived from it and
        // from what it changes (so a retried import changes nothing twice, whatever the order of
        // the file).
        let md = |item: &str| {
            let mut md = call.metadata();
            md.command_id = md
                .command_id
                .map(|c| Uuid::new_v5(&ITEMS, format!("{c}/{item}").as_bytes()));
            md
        };
        let mut out = pb::ImportBackstageCatalogResponse {
            skipped: parsed.skipped.clone(),
            ..Default::default()
        };
        for spec in &parsed.services {
            let current = self.app.query(|c| c.services.get(&spec.name).cloned());
            let explicit = parsed.explicit.get(&spec.name).cloned().unwrap_or_default();
            let next = match &current {
                None => spec.clone(),
                Some(current) => merged(spec, current, &explicit),
            };
            // The unit it is in now, and the unit the file puts it in.
            if let Some(current) = &current {
                call.allow_in(&current.business_unit, &AccessContext::default())?;
            }
            call.allow_in(&next.business_unit, &AccessContext::default())?;
            let command = if current.is_none() {
                Command::RegisterService(next)
            } else {
                Command::UpdateService(next)
            };
            let done = self
                .app
                .execute(command, md(&format!("service {}", spec.name)))
                .await?;
            match (current.is_none(), done.changed) {
                (true, _) => out.registered += 1,
                (false, true) => out.updated += 1,
                (false, false) => out.unchanged += 1,
            }
            out.catalog_version = done.catalog_version;
        }
        for d in &parsed.dependencies {
            self.guard(call, [d.consumer.as_str()])?;
            match self
                .app
                .execute(
                    Command::DeclareDependency(d.clone()),
                    md(&format!("dependency {} -> {}", d.consumer, d.provider)),
                )
                .await
            {
                Ok(done) => {
                    out.dependencies_declared += u32::from(done.changed);
                    out.catalog_version = done.catalog_version;
                }
                // A dependency on a service that is neither in this file nor in the catalog
                // yet: reported, the import goes on (import that service's file, then this one
                // again).
                Err(kit::AppError::Domain(e @ DomainError::UnknownService(_))) => out
                    .skipped
                    .push(format!("{} -> {}: {e}", d.consumer, d.provider)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }
}

/// Fields the file does not state keep the catalog's values (a hand-set tier is not reset by a
/// file without the annotation).
fn merged(
    spec: &ServiceSpec,
    current: &ServiceSpec,
    explicit: &std::collections::BTreeSet<&'static str>,
) -> ServiceSpec {
    let mut s = spec.clone();
    if !explicit.contains("criticality-tier") {
        s.tier = current.tier;
    }
    if !explicit.contains("business-unit") {
        s.business_unit = current.business_unit.clone();
    }
    if !explicit.contains("handles-personal-data") {
        s.handles_personal_data = current.handles_personal_data;
    }
    if !explicit.contains("data-classification") {
        s.classification = current.classification;
    }
    s
}
