//! `flotilla keys …`: the keys a deployment needs.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Make governance's access policy signing key: writes the secret seed to FILE (owner-only)
    /// and prints the public key every other service needs in access_policy_verify_keys.
    PolicySigning {
        /// Where to write the key (it must not exist yet).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(command: KeysCommand) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::PolicySigning { out } => {
            let key = flotilla_auth::PolicySigner::generate()?;
            flotilla_runtime::access::create_owner_only(&out, key.seed_base64().as_bytes())
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot create {}: {e}; choose a path that does not exist yet",
                        out.display()
                    )
                })?;
            eprintln!(
                "wrote the signing key to {}; give governance access_policy_signing_key = {:?}",
                out.display(),
                out.display().to_string()
            );
            eprintln!("and every other service this public key (access_policy_verify_keys):");
            println!("{}", key.public_key());
            Ok(ExitCode::SUCCESS)
        }
    }
}
