//! `flotilla store …`: verify a store's hash chain, benchmark a store.

use std::process::ExitCode;

use clap::Subcommand;

use crate::output::{Output, progress, table};

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Walk a store's hash chain; exit 0 with the count when it holds, 1 with the first bad position.
    Verify {
        /// postgres://…, sqlite://path or memory:
        #[arg(long)]
        url: String,
        /// Service whose store to verify (PostgreSQL schema <namespace>_<service>).
        #[arg(long)]
        service: Option<String>,
        /// Deployment namespace of the service (config `namespace`).
        #[arg(long, default_value = "flotilla")]
        namespace: String,
        /// PostgreSQL schema, instead of --service.
        #[arg(long)]
        schema: Option<String>,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Publish a service's events again from a position: sets where its relay to a bus resumes
    /// (stop the service first). Subscribers get the events again and drop those they have by
    /// `ce_id`.
    Rewind {
        /// postgres://… or sqlite://path of the service's store.
        #[arg(long)]
        url: String,
        #[arg(long)]
        service: String,
        #[arg(long, default_value = "flotilla")]
        namespace: String,
        /// nats or kafka.
        #[arg(long)]
        bus: String,
        /// First global position to publish again (1: everything).
        #[arg(long)]
        from: u64,
    },
    /// Write a service's PostgreSQL store to a portable file: a manifest with the head's
    /// position and hash, then every event with every column, the idempotency keys and the
    /// relays' checkpoints (JSON lines). Stop the service's writers for its last state.
    Export {
        /// postgres://… of the store.
        #[arg(long)]
        url: String,
        #[arg(long)]
        service: String,
        #[arg(long, default_value = "flotilla")]
        namespace: String,
        /// PostgreSQL schema, instead of the service's.
        #[arg(long)]
        schema: Option<String>,
        /// The file to write.
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Rebuild a service's store from an export into an empty PostgreSQL schema: every event's
    /// link and hash is checked and the chain must end at the manifest's head, or nothing is
    /// kept.
    Import {
        /// postgres://… of the new store.
        #[arg(long)]
        url: String,
        #[arg(long)]
        service: String,
        #[arg(long, default_value = "flotilla")]
        namespace: String,
        #[arg(long)]
        schema: Option<String>,
        /// The export to read.
        #[arg(long = "in")]
        input: std::path::PathBuf,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Append synthetic events and report throughput and latency.
    Bench(crate::bench::BenchArgs),
}

fn print_manifest(
    m: &crate::store_backup::Manifest,
    done: &str,
    output: Output,
) -> anyhow::Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(m)?),
        Output::Table => table(
            &[
                "service",
                "schema",
                done,
                "head position",
                "head hash",
                "keys",
                "checkpoints",
            ],
            &[vec![
                m.service.clone(),
                m.schema.clone(),
                m.events.to_string(),
                m.head_position.to_string(),
                m.head_hash.clone(),
                m.idempotency_keys.to_string(),
                m.checkpoints.to_string(),
            ]],
        ),
    }
    Ok(())
}

pub fn schema_arg(
    url: &str,
    namespace: &str,
    service: Option<&str>,
    schema: Option<&str>,
) -> anyhow::Result<String> {
    match (schema, service) {
        (Some(s), _) => Ok(s.to_owned()),
        (None, Some(svc)) => Ok(flotilla_store::schema_for(namespace, svc)),
        (None, None) if url.starts_with("postgres") => anyhow::bail!(
            "a PostgreSQL URL holds one store per service: pass --service NAME or --schema SCHEMA"
        ),
        (None, None) => Ok("flotilla".into()),
    }
}

pub async fn run(command: StoreCommand) -> anyhow::Result<ExitCode> {
    match command {
        StoreCommand::Rewind {
            url,
            service,
            namespace,
            bus,
            from,
        } => {
            if !matches!(bus.as_str(), "nats" | "kafka" | "inprocess") {
                anyhow::bail!("--bus {bus:?}: use nats or kafka");
            }
            if from == 0 {
                anyhow::bail!("--from: positions start at 1");
            }
            let schema = schema_arg(&url, &namespace, Some(&service), None)?;
            let store = flotilla_store::open_existing(&url, &schema)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open store at {url}: {e}"))?;
            let name = format!("relay:{service}:{bus}");
            let before = store.load_checkpoint(&name).await?.unwrap_or(0);
            store.save_checkpoint(&name, from - 1).await?;
            println!(
                "the {service} relay to {bus} resumes at position {from} (it had published up to {before}); start the service to publish again"
            );
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Verify {
            url,
            service,
            namespace,
            schema,
            output,
        } => {
            let schema = schema_arg(&url, &namespace, service.as_deref(), schema.as_deref())?;
            let store = flotilla_store::open_existing(&url, &schema)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open store at {url}: {e}"))?;
            let head = store.head().await?;
            let bar = progress(head.position, "verifying");
            let report = store.verify(&|n| bar.set_position(n)).await?;
            bar.finish_and_clear();
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "holds": report.holds(),
                        "checked": report.checked,
                        "head_position": report.head.position,
                        "head_hash": report.head.hash.to_hex(),
                        "broken_at": report.broken.as_ref().map(|b| b.position),
                        "reason": report.broken.as_ref().map(|b| b.reason.clone()),
                    }))?
                ),
                Output::Table => {
                    let state = match &report.broken {
                        None => "holds".to_owned(),
                        Some(b) => format!("BROKEN at position {}", b.position),
                    };
                    table(
                        &["chain", "checked", "head position", "head hash"],
                        &[vec![
                            state,
                            report.checked.to_string(),
                            report.head.position.to_string(),
                            report.head.hash.to_hex(),
                        ]],
                    );
                    if let Some(b) = &report.broken {
                        eprintln!("{b}");
                        eprintln!(
                            "the store was altered outside Flotilla; keep it as evidence and restore from a verified backup"
                        );
                    }
                }
            }
            Ok(if report.holds() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        StoreCommand::Export {
            url,
            service,
            namespace,
            schema,
            out,
            output,
        } => {
            let schema = schema_arg(&url, &namespace, Some(&service), schema.as_deref())?;
            let m = crate::store_backup::export(&url, &schema, &service, &out).await?;
            print_manifest(&m, "events exported", output)?;
            if output == Output::Table {
                eprintln!(
                    "written to {}; restore with flotilla store import",
                    out.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Import {
            url,
            service,
            namespace,
            schema,
            input,
            output,
        } => {
            let schema = schema_arg(&url, &namespace, Some(&service), schema.as_deref())?;
            let m = crate::store_backup::import(&url, &schema, &input).await?;
            print_manifest(&m, "events imported", output)?;
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Bench(args) => crate::bench::run(args).await,
    }
}
