//! Retention, holds and erasures decided on the ledger's state.

use flotilla_core::chain::Hash;
use flotilla_core::decider::{Decider, Recorded};
use flotilla_core::personal::{KeyId, SubjectKey};
use uuid::Uuid;

use super::tests::event_at;
use super::*;

const DAY: i64 = 86_400_000_000;
/// 2026-01-01T00:00:00Z.
const T: i64 = 1_767_225_600_000_000;

fn key(n: u128) -> SubjectKey {
    SubjectKey::new(KeyId(Uuid::from_u128(n)), [n as u8; 32])
}

/// The ledger after taking one event whose actor is `actor`'s token and whose payload holds
/// `inside`'s, recorded at `at`.
fn ledger_with(service: &str, event_type: &str, actor: u128, inside: u128, at: i64) -> Compliance {
    let mut c = Compliance::default();
    let mut e = event_at(service, 1, Hash::GENESIS);
    e.event_type = event_type.into();
    e.metadata.actor = key(actor).seal("erin@bank.example");
    e.payload = format!(
        "\u{12}\u{4}INC7\u{1a}{}",
        key(inside).seal("zoe@example.com")
    )
    .into_bytes();
    e.recorded_at = Timestamp(at);
    e.hash = e.recomputed_hash();
    let decision = c
        .decide(Command::Ledger(Box::new(LedgerEvent {
            event: e,
            now: Timestamp(at),
        })))
        .expect("ledgered");
    for (i, ev) in decision.events.into_iter().enumerate() {
        c.evolve(&Recorded {
            event: ev,
            stream_id: ledger_stream(),
            stream_version: i as u64,
            position: i as u64 + 1,
            recorded_at: Timestamp(at),
            metadata: Default::default(),
        });
    }
    c
}

fn apply(c: &mut Compliance, command: Command) -> Result<usize> {
    let d = c.decide(command)?;
    let n = d.events.len();
    for ev in d.events {
        c.evolve(&Recorded {
            event: ev,
            stream_id: retention_stream(),
            stream_version: 0,
            position: 0,
            recorded_at: Timestamp(T),
            metadata: Default::default(),
        });
    }
    Ok(n)
}

fn policy(
    name: &str,
    regulation: Regulation,
    class: DataClass,
    keep: u32,
    personal: u32,
) -> Command {
    Command::SetRetentionPolicy(RetentionPolicy {
        name: name.into(),
        regulation,
        data_class: class,
        keep_days: keep,
        personal_data_days: personal,
        set_by: "cora".into(),
        set_at: Timestamp(T),
    })
}

fn erase(subject: u128, at: i64) -> Command {
    Command::EraseSubject(Erasure {
        subject: Uuid::from_u128(subject),
        reason: "GDPR art. 17 request".into(),
        request_ref: "DSR-1".into(),
        erased_by: "cora".into(),
        erased_at: Timestamp(at),
        automatic: false,
    })
}

fn governance() -> DataClass {
    DataClass {
        services: vec!["governance".into()],
        event_types: vec!["flotilla.governance.v1.".into()],
        business_unit: String::new(),
    }
}

#[test]
fn the_ledger_notes_every_subject_an_event_holds_sealed() {
    let c = ledger_with(
        "governance",
        "flotilla.governance.v1.ApprovalGranted",
        1,
        2,
        T,
    );
    let mut seen: Vec<&Uuid> = c.retention.subjects.keys().collect();
    seen.sort();
    assert_eq!(seen, [&Uuid::from_u128(1), &Uuid::from_u128(2)]);
    let a = &c.retention.subjects[&Uuid::from_u128(2)][0];
    assert_eq!(
        (
            a.service.as_str(),
            a.event_type.as_str(),
            a.business_unit.as_str(),
            a.last
        ),
        (
            "governance",
            "flotilla.governance.v1.ApprovalGranted",
            "payments",
            Timestamp(T)
        )
    );
}

#[test]
fn sox_keeps_approval_records_seven_years_then_lets_them_go() {
    let mut c = ledger_with(
        "governance",
        "flotilla.governance.v1.ApprovalGranted",
        1,
        2,
        T,
    );
    apply(
        &mut c,
        policy("sox-approvals", Regulation::Sox, governance(), 0, 0),
    )
    .expect("set");
    assert_eq!(
        c.retention.policies["sox-approvals"].keep_days, 2557,
        "SOX's default"
    );
    // Neither below the regulation's period, nor shortened once set.
    assert!(matches!(
        apply(
            &mut c,
            policy("sox-short", Regulation::Sox, governance(), 30, 0)
        ),
        Err(DomainError::Invalid { .. })
    ));
    apply(
        &mut c,
        policy("sox-approvals", Regulation::Sox, governance(), 3000, 0),
    )
    .expect("longer");
    assert!(matches!(
        apply(
            &mut c,
            policy("sox-approvals", Regulation::Sox, governance(), 2557, 0)
        ),
        Err(DomainError::FailedPrecondition(_))
    ));
    let refused = apply(&mut c, erase(1, T + 365 * DAY)).expect_err("kept");
    let DomainError::FailedPrecondition(why) = refused else {
        panic!("{refused:?}")
    };
    assert!(why.contains("SOX retention (sox-approvals)"), "{why}");
    // 2026-01-01 plus 3000 days.
    assert!(why.contains("until 2034-03-20"), "{why}");
    assert_eq!(apply(&mut c, erase(1, T + 3001 * DAY)), Ok(1));
    // Erased once: asking again records nothing (the edge still destroys the key).
    assert_eq!(apply(&mut c, erase(1, T + 3002 * DAY)), Ok(0));
}

