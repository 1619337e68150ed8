//! For tests and benchmarks of governance: what governance would have learnt from
//! dependency-mapping's events, written straight into its store.

use std::sync::Arc;

mod gate_state;
pub use gate_state::{GateLoad, UNITS, check_gate_load, seed_gate_state};

use flotilla_core::ExpectedVersion;
use flotilla_core::decider::StoredEvents;
use flotilla_core::event::{Metadata, NewEvent};
use flotilla_core::store::{AppendRequest, EventStore, StoreError};

use crate::codec::GovernanceEvents;
use crate::domain::{CatalogService, Event, StreamKey};

/// Records catalog services in governance's store (each once, on a store that has none yet).
pub async fn seed_catalog(
    store: &Arc<dyn EventStore>,
    services: impl IntoIterator<Item = CatalogService>,
) -> Result<(), StoreError> {
    for service in services {
        let key = StreamKey::CatalogService(service.name.clone());
        let unit = service.business_unit.clone();
        let (ty, version, payload) = GovernanceEvents.encode(&Event::CatalogServiceRecorded {
            service,
            source_event_id: uuid::Uuid::now_v7(),
            source_sequence: 0,
        });
        store
            .append(AppendRequest::new(
                key.stream(),
                ExpectedVersion::NoStream,
                vec![NewEvent::new(
                    ty,
                    version,
                    payload,
                    Metadata::by("dependency-mapping", unit),
                )],
            ))
            .await?;
    }
    Ok(())
}

/// The name [`every_kind`] gives a unit's service of a tier, with or without personal data.
pub fn service_name(unit: &str, tier: u8, personal_data: bool) -> String {
    format!(
        "svc-{unit}-t{tier}{}",
        if personal_data { "-pii" } else { "" }
    )
}

/// A service of each unit, tier and personal-data kind.
pub fn every_kind(units: &[&str]) -> Vec<CatalogService> {
    let mut out = Vec::new();
    for unit in units {
        for tier in 1..=4 {
            for personal_data in [false, true] {
                out.push(CatalogService {
                    name: service_name(unit, tier, personal_data),
                    business_unit: (*unit).to_owned(),
                    tier,
                    personal_data,
                    owner_team: format!("{unit}-team"),
                });
            }
        }
    }
    out
}
