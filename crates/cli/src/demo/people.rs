//! The demo's people: each acts with a token of their own roles and unit, signed with the
//! node's development secret (as `flotilla token issue` does).

use std::time::Duration;

use flotilla_auth::TokenIssuer;
use flotilla_auth::token::DEV_ISSUER;

pub struct People {
    issuer: TokenIssuer,
}

impl People {
    pub fn new(
        config: &flotilla_runtime::Config,
        data_dir: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let secret = if !config.auth_hs256_secret.is_empty() {
            config.auth_hs256_secret.as_bytes().to_vec()
        } else {
            let dir =
                data_dir.map_or_else(|| config.data_dir.clone(), std::path::Path::to_path_buf);
            flotilla_runtime::access::dev_secret(&dir, false).map_err(|e| {
                anyhow::anyhow!("{e}; the demo signs its people's tokens with the node's development secret: run it beside `flotilla up` (--data-dir DIR) or set auth_hs256_secret")
            })?
        };
        Ok(Self {
            issuer: TokenIssuer::hs256(&secret, &config.auth_audience, DEV_ISSUER)?,
        })
    }

    /// A token for `subject` with `roles` in `unit`, valid for an hour.
    pub fn token(&self, subject: &str, roles: &[&str], unit: &str) -> anyhow::Result<String> {
        Ok(self.issuer.issue(
            subject,
            &roles.iter().map(|r| (*r).to_owned()).collect(),
            unit,
            Duration::from_secs(3600),
        )?)
    }
}
