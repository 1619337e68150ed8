//! The keyring conformance suite: every keyring runs it through
//! [`keyring_conformance_tests!`](crate::keyring_conformance_tests), one test per rule. `pair`
//! gives two handles on one fresh keyring, as two processes of one deployment would hold.

use std::sync::Arc;

use super::keyring::Keyring;
use super::seal::Token;

/// Two handles on one fresh keyring.
pub type Pair = (Arc<dyn Keyring>, Arc<dyn Keyring>);

/// A subject has one key, whichever handle asks, and its tokens open through either.
pub async fn one_key_per_subject((a, b): Pair) {
    let k1 = a.key_for("alice@bank.example").await.expect("key");
    let k2 = b.key_for("alice@bank.example").await.expect("key");
    assert_eq!(k1, k2);
    assert_ne!(k1.id, a.key_for("bob@bank.example").await.expect("key").id);
    let t = Token::parse(&k1.seal("Alice")).expect("token");
    let k = b.key(k1.id).await.expect("read").expect("live");
    assert_eq!(k.open(&t).as_deref(), Ok("Alice"));
    assert_eq!(
        b.find("alice@bank.example").await.expect("find"),
        Some(k1.id)
    );
    assert_eq!(b.find("nobody@bank.example").await.expect("find"), None);
}

/// Concurrent first uses of a subject, from both handles, agree on one key.
pub async fn concurrent_first_use_agrees((a, b): Pair) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let ring = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            ring.key_for("carol@bank.example").await.expect("key").id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.expect("task"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
}

/// Erasing destroys the key for every handle, for good; the subject starts over with a new key.
pub async fn erasure_is_permanent_and_shared((a, b): Pair) {
    let k = a.key_for("dave@bank.example").await.expect("key");
    assert!(b.erase(k.id).await.expect("erase"));
    assert!(!a.erase(k.id).await.expect("again"), "already erased");
    assert_eq!(a.key(k.id).await.expect("read"), None);
    assert_eq!(b.key(k.id).await.expect("read"), None);
    assert_eq!(a.find("dave@bank.example").await.expect("find"), None);
    let again = a.key_for("dave@bank.example").await.expect("new key");
    assert_ne!(again.id, k.id);
    assert_ne!(again.secret(), k.secret());
    assert_eq!(
        b.key(k.id).await.expect("read"),
        None,
        "the old key stays erased"
    );
}

/// An id no key ever had reads as absent, and erasing it destroys nothing.
pub async fn unknown_ids_are_absent((a, _): Pair) {
    let id = super::KeyId(uuid::Uuid::new_v4());
    assert_eq!(a.key(id).await.expect("read"), None);
    assert!(!a.erase(id).await.expect("erase"));
}

/// One `#[tokio::test]` per keyring rule; `$pair` is an async expression giving a [`Pair`].
#[macro_export]
macro_rules! keyring_conformance_tests {
    ($pair:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn one_key_per_subject() {
            $crate::personal::conformance::one_key_per_subject($pair).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn concurrent_first_use_agrees() {
            $crate::personal::conformance::concurrent_first_use_agrees($pair).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn erasure_is_permanent_and_shared() {
            $crate::personal::conformance::erasure_is_permanent_and_shared($pair).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn unknown_ids_are_absent() {
            $crate::personal::conformance::unknown_ids_are_absent($pair).await
        }
    };
}

#[cfg(test)]
mod memory {
    use std::sync::Arc;

    use crate::personal::MemoryKeyring;

    async fn pair() -> super::Pair {
        let k = Arc::new(MemoryKeyring::default());
        (k.clone(), k)
    }

    crate::keyring_conformance_tests!(pair().await);
}
