//! Point in time, from the ledgered events as their services recorded them: the state of any
//! aggregate (a release, a policy, an environment, an approval request...) as of a past
//! instant, and what was known when an approval was given.
//!
//! An event belongs to the past of an instant when its own service recorded it at or before
//! that instant (the source store's `recorded_at`, which the event's hash covers), not when the
//! ledger happened to take it. An aggregate's state is the latest recorded value of each of its
//! fields, read with the descriptor set (no code per event type), each with the event that set
//! it; its events come with it, each cited and proven like a report line. Protobuf does not
//! encode a field at its default (false, 0, empty), so a later event that clears a field leaves
//! the value an earlier one set: the events, not the fold, are the record.
//!
//! What was known when an approval was given is the evidence about its release that existed
//! then: every event the report of the release would cite, recorded before the approval (on
//! governance's own chain: at an earlier position). Its digest, SHA-256 over the lines
//! `<service> <position> <event hash hex>\n` in (service, position) order, names that set in
//! one value an auditor can recompute from the lines.

use std::collections::{BTreeMap, HashMap, HashSet};

use flotilla_proto::governance::v1 as gv;
use prost::Message;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Line, Read, about, line};
use crate::domain::{Checkpoint, Compliance, Ledgered, Timestamp};

/// Most aggregates one answer holds (a key that matches more is too vague).
pub const MAX_AGGREGATES: usize = 100;

/// Approvals are governance's facts: only its events are read as approvals.
const GOVERNANCE: &str = "governance";
const OPENED: &str = "flotilla.governance.v1.ApprovalRequestOpened";
const GRANTED: &str = "flotilla.governance.v1.ApprovalGranted";

/// Which aggregates, as of when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateQuery {
    /// The aggregate type as its streams are named: release, environment, approval, policy...
    pub aggregate: String,
    /// Its stream id, or a value one of its events carries in a field (a release's name, an
    /// approval request's id); empty: every aggregate of the type.
    pub key: String,
    /// Only this service's aggregates (empty: any).
    pub service: String,
    pub at: Timestamp,
}

