//! Access control for a node: the token verifier chosen by configuration, the Cedar authorizer
//! shared by every service in the process, and the recorder that appends refusals to the
//! refused service's store as `flotilla.common.v1.AccessRefused` events.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use flotilla_auth::{
    AccessPolicy, AccessRefusal, AuthLayer, Authorizer, KeySource, RefusalSink, TokenVerifier,
};
use flotilla_core::ExpectedVersion;
use flotilla_core::event::{Metadata, NewEvent, Timestamp};
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use prost::Message;
use tokio::sync::mpsc;

use crate::config::Config;

mod follower;
pub use follower::AccessPolicyFollower;

/// Stream every service records refused calls in.
pub const REFUSALS_STREAM: &str = "access-refusals";
/// Event type of a recorded refusal.
pub const ACCESS_REFUSED: &str = "flotilla.common.v1.AccessRefused";
/// File under the data folder holding the embedded mode's HS256 secret.
pub const DEV_SECRET_FILE: &str = "dev-token-secret";
const QUEUE: usize = 4_096;
/// How often keys from a JWKS URL are fetched again.
pub const JWKS_REFRESH: std::time::Duration = std::time::Duration::from_secs(600);
/// At most this many unauthenticated refusals (ten times as many authenticated ones) are
/// recorded one by one per window; the rest become one summary event per store and kind, so a
/// flood of bad calls cannot fill the store or the buses.
const RATE_LIMIT: usize = 100;
const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads the development HS256 secret under `data_dir`, creating it (random, owner-only) when
/// `create` is set and it does not exist.
pub fn dev_secret(data_dir: &Path, create: bool) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join(DEV_SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => anyhow::bail!(
            "{} is shorter than 32 bytes; delete it to have a new one made",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {}
        Err(e) => anyhow::bail!(
            "cannot read the development token secret {}: {e}; run `flotilla up` once to create it, or set auth_hs256_secret",
            path.display()
        ),
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    match create_owner_only(&path, secret.as_bytes()) {
        Ok(()) => Ok(secret.into_bytes()),
        // Another process made it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => dev_secret(data_dir, false),
        Err(e) => Err(anyhow::anyhow!("cannot create {}: {e}", path.display())),
    }
}

/// Writes a new file only its owner may read; fails if it exists.
pub fn create_owner_only(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    opts.open(path)?.write_all(contents)
}

/// Where tokens are checked against, from configuration: a JWKS (file or https URL) if set,
/// else the configured HS256 secret, else (embedded mode only) the data folder's dev secret.
pub async fn verifier(
    config: &Config,
    embedded_data_dir: Option<&Path>,
) -> anyhow::Result<TokenVerifier> {
    let issuer = (!config.auth_issuer.is_empty()).then_some(config.auth_issuer.as_str());
    if !config.auth_jwks.is_empty() && config.auth_issuer.is_empty() {
        anyhow::bail!(
            "auth_jwks is set but auth_issuer is not: name the identity provider's issuer (FLOTILLA_AUTH_ISSUER), or tokens it issues for other systems with the same audience would pass"
        );
    }
    let source = if !config.auth_jwks.is_empty() {
        if config.auth_jwks.starts_with("http://") || config.auth_jwks.starts_with("https://") {
            KeySource::JwksUrl(config.auth_jwks.clone())
        } else {
            KeySource::JwksFile(config.auth_jwks.clone().into())
        }
    } else if !config.auth_hs256_secret.is_empty() {
        KeySource::Hs256 {
            secret: config.auth_hs256_secret.as_bytes().to_vec(),
        }
    } else if let Some(dir) = embedded_data_dir {
        KeySource::Hs256 {
            secret: dev_secret(dir, true)?,
        }
    } else {
        anyhow::bail!(
            "no token keys configured: set auth_jwks (a JWKS file or URL) or, for development only, auth_hs256_secret (FLOTILLA_AUTH_JWKS / FLOTILLA_AUTH_HS256_SECRET)"
        );
    };
    let verifier = TokenVerifier::new(source, &config.auth_audience, issuer)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(verifier)
}

/// The initial access policy: the configured file, else the shipped default.
pub fn initial_policy(config: &Config) -> anyhow::Result<AccessPolicy> {
    if config.auth_policy_file.as_os_str().is_empty() {
        return Ok(AccessPolicy::default_set());
    }
    let text = std::fs::read_to_string(&config.auth_policy_file).map_err(|e| {
        anyhow::anyhow!(
            "cannot read auth_policy_file {}: {e}",
            config.auth_policy_file.display()
        )
    })?;
    AccessPolicy::parse(&text).map_err(|e| {
        anyhow::anyhow!(
            "auth_policy_file {}: {e}",
            config.auth_policy_file.display()
        )
    })
}

/// Records refusals in the store of the service that was called (the first store when the path
/// names no known service), off the request path through a bounded queue: when the queue is
/// full a refusal is logged and counted, not recorded, so a flood cannot stall the services.
pub struct RefusalRecorder {
    tx: mpsc::Sender<AccessRefusal>,
    dropped: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for RefusalRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefusalRecorder").finish_non_exhaustive()
    }
}

