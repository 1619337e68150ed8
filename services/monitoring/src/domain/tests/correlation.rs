//! The releases suspected of an anomaly, through the dependency graph.

use std::collections::{BTreeMap, BTreeSet};

use super::super::*;
use super::{T0, at};

fn landed(d: &str, service: &str, env: &str, minutes: i64) -> DeploymentNote {
    DeploymentNote {
        deployment: d.into(),
        release: format!("rel-{d}"),
        service: service.into(),
        version: "2.0.0".into(),
        environment: env.into(),
        business_unit: "payments".into(),
        outcome: Outcome::Succeeded,
        started_at: at(minutes - 1),
        finished_at: at(minutes),
    }
}

/// web -> api -> ledger -> db; api -> fraud.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (c, p) in [
        ("web", "api"),
        ("api", "ledger"),
        ("ledger", "db"),
        ("api", "fraud"),
    ] {
        g.entry(c.into()).or_default().insert(p.into());
    }
    g
}

#[test]
fn releases_of_the_service_and_what_it_depends_on_are_ranked_by_distance_then_time() {
    let history = vec![
        landed("d1", "ledger", "prod", 10),
        landed("d2", "api", "prod", 30),
        landed("d3", "db", "prod", 50),
        landed("d4", "fraud", "prod", 55),
        // What depends on api is not a cause of api's anomaly; another environment is not.
        landed("d5", "web", "prod", 58),
        landed("d6", "ledger", "staging", 58),
        // Before the window.
        landed("d7", "ledger", "prod", -200),
    ];
    let s = suspects(
        &history,
        &graph(),
        &Anomaly {
            service: "api".into(),
            environment: "prod".into(),
            at: at(60),
            window_minutes: 120,
            max_depth: 3,
        },
    )
    .expect("suspects");
    let ranked: Vec<(&str, usize)> = s
        .iter()
        .map(|x| (x.deployment.as_str(), x.distance))
        .collect();
    assert_eq!(ranked, [("d2", 0), ("d4", 1), ("d1", 1), ("d3", 2)]);
    assert_eq!(s[3].path, ["api", "ledger", "db"]);
    assert_eq!(
        s[3].why,
        "api depends on db (api -> ledger -> db), and db 2.0.0 of release rel-d3 was deployed 10 min before"
    );
    assert!(
        s[0].why.contains("deployed to api itself 30 min before"),
        "{}",
        s[0].why
    );
    let near = suspects(
        &history,
        &graph(),
        &Anomaly {
            service: "api".into(),
            environment: "prod".into(),
            at: at(60),
            window_minutes: 120,
            max_depth: 1,
        },
    )
    .expect("suspects");
    assert!(near.iter().all(|x| x.distance <= 1));
    let _ = T0;
}