/// One aggregate as of the instant.
#[derive(Clone, Debug, Serialize)]
pub struct AggregateState {
    pub service: String,
    pub stream: String,
    pub aggregate: String,
    /// The stream version of its last event at the instant.
    pub version: u64,
    pub last_event_type: String,
    /// RFC 3339.
    pub last_recorded_at: String,
    /// The latest recorded value of each field, in the order the fields first appeared.
    pub fields: Vec<StateField>,
    /// Its events up to the instant, in stream order.
    pub events: Vec<Line>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateField {
    /// The field's path in its event (`release.items.service`).
    pub name: String,
    /// Its values in the event that set it last (several for a repeated field).
    pub values: Vec<String>,
    /// That event's ledger index and type.
    pub set_by: u64,
    pub set_by_type: String,
}

/// The aggregates the query names, each as of its instant (the first `MAX_AGGREGATES`, and
/// whether more matched).
pub fn states_at(
    state: &Compliance,
    read: &[Read],
    q: &StateQuery,
    checkpoint: &Checkpoint,
) -> (Vec<AggregateState>, bool) {
    let past: Vec<&Read> = read
        .iter()
        .filter(|(l, _)| {
            l.event.aggregate_type == q.aggregate
                && (q.service.is_empty() || l.event.service == q.service)
                && l.event.recorded_at <= q.at
        })
        .collect();
    // The streams, in the order their first event was ledgered.
    let mut streams: Vec<(&str, &str)> = Vec::new();
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    for (l, f) in &past {
        let key = (l.event.service.as_str(), l.event.stream.as_str());
        if seen.contains(&key) {
            continue;
        }
        let named =
            q.key.is_empty() || l.event.stream == q.key || f.iter().any(|x| x.value == q.key);
        if named {
            seen.insert(key);
            streams.push(key);
        }
    }
    let more = streams.len() > MAX_AGGREGATES;
    streams.truncate(MAX_AGGREGATES);
    let states = streams
        .into_iter()
        .filter_map(|(service, stream)| {
            let mut events: Vec<&Read> = past
                .iter()
                .filter(|(l, _)| l.event.service == service && l.event.stream == stream)
                .copied()
                .collect();
            events.sort_by_key(|(l, _)| (l.event.stream_version, l.event.position));
            fold(state, &events, checkpoint)
        })
        .collect();
    (states, more)
}

/// An aggregate's events folded into the latest value of each field.
fn fold(state: &Compliance, events: &[&Read], checkpoint: &Checkpoint) -> Option<AggregateState> {
    let (last, _) = events.last()?;
    let mut fields: Vec<StateField> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for (l, f) in events {
        // This event's values, field by field (a repeated field's values together).
        let mut set: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        let mut order: Vec<&str> = Vec::new();
        for x in f {
            if !set.contains_key(x.name.as_str()) {
                order.push(&x.name);
            }
            set.entry(&x.name).or_default().push(x.value.clone());
        }
        for name in order {
            let field = StateField {
                name: name.to_owned(),
                values: set.remove(name).unwrap_or_default(),
                set_by: l.index,
                set_by_type: l.event.event_type.clone(),
            };
            match at.get(name) {
                Some(&i) => fields[i] = field,
                None => {
                    at.insert(name.to_owned(), fields.len());
                    fields.push(field);
                }
            }
        }
    }
    Some(AggregateState {
        service: last.event.service.clone(),
        stream: last.event.stream.clone(),
        aggregate: last.event.aggregate_type.clone(),
        version: last.event.stream_version,
        last_event_type: last.event.event_type.clone(),
        last_recorded_at: last.event.recorded_at.to_rfc3339(),
        fields,
        events: events
            .iter()
            .map(|(l, f)| line(state, l, f.clone(), checkpoint))
            .collect(),
    })
}

/// What was known when the approvals of a request were given.
#[derive(Clone, Debug, Serialize)]
pub struct ApprovalEvidence {
    pub request_id: String,
    pub release: String,
    pub environment: String,
    /// The request's opening, cited.
    pub opened: Line,
    pub approvals: Vec<ApprovalGiven>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ApprovalGiven {
    pub approver: String,
    pub role: String,
    /// The ApprovalGranted event, cited.
    pub approval: Line,
    /// SHA-256 (hex) over `<service> <position> <event hash hex>\n` of each evidence event, in
    /// (service, position) order.
    pub evidence_digest: String,
    /// The events about the release that existed when it was given, in ledger order.
    pub evidence: Vec<Line>,
}

/// The evidence digest of a set of events.
pub fn evidence_digest<'a>(events: impl IntoIterator<Item = &'a Ledgered>) -> String {
    let mut lines: Vec<(&str, u64, String)> = events
        .into_iter()
        .map(|l| {
            (
                l.event.service.as_str(),
                l.event.position,
                l.event.hash.to_hex(),
            )
        })
        .collect();
    lines.sort();
    let mut h = Sha256::new();
    for (service, position, hash) in lines {
        h.update(format!("{service} {position} {hash}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

/// Was `e` recorded before `approval`? On the approval's own service's chain by position (one
/// store, one order); across services by the time each service recorded it (at or before:
/// clocks of different stores cannot order events closer than that).
pub(super) fn before(e: &Ledgered, approval: &Ledgered) -> bool {
    if e.event.service == approval.event.service {
        e.event.position < approval.event.position
    } else {
        e.event.recorded_at <= approval.event.recorded_at
    }
}

/// What was known when each approval of the request was given (only `approver`'s, when not
/// empty); `None` when the ledger holds no opening of the request.
pub fn approval_evidence(
    state: &Compliance,
    read: &[Read],
    request_id: &str,
    approver: &str,
    checkpoint: &Checkpoint,
) -> Option<ApprovalEvidence> {
    let (opened_event, opened) = read.iter().find_map(|(l, _)| {
        (l.event.service == GOVERNANCE && l.event.event_type == OPENED)
            .then(|| gv::ApprovalRequestOpened::decode(l.event.payload.as_slice()).ok())
            .flatten()
            .filter(|o| o.request_id == request_id)
            .map(|o| (l, o))
    })?;
    let facts = opened.release.unwrap_or_default();
    let opened_line = read
        .iter()
        .find(|(l, _)| l.index == opened_event.index)
        .map(|(l, f)| line(state, l, f.clone(), checkpoint))?;
    let approvals = read
        .iter()
        .filter_map(|(l, f)| {
            (l.event.service == GOVERNANCE && l.event.event_type == GRANTED)
                .then(|| gv::ApprovalGranted::decode(l.event.payload.as_slice()).ok())
                .flatten()
                .filter(|g| g.request_id == request_id)
                .and_then(|g| g.approval)
                .filter(|a| approver.is_empty() || a.approver == approver)
                .map(|a| (l, f, a))
        })
        .map(|(granted, f, a)| {
            let known = |e: &Ledgered| e.index != granted.index && before(e, granted);
            let related = about(read, std::slice::from_ref(&facts.release), known);
            let evidence: Vec<&Read> = read
                .iter()
                .filter(|(e, _)| related.contains(&e.index))
                .collect();
            ApprovalGiven {
                approver: a.approver,
                role: a.role,
                approval: line(state, granted, f.clone(), checkpoint),
                evidence_digest: evidence_digest(evidence.iter().map(|(e, _)| e)),
                evidence: evidence
                    .iter()
                    .map(|(e, f)| line(state, e, f.clone(), checkpoint))
                    .collect(),
            }
        })
        .collect();
    Some(ApprovalEvidence {
        request_id: request_id.to_owned(),
        release: facts.release,
        environment: facts.environment,
        opened: opened_line,
        approvals,
    })
}

#[cfg(test)]
mod tests {
    use flotilla_proto::orchestration::v1 as orch;
    use flotilla_transparency::merkle::{leaf_hash, verify_inclusion};

    use super::*;
    use crate::report::fixture::{event, ledger, secs};

    const REQUEST: &str = "0193aa00-0000-7000-8000-000000000001";
    const RELEASE_ID: &str = "0193aa00-0000-7000-8000-0000000000cc";
    const APPROVAL_STREAM: &str = "approval-0193aa00-0000-7000-8000-0000000000ab";
    const RELEASE_STREAM: &str = "release-0193aa00-0000-7000-8000-0000000000cc";

    fn granted(approver: &str, role: &str) -> Vec<u8> {
        gv::ApprovalGranted {
            request_id: REQUEST.into(),
            approval: Some(gv::Approval {
                approver: approver.into(),
                role: role.into(),
                ..Default::default()
            }),
        }
        .encode_to_vec()
    }

    fn planned() -> Vec<u8> {
        orch::ReleasePlanned {
            release_id: RELEASE_ID.into(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// The ledger of a release's story, in the order the ledger took it (not the order the
    /// services recorded it): created at 5, planned at 15, the request opened at 10, olga's
    /// approval at 20, planned again at 25, bob's approval at 30.
    fn story() -> (Compliance, Vec<Read>, Checkpoint) {
        let created = orch::ReleaseCreated {
            release: Some(orch::Release {
                release_id: RELEASE_ID.into(),
                name: "cards-2.0.0".into(),
                business_unit: "cards".into(),
                ..Default::default()
            }),
        }
        .encode_to_vec();
        let opened = gv::ApprovalRequestOpened {
            request_id: REQUEST.into(),
            release: Some(gv::ReleaseFacts {
                release: "cards-2.0.0".into(),
                environment: "prod".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec();
        let gov = "governance";
        let events = vec![
            event(gov, 1, APPROVAL_STREAM, 0, 10, OPENED, opened),
            event(
                "orchestration",
                1,
                RELEASE_STREAM,
                0,
                5,
                "flotilla.orchestration.v1.ReleaseCreated",
                created,
            ),
            event(
                gov,
                2,
                APPROVAL_STREAM,
                1,
                20,
                GRANTED,
                granted("olga", "security"),
            ),
            event(
                "orchestration",
                2,
                RELEASE_STREAM,
                1,
                15,
                "flotilla.orchestration.v1.ReleasePlanned",
                planned(),
            ),
            event(
                "orchestration",
                3,
                RELEASE_STREAM,
                2,
                25,
                "flotilla.orchestration.v1.ReleasePlanned",
                planned(),
            ),
            event(
                gov,
                3,
                APPROVAL_STREAM,
                2,
                30,
                GRANTED,
                granted("bob", "business"),
            ),
        ];
        ledger(events)
    }

    fn value<'a>(s: &'a AggregateState, name: &str) -> Option<&'a [String]> {
        s.fields
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.values.as_slice())
    }

    #[test]
    fn an_approval_request_as_of_an_instant_has_only_what_was_recorded_by_then() {
        let (state, read, cp) = story();
        let q = |at| StateQuery {
            aggregate: "approval".into(),
            key: REQUEST.into(),
            service: String::new(),
            at: secs(at),
        };
        let (none, _) = states_at(&state, &read, &q(9), &cp);
        assert!(none.is_empty(), "nothing was recorded before 10");

        let (opened, _) = states_at(&state, &read, &q(10), &cp);
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].last_event_type, OPENED);
        assert_eq!(opened[0].version, 0);
        assert_eq!(value(&opened[0], "approval.approver"), None);
        assert_eq!(
            value(&opened[0], "release.environment"),
            Some(&["prod".to_owned()][..])
        );

        let (s, _) = states_at(&state, &read, &q(25), &cp);
        assert_eq!(
            value(&s[0], "approval.approver"),
            Some(&["olga".to_owned()][..])
        );
        assert_eq!(s[0].events.len(), 2);
        let (s, _) = states_at(&state, &read, &q(30), &cp);
        assert_eq!(
            value(&s[0], "approval.approver"),
            Some(&["bob".to_owned()][..])
        );
        assert_eq!(
            value(&s[0], "approval.role"),
            Some(&["business".to_owned()][..])
        );
        // The opening's fields stay as they were set.
        assert_eq!(
            s[0].fields
                .iter()
                .find(|f| f.name == "release.release")
                .map(|f| f.set_by),
            Some(0)
        );
        assert_eq!((s[0].version, s[0].stream.as_str()), (2, APPROVAL_STREAM));

        // Every event is proven against the checkpoint.
        let line = &s[0].events[2];
        let leaf = hex::decode(&line.leaf).expect("hex");
        let proof: Vec<[u8; 32]> = line
            .proof
            .iter()
            .map(|h| <[u8; 32]>::try_from(hex::decode(h).expect("hex").as_slice()).expect("32"))
            .collect();
        assert_eq!(
            verify_inclusion(line.index, cp.size, &leaf_hash(&leaf), &proof, &cp.root),
            Ok(())
        );
    }

    #[test]
    fn a_release_is_found_by_its_name_and_other_aggregates_are_not_mixed_in() {
        let (state, read, cp) = story();
        let q = StateQuery {
            aggregate: "release".into(),
            key: "cards-2.0.0".into(),
            service: "orchestration".into(),
            at: secs(16),
        };
        let (s, more) = states_at(&state, &read, &q, &cp);
        assert!(!more);
        assert_eq!(s.len(), 1);
        assert_eq!(
            s[0].last_event_type,
            "flotilla.orchestration.v1.ReleasePlanned"
        );
        assert_eq!(
            s[0].events.iter().map(|l| l.sequence).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(
            value(&s[0], "release.name"),
            Some(&["cards-2.0.0".to_owned()][..])
        );
        // An unknown key, or another service's streams, match nothing.
        let (s, _) = states_at(
            &state,
            &read,
            &StateQuery {
                key: "cards-9".into(),
                ..q.clone()
            },
            &cp,
        );
        assert!(s.is_empty());
        let (s, _) = states_at(
            &state,
            &read,
            &StateQuery {
                service: "governance".into(),
                ..q
            },
            &cp,
        );
        assert!(s.is_empty());
    }

    #[test]
    fn what_an_approver_knew_is_the_evidence_recorded_before_the_approval() {
        let (state, read, cp) = story();
        let e = approval_evidence(&state, &read, REQUEST, "", &cp).expect("the request");
        assert_eq!(
            (e.release.as_str(), e.environment.as_str()),
            ("cards-2.0.0", "prod")
        );
        assert_eq!(e.approvals.len(), 2);
        let olga = &e.approvals[0];
        assert_eq!(
            (olga.approver.as_str(), olga.role.as_str()),
            ("olga", "security")
        );
        let seen = |a: &ApprovalGiven| -> Vec<(String, u64)> {
            let mut v: Vec<_> = a
                .evidence
                .iter()
                .map(|l| (l.service.clone(), l.sequence))
                .collect();
            v.sort();
            v
        };
        // The opening and the release's creation and first plan; not the plan recorded at 25.
        assert_eq!(
            seen(olga),
            [
                ("governance".to_owned(), 1),
                ("orchestration".to_owned(), 1),
                ("orchestration".to_owned(), 2)
            ]
        );
        // Bob approved later: he could see olga's approval and the second plan.
        let bob = &e.approvals[1];
        assert_eq!(seen(bob).len(), 5);

        // The digest is SHA-256 over "<service> <position> <hash>\n" in (service, position)
        // order: an auditor recomputes it from the lines.
        let mut lines: Vec<_> = olga
            .evidence
            .iter()
            .map(|l| (l.service.clone(), l.sequence, l.event_hash.clone()))
            .collect();
        lines.sort();
        let text: String = lines
            .iter()
            .map(|(s, p, h)| format!("{s} {p} {h}\n"))
            .collect();
        assert_eq!(
            olga.evidence_digest,
            hex::encode(Sha256::digest(text.as_bytes()))
        );
        assert_ne!(olga.evidence_digest, bob.evidence_digest);

        let only = approval_evidence(&state, &read, REQUEST, "bob", &cp).expect("the request");
        assert_eq!(only.approvals.len(), 1);
        assert_eq!(only.approvals[0].evidence_digest, bob.evidence_digest);
        assert!(approval_evidence(&state, &read, RELEASE_ID, "", &cp).is_none());
    }
}
