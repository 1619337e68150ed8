//! Sealing and opening one value, and finding sealed tokens in text and in stored bytes.

use std::fmt;
use std::ops::Range;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use super::PREFIX;

/// The id of one subject's key, carried in clear in every token sealed with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub Uuid);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.simple())
    }
}

/// One subject's key. Its secret never leaves the keyring and the process (not in `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub struct SubjectKey {
    pub id: KeyId,
    secret: [u8; 32],
}

impl fmt::Debug for SubjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubjectKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a token does not open.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("the token was sealed with key {0}, not with this key")]
    OtherKey(KeyId),
    #[error("the token does not authenticate (altered, or not sealed by flotilla)")]
    Forged,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(data);
    m.finalize().into_bytes().into()
}

fn aad(id: KeyId) -> String {
    format!("{PREFIX}{id}")
}

impl SubjectKey {
    pub fn new(id: KeyId, secret: [u8; 32]) -> Self {
        Self { id, secret }
    }

    /// The secret, for a keyring to store.
    pub fn secret(&self) -> &[u8; 32] {
        &self.secret
    }

    fn cipher(&self) -> Aes256Gcm {
        let enc = hmac(&self.secret, b"flotilla.pii.v1.enc");
        Aes256Gcm::new(&enc.into())
    }

    /// Seals `plaintext` into a token. Deterministic: the same key and plaintext always give the
    /// same token.
    pub fn seal(&self, plaintext: &str) -> String {
        let mac = hmac(&self.secret, b"flotilla.pii.v1.nonce");
        let derived = hmac(&mac, plaintext.as_bytes());
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&derived[..12]);
        let aad = aad(self.id);
        // AES-GCM encryption fails only for plaintexts over 64 GiB.
        let sealed = self
            .cipher()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .unwrap_or_default();
        let mut bytes = Vec::with_capacity(12 + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        let body = URL_SAFE_NO_PAD.encode(bytes);
        // The body's length makes a token self-delimiting wherever it sits (in a protobuf
        // payload the next field's tag may well be a base64url character).
        format!("{aad}:{}:{body}", body.len())
    }

    /// Opens a token sealed with this key.
    pub fn open(&self, token: &Token) -> Result<String, OpenError> {
        if token.key != self.id {
            return Err(OpenError::OtherKey(token.key));
        }
        let (nonce, sealed) = token.sealed.split_at(12);
        let aad = aad(self.id);
        let plain = self
            .cipher()
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Forged)?;
        String::from_utf8(plain).map_err(|_| OpenError::Forged)
    }
}

/// A parsed token: the key it was sealed with and nonce || ciphertext || tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub key: KeyId,
    sealed: Vec<u8>,
}

fn base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Nonce and tag.
const OVERHEAD: usize = 12 + 16;

impl Token {
    /// Parses a whole string as a token.
    pub fn parse(s: &str) -> Option<Self> {
        match Self::at(s.as_bytes(), 0) {
            Some((t, end)) if end == s.len() => Some(t),
            _ => None,
        }
    }

    /// The token starting at `start` of `bytes` (which holds the prefix there), and where it ends.
    fn at(bytes: &[u8], start: usize) -> Option<(Self, usize)> {
        let rest = bytes.get(start..)?.strip_prefix(PREFIX.as_bytes())?;
        let hex = rest.get(..32)?;
        if !hex
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        {
            return None;
        }
        let key = Uuid::try_parse_ascii(hex).ok()?;
        if rest.get(32) != Some(&b':') {
            return None;
        }
        let after_id = &rest[33..];
        let digits = after_id
            .iter()
            .take(7)
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits == 0 || after_id.get(digits) != Some(&b':') {
            return None;
        }
        let len: usize = std::str::from_utf8(&after_id[..digits])
            .ok()?
            .parse()
            .ok()?;
        let body = after_id.get(digits + 1..digits + 1 + len)?;
        if !body.iter().all(|b| base64url(*b)) {
            return None;
        }
        let sealed = URL_SAFE_NO_PAD.decode(body).ok()?;
        if sealed.len() < OVERHEAD {
            return None;
        }
        let end = start + PREFIX.len() + 33 + digits + 1 + len;
        Some((
            Self {
                key: KeyId(key),
                sealed,
            },
            end,
        ))
    }
}

