//! gRPC edge of the orchestration service (`flotilla.orchestration.v1.OrchestrationService`).

use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::orchestration::v1::orchestration_service_server::{
    OrchestrationService, OrchestrationServiceServer,
};
use flotilla_runtime::ServiceContext;
use tonic::{Request, Response, Status};

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.orchestration.v1.OrchestrationService";

/// The tonic service.
#[derive(Debug, Clone)]
pub struct OrchestrationApi {
    ctx: ServiceContext,
}

/// Builds the tonic server for the runtime.
pub fn server(ctx: ServiceContext) -> OrchestrationServiceServer<OrchestrationApi> {
    OrchestrationServiceServer::new(OrchestrationApi { ctx: ctx.clone() })
        .max_decoding_message_size(ctx.max_message_bytes())
}

#[tonic::async_trait]
impl OrchestrationService for OrchestrationApi {
    #[tracing::instrument(skip_all, fields(service = super::NAME))]
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<ServiceStatus>, Status> {
        self.ctx.status().await.map(Response::new)
    }
}
