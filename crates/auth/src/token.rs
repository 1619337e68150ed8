//! JWT bearer tokens: HS256 with a shared secret for development, RS256 with keys from a JWKS
//! file or URL for production. A token carries the subject, roles and business unit.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::{AuthError, Identity, Result};

/// Audience Flotilla's tokens are issued for unless configured otherwise.
pub const DEFAULT_AUDIENCE: &str = "flotilla";
/// Issuer of development tokens.
pub const DEV_ISSUER: &str = "flotilla-dev";
/// Longest token accepted, in bytes (a header limit, not a JWT rule).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
const CACHE_LIMIT: usize = 10_000;
/// Shortest pause between two JWKS fetches caused by unknown key ids.
pub const JWKS_REFRESH_MIN: Duration = Duration::from_secs(30);

/// The claims Flotilla reads.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Business unit of the subject.
    #[serde(default)]
    pub bu: String,
    pub aud: Audience,
    pub iss: String,
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
}

/// The `aud` claim: one audience or several (identity providers send either).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl From<&str> for Audience {
    fn from(s: &str) -> Self {
        Audience::One(s.to_owned())
    }
}

impl From<String> for Audience {
    fn from(s: String) -> Self {
        Audience::One(s)
    }
}

/// Where verification keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// Development: one shared secret (HS256).
    Hs256 { secret: Vec<u8> },
    /// Production: RS256 public keys from a JWKS document in a file.
    JwksFile(std::path::PathBuf),
    /// Production: RS256 public keys from a JWKS URL (fetched at start, again for an unknown key id).
    JwksUrl(String),
}

enum Keys {
    Hs256(DecodingKey),
    Rs256 {
        by_kid: HashMap<String, DecodingKey>,
        /// Keys without a `kid`: tried in order when a token names no key.
        anonymous: Vec<DecodingKey>,
    },
}

/// Checks bearer tokens and turns them into identities.
pub struct TokenVerifier {
    source: KeySource,
    keys: ArcSwap<Keys>,
    audience: String,
    issuer: Option<String>,
    cache: RwLock<HashMap<String, (std::sync::Arc<Identity>, u64)>>,
    last_fetch: Mutex<Option<Instant>>,
    refresh_min: Duration,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn jwks_keys(text: &str, origin: &str) -> Result<Keys> {
    let set: JwkSet = serde_json::from_str(text)
        .map_err(|e| AuthError::Keys(format!("{origin} is not a JWKS document: {e}")))?;
    let mut by_kid = HashMap::new();
    let mut anonymous = Vec::new();
    for jwk in &set.keys {
        let key = match DecodingKey::from_jwk(jwk) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!(origin, kid = ?jwk.common.key_id, error = %e, "skipping unusable JWKS key");
                continue;
            }
        };
        if !matches!(key.family(), jsonwebtoken::AlgorithmFamily::Rsa) {
            tracing::warn!(origin, kid = ?jwk.common.key_id, "skipping a non-RSA JWKS key: only RS256 is accepted");
            continue;
        }
        match &jwk.common.key_id {
            Some(kid) => {
                by_kid.insert(kid.clone(), key);
            }
            None => anonymous.push(key),
        }
    }
    if by_kid.is_empty() && anonymous.is_empty() {
        return Err(AuthError::Keys(format!("{origin} holds no RSA key")));
    }
    Ok(Keys::Rs256 { by_kid, anonymous })
}

async fn fetch_jwks(url: &str) -> Result<Keys> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| AuthError::Keys(format!("http client: {e}")))?;
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| AuthError::Keys(format!("fetching JWKS from {url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(AuthError::Keys(format!(
            "fetching JWKS from {url}: http status {}",
            resp.status()
        )));
    }
    let text = resp
        .text()
        .await
        .map_err(|e| AuthError::Keys(format!("reading JWKS from {url}: {e}")))?;
    jwks_keys(&text, url)
}

