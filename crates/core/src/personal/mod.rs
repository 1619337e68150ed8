//! Personal data, crypto-shredded.
//!
//! A personal value (an actor's subject, an e-mail, a ticket reporter's name) is never stored,
//! published or held in a service's state in clear: it enters as a sealed [token](Token),
//! `pii:v1:<key id>:<length>:<base64url(nonce || ciphertext || tag)>`, encrypted with AES-256-GCM
//! under its subject's own key from the platform's [`Keyring`]. Sealing is deterministic (the
//! nonce is derived from the plaintext, as in SIV), so one subject's value always gives the same
//! token: decisions compare tokens exactly as they compared names (segregation of duties keeps
//! working, and keeps working after an erasure). Values are opened only on the way out to a
//! person ([`PersonalData::reveal`]). Erasing a subject's key makes every token of it unreadable
//! everywhere at once (stores, snapshots, buses, the ledger, replays, reports), where it shows
//! as a [`placeholder`]; the stored bytes do not change, so every hash chain and Merkle proof
//! still verifies.
//!
//! Construction, with the subject's 32-byte secret `k`:
//! `enc = HMAC-SHA-256(k, "flotilla.pii.v1.enc")`, `mac = HMAC-SHA-256(k, "flotilla.pii.v1.nonce")`,
//! `nonce = HMAC-SHA-256(mac, plaintext)[..12]`,
//! `sealed = AES-256-GCM(enc, nonce, plaintext, aad = "pii:v1:<key id>")`.

pub mod conformance;
mod keyring;
mod seal;

pub use keyring::{
    DEFAULT_KEY_TTL, Keyring, KeyringError, MemoryKeyring, PersonalData, fresh_key, subject_digest,
};
pub use seal::{KeyId, OpenError, SubjectKey, Token, key_ids_in, placeholder, tokens_in};

/// What every sealed value starts with.
pub const PREFIX: &str = "pii:v1:";
