//! `flotilla risk assessment|reassess|weights|fmea|validations`: the risk-validation service's
//! client, one file per noun. Tables for people, `--output json` for machines; both come from
//! the noun's view types.

mod assessment;
mod fmea;
mod validations;
mod weights;

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::risk::v1::risk_validation_service_client::RiskValidationServiceClient;

use crate::client::{Authed, Target, failed};
use crate::output::Output;

/// A risk-validation client whose calls carry the caller's token.
type Client = RiskValidationServiceClient<Authed>;

#[derive(Subcommand, Debug)]
pub enum RiskCommand {
    /// The current risk assessment of a planned release in each environment of its path, every
    /// factor with its value, weight, points and why.
    Assessment {
        release: String,
        /// Only this environment.
        #[arg(long)]
        env: Option<String>,
    },
    /// Assess a planned release again with what is known now (a new assessment supersedes an
    /// environment's last one where governance's facts change).
    Reassess { release: String },
    /// The factor weights risk scores are computed with; `weights set` makes a new version.
    Weights(weights::WeightsArgs),
    /// A release's FMEA: failure modes, their RPN and the actions required above the threshold.
    #[command(subcommand)]
    Fmea(fmea::FmeaCommand),
    /// Validations recorded for a release (performance, security controls, backup and restore,
    /// third parties).
    Validations {
        release: String,
        /// Only this environment.
        #[arg(long)]
        env: Option<String>,
    },
}

pub async fn run(
    target: &Target,
    output: Output,
    command: RiskCommand,
) -> anyhow::Result<ExitCode> {
    let (channel, bearer) = target.connect("risk-validation").await?;
    let mut c: Client = RiskValidationServiceClient::with_interceptor(channel, bearer);
    match command {
        RiskCommand::Assessment { release, env } => {
            assessment::show(&mut c, output, release, env).await
        }
        RiskCommand::Reassess { release } => assessment::reassess(&mut c, output, release).await,
        RiskCommand::Weights(args) => weights::run(&mut c, output, args).await,
        RiskCommand::Fmea(cmd) => fmea::run(&mut c, output, cmd).await,
        RiskCommand::Validations { release, env } => {
            validations::run(&mut c, output, release, env).await
        }
    }
}

/// A refused call (through `failed`), saying what to do next when what it names is not found.
fn refused(what: &str, s: tonic::Status, when_not_found: &str) -> anyhow::Error {
    let not_found = s.code() == tonic::Code::NotFound;
    let e = failed(what, s);
    if not_found {
        anyhow::anyhow!("{e}\n  hint: {when_not_found}")
    } else {
        e
    }
}

/// What to do when risk-validation does not know a release.
const NO_RELEASE: &str = "risk-validation knows a release once orchestration created it in your unit; check its name with `flotilla release list`";
