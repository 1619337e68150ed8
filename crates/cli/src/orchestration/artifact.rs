//! `flotilla artifact register|show|list`: CI builds (a pipeline step registers each one).

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::orchestration::v1 as pb;

use super::view::{ARTIFACT_HEADERS, ArtifactView, artifact_row};
use crate::client::{Target, failed};
use crate::format::print_json;
use crate::output::{Output, table};

#[derive(Subcommand, Debug)]
// Parsed once per run: the size of one variant does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ArtifactCommand {
    /// Register a build: its id is the package URL of its image digest. Exits 1 when the build
    /// may not go into a release (a licence off the allow-list, failed analysis or tests).
    Register {
        #[arg(long)]
        service: String,
        /// Semantic version, e.g. 2.4.1.
        #[arg(long)]
        version: String,
        #[arg(long)]
        commit: String,
        #[arg(long)]
        repository: String,
        #[arg(long, default_value = "")]
        build_url: String,
        /// The image digest, sha256:<64 hex>.
        #[arg(long)]
        digest: String,
        #[arg(long, default_value_t = 0)]
        tests_passed: u32,
        #[arg(long, default_value_t = 0)]
        tests_failed: u32,
        #[arg(long, default_value_t = 0)]
        tests_skipped: u32,
        /// The static-analysis tool, when one ran.
        #[arg(long, default_value = "")]
        analysis_tool: String,
        /// The static analysis failed.
        #[arg(long)]
        analysis_failed: bool,
        #[arg(long, default_value_t = 0)]
        findings: u32,
        /// SPDX id of a licence the build contains (repeatable).
        #[arg(long = "licence")]
        licences: Vec<String>,
        /// When the commit was made (RFC 3339); DORA's lead time counts from it.
        #[arg(long)]
        committed_at: Option<String>,
    },
    /// One build by package URL.
    Show { purl: String },
    /// Builds, newest registrations last.
    List {
        #[arg(long)]
        service: Option<String>,
    },
}

pub async fn run(
    target: &Target,
    output: Output,
    command: ArtifactCommand,
) -> anyhow::Result<ExitCode> {
    let mut c = super::connect(target).await?;
    let registering = matches!(command, ArtifactCommand::Register { .. });
    let shown = match command {
        ArtifactCommand::Register {
            service,
            version,
            commit,
            repository,
            build_url,
            digest,
            tests_passed,
            tests_failed,
            tests_skipped,
            analysis_tool,
            analysis_failed,
            findings,
            licences,
            committed_at,
        } => {
            let committed_at = committed_at
                .map(|t| crate::format::parse_time("--committed-at", &t, "2026-12-01T09:30:00Z"))
                .transpose()?;
            let a = c
                .register_artifact(pb::RegisterArtifactRequest {
                    service,
                    version,
                    commit,
                    repository,
                    build_url,
                    tests: Some(pb::TestResults {
                        passed: tests_passed,
                        failed: tests_failed,
                        skipped: tests_skipped,
                    }),
                    analysis: Some(pb::AnalysisResult {
                        tool: analysis_tool,
                        passed: !analysis_failed,
                        findings,
                    }),
                    licences,
                    image_digest: digest,
                    committed_at,
                })
                .await
                .map_err(|s| failed("register artifact", s))?
                .into_inner();
            vec![a]
        }
        ArtifactCommand::Show { purl } => vec![
            c.get_artifact(pb::GetArtifactRequest { purl })
                .await
                .map_err(|s| failed("get artifact", s))?
                .into_inner(),
        ],
        ArtifactCommand::List { service } => {
            c.list_artifacts(pb::ListArtifactsRequest {
                service: service.unwrap_or_default(),
            })
            .await
            .map_err(|s| failed("list artifacts", s))?
            .into_inner()
            .artifacts
        }
    };
    let views: Vec<ArtifactView> = shown.iter().map(ArtifactView::from).collect();
    match output {
        Output::Json => print_json(&views)?,
        Output::Table => {
            table(
                &ARTIFACT_HEADERS,
                &views.iter().map(artifact_row).collect::<Vec<_>>(),
            );
            for v in &views {
                println!("{}", v.purl);
            }
        }
    }
    let blocked = registering && views.iter().any(|v| !v.blocked.is_empty());
    Ok(if blocked {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
