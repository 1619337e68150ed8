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

use flotilla_runtime::{Consumer, EventHandler, HandlerError, ServiceContext, ServiceModule};
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

    /// The one stream `dependency-catalog` holds the `catalog` aggregate.
    fn aggregate_type(&self, stream: &flotilla_core::ids::StreamId) -> Option<String> {
        (stream.as_str() == app::CATALOG_STREAM).then(|| "catalog".to_owned())
    }

    fn consumers(&self, ctx: &ServiceContext) -> Vec<Consumer> {
        vec![Consumer {
            source: "orchestration".into(),
            handler: std::sync::Arc::new(DeploymentsConsumer(app::CatalogApp::new(
                ctx.store.clone(),
            ))),
        }]
    }
}

/// Keeps footprints current from orchestration's `DeploymentFinished` events.
struct DeploymentsConsumer(app::CatalogApp);

#[async_trait::async_trait]
impl EventHandler for DeploymentsConsumer {
    async fn handle(&self, event: &flotilla_bus::CloudEvent) -> Result<(), HandlerError> {
        match self.0.on_deployment_finished(event).await {
            Ok(_) => Ok(()),
            Err(app::AppError::Store(e)) => Err(HandlerError::Retry(e.to_string())),
            Err(e) => Err(HandlerError::Reject(e.to_string())),
        }
    }
}
