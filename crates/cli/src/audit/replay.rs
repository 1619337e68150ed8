//! `audit replay` (the ledgered events as CloudEvents JSON lines) and `audit bundle` (the same
//! filter, exported with inclusion proofs against a signed checkpoint).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Args;
use flotilla_proto::compliance::v1 as pb;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Client, refused, verifier_key};
use crate::client::failed;
use crate::format::{parse_time, print_json};
use crate::output::{Output, progress, spinner};

/// What an example time looks like in error messages.
const TIME_EXAMPLE: &str = "2026-12-01T00:00:00Z";

/// Which ledgered events to take (every filter left out matches everything).
#[derive(Args, Debug)]
pub struct FilterArgs {
    /// Only events of this service (repeatable), e.g. governance.
    #[arg(long = "service", value_name = "SERVICE")]
    services: Vec<String>,
    /// Only events of this stream, the CloudEvents subject (repeatable).
    #[arg(long = "stream", value_name = "STREAM")]
    streams: Vec<String>,
    /// Only events of this full type (repeatable), e.g.
    /// flotilla.governance.v1.ApprovalGranted.
    #[arg(long = "type", value_name = "TYPE")]
    types: Vec<String>,
    /// Only events about this business unit.
    #[arg(long, value_name = "UNIT")]
    bu: Option<String>,
    /// Only events recorded at or after this RFC 3339 time, e.g. 2026-12-01T00:00:00Z.
    #[arg(long, value_name = "RFC3339")]
    from: Option<String>,
    /// Only events recorded before this RFC 3339 time.
    #[arg(long, value_name = "RFC3339")]
    to: Option<String>,
    /// The first ledger index to take (to resume: the index a replay said to resume with).
    #[arg(long, value_name = "N", default_value_t = 0)]
    from_index: u64,
    /// At most this many events.
    #[arg(long, value_name = "N")]
    limit: Option<u64>,
}

impl FilterArgs {
    fn request(&self) -> anyhow::Result<pb::ReplayRequest> {
        let time = |flag: &str, t: &Option<String>| {
            t.as_deref()
                .map(|t| parse_time(flag, t, TIME_EXAMPLE))
                .transpose()
        };
        Ok(pb::ReplayRequest {
            services: self.services.clone(),
            streams: self.streams.clone(),
            event_types: self.types.clone(),
            business_unit: self.bu.clone().unwrap_or_default(),
            from_time: time("--from", &self.from)?,
            to_time: time("--to", &self.to)?,
            from_index: self.from_index,
            limit: self.limit.unwrap_or(0),
        })
    }

    /// Whether only services (and a limit) narrow the replay, so the sources' event counts
    /// bound how many come.
    fn only_services(&self) -> bool {
        self.streams.is_empty()
            && self.types.is_empty()
            && self.bu.is_none()
            && self.from.is_none()
            && self.to.is_none()
            && self.from_index == 0
    }
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    filter: FilterArgs,
}

