//! gRPC edge of the governance service (`flotilla.governance.v1.GovernanceService`).

use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::governance::v1::governance_service_server::{
    GovernanceService, GovernanceServiceServer,
};
use flotilla_runtime::ServiceContext;
use tonic::{Request, Response, Status};

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.governance.v1.GovernanceService";

/// The tonic service.
#[derive(Debug, Clone)]
pub struct GovernanceApi {
    ctx: ServiceContext,
}

/// Builds the tonic server for the runtime.
pub fn server(ctx: ServiceContext) -> GovernanceServiceServer<GovernanceApi> {
    GovernanceServiceServer::new(GovernanceApi { ctx })
}

#[tonic::async_trait]
impl GovernanceService for GovernanceApi {
    #[tracing::instrument(skip_all, fields(service = super::NAME))]
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<ServiceStatus>, Status> {
        self.ctx.status().await.map(Response::new)
    }
}
