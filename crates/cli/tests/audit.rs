//! `flotilla audit verify` as an auditor runs it, offline with only the ledger's verifier key: a
//! bundle made from a signed checkpoint and inclusion proofs verifies; a changed leaf, proof or
//! checkpoint, or another key, does not, and says why.

use flotilla_transparency::bundle::{Bundle, FORMAT};
use flotilla_transparency::checkpoint::Checkpoint;
use flotilla_transparency::merkle::{Tree, leaf_hash};
use flotilla_transparency::note::NoteSigner;

mod support;
use support::{flotilla, text};

#[test]
fn a_bundle_verifies_offline_and_a_tampered_one_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let events: Vec<Vec<u8>> = (0..20u8)
        .map(|i| format!("event {i} of the ledger").into_bytes())
        .collect();
    let mut tree = Tree::new();
    for e in &events {
        tree.push(leaf_hash(e));
    }
    let signer = NoteSigner::new("flotilla.example/ledger", &[11; 32]).expect("signer");
    let checkpoint = Checkpoint {
        origin: "flotilla.example/ledger".into(),
        size: 20,
        root: tree.root(20).expect("root"),
        extensions: vec![],
    }
    .sign(&signer)
    .expect("signed");
    let bundle = |leaf: &[u8], index: usize| Bundle {
        format: FORMAT.into(),
        checkpoint: checkpoint.clone(),
        entries: vec![Bundle::entry(
            index as u64,
            leaf,
            &tree.inclusion_proof(index, 20).expect("proof"),
        )],
    };
    let key = signer.verifier().encode();
    let key_file = dir.path().join("ledger.vkey");
    std::fs::write(&key_file, &key).expect("key");
    let run = |b: &Bundle, key: &str| {
        let file = dir.path().join("bundle.json");
        std::fs::write(&file, serde_json::to_vec(b).expect("json")).expect("bundle");
        flotilla()
            .args(["audit", "verify"])
            .arg(&file)
            .args(["--key", key])
            .output()
            .expect("run flotilla")
    };
    let ok = run(&bundle(&events[7], 7), &key);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(text(&ok).contains("at size 20"), "{}", text(&ok));
    let from_file = run(&bundle(&events[7], 7), &key_file.to_string_lossy());
    assert!(from_file.status.success(), "{}", text(&from_file));
    // Another leaf claimed at 7, the right leaf at another index, a checkpoint of another
    // size, another key: refused, exit 1, with the reason.
    for (b, k, why) in [
        (
            bundle(&events[8], 7),
            key.clone(),
            "does not lead to the root",
        ),
        (
            bundle(&events[7], 6),
            key.clone(),
            "does not lead to the root",
        ),
        (
            Bundle {
                checkpoint: checkpoint.replacen("\n20\n", "\n21\n", 1),
                ..bundle(&events[7], 7)
            },
            key.clone(),
            "does not verify",
        ),
        (
            bundle(&events[7], 7),
            NoteSigner::new("flotilla.example/ledger", &[12; 32])
                .expect("other")
                .verifier()
                .encode(),
            "no signature by a known key",
        ),
    ] {
        let out = run(&b, &k);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains(why), "{why}: {}", text(&out));
    }
    let bad_key = run(&bundle(&events[7], 7), "not-a-key");
    assert!(!bad_key.status.success());
    assert!(
        text(&bad_key).contains("verifier key"),
        "{}",
        text(&bad_key)
    );
}
