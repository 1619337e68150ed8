//! `flotilla risk validations`: validations recorded for a release, passed or failed from their
//! evidence.

use std::process::ExitCode;

use flotilla_proto::risk::v1 as pb;
use serde::Serialize;

use super::{Client, NO_RELEASE, refused};
use crate::format::{print_json, show_time};
use crate::output::{Output, table};

/// A validation as `--output json` prints it (always in an array).
#[derive(Serialize)]
struct ValidationView {
    validation_id: String,
    release: String,
    environment: String,
    business_unit: String,
    kind: &'static str,
    passed: bool,
    /// Why it failed (empty when it passed).
    failures: Vec<String>,
    evidence: Option<EvidenceView>,
    /// Links or ids of reports backing it.
    evidence_refs: Vec<String>,
    recorded_by: String,
    recorded_at: String,
}

/// What a validation was judged from.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum EvidenceView {
    Performance {
        baseline_p95_ms: f64,
        measured_p95_ms: f64,
        baseline_p99_ms: f64,
        measured_p99_ms: f64,
        baseline_throughput_rps: f64,
        measured_throughput_rps: f64,
        baseline_error_rate: f64,
        measured_error_rate: f64,
        latency_tolerance_percent: f64,
        throughput_tolerance_percent: f64,
        error_rate_tolerance: f64,
    },
    Security {
        controls: Vec<CheckView>,
    },
    BackupRestore {
        rpo_target_seconds: u32,
        rpo_measured_seconds: u32,
        rto_target_seconds: u32,
        rto_measured_seconds: u32,
        backup_id: String,
    },
    ThirdParty {
        checks: Vec<CheckView>,
    },
}

/// A security control or a third party's readiness.
#[derive(Serialize)]
struct CheckView {
    name: String,
    passed: bool,
    detail: String,
}

fn kind_name(k: i32) -> &'static str {
    match pb::ValidationKind::try_from(k) {
        Ok(pb::ValidationKind::Performance) => "performance",
        Ok(pb::ValidationKind::SecurityControls) => "security-controls",
        Ok(pb::ValidationKind::BackupRestore) => "backup-restore",
        Ok(pb::ValidationKind::ThirdParty) => "third-party",
        _ => "unknown",
    }
}

impl From<&pb::validation::Evidence> for EvidenceView {
    fn from(e: &pb::validation::Evidence) -> Self {
        use pb::validation::Evidence as E;
        match e {
            E::Performance(p) => Self::Performance {
                baseline_p95_ms: p.baseline_p95_ms,
                measured_p95_ms: p.measured_p95_ms,
                baseline_p99_ms: p.baseline_p99_ms,
                measured_p99_ms: p.measured_p99_ms,
                baseline_throughput_rps: p.baseline_throughput_rps,
                measured_throughput_rps: p.measured_throughput_rps,
                baseline_error_rate: p.baseline_error_rate,
                measured_error_rate: p.measured_error_rate,
                latency_tolerance_percent: p.latency_tolerance_percent,
                throughput_tolerance_percent: p.throughput_tolerance_percent,
                error_rate_tolerance: p.error_rate_tolerance,
            },
            E::Security(s) => Self::Security {
                controls: s
                    .controls
                    .iter()
                    .map(|c| CheckView {
                        name: c.control.clone(),
                        passed: c.passed,
                        detail: c.detail.clone(),
                    })
                    .collect(),
            },
            E::BackupRestore(b) => Self::BackupRestore {
                rpo_target_seconds: b.rpo_target_seconds,
                rpo_measured_seconds: b.rpo_measured_seconds,
                rto_target_seconds: b.rto_target_seconds,
                rto_measured_seconds: b.rto_measured_seconds,
                backup_id: b.backup_id.clone(),
            },
            E::ThirdParty(t) => Self::ThirdParty {
                checks: t
                    .checks
                    .iter()
                    .map(|c| CheckView {
                        name: c.dependency.clone(),
                        passed: c.ready,
                        detail: c.detail.clone(),
                    })
                    .collect(),
            },
        }
    }
}

impl From<&pb::Validation> for ValidationView {
    fn from(v: &pb::Validation) -> Self {
        Self {
            validation_id: v.validation_id.clone(),
            release: v.release.clone(),
            environment: v.environment.clone(),
            business_unit: v.business_unit.clone(),
            kind: kind_name(v.kind),
            passed: v.passed,
            failures: v.failures.clone(),
            evidence: v.evidence.as_ref().map(EvidenceView::from),
            evidence_refs: v.evidence_refs.clone(),
            recorded_by: v.recorded_by.clone(),
            recorded_at: show_time(v.recorded_at.as_ref()),
        }
    }
}

impl ValidationView {
    const HEADERS: [&str; 6] = ["env", "kind", "passed", "failures", "by", "at"];

    fn row(&self) -> Vec<String> {
        vec![
            self.environment.clone(),
            self.kind.into(),
            if self.passed { "yes" } else { "no" }.into(),
            self.failures.join("; "),
            self.recorded_by.clone(),
            self.recorded_at.clone(),
        ]
    }
}

/// `flotilla risk validations RELEASE [--env ENV]`.
pub async fn run(
    c: &mut Client,
    output: Output,
    release: String,
    env: Option<String>,
) -> anyhow::Result<ExitCode> {
    let list = c
        .list_validations(pb::ListValidationsRequest {
            release,
            environment: env.unwrap_or_default(),
        })
        .await
        .map_err(|s| refused("listing validations", s, NO_RELEASE))?
        .into_inner();
    let views: Vec<ValidationView> = list.validations.iter().map(ValidationView::from).collect();
    match output {
        Output::Json => print_json(&views)?,
        Output::Table => table(
            &ValidationView::HEADERS,
            &views.iter().map(ValidationView::row).collect::<Vec<_>>(),
        ),
    }
    Ok(ExitCode::SUCCESS)
}
