//! Domain values as API and event messages, and back: `canary` for judgements, `assessment`
//! for assessments, weights and the facts noted from other services, `evidence` for FMEA and
//! validations. Reading a stored message applies no API rule: what was recorded decodes.

mod assessment;
mod canary;
mod evidence;

pub use assessment::*;
pub use canary::*;
pub use evidence::*;

/// A stored id, or why it is not one.
pub(crate) fn stored_uuid(field: &str, s: &str) -> Result<uuid::Uuid, String> {
    s.parse()
        .map_err(|_| format!("{field} {:?} is not a uuid", flotilla_core::names::shown(s)))
}
