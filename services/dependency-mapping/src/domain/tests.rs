//! Domain tests: commands validate and change nothing when refused; graph queries.

use std::collections::BTreeSet;

use super::graph::{
    co_deployment_groups, drift, impact, matrix, plan_release, skew_after_release, version_skew,
};
use super::*;

fn name(s: &str) -> ServiceName {
    ServiceName::parse(s).expect("valid name")
}

fn spec(n: &str, tier: u32, pii: bool, bu: &str) -> ServiceSpec {
    ServiceSpec {
        name: name(n),
        owner_team: "team-a".into(),
        business_unit: bu.into(),
        tier: Tier::new(tier).expect("tier"),
        handles_personal_data: pii,
        classification: DataClassification::Internal,
        runtime: RuntimeKind::Microservice,
    }
}

fn dep(c: &str, p: &str, kind: EdgeKind) -> Dependency {
    Dependency {
        consumer: name(c),
        provider: name(p),
        kind,
        data_flows: BTreeSet::new(),
    }
}

fn apply(mut c: Catalog, cmd: Command) -> Catalog {
    for e in c.changes(cmd).expect("command accepted") {
        c.apply(&e);
    }
    c
}

/// checkout -> payments -> ledger(db); web -> checkout; fraud <-> payments (sync cycle).
fn shop() -> Catalog {
    let mut c = Catalog::default();
    for s in [
        spec("web", 2, false, "retail"),
        spec("checkout", 1, true, "retail"),
        spec("payments", 1, true, "finance"),
        spec("ledger", 1, false, "finance"),
        spec("fraud", 2, true, "risk"),
        spec("reports", 4, false, "finance"),
    ] {
        c = apply(c, Command::RegisterService(s));
    }
    for d in [
        dep("web", "checkout", EdgeKind::SyncApi),
        dep("checkout", "payments", EdgeKind::SyncApi),
        dep("payments", "ledger", EdgeKind::Database),
        dep("payments", "fraud", EdgeKind::SyncApi),
        dep("fraud", "payments", EdgeKind::SyncApi),
        dep("reports", "ledger", EdgeKind::AsyncMessage),
    ] {
        c = apply(c, Command::DeclareDependency(d));
    }
    c
}

#[test]
fn invalid_commands_are_refused_precisely() {
    let c = shop();
    assert!(ServiceName::parse("Bad_Name").is_err());
    assert!(ServiceName::parse("").is_err());
    assert!(Tier::new(5).is_err() && Tier::new(0).is_err());
    assert_eq!(
        c.changes(Command::RegisterService(spec("web", 2, false, "retail"))),
        Err(DomainError::AlreadyRegistered(name("web")))
    );
    assert_eq!(
        c.changes(Command::UpdateService(spec("ghost", 2, false, "x"))),
        Err(DomainError::UnknownService(name("ghost")))
    );
    assert_eq!(
        c.changes(Command::DeclareDependency(dep(
            "web",
            "web",
            EdgeKind::SyncApi
        ))),
        Err(DomainError::SelfDependency(name("web")))
    );
    assert_eq!(
        c.changes(Command::DeclareDependency(dep(
            "web",
            "ghost",
            EdgeKind::SyncApi
        ))),
        Err(DomainError::UnknownService(name("ghost")))
    );
    assert!(matches!(
        c.changes(Command::RegisterService(spec("new", 2, false, " "))),
        Err(DomainError::Invalid {
            field: "business unit",
            ..
        })
    ));
    assert_eq!(
        c.changes(Command::RemoveDependency {
            consumer: name("ledger"),
            provider: name("web")
        }),
        Err(DomainError::UnknownDependency {
            consumer: name("ledger"),
            provider: name("web")
        })
    );
    let lonely = CoDeploymentPin {
        group: "g".into(),
        services: vec![name("web")],
        reason: "r".into(),
    };
    assert!(matches!(
        c.changes(Command::PinCoDeployment(lonely)),
        Err(DomainError::Invalid {
            field: "services",
            ..
        })
    ));
    // Re-declaring the same edge or re-registering the same spec changes nothing.
    assert_eq!(
        c.changes(Command::DeclareDependency(dep(
            "web",
            "checkout",
            EdgeKind::SyncApi
        ))),
        Ok(vec![])
    );
    assert_eq!(
        c.changes(Command::UpdateService(spec("web", 2, false, "retail"))),
        Ok(vec![])
    );
}

