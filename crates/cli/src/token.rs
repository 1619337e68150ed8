//! `flotilla token issue`: development tokens signed with the HS256 secret (the configured
//! `auth_hs256_secret`, else the one `flotilla up` keeps in its data folder).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use flotilla_auth::TokenIssuer;
use flotilla_auth::token::DEV_ISSUER;
use flotilla_runtime::Config;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Print a signed development token (HS256) for a subject with roles in a business unit.
    Issue {
        /// Who the token names.
        #[arg(long, default_value = "developer")]
        subject: String,
        /// A role (repeat for several): admin, release-manager, developer, service-owner,
        /// security, business, cab, compliance-officer, auditor, scheduler.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Business unit of the subject (`central` for platform-wide people).
        #[arg(long)]
        bu: String,
        /// Lifetime, e.g. 8h, 30m, 3600s.
        #[arg(long, default_value = "8h")]
        ttl: String,
        /// Data folder of the `flotilla up` node whose secret signs the token.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn parse_ttl(s: &str) -> anyhow::Result<Duration> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("--ttl {s:?} is not like 8h, 30m or 3600s"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("--ttl {s:?} is not like 8h, 30m or 3600s"),
    };
    if secs == 0 || secs > 30 * 86_400 {
        anyhow::bail!("--ttl must be between 1s and 30d");
    }
    Ok(Duration::from_secs(secs))
}

pub fn run(config: &Config, command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Issue {
            subject,
            roles,
            bu,
            ttl,
            data_dir,
        } => {
            let secret = if !config.auth_hs256_secret.is_empty() {
                config.auth_hs256_secret.as_bytes().to_vec()
            } else {
                let dir = data_dir.unwrap_or_else(|| config.data_dir.clone());
                flotilla_runtime::access::dev_secret(&dir, true)?
            };
            let issuer = TokenIssuer::hs256(&secret, &config.auth_audience, DEV_ISSUER)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for r in &roles {
                if !flotilla_auth::KNOWN_ROLES.contains(&r.as_str()) {
                    eprintln!(
                        "note: role {r:?} is not one the default policies know ({})",
                        flotilla_auth::KNOWN_ROLES.join(", ")
                    );
                }
            }
            let token = issuer
                .issue(
                    &subject,
                    &roles.into_iter().collect(),
                    &bu,
                    parse_ttl(&ttl)?,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{token}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
