//! A failed step under governance's rollback criteria: the deployment holds for the decision
//! until the tier's time limit, then rolls back when people (or the limit) say so, or ends
//! failed where it stands when people decide not to roll back.

use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::*;

const DECISION: Uuid = Uuid::from_u128(0xdec1);

fn hold(decide_by: i64) -> RollbackHold {
    RollbackHold {
        decision: DECISION,
        decide_by: at(decide_by),
        notify: vec!["release-manager".into(), "service-owner".into()],
    }
}

/// Into dev, the steps run until web's rollout, which fails with `hold`; answers the
/// deployment and the time.
fn failed_with(hold: Option<RollbackHold>) -> (Scenario<Orchestration>, Uuid, Uuid, i64) {
    let (mut s, r) = released(world(), "r1");
    s.apply(promote(r, "dev", allowed(), 3)).expect("dev");
    let d = s.releases[&r].deployments[0];
    let mut t = 4;
    loop {
        t += 1;
        let dep = s.deployments[&d].clone();
        match dep.next() {
            Next::Start(index) => {
                s.apply(
                    StartStep {
                        deployment: d,
                        index,
                        at: at(t),
                    }
                    .into(),
                )
                .expect("start");
            }
            Next::Running(index) => {
                let web = dep.step(index).is_some_and(|st| st.service == "web");
                let c = FinishStep {
                    deployment: d,
                    index,
                    outcome: ok(!web),
                    at: at(t),
                    hold: if web { hold.clone() } else { None },
                };
                s.apply(c.into()).expect("finish");
                if web {
                    return (s, r, d, t);
                }
            }
            Next::WaitUntil(index, _) => {
                let c = FinishStep {
                    deployment: d,
                    index,
                    outcome: ok(true),
                    at: at(t),
                    hold: None,
                };
                s.apply(c.into()).expect("wait over");
            }
            Next::Waiting(_) => {
                let c = RecordAnalysis {
                    deployment: d,
                    name: "api-smoke".into(),
                    verdict: Verdict::Passed,
                    detail: String::new(),
                    at: at(t),
                };
                s.apply(c.into()).expect("analysis");
            }
            other => panic!("web's rollout never ran: {other:?}"),
        }
    }
}

#[test]
fn a_failed_step_holds_for_the_decision_and_touches_nothing_more() {
    let (s, _, d, t) = failed_with(Some(hold(1_000)));
    let dep = &s.deployments[&d];
    match &dep.status {
        DeploymentStatus::AwaitingRollbackDecision {
            decision,
            decide_by,
            notify,
            reason,
        } => {
            assert_eq!(*decision, DECISION);
            assert_eq!(*decide_by, at(1_000));
            assert_eq!(notify, &["release-manager", "service-owner"]);
            assert!(
                reason.contains("web") && reason.contains("exit code 1"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(dep.next(), Next::Decide(at(1_000)));
    assert!(
        kinds(dep, true).is_empty(),
        "no rollback step is planned yet"
    );
    assert!(!dep.status.is_over(), "it still holds the environment");
    // Nothing runs while it waits: no step can start or finish.
    let refused = Scenario::clone(&s).when(
        StartStep {
            deployment: d,
            index: 0,
            at: at(t + 1),
        }
        .into(),
    );
    refused.then_refused(|e| matches!(e, DomainError::FailedPrecondition(_)));
}

#[test]
fn a_decision_to_roll_back_rolls_back_everything_touched() {
    let (s, r, d, t) = failed_with(Some(hold(1_000)));
    let mut s = s
        .when(
            RollbackRelease {
                release: r,
                reason: "rollback decision taken in governance".into(),
                by: "rita".into(),
                at: at(t + 1),
            }
            .into(),
        )
        .then_on(&StreamKey::Deployment(d).stream(), |e| {
            assert!(matches!(&e[0], Event::RollbackStarted { .. }), "{e:?}");
        });
    drive(&mut s, d, None, t + 2);
    let dep = &s.deployments[&d];
    assert!(
        matches!(&dep.status, DeploymentStatus::RolledBack { reason } if reason.contains("by rita")),
        "{:?}",
        dep.status
    );
    assert_eq!(
        kinds(dep, true),
        [
            "web:rollback-deploy",
            "api:rollback-deploy",
            "ledger:rollback-deploy",
            "ledger:rollback-migrate"
        ]
    );
}

#[test]
fn a_decision_not_to_roll_back_ends_it_failed_where_it_stands() {
    let (s, r, d, t) = failed_with(Some(hold(1_000)));
    // Another decision's answer changes nothing.
    let s = s
        .when(
            DeclineRollback {
                deployment: d,
                decision: Uuid::from_u128(0xbad),
                by: "rita".into(),
                comment: String::new(),
                at: at(t + 1),
            }
            .into(),
        )
        .then_refused(|e| matches!(e, DomainError::FailedPrecondition(m) if m.contains("awaits rollback decision")));
    let mut s = s
        .when(
            DeclineRollback {
                deployment: d,
                decision: DECISION,
                by: "rita".into(),
                comment: "fixing forward in 2.0.1".into(),
                at: at(t + 1),
            }
            .into(),
        )
        .then_on(&StreamKey::Deployment(d).stream(), |e| {
            assert!(
                matches!(e, [Event::DeploymentCompleted { ending: Ending::Failed { reason }, .. }]
                if reason.contains("rita decided not to roll back (fixing forward in 2.0.1)")),
                "{e:?}"
            );
        });
    let dep = &s.deployments[&d];
    assert!(matches!(dep.status, DeploymentStatus::Failed { .. }));
    // What succeeded stays: ledger and api run the new version in dev.
    let dev = s.environment("payments", "dev").expect("dev");
    assert!(dev.running.contains_key("ledger") && dev.running.contains_key("api"));
    assert!(!dev.running.contains_key("web"));
    // It can still be rolled back by hand.
    s.apply(
        RollbackRelease {
            release: r,
            reason: "the fix is late".into(),
            by: "rita".into(),
            at: at(t + 2),
        }
        .into(),
    )
    .expect("rolled back by hand");
    drive(&mut s, d, None, t + 3);
    assert!(matches!(
        s.deployments[&d].status,
        DeploymentStatus::RolledBack { .. }
    ));
}

#[test]
fn a_decision_already_past_its_deadline_rolls_back_at_once() {
    // A deadline no later than the failure (a decision found again after a lost answer, long
    // after it was opened) leaves nobody time to decide.
    let (_, t) = {
        let (s, _, d, t) = failed_with(None);
        (s.deployments[&d].clone(), t)
    };
    let (s, _, d, _) = failed_with(Some(hold(t)));
    assert!(
        matches!(
            s.deployments[&d].status,
            DeploymentStatus::RollingBack { .. }
        ),
        "{:?}",
        s.deployments[&d].status
    );
}
