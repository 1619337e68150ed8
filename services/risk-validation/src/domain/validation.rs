//! Validations of a release in an environment, each passed or failed from its evidence by the
//! rules here (never by the caller's say-so): performance against the SLA baseline with
//! tolerances, post-deploy security controls, a restore's measured RPO and RTO against targets,
//! third parties' readiness. Orchestration records a validation as the environment's check
//! named by its kind, so an environment that requires a kind holds the release until it passed.

use flotilla_core::decider::Decision;
use flotilla_core::ids::StreamId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{DomainError, Event, Result, RiskValidation, Timestamp, invalid, name_error, names};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ValidationKind {
    Performance,
    SecurityControls,
    BackupRestore,
    ThirdParty,
}

impl ValidationKind {
    /// The check orchestration's environments name it by.
    pub fn check(self) -> &'static str {
        match self {
            ValidationKind::Performance => "performance",
            ValidationKind::SecurityControls => "security-controls",
            ValidationKind::BackupRestore => "backup-restore",
            ValidationKind::ThirdParty => "third-party",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Performance {
    pub baseline_p95_ms: f64,
    pub measured_p95_ms: f64,
    pub baseline_p99_ms: f64,
    pub measured_p99_ms: f64,
    pub baseline_throughput_rps: f64,
    pub measured_throughput_rps: f64,
    pub baseline_error_rate: f64,
    pub measured_error_rate: f64,
    /// Allowed worsening: latency and throughput in percent, error rate in absolute points.
    pub latency_tolerance_percent: f64,
    pub throughput_tolerance_percent: f64,
    pub error_rate_tolerance: f64,
}

/// One named check with its result and what was seen (a security control, a third party).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedCheck {
    pub name: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRestore {
    pub rpo_target_seconds: u32,
    pub rpo_measured_seconds: u32,
    pub rto_target_seconds: u32,
    pub rto_measured_seconds: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Evidence {
    Performance(Performance),
    SecurityControls(Vec<NamedCheck>),
    BackupRestore {
        measured: BackupRestore,
        backup_id: String,
    },
    ThirdParty(Vec<NamedCheck>),
}

impl Evidence {
    pub fn kind(&self) -> ValidationKind {
        match self {
            Evidence::Performance(_) => ValidationKind::Performance,
            Evidence::SecurityControls(_) => ValidationKind::SecurityControls,
            Evidence::BackupRestore { .. } => ValidationKind::BackupRestore,
            Evidence::ThirdParty(_) => ValidationKind::ThirdParty,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub id: Uuid,
    pub release: String,
    pub environment: String,
    pub business_unit: String,
    pub evidence: Evidence,
    pub refs: Vec<String>,
    pub passed: bool,
    pub failures: Vec<String>,
    pub by: String,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RecordValidation {
    pub id: Uuid,
    pub release: String,
    pub environment: String,
    pub evidence: Evidence,
    pub refs: Vec<String>,
    pub by: String,
    pub at: Timestamp,
}

pub fn validation_stream(id: Uuid) -> StreamId {
    StreamId::for_aggregate("risk-validation", id)
}

impl RiskValidation {
    pub(crate) fn record_validation(&self, c: RecordValidation) -> Result<Decision<Event>> {
        names::id("release", &c.release).map_err(name_error)?;
        names::label("environment", &c.environment).map_err(name_error)?;
        names::list("evidence_refs", &c.refs, 50).map_err(name_error)?;
        for r in &c.refs {
            names::text("evidence_refs", r, 2048).map_err(name_error)?;
        }
        let r = self
            .releases
            .get(&c.release)
            .ok_or_else(|| DomainError::NotFound(format!("release {}", c.release)))?;
        if let Some(path) = self.paths.get(&r.business_unit)
            && !path.contains(&c.environment)
        {
            return Err(invalid(
                "environment",
                format!(
                    "{} is not on the promotion path of {} ({})",
                    c.environment,
                    r.business_unit,
                    path.join(", ")
                ),
            ));
        }
        if self.validations.contains_key(&c.id) {
            return Err(DomainError::AlreadyExists(format!("validation {}", c.id)));
        }
        let failures = failures(&c.evidence)?;
        Ok(Decision::new(
            validation_stream(c.id),
            vec![Event::ValidationRecorded(Box::new(Validation {
                id: c.id,
                release: c.release,
                environment: c.environment,
                business_unit: r.business_unit.clone(),
                passed: failures.is_empty(),
                failures,
                evidence: c.evidence,
                refs: c.refs,
                by: c.by,
                at: c.at,
            }))],
        ))
    }
}

/// What the evidence falls short of (empty: it passes); evidence that cannot be judged (NaN,
/// negative, nothing checked) is refused, never passed.
pub fn failures(e: &Evidence) -> Result<Vec<String>> {
    let mut out = Vec::new();
    match e {
        Evidence::Performance(p) => {
            let fields = [
                ("baseline_p95_ms", p.baseline_p95_ms),
                ("measured_p95_ms", p.measured_p95_ms),
                ("baseline_p99_ms", p.baseline_p99_ms),
                ("measured_p99_ms", p.measured_p99_ms),
                ("baseline_throughput_rps", p.baseline_throughput_rps),
                ("measured_throughput_rps", p.measured_throughput_rps),
                ("baseline_error_rate", p.baseline_error_rate),
                ("measured_error_rate", p.measured_error_rate),
                ("latency_tolerance_percent", p.latency_tolerance_percent),
                (
                    "throughput_tolerance_percent",
                    p.throughput_tolerance_percent,
                ),
                ("error_rate_tolerance", p.error_rate_tolerance),
            ];
            for (name, v) in fields {
                if !v.is_finite() || v < 0.0 {
                    return Err(invalid(
                        &format!("performance.{name}"),
                        format!("{v} is not a finite number of at least 0"),
                    ));
                }
            }
            if p.baseline_p95_ms == 0.0 || p.baseline_p99_ms == 0.0 {
                return Err(invalid(
                    "performance",
                    "a latency baseline of 0 ms cannot be compared against; give the SLA baseline",
                ));
            }
            // A latency or throughput left out reads 0: missing evidence, not a pass.
            if p.measured_p95_ms == 0.0 || p.measured_p99_ms == 0.0 {
                return Err(invalid(
                    "performance",
                    "a measured latency of 0 ms is missing evidence; give the measured p95 and p99",
                ));
            }
            if p.baseline_throughput_rps == 0.0 {
                return Err(invalid(
                    "performance.baseline_throughput_rps",
                    "is 0; give the SLA baseline's throughput",
                ));
            }
            if p.latency_tolerance_percent > 1000.0
                || p.throughput_tolerance_percent >= 100.0
                || p.error_rate_tolerance >= 1.0
            {
                return Err(invalid(
                    "performance",
                    "a tolerance that allows anything (latency above 1000%, throughput 100% or more, error rate 1 or more) is not a check",
                ));
            }
            for (name, v) in [
                ("baseline_error_rate", p.baseline_error_rate),
                ("measured_error_rate", p.measured_error_rate),
            ] {
                if v > 1.0 {
                    return Err(invalid(
                        &format!("performance.{name}"),
                        format!("{v} is not a ratio (0-1)"),
                    ));
                }
            }
            let slower = |name: &str, base: f64, got: f64| {
                let limit = base * (1.0 + p.latency_tolerance_percent / 100.0);
                (got > limit).then(|| {
                    format!(
                        "{name} {got} ms is above the baseline {base} ms + {}% ({limit:.3} ms)",
                        p.latency_tolerance_percent
                    )
                })
            };
            out.extend(slower("p95", p.baseline_p95_ms, p.measured_p95_ms));
            out.extend(slower("p99", p.baseline_p99_ms, p.measured_p99_ms));
            let floor = p.baseline_throughput_rps * (1.0 - p.throughput_tolerance_percent / 100.0);
            if p.measured_throughput_rps < floor {
                out.push(format!(
                    "throughput {} rps is below the baseline {} rps - {}% ({floor:.3} rps)",
                    p.measured_throughput_rps,
                    p.baseline_throughput_rps,
                    p.throughput_tolerance_percent
                ));
            }
            let ceiling = p.baseline_error_rate + p.error_rate_tolerance;
            if p.measured_error_rate > ceiling {
                out.push(format!(
                    "error rate {} is above the baseline {} + {} ({ceiling})",
                    p.measured_error_rate, p.baseline_error_rate, p.error_rate_tolerance
                ));
            }
        }
        Evidence::SecurityControls(checks) | Evidence::ThirdParty(checks) => {
            let what = match e.kind() {
                ValidationKind::SecurityControls => "security control",
                _ => "third party",
            };
            if checks.is_empty() {
                return Err(invalid(
                    e.kind().check(),
                    format!("names no {what}: nothing checked is not a pass"),
                ));
            }
            if checks.len() > 200 {
                return Err(invalid(
                    e.kind().check(),
                    format!("more than 200 of {what}"),
                ));
            }
            for (i, c) in checks.iter().enumerate() {
                names::text(&format!("{}[{i}].name", e.kind().check()), &c.name, 256)
                    .map_err(name_error)?;
                names::optional_text(
                    &format!("{}[{i}].detail", e.kind().check()),
                    &c.detail,
                    4096,
                )
                .map_err(name_error)?;
                if checks[..i].iter().any(|o| o.name == c.name) {
                    return Err(invalid(
                        e.kind().check(),
                        format!("{what} {} is named twice", c.name),
                    ));
                }
                if !c.passed {
                    out.push(if c.detail.is_empty() {
                        format!("{what} {} failed", c.name)
                    } else {
                        format!("{what} {} failed: {}", c.name, c.detail)
                    });
                }
            }
        }
        Evidence::BackupRestore {
            measured: b,
            backup_id,
        } => {
            names::optional_text("backup_restore.backup_id", backup_id, 256).map_err(name_error)?;
            if b.rto_measured_seconds == 0 {
                return Err(invalid(
                    "backup_restore.rto_measured_seconds",
                    "is 0: a restore takes time; give the measured RTO",
                ));
            }
            if b.rpo_target_seconds == 0 || b.rto_target_seconds == 0 {
                return Err(invalid(
                    "backup_restore",
                    "the RPO and RTO targets are not set (0); give the targets the restore is held to",
                ));
            }
            if b.rpo_measured_seconds > b.rpo_target_seconds {
                out.push(format!(
                    "RPO {} s is above the target {} s",
                    b.rpo_measured_seconds, b.rpo_target_seconds
                ));
            }
            if b.rto_measured_seconds > b.rto_target_seconds {
                out.push(format!(
                    "RTO {} s is above the target {} s",
                    b.rto_measured_seconds, b.rto_target_seconds
                ));
            }
        }
    }
    Ok(out)
}
