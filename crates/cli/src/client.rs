//! Connections to a node: a channel that sends the caller's bearer token on every call.

use flotilla_auth::Bearer;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A channel whose calls carry `authorization: Bearer <token>`.
pub type Authed = InterceptedService<Channel, Bearer>;

/// Where to connect and as whom.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: String,
    pub token: Option<String>,
}

impl Target {
    /// Connects; `what` names the service for the error message.
    pub async fn connect(&self, what: &str) -> anyhow::Result<(Channel, Bearer)> {
        let channel = Channel::from_shared(self.addr.clone())
            .map_err(|e| {
                anyhow::anyhow!(
                    "address {:?} is not a URL like http://127.0.0.1:50051 ({e})",
                    self.addr
                )
            })?
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
