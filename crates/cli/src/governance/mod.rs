//! `flotilla governance gate|approvals|windows|deviations|cab|rollbacks|policy|access|deadlines`:
//! the governance service's client, one file per noun. Tables for people, `--output json` for
//! machines; both come from the noun's view types.

mod access;
mod approvals;
mod cab;
mod deadlines;
mod deviations;
mod gate;
mod policy;
mod rollbacks;
mod windows;

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;

use crate::client::{Authed, Target};
use crate::output::Output;

/// A governance client whose calls carry the caller's token.
type Client = GovernanceServiceClient<Authed>;

/// The example time shown when a time does not parse.
const EXAMPLE_TIME: &str = "2026-12-31T23:00:00Z";

#[derive(Subcommand, Debug)]
pub enum GovernanceCommand {
    /// May RELEASE enter ENVIRONMENT (now, or --at)? Exits 0 when allowed, 1 when denied.
    Gate(gate::GateArgs),
    /// Approval requests.
    #[command(subcommand)]
    Approvals(approvals::ApprovalsCommand),
    /// Freeze windows and embargoes.
    #[command(subcommand)]
    Windows(windows::WindowsCommand),
    /// Deviations (break-glass).
    #[command(subcommand)]
    Deviations(deviations::DeviationsCommand),
    /// Record a CAB decision (e.g. a ServiceNow change request) covering RELEASE@ENV pairs.
    Cab(cab::CabArgs),
    /// Rollback decisions.
    #[command(subcommand)]
    Rollbacks(rollbacks::RollbacksCommand),
    /// The governance policy: show it (JSON with --output json), or set it from a JSON file.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// The Cedar access policy of every service.
    #[command(subcommand)]
    Access(access::AccessCommand),
    /// Run the deadline scheduler now (escalations, expiries, overdue rollback decisions).
    Deadlines,
}

pub async fn run(
    target: &Target,
    output: Output,
    command: GovernanceCommand,
) -> anyhow::Result<ExitCode> {
    let (channel, bearer) = target.connect("governance").await?;
    let mut c: Client = GovernanceServiceClient::with_interceptor(channel, bearer);
    match command {
        GovernanceCommand::Gate(args) => gate::run(&mut c, output, args).await,
        GovernanceCommand::Approvals(cmd) => approvals::run(&mut c, output, cmd).await,
        GovernanceCommand::Windows(cmd) => windows::run(&mut c, output, cmd).await,
        GovernanceCommand::Deviations(cmd) => deviations::run(&mut c, output, cmd).await,
        GovernanceCommand::Cab(args) => cab::run(&mut c, output, args).await,
        GovernanceCommand::Rollbacks(cmd) => rollbacks::run(&mut c, output, cmd).await,
        GovernanceCommand::Policy(cmd) => policy::run(&mut c, output, cmd).await,
        GovernanceCommand::Access(cmd) => access::run(&mut c, output, cmd).await,
        GovernanceCommand::Deadlines => deadlines::run(&mut c, output).await,
    }
}
