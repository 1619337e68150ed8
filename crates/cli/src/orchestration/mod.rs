//! `flotilla artifact|release|env|deploy …`: the orchestration service's client, one file per
//! noun. Tables for people, `--output json` for machines; both come from the views in `view`.

pub mod artifact;
pub mod deploy;
pub mod env;
pub mod release;
pub mod view;

use flotilla_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;

use crate::client::{Authed, Target};

/// An orchestration client whose calls carry the caller's token.
pub type Client = OrchestrationServiceClient<Authed>;

/// Connects to orchestration.
pub async fn connect(target: &Target) -> anyhow::Result<Client> {
    let (channel, bearer) = target.connect("orchestration").await?;
    Ok(OrchestrationServiceClient::with_interceptor(
        channel, bearer,
    ))
}

/// `KEY=VALUE` pairs as a map; the error names the flag.
pub fn pairs(
    flag: &str,
    items: &[String],
) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    items
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| {
                    anyhow::anyhow!("{flag} {kv:?} is not KEY=VALUE (e.g. {flag} team=payments)")
                })
        })
        .collect()
}