#[test]
fn a_policy_of_another_class_keeps_nothing_here() {
    let mut c = ledger_with(
        "monitoring",
        "flotilla.monitoring.v1.TicketRecorded",
        1,
        2,
        T,
    );
    apply(
        &mut c,
        policy("sox-approvals", Regulation::Sox, governance(), 0, 0),
    )
    .expect("set");
    apply(
        &mut c,
        policy(
            "hipaa-health",
            Regulation::Hipaa,
            DataClass {
                business_unit: "health".into(),
                ..DataClass::default()
            },
            0,
            0,
        ),
    )
    .expect("set");
    assert_eq!(
        c.retention.policies["hipaa-health"].keep_days, 2192,
        "HIPAA's default"
    );
    assert_eq!(apply(&mut c, erase(2, T + DAY)), Ok(1));
}

#[test]
fn a_legal_hold_keeps_its_subjects_until_released() {
    let mut c = ledger_with(
        "monitoring",
        "flotilla.monitoring.v1.TicketRecorded",
        1,
        2,
        T,
    );
    apply(
        &mut c,
        Command::PlaceLegalHold(LegalHold {
            id: "hold-doe".into(),
            matter: "Doe v. Bank".into(),
            data_class: DataClass::default(),
            subjects: vec![Uuid::from_u128(1)],
            placed_by: "cora".into(),
            placed_at: Timestamp(T),
            released_by: String::new(),
            released_at: None,
        }),
    )
    .expect("placed");
    let refused = apply(&mut c, erase(1, T + DAY)).expect_err("held");
    assert!(
        refused
            .to_string()
            .contains("legal hold hold-doe (Doe v. Bank)"),
        "{refused}"
    );
    assert_eq!(
        apply(&mut c, erase(2, T + DAY)),
        Ok(1),
        "another subject is not held"
    );
    let release = || {
        Command::ReleaseLegalHold(ReleaseLegalHold {
            id: "hold-doe".into(),
            by: "cora".into(),
            at: Timestamp(T + 2 * DAY),
        })
    };
    apply(&mut c, release()).expect("released");
    assert!(matches!(
        apply(&mut c, release()),
        Err(DomainError::FailedPrecondition(_))
    ));
    assert_eq!(apply(&mut c, erase(1, T + 3 * DAY)), Ok(1));
}

#[test]
fn the_minimisation_sweep_erases_subjects_past_their_gdpr_limit_and_no_one_kept() {
    let mut c = ledger_with(
        "monitoring",
        "flotilla.monitoring.v1.TicketRecorded",
        1,
        2,
        T,
    );
    let tickets = DataClass {
        services: vec!["monitoring".into()],
        event_types: vec!["flotilla.monitoring.v1.TicketRecorded".into()],
        business_unit: String::new(),
    };
    assert!(matches!(
        apply(
            &mut c,
            policy("gdpr-tickets", Regulation::Gdpr, tickets.clone(), 0, 0)
        ),
        Err(DomainError::Invalid { .. })
    ));
    apply(
        &mut c,
        policy("gdpr-tickets", Regulation::Gdpr, tickets, 0, 30),
    )
    .expect("set");
    let sweep = |at: i64| {
        Command::SweepRetention(SweepRetention {
            by: "compliance-retention".into(),
            at: Timestamp(at),
        })
    };
    assert_eq!(
        apply(&mut c, sweep(T + 29 * DAY)),
        Ok(0),
        "within the limit"
    );
    // Subject 1 (the agent) is also kept by an internal rule over the same records.
    apply(
        &mut c,
        Command::PlaceLegalHold(LegalHold {
            id: "hold-agent".into(),
            matter: "audit of agents".into(),
            data_class: DataClass::default(),
            subjects: vec![Uuid::from_u128(1)],
            placed_by: "cora".into(),
            placed_at: Timestamp(T),
            released_by: String::new(),
            released_at: None,
        }),
    )
    .expect("placed");
    assert_eq!(apply(&mut c, sweep(T + 31 * DAY)), Ok(1));
    let e = &c.retention.erasures[&Uuid::from_u128(2)];
    assert!(e.automatic);
    assert!(
        e.reason.contains("GDPR minimisation (gdpr-tickets)"),
        "{}",
        e.reason
    );
    assert!(
        !c.retention.erasures.contains_key(&Uuid::from_u128(1)),
        "held"
    );
    assert_eq!(apply(&mut c, sweep(T + 60 * DAY)), Ok(0), "nothing twice");
}

#[test]
fn data_classes_match_services_type_prefixes_and_units() {
    let a = Appearance {
        service: "governance".into(),
        event_type: "flotilla.governance.v1.ApprovalGranted".into(),
        business_unit: "payments".into(),
        last: Timestamp(T),
    };
    assert!(DataClass::default().covers(&a));
    assert!(governance().covers(&a));
    let exact = DataClass {
        event_types: vec!["flotilla.governance.v1.Approval".into()],
        ..DataClass::default()
    };
    assert!(!exact.covers(&a), "a name without a trailing dot is exact");
    let other_unit = DataClass {
        business_unit: "retail".into(),
        ..DataClass::default()
    };
    assert!(!other_unit.covers(&a));
}
