//! The platform's keyring of subject keys, and the handle services seal and reveal with.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{KeyInit, OsRng};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::seal::{KeyId, SubjectKey, Token, placeholder, tokens_in};

/// Errors of a keyring.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("keyring unavailable: {0}")]
    Unavailable(String),
    #[error("keyring corrupt: {0}")]
    Corrupt(String),
}

/// How a keyring finds a subject's key without holding the subject in clear:
/// SHA-256 of `"flotilla.subject\0" || subject`. Erasing a key deletes its digest too.
pub fn subject_digest(subject: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"flotilla.subject\0");
    h.update(subject.as_bytes());
    h.finalize().into()
}

/// Where subject keys live: one per deployment, shared by every service (the one store the
/// services share, as they would share a KMS). Erasing a key destroys its secret and the
/// subject's digest; the id stays, marked erased, so an erasure is permanent and can be told
/// from a key that never existed.
#[async_trait::async_trait]
pub trait Keyring: Send + Sync + 'static {
    /// The subject's key, created on first use (concurrent first uses get one key).
    async fn key_for(&self, subject: &str) -> Result<SubjectKey, KeyringError>;

    /// The subject's key id, if it has a live key (nothing is created).
    async fn find(&self, subject: &str) -> Result<Option<KeyId>, KeyringError>;

    /// A key by id: `None` once erased (or when it never existed).
    async fn key(&self, id: KeyId) -> Result<Option<SubjectKey>, KeyringError>;

    /// Destroys a key. `true` when a live key was destroyed, `false` when it was already gone.
    async fn erase(&self, id: KeyId) -> Result<bool, KeyringError>;
}

/// A fresh key with a random id and secret (for keyrings to store).
pub fn fresh_key() -> SubjectKey {
    let secret = Aes256Gcm::generate_key(&mut OsRng);
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&secret);
    SubjectKey::new(KeyId(Uuid::new_v4()), bytes)
}

/// A keyring in memory: for `flotilla up`'s embedded mode and unit tests.
#[derive(Debug, Default)]
pub struct MemoryKeyring {
    inner: Mutex<MemoryKeys>,
}

#[derive(Debug, Default)]
struct MemoryKeys {
    by_digest: HashMap<[u8; 32], KeyId>,
    /// `None`: erased.
    keys: HashMap<KeyId, Option<SubjectKey>>,
}

impl MemoryKeyring {
    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryKeys> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Keyring for MemoryKeyring {
    async fn key_for(&self, subject: &str) -> Result<SubjectKey, KeyringError> {
        let digest = subject_digest(subject);
        let mut k = self.lock();
        if let Some(id) = k.by_digest.get(&digest)
            && let Some(Some(key)) = k.keys.get(id)
        {
            return Ok(key.clone());
        }
        let key = fresh_key();
        k.by_digest.insert(digest, key.id);
        k.keys.insert(key.id, Some(key.clone()));
        Ok(key)
    }

    async fn find(&self, subject: &str) -> Result<Option<KeyId>, KeyringError> {
        Ok(self.lock().by_digest.get(&subject_digest(subject)).copied())
    }

    async fn key(&self, id: KeyId) -> Result<Option<SubjectKey>, KeyringError> {
        Ok(self.lock().keys.get(&id).cloned().flatten())
    }

    async fn erase(&self, id: KeyId) -> Result<bool, KeyringError> {
        let mut k = self.lock();
        k.by_digest.retain(|_, v| *v != id);
        let was = matches!(k.keys.get(&id), Some(Some(_)));
        if k.keys.contains_key(&id) {
            k.keys.insert(id, None);
        }
        Ok(was)
    }
}

/// How long a process trusts a live key it read before reading it again: an erasure made by
/// another process is seen everywhere within this time (default 10 s).
pub const DEFAULT_KEY_TTL: Duration = Duration::from_secs(10);

/// A process's handle on the keyring: seals personal values on the way in, reveals them on the
/// way out, with keys cached for a short time (an erased key is never cached as live past its
/// TTL; an erasure made through this handle takes effect at once).
pub struct PersonalData {
    keyring: Arc<dyn Keyring>,
    ttl: Duration,
    keys: Mutex<HashMap<KeyId, (Option<SubjectKey>, Instant)>>,
    subjects: Mutex<HashMap<[u8; 32], (KeyId, Instant)>>,
    /// A subject's own token (what every call's caller is sealed to), by the subject's digest.
    tokens: Mutex<HashMap<[u8; 32], (String, KeyId, Instant)>>,
    /// Tokens opened lately: an answer names the same people again and again.
    opened: Mutex<HashMap<String, (String, KeyId, Instant)>>,
}

/// Most opened tokens kept (the cache starts over past it).
const OPENED_MAX: usize = 100_000;

impl std::fmt::Debug for PersonalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PersonalData")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PersonalData {
    pub fn new(keyring: Arc<dyn Keyring>, ttl: Duration) -> Self {
        Self {
            keyring,
            ttl,
            keys: Mutex::new(HashMap::new()),
            subjects: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            opened: Mutex::new(HashMap::new()),
        }
    }

