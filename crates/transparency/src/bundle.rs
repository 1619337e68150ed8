//! An audit bundle: a signed checkpoint and ledger entries, each with its inclusion proof
//! against that checkpoint, as JSON. Anyone holding only the log's verifier key checks it
//! offline (`flotilla audit verify`): the checkpoint's signature, then every entry's leaf
//! hash up to the checkpoint's root.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::checkpoint::Checkpoint;
use crate::ledger::{EventRecord, Leaf};
use crate::merkle::{Hash, hashes, leaf_hash, verify_inclusion};
use crate::note::{NoteError, NoteVerifier};

/// The format line of version 1.
pub const FORMAT: &str = "flotilla-audit-bundle/v1";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bundle {
    pub format: String,
    /// The signed checkpoint (a C2SP signed note).
    pub checkpoint: String,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The leaf's position in the ledger.
    pub index: u64,
    /// The leaf's data, base64.
    pub leaf: String,
    /// The inclusion proof against the checkpoint, base64 hashes, nearest first.
    pub proof: Vec<String>,
    /// The event the leaf ledgers, when exported with it: checked against the leaf too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<EventRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("the bundle is not {FORMAT} JSON: {0}")]
    Malformed(String),
    #[error("the checkpoint: {0}")]
    Checkpoint(NoteError),
    #[error("entry {entry} (leaf {index}): {reason}")]
    Entry {
        entry: usize,
        index: u64,
        reason: String,
    },
}

/// What a verified bundle proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub checkpoint: Checkpoint,
    pub entries: usize,
}

impl Bundle {
    /// An entry of leaf `data` at `index` with its proof.
    pub fn entry(index: u64, data: &[u8], proof: &[Hash]) -> Entry {
        Entry {
            index,
            leaf: STANDARD.encode(data),
            proof: proof.iter().map(|h| STANDARD.encode(h)).collect(),
            event: None,
        }
    }
}

/// Checks a bundle's JSON with the log's verifier key.
pub fn verify(json: &[u8], key: &NoteVerifier) -> Result<Verified, BundleError> {
    let b: Bundle =
        serde_json::from_slice(json).map_err(|e| BundleError::Malformed(e.to_string()))?;
    if b.format != FORMAT {
        return Err(BundleError::Malformed(format!("format {:?}", b.format)));
    }
    let checkpoint = Checkpoint::open(&b.checkpoint, std::slice::from_ref(key))
        .map_err(BundleError::Checkpoint)?;
    for (i, e) in b.entries.iter().enumerate() {
        let fail = |reason: String| BundleError::Entry {
            entry: i,
            index: e.index,
            reason,
        };
        let data = STANDARD
            .decode(&e.leaf)
            .map_err(|_| fail("the leaf is not base64".into()))?;
        let raw: Vec<Vec<u8>> = e
            .proof
            .iter()
            .map(|p| STANDARD.decode(p))
            .collect::<Result<_, _>>()
            .map_err(|_| fail("a proof hash is not base64".into()))?;
        let proof = hashes(&raw).map_err(|err| fail(err.to_string()))?;
        verify_inclusion(
            e.index,
            checkpoint.size,
            &leaf_hash(&data),
            &proof,
            &checkpoint.root,
        )
        .map_err(|err| fail(err.to_string()))?;
        if let Some(event) = &e.event {
            let leaf = Leaf::decode(&data).map_err(|err| fail(format!("the leaf: {err}")))?;
            event
                .check_against(&leaf)
                .map_err(|err| fail(format!("the event: {err}")))?;
        }
    }
    Ok(Verified {
        checkpoint,
        entries: b.entries.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::Tree;
    use crate::note::NoteSigner;

    fn bundle() -> (Vec<u8>, NoteVerifier) {
        let data: Vec<Vec<u8>> = (0..13u8).map(|i| vec![i; i as usize + 1]).collect();
        let mut t = Tree::new();
        for d in &data {
            t.push(leaf_hash(d));
        }
        let signer = NoteSigner::new("flotilla.example/ledger", &[5; 32]).expect("signer");
        let c = Checkpoint {
            origin: "flotilla.example/ledger".into(),
            size: 13,
            root: t.root(13).expect("root"),
            extensions: vec![],
        };
        let b = Bundle {
            format: FORMAT.into(),
            checkpoint: c.sign(&signer).expect("signed"),
            entries: [2usize, 7, 12]
                .iter()
                .map(|&i| {
                    Bundle::entry(
                        i as u64,
                        &data[i],
                        &t.inclusion_proof(i, 13).expect("proof"),
                    )
                })
                .collect(),
        };
        (
            serde_json::to_vec_pretty(&b).expect("json"),
            signer.verifier(),
        )
    }

    #[test]
    fn a_bundle_verifies_with_only_the_public_key() {
        let (json, key) = bundle();
        let v = verify(&json, &key).expect("verified");
        assert_eq!((v.checkpoint.size, v.entries), (13, 3));
        let other = NoteSigner::new("flotilla.example/ledger", &[6; 32]).expect("other");
        assert!(matches!(
            verify(&json, &other.verifier()),
            Err(BundleError::Checkpoint(NoteError::Unverified))
        ));
    }

    #[test]
    fn flipping_any_byte_of_the_bundle_fails_verification() {
        let (json, key) = bundle();
        let mut passed = Vec::new();
        for i in 0..json.len() {
            // Whitespace and JSON structure outside values may change harmlessly; every byte
            // of a value (checkpoint, leaf, proof, index) must not.
            let mut b = json.clone();
            b[i] ^= 0x01;
            if verify(&b, &key).is_ok() {
                passed.push(i);
            }
        }
        let harmless = passed.iter().all(|&i| json[i].is_ascii_whitespace());
        assert!(
            harmless,
            "a changed byte of a value still verified at {passed:?}"
        );
    }
}
