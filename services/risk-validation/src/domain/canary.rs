//! Canary judgements as the service records them: a judge's config and samples for one
//! analysis of one deployment, judged here (purely) and recorded with every metric's result, so
//! the judgement replays as it was given, whatever later builds compute.

use flotilla_core::decider::Decision;
use flotilla_core::ids::StreamId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::judge::{CanaryJudgement, JudgeConfig, MetricSamples, judge};
use super::{DomainError, Event, Result, RiskValidation, Timestamp, invalid, name_error, names};

/// Most metrics one judgement weighs, and samples per metric and side.
pub const MAX_METRICS: usize = 200;
pub const MAX_SAMPLES: usize = 100_000;
/// Most samples one judgement takes in all (the judge sorts them at every root-finding step).
pub const MAX_TOTAL_SAMPLES: usize = 200_000;

/// A recorded judgement: what was asked, by whom, and what the judge said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judged {
    pub id: Uuid,
    /// Orchestration's deployment and the analysis step it answers.
    pub deployment: String,
    pub analysis: String,
    pub release: String,
    pub environment: String,
    pub business_unit: String,
    pub config: JudgeConfig,
    pub judgement: CanaryJudgement,
    /// Where samples were read from Prometheus, per metric (empty: all came by gRPC).
    pub sources: Vec<SampleSource>,
    pub by: String,
    pub at: Timestamp,
}

/// A metric's samples read from Prometheus: the canary's and the baseline's expressions over
/// one range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleSource {
    pub name: String,
    pub experiment_query: String,
    pub control_query: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub step_seconds: u32,
}

/// Judge these samples for this analysis.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeCanary {
    pub id: Uuid,
    pub deployment: String,
    pub analysis: String,
    pub release: String,
    pub environment: String,
    pub business_unit: String,
    pub config: JudgeConfig,
    pub samples: Vec<MetricSamples>,
    /// Where the edge read samples from Prometheus, kept with the judgement.
    pub sources: Vec<SampleSource>,
    pub by: String,
    pub at: Timestamp,
}

pub fn judgement_stream(id: Uuid) -> StreamId {
    StreamId::for_aggregate("canary-judgement", id)
}

impl RiskValidation {
    pub(super) fn judge_canary(&self, c: JudgeCanary) -> Result<Decision<Event>> {
        names::id("deployment_id", &c.deployment).map_err(name_error)?;
        names::id("analysis", &c.analysis).map_err(name_error)?;
        names::id("release", &c.release).map_err(name_error)?;
        names::label("environment", &c.environment).map_err(name_error)?;
        names::label("business_unit", &c.business_unit).map_err(name_error)?;
        check_config(&c.config)?;
        check_samples(&c.config, &c.samples)?;
        if self.judgements.contains_key(&c.id) {
            return Err(DomainError::AlreadyExists(format!(
                "canary judgement {}",
                c.id
            )));
        }
        let judgement = judge(&c.config, &c.samples);
        Ok(Decision::new(
            judgement_stream(c.id),
            vec![Event::CanaryJudged(Box::new(Judged {
                id: c.id,
                deployment: c.deployment,
                analysis: c.analysis,
                release: c.release,
                environment: c.environment,
                business_unit: c.business_unit,
                config: c.config,
                judgement,
                sources: c.sources,
                by: c.by,
                at: c.at,
            }))],
        ))
    }
}

fn check_config(c: &JudgeConfig) -> Result<()> {
    if c.metrics.is_empty() {
        return Err(invalid("config.metrics", "names no metric to judge"));
    }
    if c.metrics.len() > MAX_METRICS {
        return Err(invalid(
            "config.metrics",
            format!("at most {MAX_METRICS} metrics"),
        ));
    }
    for (i, m) in c.metrics.iter().enumerate() {
        let f = format!("config.metrics[{i}]");
        names::id(&format!("{f}.name"), &m.name).map_err(name_error)?;
        if c.metrics[..i].iter().any(|o| o.name == m.name) {
            return Err(invalid(&f, format!("metric {} is named twice", m.name)));
        }
        for g in &m.groups {
            names::id(&format!("{f}.groups"), g).map_err(name_error)?;
        }
        let e = &m.effect;
        for (name, v) in [
            ("allowed_increase", e.allowed_increase),
            ("allowed_decrease", e.allowed_decrease),
            ("critical_increase", e.critical_increase),
            ("critical_decrease", e.critical_decrease),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(invalid(
                    &format!("{f}.effect_size.{name}"),
                    "is not a finite number of at least 0",
                ));
            }
        }
        if let Some(o) = m.outlier_factor
            && !(o.is_finite() && o > 0.0)
        {
            return Err(invalid(&format!("{f}.outlier_factor"), "is not above 0"));
        }
    }
    for (g, w) in &c.group_weights {
        if !w.is_finite() || *w < 0.0 || *w > 100.0 {
            return Err(invalid(
                "config.group_weights",
                format!("{g}: {w} is not a percentage"),
            ));
        }
    }
    if c.group_weights.values().sum::<f64>() > 100.0 + 1e-9 {
        return Err(invalid("config.group_weights", "add up to more than 100"));
    }
    let pct = |v: f64| v.is_finite() && (0.0..=100.0).contains(&v);
    if !pct(c.pass_threshold) || !pct(c.marginal_threshold) {
        return Err(invalid(
            "config.pass_threshold",
            "thresholds are percentages (0-100)",
        ));
    }
    if c.marginal_threshold > c.pass_threshold {
        return Err(invalid(
            "config.marginal_threshold",
            format!(
                "{} is above the pass threshold {}",
                c.marginal_threshold, c.pass_threshold
            ),
        ));
    }
    if !(c.confidence > 0.0 && c.confidence < 1.0) {
        return Err(invalid("config.confidence", "is not between 0 and 1"));
    }
    if !(c.tolerance.is_finite() && c.tolerance >= 0.0) {
        return Err(invalid(
            "config.tolerance",
            "is not a finite number of at least 0",
        ));
    }
    Ok(())
}

