//! `flotilla`: runs Flotilla's services and talks to them.

mod audit;
mod bench;
mod catalog;
mod client;
mod demo;
mod doctor;
mod format;
mod governance;
mod keys;
mod orchestration;
mod output;
mod report;
mod risk;
mod status;
mod store_backup;
mod store_cmd;
mod token;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flotilla_runtime::{Config, NodeMode};

use crate::output::Output;

#[derive(Parser, Debug)]
#[command(
    name = "flotilla",
    version,
    about = "Release governance and orchestration: run the services, or talk to them"
)]
struct Cli {
    /// TOML config file; FLOTILLA_* environment variables override it.
    #[arg(long, global = true, env = "FLOTILLA_CONFIG")]
    config: Option<PathBuf>,
    /// Bearer token sent to the services (see `flotilla token issue`).
    #[arg(long, global = true, env = "FLOTILLA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    #[command(flatten)]
    tls: client::TlsArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run all six services in this process on embedded defaults (SQLite files, in-process bus).
    Up {
        /// Folder for the services' SQLite stores.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address for the gRPC server.
        #[arg(long)]
        listen: Option<String>,
        /// Serve a service whose store's hash chain is broken at this position, after looking
        /// at it: SERVICE@POSITION (repeatable; recorded in the store).
        #[arg(long = "accept-chain-break")]
        accept_chain_breaks: Vec<String>,
    },
    /// Run one service against PostgreSQL, NATS and Kafka (from config).
    Serve {
        /// governance, dependency-mapping, orchestration, risk-validation, monitoring or compliance.
        service: String,
        #[arg(long)]
        listen: Option<String>,
        /// Serve although the store's hash chain is broken at this position, after looking at
        /// it: SERVICE@POSITION (repeatable; recorded in the store).
        #[arg(long = "accept-chain-break")]
        accept_chain_breaks: Vec<String>,
    },
    /// Ask running services for their status.
    Status {
        /// gRPC address of a node.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// The service catalog and dependency graph (dependency-mapping service).
    Catalog {
        /// gRPC address of a node running dependency-mapping.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(subcommand)]
        command: catalog::CatalogCommand,
    },
    /// Governance: gate checks, approvals, windows, deviations, CAB decisions, rollback
    /// decisions, the governance policy and the access policy.
    Governance {
        /// gRPC address of a node running governance.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(subcommand)]
        command: governance::GovernanceCommand,
    },
    /// Risk: assessments of planned releases and their factors, the factor weights, FMEA and
    /// validations (risk-validation service).
    Risk {
        /// gRPC address of a node running risk-validation.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(subcommand)]
        command: risk::RiskCommand,
    },
    /// Audit: the compliance ledger's events replayed as CloudEvents JSON lines, audit bundles
    /// with inclusion proofs, signed checkpoints, each service's chain and chain alerts
    /// (compliance service); verify a bundle offline with the ledger's verifier key.
    Audit {
        /// gRPC address of a node running compliance (`audit verify` runs offline).
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
    /// Reports over the recorded history: DORA metrics (monitoring service).
    Report {
        /// gRPC address of a node running monitoring.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(subcommand)]
        command: report::ReportCommand,
    },
    /// CI builds registered with orchestration.
    Artifact {
        /// gRPC address of a node running orchestration.
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(subcommand)]
        command: orchestration::artifact::ArtifactCommand,
    },
    /// Releases: create, plan, promote, roll back, show, list.
    Release {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(subcommand)]
        command: orchestration::release::ReleaseCommand,
    },
    /// Environments: paths, shared infrastructure, drift and parity, data, validations, test
    /// windows.
    Env {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(subcommand)]
        command: orchestration::env::EnvCommand,
    },
    /// Deployments as they run: watch, show, resume, analysis verdicts.
    Deploy {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(subcommand)]
        command: orchestration::deploy::DeployCommand,
    },
    /// Drive a realistic release through the running services and tell what happens.
    Demo(demo::DemoArgs),
    /// Development tokens.
    Token {
        #[command(subcommand)]
        command: token::TokenCommand,
    },
    /// Event store tools.
    Store {
        #[command(subcommand)]
        command: store_cmd::StoreCommand,
    },
    /// Keys a deployment needs (access policy signing).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
    /// Check the configuration against what it names (PostgreSQL and each service's store,
    /// the keyring, the clock, NATS JetStream and streams, Kafka and topics); says what to fix.
    /// Exit 1 when a check failed.
    Doctor {
        /// Only these services' stores, streams and topics (default: all six).
        #[arg(long = "service")]
        services: Vec<String>,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// The configuration: `config show` prints every effective setting, where it came from
    /// (the file, the environment or the default), secrets masked.
    Config {
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Every effective setting with its source.
    Show,
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}

async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| anyhow::anyhow!("listen address {listen:?} is not host:port ({e})"))?;
    tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}; is another flotilla running? pass --listen 127.0.0.1:PORT"))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut config = Config::load(cli.config.as_deref())?;
    if matches!(cli.command, Command::Up { .. } | Command::Serve { .. }) && cli.tls.given() {
        anyhow::bail!(
            "--tls-ca, --tls-cert and --tls-key are for calling a node; a node's own TLS is tls_cert, tls_key and tls_client_ca in its configuration (FLOTILLA_TLS_CERT, FLOTILLA_TLS_KEY, FLOTILLA_TLS_CLIENT_CA)"
        );
    }
    match cli.command {
        Command::Up {
            data_dir,
            listen,
            accept_chain_breaks,
        } => {
            config.accept_chain_breaks.extend(accept_chain_breaks);
            if let Some(d) = data_dir {
                config.data_dir = d;
            }
            if let Some(l) = listen {
                config.listen = l;
            }
            let _telemetry = flotilla_runtime::telemetry::init(&config, "flotilla")?;
            let _folder = flotilla_runtime::node::lock_data_folder(&config.data_dir)?;
            let listener = bind(&config.listen).await?;
            let scheme = if config.tls_cert.as_os_str().is_empty() {
                "http"
            } else {
                "https"
            };
            let mode = NodeMode::Embedded {
                data_dir: config.data_dir.clone(),
            };
            eprintln!(
                "flotilla up: six services on {} (gRPC, reflection and health), data in {}\n  every call needs a token; for this node:\n    export FLOTILLA_TOKEN=$(cargo run -q -p flotilla-cli -- token issue --subject you --role admin --bu central --data-dir {})\n  then try: cargo run -p flotilla-cli -- status --addr {scheme}://{}",
                listener.local_addr()?,
                config.data_dir.display(),
                config.data_dir.display(),
                listener.local_addr()?
            );
            flotilla_platform::node(config, flotilla_platform::all())
                .run(listener, mode, shutdown_signal())
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve {
            service,
            listen,
            accept_chain_breaks,
        } => {
            config.accept_chain_breaks.extend(accept_chain_breaks);
            if let Some(l) = listen {
                config.listen = l;
            }
            let module = flotilla_platform::by_name(&service)?;
            let _telemetry = flotilla_runtime::telemetry::init(&config, module.name())?;
            let listener = bind(&config.listen).await?;
            flotilla_platform::node(config, vec![module])
                .run(listener, NodeMode::Served, shutdown_signal())
                .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { addr, output } => {
            status::run(
                &client::Target {
                    addr,
                    token: cli.token,
                    tls: cli.tls.or_config(&config),
                },
                output,
            )
            .await
        }
        Command::Catalog {
            addr,
            output,
            command,
        } => {
            catalog::run(
                &client::Target {
                    addr,
                    token: cli.token,
                    tls: cli.tls.or_config(&config),
                },
                output,
                command,
            )
            .await
        }
        Command::Governance {
            addr,
            output,
            command,
        } => {
            governance::run(
                &client::Target {
                    addr,
                    token: cli.token,
                    tls: cli.tls.or_config(&config),
                },
                output,
                command,
            )
            .await
        }
        Command::Risk {
            addr,
            output,
            command,
        } => {
            risk::run(
                &client::Target {
                    addr,
                    token: cli.token,
                    tls: cli.tls.or_config(&config),
                },
                output,
                command,
            )
            .await
        }
        Command::Audit {
            addr,
            output,
            command,
        } => {
            audit::run(
                &client::Target {
                    addr,
                    token: cli.token,
                    tls: cli.tls.or_config(&config),
                },
                output,
                command,
            )
            .await
        }
        Command::Report {
            addr,
            output,
            command,
        } => {
            report::run(
                &client::Target {
                    addr,
                    token: cli.token,
                    tls: cli.tls.or_config(&config),
                },
                output,
                command,
            )
            .await
        }
        Command::Artifact {
            addr,
            output,
            command,
        } => {
            orchestration::artifact::run(
                &client::Target {
                    addr,
                    token: cli.token,
                    tls: cli.tls.or_config(&config),
                },
                output,
                command,
            )
            .await
        }
        Command::Release {
            addr,
            output,
            command,
        } => {
            orchestration::release::run(
                &client::Target {
                    addr,
                    token: cli.token,
                    tls: cli.tls.or_config(&config),
                },
                output,
                command,
            )
            .await
        }
        Command::Env {
            addr,
            output,
            command,
        } => {
            orchestration::env::run(
                &client::Target {
                    addr,
                    token: cli.token,
                    tls: cli.tls.or_config(&config),
                },
                output,
                command,
            )
            .await
        }
        Command::Deploy {
            addr,
            output,
            command,
        } => {
            orchestration::deploy::run(
                &client::Target {
                    addr,
                    token: cli.token,
                    tls: cli.tls.or_config(&config),
                },
                output,
                command,
            )
            .await
        }
        Command::Demo(args) => demo::run(&config, args).await,
        Command::Token { command } => token::run(&config, command),
        Command::Keys { command } => keys::run(command),
        Command::Doctor { services, output } => doctor::run(&config, output, services).await,
        Command::Config {
            output,
            command: ConfigCommand::Show,
        } => {
            let settings = flotilla_runtime::config_sources::settings(
                cli.config.as_deref(),
                std::env::vars(),
            )?;
            match output {
                Output::Json => format::print_json(&settings)?,
                Output::Table => output::table(
                    &["key", "value", "source"],
                    &settings
                        .iter()
                        .map(|s| vec![s.key.clone(), s.value.clone(), s.source.clone()])
                        .collect::<Vec<_>>(),
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Store { command } => {
            let _telemetry = flotilla_runtime::telemetry::init(
                &Config {
                    log: std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
                    ..config
                },
                "flotilla",
            )?;
            store_cmd::run(command).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
