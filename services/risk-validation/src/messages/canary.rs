//! Judgements as API messages and back. Turning a message into domain values applies only the
//! defaults the API documents (thresholds 75 / 50, confidence 0.98, tolerance 0.25, Kayenta's
//! effect-size bounds); the rules are the domain's, so a stored judgement decodes as recorded.

use flotilla_proto::risk::v1 as pb;

use crate::domain::judge::*;
use crate::domain::*;

pub use flotilla_runtime::kit::time::to_proto as ts;

fn or(v: f64, default: f64) -> f64 {
    if v == 0.0 { default } else { v }
}

pub fn config_of(c: pb::JudgeConfig) -> JudgeConfig {
    JudgeConfig {
        metrics: c
            .metrics
            .into_iter()
            .map(|m| {
                let e = m.effect_size.unwrap_or_default();
                let measure = match pb::EffectMeasure::try_from(e.measure) {
                    Ok(pb::EffectMeasure::Cles) => EffectMeasure::Cles,
                    _ => EffectMeasure::MeanRatio,
                };
                let d = EffectSize::default_for(measure);
                MetricConfig {
                    groups: if m.groups.is_empty() {
                        vec![m.name.clone()]
                    } else {
                        m.groups
                    },
                    name: m.name,
                    direction: match pb::Direction::try_from(m.direction) {
                        Ok(pb::Direction::Increase) => Direction::Increase,
                        Ok(pb::Direction::Decrease) => Direction::Decrease,
                        _ => Direction::Either,
                    },
                    nan_strategy: match pb::NanStrategy::try_from(m.nan_strategy) {
                        Ok(pb::NanStrategy::Replace) => NanStrategy::Replace,
                        _ => NanStrategy::Remove,
                    },
                    outlier_factor: (m.outlier_factor != 0.0).then_some(m.outlier_factor),
                    effect: EffectSize {
                        measure,
                        allowed_increase: or(e.allowed_increase, d.allowed_increase),
                        allowed_decrease: or(e.allowed_decrease, d.allowed_decrease),
                        critical_increase: or(e.critical_increase, d.critical_increase),
                        critical_decrease: or(e.critical_decrease, d.critical_decrease),
                    },
                    critical: m.critical,
                    must_have_data: m.must_have_data,
                    muted: m.muted,
                }
            })
            .collect(),
        group_weights: c.group_weights,
        pass_threshold: or(c.pass_threshold, 75.0),
        marginal_threshold: or(c.marginal_threshold, 50.0),
        confidence: or(c.confidence, 0.98),
        tolerance: or(c.tolerance, 0.25),
    }
}

pub fn config_pb(c: &JudgeConfig) -> pb::JudgeConfig {
    pb::JudgeConfig {
        metrics: c
            .metrics
            .iter()
            .map(|m| pb::MetricConfig {
                name: m.name.clone(),
                groups: m.groups.clone(),
                direction: match m.direction {
                    Direction::Either => pb::Direction::Either,
                    Direction::Increase => pb::Direction::Increase,
                    Direction::Decrease => pb::Direction::Decrease,
                } as i32,
                nan_strategy: match m.nan_strategy {
                    NanStrategy::Remove => pb::NanStrategy::Remove,
                    NanStrategy::Replace => pb::NanStrategy::Replace,
                } as i32,
                outlier_factor: m.outlier_factor.unwrap_or(0.0),
                effect_size: Some(pb::EffectSize {
                    measure: match m.effect.measure {
                        EffectMeasure::MeanRatio => pb::EffectMeasure::MeanRatio,
                        EffectMeasure::Cles => pb::EffectMeasure::Cles,
                    } as i32,
                    allowed_increase: m.effect.allowed_increase,
                    allowed_decrease: m.effect.allowed_decrease,
                    critical_increase: m.effect.critical_increase,
                    critical_decrease: m.effect.critical_decrease,
                }),
                critical: m.critical,
                must_have_data: m.must_have_data,
                muted: m.muted,
            })
            .collect(),
        group_weights: c.group_weights.clone(),
        pass_threshold: c.pass_threshold,
        marginal_threshold: c.marginal_threshold,
        confidence: c.confidence,
        tolerance: c.tolerance,
    }
}

fn metric_label_pb(l: MetricLabel) -> pb::MetricLabel {
    match l {
        MetricLabel::Pass => pb::MetricLabel::Pass,
        MetricLabel::High => pb::MetricLabel::High,
        MetricLabel::Low => pb::MetricLabel::Low,
        MetricLabel::Nodata => pb::MetricLabel::Nodata,
        MetricLabel::NodataFailMetric => pb::MetricLabel::NodataFailMetric,
        MetricLabel::Error => pb::MetricLabel::Error,
    }
}

