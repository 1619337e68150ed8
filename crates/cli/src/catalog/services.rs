//! `flotilla catalog import|list`: the services of the catalog.

use std::process::ExitCode;

use flotilla_proto::dependency::v1 as pb;
use serde::Serialize;

use super::Client;
use crate::client::failed;
use crate::format::{print_json, yes};
use crate::output::{Output, progress, table};

/// What a Backstage import did, as `--output json` prints it.
#[derive(Serialize)]
struct ImportView {
    registered: u32,
    updated: u32,
    unchanged: u32,
    dependencies_declared: u32,
    /// Why entries of the file were not imported.
    skipped: Vec<String>,
    catalog_version: u64,
}

impl From<&pb::ImportBackstageCatalogResponse> for ImportView {
    fn from(r: &pb::ImportBackstageCatalogResponse) -> Self {
        Self {
            registered: r.registered,
            updated: r.updated,
            unchanged: r.unchanged,
            dependencies_declared: r.dependencies_declared,
            skipped: r.skipped.clone(),
            catalog_version: r.catalog_version,
        }
    }
}

impl ImportView {
    const HEADERS: [&str; 4] = [
        "registered",
        "updated",
        "unchanged",
        "dependencies declared",
    ];

    fn row(&self) -> Vec<String> {
        vec![
            self.registered.to_string(),
            self.updated.to_string(),
            self.unchanged.to_string(),
            self.dependencies_declared.to_string(),
        ]
    }
}

/// A catalog service as `--output json` prints it (always in an array).
#[derive(Serialize)]
struct ServiceView {
    name: String,
    owner_team: String,
    business_unit: String,
    criticality_tier: u32,
    handles_personal_data: bool,
}

impl From<&pb::ServiceEntry> for ServiceView {
    fn from(s: &pb::ServiceEntry) -> Self {
        Self {
            name: s.name.clone(),
            owner_team: s.owner_team.clone(),
            business_unit: s.business_unit.clone(),
            criticality_tier: s.criticality_tier,
            handles_personal_data: s.handles_personal_data,
        }
    }
}

impl ServiceView {
    const HEADERS: [&str; 5] = ["service", "owner", "business unit", "tier", "pii"];

    fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.owner_team.clone(),
            self.business_unit.clone(),
            self.criticality_tier.to_string(),
            yes(self.handles_personal_data),
        ]
    }
}

/// `catalog import FILE`: a Backstage catalog-info.yaml, imported by the service.
pub async fn import(
    c: &mut Client,
    output: Output,
    file: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let bar = progress(1, "importing");
    let r = c
        .import_backstage_catalog(pb::ImportBackstageCatalogRequest { catalog_yaml: text })
        .await
        .map_err(|st| failed(&format!("import {}", file.display()), st))?
        .into_inner();
    bar.finish_and_clear();
    let view = ImportView::from(&r);
    match output {
        Output::Json => print_json(&view)?,
        Output::Table => {
            table(&ImportView::HEADERS, &[view.row()]);
            for s in &view.skipped {
                eprintln!("skipped: {s}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `catalog list`.
pub async fn list(
    c: &mut Client,
    output: Output,
    business_unit: Option<String>,
) -> anyhow::Result<ExitCode> {
    let services = c
        .list_services(pb::ListServicesRequest {
            business_unit: business_unit.unwrap_or_default(),
        })
        .await
        .map_err(|s| failed("list", s))?
        .into_inner()
        .services;
    let views: Vec<ServiceView> = services.iter().map(ServiceView::from).collect();
    match output {
        Output::Json => print_json(&views)?,
        Output::Table => table(
            &ServiceView::HEADERS,
            &views.iter().map(ServiceView::row).collect::<Vec<_>>(),
        ),
    }
    Ok(ExitCode::SUCCESS)
}