/// Where `needle` occurs in `hay`.
fn occurrences<'a>(hay: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    memchr::memmem::find_iter(hay, needle)
}

/// Every token inside `text` (a whole value or one embedded in a sentence), with its range.
pub fn tokens_in(text: &str) -> Vec<(Range<usize>, Token)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut next = 0;
    for i in occurrences(bytes, PREFIX.as_bytes()) {
        if i < next {
            continue;
        }
        if let Some((t, end)) = Token::at(bytes, i) {
            out.push((i..end, t));
            next = end;
        }
    }
    out
}

/// The keys of every token inside stored bytes (a protobuf payload holds its strings verbatim,
/// each followed by whatever field comes next), each once, in order of first appearance.
pub fn key_ids_in(bytes: &[u8]) -> Vec<KeyId> {
    let mut out: Vec<KeyId> = Vec::new();
    for i in occurrences(bytes, PREFIX.as_bytes()) {
        if let Some((t, _)) = Token::at(bytes, i)
            && !out.contains(&t.key)
        {
            out.push(t.key);
        }
    }
    out
}

/// What a person sees in place of a value whose subject was erased: distinct per subject, so
/// "the same erased person did both" stays visible, and nothing about who it was.
pub fn placeholder(key: KeyId) -> String {
    // 64 bits of the id: distinct among billions of erased subjects.
    format!("[erased:{}]", &key.to_string()[..16])
}

#[cfg(test)]
mod tests {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    use aes_gcm::{Aes256Gcm, Nonce};

    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    fn key(n: u8) -> SubjectKey {
        SubjectKey::new(KeyId(Uuid::from_u128(u128::from(n))), [n; 32])
    }

    /// AES-256-GCM as the construction uses it, against McGrew and Viega's GCM specification
    /// (test cases 14 and 16, the NIST-published AES-256 vectors).
    #[test]
    fn aes_256_gcm_matches_the_published_test_cases() {
        let cases = [
            (
                "0000000000000000000000000000000000000000000000000000000000000000",
                "000000000000000000000000",
                "",
                "00000000000000000000000000000000",
                "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919",
            ),
            (
                "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
                "cafebabefacedbaddecaf888",
                "feedfacedeadbeeffeedfacedeadbeefabaddad2",
                "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                 1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
                "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
                 8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
                 76fc6ece0f4e1768cddf8853bb2d551b",
            ),
        ];
        for (k, iv, a, p, ct) in cases {
            let k: [u8; 32] = unhex(k).try_into().expect("32 bytes");
            let cipher = Aes256Gcm::new(&k.into());
            let iv = unhex(iv);
            let (a, p) = (unhex(a), unhex(p));
            let sealed = cipher
                .encrypt(Nonce::from_slice(&iv), Payload { msg: &p, aad: &a })
                .expect("encrypts");
            assert_eq!(hex::encode(&sealed), ct.replace(char::is_whitespace, ""));
        }
    }

