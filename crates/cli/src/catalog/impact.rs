//! `flotilla catalog impact|groups|plan`: what a change reaches, what deploys together, and in
//! which waves.

use std::process::ExitCode;

use flotilla_proto::dependency::v1 as pb;
use serde::Serialize;

use super::Client;
use super::footprint::SkewViolationView;
use crate::client::failed;
use crate::format::{print_json, yes};
use crate::output::{Output, table};

/// An edge kind as the JSON and the tables name it.
pub(super) fn edge_kind_name(k: i32) -> &'static str {
    match pb::EdgeKind::try_from(k) {
        Ok(pb::EdgeKind::SyncApi) => "sync_api",
        Ok(pb::EdgeKind::AsyncMessage) => "async_message",
        Ok(pb::EdgeKind::Database) => "database",
        Ok(pb::EdgeKind::SharedInfrastructure) => "shared_infrastructure",
        _ => "unspecified",
    }
}

/// A service a change reaches, as `--output json` prints it.
#[derive(Serialize)]
struct ImpactEntryView {
    service: String,
    distance: u32,
    criticality_tier: u32,
    business_unit: String,
    handles_personal_data: bool,
    edge_kinds: Vec<&'static str>,
    risk: u32,
}

impl From<&pb::ImpactEntry> for ImpactEntryView {
    fn from(e: &pb::ImpactEntry) -> Self {
        Self {
            service: e.service.clone(),
            distance: e.distance,
            criticality_tier: e.criticality_tier,
            business_unit: e.business_unit.clone(),
            handles_personal_data: e.handles_personal_data,
            edge_kinds: e.edge_kinds.iter().map(|k| edge_kind_name(*k)).collect(),
            risk: e.risk,
        }
    }
}

impl ImpactEntryView {
    const HEADERS: [&str; 7] = [
        "service",
        "distance",
        "tier",
        "business unit",
        "pii",
        "edges",
        "risk",
    ];

    fn row(&self) -> Vec<String> {
        vec![
            self.service.clone(),
            self.distance.to_string(),
            self.criticality_tier.to_string(),
            self.business_unit.clone(),
            yes(self.handles_personal_data),
            self.edge_kinds.join(","),
            self.risk.to_string(),
        ]
    }

    fn table(entries: &[Self]) {
        table(
            &Self::HEADERS,
            &entries.iter().map(Self::row).collect::<Vec<_>>(),
        );
    }
}

/// A co-deployment group as `--output json` prints it (always in an array).
#[derive(Serialize)]
struct GroupView {
    name: String,
    members: Vec<GroupMemberView>,
}

#[derive(Serialize)]
struct GroupMemberView {
    service: String,
    reasons: Vec<String>,
}

impl From<&pb::CoDeploymentGroup> for GroupView {
    fn from(g: &pb::CoDeploymentGroup) -> Self {
        Self {
            name: g.name.clone(),
            members: g
                .members
                .iter()
                .map(|m| GroupMemberView {
                    service: m.service.clone(),
                    reasons: m.reasons.clone(),
                })
                .collect(),
        }
    }
}

impl GroupView {
    /// One row per member.
    fn rows(&self) -> impl Iterator<Item = Vec<String>> + '_ {
        self.members
            .iter()
            .map(|m| vec![self.name.clone(), m.service.clone(), m.reasons.join("; ")])
    }
}

/// A release plan as `--output json` prints it: waves are arrays of services.
#[derive(Serialize)]
struct PlanView {
    waves: Vec<Vec<PlannedServiceView>>,
    impact: Vec<ImpactEntryView>,
    skew_violations: Vec<SkewViolationView>,
}

#[derive(Serialize)]
struct PlannedServiceView {
    service: String,
    /// "" when the service deploys as it runs.
    version: String,
    co_deployment_group: String,
}

impl From<&pb::PlannedService> for PlannedServiceView {
    fn from(s: &pb::PlannedService) -> Self {
        Self {
            service: s.service.clone(),
            version: s.version.clone(),
            co_deployment_group: s.co_deployment_group.clone(),
        }
    }
}

impl From<&pb::ReleasePlan> for PlanView {
    fn from(p: &pb::ReleasePlan) -> Self {
        Self {
            waves: p
                .waves
                .iter()
                .map(|w| w.services.iter().map(PlannedServiceView::from).collect())
                .collect(),
            impact: p.impact.iter().map(ImpactEntryView::from).collect(),
            skew_violations: p
                .skew_violations
                .iter()
                .map(SkewViolationView::from)
                .collect(),
        }
    }
}

impl PlannedServiceView {
    fn row(&self, wave: usize) -> Vec<String> {
        vec![
            wave.to_string(),
            self.service.clone(),
            if self.version.is_empty() {
                "(as running)".into()
            } else {
                self.version.clone()
            },
            self.co_deployment_group.clone(),
        ]
    }
}

/// `catalog impact SERVICE`.
pub async fn impact(c: &mut Client, output: Output, service: String) -> anyhow::Result<ExitCode> {
    let entries = c
        .analyze_impact(pb::AnalyzeImpactRequest {
            service: service.clone(),
        })
        .await
        .map_err(|s| failed("impact", s))?
        .into_inner()
        .entries;
    let views: Vec<ImpactEntryView> = entries.iter().map(ImpactEntryView::from).collect();
    match output {
        Output::Json => print_json(&views)?,
        Output::Table => {
            ImpactEntryView::table(&views);
            eprintln!("{} services depend on {service}", views.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `catalog groups`.
pub async fn groups(c: &mut Client, output: Output) -> anyhow::Result<ExitCode> {
    let groups = c
        .get_co_deployment_groups(pb::GetCoDeploymentGroupsRequest {})
        .await
        .map_err(|s| failed("groups", s))?
        .into_inner()
        .groups;
    let views: Vec<GroupView> = groups.iter().map(GroupView::from).collect();
    match output {
        Output::Json => print_json(&views)?,
        Output::Table => table(
            &["group", "service", "why"],
            &views.iter().flat_map(GroupView::rows).collect::<Vec<_>>(),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `catalog plan SERVICE@VERSION…`.
pub async fn plan(c: &mut Client, output: Output, items: &[String]) -> anyhow::Result<ExitCode> {
    let items = items
        .iter()
        .map(|i| match i.split_once('@') {
            Some((s, v)) if !s.is_empty() && !v.is_empty() => Ok(pb::ReleaseItem {
                service: s.into(),
                version: v.into(),
            }),
            _ => Err(anyhow::anyhow!(
                "{i:?} is not SERVICE@VERSION, e.g. checkout@2.4.0"
            )),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let plan = c
        .plan_release(pb::PlanReleaseRequest { items })
        .await
        .map_err(|s| failed("plan", s))?
        .into_inner();
    let view = PlanView::from(&plan);
    match output {
        Output::Json => print_json(&view)?,
        Output::Table => {
            let rows: Vec<Vec<String>> = view
                .waves
                .iter()
                .enumerate()
                .flat_map(|(i, w)| w.iter().map(move |s| s.row(i + 1)))
                .collect();
            table(
                &["wave", "service", "version", "co-deployment group"],
                &rows,
            );
            println!();
            ImpactEntryView::table(&view.impact);
            if !view.skew_violations.is_empty() {
                println!();
                println!("this release would break declared version ranges:");
                SkewViolationView::table(&view.skew_violations);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