    /// An in-memory keyring (unit tests, embedded mode).
    pub fn in_memory() -> Arc<Self> {
        Arc::new(Self::new(
            Arc::new(MemoryKeyring::default()),
            DEFAULT_KEY_TTL,
        ))
    }

    pub fn keyring(&self) -> &Arc<dyn Keyring> {
        &self.keyring
    }

    async fn subject_key(&self, subject: &str) -> Result<SubjectKey, KeyringError> {
        let digest = subject_digest(subject);
        let cached = lock(&self.subjects).get(&digest).copied();
        if let Some((id, at)) = cached
            && at.elapsed() < self.ttl
            && let Some(key) = self.cached_key(id)
        {
            return Ok(key);
        }
        let key = self.keyring.key_for(subject).await?;
        let now = Instant::now();
        lock(&self.subjects).insert(digest, (key.id, now));
        lock(&self.keys).insert(key.id, (Some(key.clone()), now));
        Ok(key)
    }

    fn cached_key(&self, id: KeyId) -> Option<SubjectKey> {
        match lock(&self.keys).get(&id) {
            Some((Some(k), at)) if at.elapsed() < self.ttl => Some(k.clone()),
            _ => None,
        }
    }

    /// Seals a subject's own identifier (an actor, an e-mail). Empty stays empty.
    pub async fn seal(&self, subject: &str) -> Result<String, KeyringError> {
        if subject.is_empty() {
            return Ok(String::new());
        }
        let digest = subject_digest(subject);
        if let Some((token, _, at)) = lock(&self.tokens).get(&digest)
            && at.elapsed() < self.ttl
        {
            return Ok(token.clone());
        }
        let key = self.subject_key(subject).await?;
        let token = key.seal(subject);
        lock(&self.tokens).insert(digest, (token.clone(), key.id, Instant::now()));
        Ok(token)
    }

    /// Seals a value about a subject (a name, under the person's e-mail). Empty stays empty.
    pub async fn seal_about(&self, subject: &str, value: &str) -> Result<String, KeyringError> {
        if value.is_empty() || subject.is_empty() {
            return Ok(value.to_owned());
        }
        Ok(self.subject_key(subject).await?.seal(value))
    }

    /// A key by id, cached for the TTL (an absent one too: a keyring that did not know it yet
    /// may later).
    async fn key(&self, id: KeyId) -> Result<Option<SubjectKey>, KeyringError> {
        if let Some((k, at)) = lock(&self.keys).get(&id)
            && at.elapsed() < self.ttl
        {
            return Ok(k.clone());
        }
        let k = self.keyring.key(id).await?;
        lock(&self.keys).insert(id, (k.clone(), Instant::now()));
        Ok(k)
    }

    /// `text` with every token opened, or replaced by its subject's placeholder once erased.
    /// A token whose key cannot be read now stays as it is (it reveals nothing).
    pub async fn reveal(&self, text: &str) -> String {
        let tokens = tokens_in(text);
        if tokens.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for (range, token) in tokens {
            out.push_str(&text[last..range.start]);
            out.push_str(&self.open(&text[range.clone()], &token).await);
            last = range.end;
        }
        out.push_str(&text[last..]);
        out
    }