    /// HMAC-SHA-256, which derives the keys and the nonce, against RFC 4231 test case 2.
    #[test]
    fn hmac_sha_256_matches_rfc_4231() {
        assert_eq!(
            hex::encode(hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_sealed_value_opens_only_with_its_key() {
        let (alice, bob) = (key(1), key(2));
        let t = alice.seal("alice@bank.example");
        assert!(
            t.starts_with("pii:v1:00000000000000000000000000000001:"),
            "{t}"
        );
        assert!(!t.contains("alice"), "{t}");
        let parsed = Token::parse(&t).expect("a token");
        assert_eq!(alice.open(&parsed).as_deref(), Ok("alice@bank.example"));
        assert_eq!(bob.open(&parsed), Err(OpenError::OtherKey(alice.id)));
        // The same secret under another key id does not open it either (the id is bound).
        let twin = SubjectKey::new(bob.id, *alice.secret());
        let relabelled = Token {
            key: bob.id,
            sealed: parsed.sealed.clone(),
        };
        assert_eq!(twin.open(&relabelled), Err(OpenError::Forged));
    }

    #[test]
    fn sealing_is_deterministic_per_key_and_value() {
        let (alice, bob) = (key(1), key(2));
        assert_eq!(alice.seal("alice"), alice.seal("alice"));
        assert_ne!(alice.seal("alice"), alice.seal("alice "));
        assert_ne!(alice.seal("alice"), bob.seal("alice"));
        // An empty value seals too.
        let empty = alice.seal("");
        assert_eq!(
            alice.open(&Token::parse(&empty).expect("token")).as_deref(),
            Ok("")
        );
    }

    #[test]
    fn every_changed_byte_of_a_token_is_refused() {
        let alice = key(1);
        let t = Token::parse(&alice.seal("Alice Example")).expect("token");
        for i in 0..t.sealed.len() {
            let mut bad = t.clone();
            bad.sealed[i] ^= 0x01;
            assert_eq!(alice.open(&bad), Err(OpenError::Forged), "byte {i}");
        }
    }

    #[test]
    fn tokens_are_found_inside_text_and_bytes() {
        let (alice, bob) = (key(1), key(2));
        let (a, b) = (alice.seal("alice"), bob.seal("bob"));
        let text = format!("approved by {a}, then {b}; pii:v1:nonsense and {a}.");
        let found = tokens_in(&text);
        assert_eq!(found.len(), 3);
        assert_eq!(&text[found[0].0.clone()], a);
        assert_eq!(&text[found[1].0.clone()], b);
        assert_eq!(found[2].1.key, alice.id);
        // In a protobuf payload: field 2, length-delimited, holding the token, then field 10
        // (tag 0x52, 'R', a base64url character) holding another.
        let mut payload = vec![0x12, a.len() as u8];
        payload.extend_from_slice(a.as_bytes());
        payload.extend_from_slice(&[0x52, b.len() as u8]);
        payload.extend_from_slice(b.as_bytes());
        payload.extend_from_slice(b"Rxyz");
        assert_eq!(key_ids_in(&payload), vec![alice.id, bob.id]);
        // Glued to letters in text, still found whole.
        let glued = format!("{a}s{b}Z");
        let found = tokens_in(&glued);
        assert_eq!(found.len(), 2);
        assert_eq!(&glued[found[0].0.clone()], a);
        assert_eq!(&glued[found[1].0.clone()], b);
        assert!(key_ids_in(b"no personal data here").is_empty());
    }

    #[test]
    fn malformed_tokens_are_not_tokens() {
        let a = key(1).seal("alice");
        assert!(Token::parse(&a).is_some());
        assert!(
            Token::parse(&a[..a.len() - 30]).is_none(),
            "too short to hold a tag"
        );
        assert!(Token::parse(&a.to_uppercase()).is_none());
        assert!(Token::parse(&a.replacen("pii:v1:", "pii:v2:", 1)).is_none());
        assert!(Token::parse(&format!("{a}!")).is_none());
        // A length that runs past the end, or a body with a character outside base64url.
        let (head, body) = a.rsplit_once(':').expect("body");
        assert!(Token::parse(&format!("{head}x{body}")).is_none());
        let n = body.len();
        let longer = a.replacen(&format!(":{n}:"), &format!(":{}:", n + 1), 1);
        assert!(Token::parse(&longer).is_none());
        let mut bad = body.to_owned();
        bad.replace_range(0..1, "+");
        assert!(Token::parse(&format!("{}:{bad}", head)).is_none());
    }

    #[test]
    fn placeholders_differ_per_subject_and_name_no_one() {
        assert_eq!(placeholder(key(1).id), "[erased:0000000000000000]");
        let a = KeyId(Uuid::from_u128(0xaaaa_0000_0000_0000_0000_0000_0000_0000));
        assert_ne!(placeholder(a), placeholder(key(1).id));
    }
}
