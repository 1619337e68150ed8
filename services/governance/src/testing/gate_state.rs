//! The state the CheckGate benchmarks ask about, seeded through the API as production would:
//! 40 windows over four units (monthly, weekly, one-off; one embargo each), `releases`
//! approval requests over every tier and risk band, half of them fully approved (every
//! requirement by a different person of the unit, CAB by a central board member), and a
//! deviation for every twentieth. Governance must know the catalog first ([`super::seed_catalog`]
//! with [`super::every_kind`] of [`UNITS`]).

use flotilla_auth::Bearer;
use flotilla_proto::governance::v1 as pb;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The business units the seeded state spans.
pub const UNITS: [&str; 4] = ["payments", "cards", "retail", "treasury"];

fn ts(seconds: i64) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}

/// Seeds through `channel`, each caller's token made by `token(subject, roles, unit)`;
/// `progress` is told how many releases are done.
pub async fn seed_gate_state(
    channel: Channel,
    token: impl Fn(&str, &[&str], &str) -> String,
    releases: usize,
    now: i64,
    progress: impl Fn(usize),
) -> Result<(), tonic::Status> {
    let client = |sub: &str,
                  roles: &[&str],
                  bu: &str|
     -> GovernanceServiceClient<InterceptedService<Channel, Bearer>> {
        GovernanceServiceClient::with_interceptor(
            channel.clone(),
            Bearer::new(&token(sub, roles, bu)),
        )
        .max_decoding_message_size(4 * 1024 * 1024)
    };
    let mut admin = client("root", &["admin"], "central");
    let units = UNITS;
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
    for i in 0..releases {
        let release = format!("rel-{i}");
        rm.open_approval_request(pb::OpenApprovalRequestRequest {
            release: Some(pb::ReleaseFacts {
                release: release.clone(),
                version: format!("1.{}.0", i % 50),
                environment: "prod".into(),
                service: super::service_name(units[i % units.len()], (i % 4) as u8 + 1, i % 5 == 0),
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
        progress(i + 1);
    }
    Ok(())
}

/// What a CheckGate load came to: every call's latency in microseconds (sorted) and how many
/// were allowed.
#[derive(Debug, Default)]
pub struct GateLoad {
    pub latencies_us: Vec<u32>,
    pub allowed: u64,
}

impl GateLoad {
    /// The latency at quantile `q` (0 to 1), in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        let n = self.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        f64::from(self.latencies_us[((n as f64 * q) as usize).min(n - 1)]) / 1000.0
    }
}

/// `concurrency` callers, spread round robin over `channels`, each with its own central
/// auditor's token from `token`, asking the gate of seeded releases (`releases` of them,
/// [`seed_gate_state`]) for prod until `duration` passes; a failed check fails the load.
pub async fn check_gate_load(
    channels: &[Channel],
    token: impl Fn(&str, &[&str], &str) -> String,
    concurrency: usize,
    duration: std::time::Duration,
    releases: usize,
) -> Result<GateLoad, tonic::Status> {
    let deadline = std::time::Instant::now() + duration;
    let mut tasks = Vec::new();
    for t in 0..concurrency {
        let mut c = GovernanceServiceClient::with_interceptor(
            channels[t % channels.len()].clone(),
            Bearer::new(&token(&format!("caller-{t}"), &["auditor"], "central")),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(200_000);
            let mut allowed = 0u64;
            let mut i = t * 7919;
            while std::time::Instant::now() < deadline {
                i = (i * 48_271 + 11) % releases;
                let start = std::time::Instant::now();
                let d = c
                    .check_gate(pb::CheckGateRequest {
                        release: format!("rel-{i}"),
                        environment: "prod".into(),
                        at: None,
                        emergency: None,
                    })
                    .await?;
                lat.push(start.elapsed().as_micros() as u32);
                allowed += u64::from(d.into_inner().allowed);
            }
            Ok::<_, tonic::Status>((lat, allowed))
        }));
    }
    let mut load = GateLoad::default();
    for t in tasks {
        let (lat, allowed) = t
            .await
            .map_err(|e| tonic::Status::internal(format!("a caller stopped: {e}")))??;
        load.latencies_us.extend(lat);
        load.allowed += allowed;
    }
    load.latencies_us.sort_unstable();
    Ok(load)
}