impl TokenVerifier {
    /// Loads the keys (reads the JWKS file or fetches the URL once).
    pub async fn new(source: KeySource, audience: &str, issuer: Option<&str>) -> Result<Self> {
        let keys = match &source {
            KeySource::Hs256 { secret } => {
                if secret.len() < 32 {
                    return Err(AuthError::Keys(
                        "the HS256 secret must be at least 32 bytes".into(),
                    ));
                }
                Keys::Hs256(DecodingKey::from_secret(secret))
            }
            KeySource::JwksFile(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    AuthError::Keys(format!("cannot read JWKS file {}: {e}", path.display()))
                })?;
                jwks_keys(&text, &path.display().to_string())?
            }
            KeySource::JwksUrl(url) => {
                let parsed = reqwest::Url::parse(url)
                    .map_err(|e| AuthError::Keys(format!("JWKS URL {url} is not a URL: {e}")))?;
                let loopback = match parsed.host() {
                    Some(url::Host::Domain(d)) => d == "localhost",
                    Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                    Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                    None => false,
                };
                if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
                    return Err(AuthError::Keys(format!(
                        "JWKS URL {url} must use https (plain http only on the loopback interface), or the keys could be swapped in transit"
                    )));
                }
                fetch_jwks(url).await?
            }
        };
        let fetched = matches!(source, KeySource::JwksUrl(_)).then(Instant::now);
        Ok(Self {
            source,
            keys: ArcSwap::from_pointee(keys),
            audience: audience.to_owned(),
            issuer: issuer.map(str::to_owned),
            cache: RwLock::new(HashMap::new()),
            last_fetch: Mutex::new(fetched),
            refresh_min: JWKS_REFRESH_MIN,
        })
    }

    /// Sets the shortest pause between JWKS refetches for unknown key ids (default 30 s).
    pub fn with_refresh_interval(mut self, pause: Duration) -> Self {
        self.refresh_min = pause;
        self
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.set_audience(&[&self.audience]);
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        v.set_required_spec_claims(&["exp", "sub", "aud"]);
        v.validate_nbf = true;
        v.leeway = 30;
        v
    }

    /// Refetches the JWKS URL now (keys removed by the identity provider stop verifying).
    /// Returns whether new keys were loaded; a file or secret source does nothing.
    pub async fn refresh(&self) -> bool {
        let KeySource::JwksUrl(url) = &self.source else {
            return false;
        };
        match fetch_jwks(url).await {
            Ok(keys) => {
                self.keys.store(std::sync::Arc::new(keys));
                // Identities verified with keys that may now be gone are checked again.
                self.cache
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
                *self.last_fetch.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
                tracing::info!(url, "JWKS refreshed");
                true
            }
            Err(e) => {
                tracing::warn!(url, error = %e, "JWKS refresh failed; keeping the keys in use");
                false
            }
        }
    }

    /// Whether keys come from a URL (and so should be refreshed periodically).
    pub fn refreshes(&self) -> bool {
        matches!(self.source, KeySource::JwksUrl(_))
    }

    /// Refetches a JWKS URL when a token names a key we do not have, at most every 30 s.
    async fn refresh_for_unknown_kid(&self) -> bool {
        if !self.refreshes() {
            return false;
        }
        {
            let mut last = self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
            if last.is_some_and(|t| t.elapsed() < self.refresh_min) {
                return false;
            }
            *last = Some(Instant::now());
        }
        self.refresh().await
    }

    /// Verifies a bearer token (signature, algorithm, expiry, audience, issuer) and returns who it
    /// names. Tokens already verified are answered from a cache until they expire.
    pub async fn verify(&self, token: &str) -> Result<std::sync::Arc<Identity>> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::InvalidToken(format!(
                "token is {} bytes, at most {MAX_TOKEN_LEN} accepted",
                token.len()
            )));
        }
        let now = now_secs();
        if let Some((id, exp)) = self
            .cache
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            && *exp > now
        {
            return Ok(id.clone());
        }
        let claims = match self.decode(token) {
            Err(AuthError::UnknownKey(kid)) if self.refresh_for_unknown_kid().await => {
                let _ = kid;
                self.decode(token)?
            }
            other => other?,
        };
        let identity = std::sync::Arc::new(Identity::from_claims(&claims)?);
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.retain(|_, (_, exp)| *exp > now);
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
        }
        cache.insert(token.to_owned(), (identity.clone(), claims.exp));
        Ok(identity)
    }

    fn decode(&self, token: &str) -> Result<Claims> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::InvalidToken(format!("malformed token header: {e}")))?;
        let keys = self.keys.load();
        let data = match &**keys {
            Keys::Hs256(key) => {
                if header.alg != Algorithm::HS256 {
                    return Err(AuthError::InvalidToken(format!(
                        "algorithm {:?} is not accepted: this server takes HS256 tokens",
                        header.alg
                    )));
                }
                jsonwebtoken::decode::<Claims>(token, key, &self.validation(Algorithm::HS256))
            }
            Keys::Rs256 { by_kid, anonymous } => {
                if header.alg != Algorithm::RS256 {
                    return Err(AuthError::InvalidToken(format!(
                        "algorithm {:?} is not accepted: this server takes RS256 tokens",
                        header.alg
                    )));
                }
                let validation = self.validation(Algorithm::RS256);
                match &header.kid {
                    Some(kid) => {
                        let key = by_kid
                            .get(kid)
                            .ok_or_else(|| AuthError::UnknownKey(kid.clone()))?;
                        jsonwebtoken::decode::<Claims>(token, key, &validation)
                    }
                    None => {
                        let mut last = None;
                        for key in anonymous {
                            match jsonwebtoken::decode::<Claims>(token, key, &validation) {
                                Ok(d) => {
                                    last = Some(Ok(d));
                                    break;
                                }
                                Err(e) => last = Some(Err(e)),
                            }
                        }
                        last.ok_or_else(|| {
                            AuthError::InvalidToken(
                                "token names no key id and the JWKS has no key without one".into(),
                            )
                        })?
                    }
                }
            }
        };
        data.map(|d| d.claims).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "token has expired".to_owned(),
                ErrorKind::InvalidAudience => {
                    format!("token is not for audience {:?}", self.audience)
                }
                ErrorKind::InvalidIssuer => "token issuer is not accepted".to_owned(),
                ErrorKind::InvalidSignature => "token signature does not verify".to_owned(),
                ErrorKind::ImmatureSignature => "token is not valid yet".to_owned(),
                ErrorKind::MissingRequiredClaim(c) => format!("token lacks the {c} claim"),
                other => format!("token is not valid: {other:?}"),
            };
            AuthError::InvalidToken(why)
        })
    }
}

