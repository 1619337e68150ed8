//! Upcasters turn an old encoding of an event into the current one at read time, so audit logs
//! written years ago still load. Stored bytes are never rewritten (that would break the chain).

use std::collections::HashMap;

/// Raises one event type from one schema version to the next.
pub trait Upcaster: Send + Sync {
    /// Event type this upcaster reads.
    fn event_type(&self) -> &str;
    /// Schema version it reads; it produces `source_version() + 1`.
    fn source_version(&self) -> u32;
    /// Converts the payload. May also rename the event type.
    fn upcast(&self, payload: &[u8]) -> Result<(String, Vec<u8>), String>;
}

/// A registry of upcasters keyed by (event type, schema version).
#[derive(Default)]
pub struct UpcasterRegistry {
    by_key: HashMap<(String, u32), Box<dyn Upcaster>>,
}

impl UpcasterRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers an upcaster; a second one for the same type and version replaces the first.
    pub fn register(&mut self, upcaster: impl Upcaster + 'static) -> &mut Self {
        self.by_key.insert(
            (upcaster.event_type().to_owned(), upcaster.source_version()),
            Box::new(upcaster),
        );
        self
    }

    /// Applies upcasters until none matches; returns the final type, version and payload.
    pub fn upcast(
        &self,
        event_type: &str,
        schema_version: u32,
        payload: &[u8],
    ) -> Result<(String, u32, Vec<u8>), String> {
        let mut ty = event_type.to_owned();
        let mut version = schema_version;
        let mut bytes = payload.to_vec();
        // Bounded: each step raises the version, and there are finitely many upcasters.
        for _ in 0..=self.by_key.len() {
            let Some(u) = self.by_key.get(&(ty.clone(), version)) else {
                break;
            };
            let (next_ty, next_bytes) = u
                .upcast(&bytes)
                .map_err(|e| format!("upcasting {ty} v{version}: {e}"))?;
            ty = next_ty;
            bytes = next_bytes;
            version += 1;
        }
        Ok((ty, version, bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct AddSuffix;
    impl Upcaster for AddSuffix {
        fn event_type(&self) -> &str {
            "t.Renamed"
        }
        fn source_version(&self) -> u32 {
            1
        }
        fn upcast(&self, payload: &[u8]) -> Result<(String, Vec<u8>), String> {
            let mut p = payload.to_vec();
            p.push(b'!');
            Ok(("t.Renamed".into(), p))
        }
    }

    struct V2ToV3;
    impl Upcaster for V2ToV3 {
        fn event_type(&self) -> &str {
            "t.Renamed"
        }
        fn source_version(&self) -> u32 {
            2
        }
        fn upcast(&self, payload: &[u8]) -> Result<(String, Vec<u8>), String> {
            Ok(("t.Final".into(), payload.iter().rev().copied().collect()))
        }
    }

    #[test]
    fn chains_upcasters_in_version_order() {
        let mut r = UpcasterRegistry::new();
        r.register(V2ToV3).register(AddSuffix);
        assert_eq!(
            r.upcast("t.Renamed", 1, b"ab"),
            Ok(("t.Final".into(), 3, b"!ba".to_vec()))
        );
        assert_eq!(
            r.upcast("t.Other", 1, b"ab"),
            Ok(("t.Other".into(), 1, b"ab".to_vec()))
        );
    }
}
