//! `flotilla gate|approvals|windows|deviations|cab|rollbacks|policy|access …`: the governance
//! service's client. Tables for people, `--output json` for machines.

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::governance::v1 as pb;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::{Authed, Target, failed};
use crate::output::{Output, table};

type Client = GovernanceServiceClient<Authed>;

#[derive(Subcommand, Debug)]
pub enum GovernanceCommand {
    /// May RELEASE enter ENVIRONMENT (now, or --at)? Exits 0 when allowed, 1 when denied.
    Gate {
        release: String,
        environment: String,
        /// RFC 3339 time, e.g. 2026-12-31T23:00:00Z.
        #[arg(long)]
        at: Option<String>,
    },
    /// Approval requests.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Freeze windows and embargoes.
    #[command(subcommand)]
    Windows(WindowsCommand),
    /// Deviations (break-glass).
    #[command(subcommand)]
    Deviations(DeviationsCommand),
    /// Record a CAB decision (e.g. a ServiceNow change request) covering RELEASE@ENV pairs.
    Cab {
        change_request: String,
        /// RELEASE@ENVIRONMENT, repeatable.
        #[arg(long = "covers", required = true)]
        covers: Vec<String>,
        /// A board member who took the decision (repeatable, at least one).
        #[arg(long = "member", required = true)]
        members: Vec<String>,
        /// Record a refusal instead of an approval.
        #[arg(long)]
        rejected: bool,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Rollback decisions.
    #[command(subcommand)]
    Rollbacks(RollbacksCommand),
    /// The governance policy: show it (JSON with --output json), or set it from a JSON file.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The Cedar access policy of every service.
    #[command(subcommand)]
    Access(AccessCommand),
    /// Run the deadline scheduler now (escalations, expiries, overdue rollback decisions).
    Deadlines,
}

#[derive(Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// Open the approval request of a release in an environment.
    Open {
        #[arg(long)]
        release: String,
        #[arg(long)]
        version: String,
        #[arg(long)]
        env: String,
        /// The service as the catalog names it; its unit, tier and personal-data facts come
        /// from the catalog.
        #[arg(long)]
        service: String,
        /// Only to state the catalog's unit (a different one is refused).
        #[arg(long, default_value = "")]
        bu: String,
        /// Only to state the catalog's tier (0: as the catalog says).
        #[arg(long, default_value_t = 0)]
        tier: u32,
        #[arg(long)]
        risk: u32,
        #[arg(long)]
        personal_data: bool,
        #[arg(long)]
        author: String,
        #[arg(long = "committer")]
        committers: Vec<String>,
        #[arg(long)]
        emergency: bool,
    },
    /// List approval requests you may see.
    List {
        #[arg(long)]
        bu: Option<String>,
        #[arg(long)]
        release: Option<String>,
    },
    /// Show one request.
    Show { release: String, env: String },
    /// Approve in a required role.
    Approve {
        release: String,
        env: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject (a comment is required).
    Reject {
        release: String,
        env: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        comment: String,
    },
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum WindowsCommand {
    /// Create a window. Exactly one of --once, --monthly-day or --weekly.
    Create {
        #[arg(long)]
        name: String,
        /// freeze or embargo.
        #[arg(long, default_value = "freeze")]
        kind: String,
        /// Owning unit (empty: platform-wide, needs a central role).
        #[arg(long)]
        bu: Option<String>,
        #[arg(long = "env")]
        environments: Vec<String>,
        #[arg(long = "tier")]
        tiers: Vec<u32>,
        /// START,END as RFC 3339 times.
        #[arg(long)]
        once: Option<String>,
        /// Day of month (1..28, or -1..-28 from the end).
        #[arg(long, allow_hyphen_values = true)]
        monthly_day: Option<i32>,
        /// Months for --monthly-day (1..12; default every month).
        #[arg(long = "month")]
        months: Vec<u32>,
        /// Weekdays 1 (Monday) .. 7, comma-separated.
        #[arg(long)]
        weekly: Option<String>,
        /// UTC start HH:MM for recurring windows.
        #[arg(long, default_value = "00:00")]
        start: String,
        /// Length of a recurring window in hours.
        #[arg(long, default_value_t = 24)]
        hours: u32,
        #[arg(long)]
        reason: Option<String>,
    },
    /// List windows (active now only with --active).
    List {
        #[arg(long)]
        bu: Option<String>,
        #[arg(long)]
        active: bool,
    },
    Cancel {
        id: String,
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeviationsCommand {
    /// Request a deviation for one release in one environment.
    Request {
        /// approvals, freeze-window or embargo.
        #[arg(long)]
        rule: String,
        #[arg(long)]
        release: String,
        #[arg(long)]
        env: String,
        #[arg(long)]
        bu: String,
        #[arg(long)]
        justification: String,
        #[arg(long = "control", required = true)]
        controls: Vec<String>,
        /// RFC 3339 expiry.
        #[arg(long)]
        expires: String,
        /// The role you request it in.
        #[arg(long)]
        role: String,
    },
    Approve {
        id: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        comment: Option<String>,
    },
    Reject {
        id: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        comment: Option<String>,
    },
    List {
        #[arg(long)]
        release: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RollbacksCommand {
    List {
        #[arg(long)]
        release: Option<String>,
    },
    /// Decide: --roll-back, or continue without it.
    Decide {
        id: String,
        #[arg(long)]
        roll_back: bool,
        #[arg(long)]
        comment: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum PolicyCommand {
    Show,
    /// Replace the policy with a JSON file shaped like `policy show --output json`.
    Set {
        file: std::path::PathBuf,
        /// The version being replaced (from `policy show`).
        #[arg(long)]
        expected_version: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccessCommand {
    /// Print the Cedar policy in force.
    Show,
    /// Replace it with a Cedar file (admins only; recorded).
    Replace {
        file: std::path::PathBuf,
        #[arg(long)]
        expected_version: u64,
    },
}

fn time(field: &str, s: &str) -> anyhow::Result<prost_types::Timestamp> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            anyhow::anyhow!("{field} {s:?} is not an RFC 3339 time like 2026-12-31T23:00:00Z ({e})")
        })?;
    Ok(prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    })
}

fn show_time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn minutes(hhmm: &str) -> anyhow::Result<u32> {
    let (h, m) = hhmm
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("--start {hhmm:?} is not HH:MM"))?;
    let (h, m): (u32, u32) = (
        h.parse()
            .map_err(|_| anyhow::anyhow!("--start {hhmm:?} is not HH:MM"))?,
        m.parse()
            .map_err(|_| anyhow::anyhow!("--start {hhmm:?} is not HH:MM"))?,
    );
    if h > 23 || m > 59 {
        anyhow::bail!("--start {hhmm:?} is not a time of day");
    }
    Ok(h * 60 + m)
}

fn status_name(s: i32) -> &'static str {
    match pb::ApprovalStatus::try_from(s) {
        Ok(pb::ApprovalStatus::Pending) => "pending",
        Ok(pb::ApprovalStatus::Approved) => "approved",
        Ok(pb::ApprovalStatus::Rejected) => "rejected",
        Ok(pb::ApprovalStatus::Expired) => "expired",
        _ => "unknown",
    }
}

fn request_json(r: &pb::ApprovalRequest) -> serde_json::Value {
    let f = r.release.clone().unwrap_or_default();
    json!({
        "request_id": r.request_id, "release": f.release, "version": f.version,
        "environment": f.environment, "service": f.service, "business_unit": f.business_unit,
        "status": status_name(r.status), "escalated": r.escalated, "emergency": r.emergency,
        "due_at": show_time(r.due_at.as_ref()), "expires_at": show_time(r.expires_at.as_ref()),
        "requirements": r.requirements.iter().map(|q| json!({"role": q.role, "required": q.required, "given": q.given, "cab": q.cab_change_request})).collect::<Vec<_>>(),
        "approvals": r.approvals.iter().map(|a| json!({"approver": a.approver, "role": a.role, "at": show_time(a.approved_at.as_ref())})).collect::<Vec<_>>(),
    })
}

fn print_requests(output: Output, requests: &[pb::ApprovalRequest]) -> anyhow::Result<()> {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&requests.iter().map(request_json).collect::<Vec<_>>())?
        ),
        Output::Table => table(
            &["release", "env", "unit", "status", "requirements", "due"],
            &requests
                .iter()
                .map(|r| {
                    let f = r.release.clone().unwrap_or_default();
                    vec![
                        f.release,
                        f.environment,
                        f.business_unit,
                        status_name(r.status).into(),
                        r.requirements
                            .iter()
                            .map(|q| {
                                if q.cab_change_request.is_empty() {
                                    format!("{} {}/{}", q.role, q.given, q.required)
                                } else {
                                    format!("{} by {}", q.role, q.cab_change_request)
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(", "),
                        show_time(r.due_at.as_ref()),
                    ]
                })
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

fn gate_reason_kind(k: i32) -> &'static str {
    match pb::GateReasonKind::try_from(k) {
        Ok(pb::GateReasonKind::NoApprovalRequest) => "no-approval-request",
        Ok(pb::GateReasonKind::MissingApprovals) => "missing-approvals",
        Ok(pb::GateReasonKind::ApprovalExpired) => "approval-expired",
        Ok(pb::GateReasonKind::RequestExpired) => "request-expired",
        Ok(pb::GateReasonKind::Rejected) => "rejected",
        Ok(pb::GateReasonKind::FreezeWindow) => "freeze-window",
        Ok(pb::GateReasonKind::Embargo) => "embargo",
        _ => "unknown",
    }
}

fn rule(s: &str) -> anyhow::Result<pb::GateRule> {
    Ok(match s {
        "approvals" => pb::GateRule::Approvals,
        "freeze-window" => pb::GateRule::FreezeWindow,
        "embargo" => pb::GateRule::Embargo,
        other => anyhow::bail!("--rule {other:?}: use approvals, freeze-window or embargo"),
    })
}

// ---- policy file (JSON) ----

#[derive(Serialize, Deserialize)]
struct RequirementFile {
    role: String,
    count: u32,
}

#[derive(Serialize, Deserialize)]
struct RuleFile {
    tier: u32,
    min_risk: u32,
    max_risk: u32,
    requirements: Vec<RequirementFile>,
    #[serde(default)]
    business_unit: String,
    #[serde(default)]
    environments: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct ThresholdFile {
    metric: String,
    comparison: String,
    value: f64,
}

#[derive(Serialize, Deserialize)]
struct CriteriaFile {
    tier: u32,
    decision_minutes: u32,
    thresholds: Vec<ThresholdFile>,
    notify: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    approval_rules: Vec<RuleFile>,
    /// "semver" or a CalVer pattern such as "calver:YYYY.0M.MICRO".
    versioning: String,
    rollback_criteria: Vec<CriteriaFile>,
    decision_deadline_minutes: u32,
    expire_after_minutes: u32,
    escalate_to: Vec<String>,
    #[serde(default)]
    approval_validity_minutes: u32,
}

fn policy_file(p: &pb::PolicyDocument) -> PolicyFile {
    let naming = p.naming.clone().unwrap_or_default();
    PolicyFile {
        approval_rules: p
            .approval_rules
            .iter()
            .map(|r| RuleFile {
                tier: r.tier,
                min_risk: r.min_risk,
                max_risk: r.max_risk,
                requirements: r
                    .requirements
                    .iter()
                    .map(|q| RequirementFile {
                        role: q.role.clone(),
                        count: q.count,
                    })
                    .collect(),
                business_unit: r.business_unit.clone(),
                environments: r.environments.clone(),
            })
            .collect(),
        versioning: if naming.scheme == pb::VersionScheme::Calver as i32 {
            format!("calver:{}", naming.calver_pattern)
        } else {
            "semver".into()
        },
        rollback_criteria: p
            .rollback_criteria
            .iter()
            .map(|c| CriteriaFile {
                tier: c.tier,
                decision_minutes: c.decision_minutes,
                thresholds: c
                    .thresholds
                    .iter()
                    .map(|t| ThresholdFile {
                        metric: t.metric.clone(),
                        comparison: t.comparison.clone(),
                        value: t.value,
                    })
                    .collect(),
                notify: c.notify.clone(),
            })
            .collect(),
        decision_deadline_minutes: p.decision_deadline_minutes,
        expire_after_minutes: p.expire_after_minutes,
        escalate_to: p.escalate_to.clone(),
        approval_validity_minutes: p.approval_validity_minutes,
    }
}

fn policy_doc(f: PolicyFile) -> anyhow::Result<pb::PolicyDocument> {
    let naming = match f.versioning.strip_prefix("calver:") {
        Some(p) => pb::NamingRule {
            scheme: pb::VersionScheme::Calver as i32,
            calver_pattern: p.to_owned(),
        },
        None if f.versioning == "semver" => pb::NamingRule {
            scheme: pb::VersionScheme::Semver as i32,
            calver_pattern: String::new(),
        },
        None => anyhow::bail!(
            "versioning {:?}: use \"semver\" or \"calver:PATTERN\"",
            f.versioning
        ),
    };
    Ok(pb::PolicyDocument {
        approval_rules: f
            .approval_rules
            .into_iter()
            .map(|r| pb::ApprovalRule {
                tier: r.tier,
                min_risk: r.min_risk,
                max_risk: r.max_risk,
                requirements: r
                    .requirements
                    .into_iter()
                    .map(|q| pb::RoleRequirement {
                        role: q.role,
                        count: q.count,
                    })
                    .collect(),
                business_unit: r.business_unit,
                environments: r.environments,
            })
            .collect(),
        naming: Some(naming),
        rollback_criteria: f
            .rollback_criteria
            .into_iter()
            .map(|c| pb::RollbackCriteria {
                tier: c.tier,
                decision_minutes: c.decision_minutes,
                thresholds: c
                    .thresholds
                    .into_iter()
                    .map(|t| pb::RollbackThreshold {
                        metric: t.metric,
                        comparison: t.comparison,
                        value: t.value,
                    })
                    .collect(),
                notify: c.notify,
            })
            .collect(),
        decision_deadline_minutes: f.decision_deadline_minutes,
        expire_after_minutes: f.expire_after_minutes,
        escalate_to: f.escalate_to,
        approval_validity_minutes: f.approval_validity_minutes,
    })
}

pub async fn run(
    target: &Target,
    output: Output,
    command: GovernanceCommand,
) -> anyhow::Result<ExitCode> {
    let (channel, bearer) = target.connect("governance").await?;
    let mut c: Client = GovernanceServiceClient::with_interceptor(channel, bearer);
    match command {
        GovernanceCommand::Gate {
            release,
            environment,
            at,
        } => {
            let at = at.map(|a| time("--at", &a)).transpose()?;
            let d = c
                .check_gate(pb::CheckGateRequest {
                    release,
                    environment,
                    at,
                })
                .await
                .map_err(|s| failed("gate check", s))?
                .into_inner();
            match output {
                Output::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "allowed": d.allowed, "release": d.release, "environment": d.environment,
                        "at": show_time(d.at.as_ref()), "deviations_used": d.deviations_used,
                        "reasons": d.reasons.iter().map(|r| json!({"kind": gate_reason_kind(r.kind), "subject": r.subject, "message": r.message, "waived_by_deviation": r.waived_by_deviation})).collect::<Vec<_>>(),
                    }))?
                ),
                Output::Table => {
                    println!(
                        "{} {} at {}: {}",
                        d.release,
                        d.environment,
                        show_time(d.at.as_ref()),
                        if d.allowed { "ALLOWED" } else { "DENIED" }
                    );
                    if !d.reasons.is_empty() {
                        table(
                            &["reason", "subject", "detail", "waived by"],
                            &d.reasons
                                .iter()
                                .map(|r| {
                                    vec![
                                        gate_reason_kind(r.kind).into(),
                                        r.subject.clone(),
                                        r.message.clone(),
                                        r.waived_by_deviation.clone(),
                                    ]
                                })
                                .collect::<Vec<_>>(),
                        );
                    }
                }
            }
            return Ok(if d.allowed {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
        GovernanceCommand::Approvals(cmd) => match cmd {
            ApprovalsCommand::Open {
                release,
                version,
                env,
                service,
                bu,
                tier,
                risk,
                personal_data,
                author,
                committers,
                emergency,
            } => {
                let r = c
                    .open_approval_request(pb::OpenApprovalRequestRequest {
                        release: Some(pb::ReleaseFacts {
                            release,
                            version,
                            environment: env,
                            service,
                            business_unit: bu,
                            criticality_tier: tier,
                            risk_score: risk,
                            handles_personal_data: personal_data,
                            author,
                            committers,
                        }),
                        emergency,
                    })
                    .await
                    .map_err(|s| failed("opening the approval request", s))?
                    .into_inner();
                print_requests(output, &[r])?;
            }
            ApprovalsCommand::List { bu, release } => {
                let r = c
                    .list_approval_requests(pb::ListApprovalRequestsRequest {
                        business_unit: bu.unwrap_or_default(),
                        status: 0,
                        release: release.unwrap_or_default(),
                    })
                    .await
                    .map_err(|s| failed("listing approval requests", s))?
                    .into_inner();
                print_requests(output, &r.requests)?;
            }
            ApprovalsCommand::Show { release, env } => {
                let r = c
                    .get_approval_request(pb::GetApprovalRequestRequest {
                        release,
                        environment: env,
                    })
                    .await
                    .map_err(|s| failed("reading the approval request", s))?
                    .into_inner();
                print_requests(output, &[r])?;
            }
            ApprovalsCommand::Approve {
                release,
                env,
                role,
                comment,
            } => {
                let r = c
                    .approve(pb::DecideApprovalRequest {
                        release,
                        environment: env,
                        role,
                        comment: comment.unwrap_or_default(),
                    })
                    .await
                    .map_err(|s| failed("approving", s))?
                    .into_inner();
                print_requests(output, &[r])?;
            }
            ApprovalsCommand::Reject {
                release,
                env,
                role,
                comment,
            } => {
                let r = c
                    .reject(pb::DecideApprovalRequest {
                        release,
                        environment: env,
                        role,
                        comment,
                    })
                    .await
                    .map_err(|s| failed("rejecting", s))?
                    .into_inner();
                print_requests(output, &[r])?;
            }
        },
        GovernanceCommand::Windows(cmd) => match cmd {
            WindowsCommand::Create {
                name,
                kind,
                bu,
                environments,
                tiers,
                once,
                monthly_day,
                months,
                weekly,
                start,
                hours,
                reason,
            } => {
                let kind = match kind.as_str() {
                    "freeze" => pb::WindowKind::Freeze,
                    "embargo" => pb::WindowKind::Embargo,
                    other => anyhow::bail!("--kind {other:?}: use freeze or embargo"),
                };
                let schedule = match (once, monthly_day, weekly) {
                    (Some(o), None, None) => {
                        let (s, e) = o
                            .split_once(',')
                            .ok_or_else(|| anyhow::anyhow!("--once takes START,END"))?;
                        pb::freeze_window::Schedule::Once(pb::OnceSchedule {
                            start: Some(time("--once start", s)?),
                            end: Some(time("--once end", e)?),
                        })
                    }
                    (None, Some(day), None) => {
                        pb::freeze_window::Schedule::Monthly(pb::MonthlySchedule {
                            months,
                            day,
                            start_minute: minutes(&start)?,
                            duration_minutes: hours * 60,
                        })
                    }
                    (None, None, Some(days)) => {
                        let weekdays = days
                            .split(',')
                            .map(|d| d.trim().parse::<u32>())
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|_| {
                                anyhow::anyhow!("--weekly {days:?}: weekdays 1..7, comma-separated")
                            })?;
                        pb::freeze_window::Schedule::Weekly(pb::WeeklySchedule {
                            weekdays,
                            start_minute: minutes(&start)?,
                            duration_minutes: hours * 60,
                        })
                    }
                    _ => anyhow::bail!("give exactly one of --once, --monthly-day or --weekly"),
                };
                let bu = bu.unwrap_or_default();
                let w = c
                    .create_freeze_window(pb::CreateFreezeWindowRequest {
                        window: Some(pb::FreezeWindow {
                            name,
                            kind: kind as i32,
                            scope: Some(pb::WindowScope {
                                business_units: if bu.is_empty() {
                                    vec![]
                                } else {
                                    vec![bu.clone()]
                                },
                                environments,
                                tiers,
                            }),
                            schedule: Some(schedule),
                            reason: reason.unwrap_or_default(),
                            business_unit: bu,
                            ..Default::default()
                        }),
                    })
                    .await
                    .map_err(|s| failed("creating the window", s))?
                    .into_inner();
                print_windows(output, &[w])?;
            }
            WindowsCommand::List { bu, active } => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)?
                    .as_secs() as i64;
                let r = c
                    .list_freeze_windows(pb::ListFreezeWindowsRequest {
                        business_unit: bu.unwrap_or_default(),
                        active_at: active.then_some(prost_types::Timestamp {
                            seconds: now,
                            nanos: 0,
                        }),
                    })
                    .await
                    .map_err(|s| failed("listing windows", s))?
                    .into_inner();
                print_windows(output, &r.windows)?;
            }
            WindowsCommand::Cancel { id, reason } => {
                let w = c
                    .cancel_freeze_window(pb::CancelFreezeWindowRequest {
                        window_id: id,
                        reason: reason.unwrap_or_default(),
                    })
                    .await
                    .map_err(|s| failed("cancelling the window", s))?
                    .into_inner();
                print_windows(output, &[w])?;
            }
        },
        GovernanceCommand::Deviations(cmd) => {
            let approve = matches!(cmd, DeviationsCommand::Approve { .. });
            match cmd {
                DeviationsCommand::Request {
                    rule: r,
                    release,
                    env,
                    bu,
                    justification,
                    controls,
                    expires,
                    role,
                } => {
                    let d = c
                        .request_deviation(pb::RequestDeviationRequest {
                            deviation: Some(pb::Deviation {
                                rule: rule(&r)? as i32,
                                release,
                                environment: env,
                                business_unit: bu,
                                justification,
                                compensating_controls: controls,
                                expires_at: Some(time("--expires", &expires)?),
                                requester_role: role,
                                ..Default::default()
                            }),
                        })
                        .await
                        .map_err(|s| failed("requesting the deviation", s))?
                        .into_inner();
                    print_deviations(output, &[d])?;
                }
                DeviationsCommand::Approve { id, role, comment }
                | DeviationsCommand::Reject { id, role, comment } => {
                    let req = pb::DecideDeviationRequest {
                        deviation_id: id,
                        role,
                        comment: comment.unwrap_or_default(),
                    };
                    let d = if approve {
                        c.approve_deviation(req).await
                    } else {
                        c.reject_deviation(req).await
                    }
                    .map_err(|s| failed("deciding the deviation", s))?
                    .into_inner();
                    print_deviations(output, &[d])?;
                }
                DeviationsCommand::List { release } => {
                    let r = c
                        .list_deviations(pb::ListDeviationsRequest {
                            release: release.unwrap_or_default(),
                            business_unit: String::new(),
                        })
                        .await
                        .map_err(|s| failed("listing deviations", s))?
                        .into_inner();
                    print_deviations(output, &r.deviations)?;
                }
            }
        }
        GovernanceCommand::Cab {
            change_request,
            covers,
            members,
            rejected,
            comment,
        } => {
            let covers = covers
                .iter()
                .map(|c| {
                    c.split_once('@')
                        .map(|(r, e)| pb::ReleaseEnvironment {
                            release: r.into(),
                            environment: e.into(),
                        })
                        .ok_or_else(|| anyhow::anyhow!("--covers {c:?} is not RELEASE@ENVIRONMENT"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs() as i64;
            let d = c
                .record_cab_decision(pb::RecordCabDecisionRequest {
                    decision: Some(pb::CabDecision {
                        change_request_id: change_request,
                        approved: !rejected,
                        covers,
                        members,
                        decided_at: Some(prost_types::Timestamp {
                            seconds: now,
                            nanos: 0,
                        }),
                        comment: comment.unwrap_or_default(),
                        ..Default::default()
                    }),
                })
                .await
                .map_err(|s| failed("recording the CAB decision", s))?
                .into_inner();
            match output {
                Output::Json => println!(
                    "{}",
                    json!({"change_request_id": d.change_request_id, "approved": d.approved, "covers": d.covers.iter().map(|c| format!("{}@{}", c.release, c.environment)).collect::<Vec<_>>(), "satisfies_roles": d.satisfies_roles})
                ),
                Output::Table => println!(
                    "recorded CAB decision {} ({}) covering {} release(s), satisfying {}",
                    d.change_request_id,
                    if d.approved { "approved" } else { "rejected" },
                    d.covers.len(),
                    d.satisfies_roles.join(", ")
                ),
            }
        }
        GovernanceCommand::Rollbacks(cmd) => {
            let decisions = match cmd {
                RollbacksCommand::List { release } => {
                    c.list_rollback_decisions(pb::ListRollbackDecisionsRequest {
                        release: release.unwrap_or_default(),
                        business_unit: String::new(),
                    })
                    .await
                    .map_err(|s| failed("listing rollback decisions", s))?
                    .into_inner()
                    .decisions
                }
                RollbacksCommand::Decide {
                    id,
                    roll_back,
                    comment,
                } => vec![
                    c.decide_rollback(pb::DecideRollbackRequest {
                        decision_id: id,
                        roll_back,
                        comment: comment.unwrap_or_default(),
                    })
                    .await
                    .map_err(|s| failed("deciding the rollback", s))?
                    .into_inner(),
                ],
            };
            let rows: Vec<serde_json::Value> = decisions
                .iter()
                .map(|d| json!({"decision_id": d.decision_id, "release": d.release, "environment": d.environment, "metric": d.metric, "observed": d.observed, "decide_by": show_time(d.decide_by.as_ref()), "overdue": d.overdue, "status": d.status}))
                .collect();
            match output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&rows)?),
                Output::Table => table(
                    &["id", "release", "env", "metric", "decide by", "overdue"],
                    &decisions
                        .iter()
                        .map(|d| {
                            vec![
                                d.decision_id.clone(),
                                d.release.clone(),
                                d.environment.clone(),
                                format!("{}={}", d.metric, d.observed),
                                show_time(d.decide_by.as_ref()),
                                d.overdue.to_string(),
                            ]
                        })
                        .collect::<Vec<_>>(),
                ),
            }
        }
        GovernanceCommand::Policy(cmd) => match cmd {
            PolicyCommand::Show => {
                let p = c
                    .get_policy(pb::GetPolicyRequest { version: 0 })
                    .await
                    .map_err(|s| failed("reading the policy", s))?
                    .into_inner();
                let doc = p.policy.unwrap_or_default();
                match output {
                    Output::Json => {
                        println!("{}", serde_json::to_string_pretty(&policy_file(&doc))?)
                    }
                    Output::Table => {
                        println!("policy version {}", p.version);
                        table(
                            &["tier", "risk", "unit", "envs", "approvals"],
                            &doc.approval_rules
                                .iter()
                                .map(|r| {
                                    vec![
                                        r.tier.to_string(),
                                        format!("{}-{}", r.min_risk, r.max_risk),
                                        if r.business_unit.is_empty() {
                                            "(default)".into()
                                        } else {
                                            r.business_unit.clone()
                                        },
                                        r.environments.join(","),
                                        r.requirements
                                            .iter()
                                            .map(|q| format!("{} x{}", q.role, q.count))
                                            .collect::<Vec<_>>()
                                            .join(", "),
                                    ]
                                })
                                .collect::<Vec<_>>(),
                        );
                    }
                }
            }
            PolicyCommand::Set {
                file,
                expected_version,
            } => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
                let f: PolicyFile = serde_json::from_str(&text).map_err(|e| {
                    anyhow::anyhow!("{} is not a policy file ({e}); start from `flotilla governance --output json policy show`", file.display())
                })?;
                let p = c
                    .set_policy(pb::SetPolicyRequest {
                        policy: Some(policy_doc(f)?),
                        expected_version,
                    })
                    .await
                    .map_err(|s| failed("setting the policy", s))?
                    .into_inner();
                println!("policy version {} is in force", p.version);
            }
        },
        GovernanceCommand::Access(cmd) => match cmd {
            AccessCommand::Show => {
                let p = c
                    .get_access_policy(pb::GetAccessPolicyRequest {})
                    .await
                    .map_err(|s| failed("reading the access policy", s))?
                    .into_inner();
                match output {
                    Output::Json => println!(
                        "{}",
                        json!({"version": p.version, "sha256": p.sha256, "policy": p.policy})
                    ),
                    Output::Table => {
                        println!("// access policy version {} sha256 {}", p.version, p.sha256);
                        print!("{}", p.policy);
                    }
                }
            }
            AccessCommand::Replace {
                file,
                expected_version,
            } => {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
                let p = c
                    .replace_access_policy(pb::ReplaceAccessPolicyRequest {
                        policy: text,
                        expected_version,
                    })
                    .await
                    .map_err(|s| failed("replacing the access policy", s))?
                    .into_inner();
                println!(
                    "access policy version {} ({}) is in force",
                    p.version, p.sha256
                );
            }
        },
        GovernanceCommand::Deadlines => {
            let r = c
                .process_deadlines(pb::ProcessDeadlinesRequest { now: None })
                .await
                .map_err(|s| failed("processing deadlines", s))?
                .into_inner();
            match output {
                Output::Json => println!(
                    "{}",
                    json!({"escalated": r.escalated, "expired": r.expired, "rollback_decisions_overdue": r.rollback_decisions_overdue, "deviations_expired": r.deviations_expired})
                ),
                Output::Table => table(
                    &[
                        "escalated",
                        "expired",
                        "rollbacks overdue",
                        "deviations expired",
                    ],
                    &[vec![
                        r.escalated.to_string(),
                        r.expired.to_string(),
                        r.rollback_decisions_overdue.to_string(),
                        r.deviations_expired.to_string(),
                    ]],
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_windows(output: Output, windows: &[pb::FreezeWindow]) -> anyhow::Result<()> {
    let when = |w: &pb::FreezeWindow| match &w.schedule {
        Some(pb::freeze_window::Schedule::Once(o)) => format!(
            "{} .. {}",
            show_time(o.start.as_ref()),
            show_time(o.end.as_ref())
        ),
        Some(pb::freeze_window::Schedule::Monthly(m)) => format!(
            "monthly day {} {:02}:{:02} for {}h{}",
            m.day,
            m.start_minute / 60,
            m.start_minute % 60,
            m.duration_minutes / 60,
            if m.months.is_empty() {
                String::new()
            } else {
                format!(" in months {:?}", m.months)
            }
        ),
        Some(pb::freeze_window::Schedule::Weekly(x)) => format!(
            "weekly {:?} {:02}:{:02} for {}h",
            x.weekdays,
            x.start_minute / 60,
            x.start_minute % 60,
            x.duration_minutes / 60
        ),
        None => String::new(),
    };
    let kind = |w: &pb::FreezeWindow| {
        if w.kind == pb::WindowKind::Embargo as i32 {
            "embargo"
        } else {
            "freeze"
        }
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &windows
                    .iter()
                    .map(|w| json!({"window_id": w.window_id, "name": w.name, "kind": kind(w), "business_unit": w.business_unit, "when": when(w), "cancelled": w.cancelled}))
                    .collect::<Vec<_>>()
            )?
        ),
        Output::Table => table(
            &["id", "name", "kind", "unit", "when", "cancelled"],
            &windows
                .iter()
                .map(|w| vec![w.window_id.clone(), w.name.clone(), kind(w).into(), w.business_unit.clone(), when(w), w.cancelled.to_string()])
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

fn print_deviations(output: Output, deviations: &[pb::Deviation]) -> anyhow::Result<()> {
    let status = |d: &pb::Deviation| match pb::DeviationStatus::try_from(d.status) {
        Ok(pb::DeviationStatus::Requested) => "requested",
        Ok(pb::DeviationStatus::Approved) => "approved",
        Ok(pb::DeviationStatus::Rejected) => "rejected",
        Ok(pb::DeviationStatus::Expired) => "expired",
        _ => "unknown",
    };
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(
                &deviations
                    .iter()
                    .map(|d| json!({"deviation_id": d.deviation_id, "release": d.release, "environment": d.environment, "rule": d.rule, "status": status(d), "requested_by": d.requested_by, "decided_by": d.decided_by, "expires_at": show_time(d.expires_at.as_ref()), "compensating_controls": d.compensating_controls}))
                    .collect::<Vec<_>>()
            )?
        ),
        Output::Table => table(
            &["id", "release", "env", "status", "requested by", "decided by", "expires"],
            &deviations
                .iter()
                .map(|d| vec![d.deviation_id.clone(), d.release.clone(), d.environment.clone(), status(d).into(), d.requested_by.clone(), d.decided_by.clone(), show_time(d.expires_at.as_ref())])
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}
