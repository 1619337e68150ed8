//! Promotion along the path with every reason at once; capacity across units.

#![allow(unused_imports)]

use std::collections::{BTreeMap, BTreeSet};

use flotilla_core::decider::Decider;
use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::*;

#[test]
fn promotion_follows_the_path_and_says_every_reason_at_once() {
    let mut s = world();
    s.apply(create(
        "r0",
        "payments",
        vec![item("web", Strategy::Rolling, vec![])],
    ))
    .expect("created");
    // Not planned: refused, nothing recorded.
    let s = s
        .when(promote(release_id("r0"), "dev", allowed(), 3))
        .then_refused(
            |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("not planned")),
        );
    let (s, r) = released(s, "r1");
    // Skipping dev.
    let s = s
        .when(promote(r, "test", allowed(), 3))
        .then_refused(|e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("promote it into dev first")));
    // Governance's reasons come through with the others.
    let denied = GateAnswer {
        allowed: false,
        reasons: vec!["freeze window \"close\" is active".into()],
    };
    let mut s = s
        .when(promote(r, "dev", denied, 3))
        .then_refused(|e| matches!(e, DomainError::Blocked { reasons, .. } if reasons == &vec!["governance: freeze window \"close\" is active".to_owned()]));
    s.apply(promote(r, "dev", allowed(), 3)).expect("into dev");
    let d = s.releases[&r].deployments[0];
    // A second promotion while the first runs.
    let mut s = s.when(promote(r, "dev", allowed(), 4)).then_refused(
        |e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("is being deployed")),
    );
    drive(&mut s, d, None, 5);
    assert_eq!(s.deployments[&d].status, DeploymentStatus::Succeeded);
    assert_eq!(
        s.environment("payments", "dev")
            .expect("dev")
            .running
            .get("ledger")
            .map(String::as_str),
        Some("2.0.0")
    );
    s.apply(promote(r, "test", allowed(), 100))
        .expect("into test");
    let d = s.releases[&r].deployments[1];
    drive(&mut s, d, None, 101);
    s.apply(promote(r, "staging", allowed(), 200))
        .expect("into staging");
    let d = s.releases[&r].deployments[2];
    drive(&mut s, d, None, 201);
    // Leaving staging: its check and both teams' sign-offs are missing; prod's database cluster
    // is held by cards; governance denies too. Every reason, once.
    let mut cards = world_cards_on_the_cluster(s);
    let reasons = match cards.state().decide(promote(
        r,
        "prod",
        GateAnswer {
            allowed: false,
            reasons: vec!["no approval request".into()],
        },
        300,
    )) {
        Err(DomainError::Blocked { reasons, .. }) => reasons,
        other => panic!("{other:?}"),
    };
    assert!(
        reasons
            .iter()
            .any(|x| x.starts_with("governance: no approval request")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("check smoke has not been recorded")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|x| x.contains("qa has no test window")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|x| x.contains("security has no test window")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|x| x.starts_with("CapacityConflict: db-cluster")
                && x.contains("release c1 of cards")),
        "{reasons:?}"
    );
    // Checks, sign-offs in their windows, the cluster free: allowed.
    let mut run = |c: Command| cards.apply(c).expect("setup");
    run(RecordValidation {
        business_unit: "payments".into(),
        environment: "staging".into(),
        release: "r1".into(),
        check: "smoke".into(),
        passed: true,
        at: at(301),
    }
    .into());
    for (i, team) in ["qa", "security"].into_iter().enumerate() {
        let window = Uuid::from_u128(i as u128 + 1);
        run(BookTestWindow {
            business_unit: "payments".into(),
            environment: "staging".into(),
            window: TestWindow {
                id: window,
                release: "r1".into(),
                team: team.into(),
                start: at(310 + 20 * i as i64),
                end: at(320 + 20 * i as i64),
                signed_off: None,
            },
            at: at(302),
        }
        .into());
        run(SignOffTestWindow {
            business_unit: "payments".into(),
            environment: "staging".into(),
            window,
            sign_off: SignOff {
                by: format!("{team}-lead"),
                at: at(315 + 20 * i as i64),
                passed: true,
                comment: String::new(),
            },
        }
        .into());
    }
    let cards_deployment = cards.releases[&release_id("c1")].deployments[0];
    drive(&mut cards, cards_deployment, None, 360);
    cards
        .when(promote(r, "prod", allowed(), 400))
        .then_on(&StreamKey::Deployment(deployment_id(r, 3)).stream(), |e| {
            assert!(matches!(&e[0], Event::DeploymentStarted(d) if d.holds == vec!["db-cluster".to_owned()]));
        });
}

/// `s` with cards' release c1 deploying into cards/dev, which holds the database cluster.
fn world_cards_on_the_cluster(mut s: Scenario<Orchestration>) -> Scenario<Orchestration> {
    s.apply(
        RegisterArtifact {
            artifact: artifact("cardsvc", "1.0.0", 40),
        }
        .into(),
    )
    .expect("artifact");
    s.apply(create(
        "c1",
        "cards",
        vec![item("cardsvc", Strategy::Rolling, vec![])],
    ))
    .expect("created");
    let p = ReleasePlan {
        waves: vec![vec![PlannedService {
            service: "cardsvc".into(),
            version: None,
            group: None,
        }]],
        impact: vec![],
        skew: vec![],
    };
    s.apply(
        PlanRelease {
            release: release_id("c1"),
            plan: p,
            at: at(250),
        }
        .into(),
    )
    .expect("planned");
    s.apply(promote(release_id("c1"), "dev", allowed(), 251))
        .expect("cards into dev");
    s
}
