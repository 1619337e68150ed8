//! The client side: what this process shows and trusts when it calls its peers over https,
//! following renewed files.

use std::time::Duration;

use super::{TlsError, certificates, read, set};
use crate::Config;

/// What this process shows and trusts when it calls peers over https: the CA of `tls_ca` (or
/// `tls_client_ca`) and, when set, `tls_cert` as its client certificate. None when neither CA
/// is set.
pub fn client_tls(config: &Config) -> Result<Option<tonic::transport::ClientTlsConfig>, TlsError> {
    let Some(ca) = trusted_ca(config) else {
        return Ok(None);
    };
    let ca_pem = read(&ca)?;
    certificates(&ca, &ca_pem)?;
    let mut tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(ca_pem));
    if let (Some(cert), Some(key)) = (set(&config.tls_cert), set(&config.tls_key)) {
        tls = tls.identity(tonic::transport::Identity::from_pem(
            read(&cert)?,
            read(&key)?,
        ));
    }
    Ok(Some(tls))
}

/// A channel to a peer (connected on first use) whose TLS follows the files: at most every
/// `tls_reload_secs`, a call looks whether the CA, certificate or key changed, and if they did
/// (and still make a configuration) the channel is built anew, so a renewed client certificate
/// or a rotated CA applies without a restart. Plain `http://` peers are one channel for good.
pub struct PeerChannel {
    url: String,
    config: Config,
    shape: Box<dyn Fn(tonic::transport::Endpoint) -> tonic::transport::Endpoint + Send + Sync>,
    state: std::sync::Mutex<PeerState>,
}

struct PeerState {
    checked: std::time::Instant,
    files: Vec<u8>,
    channel: tonic::transport::Channel,
}

impl std::fmt::Debug for PeerChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerChannel")
            .field("url", &self.url)
            .finish()
    }
}

/// The CA this process trusts when it calls over https: `tls_ca`, else `tls_client_ca`.
pub fn trusted_ca(config: &Config) -> Option<std::path::PathBuf> {
    set(&config.tls_ca).or_else(|| set(&config.tls_client_ca))
}

/// The bytes of the files a peer's TLS is made from (to tell a change).
fn client_files(config: &Config) -> Vec<u8> {
    [
        trusted_ca(config),
        set(&config.tls_cert),
        set(&config.tls_key),
    ]
    .into_iter()
    .flatten()
    .flat_map(|p| std::fs::read(p).unwrap_or_default())
    .collect()
}

impl PeerChannel {
    /// A lazy channel to `url`; `shape` sets its timeouts and the like.
    pub fn new(
        config: &Config,
        url: &str,
        shape: impl Fn(tonic::transport::Endpoint) -> tonic::transport::Endpoint + Send + Sync + 'static,
    ) -> Result<Self, TlsError> {
        let channel = shape(peer_endpoint(config, url)?).connect_lazy();
        Ok(Self {
            url: url.to_owned(),
            config: config.clone(),
            shape: Box::new(shape),
            state: std::sync::Mutex::new(PeerState {
                checked: std::time::Instant::now(),
                files: client_files(config),
                channel,
            }),
        })
    }

    /// The channel to call on.
    pub fn channel(&self) -> tonic::transport::Channel {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let every = Duration::from_secs(self.config.tls_reload_secs.max(1));
        if self.url.starts_with("https://") && state.checked.elapsed() >= every {
            state.checked = std::time::Instant::now();
            let files = client_files(&self.config);
            if files != state.files {
                match peer_endpoint(&self.config, &self.url) {
                    Ok(endpoint) => {
                        state.channel = (self.shape)(endpoint).connect_lazy();
                        state.files = files;
                        tracing::info!(peer = %self.url, "tls files changed: calls to the peer use them from now on");
                    }
                    Err(e) => {
                        tracing::error!(peer = %self.url, error = %e, "tls files changed but cannot be used; calls to the peer keep the last good ones")
                    }
                }
            }
        }
        state.channel.clone()
    }
}

/// An endpoint for a peer's URL: https ones with [`client_tls`].
pub fn peer_endpoint(config: &Config, url: &str) -> Result<tonic::transport::Endpoint, TlsError> {
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|e| TlsError::Config(format!("{url} is not a URL: {e}")))?;
    if !url.starts_with("https://") {
        return Ok(endpoint);
    }
    let tls = client_tls(config)?.ok_or_else(|| {
        TlsError::Config(format!(
            "{url} is https but no CA to check it by is set; set tls_ca (or tls_client_ca)"
        ))
    })?;
    endpoint
        .tls_config(tls)
        .map_err(|e| TlsError::Config(format!("{url}: {e}")))
}
