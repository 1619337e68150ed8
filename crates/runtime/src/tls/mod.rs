//! TLS and mutual TLS at the gRPC edge (rustls), and the client side of calls to peers.
//!
//! With `tls_cert` and `tls_key` a node serves TLS only; with `tls_client_ca` too, clients must
//! show a certificate that CA signed (or may, with `tls_client_auth = "optional"`). Tokens are
//! checked on top, as without TLS. The files are read again every `tls_reload_secs`: a renewed
//! certificate, key or CA applies to every new connection without a restart, and files that do
//! not make a valid configuration are refused with an error while the last good one stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;

use crate::Config;

/// How long a client has to finish its handshake.
const HANDSHAKE: Duration = Duration::from_secs(5);
/// Handshakes under way at once; a connection past them is closed at once (it never holds
/// back accepting, so idle sockets cannot starve the listener or its health probes).
const HANDSHAKES_AT_ONCE: usize = 256;
/// How long connections live once TLS is on: a client reconnects within it, so a renewed CA
/// or a client whose certificate was withdrawn meets the current files (calls in flight, such
/// as a watched deployment, get [`CONNECTION_GRACE`] to finish; clients reconnect).
pub const CONNECTION_AGE: Duration = Duration::from_secs(60 * 60);
pub const CONNECTION_GRACE: Duration = Duration::from_secs(5 * 60);

/// Errors of the TLS configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}")]
    Config(String),
    #[error("cannot read {path}: {source}; check the path and its permissions")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no usable {what} (PEM expected): {why}")]
    Pem {
        path: PathBuf,
        what: &'static str,
        why: String,
    },
    #[error("the TLS configuration is refused: {0}")]
    Rustls(String),
}

/// Whether clients show certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    /// No client certificates asked for (no `tls_client_ca`).
    None,
    /// Asked for; a client without one is served (its token decides), one with a certificate
    /// the CA did not sign is refused.
    Optional,
    /// A client without a certificate the CA signed is refused.
    Required,
}

impl std::fmt::Display for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "not asked for",
            Self::Optional => "optional",
            Self::Required => "required",
        })
    }
}

/// The files the edge's TLS is made from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    pub client_auth: ClientAuth,
}

fn set(p: &Path) -> Option<PathBuf> {
    (!p.as_os_str().is_empty()).then(|| p.to_path_buf())
}

impl TlsFiles {
    /// The edge's TLS as `config` sets it (None: plain gRPC).
    pub fn from_config(config: &Config) -> Result<Option<Self>, TlsError> {
        let client_ca = set(&config.tls_client_ca);
        match (set(&config.tls_cert), set(&config.tls_key)) {
            (None, None) if client_ca.is_some() => Err(TlsError::Config(
                "tls_client_ca is set but tls_cert and tls_key are not; mutual TLS needs the server's certificate too".into(),
            )),
            (None, None) => Ok(None),
            (Some(_), None) | (None, Some(_)) => Err(TlsError::Config(
                "tls_cert and tls_key go together; set both, or neither for plain gRPC".into(),
            )),
            (Some(cert), Some(key)) => {
                let client_auth = match (&client_ca, config.tls_client_auth.as_str()) {
                    (None, "") => ClientAuth::None,
                    (None, asked) => {
                        return Err(TlsError::Config(format!(
                            "tls_client_auth is {} but tls_client_ca is not set; set tls_client_ca to the CA that signs client certificates",
                            flotilla_core::names::shown(asked)
                        )));
                    }
                    (Some(_), "required" | "") => ClientAuth::Required,
                    (Some(_), "optional") => ClientAuth::Optional,
                    (Some(_), other) => {
                        return Err(TlsError::Config(format!(
                            "tls_client_auth {} is not required or optional",
                            flotilla_core::names::shown(other)
                        )));
                    }
                };
                Ok(Some(Self {
                    cert,
                    key,
                    client_ca,
                    client_auth,
                }))
            }
        }
    }

