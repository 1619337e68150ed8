//! FMEA and validations as messages.

use flotilla_proto::risk::v1 as pb;
use flotilla_runtime::kit::time::stored;

use super::{stored_uuid, ts};
use crate::domain::fmea::ActionClosed;
use crate::domain::validation::{BackupRestore, NamedCheck, Performance};
use crate::domain::*;

/// Out-of-range numbers stay out of range (the domain refuses them), never wrap into range.
fn score_of(v: u32) -> u8 {
    u8::try_from(v).unwrap_or(u8::MAX)
}

/// Failure modes as a caller gives them (closings are the service's).
pub fn modes_of(modes: Vec<pb::FailureMode>) -> Vec<FailureMode> {
    modes
        .into_iter()
        .map(|m| FailureMode {
            name: m.name,
            effect: m.effect,
            severity: score_of(m.severity),
            occurrence: score_of(m.occurrence),
            detection: score_of(m.detection),
            action: m.action,
            action_owner: m.action_owner,
            closed: None,
        })
        .collect()
}

pub fn fmea_pb(f: &Fmea) -> pb::Fmea {
    pb::Fmea {
        release: f.release.clone(),
        business_unit: f.business_unit.clone(),
        modes: f
            .modes
            .iter()
            .map(|m| pb::FailureMode {
                name: m.name.clone(),
                effect: m.effect.clone(),
                severity: u32::from(m.severity),
                occurrence: u32::from(m.occurrence),
                detection: u32::from(m.detection),
                rpn: m.rpn(),
                action: m.action.clone(),
                action_owner: m.action_owner.clone(),
                action_required: f.requires_action(m),
                action_closed: m.closed.is_some(),
                closed_by: m.closed.as_ref().map(|c| c.by.clone()).unwrap_or_default(),
                closing_evidence: m
                    .closed
                    .as_ref()
                    .map(|c| c.evidence.clone())
                    .unwrap_or_default(),
                closed_at: m.closed.as_ref().map(|c| ts(c.at)),
            })
            .collect(),
        rpn_action_threshold: f.threshold,
        recorded_by: f.by.clone(),
        recorded_at: Some(ts(f.at)),
        highest_rpn: f.highest_rpn(),
        open_actions: f.open_actions(),
    }
}

pub fn fmea_of(p: pb::Fmea) -> Fmea {
    Fmea {
        release: p.release,
        business_unit: p.business_unit,
        modes: p
            .modes
            .into_iter()
            .map(|m| FailureMode {
                closed: m.action_closed.then(|| ActionClosed {
                    by: m.closed_by,
                    evidence: m.closing_evidence,
                    at: stored(m.closed_at.as_ref()),
                }),
                name: m.name,
                effect: m.effect,
                severity: score_of(m.severity),
                occurrence: score_of(m.occurrence),
                detection: score_of(m.detection),
                action: m.action,
                action_owner: m.action_owner,
            })
            .collect(),
        threshold: p.rpn_action_threshold,
        by: p.recorded_by,
        at: stored(p.recorded_at.as_ref()),
    }
}

fn checks_of(checks: impl IntoIterator<Item = (String, bool, String)>) -> Vec<NamedCheck> {
    checks
        .into_iter()
        .map(|(name, passed, detail)| NamedCheck {
            name,
            passed,
            detail,
        })
        .collect()
}

/// The evidence a message carries, or `None` when it carries none.
pub fn evidence_of(e: Option<pb::validation::Evidence>) -> Option<Evidence> {
    use pb::validation::Evidence as E;
    Some(match e? {
        E::Performance(p) => Evidence::Performance(Performance {
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
        }),
        E::Security(s) => Evidence::SecurityControls(checks_of(
            s.controls
                .into_iter()
                .map(|c| (c.control, c.passed, c.detail)),
        )),
        E::BackupRestore(b) => Evidence::BackupRestore {
            measured: BackupRestore {
                rpo_target_seconds: b.rpo_target_seconds,
                rpo_measured_seconds: b.rpo_measured_seconds,
                rto_target_seconds: b.rto_target_seconds,
                rto_measured_seconds: b.rto_measured_seconds,
            },
            backup_id: b.backup_id,
        },
        E::ThirdParty(t) => Evidence::ThirdParty(checks_of(
            t.checks
                .into_iter()
                .map(|c| (c.dependency, c.ready, c.detail)),
        )),
    })
}

fn evidence_pb(e: &Evidence) -> pb::validation::Evidence {
    use pb::validation::Evidence as E;
    match e {
        Evidence::Performance(p) => E::Performance(pb::PerformanceEvidence {
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
        }),
        Evidence::SecurityControls(cs) => E::Security(pb::SecurityEvidence {
            controls: cs
                .iter()
                .map(|c| pb::SecurityControl {
                    control: c.name.clone(),
                    passed: c.passed,
                    detail: c.detail.clone(),
                })
                .collect(),
        }),
        Evidence::BackupRestore {
            measured: b,
            backup_id,
        } => E::BackupRestore(pb::BackupRestoreEvidence {
            rpo_target_seconds: b.rpo_target_seconds,
            rpo_measured_seconds: b.rpo_measured_seconds,
            rto_target_seconds: b.rto_target_seconds,
            rto_measured_seconds: b.rto_measured_seconds,
            backup_id: backup_id.clone(),
        }),
        Evidence::ThirdParty(cs) => E::ThirdParty(pb::ThirdPartyEvidence {
            checks: cs
                .iter()
                .map(|c| pb::ThirdPartyCheck {
                    dependency: c.name.clone(),
                    ready: c.passed,
                    detail: c.detail.clone(),
                })
                .collect(),
        }),
    }
}

fn kind_pb(k: ValidationKind) -> pb::ValidationKind {
    match k {
        ValidationKind::Performance => pb::ValidationKind::Performance,
        ValidationKind::SecurityControls => pb::ValidationKind::SecurityControls,
        ValidationKind::BackupRestore => pb::ValidationKind::BackupRestore,
        ValidationKind::ThirdParty => pb::ValidationKind::ThirdParty,
    }
}

pub fn validation_pb(v: &Validation) -> pb::Validation {
    pb::Validation {
        validation_id: v.id.to_string(),
        release: v.release.clone(),
        environment: v.environment.clone(),
        business_unit: v.business_unit.clone(),
        kind: kind_pb(v.evidence.kind()) as i32,
        evidence: Some(evidence_pb(&v.evidence)),
        evidence_refs: v.refs.clone(),
        passed: v.passed,
        failures: v.failures.clone(),
        recorded_by: v.by.clone(),
        recorded_at: Some(ts(v.at)),
    }
}

/// A validation as recorded: its verdict as it was given.
pub fn validation_of(p: pb::Validation) -> Result<Validation, String> {
    let evidence = evidence_of(p.evidence)
        .ok_or_else(|| format!("validation {} carries no evidence", p.validation_id))?;
    Ok(Validation {
        id: stored_uuid("validation_id", &p.validation_id)?,
        release: p.release,
        environment: p.environment,
        business_unit: p.business_unit,
        evidence,
        refs: p.evidence_refs,
        passed: p.passed,
        failures: p.failures,
        by: p.recorded_by,
        at: stored(p.recorded_at.as_ref()),
    })
}
