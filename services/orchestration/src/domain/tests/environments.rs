//! Test windows and drift.

#![allow(unused_imports)]

use std::collections::{BTreeMap, BTreeSet};

use flotilla_core::decider::Decider;
use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::*;

#[test]
fn test_windows_do_not_overlap_and_sign_offs_happen_inside_them() {
    let (s, _) = released(world(), "r1");
    let book = |id: u128, start: i64, end: i64| {
        Command::from(BookTestWindow {
            business_unit: "payments".into(),
            environment: "staging".into(),
            window: TestWindow {
                id: Uuid::from_u128(id),
                release: "r1".into(),
                team: "qa".into(),
                start: at(start),
                end: at(end),
                signed_off: None,
            },
            at: at(5),
        })
    };
    let s = s.when(book(1, 60, 120)).then_on(
        &StreamKey::Environment {
            business_unit: "payments".into(),
            name: "staging".into(),
        }
        .stream(),
        |_| {},
    );
    let s = s.when(book(2, 100, 180)).then_refused(
        |e| matches!(e, DomainError::AlreadyExists(m) if m.contains("do not overlap")),
    );
    s.when(
        SignOffTestWindow {
            business_unit: "payments".into(),
            environment: "staging".into(),
            window: Uuid::from_u128(1),
            sign_off: SignOff {
                by: "qa-lead".into(),
                at: at(130),
                passed: true,
                comment: String::new(),
            },
        }
        .into(),
    )
    .then_refused(
        |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("sign off inside it")),
    );
}

#[test]
fn reported_configuration_drifts_once_per_difference() {
    let mut s = world();
    let mut spec = env("payments", "prod");
    spec.shared = vec!["db-cluster".into()];
    spec.desired = [
        ("kafka".to_owned(), "3.7".to_owned()),
        ("tls".to_owned(), "1.3".to_owned()),
    ]
    .into();
    s.apply(DefineEnvironment { spec, at: at(1) }.into())
        .expect("desired");
    let report = |kafka: &str, when: i64| {
        Command::from(ReportConfiguration {
            business_unit: "payments".into(),
            environment: "prod".into(),
            actual: [
                ("kafka".to_owned(), kafka.to_owned()),
                ("tls".to_owned(), "1.3".to_owned()),
                ("extra".to_owned(), "x".to_owned()),
            ]
            .into(),
            at: at(when),
        })
    };
    let prod = StreamKey::Environment {
        business_unit: "payments".into(),
        name: "prod".into(),
    }
    .stream();
    let s = s.when(report("3.6", 2)).then_on(&prod, |e| {
        let drifts: Vec<&str> = e
            .iter()
            .filter_map(|e| match e {
                Event::DriftDetected { key, .. } => Some(key.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(drifts, vec!["extra", "kafka"]);
    });
    // The same report again: no new drift events.
    let s = s
        .when(report("3.6", 3))
        .then_on(&prod, |e| assert_eq!(e.len(), 1));
    assert_eq!(s.drift("payments", "prod").len(), 2);
}

#[test]
fn an_environment_is_removed_only_off_every_path_and_with_nothing_deploying() {
    let remove = |unit: &str, name: &str| {
        Command::from(RemoveEnvironment {
            business_unit: unit.into(),
            name: name.into(),
            at: at(2),
        })
    };
    let mut s = world().when(remove("payments", "dev")).then_refused(
        |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("promotion path")),
    );
    s.apply(
        DefineEnvironment {
            spec: env("cards", "sandbox"),
            at: at(1),
        }
        .into(),
    )
    .expect("sandbox");
    let s = s.when(remove("cards", "sandbox")).then_on(
        &StreamKey::Environment {
            business_unit: "cards".into(),
            name: "sandbox".into(),
        }
        .stream(),
        |e| assert!(matches!(e, [Event::EnvironmentRemoved { .. }])),
    );
    assert!(s.environment("cards", "sandbox").is_none());
    let s = s
        .when(
            DefineEnvironment {
                spec: env("cards", "sandbox"),
                at: at(3),
            }
            .into(),
        )
        .then_on(
            &StreamKey::Environment {
                business_unit: "cards".into(),
                name: "sandbox".into(),
            }
            .stream(),
            |e| {
                assert!(
                    matches!(e, [Event::EnvironmentDefined { created: true, .. }]),
                    "defined again after removal: {e:?}"
                )
            },
        );
    s.when(remove("cards", "nowhere"))
        .then_refused(|e| matches!(e, DomainError::NotFound(_)));
}

#[test]
fn a_trigger_rule_promotes_only_into_an_environment_on_its_units_path() {
    let mut s = world();
    s.apply(
        DefineEnvironment {
            spec: env("cards", "sandbox"),
            at: at(1),
        }
        .into(),
    )
    .expect("sandbox");
    let rule = |env: &str| {
        Command::from(DefineTriggerRule {
            rule: TriggerRule {
                id: Uuid::from_u128(7),
                business_unit: "cards".into(),
                services: "cards-*".into(),
                up_to: Bump::Patch,
                environment: env.into(),
            },
        })
    };
    // cards' path is dev only: its sandbox exists but is on no path, and it has no prod.
    let s = s
        .when(rule("prod"))
        .then_refused(|e| matches!(e, DomainError::NotFound(_)));
    let s = s.when(rule("sandbox")).then_refused(
        |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("not on unit cards's promotion path")),
    );
    s.when(rule("dev"))
        .then_on(&StreamKey::Trigger(Uuid::from_u128(7)).stream(), |e| {
            assert_eq!(e.len(), 1)
        });
}
