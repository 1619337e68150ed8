//! `flotilla catalog footprint|skew`: what runs where, and where running versions break a
//! consumer's declared range.

use std::process::ExitCode;

use clap::Args;
use flotilla_proto::dependency::v1 as pb;
use serde::Serialize;

use super::Client;
use crate::client::failed;
use crate::format::{parse_time, print_json};
use crate::output::{Output, table};

// The arguments of `footprint` (its help is on the `Footprint` variant).
#[derive(Args, Debug)]
pub struct FootprintArgs {
    environment: String,
    /// RFC 3339 time, e.g. 2026-11-01T00:00:00Z.
    #[arg(long)]
    as_of: Option<String>,
    #[arg(long)]
    tag: Option<String>,
}

/// What runs in an environment, as `--output json` prints it.
#[derive(Serialize)]
struct FootprintView {
    environment: String,
    services: Vec<RunningServiceView>,
}

#[derive(Serialize)]
struct RunningServiceView {
    service: String,
    version: String,
}

impl From<&pb::Footprint> for FootprintView {
    fn from(f: &pb::Footprint) -> Self {
        Self {
            environment: f.environment.clone(),
            services: f
                .services
                .iter()
                .map(|s| RunningServiceView {
                    service: s.service.clone(),
                    version: s.version.clone(),
                })
                .collect(),
        }
    }
}

/// A consumer whose declared range a running provider breaks, as `--output json` prints it
/// (in `skew`'s array and in a plan's `skew_violations`).
#[derive(Serialize)]
pub(super) struct SkewViolationView {
    environment: String,
    consumer: String,
    consumer_version: String,
    provider: String,
    provider_version: String,
    requirement: String,
}

impl From<&pb::SkewViolation> for SkewViolationView {
    fn from(x: &pb::SkewViolation) -> Self {
        Self {
            environment: x.environment.clone(),
            consumer: x.consumer.clone(),
            consumer_version: x.consumer_version.clone(),
            provider: x.provider.clone(),
            provider_version: x.provider_version.clone(),
            requirement: x.requirement.clone(),
        }
    }
}

impl SkewViolationView {
    fn row(&self) -> Vec<String> {
        vec![
            self.environment.clone(),
            format!("{}@{}", self.consumer, self.consumer_version),
            format!("{}@{}", self.provider, self.provider_version),
            self.requirement.clone(),
        ]
    }

    /// Prints violations as a table.
    pub(super) fn table(violations: &[Self]) {
        table(
            &["environment", "consumer", "provider", "needs"],
            &violations.iter().map(Self::row).collect::<Vec<_>>(),
        );
    }
}

/// `catalog footprint ENVIRONMENT`.
pub async fn footprint(
    c: &mut Client,
    output: Output,
    args: FootprintArgs,
) -> anyhow::Result<ExitCode> {
    let FootprintArgs {
        environment,
        as_of,
        tag,
    } = args;
    let as_of = as_of
        .as_deref()
        .map(|s| parse_time("--as-of", s, "2026-11-01T00:00:00Z"))
        .transpose()?;
    let f = c
        .get_footprint(pb::GetFootprintRequest {
            environment,
            as_of,
            tag: tag.unwrap_or_default(),
        })
        .await
        .map_err(|s| failed("footprint", s))?
        .into_inner();
    let view = FootprintView::from(&f);
    match output {
        Output::Json => print_json(&view)?,
        Output::Table => table(
            &["service", "version"],
            &view
                .services
                .iter()
                .map(|s| vec![s.service.clone(), s.version.clone()])
                .collect::<Vec<_>>(),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `catalog skew`: exits 0 without violations, 1 with.
pub async fn skew(
    c: &mut Client,
    output: Output,
    environment: Option<String>,
) -> anyhow::Result<ExitCode> {
    let v = c
        .get_version_skew(pb::GetVersionSkewRequest {
            environment: environment.unwrap_or_default(),
        })
        .await
        .map_err(|s| failed("skew", s))?
        .into_inner()
        .violations;
    let views: Vec<SkewViolationView> = v.iter().map(SkewViolationView::from).collect();
    match output {
        Output::Json => print_json(&views)?,
        Output::Table => SkewViolationView::table(&views),
    }
    Ok(if views.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
