//! DORA's four keys and release telemetry, computed from the deployments and breaches monitoring
//! recorded (so any past period can be asked again and gets the same answer), in the shape of
//! GitLab's DORA API: one `{date, value}` per day or month (or one for the whole period).
//!
//! Definitions (production = the environments the query names):
//! - deployment frequency: production deployments that succeeded, by the day they finished;
//! - lead time for changes: median seconds from the commit (as CI told orchestration; the
//!   build's registration where it did not) to its first successful production deployment;
//! - change failure rate: production deployments that failed or were rolled back / production
//!   deployments that finished;
//! - time to restore service: median seconds from a production breach to the end of the
//!   rollback it caused, by the day of the breach;
//! - deploy duration: median seconds of succeeded production deployments;
//! - failure frequency and rollback incidence: failed or rolled-back (and rolled-back) production
//!   deployments.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Breach, DomainError, Outcome, Result, Timestamp, invalid};

/// A deployment of one service that finished, as orchestration said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentNote {
    pub deployment: String,
    pub release: String,
    pub service: String,
    pub version: String,
    pub environment: String,
    pub business_unit: String,
    pub outcome: Outcome,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoraMetric {
    DeploymentFrequency,
    LeadTimeForChanges,
    ChangeFailureRate,
    TimeToRestoreService,
    DeployDuration,
    FailureFrequency,
    RollbackIncidence,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    Daily,
    Monthly,
    All,
}

/// What to compute, over which deployments.
#[derive(Clone, Debug, PartialEq)]
pub struct DoraQuery {
    pub metric: DoraMetric,
    pub business_unit: String,
    /// Empty: every service of the unit.
    pub service: String,
    pub from: time::Date,
    /// Inclusive.
    pub to: time::Date,
    pub interval: Interval,
    pub production: Vec<String>,
}

/// One point: the interval's first day, and the value (None where nothing was measured).
#[derive(Clone, Debug, PartialEq)]
pub struct DoraPoint {
    pub date: time::Date,
    pub value: Option<f64>,
}

/// Most days one query spans.
pub const MAX_DAYS: i64 = 3_660;

fn date_of(t: Timestamp) -> Option<time::Date> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0) * 1_000)
        .ok()
        .map(|d| d.date())
}

fn bucket(d: time::Date, interval: Interval, from: time::Date) -> time::Date {
    match interval {
        Interval::Daily => d,
        Interval::Monthly => d.replace_day(1).unwrap_or(d),
        Interval::All => from,
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// One production deployment: its services' last word and when it first succeeded.
#[derive(Debug)]
struct Deployed<'a> {
    notes: Vec<&'a DeploymentNote>,
}

impl Deployed<'_> {
    fn last(&self, service: &str) -> Option<&DeploymentNote> {
        self.notes
            .iter()
            .rev()
            .find(|n| n.service == service)
            .copied()
    }

    fn services(&self) -> Vec<&str> {
        let mut s: Vec<&str> = self.notes.iter().map(|n| n.service.as_str()).collect();
        s.sort_unstable();
        s.dedup();
        s
    }

    fn failed(&self) -> bool {
        self.services().iter().any(|s| {
            self.last(s)
                .is_some_and(|n| n.outcome != Outcome::Succeeded)
        })
    }

    fn rolled_back(&self) -> bool {
        self.services().iter().any(|s| {
            self.last(s)
                .is_some_and(|n| n.outcome == Outcome::RolledBack)
        })
    }

    /// When it first ran in full (every service succeeded), if it did.
    fn succeeded_at(&self) -> Option<Timestamp> {
        self.services()
            .iter()
            .map(|s| {
                self.notes
                    .iter()
                    .find(|n| n.service == *s && n.outcome == Outcome::Succeeded)
                    .map(|n| n.finished_at)
            })
            .collect::<Option<Vec<_>>>()?
            .into_iter()
            .max()
    }

    fn ended_at(&self) -> Timestamp {
        self.notes
            .iter()
            .map(|n| n.finished_at)
            .max()
            .unwrap_or(Timestamp(0))
    }

    fn started_at(&self) -> Timestamp {
        self.notes
            .iter()
            .map(|n| n.started_at)
            .min()
            .unwrap_or(Timestamp(0))
    }
}

