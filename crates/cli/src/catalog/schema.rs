//! `flotilla catalog schema`: check (and publish) a schema version against what consumers use.

use std::process::ExitCode;

use clap::Args;
use flotilla_proto::dependency::v1 as pb;
use serde::Serialize;

use super::Client;
use crate::client::failed;
use crate::format::print_json;
use crate::output::Output;

// The arguments of `schema` (its help is on the `Schema` variant).
#[derive(Args, Debug)]
pub struct SchemaArgs {
    service: String,
    name: String,
    version: String,
    file: std::path::PathBuf,
    /// protobuf (an encoded FileDescriptorSet) or json-schema.
    #[arg(long)]
    format: String,
    #[arg(long)]
    check_only: bool,
}

/// The compatibility verdict as `--output json` prints it.
#[derive(Serialize)]
struct CompatibilityVerdictView {
    // What was checked: in the table's heading, not in the JSON.
    #[serde(skip)]
    service: String,
    #[serde(skip)]
    name: String,
    #[serde(skip)]
    version: String,
    compatible: bool,
    published: bool,
    breaking_changes: Vec<String>,
    compared_against: Vec<SchemaBaselineView>,
}

/// A version consumers use that the schema was compared against.
#[derive(Serialize)]
struct SchemaBaselineView {
    used_by: String,
    version: String,
}

impl From<&pb::CompatibilityVerdict> for CompatibilityVerdictView {
    fn from(v: &pb::CompatibilityVerdict) -> Self {
        Self {
            service: v.service.clone(),
            name: v.name.clone(),
            version: v.version.clone(),
            compatible: v.compatible,
            published: v.published,
            breaking_changes: v.breaking_changes.clone(),
            compared_against: v
                .compared_against
                .iter()
                .map(|b| SchemaBaselineView {
                    used_by: b.used_by.clone(),
                    version: b.version.clone(),
                })
                .collect(),
        }
    }
}

impl CompatibilityVerdictView {
    fn state(&self) -> &'static str {
        if !self.compatible {
            "BREAKING, not published"
        } else if self.published {
            "compatible, published"
        } else {
            "compatible"
        }
    }
}

/// Exits 0 when compatible, 1 when breaking.
pub async fn run(c: &mut Client, output: Output, args: SchemaArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format.as_str() {
        "protobuf" => pb::SchemaFormat::ProtobufDescriptorSet,
        "json-schema" => pb::SchemaFormat::JsonSchema,
        other => anyhow::bail!("--format {other:?}: use protobuf or json-schema"),
    };
    let content = std::fs::read(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.file.display()))?;
    let v = c
        .publish_schema(pb::PublishSchemaRequest {
            service: args.service,
            name: args.name,
            version: args.version,
            format: format as i32,
            content,
            check_only: args.check_only,
        })
        .await
        .map_err(|s| failed("schema", s))?
        .into_inner();
    let view = CompatibilityVerdictView::from(&v);
    match output {
        Output::Json => print_json(&view)?,
        Output::Table => {
            println!(
                "{} {} {}: {}",
                view.service,
                view.name,
                view.version,
                view.state()
            );
            for b in &view.breaking_changes {
                println!("  - {b}");
            }
        }
    }
    Ok(if view.compatible {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
