//! What point-in-time answers and the controls' evidence pack cost at a realistic ledger size,
//! once the ledgered events are in memory (the store read is `ledger`'s replay figure):
//! - reading every event's fields with the descriptor set (what each call does first);
//! - `GetStateAt` of one approval request, `GetApprovalEvidence` of one request;
//! - `GetEvidencePack` over the whole period.
//!
//! The ledger: RELEASES (default 20,000) releases of ten events each: created and planned,
//! an approval request opened for a personal-data system, a peer review and a second approval,
//! a deployment started, a deviation requested and approved, and two other events.
//!
//! Run: `cargo bench -p flotilla-compliance --bench history`.

use std::time::Instant;

use flotilla_compliance::domain::*;
use flotilla_compliance::report::controls::{Period, evidence_pack};
use flotilla_compliance::report::point_in_time::{StateQuery, approval_evidence, states_at};
use flotilla_compliance::report::read;
use flotilla_core::chain::Hash;
use flotilla_core::event::Metadata;
use flotilla_proto::governance::v1 as gv;
use flotilla_proto::orchestration::v1 as orch;
use flotilla_transparency::merkle::leaf_hash;
use prost::Message;

const T0: i64 = 1_767_225_600_000_000;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Builder {
    state: Compliance,
    events: Vec<Ledgered>,
    positions: [u64; 2],
}

impl Builder {
    fn push(&mut self, service: usize, stream: String, ty: &str, payload: Vec<u8>) {
        let names = ["governance", "orchestration"];
        self.positions[service] += 1;
        let index = self.events.len() as u64;
        let mut e = SourceEvent {
            service: names[service].into(),
            source: format!("/flotilla/bench/{}", names[service]),
            aggregate_type: stream.split('-').next().unwrap_or_default().into(),
            position: self.positions[service],
            stream,
            stream_version: 0,
            id: uuid::Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 | index as u128),
            event_type: ty.into(),
            schema_version: 1,
            payload,
            metadata: Metadata::by("rita", "cards"),
            recorded_at: Timestamp(T0 + index as i64 * 1_000),
            prev_hash: Hash::GENESIS,
            hash: Hash::default(),
            withheld: false,
        };
        e.hash = e.recomputed_hash();
        self.state.tree.push(leaf_hash(&e.leaf().encode()));
        self.events.push(Ledgered {
            index,
            event: e,
            content_matches: true,
            at: Timestamp(0),
        });
    }
}

