//! Identifiers. Event ids are uuid v7 (time-ordered); stream ids are `<aggregate>-<uuid v7>`.

use std::fmt;

use uuid::Uuid;

/// Identity of one event, unique across every store (used for bus dedupe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(pub Uuid);

impl EventId {
    /// A fresh, time-ordered id. Call this at the edge (handlers), never inside domain code.
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for EventId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Name of a stream: `<aggregate>-<uuid>`, e.g. `approval-request-0192...`.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct StreamId(String);

/// Longest stream id accepted, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 200;

impl StreamId {
    /// A new stream for an aggregate kind, e.g. `StreamId::new_for("release")`.
    pub fn new_for(aggregate: &str) -> Self {
        Self(format!("{aggregate}-{}", Uuid::now_v7()))
    }

    /// A singleton stream with a fixed name (e.g. `governance-policy`); the name must be a valid
    /// stream id.
    pub fn singleton(name: &'static str) -> Self {
        debug_assert!(Self::parse(name).is_ok(), "{name} is not a stream id");
        Self(name.to_owned())
    }

    /// The stream of one aggregate instance.
    pub fn for_aggregate(aggregate: &str, id: Uuid) -> Self {
        Self(format!("{aggregate}-{id}"))
    }

    /// Checks a stream id: non-empty, at most [`MAX_STREAM_ID_LEN`] bytes, lowercase ascii
    /// letters, digits, `-`, `_` and `:` only.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("stream id is empty".into());
        }
        if s.len() > MAX_STREAM_ID_LEN {
            return Err(format!(
                "stream id is {} bytes, at most {MAX_STREAM_ID_LEN} allowed",
                s.len()
            ));
        }
        if let Some(c) = s.chars().find(|c| {
            !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | ':'))
        }) {
            return Err(format!(
                "stream id {s:?} contains {c:?}; use lowercase letters, digits, '-', '_' or ':'"
            ));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The aggregate kind: the stream id without a trailing uuid (`approval-request`), or the
    /// whole id when it does not end in one.
    pub fn aggregate(&self) -> &str {
        let s = self.0.as_str();
        if s.len() > 37 {
            let (head, tail) = s.split_at(s.len() - 36);
            if Uuid::parse_str(tail).is_ok() && head.ends_with('-') {
                return &head[..head.len() - 1];
            }
        }
        s
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for StreamId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregate_strips_the_uuid() {
        let s = StreamId::new_for("approval-request");
        assert_eq!(s.aggregate(), "approval-request");
        assert_eq!(
            StreamId::parse("bench-7").map(|s| s.aggregate().to_owned()),
            Ok("bench-7".into())
        );
    }

    #[test]
    fn parse_rejects_bad_ids() {
        assert!(StreamId::parse("").is_err());
        assert!(StreamId::parse("Release-1").is_err());
        assert!(StreamId::parse("a b").is_err());
        assert!(StreamId::parse(&"a".repeat(201)).is_err());
        assert!(StreamId::parse("release-1").is_ok());
    }
}
