//! The catalog's word on services (from dependency-mapping), and risk-validation's FMEA of
//! releases.

use flotilla_core::decider::Decision;

use super::*;

impl Governance {
    /// The catalog's word on a service, unless it is what governance knows or older.
    pub(super) fn record_catalog_service(
        &self,
        c: RecordCatalogService,
    ) -> Result<Decision<Event>> {
        let RecordCatalogService {
            service,
            source_event_id,
            source_sequence,
        } = c;
        let key = StreamKey::CatalogService(service.name.clone());
        // The same facts again, or an older word (a redelivery out of order), change
        // nothing.
        let newer = self
            .catalog_sequences
            .get(&service.name)
            .is_none_or(|s| source_sequence > *s);
        if self.catalog.get(&service.name) == Some(&service) || !newer {
            return decided(key, Vec::new());
        }
        decided(
            key,
            vec![Event::CatalogServiceRecorded {
                service,
                source_event_id,
                source_sequence,
            }],
        )
    }

    /// Risk-validation's FMEA of a release: the gate is shut while an action is open.
    pub(super) fn record_fmea_actions(&self, c: RecordFmeaActions) -> Result<Decision<Event>> {
        names::id("release", &c.release).map_err(name_error)?;
        let key = StreamKey::Fmea(c.release.clone());
        // An older word (a redelivery out of order) changes nothing.
        if self
            .fmea_open
            .get(&c.release)
            .is_some_and(|(open, at)| *at > c.at || (*at == c.at && *open == c.open_actions))
        {
            return decided(key, Vec::new());
        }
        decided(
            key,
            vec![Event::FmeaActionsRecorded {
                release: c.release,
                business_unit: c.business_unit,
                open_actions: c.open_actions,
                at: c.at,
                source_event_id: c.source_event_id,
            }],
        )
    }
}
