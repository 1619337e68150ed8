//! gRPC edge of the dependency-mapping service (`flotilla.dependency.v1.DependencyMappingService`).

use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::dependency::v1::dependency_mapping_service_server::{
    DependencyMappingService, DependencyMappingServiceServer,
};
use flotilla_runtime::ServiceContext;
use tonic::{Request, Response, Status};

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.dependency.v1.DependencyMappingService";

/// The tonic service.
#[derive(Debug, Clone)]
pub struct DependencyMappingApi {
    ctx: ServiceContext,
}

/// Builds the tonic server for the runtime.
pub fn server(ctx: ServiceContext) -> DependencyMappingServiceServer<DependencyMappingApi> {
    DependencyMappingServiceServer::new(DependencyMappingApi { ctx })
}

#[tonic::async_trait]
impl DependencyMappingService for DependencyMappingApi {
    #[tracing::instrument(skip_all, fields(service = super::NAME))]
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<ServiceStatus>, Status> {
        self.ctx.status().await.map(Response::new)
    }
}
