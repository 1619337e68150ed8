//! `flotilla catalog …`: the dependency-mapping service's client, one file per noun. Tables for
//! people, `--output json` for machines; both come from the noun's view types.

mod drift;
mod footprint;
mod impact;
mod matrix;
mod schema;
mod services;

use std::process::ExitCode;

use clap::Subcommand;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;

use crate::client::{Authed, Target};
use crate::output::Output;

/// A dependency-mapping client whose calls carry the caller's token.
type Client = DependencyMappingServiceClient<Authed>;

#[derive(Subcommand, Debug)]
pub enum CatalogCommand {
    /// Register or update every Component and Resource of a Backstage catalog-info.yaml, and
    /// declare their dependencies.
    Import { file: std::path::PathBuf },
    /// List catalog services.
    List {
        #[arg(long)]
        business_unit: Option<String>,
    },
    /// Every service that depends on SERVICE, ranked by risk (for emergency patches).
    Impact { service: String },
    /// Groups of services that must be deployed together, with reasons.
    Groups,
    /// Waves in which to deploy SERVICE@VERSION items, and what the release reaches.
    Plan {
        #[arg(required = true)]
        items: Vec<String>,
    },
    /// The dependency matrix (services x services) as CSV or JSON.
    Matrix(matrix::MatrixArgs),
    /// Declared dependencies never observed, and observed calls never declared.
    Drift,
    /// Environments where deployed versions violate a consumer's declared range.
    Skew {
        #[arg(long)]
        environment: Option<String>,
    },
    /// Which service@version runs in ENVIRONMENT: now, as of a time, or a named tag.
    Footprint(footprint::FootprintArgs),
    /// Check (and unless --check-only, publish) a schema version against what consumers use.
    Schema(schema::SchemaArgs),
}

pub async fn run(
    target: &Target,
    output: Output,
    command: CatalogCommand,
) -> anyhow::Result<ExitCode> {
    let (channel, bearer) = target.connect("dependency-mapping").await?;
    let mut c: Client = DependencyMappingServiceClient::with_interceptor(channel, bearer);
    match command {
        CatalogCommand::Import { file } => services::import(&mut c, output, &file).await,
        CatalogCommand::List { business_unit } => {
            services::list(&mut c, output, business_unit).await
        }
        CatalogCommand::Impact { service } => impact::impact(&mut c, output, service).await,
        CatalogCommand::Groups => impact::groups(&mut c, output).await,
        CatalogCommand::Plan { items } => impact::plan(&mut c, output, &items).await,
        CatalogCommand::Matrix(args) => matrix::run(&mut c, args).await,
        CatalogCommand::Drift => drift::run(&mut c, output).await,
        CatalogCommand::Skew { environment } => footprint::skew(&mut c, output, environment).await,
        CatalogCommand::Footprint(args) => footprint::footprint(&mut c, output, args).await,
        CatalogCommand::Schema(args) => schema::run(&mut c, output, args).await,
    }
}
