//! Optimistic concurrency expectations (the four of KurrentDB).

use std::fmt;

/// What an append expects of its stream. Stream versions count from 0 (the first event).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `current` (None = no stream) satisfies this.
    pub fn admits(self, current: Option<u64>) -> bool {
        match (self, current) {
            (Self::Any, _) => true,
            (Self::NoStream, None) => true,
            (Self::NoStream, Some(_)) => false,
            (Self::StreamExists, c) => c.is_some(),
            (Self::Exact(n), Some(c)) => n == c,
            (Self::Exact(_), None) => false,
        }
    }

    /// The expectation that follows an append leaving the stream at `version`.
    pub fn after(version: u64) -> Self {
        Self::Exact(version)
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("stream exists"),
            Self::Exact(n) => write!(f, "version {n}"),
        }
    }
}

/// Renders a current version for messages: `no stream` or `version n`.
pub fn describe_current(current: Option<u64>) -> String {
    match current {
        None => "no stream".into(),
        Some(v) => format!("version {v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::ExpectedVersion::*;

    #[test]
    fn admits_follows_kurrent_semantics() {
        assert!(Any.admits(None) && Any.admits(Some(3)));
        assert!(NoStream.admits(None) && !NoStream.admits(Some(0)));
        assert!(!StreamExists.admits(None) && StreamExists.admits(Some(0)));
        assert!(Exact(2).admits(Some(2)) && !Exact(2).admits(Some(1)) && !Exact(0).admits(None));
    }
}