#[test]
fn impact_is_the_reverse_closure_ranked_by_risk() {
    let c = shop();
    let hit = impact(&c, &name("ledger")).expect("impact");
    let got: Vec<(&str, u32)> = hit
        .iter()
        .map(|e| (e.service.as_str(), e.distance))
        .collect();
    // payments (tier 1, PII, db edge, d1) outranks checkout (tier 1, PII, sync, d2) and fraud
    // (tier 2, PII, sync, d2); reports is tier 4 and last.
    assert_eq!(
        got,
        vec![
            ("payments", 1),
            ("checkout", 2),
            ("fraud", 2),
            ("web", 3),
            ("reports", 1)
        ]
    );
    let payments = &hit[0];
    assert_eq!(payments.edge_kinds, BTreeSet::from([EdgeKind::Database]));
    assert!(payments.handles_personal_data);
    assert_eq!(payments.business_unit, "finance");
    assert!(impact(&c, &name("web")).expect("impact").is_empty());
    assert_eq!(
        impact(&c, &name("ghost")),
        Err(DomainError::UnknownService(name("ghost")))
    );
    // Removing an edge removes its reach.
    let c = apply(
        c,
        Command::RemoveDependency {
            consumer: name("reports"),
            provider: name("ledger"),
        },
    );
    assert!(
        impact(&c, &name("ledger"))
            .expect("impact")
            .iter()
            .all(|e| e.service.as_str() != "reports")
    );
}

#[test]
fn co_deployment_groups_merge_sync_cycles_and_pins_with_reasons() {
    let c = shop();
    let groups = co_deployment_groups(&c);
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0]
            .members
            .keys()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["fraud", "payments"]
    );
    assert!(
        groups[0].members[&name("fraud")][0].contains("synchronous dependency cycle with payments")
    );
    // An async cycle is not a co-deployment group; a pin is, and merges with the cycle it touches.
    let c = apply(
        c,
        Command::DeclareDependency(dep("ledger", "reports", EdgeKind::AsyncMessage)),
    );
    let c = apply(
        c,
        Command::PinCoDeployment(CoDeploymentPin {
            group: "money".into(),
            services: vec![name("ledger"), name("payments")],
            reason: "shared schema migration".into(),
        }),
    );
    let groups = co_deployment_groups(&c);
    assert_eq!(groups.len(), 1);
    let g = &groups[0];
    assert_eq!(g.name, "money");
    assert_eq!(
        g.members.keys().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["fraud", "ledger", "payments"]
    );
    assert_eq!(
        g.members[&name("payments")].len(),
        2,
        "cycle and pin: {:?}",
        g.members[&name("payments")]
    );
    assert_eq!(
        g.members[&name("ledger")],
        vec!["pinned in money: shared schema migration".to_owned()]
    );
}

#[test]
fn release_plan_puts_providers_first_and_groups_together() {
    let c = shop();
    let items = vec![
        (name("web"), "2.0.0".to_owned()),
        (name("checkout"), "1.4.0".to_owned()),
        (name("payments"), "3.1.0".to_owned()),
        (name("ledger"), "9.0.0".to_owned()),
    ];
    let plan = plan_release(&c, &items).expect("plan");
    let waves: Vec<Vec<&str>> = plan
        .waves
        .iter()
        .map(|w| w.iter().map(|p| p.service.as_str()).collect())
        .collect();
    // fraud comes along with payments (sync cycle) in the same wave, with no version named.
    assert_eq!(
        waves,
        vec![
            vec!["ledger"],
            vec!["fraud", "payments"],
            vec!["checkout"],
            vec!["web"]
        ]
    );
    let fraud = plan.waves[1]
        .iter()
        .find(|p| p.service.as_str() == "fraud")
        .expect("fraud planned");
    assert_eq!(fraud.version, None);
    assert_eq!(fraud.group.as_deref(), Some("sync-cycle-fraud"));
    assert_eq!(
        plan.impact
            .iter()
            .map(|e| e.service.as_str())
            .collect::<Vec<_>>(),
        ["reports"]
    );
    assert!(plan_release(&c, &[]).is_err());
    assert_eq!(
        plan_release(&c, &[(name("ghost"), "1.0.0".into())]),
        Err(DomainError::UnknownService(name("ghost")))
    );
    assert!(plan_release(&c, &[(name("web"), "1".into()), (name("web"), "2".into())]).is_err());
}

