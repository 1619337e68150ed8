//! Leases: one holder at a time, tokens that only grow, lapsed leases taken over, and writes
//! fenced by a deposed term refused while everyone else's go on.

use std::sync::Arc;
use std::time::Duration;

use super::{Fresh, StoreHarness, append, events, stream};
use crate::store::{AppendRequest, EventStore, StoreError};
use crate::version::ExpectedVersion;

const TTL: Duration = Duration::from_secs(30);

fn fenced_refusal(e: &StoreError, token: u64) -> bool {
    matches!(e, StoreError::Fenced { token: t, .. } if *t == token)
}

pub async fn lease_has_one_holder_and_tokens_grow(h: &dyn StoreHarness) {
    let Fresh { store, tamper: _t } = h.fresh().await;
    assert_eq!(store.lease("relay").await.expect("read"), None);
    let a = store
        .acquire_lease("relay", "replica-a", TTL)
        .await
        .expect("acquire")
        .expect("a free lease is taken");
    assert!(
        store
            .acquire_lease("relay", "replica-b", TTL)
            .await
            .expect("acquire")
            .is_none(),
        "a held lease is not taken by another"
    );
    let renewed = store
        .acquire_lease("relay", "replica-a", TTL)
        .await
        .expect("renew")
        .expect("the holder renews");
    assert_eq!(renewed, a, "renewing keeps the term");
    let state = store.lease("relay").await.expect("read").expect("recorded");
    assert_eq!((state.holder.as_str(), state.token), ("replica-a", a.token));
    assert!(!state.expired() && state.expires_in <= TTL);
    // Another lease name is independent.
    assert!(
        store
            .acquire_lease("scheduler", "replica-b", TTL)
            .await
            .expect("acquire")
            .is_some()
    );
    store.release_lease(&a).await.expect("release");
    assert!(
        store
            .lease("relay")
            .await
            .expect("read")
            .expect("kept")
            .expired()
    );
    let b = store
        .acquire_lease("relay", "replica-b", TTL)
        .await
        .expect("acquire")
        .expect("a released lease is taken at once");
    assert!(b.token > a.token, "a new term has a higher token");
    // The deposed holder taking it again would need it to lapse; releasing b's term as a does
    // nothing.
    store
        .release_lease(&a)
        .await
        .expect("release by a deposed term");
    assert!(
        store
            .acquire_lease("relay", "replica-a", TTL)
            .await
            .expect("acquire")
            .is_none()
    );
}

pub async fn lapsed_lease_is_taken_over(h: &dyn StoreHarness) {
    let Fresh { store, tamper: _t } = h.fresh().await;
    let short = Duration::from_millis(300);
    let a = store
        .acquire_lease("relay", "replica-a", short)
        .await
        .expect("acquire")
        .expect("taken");
    assert!(
        store
            .acquire_lease("relay", "replica-b", short)
            .await
            .expect("acquire")
            .is_none()
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(
        store
            .lease("relay")
            .await
            .expect("read")
            .expect("kept")
            .expired()
    );
    let b = store
        .acquire_lease("relay", "replica-b", TTL)
        .await
        .expect("acquire")
        .expect("a lapsed lease is taken over");
    assert!(b.token > a.token);
    // The holder whose lease lapsed cannot renew it back.
    assert!(
        store
            .acquire_lease("relay", "replica-a", TTL)
            .await
            .expect("acquire")
            .is_none()
    );
    // Nor is a lapse of its own renewed as the same term: nobody may rely on an expired term.
    let c = store
        .acquire_lease("other", "replica-a", short)
        .await
        .expect("acquire")
        .expect("taken");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let c2 = store
        .acquire_lease("other", "replica-a", TTL)
        .await
        .expect("acquire")
        .expect("taken again");
    assert!(c2.token > c.token);
    assert!(
        store.acquire_lease("", "x", TTL).await.is_err()
            && store
                .acquire_lease("x", "y", Duration::from_secs(100_000))
                .await
                .is_err(),
        "malformed leases are refused"
    );
}

pub async fn deposed_terms_write_nothing(h: &dyn StoreHarness) {
    let Fresh { store, tamper } = h.fresh().await;
    let other = tamper
        .second_handle()
        .await
        .unwrap_or_else(|| store.clone());
    let a = store
        .acquire_lease("duty", "replica-a", TTL)
        .await
        .expect("acquire")
        .expect("taken");
    store
        .save_checkpoint_fenced("relay-nats", 5, &a)
        .await
        .expect("the holder checkpoints");
    let s = stream("fenced");
    store
        .append(
            AppendRequest::new(s.clone(), ExpectedVersion::NoStream, events(1)).fenced(a.clone()),
        )
        .await
        .expect("the holder appends");
    other.release_lease(&a).await.expect("release");
    let b = other
        .acquire_lease("duty", "replica-b", TTL)
        .await
        .expect("acquire")
        .expect("taken over");
    let e = store
        .save_checkpoint_fenced("relay-nats", 9, &a)
        .await
        .expect_err("a deposed term's checkpoint is refused");
    assert!(fenced_refusal(&e, a.token), "{e}");
    assert_eq!(
        store.load_checkpoint("relay-nats").await.expect("load"),
        Some(5)
    );
    // A batch mixing the deposed term's append with others: only the fenced one is refused.
    let free = stream("free");
    let deposed = store.append(
        AppendRequest::new(s.clone(), ExpectedVersion::Exact(0), events(1)).fenced(a.clone()),
    );
    let unfenced = store.append(AppendRequest::new(
        free.clone(),
        ExpectedVersion::NoStream,
        events(2),
    ));
    let current = other.append(
        AppendRequest::new(s.clone(), ExpectedVersion::Exact(0), events(1)).fenced(b.clone()),
    );
    let (deposed, unfenced, current) = tokio::join!(deposed, unfenced, current);
    let e = deposed.expect_err("the deposed term's append is refused");
    assert!(fenced_refusal(&e, a.token), "{e}");
    unfenced.expect("appends without a fence go on");
    current.expect("the current term appends");
    assert_eq!(store.stream_version(&s).await.expect("version"), Some(1));
    other
        .save_checkpoint_fenced("relay-nats", 9, &b)
        .await
        .expect("the new holder checkpoints");
    assert_eq!(
        store.load_checkpoint("relay-nats").await.expect("load"),
        Some(9)
    );
    // A fence naming a lease never taken is refused too.
    let never = crate::lease::Fence {
        lease: "never".into(),
        ..b.clone()
    };
    append(&store, &free, ExpectedVersion::Exact(1), 1)
        .await
        .expect("an unfenced append");
    let e = store
        .append(AppendRequest::new(free, ExpectedVersion::Exact(2), events(1)).fenced(never))
        .await
        .expect_err("no such lease");
    assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
}

pub async fn racing_replicas_one_holder(h: &dyn StoreHarness) {
    let Fresh { store, tamper } = h.fresh().await;
    let second = tamper.second_handle().await;
    let handles: Vec<Arc<dyn EventStore>> = (0..8)
        .map(|i| match (&second, i % 2) {
            (Some(b), 1) => b.clone(),
            _ => store.clone(),
        })
        .collect();
    let races = handles.into_iter().enumerate().map(|(i, s)| async move {
        s.acquire_lease("relay", &format!("replica-{i}"), TTL)
            .await
            .expect("acquire")
    });
    let won: Vec<_> = futures::future::join_all(races)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one of the racing replicas holds the lease: {won:?}"
    );
}
