//! Metric labels into a score, as Kayenta's weighted-sum scorer adds them: per group, the share
//! of scored metrics that passed (Nodata and Error are not scored; a group with none counts
//! fully); groups weighted (those without a weight share what the others leave); a critical
//! metric that did not pass, or half the metrics without data, forces 0; the score classified
//! against the pass and marginal thresholds.

use std::collections::BTreeMap;

use super::{CanaryJudgement, JudgeConfig, JudgementLabel, MetricLabel, MetricResult};

/// The judgement of classified metrics.
pub fn score(config: &JudgeConfig, metrics: Vec<MetricResult>) -> CanaryJudgement {
    let scored: Vec<&MetricResult> = metrics.iter().filter(|m| !m.muted).collect();
    let mut groups: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for m in &scored {
        for g in &m.groups {
            let (passed, total) = groups.entry(g.clone()).or_default();
            match m.label {
                MetricLabel::Pass => {
                    *passed += 1;
                    *total += 1;
                }
                MetricLabel::High | MetricLabel::Low | MetricLabel::NodataFailMetric => *total += 1,
                MetricLabel::Nodata | MetricLabel::Error => {}
            }
        }
    }
    let group_scores: BTreeMap<String, f64> = groups
        .iter()
        .map(|(g, (passed, total))| {
            let s = if *total == 0 {
                0.0
            } else {
                100.0 * *passed as f64 / *total as f64
            };
            (g.clone(), s)
        })
        .collect();
    let configured: f64 = config.group_weights.values().sum();
    let unweighted = groups
        .keys()
        .filter(|g| !config.group_weights.contains_key(*g))
        .count();
    let share = if unweighted == 0 {
        0.0
    } else {
        ((100.0 - configured) / unweighted as f64).max(0.0)
    };
    let weighted: f64 = groups
        .iter()
        .map(|(g, (_, total))| {
            let weight = config.group_weights.get(g).copied().unwrap_or(share);
            // A group with nothing scored counts fully: it says nothing against the canary.
            let effective = if *total == 0 { 100.0 } else { group_scores[g] };
            effective * weight / 100.0
        })
        .sum();
    let mut score = (weighted * 100.0).round() / 100.0;
    let failed_critical: Vec<&str> = scored
        .iter()
        .filter(|m| m.critical_failure)
        .map(|m| m.name.as_str())
        .collect();
    let nodata = scored
        .iter()
        .filter(|m| m.label == MetricLabel::Nodata)
        .count();
    let mut reason = String::new();
    if !failed_critical.is_empty() {
        score = 0.0;
        reason = format!(
            "canary failed: critical metric {} did not pass",
            failed_critical.join(", ")
        );
    } else if !scored.is_empty() && nodata * 2 >= scored.len() {
        score = 0.0;
        reason = format!("{nodata} of {} metrics have no data", scored.len());
    }
    let label = if score >= config.pass_threshold {
        JudgementLabel::Pass
    } else if score >= config.marginal_threshold {
        JudgementLabel::Marginal
    } else {
        JudgementLabel::Fail
    };
    if reason.is_empty() {
        reason = format!(
            "score {score} against pass {} and marginal {}",
            config.pass_threshold, config.marginal_threshold
        );
    }
    CanaryJudgement {
        score,
        label,
        reason,
        group_scores,
        metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, group: &str, label: MetricLabel, critical: bool) -> MetricResult {
        MetricResult {
            name: name.into(),
            groups: vec![group.into()],
            label,
            critical_failure: critical && label != MetricLabel::Pass,
            muted: false,
            reason: String::new(),
            estimate: 0.0,
            lower: 0.0,
            upper: 0.0,
            mean_ratio: 1.0,
            effect_size: 1.0,
            experiment_count: 1,
            control_count: 1,
        }
    }

    fn config(weights: &[(&str, f64)]) -> JudgeConfig {
        JudgeConfig {
            metrics: Vec::new(),
            group_weights: weights.iter().map(|(g, w)| ((*g).to_owned(), *w)).collect(),
            pass_threshold: 75.0,
            marginal_threshold: 50.0,
            confidence: 0.98,
            tolerance: 0.25,
        }
    }

    use MetricLabel::*;

    /// Kayenta's ScorerSuite.
    #[test]
    fn kayenta_scorer_suite() {
        let s = |w: &[(&str, f64)], m: Vec<MetricResult>| score(&config(w), m).score;
        assert_eq!(s(&[], vec![result("a", "g", Pass, false)]), 100.0);
        assert_eq!(s(&[], vec![result("a", "g", High, false)]), 0.0);
        assert_eq!(s(&[], vec![result("a", "g", Nodata, false)]), 0.0);
        let j = score(
            &config(&[]),
            vec![
                result("a", "g1", Pass, false),
                result("b", "g1", Pass, false),
                result("c", "g2", Nodata, false),
            ],
        );
        assert_eq!(j.score, 100.0);
        assert_eq!(j.group_scores["g2"], 0.0);
        let two = |a, b| vec![result("a", "g", a, false), result("b", "g", b, false)];
        assert_eq!(s(&[], two(Pass, High)), 50.0);
        let mut three = two(Pass, High);
        three.push(result("c", "g", Low, false));
        assert_eq!(s(&[], three), 33.33);
        let weighted = vec![
            result("a", "group-1", Pass, false),
            result("b", "group-1", Pass, false),
            result("c", "group-2", High, false),
        ];
        assert_eq!(s(&[("group-1", 75.0), ("group-2", 25.0)], weighted), 75.0);
        let halves = vec![
            result("a", "g1", Pass, false),
            result("b", "g1", High, false),
            result("c", "g2", High, false),
        ];
        assert_eq!(s(&[("g1", 50.0), ("g2", 50.0)], halves), 25.0);
        let nodata = vec![
            result("a", "g1", Pass, false),
            result("b", "g1", Nodata, false),
            result("c", "g2", High, false),
        ];
        assert_eq!(s(&[("g1", 50.0), ("g2", 50.0)], nodata), 50.0);
        assert_eq!(
            s(
                &[],
                vec![result("a", "g", Pass, false), result("b", "g", High, true)]
            ),
            0.0
        );
        assert_eq!(
            s(
                &[],
                vec![result("a", "g", Low, false), result("b", "g", Pass, true)]
            ),
            50.0
        );
        assert_eq!(
            s(
                &[],
                vec![
                    result("a", "g", Pass, false),
                    result("b", "g", Nodata, true)
                ]
            ),
            0.0
        );
        let mixed = vec![
            result("a", "g1", High, false),
            result("b", "g1", Low, false),
            result("c", "g1", Pass, false),
            result("d", "g2", High, false),
        ];
        assert_eq!(s(&[("g1", 15.0), ("g2", 85.0)], mixed), 5.0);
    }

    #[test]
    fn marginal_is_its_own_label() {
        let j = score(
            &config(&[]),
            vec![
                result("a", "g", Pass, false),
                result("b", "g", Pass, false),
                result("c", "g", Pass, false),
                result("d", "g", Pass, false),
                result("e", "g", High, false),
                result("f", "g", High, false),
            ],
        );
        assert_eq!(j.score, 66.67);
        assert_eq!(j.label, JudgementLabel::Marginal);
    }
}
