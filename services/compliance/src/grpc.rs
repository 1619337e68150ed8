//! gRPC edge of the compliance service (`flotilla.compliance.v1.ComplianceService`).

use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::compliance::v1::compliance_service_server::{
    ComplianceService, ComplianceServiceServer,
};
use flotilla_runtime::ServiceContext;
use tonic::{Request, Response, Status};

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.compliance.v1.ComplianceService";

/// The tonic service.
#[derive(Debug, Clone)]
pub struct ComplianceApi {
    ctx: ServiceContext,
}

/// Builds the tonic server for the runtime.
pub fn server(ctx: ServiceContext) -> ComplianceServiceServer<ComplianceApi> {
    ComplianceServiceServer::new(ComplianceApi { ctx: ctx.clone() })
        .max_decoding_message_size(ctx.max_message_bytes())
}

#[tonic::async_trait]
impl ComplianceService for ComplianceApi {
    #[tracing::instrument(skip_all, fields(service = super::NAME))]
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<ServiceStatus>, Status> {
        self.ctx.status().await.map(Response::new)
    }
}
