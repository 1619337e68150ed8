//! Monitoring's domain, given/when/then: windows opened by deployments with their tier's
//! thresholds, samples judged in order (the first crossing asks for the rollback, with the
//! evidence), bad samples refused, windows without data never healthy.

use flotilla_core::decider::Decider;
use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::*;

mod correlation;
mod dora;
mod feedback;

const MIN: i64 = 60_000_000;
const T0: Timestamp = Timestamp(1_793_577_600_000_000);

fn at(minutes: i64) -> Timestamp {
    Timestamp(T0.0 + minutes * MIN)
}

fn finished(deployment: &str, service: &str, outcome: Outcome, minutes: i64) -> Command {
    NoteDeployment {
        note: DeploymentNote {
            deployment: deployment.into(),
            release: "checkout-2.1.0".into(),
            service: service.into(),
            version: "2.1.0".into(),
            environment: "prod".into(),
            business_unit: "payments".into(),
            outcome,
            started_at: at(minutes - 1),
            finished_at: at(minutes),
        },
    }
    .into()
}

fn deployed(deployment: &str, service: &str, minutes: i64) -> Command {
    finished(deployment, service, Outcome::Succeeded, minutes)
}

fn samples(metric: &str, values: &[(i64, f64)], now: i64) -> RecordSamples {
    RecordSamples {
        service: "checkout".into(),
        environment: "prod".into(),
        metric: metric.into(),
        samples: values
            .iter()
            .map(|(m, v)| Sample {
                at: at(*m),
                value: *v,
            })
            .collect(),
        source: "push".into(),
        seed: Uuid::from_u128(now as u128 + 1),
        now: at(now),
    }
}

/// checkout is tier 2 (30 min, error rate above 0.02, p99 above 800 ms) with a health check:
/// checkout success ratio below 0.995 breaches.
fn watched() -> Scenario<Monitoring> {
    Scenario::given_commands([
        NoteCatalogService {
            service: "checkout".into(),
            business_unit: "payments".into(),
            tier: 2,
        }
        .into(),
        DefineHealthCheck {
            check: HealthCheck {
                name: "checkout_success_ratio".into(),
                service: "checkout".into(),
                environment: String::new(),
                business_unit: "payments".into(),
                promql: String::new(),
                comparison: Comparison::Below,
                threshold: 0.995,
                skip_nan: false,
                description: "orders paid / orders placed".into(),
            },
        }
        .into(),
        deployed("d1", "checkout", 0),
    ])
}

#[test]
fn a_deployment_opens_a_window_with_its_tiers_thresholds_and_health_checks() {
    let s = watched();
    let w = s.watches.values().next().expect("watch");
    assert_eq!((w.tier, w.closes_at), (2, at(30)));
    let thresholds = s.thresholds_of(w);
    let metrics: Vec<&str> = thresholds.iter().map(|t| t.metric.as_str()).collect();
    assert_eq!(
        metrics,
        ["error_rate", "latency_p99_ms", "checkout_success_ratio"]
    );
}

#[test]
fn the_first_sample_across_a_threshold_asks_for_the_rollback_with_its_evidence() {
    let mut s = watched();
    let d = s
        .apply(
            samples(
                "checkout_success_ratio",
                &[(1, 0.999), (2, 0.998), (3, 0.97), (4, 0.5)],
                4,
            )
            .into(),
        )
        .expect("taken");
    let breach = d
        .events
        .iter()
        .find_map(|e| match e {
            Event::RollbackThresholdBreached(b) => Some(b.clone()),
            _ => None,
        })
        .expect("breached");
    assert_eq!(
        (breach.observed, breach.threshold, breach.tier),
        (0.97, 0.995, 2)
    );
    assert_eq!(breach.evidence.len(), 3, "the samples up to the breach");
    let request = d
        .events
        .iter()
        .find_map(|e| match e {
            Event::RollbackRequested(r) => Some(r.clone()),
            _ => None,
        })
        .expect("rollback requested");
    assert_eq!(
        (request.release.as_str(), request.environment.as_str()),
        ("checkout-2.1.0", "prod")
    );
    assert!(request.reason.contains("checkout_success_ratio of checkout in prod was 0.97 (below the threshold 0.995 of tier 2)"), "{}", request.reason);
    let w = s.watches.values().next().expect("watch");
    assert_eq!(w.status, WatchStatus::Breached);
    // The window is closed: later samples fall outside any window.
    let (taken, events) = s
        .take_samples(&samples("error_rate", &[(5, 0.9)], 5))
        .expect("taken");
    assert!(events.is_empty());
    assert_eq!(taken.outside, 1);
}

