//! `audit checkpoint`, `audit sources` and `audit alerts`: the ledger's signed checkpoint, each
//! service's chain as the ledger sees it, and the alerts of chains that did not hold.

use std::process::ExitCode;

use flotilla_proto::compliance::v1 as pb;
use serde::Serialize;

use super::{Client, hex, refused, verifier_key};
use crate::client::failed;
use crate::format::{print_json, show_time};
use crate::output::{Output, table};

#[derive(Serialize)]
struct CheckpointView {
    size: u64,
    root_hex: String,
    signed_at: String,
    note: String,
    verifier_key: String,
}

/// `audit checkpoint [--sign]`.
pub async fn checkpoint(c: &mut Client, output: Output, sign: bool) -> anyhow::Result<ExitCode> {
    let cp = if sign {
        c.sign_checkpoint(pb::SignCheckpointRequest {})
            .await
            .map_err(|s| failed("sign a checkpoint", s))?
    } else {
        c.get_checkpoint(pb::GetCheckpointRequest { size: 0 })
            .await
            .map_err(|s| refused("the newest checkpoint", s))?
    }
    .into_inner();
    let view = CheckpointView {
        size: cp.size,
        root_hex: hex(&cp.root),
        signed_at: show_time(cp.signed_at.as_ref()),
        note: cp.note,
        verifier_key: verifier_key(c).await?,
    };
    match output {
        Output::Json => print_json(&view)?,
        Output::Table => {
            table(
                &["size", "root", "signed at"],
                &[vec![
                    view.size.to_string(),
                    view.root_hex.clone(),
                    view.signed_at.clone(),
                ]],
            );
            println!();
            print!("{}", view.note);
            if !view.note.ends_with('\n') {
                println!();
            }
            println!();
            println!("verifier key: {}", view.verifier_key);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct SourceView {
    service: String,
    linked_to: u64,
    head_hash: String,
    waiting: u64,
    events: u64,
    withheld: u64,
    alerts: u64,
}

/// `audit sources`.
pub async fn sources(c: &mut Client, output: Output) -> anyhow::Result<ExitCode> {
    let sources: Vec<SourceView> = c
        .list_sources(pb::ListSourcesRequest {})
        .await
        .map_err(|s| failed("the ledger's sources", s))?
        .into_inner()
        .sources
        .into_iter()
        .map(|s| SourceView {
            service: s.service,
            linked_to: s.linked_to,
            head_hash: s.head_hash,
            waiting: s.waiting,
            events: s.events,
            withheld: s.withheld,
            alerts: s.alerts,
        })
        .collect();
    match output {
        Output::Json => print_json(&sources)?,
        Output::Table => {
            let rows: Vec<Vec<String>> = sources
                .iter()
                .map(|s| {
                    vec![
                        s.service.clone(),
                        s.linked_to.to_string(),
                        s.waiting.to_string(),
                        s.events.to_string(),
                        s.withheld.to_string(),
                        s.alerts.to_string(),
                        s.head_hash.chars().take(16).collect(),
                    ]
                })
                .collect();
            table(
                &[
                    "service",
                    "linked to",
                    "waiting",
                    "events",
                    "withheld",
                    "alerts",
                    "head hash",
                ],
                &rows,
            );
            if sources.is_empty() {
                eprintln!("no service's events have reached the ledger yet");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct AlertView {
    number: u64,
    kind: String,
    service: String,
    sequence: u64,
    last: u64,
    expected: String,
    found: String,
    detail: String,
    event_id: String,
    raised_at: String,
}

/// An alert kind as people read it: `gap`, `fork`, `mismatch`, `altered`.
fn kind_name(k: i32) -> String {
    pb::AlertKind::try_from(k).map_or_else(
        |_| format!("kind {k}"),
        |k| {
            k.as_str_name()
                .trim_start_matches("ALERT_KIND_")
                .to_lowercase()
        },
    )
}

/// `audit alerts [--service S]`.
pub async fn alerts(
    c: &mut Client,
    output: Output,
    service: Option<String>,
) -> anyhow::Result<ExitCode> {
    let alerts: Vec<AlertView> = c
        .list_chain_alerts(pb::ListChainAlertsRequest {
            service: service.unwrap_or_default(),
        })
        .await
        .map_err(|s| failed("chain alerts", s))?
        .into_inner()
        .alerts
        .into_iter()
        .map(|a| AlertView {
            number: a.number,
            kind: kind_name(a.kind),
            service: a.service,
            sequence: a.sequence,
            last: a.last,
            expected: a.expected,
            found: a.found,
            detail: a.detail,
            event_id: a.event_id,
            raised_at: show_time(a.raised_at.as_ref()),
        })
        .collect();
    match output {
        Output::Json => print_json(&alerts)?,
        Output::Table if alerts.is_empty() => {
            println!("no chain alerts: every service's chain links as far as the ledger saw it");
        }
        Output::Table => {
            let rows: Vec<Vec<String>> = alerts
                .iter()
                .map(|a| {
                    vec![
                        a.number.to_string(),
                        a.kind.clone(),
                        a.service.clone(),
                        if a.last > a.sequence {
                            format!("{}..{}", a.sequence, a.last)
                        } else {
                            a.sequence.to_string()
                        },
                        a.detail.clone(),
                    ]
                })
                .collect();
            table(&["number", "kind", "service", "positions", "detail"], &rows);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_kinds_read_without_their_prefix() {
        assert_eq!(kind_name(pb::AlertKind::Gap as i32), "gap");
        assert_eq!(kind_name(pb::AlertKind::Altered as i32), "altered");
        assert_eq!(kind_name(99), "kind 99");
    }
}
