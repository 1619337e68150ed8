//! The dependency-mapping service: service catalog, dependency graph, co-deployment groups, compatibility and impact.
//!
//! Layout: `grpc` holds the tonic service and proto conversions; the pure domain
//! (`domain`) and its handlers and projections (`app`) arrive with the service's own issue.

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
