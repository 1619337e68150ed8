//! Connections to a node: a channel that sends the caller's bearer token on every call.

use flotilla_auth::Bearer;
use std::path::PathBuf;
use tonic::service::interceptor::InterceptedService;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A channel whose calls carry `authorization: Bearer <token>`.
pub type Authed = InterceptedService<Channel, Bearer>;

/// TLS for `https://` addresses: the CA the node's certificate is checked by, and this
/// client's certificate when the node asks for one (mutual TLS). Unset, they come from the
/// configuration (`tls_ca`, else `tls_client_ca`; `tls_cert`, `tls_key`; `FLOTILLA_TLS_*`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// CA certificate (PEM) the node's certificate must be signed by (https addresses).
    #[arg(long, global = true)]
    pub tls_ca: Option<PathBuf>,
    /// This client's certificate (PEM), for nodes that require client certificates.
    #[arg(long, global = true)]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, global = true)]
    pub tls_key: Option<PathBuf>,
    /// Whether any was given on the command line (not taken from the configuration).
    #[arg(skip)]
    pub explicit: bool,
}

impl TlsArgs {
    /// Whether any flag was given.
    pub fn given(&self) -> bool {
        self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some()
    }

    /// The flags, with what they leave unset taken from the configuration.
    pub fn or_config(self, config: &flotilla_runtime::Config) -> Self {
        let set = |p: &std::path::Path| (!p.as_os_str().is_empty()).then(|| p.to_path_buf());
        let explicit = self.given();
        // A certificate and its key come from one place: both flags, or the configuration.
        let (tls_cert, tls_key) = if self.tls_cert.is_some() || self.tls_key.is_some() {
            (self.tls_cert, self.tls_key)
        } else {
            (set(&config.tls_cert), set(&config.tls_key))
        };
        Self {
            explicit,
            tls_ca: self
                .tls_ca
                .or_else(|| flotilla_runtime::tls::trusted_ca(config)),
            tls_cert,
            tls_key,
        }
    }

    fn config(&self) -> anyhow::Result<ClientTlsConfig> {
        let read = |p: &PathBuf, what: &str| {
            std::fs::read(p).map_err(|e| {
                anyhow::anyhow!(
                    "cannot read the {what} {}: {e}; check --tls-{what}",
                    p.display()
                )
            })
        };
        let Some(ca) = &self.tls_ca else {
            anyhow::bail!(
                "an https address needs the CA that signed the node's certificate: pass --tls-ca (or set tls_ca, FLOTILLA_TLS_CA)"
            );
        };
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca, "ca")?));
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                tls = tls.identity(Identity::from_pem(read(cert, "cert")?, read(key, "key")?));
            }
            (None, None) => {}
            _ => anyhow::bail!("--tls-cert and --tls-key go together; pass both or neither"),
        }
        Ok(tls)
    }
}

/// Where to connect and as whom.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: String,
    pub token: Option<String>,
    pub tls: TlsArgs,
}

impl Target {
    /// Connects; `what` names the service for the error message.
    pub async fn connect(&self, what: &str) -> anyhow::Result<(Channel, Bearer)> {
        let mut endpoint = Channel::from_shared(self.addr.clone()).map_err(|e| {
            anyhow::anyhow!(
                "address {:?} is not a URL like http://127.0.0.1:50051 ({e})",
                self.addr
            )
        })?;
        if self.addr.starts_with("https://") {
            endpoint = endpoint
                .tls_config(self.tls.config()?)
                .map_err(|e| anyhow::anyhow!("TLS for {}: {e}", self.addr))?;
        } else if self.tls.explicit {
            // The token would go in clear to a node the caller meant to reach over TLS.
            anyhow::bail!(
                "--tls-* were given but {} is not https; use https://{}",
                self.addr,
                self.addr
                    .split_once("://")
                    .map_or(self.addr.as_str(), |(_, rest)| rest)
            );
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot reach the {what} service at {} ({e}); start a node with `flotilla up` or pass --addr",
                    self.addr
                )
            })?;
        let bearer = Bearer::try_new(self.token.as_deref().unwrap_or(""))
            .map_err(|e| anyhow::anyhow!("{e}; check FLOTILLA_TOKEN or --token"))?;
        Ok((channel, bearer))
    }
}

/// A refused call as an error that says what to do next.
pub fn failed(what: &str, s: tonic::Status) -> anyhow::Error {
    let hint = match s.code() {
        tonic::Code::Unauthenticated => {
            "\n  hint: pass --token or set FLOTILLA_TOKEN; for a local `flotilla up`: export FLOTILLA_TOKEN=$(flotilla token issue --subject you --role admin --bu central)"
        }
        tonic::Code::PermissionDenied => {
            "\n  hint: your token's roles or business unit do not allow this; ask an admin, or use a token with the right role"
        }
        tonic::Code::Unavailable => "\n  hint: is the node running and reachable at --addr?",
        _ => "",
    };
    anyhow::anyhow!("{what}: {} ({:?}){hint}", s.message(), s.code())
}