/// The metric's points over the period, one per interval (every interval, counts 0 where
/// nothing happened, medians and rates None).
pub fn dora(
    history: &[DeploymentNote],
    registered: &BTreeMap<(String, String), Timestamp>,
    breaches: &[&Breach],
    q: &DoraQuery,
) -> Result<Vec<DoraPoint>> {
    if q.to < q.from {
        return Err(invalid("end_date", "is before start_date"));
    }
    if (q.to - q.from).whole_days() > MAX_DAYS {
        return Err(invalid(
            "end_date",
            format!("a query spans at most {MAX_DAYS} days"),
        ));
    }
    if q.production.is_empty() {
        return Err(DomainError::FailedPrecondition(
            "no environment is production; set [monitoring] production_environments".into(),
        ));
    }
    let in_scope = |unit: &str, service: &str, env: &str| {
        unit == q.business_unit
            && (q.service.is_empty() || q.service == service)
            && q.production.iter().any(|p| p == env)
    };
    let mut by_deployment: BTreeMap<&str, Deployed<'_>> = BTreeMap::new();
    for n in history
        .iter()
        .filter(|n| in_scope(&n.business_unit, &n.service, &n.environment))
    {
        by_deployment
            .entry(n.deployment.as_str())
            .or_insert_with(|| Deployed { notes: Vec::new() })
            .notes
            .push(n);
    }
    // Per bucket: the values measured there.
    let mut values: BTreeMap<time::Date, Vec<f64>> = BTreeMap::new();
    let mut put = |t: Timestamp, v: f64| {
        if let Some(d) = date_of(t)
            && d >= q.from
            && d <= q.to
        {
            values
                .entry(bucket(d, q.interval, q.from))
                .or_default()
                .push(v);
        }
    };
    let counts = matches!(
        q.metric,
        DoraMetric::DeploymentFrequency
            | DoraMetric::FailureFrequency
            | DoraMetric::RollbackIncidence
    );
    for d in by_deployment.values() {
        match q.metric {
            DoraMetric::DeploymentFrequency => {
                if let Some(t) = d.succeeded_at() {
                    put(t, 1.0);
                }
            }
            DoraMetric::LeadTimeForChanges => {
                let Some(t) = d.succeeded_at() else { continue };
                for s in d.services() {
                    let Some(n) = d.notes.iter().find(|n| n.service == s) else {
                        continue;
                    };
                    if let Some(r) = registered.get(&(n.service.clone(), n.version.clone())) {
                        put(t, t.0.saturating_sub(r.0) as f64 / 1e6);
                    }
                }
            }
            DoraMetric::ChangeFailureRate => {
                put(d.ended_at(), if d.failed() { 1.0 } else { 0.0 });
            }
            DoraMetric::DeployDuration => {
                if let Some(t) = d.succeeded_at() {
                    put(t, t.0.saturating_sub(d.started_at().0) as f64 / 1e6);
                }
            }
            DoraMetric::FailureFrequency => {
                if d.failed() {
                    put(d.ended_at(), 1.0);
                }
            }
            DoraMetric::RollbackIncidence => {
                if d.rolled_back() {
                    put(d.ended_at(), 1.0);
                }
            }
            DoraMetric::TimeToRestoreService => {}
        }
    }
    if q.metric == DoraMetric::TimeToRestoreService {
        for b in breaches
            .iter()
            .filter(|b| in_scope(&b.business_unit, &b.service, &b.environment))
        {
            let restored = by_deployment
                .get(b.deployment.as_str())
                .and_then(|d| d.last(&b.service))
                .filter(|n| n.outcome == Outcome::RolledBack)
                .map(|n| n.finished_at);
            if let Some(r) = restored {
                put(
                    b.observed_at,
                    r.0.saturating_sub(b.observed_at.0).max(0) as f64 / 1e6,
                );
            }
        }
    }
    // Every interval of the period, in order.
    let mut dates = Vec::new();
    let mut d = bucket(q.from, q.interval, q.from);
    loop {
        dates.push(d);
        let next = match q.interval {
            Interval::All => break,
            Interval::Daily => d.next_day(),
            Interval::Monthly => {
                let (y, m) = if d.month() == time::Month::December {
                    (d.year() + 1, time::Month::January)
                } else {
                    (d.year(), d.month().next())
                };
                time::Date::from_calendar_date(y, m, 1).ok()
            }
        };
        match next {
            Some(n) if n <= q.to => d = n,
            _ => break,
        }
    }
    Ok(dates
        .into_iter()
        .map(|date| {
            let v = values.remove(&date).unwrap_or_default();
            let value = match q.metric {
                _ if counts => Some(v.len() as f64),
                DoraMetric::ChangeFailureRate => {
                    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
                }
                _ => median(v),
            };
            DoraPoint { date, value }
        })
        .collect())
}
