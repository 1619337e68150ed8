//! `flotilla demo`: a realistic release through the running services, over gRPC, printing what
//! happens as it goes (a line per step) and a table at the end. Against `flotilla up` by default;
//! against services running apart with an address per service.
//!
//! The story: two business units (payments, cards) with a dozen services imported from a
//! Backstage catalog; CI builds (one with a licence the policy refuses); a unit's freeze window
//! on prod; every plan scored by risk-validation, whose assessment opens governance's approval
//! requests; approvals, with the author's own approval refused (segregation of duties); a
//! promotion blocked with every reason, then allowed; a blue-green deploy holding the shared
//! database cluster, so the other unit's release meets a capacity conflict; and canaries
//! judged by risk-validation from their samples (one passes, one fails and is rolled back
//! automatically); a deviation from the freeze, approved by a second role; and a production
//! error rate that breaches monitoring's watch, rolled back by monitoring's request.

mod approvals;
mod canary;
mod cast;
mod exceptions;
mod people;
mod story;
mod tell;

use std::process::ExitCode;

use clap::Args;

use crate::output::Output;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// gRPC address of a node running every service (`flotilla up`).
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub addr: String,
    /// Governance's address, when services run apart (default: --addr).
    #[arg(long)]
    pub governance_addr: Option<String>,
    /// Dependency-mapping's address (default: --addr).
    #[arg(long)]
    pub catalog_addr: Option<String>,
    /// Orchestration's address (default: --addr).
    #[arg(long)]
    pub orchestration_addr: Option<String>,
    /// Risk-validation's address (default: --addr).
    #[arg(long)]
    pub risk_addr: Option<String>,
    /// Monitoring's address (default: --addr).
    #[arg(long)]
    pub monitoring_addr: Option<String>,
    /// Compliance's address (default: --addr).
    #[arg(long)]
    pub compliance_addr: Option<String>,
    /// Where the closing audit report is written (default: flotilla-demo in the system's
    /// temporary folder).
    #[arg(long)]
    pub report_dir: Option<std::path::PathBuf>,
    /// Data folder of the `flotilla up` node whose secret signs the demo's people's tokens
    /// (default: the configured one; `auth_hs256_secret` wins when set).
    #[arg(long)]
    pub data_dir: Option<std::path::PathBuf>,
    #[arg(long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

pub async fn run(config: &flotilla_runtime::Config, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let people = people::People::new(config, args.data_dir.as_deref())?;
    let addrs = story::Addresses {
        governance: args.governance_addr.unwrap_or_else(|| args.addr.clone()),
        catalog: args.catalog_addr.unwrap_or_else(|| args.addr.clone()),
        orchestration: args.orchestration_addr.unwrap_or_else(|| args.addr.clone()),
        risk: args.risk_addr.unwrap_or_else(|| args.addr.clone()),
        monitoring: args.monitoring_addr.unwrap_or_else(|| args.addr.clone()),
        compliance: args.compliance_addr.unwrap_or_else(|| args.addr.clone()),
    };
    let report_dir = args
        .report_dir
        .unwrap_or_else(|| std::env::temp_dir().join("flotilla-demo"));
    let outcome = story::Story::new(addrs, people, args.output, report_dir)
        .await?
        .tell()
        .await?;
    Ok(if outcome {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
