//! Backward-compatibility checks of API and message schemas: a new version against the one a
//! consumer uses. Each finding names precisely what breaks; additions are not findings.

pub mod jsonschema;
pub mod protobuf;

pub use crate::domain::SchemaFormat;

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