    async fn open(&self, raw: &str, token: &Token) -> String {
        if let Some((plain, _, at)) = lock(&self.opened).get(raw)
            && at.elapsed() < self.ttl
        {
            return plain.clone();
        }
        let plain = self.open_uncached(raw, token).await;
        if plain != raw {
            let mut opened = lock(&self.opened);
            if opened.len() >= OPENED_MAX {
                opened.clear();
            }
            opened.insert(raw.to_owned(), (plain.clone(), token.key, Instant::now()));
        }
        plain
    }

    async fn open_uncached(&self, raw: &str, token: &Token) -> String {
        match self.key(token.key).await {
            // A token naming a live key that does not open with it was altered: it shows as
            // nobody.
            Ok(Some(key)) => key.open(token).unwrap_or_else(|_| placeholder(token.key)),
            Ok(None) => placeholder(token.key),
            Err(_) => raw.to_owned(),
        }
    }

    /// The subject's key id, its key created if it has none yet (a legal hold names subjects
    /// whose data may come later).
    pub async fn key_id(&self, subject: &str) -> Result<KeyId, KeyringError> {
        Ok(self.subject_key(subject).await?.id)
    }

    /// The subject's live key id, if any.
    pub async fn find(&self, subject: &str) -> Result<Option<KeyId>, KeyringError> {
        self.keyring.find(subject).await
    }

    /// Erases a subject's key (see [`Keyring::erase`]); this process stops revealing it at once.
    pub async fn erase(&self, id: KeyId) -> Result<bool, KeyringError> {
        let was = self.keyring.erase(id).await?;
        lock(&self.keys).insert(id, (None, Instant::now()));
        lock(&self.subjects).retain(|_, (k, _)| *k != id);
        lock(&self.tokens).retain(|_, (_, k, _)| *k != id);
        lock(&self.opened).retain(|_, (_, k, _)| *k != id);
        Ok(was)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reveal_opens_live_subjects_and_hides_erased_ones() {
        let p = PersonalData::in_memory();
        let a = p.seal("alice@bank.example").await.expect("sealed");
        let b = p.seal("bob@bank.example").await.expect("sealed");
        let name = p
            .seal_about("alice@bank.example", "Alice Example")
            .await
            .expect("sealed");
        assert_eq!(a, p.seal("alice@bank.example").await.expect("again"));
        let text = format!("{a} approved, {b} deployed, reported by {name}");
        assert_eq!(
            p.reveal(&text).await,
            "alice@bank.example approved, bob@bank.example deployed, reported by Alice Example"
        );
        let id = p
            .find("alice@bank.example")
            .await
            .expect("find")
            .expect("live");
        assert!(p.erase(id).await.expect("erased"));
        assert!(!p.erase(id).await.expect("twice"), "already erased");
        let shown = p.reveal(&text).await;
        let ph = placeholder(id);
        assert_eq!(
            shown,
            format!("{ph} approved, bob@bank.example deployed, reported by {ph}")
        );
        // The subject comes back as someone new: a new key, a new token.
        assert_eq!(p.find("alice@bank.example").await.expect("find"), None);
        let again = p.seal("alice@bank.example").await.expect("sealed");
        assert_ne!(again, a);
        assert_eq!(p.reveal(&again).await, "alice@bank.example");
        assert_eq!(p.reveal(&a).await, ph, "the old token stays erased");
    }

    #[tokio::test]
    async fn empty_values_and_plain_text_pass_through() {
        let p = PersonalData::in_memory();
        assert_eq!(p.seal("").await.expect("empty"), "");
        assert_eq!(p.reveal("nothing personal").await, "nothing personal");
    }

    #[tokio::test]
    async fn another_process_sees_an_erasure_within_the_ttl() {
        let ring: Arc<dyn Keyring> = Arc::new(MemoryKeyring::default());
        let here = PersonalData::new(ring.clone(), Duration::from_millis(50));
        let there = PersonalData::new(ring, Duration::from_millis(50));
        let t = here.seal("carol").await.expect("sealed");
        assert_eq!(there.reveal(&t).await, "carol");
        let id = here.find("carol").await.expect("find").expect("live");
        here.erase(id).await.expect("erase");
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(there.reveal(&t).await, placeholder(id));
    }
}
