//! `flotilla audit retention|hold|erase|archive`: retention policies per regulation and data
//! class, legal holds, erasure of a person's data (crypto-shredding) and the archive export of
//! records whose retention period has run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use flotilla_proto::compliance::v1 as pb;
use serde::Serialize;

use super::Client;
use crate::client::failed;
use crate::format::{print_json, show_time};
use crate::output::{Output, table};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RegulationArg {
    Sox,
    Hipaa,
    Gdpr,
    Internal,
}

impl RegulationArg {
    fn pb(self) -> pb::Regulation {
        match self {
            RegulationArg::Sox => pb::Regulation::Sox,
            RegulationArg::Hipaa => pb::Regulation::Hipaa,
            RegulationArg::Gdpr => pb::Regulation::Gdpr,
            RegulationArg::Internal => pb::Regulation::Internal,
        }
    }
}

/// Which records: every option left out covers everything.
#[derive(Args, Debug, Clone)]
pub struct ClassArgs {
    /// A service whose records it covers (repeat for several).
    #[arg(long = "service")]
    services: Vec<String>,
    /// An event type, or a prefix ending in "." (flotilla.governance.v1.); repeatable.
    #[arg(long = "event-type")]
    event_types: Vec<String>,
    /// Only this business unit's records.
    #[arg(long)]
    unit: Option<String>,
}

