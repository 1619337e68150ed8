//! A rolling upgrade: replicas of two builds of one service side by side on one PostgreSQL
//! store (two store handles, as two processes), where the new build writes a new schema
//! version of an event and reads the old one through an upcaster.
//!
//! The new replica reads everything the old one wrote. The old replica, meeting an event
//! version it does not know, stops answering for the service (UNAVAILABLE, naming the version)
//! rather than deciding on a state that misses it: no command is lost or applied on a stale
//! state, and once restarted on the new build it reads the whole store. (Its duty lease goes to
//! a replica that reads the store: `duty::tests::a_replica_that_cannot_read_the_store_steps_aside`.)

use std::sync::Arc;

use flotilla_core::decider::StoredEvents;
use flotilla_core::store::EventStore;
use flotilla_core::upcast::{Upcaster, UpcasterRegistry};
use flotilla_runtime::kit::{App, AppError, AppOptions};
use flotilla_runtime::testkit::run_task;

mod counters;
use counters::*;

/// The old build: knows schema version 1 of its events only (a version it does not know is an
/// error, as in every service's codec).
struct OldBuild;

impl StoredEvents<Event> for OldBuild {
    fn encode(&self, e: &Event) -> (String, u32, Vec<u8>) {
        Codec.encode(e)
    }

    fn decode(&self, ty: &str, v: u32, payload: &[u8]) -> Result<Option<Event>, String> {
        if ty.starts_with("test.") && v != 1 {
            return Err(format!("{ty} version {v} is not known to this build"));
        }
        Codec.decode(ty, v, payload)
    }
}

/// The new build: `test.Added` is version 2 (JSON); version 1 is raised by [`AddedV1`].
struct NewBuild;

#[derive(serde::Serialize, serde::Deserialize)]
struct AddedV2 {
    counter: String,
    n: i64,
}

impl StoredEvents<Event> for NewBuild {
    fn encode(&self, e: &Event) -> (String, u32, Vec<u8>) {
        match e {
            Event::Added { counter, n } => (
                "test.Added".into(),
                2,
                serde_json::to_vec(&AddedV2 {
                    counter: counter.clone(),
                    n: *n,
                })
                .unwrap_or_default(),
            ),
            other => Codec.encode(other),
        }
    }

    fn decode(&self, ty: &str, v: u32, payload: &[u8]) -> Result<Option<Event>, String> {
        match (ty, v) {
            ("test.Added", 2) => {
                let a: AddedV2 = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
                Ok(Some(Event::Added {
                    counter: a.counter,
                    n: a.n,
                }))
            }
            ("test.Added", _) => Err(format!("{ty} version {v} is not known to this build")),
            _ => Codec.decode(ty, v, payload),
        }
    }
}

/// `test.Added` version 1 (`counter=n`) raised to version 2.
struct AddedV1;

impl Upcaster for AddedV1 {
    fn event_type(&self) -> &str {
        "test.Added"
    }
    fn source_version(&self) -> u32 {
        1
    }
    fn upcast(&self, payload: &[u8]) -> Result<(String, Vec<u8>), String> {
        let text = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
        let (counter, n) = text.split_once('=').ok_or("no =")?;
        let n = n
            .parse()
            .map_err(|e: std::num::ParseIntError| e.to_string())?;
        let v2 = serde_json::to_vec(&AddedV2 {
            counter: counter.into(),
            n,
        })
        .map_err(|e| e.to_string())?;
        Ok(("test.Added".into(), v2))
    }
}

async fn start(
    store: &Arc<dyn EventStore>,
    codec: Arc<dyn StoredEvents<Event>>,
    upcasters: UpcasterRegistry,
) -> (Arc<App<Counters>>, flotilla_runtime::testkit::RunningTask) {
    let (app, task) = App::builder(&ctx(store.clone()), codec)
        .upcasters(upcasters)
        .options(AppOptions::default())
        .start()
        .await
        .expect("start");
    (app, run_task(task))
}

fn new_upcasters() -> UpcasterRegistry {
    let mut r = UpcasterRegistry::new();
    r.register(AddedV1);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_and_a_new_replica_side_by_side_stay_correct() {
    let url = std::env::var("FLOTILLA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!(
        "upgrade_{}",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    );
    let old_store = flotilla_store::open(&url, &schema).await.expect("store");
    let new_store = flotilla_store::open(&url, &schema).await.expect("store");
    let (old, _old_task) = start(&old_store, Arc::new(OldBuild), UpcasterRegistry::new()).await;
    let (new, _new_task) = start(&new_store, Arc::new(NewBuild), new_upcasters()).await;

    // The old replica writes version 1; the new one reads it through the upcaster.
    old.execute(add("a", 1), md("ann")).await.expect("old adds");
    old.execute(add("a", 2), md("ann")).await.expect("old adds");
    eventually("the new replica reads the old one's events", || {
        new.query(|c| c.values.get("a").copied()) == Some(3)
    })
    .await;

    // The new replica writes version 2 and answers on it.
    new.execute(add("a", 10), md("bob"))
        .await
        .expect("new adds");
    assert_eq!(new.query(|c| c.values["a"]), 13);

    // The old replica does not decide on a state without it: refused, naming why.
    let refused = old
        .execute(add("a", 100), md("ann"))
        .await
        .expect_err("the old build cannot read version 2");
    assert!(
        matches!(&refused, AppError::NotServing(why) if why.contains("test.Added version 2 is not known to this build")),
        "{refused:?}"
    );
    assert_eq!(refused.code(), tonic::Code::Unavailable, "{refused:?}");
    assert_eq!(
        old.query(|c| c.values["a"]),
        3,
        "the old state never took in what it cannot read"
    );

    // The new replica goes on serving.
    new.execute(add("a", 5), md("bob")).await.expect("new adds");
    assert_eq!(new.query(|c| c.values["a"]), 18);

    // Every acknowledged command is in the store once, in the version its build wrote; the
    // refused one is not.
    let all = new_store.read_all(1, 1_000).await.expect("read");
    let added: Vec<(u32, String)> = all
        .iter()
        .filter(|e| e.event_type == "test.Added")
        .map(|e| (e.schema_version, e.metadata.actor.clone()))
        .collect();
    assert_eq!(
        added,
        [
            (1, "ann".to_owned()),
            (1, "ann".into()),
            (2, "bob".into()),
            (2, "bob".into())
        ]
    );

    // The old replica restarted on the new build reads the whole store.
    let (upgraded, _task) = start(&old_store, Arc::new(NewBuild), new_upcasters()).await;
    assert_eq!(upgraded.query(|c| c.values["a"]), 18);
    upgraded
        .execute(add("a", 2), md("ann"))
        .await
        .expect("upgraded adds");
    eventually("both new-build replicas agree", || {
        new.query(|c| c.values["a"]) == 20 && upgraded.query(|c| c.values["a"]) == 20
    })
    .await;
    drop_schema(&url, &schema).await;
}

/// Leaves no schema behind (a failed run's is left to look at).
async fn drop_schema(url: &str, schema: &str) {
    use sqlx::Connection as _;
    if let Ok(mut conn) = sqlx::PgConnection::connect(url).await {
        // The schema name is made by the test (letters, digits and _).
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&mut conn)
        .await;
    }
}
