//! Backward-compatibility checks of API and message schemas: a new version against the one a
//! consumer uses. Each finding names precisely what breaks; additions are not findings.

pub mod jsonschema;
pub mod protobuf;

pub use crate::domain::SchemaFormat;
use crate::domain::{Catalog, CompatibilityVerdict, DomainError, SchemaDoc, Timestamp};

/// Why a schema could not be checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {format} schema: {reason}")]
pub struct MalformedSchema {
    pub format: &'static str,
    pub reason: String,
}

/// Checks that `content` parses as `format`.
pub fn validate(format: SchemaFormat, content: &[u8]) -> Result<(), MalformedSchema> {
    match format {
        SchemaFormat::Protobuf => protobuf::parse(content).map(|_| ()),
        SchemaFormat::JsonSchema => jsonschema::parse(content).map(|_| ()),
    }
}

/// Every breaking change from `old` to `new` (empty: compatible).
pub fn breaking_changes(
    format: SchemaFormat,
    old: &[u8],
    new: &[u8],
) -> Result<Vec<String>, MalformedSchema> {
    match format {
        SchemaFormat::Protobuf => Ok(protobuf::diff(
            &protobuf::parse(old)?,
            &protobuf::parse(new)?,
        )),
        SchemaFormat::JsonSchema => Ok(jsonschema::diff(
            &jsonschema::parse(old)?,
            &jsonschema::parse(new)?,
        )),
    }
}

/// The verdict on a schema version: compared with the version each consumer declared it uses
/// (or, when none did, the latest earlier published one), on the catalog as it is.
pub fn verdict(
    c: &Catalog,
    doc: &SchemaDoc,
    at: Timestamp,
) -> Result<CompatibilityVerdict, DomainError> {
    let mut compared = Vec::new();
    let mut breaking = Vec::new();
    for (used_by, base) in c.schema_baselines(&doc.service, &doc.name, &doc.version) {
        if base.format != doc.format {
            breaking.push(format!(
                "format changed from {:?} to {:?} (against {} of {used_by})",
                base.format, doc.format, base.version
            ));
        } else {
            let found = breaking_changes(doc.format, &base.content, &doc.content).map_err(|e| {
                DomainError::Invalid {
                    field: "content",
                    reason: format!(
                        "cannot be compared with {} used by {used_by}: {e}",
                        base.version
                    ),
                }
            })?;
            breaking.extend(
                found
                    .into_iter()
                    .map(|b| format!("{b} (against {} used by {used_by})", base.version)),
            );
        }
        compared.push((used_by, base.version.clone()));
    }
    Ok(CompatibilityVerdict {
        service: doc.service.clone(),
        name: doc.name.clone(),
        version: doc.version.clone(),
        compared,
        breaking,
        at,
    })
}
