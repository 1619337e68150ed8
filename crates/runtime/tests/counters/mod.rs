//! A small decider for the kit's tests (named counters, each its own stream), its codec (schema
//! version 1) and how the tests start it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use flotilla_core::decider::{Decider, Decision, Recorded, StoredEvents};
use flotilla_core::event::Metadata;
use flotilla_core::ids::StreamId;
use flotilla_core::store::EventStore;
use flotilla_runtime::ServiceContext;
use flotilla_runtime::kit::{App, AppOptions, ServiceError, Snapshotted, UnitOf};
use flotilla_runtime::testkit::run_task;

/// Counters by name; each counter is its own stream.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    pub values: BTreeMap<String, i64>,
    /// Who last changed each counter (from the envelope).
    pub by: BTreeMap<String, String>,
}

#[derive(Clone, Debug)]
pub enum Command {
    Add {
        counter: String,
        n: i64,
    },
    /// Sets `target` to `source`'s value: reads `source`'s stream too.
    Copy {
        target: String,
        source: String,
    },
    /// Sets a counter; nothing when it already has the value.
    Set {
        counter: String,
        value: i64,
    },
    /// Refused unless the counter is below `limit` (a retry after it passed must not refuse).
    AddBelow {
        counter: String,
        n: i64,
        limit: i64,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Added { counter: String, n: i64 },
    Set { counter: String, value: i64 },
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl ServiceError for Refused {
    fn code(&self) -> tonic::Code {
        tonic::Code::FailedPrecondition
    }
}

pub fn stream(counter: &str) -> StreamId {
    StreamId::for_aggregate(
        "counter",
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, counter.as_bytes()),
    )
}

impl Decider for Counters {
    type Command = Command;
    type Event = Event;
    type Error = Refused;

    fn decide(&self, command: Command) -> Result<Decision<Event>, Refused> {
        match command {
            Command::Add { counter, n } => Ok(Decision::new(
                stream(&counter),
                vec![Event::Added { counter, n }],
            )),
            Command::Copy { target, source } => {
                let value = self.values.get(&source).copied().unwrap_or(0);
                Ok(Decision::new(
                    stream(&target),
                    vec![Event::Set {
                        counter: target,
                        value,
                    }],
                )
                .reading([stream(&source)]))
            }
            Command::Set { counter, value } => {
                let events = if self.values.get(&counter) == Some(&value) {
                    vec![]
                } else {
                    vec![Event::Set {
                        counter: counter.clone(),
                        value,
                    }]
                };
                Ok(Decision::new(stream(&counter), events))
            }
            Command::AddBelow { counter, n, limit } => {
                if self.values.get(&counter).copied().unwrap_or(0) >= limit {
                    return Err(Refused(format!("{counter} reached {limit}")));
                }
                Ok(Decision::new(
                    stream(&counter),
                    vec![Event::Added { counter, n }],
                ))
            }
        }
    }

    fn evolve(&mut self, r: &Recorded<Event>) {
        let (counter, value) = match &r.event {
            Event::Added { counter, n } => {
                (counter, self.values.get(counter).copied().unwrap_or(0) + n)
            }
            Event::Set { counter, value } => (counter, *value),
        };
        self.values.insert(counter.clone(), value);
        self.by.insert(counter.clone(), r.metadata.actor.clone());
    }
}

impl UnitOf for Counters {}

impl Snapshotted for Counters {
    const SNAPSHOT_VERSION: u32 = 1;
}

pub struct Codec;

impl StoredEvents<Event> for Codec {
    fn encode(&self, e: &Event) -> (String, u32, Vec<u8>) {
        let (ty, c, n) = match e {
            Event::Added { counter, n } => ("test.Added", counter, n),
            Event::Set { counter, value } => ("test.Set", counter, value),
        };
        (ty.into(), 1, format!("{c}={n}").into_bytes())
    }

    fn decode(&self, ty: &str, _v: u32, payload: &[u8]) -> Result<Option<Event>, String> {
        if !ty.starts_with("test.") {
            // The runtime's own events (snapshot records) share the store.
            return Ok(None);
        }
        let text = String::from_utf8(payload.to_vec()).map_err(|e| e.to_string())?;
        let (c, n) = text.split_once('=').ok_or("no =")?;
        let n: i64 = n
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string())?;
        Ok(match ty {
            "test.Added" => Some(Event::Added {
                counter: c.into(),
                n,
            }),
            "test.Set" => Some(Event::Set {
                counter: c.into(),
                value: n,
            }),
            _ => None,
        })
    }
}

pub fn ctx(store: Arc<dyn EventStore>) -> ServiceContext {
    ServiceContext::new(
        "counters",
        store,
        Arc::new(flotilla_auth::Authorizer::with_default_policy().expect("authorizer")),
    )
}

pub async fn app(
    store: &Arc<dyn EventStore>,
    options: AppOptions,
) -> (Arc<App<Counters>>, flotilla_runtime::testkit::RunningTask) {
    let (app, task) = App::builder(&ctx(store.clone()), Arc::new(Codec))
        .options(options)
        .start()
        .await
        .expect("start");
    (app, run_task(task))
}

pub fn md(actor: &str) -> Metadata {
    Metadata::by(actor, "")
}

pub fn add(counter: &str, n: i64) -> Command {
    Command::Add {
        counter: counter.into(),
        n,
    }
}

pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..200 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} never happened");
}
