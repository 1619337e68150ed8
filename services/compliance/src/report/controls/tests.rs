//! The controls tested on a small story of releases, approvals, an embargo and deviations.
use prost::Message;

use super::*;
use crate::domain::{Alert, AlertKind, SourceEvent};
use crate::report::fixture::{event, ledger, secs};

const GOV: &str = "governance";
const ORCH: &str = "orchestration";

fn g(name: &str) -> String {
    format!("flotilla.governance.v1.{name}")
}

fn opened(request: &str, release: &str, pii: bool) -> Vec<u8> {
    gv::ApprovalRequestOpened {
        request_id: request.into(),
        release: Some(gv::ReleaseFacts {
            release: release.into(),
            environment: "prod".into(),
            business_unit: "cards".into(),
            handles_personal_data: pii,
            author: "rita".into(),
            committers: vec!["carl".into()],
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

fn granted(request: &str, approver: &str, role: &str) -> Vec<u8> {
    gv::ApprovalGranted {
        request_id: request.into(),
        approval: Some(gv::Approval {
            approver: approver.into(),
            role: role.into(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

fn started(id: &str, release: &str) -> Vec<u8> {
    orch::DeploymentStarted {
        deployment: Some(orch::Deployment {
            deployment_id: id.into(),
            release: release.into(),
            environment: "prod".into(),
            business_unit: "cards".into(),
            started_by: "rita".into(),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

fn deviation(
    id: &str,
    release: &str,
    rule: gv::GateRule,
    controls: &[&str],
    expires: i64,
) -> Vec<u8> {
    gv::DeviationRequested {
        deviation: Some(gv::Deviation {
            deviation_id: id.into(),
            rule: rule as i32,
            release: release.into(),
            environment: "prod".into(),
            business_unit: "cards".into(),
            justification: "the regulator asked for the fix".into(),
            compensating_controls: controls.iter().map(|c| (*c).to_owned()).collect(),
            expires_at: Some(flotilla_runtime::kit::time::to_proto(secs(expires))),
            requested_by: "rita".into(),
            ..Default::default()
        }),
        requested_at: None,
    }
    .encode_to_vec()
}

fn decided(id: &str, approver: &str, role: &str) -> Vec<u8> {
    gv::DeviationApproved {
        deviation_id: id.into(),
        approver: approver.into(),
        role: role.into(),
        ..Default::default()
    }
    .encode_to_vec()
}

fn embargo(id: &str, from: i64, to: i64) -> Vec<u8> {
    gv::FreezeWindowCreated {
        window: Some(gv::FreezeWindow {
            window_id: id.into(),
            name: "regulator's exam".into(),
            kind: gv::WindowKind::Embargo as i32,
            scope: Some(gv::WindowScope {
                business_units: vec!["cards".into()],
                ..Default::default()
            }),
            schedule: Some(gv::freeze_window::Schedule::Once(gv::OnceSchedule {
                start: Some(flotilla_runtime::kit::time::to_proto(secs(from))),
                end: Some(flotilla_runtime::kit::time::to_proto(secs(to))),
            })),
            ..Default::default()
        }),
    }
    .encode_to_vec()
}

const DEPLOYED: &str = "flotilla.orchestration.v1.DeploymentStarted";

/// Governance's event `name` at `position`, in `stream` at `version`, recorded at second `at`.
fn gov(
    position: u64,
    stream: &str,
    version: u64,
    at: i64,
    name: &str,
    payload: Vec<u8>,
) -> SourceEvent {
    event(GOV, position, stream, version, at, &g(name), payload)
}

/// Orchestration's DeploymentStarted at `position`, recorded at second `at`.
fn deploy(position: u64, stream: &str, at: i64, payload: Vec<u8>) -> SourceEvent {
    event(ORCH, position, stream, 0, at, DEPLOYED, payload)
}

/// cards-1's request for a personal-data system opened at 10, and pam's independent peer
/// review of it at 11.
fn reviewed() -> Vec<SourceEvent> {
    vec![
        gov(
            1,
            "approval-1",
            0,
            10,
            "ApprovalRequestOpened",
            opened("r1", "cards-1", true),
        ),
        gov(
            2,
            "approval-1",
            1,
            11,
            "ApprovalGranted",
            granted("r1", "pam", PEER_REVIEW),
        ),
    ]
}

/// Two personal-data releases deployed to prod: cards-1 after an independent peer review,
/// cards-2 after a "peer review" by its own committer (and an approval by its author);
/// cards-3 (no personal data) needs none. An embargo from 100 to 200: cards-4 deployed in
/// it with a compliance officer's deviation, cards-5 with a release manager's only.
fn story() -> (Compliance, Vec<Read>, Checkpoint) {
    let mut events = reviewed();
    events.extend([
        deploy(1, "deployment-1", 12, started("d1", "cards-1")),
        gov(
            3,
            "approval-2",
            0,
            20,
            "ApprovalRequestOpened",
            opened("r2", "cards-2", true),
        ),
        gov(
            4,
            "approval-2",
            1,
            21,
            "ApprovalGranted",
            granted("r2", "carl", PEER_REVIEW),
        ),
        gov(
            5,
            "approval-2",
            2,
            22,
            "ApprovalGranted",
            granted("r2", "rita", "security"),
        ),
        deploy(2, "deployment-2", 23, started("d2", "cards-2")),
        gov(
            6,
            "approval-3",
            0,
            30,
            "ApprovalRequestOpened",
            opened("r3", "cards-3", false),
        ),
        deploy(3, "deployment-3", 31, started("d3", "cards-3")),
        gov(
            7,
            "window-1",
            0,
            90,
            "FreezeWindowCreated",
            embargo("w1", 100, 200),
        ),
        gov(
            8,
            "deviation-4",
            0,
            110,
            "DeviationRequested",
            deviation(
                "v4",
                "cards-4",
                gv::GateRule::Embargo,
                &["a second engineer watches"],
                300,
            ),
        ),
        gov(
            9,
            "deviation-4",
            1,
            111,
            "DeviationApproved",
            decided("v4", "cora", COMPLIANCE_OFFICER),
        ),
        deploy(4, "deployment-4", 112, started("d4", "cards-4")),
        gov(
            10,
            "deviation-5",
            0,
            120,
            "DeviationRequested",
            deviation("v5", "cards-5", gv::GateRule::Embargo, &[], 300),
        ),
        gov(
            11,
            "deviation-5",
            1,
            121,
            "DeviationApproved",
            decided("v5", "rex", "release-manager"),
        ),
        deploy(5, "deployment-5", 122, started("d5", "cards-5")),
        deploy(6, "deployment-6", 250, started("d6", "cards-6")),
    ]);
    ledger(events)
}

fn control<'a>(p: &'a EvidencePack, id: &str) -> &'a ControlTest {
    p.controls.iter().find(|c| c.id == id).expect("the control")
}

fn all_year() -> Period {
    Period {
        from: secs(0),
        to: secs(1_000),
    }
}

#[test]
fn a_personal_data_release_deployed_without_an_independent_peer_review_is_an_exception() {
    let (state, read, cp) = story();
    let pack = evidence_pack(&state, &read, all_year(), 25, &cp);
    let c = control(&pack, "pii-peer-review");
    // d1 and d2 touch personal data; d3 does not; d4-d6 have no approval request.
    assert_eq!(c.population, 2);
    assert_eq!(c.conclusion, Conclusion::ExceptionsFound);
    assert_eq!(c.exceptions.len(), 1);
    assert!(
        c.exceptions[0].subject.contains("deployment d2"),
        "{:?}",
        c.exceptions
    );
    assert_eq!(c.samples.len(), 1);
    assert!(c.samples[0].detail.contains("peer-reviewed by pam"));
    // The sample cites the deployment, the request and the review, each proven.
    let cited: Vec<_> = c.samples[0]
        .events
        .iter()
        .map(|l| (l.service.as_str(), l.sequence))
        .collect();
    assert_eq!(cited, [(ORCH, 1), (GOV, 1), (GOV, 2)]);
    assert!(c.samples[0].events.iter().all(|l| !l.proof.is_empty()));
}

#[test]
fn an_approval_by_the_author_or_a_committer_breaks_segregation_of_duties() {
    let (state, read, cp) = story();
    let c = evidence_pack(&state, &read, all_year(), 25, &cp)
        .controls
        .into_iter()
        .find(|c| c.id == "segregation-of-duties")
        .expect("control");
    assert_eq!(c.population, 3);
    let mut found: Vec<_> = c.exceptions.iter().map(|e| e.detail.clone()).collect();
    found.sort();
    assert_eq!(
        found,
        [
            "carl approved as peer-review a release they committed to",
            "rita approved as security a release they wrote",
        ]
    );
}

#[test]
fn a_deployment_inside_an_embargo_needs_a_compliance_officers_deviation() {
    let (state, read, cp) = story();
    let pack = evidence_pack(&state, &read, all_year(), 25, &cp);
    let c = control(&pack, "embargo");
    // d4 and d5 started inside the embargo; d1-d3 before it, d6 after it.
    assert_eq!(c.population, 2);
    assert_eq!(c.exceptions.len(), 1);
    assert!(c.exceptions[0].subject.contains("deployment d5"));
    assert!(c.samples[0].detail.contains("waived by cora"));
    assert_eq!(c.operated.len(), 1, "the embargo declared");

    let r = control(&pack, "deviation-register");
    assert_eq!(r.population, 2);
    assert_eq!(r.exceptions.len(), 1);
    assert_eq!(
        r.exceptions[0].detail,
        "no compensating control; an embargo was waived by a release-manager, not a compliance-officer"
    );
}

#[test]
fn the_period_bounds_the_population_and_the_sample_is_reproducible() {
    let (state, read, cp) = story();
    let early = Period {
        from: secs(0),
        to: secs(100),
    };
    let pack = evidence_pack(&state, &read, early, 25, &cp);
    assert_eq!(
        control(&pack, "embargo").conclusion,
        Conclusion::NotExercised
    );
    assert_eq!(control(&pack, "deviation-register").population, 0);
    assert_eq!(control(&pack, "pii-peer-review").population, 2);

    // One sample per control: the same checkpoint draws the same one, and no control gives
    // more than was asked.
    let one = evidence_pack(&state, &read, all_year(), 1, &cp);
    let again = evidence_pack(&state, &read, all_year(), 1, &cp);
    let subjects = |p: &EvidencePack| -> Vec<String> {
        p.controls
            .iter()
            .flat_map(|c| c.samples.iter().map(|s| s.subject.clone()))
            .collect()
    };
    assert_eq!(subjects(&one), subjects(&again));
    assert!(one.controls.iter().all(|c| c.samples.len() <= 1));
}

#[test]
fn a_chain_alert_in_the_period_is_an_exception_to_the_ledgers_integrity() {
    let (mut state, read, cp) = story();
    let pack = evidence_pack(&state, &read, all_year(), 25, &cp);
    let c = control(&pack, "ledger-integrity");
    assert_eq!((c.population, c.conclusion), (17, Conclusion::Effective));
    state.alerts.push(Alert {
        number: 1,
        kind: AlertKind::Mismatch,
        service: ORCH.into(),
        sequence: 4,
        last: 4,
        expected: "aa".into(),
        found: "bb".into(),
        detail: "event 4's previous hash is not event 3's hash".into(),
        event_id: Some(read[12].0.event.id),
        raised_at: secs(113),
    });
    let pack = evidence_pack(&state, &read, all_year(), 25, &cp);
    let c = control(&pack, "ledger-integrity");
    assert_eq!(c.conclusion, Conclusion::ExceptionsFound);
    assert_eq!(c.exceptions[0].subject, "mismatch of orchestration at 4");
    assert_eq!(c.exceptions[0].events[0].sequence, 4);
    let later = Period {
        from: secs(200),
        to: secs(1_000),
    };
    let pack = evidence_pack(&state, &read, later, 25, &cp);
    assert_eq!(control(&pack, "ledger-integrity").exceptions.len(), 0);
}

#[test]
fn an_embargo_declared_after_a_deployment_started_does_not_make_it_an_exception() {
    // The window's schedule covers the deployment (100 to 200, deployed at 120), but it was
    // declared at 150: governance's gate did not know it when the deployment started.
    let (state, read, cp) = ledger(vec![
        deploy(1, "deployment-1", 120, started("d1", "cards-1")),
        gov(
            1,
            "window-1",
            0,
            150,
            "FreezeWindowCreated",
            embargo("w1", 100, 200),
        ),
    ]);
    let pack = evidence_pack(&state, &read, all_year(), 25, &cp);
    assert_eq!(control(&pack, "embargo").population, 0);
}

#[test]
fn a_peer_review_of_a_request_opened_again_since_does_not_count() {
    // Governance opened the request again (its facts changed, approvals start over): pam's
    // review of the first request does not cover the deployment after the second.
    let mut events = reviewed();
    events.extend([
        gov(
            3,
            "approval-1",
            2,
            12,
            "ApprovalRequestOpened",
            opened("r2", "cards-1", true),
        ),
        deploy(1, "deployment-1", 13, started("d1", "cards-1")),
    ]);
    let (state, read, cp) = ledger(events);
    let pack = evidence_pack(&state, &read, all_year(), 25, &cp);
    let c = control(&pack, "pii-peer-review");
    assert_eq!((c.population, c.exceptions.len()), (1, 1), "{c:?}");
    assert!(c.exceptions[0].detail.contains("of request r2"));
}

#[test]
fn an_alert_raised_when_no_event_was_recorded_is_still_an_exception() {
    let (mut state, read, cp) = story();
    state.alerts.push(Alert {
        number: 1,
        kind: AlertKind::Gap,
        service: ORCH.into(),
        sequence: 7,
        last: 9,
        expected: String::new(),
        found: String::new(),
        detail: "positions 7 to 9 of orchestration did not arrive".into(),
        event_id: None,
        raised_at: secs(600),
    });
    let quiet = Period {
        from: secs(500),
        to: secs(700),
    };
    let pack = evidence_pack(&state, &read, quiet, 25, &cp);
    let c = control(&pack, "ledger-integrity");
    assert_eq!(c.population, 0);
    assert_eq!(c.conclusion, Conclusion::ExceptionsFound);
}

#[test]
fn only_governance_approves() {
    // An event of another service with governance's type is not an approval.
    let (state, read, cp) = ledger(vec![
        gov(
            1,
            "approval-1",
            0,
            10,
            "ApprovalRequestOpened",
            opened("r1", "cards-1", true),
        ),
        event(
            ORCH,
            1,
            "approval-1",
            1,
            11,
            &g("ApprovalGranted"),
            granted("r1", "pam", PEER_REVIEW),
        ),
        deploy(2, "deployment-1", 13, started("d1", "cards-1")),
    ]);
    let pack = evidence_pack(&state, &read, all_year(), 25, &cp);
    assert_eq!(control(&pack, "segregation-of-duties").population, 0);
    assert_eq!(control(&pack, "pii-peer-review").exceptions.len(), 1);
}

#[test]
fn the_sample_is_the_lowest_ranked_passing_cases() {
    let mut events = vec![gov(
        1,
        "approval-1",
        0,
        10,
        "ApprovalRequestOpened",
        opened("r1", "cards-1", false),
    )];
    for (i, who) in ["ana", "ben", "cyd", "dee", "eve"].iter().enumerate() {
        let p = i as u64 + 2;
        events.push(event(
            GOV,
            p,
            "approval-1",
            p - 1,
            10 + p as i64,
            &g("ApprovalGranted"),
            granted("r1", who, "security"),
        ));
    }
    let (state, read, cp) = ledger(events);
    let pack = evidence_pack(&state, &read, all_year(), 2, &cp);
    let c = control(&pack, "segregation-of-duties");
    assert_eq!(c.population, 5);
    let mut keys: Vec<String> = read[1..]
        .iter()
        .map(|(l, _)| l.event.id.to_string())
        .collect();
    keys.sort_by_key(|k| rank(&cp.root, "segregation-of-duties", k));
    let drawn: Vec<&str> = c.samples.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(drawn, [keys[0].as_str(), keys[1].as_str()]);
}
