//! gRPC edge of the risk-validation service (`flotilla.risk.v1.RiskValidationService`).

use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::risk::v1::risk_validation_service_server::{
    RiskValidationService, RiskValidationServiceServer,
};
use flotilla_runtime::ServiceContext;
use tonic::{Request, Response, Status};

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.risk.v1.RiskValidationService";

/// The tonic service.
#[derive(Debug, Clone)]
pub struct RiskValidationApi {
    ctx: ServiceContext,
}

/// Builds the tonic server for the runtime.
pub fn server(ctx: ServiceContext) -> RiskValidationServiceServer<RiskValidationApi> {
    RiskValidationServiceServer::new(RiskValidationApi { ctx: ctx.clone() })
        .max_decoding_message_size(ctx.max_message_bytes())
}

#[tonic::async_trait]
impl RiskValidationService for RiskValidationApi {
    #[tracing::instrument(skip_all, fields(service = super::NAME))]
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<ServiceStatus>, Status> {
        self.ctx.status().await.map(Response::new)
    }
}
