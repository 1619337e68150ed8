//! DORA's keys over a hand-made history, each value worked out from the definitions.

use std::collections::BTreeMap;

use super::super::dora::*;
use super::super::*;

const HOUR: i64 = 3_600_000_000;
/// 2026-11-01T00:00:00Z (day 1).
const DAY0: i64 = 1_793_491_200_000_000;

fn t(day: i64, hour: f64) -> Timestamp {
    Timestamp(DAY0 + (day - 1) * 24 * HOUR + (hour * HOUR as f64) as i64)
}

fn date(day: u8) -> time::Date {
    time::Date::from_calendar_date(2026, time::Month::November, day).expect("date")
}

fn note(
    d: &str,
    env: &str,
    outcome: Outcome,
    started: Timestamp,
    finished: Timestamp,
) -> DeploymentNote {
    DeploymentNote {
        deployment: d.into(),
        release: format!("checkout-{d}"),
        service: "checkout".into(),
        version: d.into(),
        environment: env.into(),
        business_unit: "payments".into(),
        outcome,
        started_at: started,
        finished_at: finished,
    }
}

/// Day 1: A (registered 2 h before) and B (24 h) succeed. Day 2: C succeeds at 09:00, breaches at
/// 09:10 and is rolled back by 09:25; D fails. Day 3: E takes 30 min. Dev and another unit's
/// deployments do not count.
type History = (
    Vec<DeploymentNote>,
    BTreeMap<(String, String), Timestamp>,
    Vec<Breach>,
);

fn history() -> History {
    let mut h = vec![
        note(
            "a",
            "prod",
            Outcome::Succeeded,
            t(1, 9.0 + 50.0 / 60.0),
            t(1, 10.0),
        ),
        note(
            "b",
            "prod",
            Outcome::Succeeded,
            t(1, 13.0 + 58.0 / 60.0),
            t(1, 14.0),
        ),
        note(
            "c",
            "prod",
            Outcome::Succeeded,
            t(2, 8.0 + 59.0 / 60.0),
            t(2, 9.0),
        ),
        note(
            "c",
            "prod",
            Outcome::RolledBack,
            t(2, 8.0 + 59.0 / 60.0),
            t(2, 9.0 + 25.0 / 60.0),
        ),
        note(
            "d",
            "prod",
            Outcome::Failed,
            t(2, 11.0 + 50.0 / 60.0),
            t(2, 12.0),
        ),
        note("e", "prod", Outcome::Succeeded, t(3, 9.5), t(3, 10.0)),
        note("x", "dev", Outcome::Succeeded, t(1, 1.0), t(1, 2.0)),
    ];
    let mut other = note("y", "prod", Outcome::Failed, t(1, 1.0), t(1, 2.0));
    other.business_unit = "cards".into();
    h.push(other);
    let registered = [
        ("a", t(1, 8.0)),
        ("b", t(0, 14.0)),
        ("c", t(2, 8.0)),
        ("e", t(3, 9.0)),
    ]
    .into_iter()
    .map(|(v, at)| (("checkout".to_owned(), v.to_owned()), at))
    .collect();
    let breach = Breach {
        id: uuid::Uuid::from_u128(1),
        watch: uuid::Uuid::from_u128(2),
        deployment: "c".into(),
        release: "checkout-c".into(),
        environment: "prod".into(),
        service: "checkout".into(),
        business_unit: "payments".into(),
        tier: 2,
        metric: "error_rate".into(),
        comparison: Comparison::Above,
        observed: 0.3,
        threshold: 0.02,
        observed_at: t(2, 9.0 + 10.0 / 60.0),
        evidence: vec![],
    };
    (h, registered, vec![breach])
}

fn points(metric: DoraMetric, interval: Interval) -> Vec<(time::Date, Option<f64>)> {
    let (h, registered, breaches) = history();
    let breaches: Vec<&Breach> = breaches.iter().collect();
    dora(
        &h,
        &registered,
        &breaches,
        &DoraQuery {
            metric,
            business_unit: "payments".into(),
            service: String::new(),
            from: date(1),
            to: date(3),
            interval,
            production: vec!["prod".into()],
        },
    )
    .expect("computed")
    .into_iter()
    .map(|p| {
        (
            p.date.replace_day(p.date.day()).expect("day"),
            p.value.map(|v| (v * 1000.0).round() / 1000.0),
        )
    })
    .collect()
}

fn daily(metric: DoraMetric) -> Vec<Option<f64>> {
    points(metric, Interval::Daily)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn the_four_keys_follow_their_definitions() {
    assert_eq!(
        daily(DoraMetric::DeploymentFrequency),
        [Some(2.0), Some(1.0), Some(1.0)]
    );
    // Median of 2 h and 24 h, then 1 h, 1 h.
    assert_eq!(
        daily(DoraMetric::LeadTimeForChanges),
        [Some(46_800.0), Some(3_600.0), Some(3_600.0)]
    );
    assert_eq!(
        daily(DoraMetric::ChangeFailureRate),
        [Some(0.0), Some(1.0), Some(0.0)]
    );
    // The breach at 09:10, restored by 09:25.
    assert_eq!(
        daily(DoraMetric::TimeToRestoreService),
        [None, Some(900.0), None]
    );
}

#[test]
fn release_telemetry_and_intervals() {
    // Median of 10 min and 2 min; 1 min; 30 min.
    assert_eq!(
        daily(DoraMetric::DeployDuration),
        [Some(360.0), Some(60.0), Some(1_800.0)]
    );
    assert_eq!(
        daily(DoraMetric::FailureFrequency),
        [Some(0.0), Some(2.0), Some(0.0)]
    );
    assert_eq!(
        daily(DoraMetric::RollbackIncidence),
        [Some(0.0), Some(1.0), Some(0.0)]
    );
    assert_eq!(
        points(DoraMetric::DeploymentFrequency, Interval::Monthly),
        [(date(1), Some(4.0))]
    );
    assert_eq!(
        points(DoraMetric::ChangeFailureRate, Interval::All),
        [(date(1), Some(0.4))],
        "2 of the 5 production deployments"
    );
    let dates: Vec<time::Date> = points(DoraMetric::DeploymentFrequency, Interval::Daily)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert_eq!(dates, [date(1), date(2), date(3)]);
}

#[test]
fn a_period_upside_down_or_without_production_is_refused() {
    let (h, r, _) = history();
    let q = |from, to, production: Vec<String>| DoraQuery {
        metric: DoraMetric::DeploymentFrequency,
        business_unit: "payments".into(),
        service: String::new(),
        from,
        to,
        interval: Interval::Daily,
        production,
    };
    assert!(dora(&h, &r, &[], &q(date(3), date(1), vec!["prod".into()])).is_err());
    assert!(dora(&h, &r, &[], &q(date(1), date(3), vec![])).is_err());
}
