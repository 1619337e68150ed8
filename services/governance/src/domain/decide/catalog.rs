//! The catalog's word on services (from dependency-mapping).

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
}
