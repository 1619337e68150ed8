//! Given/when/then for deciders: `Scenario::given(events).when(command).then(events)`. Events
//! given and decided are evolved with envelopes as the store would record them (positions and
//! stream versions counted, the scenario's actor, unit and time).

use std::collections::HashMap;
use std::fmt::Debug;

use crate::decider::{Decider, Decision, Recorded};
use crate::event::{Metadata, Timestamp};
use crate::ids::StreamId;

/// A decider's state built from given events.
#[derive(Clone, Debug)]
pub struct Scenario<D: Decider> {
    state: D,
    position: u64,
    versions: HashMap<StreamId, u64>,
    metadata: Metadata,
    at: Timestamp,
}

impl<D: Decider> Default for Scenario<D> {
    fn default() -> Self {
        Self {
            state: D::default(),
            position: 0,
            versions: HashMap::new(),
            metadata: Metadata::by("scenario", ""),
            at: Timestamp(0),
        }
    }
}

impl<D: Decider> Scenario<D> {
    /// The state after these events (each on its stream).
    pub fn given(events: impl IntoIterator<Item = (StreamId, D::Event)>) -> Self {
        let mut s = Self::default();
        for (stream, e) in events {
            s.record(&stream, e);
        }
        s
    }

    /// The state after these commands were decided and recorded (each must be accepted).
    pub fn given_commands(commands: impl IntoIterator<Item = D::Command>) -> Self
    where
        D::Error: Debug,
    {
        let mut s = Self::default();
        for c in commands {
            s.apply(c)
                .unwrap_or_else(|e| panic!("a given command was refused: {e:?}"));
        }
        s
    }

    /// Records events as `actor` in `business_unit` at `at` from here on.
    pub fn as_of(mut self, actor: &str, business_unit: &str, at: Timestamp) -> Self {
        self.metadata = Metadata::by(actor, business_unit);
        self.at = at;
        self
    }

    fn record(&mut self, stream: &StreamId, event: D::Event) {
        self.position += 1;
        let version = self.versions.get(stream).map_or(0, |v| v + 1);
        self.versions.insert(stream.clone(), version);
        self.state.evolve(&Recorded {
            event,
            stream_id: stream.clone(),
            stream_version: version,
            position: self.position,
            recorded_at: self.at,
            metadata: self.metadata.clone(),
        });
    }

    /// Decides a command and records what it decided; the decision, or the refusal.
    pub fn apply(&mut self, command: D::Command) -> Result<Decision<D::Event>, D::Error> {
        let d = self.state.decide(command)?;
        for e in d.events.clone() {
            self.record(&d.stream_id, e);
        }
        Ok(d)
    }

    /// What the command decides on the state so far (nothing is recorded).
    pub fn when(self, command: D::Command) -> Then<D> {
        let result = self.state.decide(command);
        Then {
            scenario: self,
            result,
        }
    }

    pub fn state(&self) -> &D {
        &self.state
    }

    /// The version of a stream (None: no events).
    pub fn version_of(&self, stream: &StreamId) -> Option<u64> {
        self.versions.get(stream).copied()
    }
}

/// The state so far, to read in assertions.
impl<D: Decider> std::ops::Deref for Scenario<D> {
    type Target = D;

    fn deref(&self) -> &D {
        &self.state
    }
}

/// A decision to check.
#[derive(Debug)]
pub struct Then<D: Decider> {
    scenario: Scenario<D>,
    result: Result<Decision<D::Event>, D::Error>,
}

