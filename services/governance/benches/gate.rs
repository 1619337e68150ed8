//! CheckGate over gRPC: a governance server (SQLite store, access interceptor with JWT and
//! Cedar) holding 10,000 releases with approval requests, 40 recurring and one-off windows and
//! 500 deviations, asked by concurrent clients in the same process for a fixed time.
//!
//! `cargo bench -p flotilla-governance --bench gate` (FLOTILLA_GATE_BENCH_SECS, default 10;
//! FLOTILLA_GATE_BENCH_CONCURRENCY, default 64). Prints throughput and latency percentiles.

use std::time::{Duration, Instant};

use flotilla_auth::Bearer;
use flotilla_governance::GovernanceModule;
use flotilla_proto::governance::v1 as pb;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::testkit::{self, TestServer};

const RELEASES: usize = 10_000;

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ts(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let secs = env_num("FLOTILLA_GATE_BENCH_SECS", 10);
    let concurrency = env_num("FLOTILLA_GATE_BENCH_CONCURRENCY", 64) as usize;
    let dir = tempfile::tempdir()?;
    let store = flotilla_store::open(
        &format!("sqlite://{}", dir.path().join("governance.db").display()),
        "governance",
    )
    .await?;
    let units_known = ["payments", "cards", "retail", "treasury"];
    flotilla_governance::testing::seed_catalog(
        &store,
        flotilla_governance::testing::every_kind(&units_known),
    )
    .await?;
    let server = TestServer::start(&GovernanceModule, store).await;
    let ch = server.channel().await;
    let client = |sub: &str, roles: &[&str], bu: &str| {
        GovernanceServiceClient::with_interceptor(
            ch.clone(),
            Bearer::new(&testkit::token(sub, roles, bu)),
        )
        .max_decoding_message_size(4 * 1024 * 1024)
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;

    // Seed through the API (as production would), with progress.
    let started = Instant::now();
    let mut admin = client("root", &["admin"], "central");
    let units = ["payments", "cards", "retail", "treasury"];
    for (i, u) in units.iter().enumerate() {
        for w in 0..10 {
            let schedule = match w % 3 {
                0 => pb::freeze_window::Schedule::Monthly(pb::MonthlySchedule {
                    months: vec![],
                    day: -((w % 5) + 1),
                    start_minute: 0,
                    duration_minutes: 24 * 60,
                }),
                1 => pb::freeze_window::Schedule::Weekly(pb::WeeklySchedule {
                    weekdays: vec![(w % 7) as u32 + 1],
                    start_minute: 60 * (i as u32 + 8),
                    duration_minutes: 120,
                }),
                _ => pb::freeze_window::Schedule::Once(pb::OnceSchedule {
                    start: Some(ts(now + 86_400 + w as i64 * 600)),
                    end: Some(ts(now + 90_000 + w as i64 * 600)),
                }),
            };
            admin
                .create_freeze_window(pb::CreateFreezeWindowRequest {
                    window: Some(pb::FreezeWindow {
                        name: format!("{u}-window-{w}"),
                        kind: if w == 9 {
                            pb::WindowKind::Embargo
                        } else {
                            pb::WindowKind::Freeze
                        } as i32,
                        business_unit: (*u).into(),
                        scope: Some(pb::WindowScope {
                            business_units: vec![(*u).into()],
                            environments: vec![if w % 2 == 0 { "prod" } else { "staging" }.into()],
                            tiers: vec![],
                        }),
                        schedule: Some(schedule),
                        ..Default::default()
                    }),
                })
                .await?;
        }
    }
    let mut rm = client("rm", &["release-manager", "admin"], "central");
    for i in 0..RELEASES {
        let release = format!("rel-{i}");
        rm.open_approval_request(pb::OpenApprovalRequestRequest {
            release: Some(pb::ReleaseFacts {
                release: release.clone(),
                version: format!("1.{}.0", i % 50),
                environment: "prod".into(),
                service: flotilla_governance::testing::service_name(
                    units[i % units.len()],
                    (i % 4) as u8 + 1,
                    i % 5 == 0,
                ),
                business_unit: units[i % units.len()].into(),
                criticality_tier: (i % 4) as u32 + 1,
                risk_score: (i * 37 % 101) as u32,
                handles_personal_data: i % 5 == 0,
                author: format!("author-{}", i % 97),
                committers: vec![format!("committer-{}", i % 89)],
            }),
            emergency: i % 50 == 0,
        })
        .await?;
        if i % 2 == 0 {
            // Every requirement approved by someone of the unit holding the role.
            let unit = units[i % units.len()];
            let request = rm
                .get_approval_request(pb::GetApprovalRequestRequest {
                    release: release.clone(),
                    environment: "prod".into(),
                })
                .await?
                .into_inner();
            for q in request.requirements {
                let (roles, bu): (&[&str], &str) = match q.role.as_str() {
                    "cab" => (&["cab"], "central"),
                    "peer-review" => (&["developer"], unit),
                    other => (&[other][..], unit),
                };
                let mut approver = client(&format!("{}-{}", q.role, unit), roles, bu);
                approver
                    .approve(pb::DecideApprovalRequest {
                        release: release.clone(),
                        environment: "prod".into(),
                        role: q.role.clone(),
                        comment: String::new(),
                    })
                    .await?;
            }
        }
        if i % 20 == 0 {
            rm.request_deviation(pb::RequestDeviationRequest {
                deviation: Some(pb::Deviation {
                    rule: pb::GateRule::FreezeWindow as i32,
                    release,
                    environment: "prod".into(),
                    business_unit: units[i % units.len()].into(),
                    justification: "benchmark".into(),
                    compensating_controls: vec!["watch closely".into()],
                    expires_at: Some(ts(now + 86_400)),
                    requester_role: "release-manager".into(),
                    ..Default::default()
                }),
            })
            .await?;
        }
        if (i + 1) % 2_000 == 0 {
            eprintln!(
                "seeded {} / {RELEASES} releases ({:.1}s)",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    eprintln!(
        "seeded in {:.1}s; checking for {secs}s with {concurrency} concurrent callers",
        started.elapsed().as_secs_f64()
    );

    // Callers: 8 HTTP/2 connections, each shared by concurrency/8 tasks; central auditors'
    // tokens (so every unit is visible), each caller its own token.
    let mut channels = Vec::new();
    for _ in 0..8 {
        channels.push(server.channel().await);
    }
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let ch = channels[t % channels.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut c = GovernanceServiceClient::with_interceptor(
                ch,
                Bearer::new(&testkit::token(
                    &format!("caller-{t}"),
                    &["auditor"],
                    "central",
                )),
            );
            let mut lat = Vec::with_capacity(200_000);
            let mut allowed = 0u64;
            let mut i = t * 7919;
            while Instant::now() < deadline {
                i = (i * 48_271 + 11) % RELEASES;
                let start = Instant::now();
                let d = c
                    .check_gate(pb::CheckGateRequest {
                        release: format!("rel-{i}"),
                        environment: "prod".into(),
                        at: None,
                        emergency: None,
                    })
                    .await;
                lat.push(start.elapsed().as_micros() as u32);
                match d {
                    Ok(r) => allowed += u64::from(r.into_inner().allowed),
                    Err(e) => panic!("check failed: {e:?}"),
                }
            }
            (lat, allowed)
        }));
    }
    let mut lat = Vec::new();
    let mut allowed = 0;
    for t in tasks {
        let (l, a) = t.await?;
        lat.extend(l);
        allowed += a;
    }
    lat.sort_unstable();
    let n = lat.len();
    let pct = |p: f64| f64::from(lat[((n as f64 * p) as usize).min(n - 1)]) / 1000.0;
    let rate = n as f64 / secs as f64;
    println!(
        "CheckGate over gRPC: {n} checks in {secs}s = {rate:.0} checks/s; latency ms p50 {:.2} p90 {:.2} p99 {:.2} max {:.2}; {allowed} allowed",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "{}",
        serde_json::json!({"bench": "check_gate_grpc", "checks": n, "seconds": secs, "concurrency": concurrency, "checks_per_second": rate.round(), "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0), "allowed": allowed})
    );
    server.stop().await;
    Ok(())
}