impl RefusalSink for RefusalRecorder {
    fn refused(&self, refusal: AccessRefusal) {
        if let Err(e) = self.tx.try_send(refusal) {
            let n = self
                .dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            tracing::warn!(dropped_total = n, error = %e, "access refusal not recorded: the queue is full or closed");
        }
    }
}

/// The refusal event for a refusal.
pub fn refusal_event(r: &AccessRefusal, at: Timestamp) -> NewEvent {
    let (seconds, nanos) = at.seconds_and_nanos();
    let (subject, roles, bu) = match &r.identity {
        Some(i) => (
            i.subject.clone(),
            i.roles.iter().cloned().collect(),
            i.business_unit.clone(),
        ),
        None => (String::new(), Vec::new(), String::new()),
    };
    let payload = flotilla_proto::common::v1::AccessRefused {
        subject: subject.clone(),
        roles,
        business_unit: bu.clone(),
        operation: r.path.chars().take(256).collect(),
        code: match r.code {
            tonic::Code::Unauthenticated => "UNAUTHENTICATED".into(),
            _ => "PERMISSION_DENIED".into(),
        },
        reason: r.reason.chars().take(512).collect(),
        policies: r.policies.clone(),
        refused_at: Some(prost_types::Timestamp { seconds, nanos }),
    };
    let actor = if subject.is_empty() {
        "unauthenticated".to_owned()
    } else {
        subject
    };
    NewEvent::new(
        ACCESS_REFUSED,
        1,
        payload.encode_to_vec(),
        Metadata::by(actor, bu),
    )
}

impl RefusalRecorder {
    /// Starts the recorder over the stores of a node's services, keyed by gRPC service name.
    pub fn start(
        stores: HashMap<String, Arc<dyn EventStore>>,
        fallback: Arc<dyn EventStore>,
    ) -> Arc<Self> {
        Self::start_limited(stores, fallback, RATE_LIMIT, RATE_WINDOW)
    }

