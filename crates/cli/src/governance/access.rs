//! `flotilla governance access …`: the Cedar access policy of every service.

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::governance::v1 as pb;
use serde::Serialize;

use super::Client;
use crate::client::failed;
use crate::format::print_json_line;
use crate::output::Output;

#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// Print the Cedar policy in force.
    Show,
    /// Replace it with a Cedar file (admins only; recorded).
    Replace {
        file: std::path::PathBuf,
        #[arg(long)]
        expected_version: u64,
    },
}

/// The access policy in force as `--output json` prints it (on one line).
#[derive(Serialize)]
struct AccessPolicyView {
    version: u64,
    sha256: String,
    /// The Cedar text.
    policy: String,
}

impl From<&pb::AccessPolicy> for AccessPolicyView {
    fn from(p: &pb::AccessPolicy) -> Self {
        Self {
            version: p.version,
            sha256: p.sha256.clone(),
            policy: p.policy.clone(),
        }
    }
}

pub async fn run(
    c: &mut Client,
    output: Output,
    command: AccessCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        AccessCommand::Show => {
            let p = c
                .get_access_policy(pb::GetAccessPolicyRequest {})
                .await
                .map_err(|s| failed("reading the access policy", s))?
                .into_inner();
            let view = AccessPolicyView::from(&p);
            match output {
                Output::Json => print_json_line(&view)?,
                Output::Table => {
                    println!(
                        "// access policy version {} sha256 {}",
                        view.version, view.sha256
                    );
                    print!("{}", view.policy);
                }
            }
        }
        AccessCommand::Replace {
            file,
            expected_version,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
            let p = c
                .replace_access_policy(pb::ReplaceAccessPolicyRequest {
                    policy: text,
                    expected_version,
                })
                .await
                .map_err(|s| failed("replacing the access policy", s))?
                .into_inner();
            println!(
                "access policy version {} ({}) is in force",
                p.version, p.sha256
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