#[test]
fn samples_inside_the_thresholds_pass_and_a_window_is_healthy_only_with_data_for_each() {
    let mut s = watched();
    s.apply(samples("error_rate", &[(1, 0.001), (2, 0.019)], 2).into())
        .expect("ok");
    s.apply(samples("latency_p99_ms", &[(1, 420.0)], 2).into())
        .expect("ok");
    let d = s
        .apply(CloseDueWatches { now: at(31) }.into())
        .expect("closed");
    assert_eq!(
        d.events,
        vec![Event::WatchClosed {
            watch: watch_id("d1", "checkout"),
            status: WatchStatus::NoData,
            at: at(31)
        }],
        "the health check got no sample: no data, not a pass"
    );
    let mut s = watched();
    for m in ["error_rate", "latency_p99_ms", "checkout_success_ratio"] {
        let v = if m == "checkout_success_ratio" {
            0.999
        } else {
            0.001
        };
        s.apply(samples(m, &[(1, v)], 2).into()).expect("ok");
    }
    let d = s
        .apply(CloseDueWatches { now: at(29) }.into())
        .expect("not yet");
    assert!(d.events.is_empty());
    let d = s
        .apply(CloseDueWatches { now: at(31) }.into())
        .expect("closed");
    assert!(matches!(
        d.events[0],
        Event::WatchClosed {
            status: WatchStatus::Healthy,
            ..
        }
    ));
}

#[test]
fn bad_samples_are_refused_with_what_is_wrong() {
    let s = watched();
    for (bad, want) in [
        (samples("error_rate", &[], 1), "is empty"),
        (samples("error_rate", &[(1, f64::NAN)], 1), "is NaN"),
        (
            samples("error_rate", &[(2, 0.0), (1, 0.0)], 2),
            "send a batch in time order",
        ),
        (
            samples("error_rate", &[(20, 0.0)], 1),
            "more than a minute ahead",
        ),
        (
            samples("eror_rate", &[(1, 0.0)], 1),
            "is not watched for checkout in prod",
        ),
    ] {
        let e = s.take_samples(&bad).expect_err(want);
        assert!(e.to_string().contains(want), "{want}: {e}");
    }
    // An infinite error rate is the worst there is: it breaches, never refused or hidden.
    let (taken, _) = s
        .take_samples(&samples("error_rate", &[(1, f64::INFINITY)], 1))
        .expect("taken");
    assert!(taken.breach.is_some());
    // Out of order across batches.
    let mut s = watched();
    s.apply(samples("error_rate", &[(3, 0.0)], 3).into())
        .expect("ok");
    let e = s
        .take_samples(&samples("error_rate", &[(2, 0.0)], 3))
        .expect_err("older");
    assert!(
        e.to_string().contains("samples arrive in time order"),
        "{e}"
    );
}

#[test]
fn a_later_deployment_supersedes_and_a_rollback_ends_the_window() {
    let mut s = watched();
    let d = s.apply(deployed("d2", "checkout", 5)).expect("opened");
    assert!(matches!(d.events[0], Event::DeploymentNoted(_)));
    assert!(matches!(
        d.events[1],
        Event::WatchClosed {
            status: WatchStatus::Superseded,
            ..
        }
    ));
    s.apply(finished("d2", "checkout", Outcome::RolledBack, 6))
        .expect("ended");
    assert_eq!(
        s.watches[&watch_id("d2", "checkout")].status,
        WatchStatus::RolledBack
    );
    // The same deployment again opens nothing; the same word twice records nothing.
    let d = s.apply(deployed("d2", "checkout", 7)).expect("again");
    assert!(!d.events.iter().any(|e| matches!(e, Event::WatchOpened(_))));
    let d = s.apply(deployed("d2", "checkout", 7)).expect("redelivered");
    assert!(d.events.is_empty());
}

#[test]
fn a_health_check_with_skip_nan_skips_them_and_never_passes_on_them() {
    let mut s = watched();
    let mut check = s.checks.values().next().cloned().expect("check");
    check.skip_nan = true;
    s.apply(DefineHealthCheck { check }.into())
        .expect("redefined");
    let (taken, events) = s
        .take_samples(&samples(
            "checkout_success_ratio",
            &[(1, f64::NAN), (2, f64::NAN)],
            2,
        ))
        .expect("skipped");
    assert!(events.is_empty());
    assert_eq!(taken.samples, 0);
    s.apply(samples("error_rate", &[(1, 0.0)], 2).into())
        .expect("ok");
    s.apply(samples("latency_p99_ms", &[(1, 1.0)], 2).into())
        .expect("ok");
    let d = s
        .apply(CloseDueWatches { now: at(31) }.into())
        .expect("closed");
    assert!(matches!(
        d.events[0],
        Event::WatchClosed {
            status: WatchStatus::NoData,
            ..
        }
    ));
}
