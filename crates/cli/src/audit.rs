//! `flotilla audit verify BUNDLE --key VKEY`: checks an exported audit bundle offline, with only
//! the ledger's verifier key (C2SP form `<name>+<id>+<key>`, given as the key or a file
//! holding it): the checkpoint's signature, then every entry's inclusion proof.

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_transparency::bundle;
use flotilla_transparency::note::NoteVerifier;
use serde::Serialize;

use crate::format::print_json;
use crate::output::Output;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Verify a bundle offline: the checkpoint's signature and every entry's proof.
    Verify {
        /// The bundle's JSON file.
        bundle: std::path::PathBuf,
        /// The ledger's verifier key, or a file holding it.
        #[arg(long)]
        key: String,
    },
}

#[derive(Serialize)]
struct VerifiedView {
    origin: String,
    size: u64,
    root: String,
    entries: usize,
}

pub fn run(output: Output, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify { bundle: path, key } = command;
    let key_text = if std::path::Path::new(&key).is_file() {
        std::fs::read_to_string(&key)
            .map_err(|e| anyhow::anyhow!("cannot read the key file {key}: {e}"))?
    } else {
        key
    };
    let key = NoteVerifier::parse(&key_text).map_err(|e| {
        anyhow::anyhow!(
            "{e}; give the ledger's verifier key (as compliance publishes it) or a file holding it"
        )
    })?;
    let json = std::fs::read(&path)
        .map_err(|e| anyhow::anyhow!("cannot read the bundle {}: {e}", path.display()))?;
    match bundle::verify(&json, &key) {
        Ok(v) => {
            let root: String = v
                .checkpoint
                .root
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            match output {
                Output::Json => print_json(&[VerifiedView {
                    origin: v.checkpoint.origin.clone(),
                    size: v.checkpoint.size,
                    root,
                    entries: v.entries,
                }])?,
                Output::Table => println!(
                    "verified: checkpoint of {} at size {} (root {root}) signed by {}; {} entries proven included",
                    v.checkpoint.origin, v.checkpoint.size, key.name, v.entries
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("not verified: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
