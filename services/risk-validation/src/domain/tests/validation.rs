use super::*;
use crate::domain::validation::{BackupRestore, NamedCheck, Performance};

fn record(env: &str, evidence: Evidence) -> Result<Decision<Event>> {
    let mut s = known();
    s.apply(release("pay-1", vec![item("api", 0, 0)], false))
        .expect("noted");
    s.state().decide(
        RecordValidation {
            id: Uuid::from_u128(21),
            release: "pay-1".into(),
            environment: env.into(),
            evidence,
            refs: vec!["https://perf.example.com/run/3".into()],
            by: "sam".into(),
            at: day(1),
        }
        .into(),
    )
}

use flotilla_core::decider::{Decider, Decision};

fn verdict(evidence: Evidence) -> (bool, Vec<String>) {
    let d = record("prod", evidence).expect("recorded");
    let Event::ValidationRecorded(v) = &d.events[0] else {
        panic!("{:?}", d.events)
    };
    (v.passed, v.failures.clone())
}

fn perf() -> Performance {
    Performance {
        baseline_p95_ms: 200.0,
        measured_p95_ms: 210.0,
        baseline_p99_ms: 400.0,
        measured_p99_ms: 400.0,
        baseline_throughput_rps: 1000.0,
        measured_throughput_rps: 960.0,
        baseline_error_rate: 0.001,
        measured_error_rate: 0.002,
        latency_tolerance_percent: 10.0,
        throughput_tolerance_percent: 5.0,
        error_rate_tolerance: 0.005,
    }
}

#[test]
fn performance_passes_inside_its_tolerances_and_fails_outside_each() {
    assert_eq!(verdict(Evidence::Performance(perf())), (true, vec![]));
    let (passed, failures) = verdict(Evidence::Performance(Performance {
        measured_p99_ms: 441.0,
        measured_throughput_rps: 900.0,
        measured_error_rate: 0.01,
        ..perf()
    }));
    assert!(!passed);
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert!(
        failures[0].starts_with("p99 441 ms is above the baseline 400 ms + 10%"),
        "{failures:?}"
    );
    assert!(
        failures[1].starts_with("throughput 900 rps is below"),
        "{failures:?}"
    );
    assert!(
        failures[2].starts_with("error rate 0.01 is above"),
        "{failures:?}"
    );
}

#[test]
fn evidence_that_cannot_be_judged_is_refused_never_passed() {
    for bad in [
        Evidence::Performance(Performance {
            measured_p95_ms: f64::NAN,
            ..perf()
        }),
        Evidence::Performance(Performance {
            baseline_p95_ms: 0.0,
            ..perf()
        }),
        Evidence::Performance(Performance {
            measured_p99_ms: 0.0,
            ..perf()
        }),
        Evidence::Performance(Performance {
            throughput_tolerance_percent: 100.0,
            ..perf()
        }),
        Evidence::BackupRestore {
            measured: BackupRestore {
                rpo_target_seconds: 300,
                rpo_measured_seconds: 0,
                rto_target_seconds: 900,
                rto_measured_seconds: 0,
            },
            backup_id: String::new(),
        },
        Evidence::SecurityControls(vec![]),
        Evidence::ThirdParty(vec![]),
        Evidence::BackupRestore {
            measured: BackupRestore::default(),
            backup_id: String::new(),
        },
    ] {
        let e = record("prod", bad.clone()).expect_err("refused");
        assert!(matches!(e, DomainError::Invalid { .. }), "{bad:?}: {e:?}");
    }
}

#[test]
fn security_third_party_and_restore_fail_on_what_fell_short() {
    let check = |name: &str, passed: bool| NamedCheck {
        name: name.into(),
        passed,
        detail: if passed {
            String::new()
        } else {
            "expired certificate".into()
        },
    };
    let (passed, failures) = verdict(Evidence::SecurityControls(vec![
        check("waf-rules", true),
        check("tls", false),
        check("identity-propagation", true),
    ]));
    assert!(!passed);
    assert_eq!(
        failures,
        ["security control tls failed: expired certificate"]
    );
    assert!(verdict(Evidence::ThirdParty(vec![check("stripe", true)])).0);
    let (passed, failures) = verdict(Evidence::BackupRestore {
        measured: BackupRestore {
            rpo_target_seconds: 300,
            rpo_measured_seconds: 120,
            rto_target_seconds: 900,
            rto_measured_seconds: 1200,
        },
        backup_id: "pg-2026-12-01".into(),
    });
    assert!(!passed);
    assert_eq!(failures, ["RTO 1200 s is above the target 900 s"]);
}

#[test]
fn an_environment_off_the_path_is_refused() {
    let e = record("qa", Evidence::ThirdParty(vec![])).expect_err("off path");
    assert!(e.to_string().contains("not on the promotion path"), "{e}");
}
