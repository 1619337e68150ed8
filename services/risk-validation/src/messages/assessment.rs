//! Assessments, weights and noted facts as messages.

use flotilla_proto::risk::v1 as pb;
use flotilla_runtime::kit::time::stored;

use super::{stored_uuid, ts};
use crate::domain::*;

pub fn assessed_pb(a: &Assessment) -> pb::RiskAssessed {
    pb::RiskAssessed {
        assessment_id: a.id.to_string(),
        release: a.release.clone(),
        version: a.version.clone(),
        environment: a.environment.clone(),
        service: a.service.clone(),
        business_unit: a.business_unit.clone(),
        criticality_tier: u32::from(a.tier),
        risk_score: u32::from(a.score),
        handles_personal_data: a.personal_data,
        author: a.author.clone(),
        committers: a.committers.clone(),
        assessed_at: Some(ts(a.at)),
        emergency: a.emergency,
        factors: a
            .factors
            .iter()
            .map(|f| pb::RiskFactor {
                name: f.name.clone(),
                value: f.value,
                share: f.share,
                weight: f.weight,
                points: f.points,
                explanation: f.explanation.clone(),
            })
            .collect(),
        weights_version: a.weights_version,
        supersedes: a.supersedes.map(|s| s.to_string()).unwrap_or_default(),
        release_id: a.release_id.clone(),
        cause: a.cause.clone(),
        impact: a.impact.clone(),
    }
}

pub fn assessed_of(p: pb::RiskAssessed) -> Result<Assessment, String> {
    Ok(Assessment {
        id: stored_uuid("assessment_id", &p.assessment_id)?,
        release_id: p.release_id,
        release: p.release,
        version: p.version,
        environment: p.environment,
        service: p.service,
        business_unit: p.business_unit,
        tier: u8::try_from(p.criticality_tier).unwrap_or(u8::MAX),
        score: u8::try_from(p.risk_score).unwrap_or(u8::MAX),
        personal_data: p.handles_personal_data,
        author: p.author,
        committers: p.committers,
        emergency: p.emergency,
        factors: p
            .factors
            .into_iter()
            .map(|f| RiskFactor {
                name: f.name,
                value: f.value,
                share: f.share,
                weight: f.weight,
                points: f.points,
                explanation: f.explanation,
            })
            .collect(),
        weights_version: p.weights_version,
        supersedes: if p.supersedes.is_empty() {
            None
        } else {
            Some(stored_uuid("supersedes", &p.supersedes)?)
        },
        impact: p.impact,
        cause: p.cause,
        at: stored(p.assessed_at.as_ref()),
    })
}

/// Weights from a message, with the documented defaults for the two numbers left 0 (90 days of
/// history, RPN threshold 100); the domain checks them.
pub fn weights_of(w: &pb::RiskWeights) -> RiskWeights {
    let d = RiskWeights::default();
    let or = |v: u32, default: u32| if v == 0 { default } else { v };
    RiskWeights {
        criticality_tier: w.criticality_tier,
        blast_radius: w.blast_radius,
        change_size: w.change_size,
        schema_changes: w.schema_changes,
        migrations: w.migrations,
        change_failure_rate: w.change_failure_rate,
        fmea_rpn: w.fmea_rpn,
        emergency: w.emergency,
        history_days: or(w.history_days, d.history_days),
        rpn_action_threshold: or(w.rpn_action_threshold, d.rpn_action_threshold),
    }
}

pub fn weights_pb(w: &RiskWeights) -> pb::RiskWeights {
    pb::RiskWeights {
        criticality_tier: w.criticality_tier,
        blast_radius: w.blast_radius,
        change_size: w.change_size,
        schema_changes: w.schema_changes,
        migrations: w.migrations,
        change_failure_rate: w.change_failure_rate,
        fmea_rpn: w.fmea_rpn,
        emergency: w.emergency,
        history_days: w.history_days,
        rpn_action_threshold: w.rpn_action_threshold,
    }
}

pub fn release_noted_pb(r: &NotedRelease) -> pb::ReleaseNoted {
    pb::ReleaseNoted {
        release_id: r.id.clone(),
        release: r.name.clone(),
        business_unit: r.business_unit.clone(),
        emergency: r.emergency,
        created_by: r.created_by.clone(),
        items: r
            .items
            .iter()
            .map(|i| pb::NotedItem {
                service: i.service.clone(),
                version: i.version.clone(),
                migrations: i.migrations,
                schema_changes: i.schema_changes,
            })
            .collect(),
        created_at: Some(ts(r.created_at)),
    }
}

pub fn release_noted_of(p: pb::ReleaseNoted) -> NotedRelease {
    NotedRelease {
        id: p.release_id,
        name: p.release,
        business_unit: p.business_unit,
        emergency: p.emergency,
        created_by: p.created_by,
        items: p
            .items
            .into_iter()
            .map(|i| NotedItem {
                service: i.service,
                version: i.version,
                migrations: i.migrations,
                schema_changes: i.schema_changes,
            })
            .collect(),
        created_at: stored(p.created_at.as_ref()),
    }
}

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
