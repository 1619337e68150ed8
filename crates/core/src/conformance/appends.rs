//! Appending: expected versions, conditions on other streams, concurrent appenders, empty and large appends, idempotent retries.

use uuid::Uuid;

use crate::store::{AppendRequest, Direction, StoreError};
use crate::version::ExpectedVersion;

use super::*;

/// The four expectations behave as KurrentDB's; conflicts name expected and actual versions.
pub async fn expected_versions_are_enforced(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("ev");
    let err = append(&store, &s, ExpectedVersion::StreamExists, 1)
        .await
        .expect_err("must conflict");
    assert_eq!(
        err,
        StoreError::WrongExpectedVersion {
            stream_id: s.clone(),
            expected: ExpectedVersion::StreamExists,
            actual: None
        }
    );
    let err = append(&store, &s, ExpectedVersion::Exact(0), 1)
        .await
        .expect_err("must conflict");
    assert!(matches!(
        err,
        StoreError::WrongExpectedVersion { actual: None, .. }
    ));
    append(&store, &s, ExpectedVersion::NoStream, 2)
        .await
        .expect("create");
    let err = append(&store, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect_err("must conflict");
    assert_eq!(
        err,
        StoreError::WrongExpectedVersion {
            stream_id: s.clone(),
            expected: ExpectedVersion::NoStream,
            actual: Some(1)
        }
    );
    let err = append(&store, &s, ExpectedVersion::Exact(0), 1)
        .await
        .expect_err("must conflict");
    assert_eq!(
        err.to_string(),
        format!("wrong expected version on stream {s}: expected version 0, stream is at version 1")
    );
    append(&store, &s, ExpectedVersion::StreamExists, 1)
        .await
        .expect("exists");
    append(&store, &s, ExpectedVersion::Exact(2), 1)
        .await
        .expect("exact");
    append(&store, &s, ExpectedVersion::Any, 1)
        .await
        .expect("any");
    assert_eq!(store.stream_version(&s).await.expect("version"), Some(4));
    // Failed appends wrote nothing.
    assert_eq!(store.head().await.expect("head").position, 5);
}

/// An append conditional on other streams' versions is written only while they are there,
/// also when another handle (process) moved them; a failed condition names its stream.
pub async fn conditions_on_other_streams_hold(h: &dyn StoreHarness) {
    let Fresh { store, tamper } = h.fresh().await;
    let target = stream("target");
    let read = stream("read");
    append(&store, &read, ExpectedVersion::NoStream, 1)
        .await
        .expect("create the stream read");
    let conditional = |expected: ExpectedVersion| {
        AppendRequest::new(target.clone(), ExpectedVersion::Any, events(1))
            .provided(read.clone(), expected)
    };
    store
        .append(conditional(ExpectedVersion::Exact(0)))
        .await
        .expect("condition holds");
    // Someone appends to the stream that was read: the same decision no longer holds.
    let other = tamper
        .second_handle()
        .await
        .unwrap_or_else(|| store.clone());
    append(&other, &read, ExpectedVersion::Exact(0), 1)
        .await
        .expect("moved");
    let err = store
        .append(conditional(ExpectedVersion::Exact(0)))
        .await
        .expect_err("condition broken");
    assert_eq!(
        err,
        StoreError::WrongExpectedVersion {
            stream_id: read.clone(),
            expected: ExpectedVersion::Exact(0),
            actual: Some(1),
        }
    );
    assert_eq!(
        store.stream_version(&target).await.expect("version"),
        Some(0)
    );
    let err = store
        .append(
            AppendRequest::new(target.clone(), ExpectedVersion::Any, events(1))
                .provided(stream("never"), ExpectedVersion::StreamExists),
        )
        .await
        .expect_err("absent stream");
    assert!(matches!(
        err,
        StoreError::WrongExpectedVersion { actual: None, .. }
    ));
    store
        .append(conditional(ExpectedVersion::Exact(1)))
        .await
        .expect("decided again on what is there");
    assert_eq!(
        store.stream_version(&target).await.expect("version"),
        Some(1)
    );
}

/// 16 appenders with the same expectation: exactly one wins, the rest get typed conflicts.
pub async fn concurrent_appenders_one_wins(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("race");
    append(&store, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect("create");
    let mut tasks = Vec::new();
    for w in 0..16u32 {
        let store = store.clone();
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(AppendRequest::new(
                    s,
                    ExpectedVersion::Exact(0),
                    vec![synthetic(w, 0), synthetic(w, 1)],
                ))
                .await
        }));
    }
    let mut wins = 0;
    let mut conflicts = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(o) => {
                wins += 1;
                assert_eq!(o.stream_version, 2);
            }
            Err(StoreError::WrongExpectedVersion {
                expected,
                actual,
                stream_id,
            }) => {
                conflicts += 1;
                assert_eq!(stream_id, s);
                assert_eq!(expected, ExpectedVersion::Exact(0));
                assert_eq!(actual, Some(2));
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!((wins, conflicts), (1, 15));
    assert_eq!(store.stream_version(&s).await.expect("version"), Some(2));
    assert_eq!(store.head().await.expect("head").position, 3);
}