/// Signs development tokens with the HS256 secret (`flotilla token issue`).
pub struct TokenIssuer {
    key: EncodingKey,
    audience: String,
    issuer: String,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    pub fn hs256(secret: &[u8], audience: &str, issuer: &str) -> Result<Self> {
        if secret.len() < 32 {
            return Err(AuthError::Keys(
                "the HS256 secret must be at least 32 bytes".into(),
            ));
        }
        Ok(Self {
            key: EncodingKey::from_secret(secret),
            audience: audience.to_owned(),
            issuer: issuer.to_owned(),
        })
    }

    /// A token for `subject` with `roles` in `business_unit`, valid for `ttl`.
    pub fn issue(
        &self,
        subject: &str,
        roles: &BTreeSet<String>,
        business_unit: &str,
        ttl: Duration,
    ) -> Result<String> {
        let identity = Identity::new(subject, roles.iter().cloned(), business_unit)?;
        let now = now_secs();
        let claims = Claims {
            sub: identity.subject,
            roles: identity.roles.into_iter().collect(),
            bu: identity.business_unit,
            aud: Audience::One(self.audience.clone()),
            iss: self.issuer.clone(),
            exp: now + ttl.as_secs(),
            iat: now,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.key)
            .map_err(|e| AuthError::Keys(format!("signing the token: {e}")))
    }
}
