//! Monitoring's domain values as messages and back. Reading a stored message applies no API
//! rule: what was recorded decodes.

use flotilla_proto::monitoring::v1 as pb;
use flotilla_runtime::kit::time::stored;
pub use flotilla_runtime::kit::time::to_proto as ts;

use crate::domain::*;

pub fn outcome_pb(o: Outcome) -> pb::NotedOutcome {
    match o {
        Outcome::Succeeded => pb::NotedOutcome::Succeeded,
        Outcome::Failed => pb::NotedOutcome::Failed,
        Outcome::RolledBack => pb::NotedOutcome::RolledBack,
    }
}

/// A stored outcome; one this build does not know reads as a failure (the cautious side).
pub fn outcome_of(v: i32) -> Outcome {
    match pb::NotedOutcome::try_from(v) {
        Ok(pb::NotedOutcome::Succeeded) => Outcome::Succeeded,
        Ok(pb::NotedOutcome::RolledBack) => Outcome::RolledBack,
        _ => Outcome::Failed,
    }
}

pub fn severity_pb(s: Severity) -> pb::Severity {
    match s {
        Severity::Sev1 => pb::Severity::Sev1,
        Severity::Sev2 => pb::Severity::Sev2,
        Severity::Sev3 => pb::Severity::Sev3,
        Severity::Sev4 => pb::Severity::Sev4,
    }
}

/// A severity as given or stored; unset reads as sev 3.
pub fn severity_of(v: i32) -> Severity {
    match pb::Severity::try_from(v) {
        Ok(pb::Severity::Sev1) => Severity::Sev1,
        Ok(pb::Severity::Sev2) => Severity::Sev2,
        Ok(pb::Severity::Sev4) => Severity::Sev4,
        _ => Severity::Sev3,
    }
}

pub fn ticket_pb(t: &Ticket) -> pb::Ticket {
    pb::Ticket {
        ticket_id: t.id.clone(),
        service: t.service.clone(),
        environment: t.environment.clone(),
        business_unit: t.business_unit.clone(),
        severity: severity_pb(t.severity) as i32,
        summary: t.summary.clone(),
        labels: t.labels.clone(),
        opened_at: Some(ts(t.opened_at)),
        release: t.release.clone(),
        link: t.link.clone(),
        reporter: t.reporter.clone(),
    }
}

pub fn ticket_of(t: pb::Ticket) -> Ticket {
    Ticket {
        id: t.ticket_id,
        service: t.service,
        environment: t.environment,
        business_unit: t.business_unit,
        severity: severity_of(t.severity),
        summary: t.summary,
        labels: t.labels,
        opened_at: stored(t.opened_at.as_ref()),
        release: t.release,
        link: t.link,
        reporter: t.reporter,
    }
}

pub fn target_pb(t: &AdoptionTarget) -> pb::AdoptionTarget {
    pb::AdoptionTarget {
        release: t.release.clone(),
        feature: t.feature.clone(),
        metric: t.metric.clone(),
        target: t.target,
        due: Some(ts(t.due)),
        business_unit: t.business_unit.clone(),
        declared_by: t.by.clone(),
    }
}

pub fn target_of(t: pb::AdoptionTarget) -> AdoptionTarget {
    AdoptionTarget {
        release: t.release,
        feature: t.feature,
        metric: t.metric,
        target: t.target,
        due: stored(t.due.as_ref()),
        business_unit: t.business_unit,
        by: t.declared_by,
    }
}

pub fn factor_kind_pb(k: FactorKind) -> pb::FactorKind {
    match k {
        FactorKind::Code => pb::FactorKind::Code,
        FactorKind::Configuration => pb::FactorKind::Configuration,
        FactorKind::Capacity => pb::FactorKind::Capacity,
        FactorKind::Dependency => pb::FactorKind::Dependency,
        FactorKind::Process => pb::FactorKind::Process,
        FactorKind::Testing => pb::FactorKind::Testing,
        FactorKind::Monitoring => pb::FactorKind::Monitoring,
        FactorKind::ThirdParty => pb::FactorKind::ThirdParty,
    }
}

