//! The canary judge, as Kayenta's NetflixACAJudge judges: each metric's experiment (canary)
//! samples against its control (baseline) samples, cleaned (NaN strategy, outliers) and
//! classified by a Mann-Whitney test with a Hodges-Lehmann interval and an effect size
//! (`classifier`); the labels scored per metric group, weighted into 0-100, and the score
//! classified against the pass and marginal thresholds (`scorer`). A marginal judgement is not
//! a pass: orchestration pauses for a person.

mod classifier;
mod preprocess;
mod scorer;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use classifier::classify;
pub use preprocess::{NanStrategy, clean};
pub use scorer::score;

/// Which way a metric may not move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Direction {
    Increase,
    Decrease,
    Either,
}

/// How the size of a difference is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EffectMeasure {
    /// mean(experiment) / mean(control).
    MeanRatio,
    /// Common-language effect size: P(experiment value > control value).
    Cles,
}

/// A difference counts only when its effect size passes the allowed bound, and fails a critical
/// metric only past the critical bound.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectSize {
    pub measure: EffectMeasure,
    pub allowed_increase: f64,
    pub allowed_decrease: f64,
    pub critical_increase: f64,
    pub critical_decrease: f64,
}

impl EffectSize {
    /// Kayenta's defaults: 1.0 for a mean ratio (any difference counts), 0.5 for CLES.
    pub fn default_for(measure: EffectMeasure) -> Self {
        let v = match measure {
            EffectMeasure::MeanRatio => 1.0,
            EffectMeasure::Cles => 0.5,
        };
        Self {
            measure,
            allowed_increase: v,
            allowed_decrease: v,
            critical_increase: v,
            critical_decrease: v,
        }
    }
}

/// How one metric is judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricConfig {
    pub name: String,
    pub groups: Vec<String>,
    pub direction: Direction,
    pub nan_strategy: NanStrategy,
    /// Remove outliers (IQR fences at this factor, Kayenta's default 3.0); None keeps them.
    pub outlier_factor: Option<f64>,
    pub effect: EffectSize,
    /// A failure of this metric fails the whole judgement.
    pub critical: bool,
    /// No data for this metric fails it (rather than leaving it out).
    pub must_have_data: bool,
    /// Shown, not scored.
    pub muted: bool,
}

/// The judge's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeConfig {
    pub metrics: Vec<MetricConfig>,
    /// Weights (percent) by group; groups without one share what is left.
    pub group_weights: BTreeMap<String, f64>,
    pub pass_threshold: f64,
    pub marginal_threshold: f64,
    /// Of the Hodges-Lehmann interval (Kayenta's judge: 0.98).
    pub confidence: f64,
    /// A shift smaller than this fraction of the estimate does not count (Kayenta: 0.25).
    pub tolerance: f64,
}

/// What a metric came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricLabel {
    Pass,
    High,
    Low,
    Nodata,
    /// No data, and the metric must have data: counts as a failure.
    NodataFailMetric,
    /// The samples could not be classified (the reason says why).
    Error,
}

impl MetricLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricLabel::Pass => "Pass",
            MetricLabel::High => "High",
            MetricLabel::Low => "Low",
            MetricLabel::Nodata => "Nodata",
            MetricLabel::NodataFailMetric => "NodataFailMetric",
            MetricLabel::Error => "Error",
        }
    }
}

/// One metric's classification, with the evidence for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricResult {
    pub name: String,
    pub groups: Vec<String>,
    pub label: MetricLabel,
    /// It failed as a critical metric (the whole judgement fails).
    pub critical_failure: bool,
    pub muted: bool,
    pub reason: String,
    /// Hodges-Lehmann shift of experiment from control and its interval.
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    /// mean(experiment) / mean(control) (NaN when a mean is 0).
    pub mean_ratio: f64,
    pub effect_size: f64,
    pub experiment_count: usize,
    pub control_count: usize,
}

/// The judgement's classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JudgementLabel {
    Pass,
    /// Between the marginal and pass thresholds: a person decides; never a pass.
    Marginal,
    Fail,
}

impl JudgementLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            JudgementLabel::Pass => "Pass",
            JudgementLabel::Marginal => "Marginal",
            JudgementLabel::Fail => "Fail",
        }
    }
}

/// A canary judgement: the score, its label, why, and every metric's result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CanaryJudgement {
    pub score: f64,
    pub label: JudgementLabel,
    pub reason: String,
    pub group_scores: BTreeMap<String, f64>,
    pub metrics: Vec<MetricResult>,
}

/// A metric's samples: the experiment's (canary) and the control's (baseline).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSamples {
    pub name: String,
    pub experiment: Vec<f64>,
    pub control: Vec<f64>,
}

/// Judges the samples under the config. Metrics without samples have no data; samples of a
/// metric the config does not name are refused by the caller's validation, not here.
pub fn judge(config: &JudgeConfig, samples: &[MetricSamples]) -> CanaryJudgement {
    let results: Vec<MetricResult> = config
        .metrics
        .iter()
        .map(|m| {
            let s = samples.iter().find(|s| s.name == m.name);
            let (experiment, control) = s.map_or((&[][..], &[][..]), |s| {
                (s.experiment.as_slice(), s.control.as_slice())
            });
            classify(
                m,
                &clean(experiment, m.nan_strategy, m.outlier_factor),
                &clean(control, m.nan_strategy, m.outlier_factor),
                config.confidence,
                config.tolerance,
            )
        })
        .collect();
    score(config, results)
}