impl ClassArgs {
    fn pb(&self) -> pb::DataClass {
        pb::DataClass {
            services: self.services.clone(),
            event_types: self.event_types.clone(),
            business_unit: self.unit.clone().unwrap_or_default(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum RetentionCommand {
    /// Set (or change) a retention policy: how long a class of records is kept (SOX: 7 years,
    /// HIPAA: 6, by default) and how long personal data in it may be (GDPR minimisation).
    Set {
        name: String,
        #[arg(long, value_enum)]
        regulation: RegulationArg,
        /// Days records of the class are kept (default: the regulation's period).
        #[arg(long, default_value_t = 0)]
        keep_days: u32,
        /// Days personal data in the class is kept after its subject last appeared (GDPR).
        #[arg(long, default_value_t = 0)]
        personal_data_days: u32,
        #[command(flatten)]
        class: ClassArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum HoldCommand {
    /// Place a legal hold: nothing it covers is erased until it is released.
    Place {
        id: String,
        /// The matter it is for (litigation, investigation).
        #[arg(long)]
        matter: String,
        /// Only this person's data (an e-mail or subject, or a key id); repeatable.
        #[arg(long = "subject")]
        subjects: Vec<String>,
        #[command(flatten)]
        class: ClassArgs,
    },
    /// Release a legal hold.
    Release { id: String },
}

fn class_text(c: Option<&pb::DataClass>) -> String {
    let Some(c) = c else {
        return "everything".into();
    };
    let mut parts = Vec::new();
    if !c.services.is_empty() {
        parts.push(c.services.join(","));
    }
    if !c.event_types.is_empty() {
        parts.push(c.event_types.join(","));
    }
    if !c.business_unit.is_empty() {
        parts.push(format!("unit {}", c.business_unit));
    }
    if parts.is_empty() {
        "everything".into()
    } else {
        parts.join(" ")
    }
}

fn regulation_text(n: i32) -> &'static str {
    match pb::Regulation::try_from(n) {
        Ok(pb::Regulation::Sox) => "SOX",
        Ok(pb::Regulation::Hipaa) => "HIPAA",
        Ok(pb::Regulation::Gdpr) => "GDPR",
        _ => "internal",
    }
}

#[derive(Serialize)]
struct PolicyView {
    name: String,
    regulation: &'static str,
    covers: String,
    keep_days: u32,
    personal_data_days: u32,
    set_by: String,
}

fn policy_view(p: &pb::RetentionPolicy) -> PolicyView {
    PolicyView {
        name: p.name.clone(),
        regulation: regulation_text(p.regulation),
        covers: class_text(p.data_class.as_ref()),
        keep_days: p.keep_days,
        personal_data_days: p.personal_data_days,
        set_by: p.set_by.clone(),
    }
}

#[derive(Serialize)]
struct HoldView {
    id: String,
    matter: String,
    covers: String,
    subjects: Vec<String>,
    placed_by: String,
    released: String,
}

fn hold_view(h: &pb::LegalHold) -> HoldView {
    HoldView {
        id: h.id.clone(),
        matter: h.matter.clone(),
        covers: class_text(h.data_class.as_ref()),
        subjects: h.subjects.clone(),
        placed_by: h.placed_by.clone(),
        released: h
            .released_at
            .as_ref()
            .map(|t| show_time(Some(t)))
            .unwrap_or_default(),
    }
}

#[derive(Serialize)]
struct ErasureView {
    subject_key: String,
    reason: String,
    request_ref: String,
    erased_by: String,
    erased_at: String,
    automatic: bool,
}

fn erasure_view(e: &pb::Erasure) -> ErasureView {
    ErasureView {
        subject_key: e.subject_key.clone(),
        reason: e.reason.clone(),
        request_ref: e.request_ref.clone(),
        erased_by: e.erased_by.clone(),
        erased_at: show_time(e.erased_at.as_ref()),
        automatic: e.automatic,
    }
}

#[derive(Serialize)]
struct RetentionView {
    policies: Vec<PolicyView>,
    holds: Vec<HoldView>,
    erasures: Vec<ErasureView>,
    subjects_seen: u64,
}

/// `audit retention`: policies, holds and erasures.
pub async fn show(c: &mut Client, output: Output) -> anyhow::Result<ExitCode> {
    let r = c
        .get_retention(pb::GetRetentionRequest {})
        .await
        .map_err(|s| failed("retention", s))?
        .into_inner();
    let view = RetentionView {
        policies: r.policies.iter().map(policy_view).collect(),
        holds: r.holds.iter().map(hold_view).collect(),
        erasures: r.erasures.iter().map(erasure_view).collect(),
        subjects_seen: r.subjects_seen,
    };
    if output == Output::Json {
        print_json(&view)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("retention policies");
    table(
        &[
            "name",
            "regulation",
            "covers",
            "keep days",
            "personal data days",
            "set by",
        ],
        &view
            .policies
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.regulation.into(),
                    p.covers.clone(),
                    p.keep_days.to_string(),
                    p.personal_data_days.to_string(),
                    p.set_by.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!("\nlegal holds");
    table(
        &[
            "id",
            "matter",
            "covers",
            "subjects",
            "placed by",
            "released",
        ],
        &view
            .holds
            .iter()
            .map(|h| {
                vec![
                    h.id.clone(),
                    h.matter.clone(),
                    h.covers.clone(),
                    if h.subjects.is_empty() {
                        "all".into()
                    } else {
                        h.subjects.join(",")
                    },
                    h.placed_by.clone(),
                    h.released.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!("\nerasures");
    table(
        &["subject key", "erased at", "by", "reason", "request"],
        &view
            .erasures
            .iter()
            .map(|e| {
                vec![
                    e.subject_key.clone(),
                    e.erased_at.clone(),
                    e.erased_by.clone(),
                    e.reason.clone(),
                    e.request_ref.clone(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    println!(
        "\n{} subjects' sealed data seen by the ledger",
        view.subjects_seen
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn retention(
    c: &mut Client,
    output: Output,
    command: RetentionCommand,
) -> anyhow::Result<ExitCode> {
    let RetentionCommand::Set {
        name,
        regulation,
        keep_days,
        personal_data_days,
        class,
    } = command;
    let p = c
        .set_retention_policy(pb::SetRetentionPolicyRequest {
            policy: Some(pb::RetentionPolicy {
                name: name.clone(),
                regulation: regulation.pb() as i32,
                data_class: Some(class.pb()),
                keep_days,
                personal_data_days,
                ..Default::default()
            }),
        })
        .await
        .map_err(|s| failed(&format!("retention policy {name}"), s))?
        .into_inner();
    let v = policy_view(&p);
    match output {
        Output::Json => print_json(&v)?,
        Output::Table => println!(
            "retention policy {} ({}) over {}: records kept {} days, personal data {}",
            v.name,
            v.regulation,
            v.covers,
            v.keep_days,
            if v.personal_data_days == 0 {
                "as long as the records".to_owned()
            } else {
                format!(
                    "{} days after its subject last appeared",
                    v.personal_data_days
                )
            }
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn hold(
    c: &mut Client,
    output: Output,
    command: HoldCommand,
) -> anyhow::Result<ExitCode> {
    let h = match command {
        HoldCommand::Place {
            id,
            matter,
            subjects,
            class,
        } => c
            .place_legal_hold(pb::PlaceLegalHoldRequest {
                hold: Some(pb::LegalHold {
                    id: id.clone(),
                    matter,
                    data_class: Some(class.pb()),
                    subjects,
                    ..Default::default()
                }),
            })
            .await
            .map_err(|s| failed(&format!("legal hold {id}"), s))?,
        HoldCommand::Release { id } => c
            .release_legal_hold(pb::ReleaseLegalHoldRequest { id: id.clone() })
            .await
            .map_err(|s| failed(&format!("releasing legal hold {id}"), s))?,
    }
    .into_inner();
    let v = hold_view(&h);
    match output {
        Output::Json => print_json(&v)?,
        Output::Table if v.released.is_empty() => println!(
            "legal hold {} ({}) holds {} of {}",
            v.id,
            v.matter,
            if v.subjects.is_empty() {
                "everyone's data".to_owned()
            } else {
                format!("the data of {}", v.subjects.join(", "))
            },
            v.covers
        ),
        Output::Table => println!("legal hold {} released at {}", v.id, v.released),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn erase(
    c: &mut Client,
    output: Output,
    subject: String,
    reason: String,
    request_ref: Option<String>,
) -> anyhow::Result<ExitCode> {
    let e = c
        .erase_subject(pb::EraseSubjectRequest {
            subject,
            reason,
            request_ref: request_ref.unwrap_or_default(),
        })
        .await
        .map_err(|s| failed("the erasure", s))?
        .into_inner();
    let v = erasure_view(&e);
    match output {
        Output::Json => print_json(&v)?,
        Output::Table => println!(
            "erased subject key {}: their personal data now shows as [erased:{}] in every service, the ledger, replays and reports; every chain and proof still verifies",
            v.subject_key,
            v.subject_key.get(..16).unwrap_or_default()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `audit archive POLICY --out FILE`: an audit bundle of the policy's records whose retention
/// period has run (recorded more than keep_days ago), for cold storage.
pub async fn archive(
    c: &mut Client,
    output: Output,
    policy: String,
    out: PathBuf,
) -> anyhow::Result<ExitCode> {
    let r = c
        .get_retention(pb::GetRetentionRequest {})
        .await
        .map_err(|s| failed("retention", s))?
        .into_inner();
    let Some(p) = r.policies.iter().find(|p| p.name == policy) else {
        anyhow::bail!(
            "no retention policy {policy}; list them with `flotilla audit retention`, or set one with `flotilla audit retention set`"
        );
    };
    // Proven against a checkpoint of the ledger as it is now.
    let signed = c
        .sign_checkpoint(pb::SignCheckpointRequest {})
        .await
        .map_err(|s| failed("a checkpoint for the archive", s))?
        .into_inner();
    let now = crate::format::instant()?;
    let until = prost_types::Timestamp {
        seconds: now.seconds - i64::from(p.keep_days) * 86_400,
        nanos: now.nanos,
    };
    let class = p.data_class.clone().unwrap_or_default();
    let request = pb::ExportAuditBundleRequest {
        filter: Some(pb::ReplayRequest {
            services: class.services,
            event_types: class.event_types,
            business_unit: class.business_unit,
            to_time: Some(until),
            ..Default::default()
        }),
        tree_size: signed.size,
    };
    super::replay::export(c, output, request, &out).await
}