/// A factor kind as given or stored; `None` for one this build does not know (or unset).
pub fn factor_kind_of(v: i32) -> Option<FactorKind> {
    Some(match pb::FactorKind::try_from(v).ok()? {
        pb::FactorKind::Unspecified => return None,
        pb::FactorKind::Code => FactorKind::Code,
        pb::FactorKind::Configuration => FactorKind::Configuration,
        pb::FactorKind::Capacity => FactorKind::Capacity,
        pb::FactorKind::Dependency => FactorKind::Dependency,
        pb::FactorKind::Process => FactorKind::Process,
        pb::FactorKind::Testing => FactorKind::Testing,
        pb::FactorKind::Monitoring => FactorKind::Monitoring,
        pb::FactorKind::ThirdParty => FactorKind::ThirdParty,
    })
}

pub fn entry_pb(e: &TimelineEntry) -> pb::TimelineEntry {
    pb::TimelineEntry {
        release: e.release.clone(),
        at: Some(ts(e.at)),
        source: e.source.clone(),
        what: e.what.clone(),
        reference: e.reference.clone(),
    }
}

pub fn entry_of(e: pb::TimelineEntry) -> TimelineEntry {
    TimelineEntry {
        release: e.release,
        at: stored(e.at.as_ref()),
        source: e.source,
        what: e.what,
        reference: e.reference,
    }
}

pub fn postmortem_pb(p: &Postmortem, timeline: &[TimelineEntry]) -> pb::Postmortem {
    pb::Postmortem {
        release: p.release.clone(),
        business_unit: p.business_unit.clone(),
        summary: p.summary.clone(),
        factors: p
            .factors
            .iter()
            .map(|f| pb::ContributingFactor {
                kind: factor_kind_pb(f.kind) as i32,
                description: f.description.clone(),
            })
            .collect(),
        actions: p
            .actions
            .iter()
            .map(|a| pb::FollowUp {
                action: a.action.clone(),
                owner: a.owner.clone(),
                due: Some(ts(a.due)),
                done: a.done,
            })
            .collect(),
        services: p.services.clone(),
        recorded_by: p.by.clone(),
        recorded_at: Some(ts(p.at)),
        timeline: timeline.iter().map(entry_pb).collect(),
    }
}

/// A post-mortem as stored (a factor of a kind unknown here reads as a process factor).
pub fn postmortem_of(p: pb::Postmortem) -> Postmortem {
    Postmortem {
        release: p.release,
        business_unit: p.business_unit,
        summary: p.summary,
        factors: p
            .factors
            .into_iter()
            .map(|f| ContributingFactor {
                kind: factor_kind_of(f.kind).unwrap_or(FactorKind::Process),
                description: f.description,
            })
            .collect(),
        actions: p
            .actions
            .into_iter()
            .map(|a| FollowUp {
                action: a.action,
                owner: a.owner,
                due: stored(a.due.as_ref()),
                done: a.done,
            })
            .collect(),
        services: p.services,
        by: p.recorded_by,
        at: stored(p.recorded_at.as_ref()),
    }
}

pub fn comparison_pb(c: Comparison) -> pb::Comparison {
    match c {
        Comparison::Above => pb::Comparison::Above,
        Comparison::Below => pb::Comparison::Below,
    }
}

/// A comparison as given or stored; unset reads as ABOVE (error rates and latencies).
pub fn comparison_of(v: i32) -> Comparison {
    match pb::Comparison::try_from(v) {
        Ok(pb::Comparison::Below) => Comparison::Below,
        _ => Comparison::Above,
    }
}

pub fn check_pb(c: &HealthCheck) -> pb::HealthCheck {
    pb::HealthCheck {
        name: c.name.clone(),
        service: c.service.clone(),
        environment: c.environment.clone(),
        business_unit: c.business_unit.clone(),
        promql: c.promql.clone(),
        comparison: comparison_pb(c.comparison) as i32,
        threshold: c.threshold,
        skip_nan: c.skip_nan,
        description: c.description.clone(),
    }
}

