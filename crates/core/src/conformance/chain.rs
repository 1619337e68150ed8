//! The hash chain: tampering detected, verify while appending, two handles on one chain.

use crate::ids::StreamId;
use crate::store::{AppendRequest, StoreError};
use crate::version::ExpectedVersion;

use super::*;

/// Changing one byte of any stored event, or deleting one, makes `verify` fail there.
pub async fn verify_detects_tampering(h: &dyn StoreHarness) {
    for (what, position) in [
        (Tampering::PayloadByte, 7),
        (Tampering::MetadataByte, 3),
        (Tampering::HashByte, 10),
        (Tampering::DeleteRow, 5),
        (Tampering::DeleteRow, 12),
    ] {
        let Fresh { store, tamper } = h.fresh().await;
        for i in 0..4 {
            append(&store, &stream("audit"), ExpectedVersion::NoStream, 3)
                .await
                .unwrap_or_else(|e| panic!("append {i}: {e}"));
        }
        let ok = store.verify(&|_| {}).await.expect("verify");
        assert!(ok.holds(), "{ok:?}");
        assert_eq!(ok.checked, 12);
        tamper.apply(position, what).await;
        let report = store.verify(&|_| {}).await.expect("verify runs");
        let broken = report
            .broken
            .unwrap_or_else(|| panic!("{what:?} at {position} not detected"));
        assert_eq!(broken.position, position, "{what:?}: {}", broken.reason);
    }
}

/// `verify` while appends continue checks up to the head it started from and holds.
pub async fn verify_while_appending_holds(h: &dyn StoreHarness) {
    let Fresh {
        store,
        tamper: _keep,
    } = h.fresh().await;
    append(&store, &stream("busy"), ExpectedVersion::Any, 500)
        .await
        .expect("seed");
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..200 {
                append(&store, &stream("busy"), ExpectedVersion::Any, 3)
                    .await
                    .expect("append");
            }
        })
    };
    for _ in 0..5 {
        let report = store.verify(&|_| {}).await.expect("verify");
        assert!(report.holds(), "verify under load: {report:?}");
        assert_eq!(report.checked, report.head.position);
    }
    writer.await.expect("writer");
    let report = store.verify(&|_| {}).await.expect("verify");
    assert!(report.holds() && report.checked == 1_100, "{report:?}");
}

/// Two handles on one store (two processes): one chain, gap-free, conflicts still typed, each
/// sees the other's appends.
pub async fn two_handles_share_one_chain(h: &dyn StoreHarness) {
    let Fresh { store: a, tamper } = h.fresh().await;
    let Some(b) = tamper.second_handle().await else {
        return;
    };
    let shared = stream("shared");
    append(&a, &shared, ExpectedVersion::NoStream, 1)
        .await
        .expect("create via a");
    let err = append(&b, &shared, ExpectedVersion::NoStream, 1)
        .await
        .expect_err("b sees a's stream");
    assert!(
        matches!(
            err,
            StoreError::WrongExpectedVersion {
                actual: Some(0),
                ..
            }
        ),
        "{err}"
    );
    append(&b, &shared, ExpectedVersion::Exact(0), 1)
        .await
        .expect("b appends after a");
    let err = append(&a, &shared, ExpectedVersion::Exact(0), 1)
        .await
        .expect_err("a's cache is stale, the store is not");
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
    let mut tasks = Vec::new();
    for (i, s) in [a.clone(), b.clone()]
        .into_iter()
        .cycle()
        .take(8)
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            for j in 0..50u32 {
                s.append(AppendRequest::new(
                    StreamId::new_for("both"),
                    ExpectedVersion::NoStream,
                    vec![synthetic(i as u32, j)],
                ))
                .await
                .expect("append");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    let all = b.read_all(1, usize::MAX).await.expect("read");
    assert_eq!(all.len(), 402);
    assert!(
        all.iter()
            .enumerate()
            .all(|(i, e)| e.global_position == i as u64 + 1),
        "positions are gap-free"
    );
    let report = a.verify(&|_| {}).await.expect("verify");
    assert!(report.holds() && report.checked == 402, "{report:?}");
}

/// Three handles (as three processes) each appending to one stream at the version it just
/// read: every append is written or refused as a conflict (never a backend error, whatever
/// the handles cached), versions stay gap-free, and every handle gets appends through.
pub async fn racing_handles_neither_collide_nor_starve(h: &dyn StoreHarness) {
    for round in 0..5 {
        let Fresh { store, tamper } = h.fresh().await;
        let (Some(b), Some(c)) = (tamper.second_handle().await, tamper.second_handle().await)
        else {
            return;
        };
        let s = stream("contended");
        let writers = [store.clone(), b, c]
            .into_iter()
            .enumerate()
            .map(|(w, st)| {
                let s = s.clone();
                async move {
                    let (mut written, mut other) = (0, Vec::new());
                    for n in 0..30 {
                        let _ = st.head().await;
                        let v = st.stream_version(&s).await.expect("version");
                        let expected = v.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                        let request =
                            AppendRequest::new(s.clone(), expected, vec![synthetic(w as u32, n)]);
                        match st.append(request).await {
                            Ok(_) => written += 1,
                            Err(StoreError::WrongExpectedVersion { .. }) => {}
                            Err(e) => other.push(e.to_string()),
                        }
                    }
                    (written, other)
                }
            });
        let results = futures::future::join_all(writers).await;
        let total: usize = results.iter().map(|(w, _)| w).sum();
        for (w, (written, other)) in results.iter().enumerate() {
            assert!(other.is_empty(), "round {round}, handle {w}: {other:?}");
            assert!(
                *written > 0,
                "round {round}: handle {w} never got an append through"
            );
        }
        let events = store
            .read_stream(&s, None, crate::store::Direction::Forwards, 1_000)
            .await
            .expect("read");
        assert_eq!(events.len(), total);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.stream_version, i as u64);
        }
    }
}
