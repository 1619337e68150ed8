//! `flotilla governance policy …`: the governance policy, shown as (and set from) a JSON file.

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::governance::v1 as pb;
use serde::{Deserialize, Serialize};

use super::Client;
use crate::client::failed;
use crate::format::print_json;
use crate::output::{Output, table};

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

// The policy file: `policy show --output json` prints it, `policy set` reads it. Its view types
// keep their `…File` names because serde names them in parse errors of `policy set`.

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

/// The governance policy as `policy show --output json` prints it and `policy set` reads it.
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

impl From<&pb::RoleRequirement> for RequirementFile {
    fn from(q: &pb::RoleRequirement) -> Self {
        Self {
            role: q.role.clone(),
            count: q.count,
        }
    }
}

impl From<&pb::ApprovalRule> for RuleFile {
    fn from(r: &pb::ApprovalRule) -> Self {
        Self {
            tier: r.tier,
            min_risk: r.min_risk,
            max_risk: r.max_risk,
            requirements: r.requirements.iter().map(RequirementFile::from).collect(),
            business_unit: r.business_unit.clone(),
            environments: r.environments.clone(),
        }
    }
}

impl From<&pb::RollbackThreshold> for ThresholdFile {
    fn from(t: &pb::RollbackThreshold) -> Self {
        Self {
            metric: t.metric.clone(),
            comparison: t.comparison.clone(),
            value: t.value,
        }
    }
}

impl From<&pb::RollbackCriteria> for CriteriaFile {
    fn from(c: &pb::RollbackCriteria) -> Self {
        Self {
            tier: c.tier,
            decision_minutes: c.decision_minutes,
            thresholds: c.thresholds.iter().map(ThresholdFile::from).collect(),
            notify: c.notify.clone(),
        }
    }
}

impl From<&pb::PolicyDocument> for PolicyFile {
    fn from(p: &pb::PolicyDocument) -> Self {
        let naming = p.naming.clone().unwrap_or_default();
        Self {
            approval_rules: p.approval_rules.iter().map(RuleFile::from).collect(),
            versioning: if naming.scheme == pb::VersionScheme::Calver as i32 {
                format!("calver:{}", naming.calver_pattern)
            } else {
                "semver".into()
            },
            rollback_criteria: p.rollback_criteria.iter().map(CriteriaFile::from).collect(),
            decision_deadline_minutes: p.decision_deadline_minutes,
            expire_after_minutes: p.expire_after_minutes,
            escalate_to: p.escalate_to.clone(),
            approval_validity_minutes: p.approval_validity_minutes,
        }
    }
}

impl PolicyFile {
    /// The policy document the file describes.
    fn into_document(self) -> anyhow::Result<pb::PolicyDocument> {
        let naming = match self.versioning.strip_prefix("calver:") {
            Some(p) => pb::NamingRule {
                scheme: pb::VersionScheme::Calver as i32,
                calver_pattern: p.to_owned(),
            },
            None if self.versioning == "semver" => pb::NamingRule {
                scheme: pb::VersionScheme::Semver as i32,
                calver_pattern: String::new(),
            },
            None => anyhow::bail!(
                "versioning {:?}: use \"semver\" or \"calver:PATTERN\"",
                self.versioning
            ),
        };
        Ok(pb::PolicyDocument {
            approval_rules: self
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
            rollback_criteria: self
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
            decision_deadline_minutes: self.decision_deadline_minutes,
            expire_after_minutes: self.expire_after_minutes,
            escalate_to: self.escalate_to,
            approval_validity_minutes: self.approval_validity_minutes,
        })
    }
}

impl RuleFile {
    const HEADERS: [&str; 5] = ["tier", "risk", "unit", "envs", "approvals"];

    fn row(&self) -> Vec<String> {
        vec![
            self.tier.to_string(),
            format!("{}-{}", self.min_risk, self.max_risk),
            if self.business_unit.is_empty() {
                "(default)".into()
            } else {
                self.business_unit.clone()
            },
            self.environments.join(","),
            self.requirements
                .iter()
                .map(|q| format!("{} x{}", q.role, q.count))
                .collect::<Vec<_>>()
                .join(", "),
        ]
    }
}

pub async fn run(
    c: &mut Client,
    output: Output,
    command: PolicyCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Show => {
            let p = c
                .get_policy(pb::GetPolicyRequest { version: 0 })
                .await
                .map_err(|s| failed("reading the policy", s))?
                .into_inner();
            let view = PolicyFile::from(&p.policy.unwrap_or_default());
            match output {
                Output::Json => print_json(&view)?,
                Output::Table => {
                    println!("policy version {}", p.version);
                    table(
                        &RuleFile::HEADERS,
                        &view
                            .approval_rules
                            .iter()
                            .map(RuleFile::row)
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
                anyhow::anyhow!(
                    "{} is not a policy file ({e}); start from `flotilla governance --output json policy show`",
                    file.display()
                )
            })?;
            let p = c
                .set_policy(pb::SetPolicyRequest {
                    policy: Some(f.into_document()?),
                    expected_version,
                })
                .await
                .map_err(|s| failed("setting the policy", s))?
                .into_inner();
            println!("policy version {} is in force", p.version);
        }
    }
    Ok(ExitCode::SUCCESS)
}
