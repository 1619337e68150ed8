//! `flotilla catalog drift`: declared dependencies never observed, observed calls never declared.

use std::process::ExitCode;

use flotilla_proto::dependency::v1 as pb;
use serde::Serialize;

use super::Client;
use super::impact::edge_kind_name;
use crate::client::failed;
use crate::format::print_json;
use crate::output::{Output, table};

/// Dependency drift as `--output json` prints it.
#[derive(Serialize)]
struct DriftView {
    declared_not_observed: Vec<DeclaredEdgeView>,
    observed_not_declared: Vec<ObservedEdgeView>,
}

#[derive(Serialize)]
struct DeclaredEdgeView {
    consumer: String,
    provider: String,
    kind: &'static str,
}

#[derive(Serialize)]
struct ObservedEdgeView {
    client: String,
    server: String,
    calls: u64,
}

impl From<&pb::DependencyDrift> for DriftView {
    fn from(d: &pb::DependencyDrift) -> Self {
        Self {
            declared_not_observed: d
                .declared_not_observed
                .iter()
                .map(|e| DeclaredEdgeView {
                    consumer: e.consumer.clone(),
                    provider: e.provider.clone(),
                    kind: edge_kind_name(e.kind),
                })
                .collect(),
            observed_not_declared: d
                .observed_not_declared
                .iter()
                .map(|e| ObservedEdgeView {
                    client: e.client.clone(),
                    server: e.server.clone(),
                    calls: e.calls,
                })
                .collect(),
        }
    }
}

impl DriftView {
    /// One row per finding, declared ones first.
    fn rows(&self) -> Vec<Vec<String>> {
        let declared = self.declared_not_observed.iter().map(|e| {
            vec![
                "declared, never observed".into(),
                e.consumer.clone(),
                e.provider.clone(),
                e.kind.into(),
            ]
        });
        let observed = self.observed_not_declared.iter().map(|e| {
            vec![
                "observed, never declared".into(),
                e.client.clone(),
                e.server.clone(),
                format!("{} calls", e.calls),
            ]
        });
        declared.chain(observed).collect()
    }
}

pub async fn run(c: &mut Client, output: Output) -> anyhow::Result<ExitCode> {
    let d = c
        .get_dependency_drift(pb::GetDependencyDriftRequest {})
        .await
        .map_err(|s| failed("drift", s))?
        .into_inner();
    let view = DriftView::from(&d);
    match output {
        Output::Json => print_json(&view)?,
        Output::Table => table(&["finding", "consumer", "provider", "detail"], &view.rows()),
    }
    Ok(ExitCode::SUCCESS)
}
