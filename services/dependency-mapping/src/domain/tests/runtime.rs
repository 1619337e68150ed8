//! What runs: observed calls and drift, footprints, version skew.

use super::*;

#[test]
fn drift_compares_declared_and_observed_edges() {
    let c = shop();
    let calls = vec![
        ObservedCall {
            client: name("web"),
            server: name("checkout"),
            calls: 120,
        },
        ObservedCall {
            client: name("web"),
            server: name("shadow-api"),
            calls: 3,
        },
    ];
    assert!(
        c.changes(Command::RecordObservedCalls {
            calls: vec![],
            at: Timestamp(1)
        })
        .is_err()
    );
    assert_eq!(
        c.changes(Command::RecordObservedCalls {
            calls: vec![ObservedCall {
                client: name("web"),
                server: name("web"),
                calls: 1
            }],
            at: Timestamp(1)
        }),
        Err(DomainError::SelfDependency(name("web")))
    );
    let c = apply(
        c,
        Command::RecordObservedCalls {
            calls: calls.clone(),
            at: Timestamp(100),
        },
    );
    let c = apply(
        c,
        Command::RecordObservedCalls {
            calls,
            at: Timestamp(200),
        },
    );
    let d = drift(&c);
    assert_eq!(d.observed_not_declared.len(), 1);
    let (client, server, seen) = &d.observed_not_declared[0];
    assert_eq!(
        (
            client.as_str(),
            server.as_str(),
            seen.calls,
            seen.first_seen,
            seen.last_seen
        ),
        ("web", "shadow-api", 6, Timestamp(100), Timestamp(200))
    );
    assert_eq!(c.observed[&(name("web"), name("checkout"))].calls, 240);
    let never: Vec<(&str, &str)> = d
        .declared_not_observed
        .iter()
        .map(|(a, b, _)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        never,
        [
            ("checkout", "payments"),
            ("fraud", "payments"),
            ("payments", "fraud"),
            ("payments", "ledger"),
            ("reports", "ledger")
        ]
    );
}

#[test]
fn footprints_answer_as_of_any_time_and_tags_are_immutable() {
    let c = shop();
    let c = deploy(c, "prod", "checkout", "1.0.0", 100);
    let c = deploy(c, "prod", "payments", "3.0.0", 100);
    let c = deploy(c, "prod", "checkout", "1.1.0", 300);
    // Recorded late, ordered by when it ran.
    let c = deploy(c, "prod", "checkout", "1.0.5", 200);
    let v = |c: &Catalog, at| {
        c.footprint("prod", at)
            .get(&name("checkout"))
            .map(|v| v.to_string())
    };
    assert_eq!(v(&c, None).as_deref(), Some("1.1.0"));
    assert_eq!(v(&c, Some(Timestamp(250))).as_deref(), Some("1.0.5"));
    assert_eq!(v(&c, Some(Timestamp(150))).as_deref(), Some("1.0.0"));
    assert_eq!(v(&c, Some(Timestamp(50))), None);
    assert!(c.footprint("staging", None).is_empty());
    let c = apply(
        c,
        Command::TagFootprint {
            environment: "prod".into(),
            tag: "q4".into(),
            at: Timestamp(250),
        },
    );
    assert_eq!(
        c.tags[&("prod".to_owned(), "q4".to_owned())].services[&name("checkout")].to_string(),
        "1.0.5"
    );
    assert!(matches!(
        c.changes(Command::TagFootprint {
            environment: "prod".into(),
            tag: "q4".into(),
            at: Timestamp(400)
        }),
        Err(DomainError::Conflict(_))
    ));
    assert!(matches!(
        c.changes(Command::TagFootprint {
            environment: "dev".into(),
            tag: "x".into(),
            at: Timestamp(1)
        }),
        Err(DomainError::Invalid {
            field: "environment",
            ..
        })
    ));
    assert!(matches!(
        c.changes(Command::RecordDeployment(Deployment {
            environment: "Prod!".into(),
            service: name("web"),
            version: semver::Version::new(1, 0, 0),
            at: Timestamp(1)
        })),
        Err(DomainError::Invalid {
            field: "environment",
            ..
        })
    ));
}

#[test]
fn version_skew_reports_violations_now_and_what_a_release_would_break() {
    let c = shop();
    let req = |r: &str| semver::VersionReq::parse(r).expect("req");
    let c = apply(
        c,
        Command::DeclareVersionRequirement {
            consumer: name("checkout"),
            provider: name("payments"),
            requirement: req(">=3.0.0, <4.0.0"),
        },
    );
    let c = apply(
        c,
        Command::DeclareVersionRequirement {
            consumer: name("web"),
            provider: name("checkout"),
            requirement: req("^1.1"),
        },
    );
    let c = deploy(c, "prod", "checkout", "1.0.0", 1);
    let c = deploy(c, "prod", "payments", "3.2.0", 1);
    let c = deploy(c, "prod", "web", "5.0.0", 1);
    let c = deploy(c, "staging", "checkout", "1.2.0", 1);
    let c = deploy(c, "staging", "payments", "2.9.0", 1);
    let now = version_skew(&c, None);
    let found: Vec<(&str, &str, &str, String)> = now
        .iter()
        .map(|v| {
            (
                v.environment.as_str(),
                v.consumer.as_str(),
                v.provider.as_str(),
                v.provider_version.to_string(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("prod", "web", "checkout", "1.0.0".to_owned()),
            ("staging", "checkout", "payments", "2.9.0".to_owned())
        ]
    );
    assert_eq!(version_skew(&c, Some("staging")).len(), 1);
    // Releasing payments 4.0.0 breaks checkout in prod (staging was already broken: not new).
    let broke = skew_after_release(&c, &[(name("payments"), semver::Version::new(4, 0, 0))]);
    assert_eq!(
        broke
            .iter()
            .map(|v| (v.environment.as_str(), v.consumer.as_str()))
            .collect::<Vec<_>>(),
        [("prod", "checkout")]
    );
    // Releasing checkout 1.1.0 fixes web in prod and breaks nothing.
    assert!(
        skew_after_release(&c, &[(name("checkout"), semver::Version::new(1, 1, 0))]).is_empty()
    );
    assert_eq!(
        c.changes(Command::DeclareVersionRequirement {
            consumer: name("web"),
            provider: name("ghost"),
            requirement: req("*")
        }),
        Err(DomainError::UnknownService(name("ghost")))
    );
}