fn check_samples(c: &JudgeConfig, samples: &[MetricSamples]) -> Result<()> {
    let total: usize = samples
        .iter()
        .map(|s| s.experiment.len() + s.control.len())
        .sum();
    if total > MAX_TOTAL_SAMPLES {
        return Err(invalid(
            "samples",
            format!("{total} samples in all; at most {MAX_TOTAL_SAMPLES}"),
        ));
    }
    for (i, s) in samples.iter().enumerate() {
        let f = format!("samples[{i}]");
        if !c.metrics.iter().any(|m| m.name == s.name) {
            return Err(invalid(
                &f,
                format!(
                    "metric {} is not in the judge's config",
                    names::shown(&s.name)
                ),
            ));
        }
        if samples[..i].iter().any(|o| o.name == s.name) {
            return Err(invalid(&f, format!("metric {} has samples twice", s.name)));
        }
        if s.experiment.len() > MAX_SAMPLES || s.control.len() > MAX_SAMPLES {
            return Err(invalid(
                &f,
                format!("at most {MAX_SAMPLES} samples per side"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use flotilla_core::decider::Decider;

    use crate::domain::Command;

    use super::*;
    use crate::domain::judge::*;

    fn command(config: JudgeConfig) -> Command {
        Command::JudgeCanary(JudgeCanary {
            id: Uuid::from_u128(1),
            deployment: "d1".into(),
            analysis: "canary-judge".into(),
            release: "r1".into(),
            environment: "prod".into(),
            business_unit: "payments".into(),
            config,
            samples: Vec::new(),
            sources: Vec::new(),
            by: "rita".into(),
            at: Timestamp(0),
        })
    }

    fn config() -> JudgeConfig {
        JudgeConfig {
            metrics: vec![MetricConfig {
                name: "latency".into(),
                groups: vec!["latency".into()],
                direction: Direction::Either,
                nan_strategy: NanStrategy::Remove,
                outlier_factor: None,
                effect: EffectSize::default_for(EffectMeasure::MeanRatio),
                critical: false,
                must_have_data: false,
                muted: false,
            }],
            group_weights: BTreeMap::new(),
            pass_threshold: 75.0,
            marginal_threshold: 50.0,
            confidence: 0.98,
            tolerance: 0.25,
        }
    }

    fn refused(c: JudgeConfig, field: &str) {
        match RiskValidation::default().decide(command(c)) {
            Err(DomainError::Invalid { field: f, .. }) => assert!(f.starts_with(field), "{f}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_config_that_cannot_judge_is_refused_naming_the_field() {
        let mut c = config();
        c.marginal_threshold = 80.0;
        refused(c, "config.marginal_threshold");
        let mut c = config();
        c.metrics.push(c.metrics[0].clone());
        refused(c, "config.metrics[1]");
        let mut c = config();
        c.confidence = 1.0;
        refused(c, "config.confidence");
        let mut c = config();
        c.group_weights.insert("latency".into(), 120.0);
        refused(c, "config.group_weights");
        refused(
            JudgeConfig {
                metrics: Vec::new(),
                ..config()
            },
            "config.metrics",
        );
    }

    #[test]
    fn a_judgement_without_samples_has_no_data_and_is_no_pass() {
        let d = RiskValidation::default()
            .decide(command(config()))
            .expect("judged");
        let Event::CanaryJudged(j) = &d.events[0] else {
            panic!("{:?}", d.events)
        };
        assert_eq!(j.judgement.metrics[0].label, MetricLabel::Nodata);
        assert_eq!(j.judgement.label, JudgementLabel::Fail);
    }
}
