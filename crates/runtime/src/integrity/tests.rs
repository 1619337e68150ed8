//! The chain guard against stores altered in every way an insider could.

use flotilla_core::MemoryStore;
use flotilla_core::conformance::synthetic;

use super::*;

async fn filled(n: u32) -> (MemoryStore, Vec<RecordedEvent>) {
    let store = MemoryStore::new();
    for i in 0..n {
        store
            .append(AppendRequest::new(
                StreamId::new_for("item"),
                ExpectedVersion::NoStream,
                vec![synthetic(1, i)],
            ))
            .await
            .expect("append");
    }
    let all = store.read_all(1, usize::MAX).await.expect("read");
    (store, all)
}

#[tokio::test]
async fn an_altered_event_breaks_the_chain_at_its_position() {
    let (_, mut events) = filled(10).await;
    let guard = ChainGuard::new("test");
    guard.check_from(1, &events[..4]).expect("intact");
    assert_eq!(guard.verified_to(), 4);
    events[6].payload[0] ^= 1;
    let b = guard.check_from(5, &events[4..]).expect_err("altered");
    assert_eq!(b.position, 7);
    assert!(b.reason.contains("altered"), "{}", b.reason);
    assert_eq!(guard.broken(), Some(b.clone()));
    assert_eq!(guard.verified_to(), 6);
    // Stopped: nothing more is taken in.
    assert!(guard.check_from(1, &events[..1]).is_err());
}

#[tokio::test]
async fn relinked_and_missing_events_are_found() {
    let (_, mut events) = filled(6).await;
    // The insider recomputed the altered event's hash: the next link breaks.
    events[2].payload[0] ^= 1;
    events[2].hash = events[2].compute_hash();
    let guard = ChainGuard::new("test");
    assert_eq!(
        guard.check_from(1, &events).expect_err("relinked").position,
        4
    );
    let (_, mut events) = filled(6).await;
    events.remove(3);
    let guard = ChainGuard::new("test");
    let b = guard.check_from(1, &events).expect_err("missing");
    assert_eq!(b.position, 4);
    assert!(b.reason.contains("missing"), "{}", b.reason);
    assert_eq!(guard.found().map(|(_, k)| k), Some(BreakKind::Missing));
}

#[tokio::test]
async fn removed_tail_events_show_against_the_head() {
    let (store, events) = filled(5).await;
    let guard = ChainGuard::new("test");
    guard.check_from(1, &events[..3]).expect("intact");
    let head = store.head().await.expect("head");
    let b = guard.check_head(head).expect_err("tail removed");
    assert_eq!(b.position, 4);
    // Accepted, the removed tail no longer stops the service.
    let found = describe(&store, b, BreakKind::RemovedTail)
        .await
        .expect("describe");
    guard
        .accept(&store, &found, "operator:test")
        .await
        .expect("accept");
    guard.check_head(head).expect("accepted");
}

#[tokio::test]
async fn an_accepted_missing_event_is_linked_across() {
    let (store, mut events) = filled(6).await;
    events.remove(2);
    let guard = ChainGuard::new("test");
    let b = guard.check_from(1, &events).expect_err("missing");
    assert_eq!(b.position, 3);
    let found = describe(&store, b, BreakKind::Missing)
        .await
        .expect("describe");
    guard
        .accept(&store, &found, "operator:test")
        .await
        .expect("accept");
    let fresh = ChainGuard::new("test");
    fresh.load_accepted(&store).await.expect("load");
    fresh
        .check_from(1, &events)
        .expect("linked across the accepted gap");
    assert_eq!(fresh.verified_to(), 6);
    // Another event missing as well is a new break.
    let mut more = events.clone();
    more.remove(3);
    let again = ChainGuard::new("test");
    again.load_accepted(&store).await.expect("load");
    assert_eq!(
        again.check_from(1, &more).expect_err("second gap").position,
        5
    );
}

#[tokio::test]
async fn an_accepted_break_is_recorded_and_holds_for_that_content_only() {
    let (store, mut events) = filled(8).await;
    events[4].payload[0] ^= 1;
    let guard = ChainGuard::new("test");
    let b = guard.check_from(1, &events).expect_err("altered");
    // `describe` reads the stored (unaltered) event; describe the altered copy instead.
    let found = FoundBreak {
        chain_break: b,
        kind: BreakKind::Altered,
        event_hash: Some(events[4].compute_hash()),
    };
    guard
        .accept(&store, &found, "operator:test")
        .await
        .expect("accept");
    assert_eq!(guard.broken(), None);
    guard
        .check_from(5, &events[4..])
        .expect("accepted break, intact after it");
    assert_eq!(guard.verified_to(), 8);
    // A fresh start loads the acceptance from the store.
    let fresh = ChainGuard::new("test");
    assert_eq!(fresh.load_accepted(&store).await.expect("load"), 1);
    fresh.check_from(1, &events).expect("accepted");
    // Altered again: the acceptance no longer holds.
    events[4].payload[1] ^= 1;
    let again = ChainGuard::new("test");
    again.load_accepted(&store).await.expect("load");
    assert_eq!(
        again
            .check_from(1, &events)
            .expect_err("changed again")
            .position,
        5
    );
}

#[tokio::test]
async fn unreadable_rows_cannot_be_accepted() {
    let (store, _) = filled(2).await;
    let guard = ChainGuard::new("test");
    guard.read_failed(&StoreError::Corrupt {
        position: 2,
        reason: "bad uuid".into(),
    });
    let (b, kind) = guard.found().expect("broken");
    assert_eq!(kind, BreakKind::Unreadable);
    let found = describe(&store, b, kind).await.expect("describe");
    assert!(guard.accept(&store, &found, "operator:test").await.is_err());
    assert!(guard.broken().is_some());
}