pub fn check_of(c: pb::HealthCheck) -> HealthCheck {
    HealthCheck {
        name: c.name,
        service: c.service,
        environment: c.environment,
        business_unit: c.business_unit,
        promql: c.promql,
        comparison: comparison_of(c.comparison),
        threshold: c.threshold,
        skip_nan: c.skip_nan,
        description: c.description,
    }
}

fn threshold_pb(t: &Threshold) -> pb::Threshold {
    pb::Threshold {
        metric: t.metric.clone(),
        comparison: comparison_pb(t.comparison) as i32,
        threshold: t.threshold,
    }
}

fn threshold_of(t: pb::Threshold) -> Threshold {
    Threshold {
        metric: t.metric,
        comparison: comparison_of(t.comparison),
        threshold: t.threshold,
    }
}

pub fn policy_pb(p: &WatchPolicy) -> pb::WatchPolicy {
    pb::WatchPolicy {
        tiers: p
            .tiers
            .iter()
            .map(|t| pb::TierWatch {
                tier: u32::from(t.tier),
                window_minutes: t.window_minutes,
                thresholds: t.thresholds.iter().map(threshold_pb).collect(),
            })
            .collect(),
    }
}

pub fn policy_of(p: pb::WatchPolicy) -> WatchPolicy {
    WatchPolicy {
        tiers: p
            .tiers
            .into_iter()
            .map(|t| TierWatch {
                tier: u8::try_from(t.tier).unwrap_or(u8::MAX),
                window_minutes: t.window_minutes,
                thresholds: t.thresholds.into_iter().map(threshold_of).collect(),
            })
            .collect(),
    }
}

pub fn status_pb(s: WatchStatus) -> pb::WatchStatus {
    match s {
        WatchStatus::Open => pb::WatchStatus::Open,
        WatchStatus::Breached => pb::WatchStatus::Breached,
        WatchStatus::Healthy => pb::WatchStatus::Healthy,
        WatchStatus::NoData => pb::WatchStatus::NoData,
        WatchStatus::Superseded => pb::WatchStatus::Superseded,
        WatchStatus::RolledBack => pb::WatchStatus::RolledBack,
    }
}

/// A stored status; one this build does not know reads as no data (never a pass).
pub fn status_of(v: i32) -> WatchStatus {
    match pb::WatchStatus::try_from(v) {
        Ok(pb::WatchStatus::Open) => WatchStatus::Open,
        Ok(pb::WatchStatus::Breached) => WatchStatus::Breached,
        Ok(pb::WatchStatus::Healthy) => WatchStatus::Healthy,
        Ok(pb::WatchStatus::Superseded) => WatchStatus::Superseded,
        Ok(pb::WatchStatus::RolledBack) => WatchStatus::RolledBack,
        _ => WatchStatus::NoData,
    }
}

fn uuid_of(field: &str, s: &str) -> Result<uuid::Uuid, String> {
    s.parse()
        .map_err(|_| format!("{field} {:?} is not a uuid", names::shown(s)))
}

fn optional_uuid(field: &str, s: &str) -> Result<Option<uuid::Uuid>, String> {
    if s.is_empty() {
        Ok(None)
    } else {
        uuid_of(field, s).map(Some)
    }
}

pub fn watch_pb(w: &Watch) -> pb::Watch {
    pb::Watch {
        watch_id: w.id.to_string(),
        deployment_id: w.deployment.clone(),
        release: w.release.clone(),
        service: w.service.clone(),
        version: w.version.clone(),
        environment: w.environment.clone(),
        business_unit: w.business_unit.clone(),
        criticality_tier: u32::from(w.tier),
        opened_at: Some(ts(w.opened_at)),
        closes_at: Some(ts(w.closes_at)),
        thresholds: w.thresholds.iter().map(threshold_pb).collect(),
        status: status_pb(w.status) as i32,
        coverage: w
            .coverage
            .iter()
            .map(|(m, c)| pb::MetricCoverage {
                metric: m.clone(),
                samples: c.samples,
                worst: c.worst,
                last_at: Some(ts(c.last_at)),
            })
            .collect(),
        breach_id: w.breach.map(|b| b.to_string()).unwrap_or_default(),
        rollback_request_id: w
            .rollback_request
            .map(|b| b.to_string())
            .unwrap_or_default(),
        closed_at: w.closed_at.map(ts),
    }
}

