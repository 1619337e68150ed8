//! `flotilla audit`: the compliance ledger for auditors. Online, through the compliance
//! service's gRPC API: the ledgered events replayed as CloudEvents JSON lines (`replay`), an
//! audit bundle of them with their inclusion proofs (`bundle`), the signed checkpoint
//! (`checkpoint`), each service's chain (`sources`), the alerts of chains that did not hold
//! (`alerts`) and the audit report of a release as JSON and HTML (`report`). Offline, with only the ledger's verifier key (C2SP form `<name>+<id>+<key>`, given
//! as the key or a file holding it): `verify BUNDLE --key VKEY` checks a bundle's checkpoint
//! signature, then every entry's inclusion proof.

mod history;
mod ledger;
mod replay;
mod retention;

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::compliance::v1 as pb;
use flotilla_proto::compliance::v1::compliance_service_client::ComplianceServiceClient;
use flotilla_transparency::bundle;
use flotilla_transparency::note::NoteVerifier;
use serde::Serialize;

use crate::client::{Authed, Target, failed};
use crate::format::print_json;
use crate::output::Output;

/// A compliance client whose calls carry the caller's token.
type Client = ComplianceServiceClient<Authed>;

/// The largest answer taken from compliance (a bundle of 10,000 entries with their proofs and
/// events is tens of MiB).
const MAX_ANSWER_BYTES: usize = 512 * 1024 * 1024;

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Replay the ledgered events as CloudEvents JSON lines on stdout (always JSON lines:
    /// --output has no effect).
    ///
    /// One event a line, in ledger order: the context attributes, every extension as a
    /// top-level attribute, the data as data_base64, plus ledgerindex and ledgerservice.
    /// Progress and the index to resume from go to stderr, so `> events.jsonl` keeps only the
    /// events.
    Replay(replay::ReplayArgs),
    /// Export an audit bundle to a file: a signed checkpoint and the matching events below its
    /// size with their inclusion proofs, as the JSON `audit verify` checks offline.
    Bundle(replay::BundleArgs),
    /// The ledger's newest signed checkpoint (or sign one of the ledger as it is now), its note
    /// and the verifier key it is signed with.
    Checkpoint {
        /// Sign a checkpoint of the ledger as it is now (the newest again when the ledger did
        /// not grow since).
        #[arg(long)]
        sign: bool,
    },
    /// Each service's hash chain as the ledger sees it: how far it links, what waits, events,
    /// withheld events and alerts.
    Sources,
    /// Alerts of services' chains that did not hold: gaps, forks, mismatched and altered events.
    Alerts {
        /// Only this service's alerts.
        #[arg(long)]
        service: Option<String>,
    },
    /// The audit report of a release (or, with --env, of the releases that ran in an
    /// environment at --at): every ledgered event about it, from source to production, each
    /// line citing its event with an inclusion proof against a signed checkpoint; written as
    /// NAME-audit.json and NAME-audit.html (printable).
    Report {
        /// The release's name (leave it out with --env).
        release: Option<String>,
        /// An environment: report what ran there.
        #[arg(long, conflicts_with = "release")]
        env: Option<String>,
        /// With --env: what ran there at this instant (default now); with a release: what
        /// had been recorded about it by then. RFC 3339.
        #[arg(long)]
        at: Option<String>,
        /// The folder the two files are written to.
        #[arg(long, default_value = ".")]
        out_dir: std::path::PathBuf,
    },
    /// The state of an aggregate as of an instant, from the events its service had recorded
    /// by then: each field's latest value and the event that set it, every event cited.
    ///
    /// AGGREGATE is the stream's prefix (release, approval, environment, policy, window,
    /// deviation, deployment, artifact...); KEY a name, an id or the stream id it is known by
    /// (leave it out for a policy).
    State {
        aggregate: String,
        key: Option<String>,
        /// Only this service's aggregates (a policy is governance's or orchestration's).
        #[arg(long)]
        service: Option<String>,
        /// The instant, RFC 3339 (default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// What was known when each approval of a request was given: the events about its release
    /// recorded before it, and their digest.
    Evidence {
        /// The approval request's id (`flotilla governance approvals list`).
        request_id: String,
        /// Only this approver's approvals.
        #[arg(long)]
        approver: Option<String>,
    },
    /// The evidence pack of the annual control assessment: each release control (personal-data
    /// peer review, segregation of duties, embargoes, the deviation register, the ledger's
    /// integrity) tested over a period against every ledgered event, with every exception and
    /// a reproducible sample of passing cases, each case's events proven.
    Controls {
        /// The period's start, RFC 3339.
        #[arg(long)]
        from: String,
        /// The period's end (exclusive), RFC 3339 (default now).
        #[arg(long)]
        to: Option<String>,
        /// Passing cases drawn per control (default 25, at most 200).
        #[arg(long, default_value_t = 25)]
        samples: u32,
        /// Write the pack as JSON to this file.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Retention policies, legal holds and erasures; `retention set` sets a policy.
    Retention {
        #[command(subcommand)]
        command: Option<retention::RetentionCommand>,
    },
    /// Place or release a legal hold.
    Hold {
        #[command(subcommand)]
        command: retention::HoldCommand,
    },
    /// Erase a person's data everywhere (crypto-shredding): their key is destroyed, so every
    /// sealed value of theirs shows as a placeholder; refused while a legal hold or a
    /// retention obligation keeps it.
    Erase {
        /// Who: an e-mail or identity-provider subject (or a subject key id).
        subject: String,
        /// Why (e.g. "GDPR art. 17 request").
        #[arg(long)]
        reason: String,
        /// The data-subject request or ticket it answers.
        #[arg(long = "request")]
        request_ref: Option<String>,
    },
    /// Export the records of a retention policy whose period has run as an audit bundle
    /// (verifiable offline), for the archive.
    Archive {
        policy: String,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Verify a bundle offline: the checkpoint's signature and every entry's proof.
    Verify {
        /// The bundle's JSON file.
        bundle: std::path::PathBuf,
        /// The ledger's verifier key, or a file holding it.
        #[arg(long)]
        key: String,
    },
}

pub async fn run(
    target: &Target,
    output: Output,
    command: AuditCommand,
) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify { bundle, key } => verify(output, &bundle, key),
        AuditCommand::Replay(args) => replay::replay(&mut connect(target).await?, args).await,
        AuditCommand::Bundle(args) => {
            replay::bundle(&mut connect(target).await?, output, args).await
        }
        AuditCommand::Checkpoint { sign } => {
            ledger::checkpoint(&mut connect(target).await?, output, sign).await
        }
        AuditCommand::Sources => ledger::sources(&mut connect(target).await?, output).await,
        AuditCommand::Report {
            release,
            env,
            at,
            out_dir,
        } => {
            let at = at
                .as_deref()
                .map(|t| crate::format::parse_time("--at", t, "2026-12-01T00:00:00Z"))
                .transpose()?;
            let request = match (release, env) {
                (Some(release), None) => pb::GetAuditReportRequest {
                    release,
                    at,
                    ..Default::default()
                },
                (None, Some(environment)) => pb::GetAuditReportRequest {
                    environment,
                    at,
                    ..Default::default()
                },
                _ => anyhow::bail!(
                    "name a release (flotilla audit report payments-2.0.0) or an environment (--env prod [--at 2026-12-01T00:00:00Z])"
                ),
            };
            report(&mut connect(target).await?, output, request, &out_dir).await
        }
        AuditCommand::State {
            aggregate,
            key,
            service,
            at,
        } => {
            let at = at
                .as_deref()
                .map(|t| crate::format::parse_time("--at", t, "2026-12-01T00:00:00Z"))
                .transpose()?;
            let request = pb::GetStateAtRequest {
                aggregate,
                key: key.unwrap_or_default(),
                service: service.unwrap_or_default(),
                at,
            };
            history::state(&mut connect(target).await?, output, request).await
        }
        AuditCommand::Evidence {
            request_id,
            approver,
        } => {
            let request = pb::GetApprovalEvidenceRequest {
                request_id,
                approver: approver.unwrap_or_default(),
            };
            history::evidence(&mut connect(target).await?, output, request).await
        }
        AuditCommand::Controls {
            from,
            to,
            samples,
            out,
        } => {
            let from = crate::format::parse_time("--from", &from, "2026-01-01T00:00:00Z")?;
            let to = match to {
                Some(t) => crate::format::parse_time("--to", &t, "2027-01-01T00:00:00Z")?,
                None => crate::format::instant()?,
            };
            let request = pb::GetEvidencePackRequest {
                from: Some(from),
                to: Some(to),
                sample_size: samples,
            };
            history::controls(&mut connect(target).await?, output, request, out.as_deref()).await
        }
        AuditCommand::Retention { command: None } => {
            retention::show(&mut connect(target).await?, output).await
        }
        AuditCommand::Retention {
            command: Some(command),
        } => retention::retention(&mut connect(target).await?, output, command).await,
        AuditCommand::Hold { command } => {
            retention::hold(&mut connect(target).await?, output, command).await
        }
        AuditCommand::Erase {
            subject,
            reason,
            request_ref,
        } => {
            retention::erase(
                &mut connect(target).await?,
                output,
                subject,
                reason,
                request_ref,
            )
            .await
        }
        AuditCommand::Archive { policy, out } => {
            retention::archive(&mut connect(target).await?, output, policy, out).await
        }
        AuditCommand::Alerts { service } => {
            ledger::alerts(&mut connect(target).await?, output, service).await
        }
    }
}

/// A client of the compliance service at the target (`verify` needs none).
async fn connect(target: &Target) -> anyhow::Result<Client> {
    let (channel, bearer) = target.connect("compliance").await?;
    Ok(ComplianceServiceClient::with_interceptor(channel, bearer)
        .max_decoding_message_size(MAX_ANSWER_BYTES))
}

/// The C2SP verifier key the ledger's checkpoints are signed with.
async fn verifier_key(c: &mut Client) -> anyhow::Result<String> {
    Ok(c.list_checkpoints(pb::ListCheckpointsRequest {})
        .await
        .map_err(|s| failed("the ledger's verifier key", s))?
        .into_inner()
        .verifier_key)
}

/// A refused call (through `failed`), saying to sign a checkpoint when none is signed yet.
fn refused(what: &str, s: tonic::Status) -> anyhow::Error {
    let unsigned = s.code() == tonic::Code::FailedPrecondition;
    let e = failed(what, s);
    if unsigned {
        anyhow::anyhow!(
            "{e}\n  hint: sign one with `flotilla audit checkpoint --sign` (roles compliance-officer or admin)"
        )
    } else {
        e
    }
}

#[derive(Serialize)]
struct ReportView {
    release: String,
    lines: u64,
    tree_size: u64,
    json: String,
    html: String,
}

/// `audit report RELEASE`: the report's JSON and HTML written beside each other.
async fn report(
    c: &mut Client,
    output: Output,
    request: pb::GetAuditReportRequest,
    out_dir: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let name = if request.release.is_empty() {
        request.environment.clone()
    } else {
        request.release.clone()
    };
    let r = c
        .get_audit_report(request)
        .await
        .map_err(|s| failed(&format!("the audit report of {name}"), s))?
        .into_inner();
    let release = r.release.clone();
    std::fs::create_dir_all(out_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out_dir.display()))?;
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let json = out_dir.join(format!("{stem}-audit.json"));
    let html = out_dir.join(format!("{stem}-audit.html"));
    for (path, body) in [(&json, &r.json), (&html, &r.html)] {
        std::fs::write(path, body)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    match output {
        Output::Json => print_json(&[ReportView {
            release,
            lines: r.lines,
            tree_size: r.tree_size,
            json: json.display().to_string(),
            html: html.display().to_string(),
        }])?,
        Output::Table => println!(
            "audit report of {release}: {} events, each proven against the checkpoint of size {}\n  {}\n  {}",
            r.lines,
            r.tree_size,
            json.display(),
            html.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// Bytes as lowercase hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Serialize)]
struct VerifiedView {
    origin: String,
    size: u64,
    root: String,
    entries: usize,
}

/// `audit verify BUNDLE --key VKEY`: offline, exit 1 when the bundle does not verify.
fn verify(output: Output, path: &std::path::Path, key: String) -> anyhow::Result<ExitCode> {
    let key_text = if std::path::Path::new(&key).is_file() {
        std::fs::read_to_string(&key)
            .map_err(|e| anyhow::anyhow!("cannot read the key file {key}: {e}"))?
    } else {
        key
    };
    let key = NoteVerifier::parse(&key_text).map_err(|e| {
        anyhow::anyhow!(
            "{e}; give the ledger's verifier key (as compliance publishes it) or a file holding it"
        )
    })?;
    let json = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("cannot read the bundle {}: {e}", path.display()))?;
    match bundle::verify(&json, &key) {
        Ok(v) => {
            let root = hex(&v.checkpoint.root);
            match output {
                Output::Json => print_json(&[VerifiedView {
                    origin: v.checkpoint.origin.clone(),
                    size: v.checkpoint.size,
                    root,
                    entries: v.entries,
                }])?,
                Output::Table => println!(
                    "verified: checkpoint of {} at size {} (root {root}) signed by {}; {} entries proven included",
                    v.checkpoint.origin, v.checkpoint.size, key.name, v.entries
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("not verified: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
