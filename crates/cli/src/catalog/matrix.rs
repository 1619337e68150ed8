//! `flotilla catalog matrix`: the dependency matrix, as the service renders it (CSV or JSON).

use std::process::ExitCode;

use clap::Args;
use flotilla_proto::dependency::v1 as pb;

use super::Client;
use crate::client::failed;

// The arguments of `matrix` (its help is on the `Matrix` variant).
#[derive(Args, Debug)]
pub struct MatrixArgs {
    #[arg(long, default_value = "csv")]
    format: String,
    #[arg(long)]
    business_unit: Option<String>,
    #[arg(long = "service")]
    services: Vec<String>,
}

/// Prints the body the service rendered; `--output` does not apply.
pub async fn run(c: &mut Client, args: MatrixArgs) -> anyhow::Result<ExitCode> {
    let format = match args.format.as_str() {
        "csv" => pb::MatrixFormat::Csv,
        "json" => pb::MatrixFormat::Json,
        other => anyhow::bail!("--format {other:?}: use csv or json"),
    };
    let m = c
        .get_dependency_matrix(pb::GetDependencyMatrixRequest {
            format: format as i32,
            services: args.services,
            business_unit: args.business_unit.unwrap_or_default(),
        })
        .await
        .map_err(|s| failed("matrix", s))?
        .into_inner();
    print!("{}", m.body);
    if format == pb::MatrixFormat::Json {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}
