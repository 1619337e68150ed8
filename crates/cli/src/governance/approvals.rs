//! `flotilla governance approvals …`: approval requests.

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::governance::v1 as pb;
use serde::Serialize;

use super::Client;
use crate::client::failed;
use crate::format::{print_json, show_time};
use crate::output::{Output, table};

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

/// An approval request as `--output json` prints it (always in an array).
#[derive(Serialize)]
struct ApprovalRequestView {
    request_id: String,
    release: String,
    version: String,
    environment: String,
    service: String,
    business_unit: String,
    status: &'static str,
    escalated: bool,
    emergency: bool,
    due_at: String,
    expires_at: String,
    requirements: Vec<RequirementView>,
    approvals: Vec<ApprovalView>,
}

/// How far one required role is.
#[derive(Serialize)]
struct RequirementView {
    role: String,
    required: u32,
    given: u32,
    /// The CAB change request satisfying the role, or "".
    cab: String,
}

#[derive(Serialize)]
struct ApprovalView {
    approver: String,
    role: String,
    at: String,
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

impl From<&pb::RequirementState> for RequirementView {
    fn from(q: &pb::RequirementState) -> Self {
        Self {
            role: q.role.clone(),
            required: q.required,
            given: q.given,
            cab: q.cab_change_request.clone(),
        }
    }
}

impl From<&pb::Approval> for ApprovalView {
    fn from(a: &pb::Approval) -> Self {
        Self {
            approver: a.approver.clone(),
            role: a.role.clone(),
            at: show_time(a.approved_at.as_ref()),
        }
    }
}

impl From<&pb::ApprovalRequest> for ApprovalRequestView {
    fn from(r: &pb::ApprovalRequest) -> Self {
        let f = r.release.clone().unwrap_or_default();
        Self {
            request_id: r.request_id.clone(),
            release: f.release,
            version: f.version,
            environment: f.environment,
            service: f.service,
            business_unit: f.business_unit,
            status: status_name(r.status),
            escalated: r.escalated,
            emergency: r.emergency,
            due_at: show_time(r.due_at.as_ref()),
            expires_at: show_time(r.expires_at.as_ref()),
            requirements: r.requirements.iter().map(RequirementView::from).collect(),
            approvals: r.approvals.iter().map(ApprovalView::from).collect(),
        }
    }
}

impl ApprovalRequestView {
    const HEADERS: [&str; 6] = ["release", "env", "unit", "status", "requirements", "due"];

    fn row(&self) -> Vec<String> {
        vec![
            self.release.clone(),
            self.environment.clone(),
            self.business_unit.clone(),
            self.status.into(),
            self.requirements
                .iter()
                .map(|q| {
                    if q.cab.is_empty() {
                        format!("{} {}/{}", q.role, q.given, q.required)
                    } else {
                        format!("{} by {}", q.role, q.cab)
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
            self.due_at.clone(),
        ]
    }
}

fn print_requests(output: Output, requests: &[pb::ApprovalRequest]) -> anyhow::Result<()> {
    let views: Vec<ApprovalRequestView> = requests.iter().map(ApprovalRequestView::from).collect();
    match output {
        Output::Json => print_json(&views)?,
        Output::Table => table(
            &ApprovalRequestView::HEADERS,
            &views
                .iter()
                .map(ApprovalRequestView::row)
                .collect::<Vec<_>>(),
        ),
    }
    Ok(())
}

pub async fn run(
    c: &mut Client,
    output: Output,
    command: ApprovalsCommand,
) -> anyhow::Result<ExitCode> {
    let requests = match command {
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
        } => vec![
            c.open_approval_request(pb::OpenApprovalRequestRequest {
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
            .into_inner(),
        ],
        ApprovalsCommand::List { bu, release } => {
            c.list_approval_requests(pb::ListApprovalRequestsRequest {
                business_unit: bu.unwrap_or_default(),
                status: 0,
                release: release.unwrap_or_default(),
            })
            .await
            .map_err(|s| failed("listing approval requests", s))?
            .into_inner()
            .requests
        }
        ApprovalsCommand::Show { release, env } => vec![
            c.get_approval_request(pb::GetApprovalRequestRequest {
                release,
                environment: env,
            })
            .await
            .map_err(|s| failed("reading the approval request", s))?
            .into_inner(),
        ],
        ApprovalsCommand::Approve {
            release,
            env,
            role,
            comment,
        } => vec![
            c.approve(pb::DecideApprovalRequest {
                release,
                environment: env,
                role,
                comment: comment.unwrap_or_default(),
            })
            .await
            .map_err(|s| failed("approving", s))?
            .into_inner(),
        ],
        ApprovalsCommand::Reject {
            release,
            env,
            role,
            comment,
        } => vec![
            c.reject(pb::DecideApprovalRequest {
                release,
                environment: env,
                role,
                comment,
            })
            .await
            .map_err(|s| failed("rejecting", s))?
            .into_inner(),
        ],
    };
    print_requests(output, &requests)?;
    Ok(ExitCode::SUCCESS)
}