pub fn watch_of(w: pb::Watch) -> Result<Watch, String> {
    Ok(Watch {
        id: uuid_of("watch_id", &w.watch_id)?,
        deployment: w.deployment_id,
        release: w.release,
        service: w.service,
        version: w.version,
        environment: w.environment,
        business_unit: w.business_unit,
        tier: u8::try_from(w.criticality_tier).unwrap_or(u8::MAX),
        opened_at: stored(w.opened_at.as_ref()),
        closes_at: stored(w.closes_at.as_ref()),
        thresholds: w.thresholds.into_iter().map(threshold_of).collect(),
        status: status_of(w.status),
        coverage: w
            .coverage
            .into_iter()
            .map(|c| {
                (
                    c.metric,
                    Coverage {
                        samples: c.samples,
                        worst: c.worst,
                        last_at: stored(c.last_at.as_ref()),
                    },
                )
            })
            .collect(),
        breach: optional_uuid("breach_id", &w.breach_id)?,
        rollback_request: optional_uuid("rollback_request_id", &w.rollback_request_id)?,
        closed_at: w.closed_at.as_ref().map(|t| stored(Some(t))),
    })
}

pub fn sample_pb(s: &Sample) -> pb::Sample {
    pb::Sample {
        at: Some(ts(s.at)),
        value: s.value,
    }
}

pub fn breach_pb(b: &Breach) -> pb::RollbackThresholdBreached {
    pb::RollbackThresholdBreached {
        breach_id: b.id.to_string(),
        release: b.release.clone(),
        environment: b.environment.clone(),
        service: b.service.clone(),
        business_unit: b.business_unit.clone(),
        criticality_tier: u32::from(b.tier),
        metric: b.metric.clone(),
        observed: b.observed,
        threshold: b.threshold,
        observed_at: Some(ts(b.observed_at)),
        deployment_id: b.deployment.clone(),
        watch_id: b.watch.to_string(),
        comparison: comparison_pb(b.comparison) as i32,
        evidence: b.evidence.iter().map(sample_pb).collect(),
    }
}

pub fn breach_of(b: pb::RollbackThresholdBreached) -> Result<Breach, String> {
    Ok(Breach {
        id: uuid_of("breach_id", &b.breach_id)?,
        watch: uuid_of("watch_id", &b.watch_id)?,
        deployment: b.deployment_id,
        release: b.release,
        environment: b.environment,
        service: b.service,
        business_unit: b.business_unit,
        tier: u8::try_from(b.criticality_tier).unwrap_or(u8::MAX),
        metric: b.metric,
        comparison: comparison_of(b.comparison),
        observed: b.observed,
        threshold: b.threshold,
        observed_at: stored(b.observed_at.as_ref()),
        evidence: b
            .evidence
            .into_iter()
            .map(|s| Sample {
                at: stored(s.at.as_ref()),
                value: s.value,
            })
            .collect(),
    })
}

pub fn request_pb(r: &RollbackRequest) -> pb::RollbackRequested {
    pb::RollbackRequested {
        request_id: r.id.to_string(),
        release: r.release.clone(),
        environment: r.environment.clone(),
        reason: r.reason.clone(),
        requested_at: Some(ts(r.at)),
        breach_id: r.breach.to_string(),
        watch_id: r.watch.to_string(),
    }
}

pub fn request_of(r: pb::RollbackRequested) -> Result<RollbackRequest, String> {
    Ok(RollbackRequest {
        id: uuid_of("request_id", &r.request_id)?,
        release: r.release,
        environment: r.environment,
        reason: r.reason,
        breach: uuid_of("breach_id", &r.breach_id)?,
        watch: uuid_of("watch_id", &r.watch_id)?,
        at: stored(r.requested_at.as_ref()),
    })
}
