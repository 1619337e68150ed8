//! C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys: a text, a blank line, and
//! signature lines `— <key name> base64(key ID || signature)`; the key ID is the first four
//! bytes of SHA-256(key name || 0x0A || 0x01 || public key). Verifier keys are written
//! `<name>+<hex key ID>+base64(0x01 || public key)`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest, Sha256};

/// The signature type byte of Ed25519.
const ED25519: u8 = 0x01;
/// Most signature lines read from one note.
pub const MAX_SIGNATURES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the verifier key is not <name>+<hex id>+<base64 key>: {0}")]
    BadVerifierKey(String),
    #[error("the note is malformed: {0}")]
    Malformed(String),
    #[error("a signature by {0} does not verify")]
    BadSignature(String),
    #[error("no signature by a known key")]
    Unverified,
}

/// The key ID of an Ed25519 key with this name.
pub fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([0x0a, ED25519]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// A key that verifies notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier {
    pub name: String,
    pub id: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Reads a verifier key `<name>+<hex id>+<base64(0x01 || key)>`.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let bad = |why: &str| NoteError::BadVerifierKey(why.to_owned());
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("three parts separated by +"));
        };
        if !valid_name(name) {
            return Err(bad("the name is empty or holds a space or +"));
        }
        let id: [u8; 4] = (id.len() == 8)
            .then(|| u32::from_str_radix(id, 16).ok())
            .flatten()
            .map(u32::to_be_bytes)
            .ok_or_else(|| bad("the key ID is not 8 hex digits"))?;
        let raw = STANDARD
            .decode(key)
            .map_err(|_| bad("the key is not base64"))?;
        let (Some(&ED25519), Ok(public)) =
            (raw.first(), <[u8; 32]>::try_from(&raw[1.min(raw.len())..]))
        else {
            return Err(bad("the key is not an Ed25519 key (0x01 and 32 bytes)"));
        };
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("the key is not a point"))?;
        if key_id(name, &public) != id {
            return Err(bad("the key ID does not match the name and key"));
        }
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// The verifier key's text form.
    pub fn encode(&self) -> String {
        let mut raw = vec![ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex_of(&self.id),
            STANDARD.encode(raw)
        )
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A key that signs notes.
pub struct NoteSigner {
    pub name: String,
    key: SigningKey,
}

impl std::fmt::Debug for NoteSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn new(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadVerifierKey(
                "the name is empty or holds a space or +".into(),
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            key: SigningKey::from_bytes(seed),
        })
    }

    pub fn verifier(&self) -> NoteVerifier {
        let public = self.key.verifying_key();
        NoteVerifier {
            id: key_id(&self.name, public.as_bytes()),
            name: self.name.clone(),
            key: public,
        }
    }

    /// The signed note of `text` (which must end with a newline).
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::Malformed(
                "the text does not end with a newline".into(),
            ));
        }
        let sig = self.key.sign(text.as_bytes());
        let mut raw = key_id(&self.name, self.key.verifying_key().as_bytes()).to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{text}\n— {} {}\n",
            self.name,
            STANDARD.encode(raw)
        ))
    }
}

/// The text of a note signed by at least one of `known` (signatures of other keys are
/// ignored; a known key's signature that does not verify refuses the note).
pub fn open<'a>(note: &'a str, known: &[NoteVerifier]) -> Result<&'a str, NoteError> {
    let malformed = |why: &str| NoteError::Malformed(why.to_owned());
    if note.chars().any(|c| c < ' ' && c != '\n') {
        return Err(malformed("a control character other than newline"));
    }
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    if !sigs.ends_with('\n') {
        return Err(malformed(
            "the last signature line does not end with a newline",
        ));
    }
    let mut verified = false;
    for (i, line) in sigs.lines().enumerate() {
        if i >= MAX_SIGNATURES {
            return Err(malformed("more than 16 signatures"));
        }
        let rest = line.strip_prefix("\u{2014} ").ok_or_else(|| {
            malformed("a signature line does not start with an em dash and a space")
        })?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("a signature line has no signature"))?;
        let raw = STANDARD
            .decode(b64)
            .map_err(|_| malformed("a signature is not base64"))?;
        if raw.len() < 5 {
            return Err(malformed("a signature is shorter than its key ID"));
        }
        let (id, sig) = raw.split_at(4);
        let Some(k) = known.iter().find(|k| k.name == name && k.id == id) else {
            continue;
        };
        let sig = ed25519_dalek::Signature::from_slice(sig)
            .map_err(|_| NoteError::BadSignature(name.to_owned()))?;
        k.key
            .verify(text.as_bytes(), &sig)
            .map_err(|_| NoteError::BadSignature(name.to_owned()))?;
        verified = true;
    }
    if verified {
        Ok(text)
    } else {
        Err(NoteError::Unverified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of c2sp.org/signed-note: its verifier key and the note it verifies.
    const VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    #[test]
    fn the_specs_example_note_verifies_with_its_key() {
        let v = NoteVerifier::parse(VKEY).expect("vkey");
        assert_eq!(v.name, "example.com/foo");
        assert_eq!(
            v.id,
            [0x53, 0x0d, 0x90, 0x3a],
            "the key ID from the name and key"
        );
        assert_eq!(v.encode(), VKEY);
        assert_eq!(open(NOTE, &[v]), Ok("This is an example message.\n"));
    }

    #[test]
    fn any_changed_byte_or_an_unknown_key_refuses_the_note() {
        let v = NoteVerifier::parse(VKEY).expect("vkey");
        for i in 0..NOTE.len() {
            let mut b = NOTE.as_bytes().to_vec();
            b[i] ^= 0x01;
            let Ok(changed) = String::from_utf8(b) else {
                continue;
            };
            assert!(
                open(&changed, std::slice::from_ref(&v)).is_err(),
                "byte {i} changed still verifies"
            );
        }
        let with_tab = NOTE.replacen("example message", "example\tmessage", 1);
        assert!(matches!(
            open(&with_tab, std::slice::from_ref(&v)),
            Err(NoteError::Malformed(_))
        ));
        let other = NoteSigner::new("example.com/foo", &[7; 32]).expect("signer");
        assert_eq!(open(NOTE, &[other.verifier()]), Err(NoteError::Unverified));
        for bad in [
            "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903a+AmkyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
            "example.com/foo+530d903a",
            "exa mple+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        ] {
            assert!(NoteVerifier::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_note_signed_here_opens_with_its_verifier_and_ignores_other_signatures() {
        let s = NoteSigner::new("flotilla.example/ledger", &[42; 32]).expect("signer");
        let note = s.sign("origin\n3\nroot\n").expect("signed");
        let v = NoteVerifier::parse(&s.verifier().encode()).expect("vkey round trip");
        assert_eq!(
            open(&note, std::slice::from_ref(&v)),
            Ok("origin\n3\nroot\n")
        );
        // A cosignature of an unknown witness is ignored.
        let witness = NoteSigner::new("witness.example", &[9; 32]).expect("witness");
        let cosigned = format!(
            "{note}{}",
            witness
                .sign("origin\n3\nroot\n")
                .expect("signed")
                .rsplit_once("\n\n")
                .map(|(_, sig)| sig.to_owned())
                .unwrap_or_default()
        );
        assert_eq!(open(&cosigned, &[v]), Ok("origin\n3\nroot\n"));
        assert!(s.sign("no newline").is_err());
    }
}
