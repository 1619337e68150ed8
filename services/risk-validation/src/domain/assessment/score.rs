//! The score: each factor measured, scaled to the share of its range it reaches (0..1) and
//! weighted; the points add up to the 0-100 score, so every point has a reason.

use super::model::{Factor, NotedRelease, RiskFactor, RiskWeights};

/// What a release's score is computed from.
#[derive(Clone, Debug)]
pub struct ScoreInputs<'a> {
    pub release: &'a NotedRelease,
    /// The release's most critical service and its tier (`None`: not in the catalog).
    pub service: &'a str,
    pub tier: Option<u8>,
    /// Services the impact analysis says it reaches.
    pub impact: &'a [String],
    /// Deployments of its services in the history window: (failed or rolled back, all).
    pub history: (u32, u32),
    /// The FMEA's highest RPN and its open required actions, if one was recorded.
    pub fmea: Option<(u32, Vec<String>)>,
}

/// How many of a thing count in full.
const FULL_BLAST_RADIUS: f64 = 10.0;
const FULL_CHANGE_SIZE: f64 = 10.0;
const FULL_SCHEMA_CHANGES: f64 = 3.0;
const FULL_MIGRATIONS: f64 = 5.0;
const MAX_RPN: f64 = 1000.0;

/// The score (0-100) and its factors.
pub fn score(inputs: &ScoreInputs<'_>, weights: &RiskWeights) -> (u8, Vec<RiskFactor>) {
    let total = f64::from(weights.total().max(1));
    let mut factors = Vec::with_capacity(8);
    for factor in Factor::ALL {
        let weight = weights.weight(factor);
        let (value, share, explanation) = measure(factor, inputs, weights);
        let share = share.clamp(0.0, 1.0);
        factors.push(RiskFactor {
            name: factor.name().to_owned(),
            value,
            share,
            weight,
            points: f64::from(weight) * share / total * 100.0,
            explanation,
        });
    }
    let sum: f64 = factors.iter().map(|f| f.points).sum();
    (sum.round().clamp(0.0, 100.0) as u8, factors)
}

fn measure(factor: Factor, i: &ScoreInputs<'_>, w: &RiskWeights) -> (f64, f64, String) {
    let r = i.release;
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match factor {
        Factor::CriticalityTier => match i.tier {
            Some(t) => (
                f64::from(t),
                f64::from(4u8.saturating_sub(t)) / 3.0,
                format!(
                    "{} is tier {t} in the catalog (1 is the most critical, 4 the least)",
                    i.service
                ),
            ),
            None => (
                1.0,
                1.0,
                format!(
                    "{} is not in the catalog, so it counts as tier 1",
                    i.service
                ),
            ),
        },
        Factor::BlastRadius => {
            let beyond: Vec<&String> = i
                .impact
                .iter()
                .filter(|s| !r.items.iter().any(|it| it.service == **s))
                .collect();
            let n = beyond.len();
            let which = if n == 0 {
                String::new()
            } else {
                let mut names: Vec<&str> = beyond.iter().take(5).map(|s| s.as_str()).collect();
                if n > 5 {
                    names.push("...");
                }
                format!(" ({})", names.join(", "))
            };
            (
                n as f64,
                n as f64 / FULL_BLAST_RADIUS,
                format!(
                    "the impact analysis reaches {} beyond the release{which}; {FULL_BLAST_RADIUS} or more count in full",
                    count(n, "service")
                ),
            )
        }
        Factor::ChangeSize => {
            let n = r.items.len();
            (
                n as f64,
                n as f64 / FULL_CHANGE_SIZE,
                format!(
                    "{} change; {FULL_CHANGE_SIZE} or more count in full",
                    count(n, "service")
                ),
            )
        }
        Factor::SchemaChanges => {
            let n: u32 = r.items.iter().map(|it| it.schema_changes).sum();
            let which: Vec<&str> = r
                .items
                .iter()
                .filter(|it| it.schema_changes > 0)
                .map(|it| it.service.as_str())
                .collect();
            (
                f64::from(n),
                f64::from(n) / FULL_SCHEMA_CHANGES,
                if n == 0 {
                    "no migration changes a schema".to_owned()
                } else {
                    format!(
                        "{} ({}) {} a schema (CREATE, ALTER, DROP, RENAME); {FULL_SCHEMA_CHANGES} or more count in full",
                        count(n as usize, "migration"),
                        which.join(", "),
                        if n == 1 { "changes" } else { "change" }
                    )
                },
            )
        }
        Factor::Migrations => {
            let n: u32 = r.items.iter().map(|it| it.migrations).sum();
            (
                f64::from(n),
                f64::from(n) / FULL_MIGRATIONS,
                format!(
                    "{} run forward, and back on a rollback; {FULL_MIGRATIONS} or more count in full",
                    count(n as usize, "database migration")
                ),
            )
        }
        Factor::ChangeFailureRate => {
            let (failed, all) = i.history;
            if all == 0 {
                (
                    0.0,
                    0.0,
                    format!(
                        "no deployment of these services finished in the last {} days",
                        w.history_days
                    ),
                )
            } else {
                let rate = f64::from(failed) / f64::from(all);
                (
                    rate,
                    rate,
                    format!(
                        "{failed} of {} of these services in the last {} days failed or were rolled back",
                        count(all as usize, "deployment"),
                        w.history_days
                    ),
                )
            }
        }
        Factor::FmeaRpn => match &i.fmea {
            None => (0.0, 0.0, "no FMEA was recorded".to_owned()),
            Some((rpn, open)) => (
                f64::from(*rpn),
                f64::from(*rpn) / MAX_RPN,
                format!(
                    "the FMEA's highest RPN is {rpn} of {MAX_RPN}; {} open",
                    count(open.len(), "required action")
                ),
            ),
        },
        Factor::Emergency => {
            if r.emergency {
                (1.0, 1.0, "an emergency release".to_owned())
            } else {
                (0.0, 0.0, "not an emergency release".to_owned())
            }
        }
    }
}