impl<D: Decider> Then<D>
where
    D::Error: Debug,
{
    /// The command decides exactly `events`; returns the scenario with them recorded.
    pub fn then(mut self, events: Vec<D::Event>) -> Scenario<D> {
        let d = self
            .result
            .unwrap_or_else(|e| panic!("expected {events:?}, the command was refused: {e:?}"));
        assert_eq!(d.events, events, "decided events");
        for e in d.events {
            self.scenario.record(&d.stream_id, e);
        }
        self.scenario
    }

    /// The command decides events on `stream` that satisfy `check`; recorded.
    pub fn then_on(mut self, stream: &StreamId, check: impl FnOnce(&[D::Event])) -> Scenario<D> {
        let d = self
            .result
            .unwrap_or_else(|e| panic!("the command was refused: {e:?}"));
        assert_eq!(&d.stream_id, stream, "decided stream");
        check(&d.events);
        for e in d.events {
            self.scenario.record(&d.stream_id, e);
        }
        self.scenario
    }

    /// The command is refused with an error `check` accepts; nothing is recorded.
    pub fn then_refused(self, check: impl FnOnce(&D::Error) -> bool) -> Scenario<D> {
        match &self.result {
            Ok(d) => panic!("expected a refusal, the command decided {:?}", d.events),
            Err(e) => assert!(check(e), "unexpected refusal: {e:?}"),
        }
        self.scenario
    }

    /// The decision, to look at freely.
    pub fn decision(self) -> Result<Decision<D::Event>, D::Error> {
        self.result
    }
}

/// Compares `bytes` with the golden file at `path`. With `FLOTILLA_BLESS=1` the file is
/// (re)written instead; a missing file fails the test, so a stored event type cannot go
/// without one. Once a golden file is committed it must never change: an event recorded years
/// ago has exactly those bytes.
pub fn golden(path: &std::path::Path, bytes: &[u8]) {
    if std::env::var("FLOTILLA_BLESS").is_ok_and(|v| v == "1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        }
        std::fs::write(path, bytes)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        return;
    }
    let stored = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "golden file {} cannot be read ({e}); record it with FLOTILLA_BLESS=1 (for a new event type only)",
            path.display()
        )
    });
    assert!(
        stored == bytes,
        "{} changed: today's encoding differs from the recorded one; a stored event's encoding never changes (add a new version with an upcaster instead)",
        path.display()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, Default)]
    struct Counter {
        value: i64,
        last_actor: String,
    }

    #[derive(Clone, Debug)]
    enum Cmd {
        Add(i64),
    }

    #[derive(Clone, Debug, PartialEq)]
    enum Ev {
        Added(i64),
    }

    #[derive(Debug, thiserror::Error)]
    #[error("counter would drop to {0}")]
    struct Negative(i64);

    fn counter() -> StreamId {
        StreamId::parse("counter").expect("id")
    }

    impl Decider for Counter {
        type Command = Cmd;
        type Event = Ev;
        type Error = Negative;
        fn decide(&self, c: Cmd) -> Result<Decision<Ev>, Negative> {
            match c {
                Cmd::Add(n) if self.value + n < 0 => Err(Negative(self.value + n)),
                Cmd::Add(0) => Ok(Decision::nothing(counter())),
                Cmd::Add(n) => Ok(Decision::new(counter(), vec![Ev::Added(n)])),
            }
        }
        fn evolve(&mut self, e: &Recorded<Ev>) {
            match e.event {
                Ev::Added(n) => self.value += n,
            }
            self.last_actor = e.metadata.actor.clone();
        }
    }

    #[test]
    fn given_when_then() {
        let s = Scenario::<Counter>::given([(counter(), Ev::Added(5))])
            .as_of("ana", "payments", Timestamp(7))
            .when(Cmd::Add(-2))
            .then(vec![Ev::Added(-2)]);
        assert_eq!(s.state().value, 3);
        assert_eq!(s.state().last_actor, "ana", "evolve sees the envelope");
        assert_eq!(s.version_of(&counter()), Some(1));
        let s = s.when(Cmd::Add(-10)).then_refused(|e| e.0 == -7);
        assert_eq!(s.state().value, 3, "a refusal records nothing");
        s.when(Cmd::Add(0)).then(vec![]);
    }
}
