//! Governance's domain tests: helpers here, tests by family.

use std::collections::BTreeSet;

use flotilla_core::decider::{Decider, Decision};
use flotilla_core::ids::StreamId;
use flotilla_core::testing::Scenario;
use uuid::Uuid;

use super::*;

const MIN: i64 = 60_000_000;
/// 2026-11-02T00:00:00Z, a Monday.
const T0: Timestamp = Timestamp(1_793_577_600_000_000);

fn at(minutes: i64) -> Timestamp {
    Timestamp(T0.0 + minutes * MIN)
}

fn actor(subject: &str, roles: &[&str], bu: &str) -> Actor {
    Actor {
        subject: subject.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        business_unit: bu.into(),
    }
}

fn service(bu: &str, tier: u8, pii: bool) -> String {
    crate::testing::service_name(bu, tier, pii)
}

/// Governance knowing a catalog of services of every unit the tests use, each tier, with and
/// without personal data.
fn with_catalog() -> Scenario<Governance> {
    let mut g = Scenario::default();
    for service in
        crate::testing::every_kind(&["payments", "cards", "finance", "retail", "lending"])
    {
        run(
            &mut g,
            Command::RecordCatalogService(RecordCatalogService {
                service,
                source_event_id: Uuid::now_v7(),
                source_sequence: 1,
            }),
        )
        .expect("catalog");
    }
    g
}

fn facts(release: &str, env: &str, tier: u8, risk: u8, pii: bool) -> ReleaseFacts {
    ReleaseFacts {
        release: release.into(),
        version: "1.4.0".into(),
        environment: env.into(),
        service: service("payments", tier, pii),
        business_unit: "payments".into(),
        tier,
        risk_score: risk,
        personal_data: pii,
        author: "alice".into(),
        committers: vec!["carol".into()],
    }
}

/// The roles of the shipped access policy.
fn roles() -> BTreeSet<String> {
    flotilla_auth::KNOWN_ROLES
        .iter()
        .map(|r| (*r).to_owned())
        .collect()
}

fn key(release: &str, env: &str) -> ReleaseEnv {
    ReleaseEnv {
        release: release.into(),
        environment: env.into(),
    }
}

/// Decides a command and records its events as the store would (with their envelopes).
fn run(g: &mut Scenario<Governance>, c: Command) -> Result<StreamId> {
    g.apply(c).map(|d| d.stream_id)
}

/// Records every deadline passed by `now`, as the scheduler does.
fn record_deadlines(g: &mut Scenario<Governance>, now: Timestamp) {
    for key in g.due(now) {
        run(g, Command::RecordDeadline(RecordDeadline { key, now })).expect("deadline");
    }
}

fn open(g: &mut Scenario<Governance>, f: ReleaseFacts, emergency: bool, when: Timestamp) {
    run(
        g,
        Command::OpenApprovalRequest(OpenApprovalRequest {
            id: Uuid::new_v5(
                &Uuid::NAMESPACE_OID,
                format!("{}/{}/{}", f.release, f.environment, when.0).as_bytes(),
            ),
            release: f,
            emergency,
            authoritative: false,
            authorized_unit: None,
            by: actor("rm", &["release-manager"], "payments"),
            at: when,
        }),
    )
    .expect("open");
}

fn approve(
    g: &mut Scenario<Governance>,
    k: &ReleaseEnv,
    who: &Actor,
    role: &str,
    when: Timestamp,
) -> Result<StreamId> {
    run(
        g,
        Command::Approve(Approve {
            key: k.clone(),
            role: role.into(),
            comment: String::new(),
            by: who.clone(),
            at: when,
        }),
    )
}

fn window(name: &str, kind: WindowKind, schedule: Schedule, scope: WindowScope) -> Command {
    Command::CreateFreezeWindow(CreateFreezeWindow {
        window: FreezeWindow {
            id: Uuid::new_v5(&Uuid::NAMESPACE_OID, name.as_bytes()),
            name: name.into(),
            kind,
            scope,
            schedule,
            reason: String::new(),
            created_by: "rm".into(),
            // Known from the start of time, unless a test says otherwise.
            created_at: Timestamp(0),
            business_unit: String::new(),
            cancelled: false,
            cancelled_at: None,
        },
        by: actor("cora", &["compliance-officer"], "central"),
    })
}

mod approvals;
mod deadlines;
mod gate;
mod input;
mod policy;
mod scenarios;
mod windows;
