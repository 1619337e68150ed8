//! Graph queries: impact, co-deployment groups, release plans, the matrix.

use super::*;

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