/// A zero-event append is refused and the stream stays usable.
pub async fn empty_append_is_rejected(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("empty");
    append(&store, &s, ExpectedVersion::NoStream, 1)
        .await
        .expect("create");
    let err = store
        .append(AppendRequest::new(
            s.clone(),
            ExpectedVersion::Exact(0),
            vec![],
        ))
        .await
        .expect_err("empty");
    assert_eq!(
        err,
        StoreError::EmptyAppend {
            stream_id: s.clone()
        }
    );
    assert!(err.to_string().contains("carries no events"));
    let o = append(&store, &s, ExpectedVersion::Exact(0), 1)
        .await
        .expect("still usable");
    assert_eq!(o.stream_version, 1);
    let t = stream("empty");
    store
        .append(AppendRequest::new(
            t.clone(),
            ExpectedVersion::NoStream,
            vec![],
        ))
        .await
        .expect_err("empty");
    assert_eq!(store.stream_version(&t).await.expect("version"), None);
}

/// One append of 20,000 events (no bind-parameter overflow).
pub async fn large_append_succeeds(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("big");
    append(&store, &stream("other"), ExpectedVersion::Any, 1)
        .await
        .expect("first");
    let o = append(&store, &s, ExpectedVersion::NoStream, 20_000)
        .await
        .expect("20k append");
    assert_eq!(
        (o.first_position, o.last_position, o.stream_version),
        (2, 20_001, 19_999)
    );
    let tail = store
        .read_stream(&s, None, Direction::Backwards, 1)
        .await
        .expect("read");
    assert_eq!(tail[0].stream_version, 19_999);
    let report = store.verify(&|_| {}).await.expect("verify");
    assert!(report.holds(), "{report:?}");
    assert_eq!(report.checked, 20_001);
}

/// An idempotent retry with the same command id does not append twice.
pub async fn idempotent_retry_appends_once(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    let s = stream("idem");
    let cmd = Uuid::now_v7();
    let mk = || {
        let mut e = synthetic(1, 1);
        e.metadata.command_id = Some(cmd);
        AppendRequest::new(s.clone(), ExpectedVersion::Any, vec![e, synthetic(1, 2)])
    };
    let first = store.append(mk()).await.expect("first");
    let retry = store.append(mk()).await.expect("retry");
    assert!(!first.deduplicated);
    assert!(retry.deduplicated);
    assert_eq!(
        (
            retry.first_position,
            retry.last_position,
            retry.stream_version
        ),
        (
            first.first_position,
            first.last_position,
            first.stream_version
        )
    );
    // Concurrent retries also append once.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        let r = mk();
        tasks.push(tokio::spawn(async move { store.append(r).await }));
    }
    for t in tasks {
        assert!(t.await.expect("task").expect("retry").deduplicated);
    }
    assert_eq!(store.head().await.expect("head").position, 2);
    // Retries of commands that stated exact expectations get the first outcome, not a conflict.
    let created = stream("idem");
    let mk_exact = |expected: ExpectedVersion, cmd: Uuid| {
        let mut e = synthetic(2, 1);
        e.metadata.command_id = Some(cmd);
        AppendRequest::new(created.clone(), expected, vec![e])
    };
    let (c1, c2) = (Uuid::now_v7(), Uuid::now_v7());
    let first_create = store
        .append(mk_exact(ExpectedVersion::NoStream, c1))
        .await
        .expect("create");
    let retry_create = store
        .append(mk_exact(ExpectedVersion::NoStream, c1))
        .await
        .expect("retried create is not a conflict");
    assert!(retry_create.deduplicated);
    assert_eq!(retry_create.last_position, first_create.last_position);
    let first_next = store
        .append(mk_exact(ExpectedVersion::Exact(0), c2))
        .await
        .expect("next");
    let retry_next = store
        .append(mk_exact(ExpectedVersion::Exact(0), c2))
        .await
        .expect("retried next is not a conflict");
    assert!(retry_next.deduplicated);
    assert_eq!(
        (retry_next.last_position, retry_next.stream_version),
        (first_next.last_position, 1)
    );
    // A different command with the stale expectation is still a conflict.
    let err = store
        .append(mk_exact(ExpectedVersion::Exact(0), Uuid::now_v7()))
        .await
        .expect_err("conflict");
    assert!(
        matches!(
            err,
            StoreError::WrongExpectedVersion {
                actual: Some(1),
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.head().await.expect("head").position, 4);
    // The inbox: consuming the same event twice applies once.
    let source = Uuid::now_v7();
    let inbox = |n| {
        AppendRequest::new(stream("inbox"), ExpectedVersion::Any, events(n))
            .consuming("relay-test", source)
    };
    assert!(!store.append(inbox(1)).await.expect("consume").deduplicated);
    assert!(
        store
            .append(inbox(1))
            .await
            .expect("consume again")
            .deduplicated
    );
    assert_eq!(store.head().await.expect("head").position, 5);
    let key = crate::store::inbox_key("relay-test", Uuid::now_v7());
    assert!(!store.is_processed(&key).await.expect("lookup"));
    assert!(store.record_processed(&key).await.expect("record"));
    assert!(!store.record_processed(&key).await.expect("record again"));
    assert!(store.is_processed(&key).await.expect("lookup"));
}