#[test]
fn deep_chains_do_not_overflow() {
    let mut c = Catalog::default();
    let n = 20_000;
    for i in 0..n {
        c.apply(&Event::ServiceRegistered(spec(
            &format!("s{i}"),
            3,
            false,
            "bu",
        )));
    }
    for i in 1..n {
        c.apply(&Event::DependencyDeclared(dep(
            &format!("s{i}"),
            &format!("s{}", i - 1),
            EdgeKind::SyncApi,
        )));
    }
    c.apply(&Event::DependencyDeclared(dep(
        "s0",
        &format!("s{}", n - 1),
        EdgeKind::SyncApi,
    )));
    let groups = co_deployment_groups(&c);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].members.len(), n);
    assert_eq!(impact(&c, &name("s0")).expect("impact").len(), n - 1);
}

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
fn matrix_lists_edges_among_chosen_services() {
    let c = shop();
    let (services, cells) = matrix(&c, &[], "finance").expect("matrix");
    assert_eq!(
        services.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        ["ledger", "payments", "reports"]
    );
    assert_eq!(
        cells
            .iter()
            .map(|d| (d.consumer.as_str(), d.provider.as_str()))
            .collect::<Vec<_>>(),
        [("payments", "ledger"), ("reports", "ledger")]
    );
    assert_eq!(
        matrix(&c, &[name("ghost")], ""),
        Err(DomainError::UnknownService(name("ghost")))
    );
}

fn deploy(c: Catalog, env: &str, s: &str, v: &str, at: i64) -> Catalog {
    let at = Timestamp(at);
    apply(
        c,
        Command::RecordDeployment(Deployment {
            environment: env.into(),
            service: name(s),
            version: semver::Version::parse(v).expect("semver"),
            at,
        }),
    )
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

#[test]
fn a_cycle_closing_through_a_pin_joins_the_group_and_pins_are_distinct() {
    let mut c = Catalog::default();
    for s in ["a", "b", "c", "d"] {
        c = apply(c, Command::RegisterService(spec(s, 2, false, "bu")));
    }
    c = apply(
        c,
        Command::DeclareDependency(dep("a", "b", EdgeKind::SyncApi)),
    );
    c = apply(
        c,
        Command::DeclareDependency(dep("c", "a", EdgeKind::SyncApi)),
    );
    c = apply(
        c,
        Command::PinCoDeployment(CoDeploymentPin {
            group: "bc".into(),
            services: vec![name("b"), name("c")],
            reason: "shared table".into(),
        }),
    );
    let groups = co_deployment_groups(&c);
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0]
            .members
            .keys()
            .map(|s| s.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
    assert!(
        groups[0].members[&name("a")][0].contains("through the services pinned in bc"),
        "{:?}",
        groups[0].members[&name("a")]
    );
    let twice = CoDeploymentPin {
        group: "x".into(),
        services: vec![name("d"), name("d")],
        reason: "r".into(),
    };
    assert!(matches!(
        c.changes(Command::PinCoDeployment(twice)),
        Err(DomainError::Invalid {
            field: "services",
            ..
        })
    ));
}

#[test]
fn service_names_are_dns_names_so_opentelemetry_and_namespaced_names_fit() {
    for ok in [
        "checkout",
        "checkout.svc",
        "payments.checkout.svc",
        "a1-b2.c3",
    ] {
        assert!(ServiceName::parse(ok).is_ok(), "{ok}");
    }
    for bad in [
        "",
        "Checkout",
        "checkout_svc",
        "checkout..svc",
        "checkout.",
        ".checkout",
        "-a",
        "a.-b",
        "a-.b",
        "1abc",
    ] {
        assert!(ServiceName::parse(bad).is_err(), "{bad:?}");
    }
    assert!(ServiceName::parse(&format!("a{}", ".b".repeat(126))).is_ok());
    assert!(ServiceName::parse(&format!("a{}", ".b".repeat(127))).is_err());
    assert!(ServiceName::parse(&"a".repeat(64)).is_err());
}
