//! The dependency-mapping service: service catalog, dependency graph, co-deployment groups, compatibility and impact.
//!
//! Layout: `domain` is pure (the catalog aggregate and graph queries), `app` keeps the catalog
//! current from its stream and runs commands, `convert` maps the protobuf contract to domain
//! values, `grpc` is the tonic edge. Still to come (issue 3): observed edges, Backstage import,
//! schema compatibility, version skew, the matrix, footprints and the CLI.

pub mod app;
pub mod backstage;
pub mod compat;
pub mod convert;
pub mod domain;
pub mod grpc;

use flotilla_runtime::{ServiceContext, ServiceModule};
use tonic::service::RoutesBuilder;

/// Service name as used in subjects, topics and store schemas.
pub const NAME: &str = "dependency-mapping";

/// The dependency-mapping service's entry point for the runtime.
#[derive(Debug, Default, Clone, Copy)]
pub struct DependencyMappingModule;

impl ServiceModule for DependencyMappingModule {
    fn name(&self) -> &'static str {
        NAME
    }

    fn grpc_services(&self) -> Vec<String> {
        vec![grpc::GRPC_NAME.to_owned()]
    }

    fn register(&self, ctx: ServiceContext, routes: &mut RoutesBuilder) {
        routes.add_service(grpc::server(ctx));
    }
}