    /// Reads the files: their bytes (to tell a change) and the server configuration.
    fn load(&self) -> Result<(Vec<u8>, Arc<rustls::ServerConfig>), TlsError> {
        let mut seen = Vec::new();
        let cert_pem = read(&self.cert)?;
        let key_pem = read(&self.key)?;
        seen.extend_from_slice(&cert_pem);
        seen.extend_from_slice(&key_pem);
        let chain = certificates(&self.cert, &cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Pem {
            path: self.key.clone(),
            what: "private key",
            why: e.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = match &self.client_ca {
            None => WebPkiClientVerifier::no_client_auth(),
            Some(path) => {
                let ca_pem = read(path)?;
                seen.extend_from_slice(&ca_pem);
                let roots = roots(path, &ca_pem)?;
                let builder =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
                let builder = if self.client_auth == ClientAuth::Optional {
                    builder.allow_unauthenticated()
                } else {
                    builder
                };
                builder.build().map_err(|e| {
                    TlsError::Rustls(format!("tls_client_ca {}: {e}", path.display()))
                })?
            }
        };
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Rustls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| {
                TlsError::Rustls(format!(
                    "{} with {}: {e}",
                    self.cert.display(),
                    self.key.display()
                ))
            })?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok((seen, Arc::new(config)))
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM file (at least one).
pub fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |why: String| TlsError::Pem {
        path: path.to_path_buf(),
        what: "certificate",
        why,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

fn roots(path: &Path, pem: &[u8]) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(path, pem)? {
        roots.add(cert).map_err(|e| TlsError::Pem {
            path: path.to_path_buf(),
            what: "CA certificate",
            why: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// When a certificate stops being valid (its `notAfter`), as seconds since the Unix epoch.
/// Read with the `der` crate from the certificate's TBSCertificate: version, serial,
/// signature algorithm, issuer, then the validity's two times (RFC 5280, 4.1).
pub fn not_after(certificate: &CertificateDer<'_>) -> Result<u64, String> {
    use der::Reader as _;
    use der::asn1::{AnyRef, GeneralizedTime, UtcTime};
    fn time<'a, R: der::Reader<'a>>(r: &mut R) -> der::Result<std::time::Duration> {
        if r.peek_tag()? == der::Tag::UtcTime {
            Ok(r.decode::<UtcTime>()?.to_unix_duration())
        } else {
            Ok(r.decode::<GeneralizedTime>()?.to_unix_duration())
        }
    }
    let mut reader = der::SliceReader::new(certificate.as_ref()).map_err(|e| e.to_string())?;
    reader
        .sequence(|cert| {
            let until = cert.sequence(|tbs| {
                if tbs.peek_tag()?.is_context_specific() {
                    tbs.decode::<AnyRef<'_>>()?; // [0] version
                }
                for _ in 0..3 {
                    tbs.decode::<AnyRef<'_>>()?; // serial, signature, issuer
                }
                let until = tbs.sequence(|validity| {
                    time(validity)?;
                    time(validity)
                })?;
                while !tbs.is_finished() {
                    tbs.decode::<AnyRef<'_>>()?;
                }
                Ok(until)
            })?;
            while !cert.is_finished() {
                cert.decode::<AnyRef<'_>>()?;
            }
            Ok(until)
        })
        .map(|d| d.as_secs())
        .map_err(|e| format!("not an X.509 certificate: {e}"))
}

/// The edge's TLS, read again from its files while the node runs.
pub struct ServerTls {
    files: TlsFiles,
    current: ArcSwap<rustls::ServerConfig>,
    loaded: std::sync::Mutex<Vec<u8>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.files)
            .finish()
    }
}

impl ServerTls {
    /// Reads the files; an error says which one and why.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let (seen, config) = files.load()?;
        Ok(Arc::new(Self {
            files,
            current: ArcSwap::new(config),
            loaded: std::sync::Mutex::new(seen),
        }))
    }

    pub fn client_auth(&self) -> ClientAuth {
        self.files.client_auth
    }

    /// Reads the files again: true when they changed and now apply to new connections. Files
    /// that do not make a valid configuration are an error, and the last good one stays.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let (seen, config) = self.files.load()?;
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if *loaded == seen {
            return Ok(false);
        }
        self.current.store(config);
        *loaded = seen;
        Ok(true)
    }

    /// Reads the files again every `every` until `stop` turns true.
    pub async fn watch(
        self: Arc<Self>,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut last_error: Option<String> = None;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let me = self.clone();
            let reloaded = tokio::task::spawn_blocking(move || me.reload())
                .await
                .unwrap_or_else(|e| Err(TlsError::Config(format!("reloading failed: {e}"))));
            match reloaded {
                Ok(true) => {
                    last_error = None;
                    tracing::info!(cert = %self.files.cert.display(), "tls certificates reloaded; new connections use them")
                }
                Ok(false) => last_error = None,
                Err(e) => {
                    // Once per distinct error, not at every interval.
                    let text = e.to_string();
                    if last_error.as_deref() != Some(text.as_str()) {
                        tracing::error!(error = %text, "tls files changed but cannot be used; still serving the last good ones");
                        last_error = Some(text);
                    }
                }
            }
        }
    }

    /// The connections `listener` accepts, each after its TLS handshake with the configuration
    /// current when it came. A failed handshake (a client of another CA, none when one is
    /// required, not TLS at all) is logged and never reaches the server.
    pub fn incoming(
        self: Arc<Self>,
        listener: TcpListener,
    ) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsStream<TcpStream>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(self.accept(listener, tx));
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }

    async fn accept(
        self: Arc<Self>,
        listener: TcpListener,
        tx: tokio::sync::mpsc::Sender<std::io::Result<TlsStream<TcpStream>>>,
    ) {
        let handshakes = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_AT_ONCE));
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = tx.closed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) if resource_exhausted(&e) => {
                    // Out of file descriptors or memory: pause rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed; pausing");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                // A connection reset before it was accepted, and the like.
                Err(e) => {
                    tracing::debug!(error = %e, "accepting a connection failed");
                    continue;
                }
            };
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                tracing::warn!(peer = %peer, limit = HANDSHAKES_AT_ONCE, "too many tls handshakes under way; connection closed");
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = tokio_rustls::TlsAcceptor::from(self.current.load_full());
            let tx = tx.clone();
            tokio::spawn(async move {
                let _permit = permit;
                // Refusals (a client of another CA, none when one is required, a port scan)
                // are the clients' doing: debug, so they cannot flood the log.
                match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send(Ok(stream)).await;
                    }
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer, error = %e, "tls handshake refused")
                    }
                    Err(_) => tracing::debug!(peer = %peer, "tls handshake timed out"),
                }
            });
        }
    }
}

/// Whether an accept error is the process running out of something (worth a pause).
pub(crate) fn resource_exhausted(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc_errno::EMFILE | libc_errno::ENFILE | libc_errno::ENOBUFS | libc_errno::ENOMEM)
    )
}

/// The errno values of running out of descriptors, buffers or memory (Linux).
mod libc_errno {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
}

/// Where a node listens: plain gRPC, or TLS.
#[derive(Debug)]
pub struct Listener {
    pub tcp: TcpListener,
    pub tls: Option<Arc<ServerTls>>,
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Self {
        Self { tcp, tls: None }
    }
}

mod peer;
pub use peer::{PeerChannel, client_tls, peer_endpoint, trusted_ca};

#[cfg(test)]
mod tests;