    /// As [`RefusalRecorder::start`], recording at most `limit` refusals one by one per `window`.
    pub fn start_limited(
        stores: HashMap<String, Arc<dyn EventStore>>,
        fallback: Arc<dyn EventStore>,
        limit: usize,
        window_length: std::time::Duration,
    ) -> Arc<Self> {
        let (tx, mut rx) = mpsc::channel::<AccessRefusal>(QUEUE);
        tokio::spawn(async move {
            let Ok(stream) = StreamId::parse(REFUSALS_STREAM) else {
                return;
            };
            let mut window = tokio::time::interval(window_length);
            // Unauthenticated and authenticated refusals have budgets of their own, so a flood of
            // anonymous calls cannot hide an insider's refused attempts (they get ten times more).
            let mut recorded_in_window = [0usize; 2];
            let budget = [limit, limit.saturating_mul(10)];
            // Refusals beyond the budget, by store and kind, counted and recorded as one summary.
            let mut suppressed: HashMap<(usize, usize), (Arc<dyn EventStore>, u64)> =
                HashMap::new();
            loop {
                let first = tokio::select! {
                    r = rx.recv() => match r {
                        Some(r) => r,
                        None => return,
                    },
                    _ = window.tick() => {
                        recorded_in_window = [0, 0];
                        for ((_, kind), (store, n)) in suppressed.drain() {
                            let summary = AccessRefusal {
                                identity: None,
                                path: String::new(),
                                code: if kind == 0 {
                                    tonic::Code::Unauthenticated
                                } else {
                                    tonic::Code::PermissionDenied
                                },
                                reason: format!("{n} further refusals in {} ms were not recorded one by one (rate limit)", window_length.as_millis()),
                                policies: Vec::new(),
                            };
                            if let Err(e) = store
                                .append(AppendRequest::new(stream.clone(), ExpectedVersion::Any, vec![refusal_event(&summary, Timestamp::now())]))
                                .await
                            {
                                tracing::error!(error = %e, "recording a refusal summary failed");
                            }
                        }
                        continue;
                    }
                };
                let mut batch = vec![first];
                while batch.len() < 256 {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let mut by_store: HashMap<usize, (Arc<dyn EventStore>, Vec<NewEvent>)> =
                    HashMap::new();
                for r in &batch {
                    let service = r
                        .path
                        .trim_start_matches('/')
                        .split('/')
                        .next()
                        .unwrap_or("");
                    let store = stores.get(service).unwrap_or(&fallback).clone();
                    let key = Arc::as_ptr(&store) as *const () as usize;
                    let kind = usize::from(r.code != tonic::Code::Unauthenticated);
                    if recorded_in_window[kind] >= budget[kind] {
                        suppressed
                            .entry((key, kind))
                            .or_insert_with(|| (store, 0))
                            .1 += 1;
                        continue;
                    }
                    recorded_in_window[kind] += 1;
                    by_store
                        .entry(key)
                        .or_insert_with(|| (store, Vec::new()))
                        .1
                        .push(refusal_event(r, Timestamp::now()));
                }
                for (_, (store, events)) in by_store {
                    let n = events.len();
                    if let Err(e) = store
                        .append(AppendRequest::new(
                            stream.clone(),
                            ExpectedVersion::Any,
                            events,
                        ))
                        .await
                    {
                        tracing::error!(error = %e, refusals = n, "recording access refusals failed");
                    }
                }
            }
        });
        Arc::new(Self {
            tx,
            dropped: std::sync::atomic::AtomicU64::new(0),
        })
    }
}

/// Builds the interceptor for a node.
pub fn layer(
    verifier: Arc<TokenVerifier>,
    authorizer: Arc<Authorizer>,
    sink: Arc<dyn RefusalSink>,
) -> AuthLayer {
    AuthLayer::new(verifier, authorizer, sink)
}

/// Stream in every other service's store that records the access policies it adopted.
pub const ADOPTED_STREAM: &str = "access-policy";
/// Event type of an adoption.
pub const ACCESS_POLICY_ADOPTED: &str = "flotilla.common.v1.AccessPolicyAdopted";
/// The event that replaces the access policy.
pub const ACCESS_POLICY_REPLACED: &str = "flotilla.common.v1.AccessPolicyReplaced";

/// Whether an event type is an access policy replacement: `flotilla.common.v1`'s, or one
/// recorded under an area's own package before the contract moved to common (the same fields
/// and numbers; the source and the signature decide whether it is adopted, not the name).
pub fn is_replacement(event_type: &str) -> bool {
    event_type == ACCESS_POLICY_REPLACED
        || (event_type.starts_with("flotilla.") && event_type.ends_with(".v1.AccessPolicyReplaced"))
}
const FOLLOWER: &str = "access-policy-follower";
static REPLACING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The newest access policy a store records as adopted (or, in `replaced_in`, the stream where
/// the service that replaces policies records them), with its version. A recorded signature
/// must verify with `keys` for `namespace` (records from before replacements were signed carry
/// none and are taken as recorded: the store's chain vouches for them).
pub async fn recorded_policy(
    store: &dyn EventStore,
    replaced_in: Option<&str>,
    keys: &flotilla_auth::PolicyVerifier,
    namespace: &str,
) -> anyhow::Result<Option<(u64, AccessPolicy)>> {
    recorded_policy_newer(store, replaced_in, keys, namespace, 0).await
}

/// As [`recorded_policy`], only a version newer than `than` (older ones are neither verified
/// nor parsed again).
pub async fn recorded_policy_newer(
    store: &dyn EventStore,
    replaced_in: Option<&str>,
    keys: &flotilla_auth::PolicyVerifier,
    namespace: &str,
    than: u64,
) -> anyhow::Result<Option<(u64, AccessPolicy)>> {
    use flotilla_core::store::Direction;
    let mut best: Option<(u64, AccessPolicy)> = None;
    for stream in std::iter::once(ADOPTED_STREAM).chain(replaced_in) {
        let Ok(id) = StreamId::parse(stream) else {
            continue;
        };
        let last = store
            .read_stream(&id, None, Direction::Backwards, 1)
            .await?;
        let Some(e) = last.first() else { continue };
        let (version, text, sha256, signature) = match e.event_type.as_str() {
            ACCESS_POLICY_ADOPTED => {
                let m =
                    flotilla_proto::common::v1::AccessPolicyAdopted::decode(e.payload.as_slice())?;
                (m.version, m.policy, m.sha256, m.signature)
            }
            ty if is_replacement(ty) => {
                let m =
                    flotilla_proto::common::v1::AccessPolicyReplaced::decode(e.payload.as_slice())?;
                (m.version, m.policy, m.sha256, m.signature)
            }
            _ => continue,
        };
        if version <= than {
            continue;
        }
        if !signature.is_empty()
            && let Err(err) = keys.verify(namespace, version, &sha256, &signature)
        {
            tracing::error!(error = %err, stream, version, "a recorded access policy's signature does not verify; ignoring it");
            continue;
        }
        match AccessPolicy::parse(&text) {
            Ok(p) if best.as_ref().is_none_or(|(v, _)| version > *v) => best = Some((version, p)),
            Ok(_) => {}
            Err(err) => {
                tracing::error!(error = %err, stream, "a recorded access policy does not parse; ignoring it")
            }
        }
    }
    Ok(best)
}

/// Puts access policy `version` in force in this process unless a newer one is (the version in
/// force is shared by everything that replaces the policy in the process: the followers and the
/// service that makes replacements). Answers whether it did.
pub fn put_in_force(
    authorizer: &Authorizer,
    in_force: &std::sync::atomic::AtomicU64,
    version: u64,
    policy: AccessPolicy,
) -> bool {
    // Compare and replace together, so two replacers cannot leave the older one in force.
    let _one_at_a_time = REPLACING.lock().unwrap_or_else(|p| p.into_inner());
    if in_force.load(std::sync::atomic::Ordering::Acquire) >= version {
        return false;
    }
    authorizer.replace(policy);
    in_force.store(version, std::sync::atomic::Ordering::Release);
    true
}

/// File under the data folder holding the embedded mode's access policy signing key.
pub const DEV_SIGNING_KEY_FILE: &str = "access-policy-signing.key";

/// The keys access policy replacements are signed and checked with.
#[derive(Clone, Debug, Default)]
pub struct PolicyKeys {
    /// This node's signing key (config `access_policy_signing_key`; in embedded mode one kept in
    /// the data folder).
    pub signer: Option<Arc<flotilla_auth::PolicySigner>>,
    /// The public keys replacements must verify with: config `access_policy_verify_keys` plus
    /// this node's own signing key.
    pub verifier: Arc<flotilla_auth::PolicyVerifier>,
}

impl PolicyKeys {
    pub fn load(config: &Config, embedded_data_dir: Option<&Path>) -> anyhow::Result<Self> {
        let signer = if !config.access_policy_signing_key.as_os_str().is_empty() {
            Some(flotilla_auth::PolicySigner::from_file(
                &config.access_policy_signing_key,
            )?)
        } else if let Some(dir) = embedded_data_dir {
            Some(dev_signing_key(dir)?)
        } else {
            None
        };
        let mut public: Vec<String> = config.access_policy_verify_keys.clone();
        if let Some(s) = &signer {
            public.push(s.public_key());
        }
        let verifier = flotilla_auth::PolicyVerifier::new(&public)?;
        if verifier.is_empty() {
            tracing::warn!(
                "no access_policy_verify_keys are configured: access policy replacements from the bus will not be adopted"
            );
        }
        Ok(Self {
            signer: signer.map(Arc::new),
            verifier: Arc::new(verifier),
        })
    }
}

/// Reads (or makes, owner-only) the embedded mode's signing key under `data_dir`.
pub fn dev_signing_key(data_dir: &Path) -> anyhow::Result<flotilla_auth::PolicySigner> {
    kept_key(&data_dir.join(DEV_SIGNING_KEY_FILE))
}

/// Reads the Ed25519 key file at `path` (a base64 seed), or makes one there, owner-only, when
/// there is none (two processes racing to make it read the one that won).
pub fn kept_key(path: &Path) -> anyhow::Result<flotilla_auth::PolicySigner> {
    if path.exists() {
        return Ok(flotilla_auth::PolicySigner::from_file(path)?);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = flotilla_auth::PolicySigner::generate()?;
    match create_owner_only(path, key.seed_base64().as_bytes()) {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(flotilla_auth::PolicySigner::from_file(path)?)
        }
        Err(e) => Err(anyhow::anyhow!("cannot create {}: {e}", path.display())),
    }
}

/// The service whose access policy replacements a service follows (config
/// `access_policy_source`, which the binary defaults to the service that replaces policies),
/// unless the service is that one.
pub fn policy_source(config: &Config, service: &str) -> Option<String> {
    let source = config.access_policy_source.as_str();
    (!source.is_empty() && source != "none" && source != service).then(|| source.to_owned())
}
