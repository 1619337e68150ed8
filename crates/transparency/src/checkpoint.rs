//! C2SP tlog checkpoints (c2sp.org/tlog-checkpoint): the note text `origin`, the tree size in
//! decimal, the base64 root hash, then optional extension lines, signed as a note.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::merkle::Hash;
use crate::note::{NoteError, NoteSigner, NoteVerifier, open};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// The note text.
    pub fn text(&self) -> String {
        let mut t = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        );
        for e in &self.extensions {
            t.push_str(e);
            t.push('\n');
        }
        t
    }

    /// Reads a checkpoint's note text.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::Malformed(format!("checkpoint: {why}"));
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("the text does not end with a newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(bad("fewer than three lines"));
        };
        if origin.is_empty() || lines.iter().any(|l| l.is_empty()) {
            return Err(bad("an empty line"));
        }
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad(
                "the size is not a decimal number without leading zeroes",
            ));
        }
        let size: u64 = size.parse().map_err(|_| bad("the size is out of range"))?;
        let raw = STANDARD
            .decode(root)
            .map_err(|_| bad("the root hash is not base64"))?;
        let root =
            Hash::try_from(raw.as_slice()).map_err(|_| bad("the root hash is not 32 bytes"))?;
        Ok(Self {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|e| (*e).to_owned()).collect(),
        })
    }

    /// The signed checkpoint.
    pub fn sign(&self, signer: &NoteSigner) -> Result<String, NoteError> {
        signer.sign(&self.text())
    }

    /// The checkpoint of a signed note verified by one of `known`.
    pub fn open(note: &str, known: &[NoteVerifier]) -> Result<Self, NoteError> {
        Self::parse(open(note, known)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example text of c2sp.org/tlog-checkpoint.
    const EXAMPLE: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn the_specs_example_reads_and_writes_back() {
        let c = Checkpoint::parse(EXAMPLE).expect("parsed");
        assert_eq!(
            (c.origin.as_str(), c.size),
            ("example.com/behind-the-sofa", 20_852_163)
        );
        assert_eq!(c.text(), EXAMPLE);
    }

    #[test]
    fn malformed_checkpoints_are_refused_and_signed_ones_verify() {
        for bad in [
            "origin\n012\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "origin\n-1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
            "origin\n1\nnot base64!\n",
            "origin\n1\nAAAA\n",
            "origin\n1\n",
            "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\next\n",
            "origin\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
        let signer = NoteSigner::new("flotilla.example/ledger", &[3; 32]).expect("signer");
        let c = Checkpoint {
            origin: "flotilla.example/ledger".into(),
            size: 8,
            root: crate::merkle::empty_root(),
            extensions: vec![],
        };
        let note = c.sign(&signer).expect("signed");
        assert_eq!(Checkpoint::open(&note, &[signer.verifier()]), Ok(c));
        let tampered = note.replacen("\n8\n", "\n9\n", 1);
        assert!(Checkpoint::open(&tampered, &[signer.verifier()]).is_err());
    }
}