fn ledger(releases: usize) -> (Compliance, Vec<Ledgered>) {
    let mut b = Builder {
        state: Compliance::default(),
        events: Vec::with_capacity(releases * 10),
        positions: [0, 0],
    };
    let g = |n: &str| format!("flotilla.governance.v1.{n}");
    let o = |n: &str| format!("flotilla.orchestration.v1.{n}");
    for r in 0..releases {
        let name = format!("cards-{r}.0.0");
        let release_id = uuid::Uuid::from_u128(r as u128 + 1).to_string();
        let request = uuid::Uuid::from_u128((r as u128 + 1) << 32).to_string();
        let deviation = uuid::Uuid::from_u128((r as u128 + 1) << 64).to_string();
        let facts = gv::ReleaseFacts {
            release: name.clone(),
            environment: "prod".into(),
            business_unit: "cards".into(),
            handles_personal_data: true,
            author: "rita".into(),
            committers: vec!["carl".into()],
            ..Default::default()
        };
        let created = orch::ReleaseCreated {
            release: Some(orch::Release {
                release_id: release_id.clone(),
                name: name.clone(),
                business_unit: "cards".into(),
                ..Default::default()
            }),
        };
        b.push(
            1,
            format!("release-{release_id}"),
            &o("ReleaseCreated"),
            created.encode_to_vec(),
        );
        let planned = orch::ReleasePlanned {
            release_id: release_id.clone(),
            ..Default::default()
        };
        b.push(
            1,
            format!("release-{release_id}"),
            &o("ReleasePlanned"),
            planned.encode_to_vec(),
        );
        let opened = gv::ApprovalRequestOpened {
            request_id: request.clone(),
            release: Some(facts),
            ..Default::default()
        };
        let approval = format!("approval-{request}");
        b.push(
            0,
            approval.clone(),
            &g("ApprovalRequestOpened"),
            opened.encode_to_vec(),
        );
        for (who, role) in [("pam", "peer-review"), ("sam", "service-owner")] {
            let granted = gv::ApprovalGranted {
                request_id: request.clone(),
                approval: Some(gv::Approval {
                    approver: who.into(),
                    role: role.into(),
                    ..Default::default()
                }),
            };
            b.push(
                0,
                approval.clone(),
                &g("ApprovalGranted"),
                granted.encode_to_vec(),
            );
        }
        let dev = gv::DeviationRequested {
            deviation: Some(gv::Deviation {
                deviation_id: deviation.clone(),
                rule: gv::GateRule::FreezeWindow as i32,
                release: name.clone(),
                environment: "prod".into(),
                justification: "a defect declines valid cards".into(),
                compensating_controls: vec!["a second engineer watches".into()],
                expires_at: Some(prost_types::Timestamp {
                    seconds: T0 / 1_000_000 + 86_400 * 365,
                    nanos: 0,
                }),
                requested_by: "carl".into(),
                ..Default::default()
            }),
            requested_at: None,
        };
        b.push(
            0,
            format!("deviation-{deviation}"),
            &g("DeviationRequested"),
            dev.encode_to_vec(),
        );
        let decided = gv::DeviationApproved {
            deviation_id: deviation.clone(),
            approver: "sofia".into(),
            role: "security".into(),
            ..Default::default()
        };
        b.push(
            0,
            format!("deviation-{deviation}"),
            &g("DeviationApproved"),
            decided.encode_to_vec(),
        );
        let started = orch::DeploymentStarted {
            deployment: Some(orch::Deployment {
                deployment_id: uuid::Uuid::from_u128((r as u128 + 1) << 96).to_string(),
                release: name.clone(),
                release_id: release_id.clone(),
                environment: "prod".into(),
                business_unit: "cards".into(),
                started_by: "rita".into(),
                ..Default::default()
            }),
        };
        let deployment = format!("deployment-{release_id}");
        b.push(
            1,
            deployment.clone(),
            &o("DeploymentStarted"),
            started.encode_to_vec(),
        );
        for i in 0..2u32 {
            let step = orch::StepStarted {
                deployment_id: release_id.clone(),
                index: i,
                started_at: None,
            };
            b.push(
                1,
                deployment.clone(),
                &o("StepStarted"),
                step.encode_to_vec(),
            );
        }
    }
    (b.state, b.events)
}

fn main() {
    let releases = count("RELEASES", 20_000);
    let (state, events) = ledger(releases);
    let n = events.len();
    let size = state.tree.size();
    let checkpoint = Checkpoint {
        size: size as u64,
        root: state.tree.root(size).expect("root"),
        note: String::new(),
        signed_at: Timestamp(0),
    };
    let t = Instant::now();
    let read = read(events, &checkpoint);
    let secs = t.elapsed().as_secs_f64();
    println!(
        "fields read with the descriptor set: {n} events in {secs:.2} s = {:.0} events/s",
        n as f64 / secs
    );

    let request = uuid::Uuid::from_u128((releases as u128 / 2) << 32).to_string();
    let t = Instant::now();
    let (states, _) = states_at(
        &state,
        &read,
        &StateQuery {
            aggregate: "approval".into(),
            key: request.clone(),
            service: String::new(),
            at: Timestamp(i64::MAX),
        },
        &checkpoint,
    );
    assert_eq!(states.len(), 1);
    println!(
        "GetStateAt of one approval request over {n} events: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    let t = Instant::now();
    let known = approval_evidence(&state, &read, &request, "", &checkpoint).expect("the request");
    assert_eq!(known.approvals.len(), 2);
    println!(
        "GetApprovalEvidence of one request (two approvals) over {n} events: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3
    );

    let t = Instant::now();
    let period = Period {
        from: Timestamp(T0),
        to: Timestamp(i64::MAX),
    };
    let pack = evidence_pack(&state, &read, period, 25, &checkpoint);
    let secs = t.elapsed().as_secs_f64();
    let tested: u64 = pack.controls.iter().map(|c| c.population).sum();
    println!("GetEvidencePack over {n} events ({tested} cases tested in 5 controls): {secs:.2} s");
}