#[derive(Args, Debug)]
pub struct BundleArgs {
    #[command(flatten)]
    filter: FilterArgs,
    /// The size of the signed checkpoint the proofs are against (default: the newest).
    #[arg(long, value_name = "N")]
    tree_size: Option<u64>,
    /// The file to write the bundle to.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// A replayed event in the CloudEvents JSON format: the context attributes, every extension as
/// a top-level attribute, the data as `data_base64`, and where it stands in the ledger.
fn cloud_event_json(r: &pb::ReplayedEvent) -> Value {
    let mut o = Map::new();
    let e = r.event.clone().unwrap_or_default();
    o.insert("specversion".into(), "1.0".into());
    o.insert("id".into(), e.id.into());
    o.insert("source".into(), e.source.into());
    o.insert("type".into(), e.r#type.into());
    for (k, v) in [
        ("subject", e.subject),
        ("time", e.time),
        ("datacontenttype", e.datacontenttype),
    ] {
        if !v.is_empty() {
            o.insert(k.into(), v.into());
        }
    }
    for (k, v) in e.extensions {
        // An extension may not take a context attribute's name.
        o.entry(k).or_insert(Value::String(v));
    }
    o.insert("data_base64".into(), STANDARD.encode(&e.data).into());
    o.insert("ledgerindex".into(), r.index.into());
    o.insert("ledgerservice".into(), r.service.clone().into());
    // Who, as a person reads it (the `actor` extension stays sealed, as the buses carried it).
    if !r.actor.is_empty() {
        o.insert("revealedactor".into(), r.actor.clone().into());
    }
    Value::Object(o)
}

/// How many events a replay can bring at most, when the sources tell (else None).
async fn expected(c: &mut Client, filter: &FilterArgs) -> Option<u64> {
    if !filter.only_services() {
        return None;
    }
    let sources = c
        .list_sources(pb::ListSourcesRequest {})
        .await
        .ok()?
        .into_inner()
        .sources;
    let events: u64 = sources
        .iter()
        .filter(|s| filter.services.is_empty() || filter.services.contains(&s.service))
        .map(|s| s.events)
        .sum();
    Some(filter.limit.map_or(events, |l| l.min(events)))
}

/// `audit replay`: JSON lines on stdout, progress and where to resume on stderr.
pub async fn replay(c: &mut Client, args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let request = args.filter.request()?;
    let from_index = request.from_index;
    let bar = match expected(c, &args.filter).await {
        Some(total) => progress(total, "replaying"),
        None => spinner("replaying"),
    };
    if std::io::stdout().is_terminal() {
        // The lines are the progress; a bar would draw over them.
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut stream = c
        .replay(request)
        .await
        .map_err(|s| failed("replay", s))?
        .into_inner();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut count: u64 = 0;
    let mut next = from_index;
    let mut closed = false;
    let ended = loop {
        match stream.message().await {
            Ok(Some(r)) => {
                let line = serde_json::to_string(&cloud_event_json(&r))?;
                if let Err(e) = writeln!(out, "{line}") {
                    if e.kind() == std::io::ErrorKind::BrokenPipe {
                        closed = true;
                        break Ok(());
                    }
                    break Err(anyhow::anyhow!("cannot write to stdout: {e}"));
                }
                count += 1;
                next = r.index + 1;
                bar.inc(1);
            }
            Ok(None) => break Ok(()),
            Err(s) => break Err(failed("replay", s)),
        }
    };
    let flushed = out.flush();
    bar.finish_and_clear();
    let flushed = match flushed {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            closed = true;
            Ok(())
        }
        other => other,
    };
    let events = if count == 1 { "event" } else { "events" };
    let how = if closed { " (stdout closed)" } else { "" };
    eprintln!("replayed {count} {events}{how}; resume with --from-index {next}");
    ended?;
    flushed.map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct BundleView {
    file: String,
    entries: u64,
    tree_size: u64,
    verifier_key: String,
}

/// `audit bundle --out FILE`: the bundle's JSON in FILE, and the key to check it with.
pub async fn bundle(c: &mut Client, output: Output, args: BundleArgs) -> anyhow::Result<ExitCode> {
    let request = pb::ExportAuditBundleRequest {
        filter: Some(args.filter.request()?),
        tree_size: args.tree_size.unwrap_or(0),
    };
    export(c, output, request, &args.out).await
}

/// Exports the bundle a request names to `out`.
pub async fn export(
    c: &mut Client,
    output: Output,
    request: pb::ExportAuditBundleRequest,
    out: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let bar = progress(1, "exporting");
    let b = c
        .export_audit_bundle(request)
        .await
        .map_err(|s| refused("audit bundle", s))?
        .into_inner();
    bar.finish_and_clear();
    let key = verifier_key(c).await?;
    std::fs::write(out, &b.json)
        .map_err(|e| anyhow::anyhow!("cannot write the bundle to {}: {e}", out.display()))?;
    let file = out.display().to_string();
    match output {
        Output::Json => print_json(&BundleView {
            file,
            entries: b.entries,
            tree_size: b.tree_size,
            verifier_key: key,
        })?,
        Output::Table => {
            println!(
                "wrote {} entries proven against the checkpoint of size {} to {file}; check it with `flotilla audit verify {file} --key <verifier key>`",
                b.entries, b.tree_size
            );
            println!("verifier key: {key}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_event_is_cloudevents_json_with_extensions_on_top() {
        let r = pb::ReplayedEvent {
            actor: "alice".into(),
            index: 7,
            service: "governance".into(),
            event: Some(pb::CloudEvent {
                id: "0190a0a0-0000-7000-8000-000000000001".into(),
                source: "flotilla/governance".into(),
                r#type: "flotilla.governance.v1.ApprovalGranted".into(),
                subject: "approval-1".into(),
                time: "2026-12-01T00:00:00Z".into(),
                datacontenttype: "application/protobuf".into(),
                extensions: [("sequence".to_owned(), "3".to_owned())].into(),
                data: vec![1, 2, 3],
            }),
            withheld: false,
            content_matches: true,
        };
        let v = cloud_event_json(&r);
        assert_eq!(v["specversion"], "1.0");
        assert_eq!(v["type"], "flotilla.governance.v1.ApprovalGranted");
        assert_eq!(v["sequence"], "3");
        assert_eq!(v["data_base64"], "AQID");
        assert_eq!(v["revealedactor"], "alice");
        assert_eq!(v["ledgerindex"], 7);
        assert_eq!(v["ledgerservice"], "governance");
    }

    #[test]
    fn a_time_not_in_rfc_3339_says_the_form_expected() {
        let f = FilterArgs {
            services: vec![],
            streams: vec![],
            types: vec![],
            bu: None,
            from: Some("yesterday".into()),
            to: None,
            from_index: 0,
            limit: None,
        };
        let e = f.request().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("2026-12-01T00:00:00Z"), "{e}");
    }
}