fn metric_label_of(l: i32) -> MetricLabel {
    match pb::MetricLabel::try_from(l) {
        Ok(pb::MetricLabel::Pass) => MetricLabel::Pass,
        Ok(pb::MetricLabel::High) => MetricLabel::High,
        Ok(pb::MetricLabel::Low) => MetricLabel::Low,
        Ok(pb::MetricLabel::Nodata) => MetricLabel::Nodata,
        Ok(pb::MetricLabel::NodataFailMetric) => MetricLabel::NodataFailMetric,
        _ => MetricLabel::Error,
    }
}

pub fn label_pb(l: JudgementLabel) -> pb::JudgementLabel {
    match l {
        JudgementLabel::Pass => pb::JudgementLabel::Pass,
        JudgementLabel::Marginal => pb::JudgementLabel::Marginal,
        JudgementLabel::Fail => pb::JudgementLabel::Fail,
    }
}

pub fn judged_pb(j: &Judged) -> pb::CanaryJudgement {
    let g = &j.judgement;
    pb::CanaryJudgement {
        judgement_id: j.id.to_string(),
        deployment_id: j.deployment.clone(),
        analysis: j.analysis.clone(),
        release: j.release.clone(),
        environment: j.environment.clone(),
        business_unit: j.business_unit.clone(),
        score: g.score,
        label: label_pb(g.label) as i32,
        reason: g.reason.clone(),
        group_scores: g.group_scores.clone(),
        metrics: g
            .metrics
            .iter()
            .map(|m| pb::MetricResult {
                name: m.name.clone(),
                groups: m.groups.clone(),
                label: metric_label_pb(m.label) as i32,
                critical_failure: m.critical_failure,
                muted: m.muted,
                reason: m.reason.clone(),
                estimate: m.estimate,
                lower: m.lower,
                upper: m.upper,
                mean_ratio: m.mean_ratio,
                effect_size: m.effect_size,
                experiment_count: m.experiment_count as u32,
                control_count: m.control_count as u32,
            })
            .collect(),
        config: Some(config_pb(&j.config)),
        judged_by: j.by.clone(),
        judged_at: Some(ts(j.at)),
        sources: j.sources.iter().map(source_pb).collect(),
    }
}

pub fn source_pb(s: &SampleSource) -> pb::PrometheusRange {
    pb::PrometheusRange {
        name: s.name.clone(),
        experiment_query: s.experiment_query.clone(),
        control_query: s.control_query.clone(),
        start: Some(ts(s.start)),
        end: Some(ts(s.end)),
        step_seconds: s.step_seconds,
    }
}

pub fn source_of(s: pb::PrometheusRange) -> SampleSource {
    SampleSource {
        name: s.name,
        experiment_query: s.experiment_query,
        control_query: s.control_query,
        start: flotilla_runtime::kit::time::stored(s.start.as_ref()),
        end: flotilla_runtime::kit::time::stored(s.end.as_ref()),
        step_seconds: s.step_seconds,
    }
}

/// A judgement as it was recorded (no rule applies; an unknown label reads as the safe one:
/// a metric `Error`, a judgement `Fail`).
pub fn judged_of(p: pb::CanaryJudgement) -> Result<Judged, String> {
    Ok(Judged {
        id: p
            .judgement_id
            .parse()
            .map_err(|_| format!("judgement_id {:?} is not a uuid", p.judgement_id))?,
        deployment: p.deployment_id,
        analysis: p.analysis,
        release: p.release,
        environment: p.environment,
        business_unit: p.business_unit,
        config: config_of(p.config.unwrap_or_default()),
        judgement: CanaryJudgement {
            score: p.score,
            label: match pb::JudgementLabel::try_from(p.label) {
                Ok(pb::JudgementLabel::Pass) => JudgementLabel::Pass,
                Ok(pb::JudgementLabel::Marginal) => JudgementLabel::Marginal,
                _ => JudgementLabel::Fail,
            },
            reason: p.reason,
            group_scores: p.group_scores,
            metrics: p
                .metrics
                .into_iter()
                .map(|m| MetricResult {
                    name: m.name,
                    groups: m.groups,
                    label: metric_label_of(m.label),
                    critical_failure: m.critical_failure,
                    muted: m.muted,
                    reason: m.reason,
                    estimate: m.estimate,
                    lower: m.lower,
                    upper: m.upper,
                    mean_ratio: m.mean_ratio,
                    effect_size: m.effect_size,
                    experiment_count: m.experiment_count as usize,
                    control_count: m.control_count as usize,
                })
                .collect(),
        },
        sources: p.sources.into_iter().map(source_of).collect(),
        by: p.judged_by,
        at: flotilla_runtime::kit::time::stored(p.judged_at.as_ref()),
    })
}
