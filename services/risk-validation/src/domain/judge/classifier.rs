//! One metric classified, in the order Kayenta's Mann-Whitney classifier decides: no data
//! (Nodata, or NodataFailMetric when the metric must have data), identical samples (Pass), then
//! the Hodges-Lehmann interval of experiment minus control against the tolerance around the
//! estimate, in the metric's direction, with its effect size past the allowed bound (High or
//! Low), and past the critical bound a critical failure.

use super::{Direction, EffectMeasure, MetricConfig, MetricLabel, MetricResult, NanStrategy};
use crate::domain::stats::{self, ShiftEstimate, shift_estimate};

/// Classifies cleaned samples of one metric.
pub fn classify(
    m: &MetricConfig,
    experiment: &[f64],
    control: &[f64],
    confidence: f64,
    tolerance: f64,
) -> MetricResult {
    let mut r = MetricResult {
        name: m.name.clone(),
        groups: m.groups.clone(),
        label: MetricLabel::Pass,
        critical_failure: false,
        muted: m.muted,
        reason: String::new(),
        estimate: f64::NAN,
        lower: f64::NAN,
        upper: f64::NAN,
        mean_ratio: f64::NAN,
        effect_size: f64::NAN,
        experiment_count: experiment.len(),
        control_count: control.len(),
    };
    if experiment.is_empty() || control.is_empty() {
        let missing = match (experiment.is_empty(), control.is_empty()) {
            (true, true) => "experiment and control",
            (true, false) => "experiment",
            _ => "control",
        };
        r.mean_ratio = 1.0;
        // Kayenta passes a metric without data under Replace; a metric that must have data, or
        // a critical one, is not passed on nothing.
        if m.nan_strategy == NanStrategy::Replace && !m.must_have_data && !m.critical {
            r.reason = format!("no {missing} data; missing values count as 0");
            return r;
        }
        if m.must_have_data && !m.critical {
            r.label = MetricLabel::NodataFailMetric;
            r.reason = format!("no {missing} data, and the metric must have data");
        } else {
            r.label = MetricLabel::Nodata;
            r.critical_failure = m.critical;
            r.reason = format!("no {missing} data");
        }
        return r;
    }
    let mut e = experiment.to_vec();
    let mut c = control.to_vec();
    e.sort_by(f64::total_cmp);
    c.sort_by(f64::total_cmp);
    r.mean_ratio = mean(&e) / mean(&c);
    if !r.mean_ratio.is_finite() {
        r.mean_ratio = f64::NAN;
    }
    if e == c {
        r.mean_ratio = 1.0;
        r.reason = "experiment and control are identical".into();
        return r;
    }
    let constant = |s: &[f64]| s.first() == s.last();
    let shift = if constant(&e) && constant(&c) {
        // Two constant samples: the shift is known exactly (Kayenta jitters them instead).
        let d = e[0] - c[0];
        ShiftEstimate {
            estimate: d,
            lower: d,
            upper: d,
        }
    } else {
        match shift_estimate(&e, &c, confidence) {
            Ok(s) => s,
            Err(err) => {
                r.label = MetricLabel::Error;
                r.reason = format!("metric classification failed: {err}");
                return r;
            }
        }
    };
    r.estimate = shift.estimate;
    r.lower = shift.lower;
    r.upper = shift.upper;
    r.effect_size = match m.effect.measure {
        EffectMeasure::MeanRatio => r.mean_ratio,
        EffectMeasure::Cles => cles(&e, &c),
    };
    let bound = tolerance * shift.estimate.abs();
    let effect = r.effect_size;
    let up = matches!(m.direction, Direction::Increase | Direction::Either);
    let down = matches!(m.direction, Direction::Decrease | Direction::Either);
    if up && shift.lower > bound && (effect.is_nan() || effect >= m.effect.allowed_increase) {
        r.label = MetricLabel::High;
        r.critical_failure =
            m.critical && (effect.is_nan() || effect >= m.effect.critical_increase);
    } else if down
        && shift.upper < -bound
        && (effect.is_nan() || effect <= m.effect.allowed_decrease)
    {
        r.label = MetricLabel::Low;
        r.critical_failure =
            m.critical && (effect.is_nan() || effect <= m.effect.critical_decrease);
    }
    r.reason = format!(
        "shift {:.6} in [{:.6}, {:.6}] at {:.0}% confidence, {} {:.4}",
        shift.estimate,
        shift.lower,
        shift.upper,
        confidence * 100.0,
        match m.effect.measure {
            EffectMeasure::MeanRatio => "mean ratio",
            EffectMeasure::Cles => "CLES",
        },
        effect
    );
    r
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// P(experiment value > control value), ties counted half: U1 / (m n).
fn cles(experiment: &[f64], control: &[f64]) -> f64 {
    let all: Vec<f64> = experiment.iter().chain(control).copied().collect();
    let (ranks, _) = stats::mid_ranks(&all);
    let (m, n) = (experiment.len(), control.len());
    stats::u_of_first(&ranks, m, n) / (m * n) as f64
}

#[cfg(test)]
mod tests {
    use super::super::EffectSize;
    use super::*;

    fn metric(direction: Direction, effect: EffectSize, critical: bool) -> MetricConfig {
        MetricConfig {
            name: "latency".into(),
            groups: vec!["latency".into()],
            direction,
            nan_strategy: NanStrategy::Remove,
            outlier_factor: None,
            effect,
            critical,
            must_have_data: false,
            muted: false,
        }
    }

    fn ratio(allowed: (f64, f64), critical: (f64, f64)) -> EffectSize {
        EffectSize {
            measure: EffectMeasure::MeanRatio,
            allowed_decrease: allowed.0,
            allowed_increase: allowed.1,
            critical_decrease: critical.0,
            critical_increase: critical.1,
        }
    }

    /// Kayenta's ClassifierSuite (tolerance 0.10, confidence 0.95 unless it says otherwise).
    fn run(m: &MetricConfig, e: &[f64], c: &[f64]) -> MetricResult {
        classify(m, e, c, 0.95, 0.10)
    }

    const HIGH_E: [f64; 5] = [20.0, 22.0, 21.0, 25.0, 30.0];
    const HIGH_C: [f64; 5] = [1.0, 2.2, 1.1, 2.5, 3.0];

    #[test]
    fn mean_ratio_thresholds_and_critical_bounds() {
        let m = metric(Direction::Either, ratio((0.8, 1.2), (1.0, 1.0)), false);
        let r = run(&m, &HIGH_E, &HIGH_C);
        assert_eq!(r.label, MetricLabel::High, "{r:?}");
        assert!((r.mean_ratio - 12.04).abs() < 0.01, "{}", r.mean_ratio);
        let m = metric(Direction::Either, ratio((0.5, 1.0), (1.0, 1.0)), false);
        let r = run(
            &m,
            &[10.0, 12.2, 10.1, 12.5, 23.0],
            &[20.0, 22.0, 21.0, 25.0, 30.0],
        );
        assert_eq!(r.label, MetricLabel::Pass, "{r:?}");
        let critical = |allowed, crit| metric(Direction::Either, ratio(allowed, crit), true);
        let r = run(&critical((1.0, 1.0), (1.0, 1.2)), &HIGH_E, &HIGH_C);
        assert_eq!((r.label, r.critical_failure), (MetricLabel::High, true));
        let r = run(&critical((1.0, 5.0), (1.0, 13.0)), &HIGH_E, &HIGH_C);
        assert_eq!((r.label, r.critical_failure), (MetricLabel::High, false));
        let r = run(&critical((1.0, 13.0), (1.0, 15.0)), &HIGH_E, &HIGH_C);
        assert_eq!((r.label, r.critical_failure), (MetricLabel::Pass, false));
        let r = run(
            &critical((1.0, 1.0), (1.2, 1.0)),
            &[2.0, 2.0, 2.0, 2.0, 3.0],
            &[10.0, 20.2, 10.1, 20.5, 30.0],
        );
        assert_eq!((r.label, r.critical_failure), (MetricLabel::Low, true));
    }

    #[test]
    fn direction_blocks_the_other_way() {
        let up = metric(
            Direction::Increase,
            EffectSize::default_for(EffectMeasure::MeanRatio),
            false,
        );
        let r = run(&up, &HIGH_C, &HIGH_E);
        assert_eq!(
            r.label,
            MetricLabel::Pass,
            "a decrease is fine when only increases count"
        );
        assert_eq!(run(&up, &HIGH_E, &HIGH_C).label, MetricLabel::High);
    }

    #[test]
    fn ties_constants_and_missing_data() {
        let m = metric(
            Direction::Either,
            EffectSize::default_for(EffectMeasure::MeanRatio),
            false,
        );
        assert_eq!(
            run(&m, &[1.0, 1.0, 1.0], &[1.0, 1.0]).label,
            MetricLabel::Pass
        );
        let up: Vec<f64> = (1..=5).map(f64::from).collect();
        let down: Vec<f64> = up.iter().rev().copied().collect();
        assert_eq!(run(&m, &up, &down).label, MetricLabel::Pass);
        assert_eq!(
            run(&m, &[0.0, 1.0, 1.0, 1.0, 1.0], &[1.0; 5]).label,
            MetricLabel::Pass
        );
        assert_eq!(
            run(&m, &[1.0, 1.0, 1.0, 1.0, 10.0], &[1.0; 5]).label,
            MetricLabel::Pass
        );
        assert_eq!(run(&m, &[10.0; 5], &[1.0; 5]).label, MetricLabel::High);
        let r = run(&m, &[10.0; 5], &[0.0; 5]);
        assert_eq!(r.label, MetricLabel::High);
        assert!(r.mean_ratio.is_nan(), "a zero control mean has no ratio");
        let r = run(&m, &[54.9, 54.5, 55.1, 55.6, 57.4], &[0.0; 5]);
        assert_eq!(r.label, MetricLabel::High);
        let r = run(&m, &[0.0; 5], &[54.9, 54.5, 55.1, 55.6, 57.4]);
        assert_eq!(r.label, MetricLabel::Low);
        assert_eq!(run(&m, &[0.0; 5], &[0.0; 5]).label, MetricLabel::Pass);

        assert_eq!(run(&m, &[], &[1.0]).label, MetricLabel::Nodata);
        let crit = metric(Direction::Either, m.effect, true);
        let r = run(&crit, &[], &[1.0]);
        assert_eq!((r.label, r.critical_failure), (MetricLabel::Nodata, true));
        let must = MetricConfig {
            must_have_data: true,
            ..m.clone()
        };
        assert_eq!(run(&must, &[], &[1.0]).label, MetricLabel::NodataFailMetric);
        let replace = MetricConfig {
            nan_strategy: NanStrategy::Replace,
            ..m.clone()
        };
        assert_eq!(run(&replace, &[], &[1.0]).label, MetricLabel::Pass);
        let replace_must = MetricConfig {
            must_have_data: true,
            ..replace.clone()
        };
        assert_eq!(
            run(&replace_must, &[], &[1.0]).label,
            MetricLabel::NodataFailMetric,
            "nothing is not a pass for a metric that must have data"
        );
        assert!(!run(&m, &[], &[]).reason.is_empty());
    }
}
