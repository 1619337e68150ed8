//! gRPC edge of the monitoring service (`flotilla.monitoring.v1.MonitoringService`).

use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::monitoring::v1::monitoring_service_server::{
    MonitoringService, MonitoringServiceServer,
};
use flotilla_runtime::ServiceContext;
use tonic::{Request, Response, Status};

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.monitoring.v1.MonitoringService";

/// The tonic service.
#[derive(Debug, Clone)]
pub struct MonitoringApi {
    ctx: ServiceContext,
}

/// Builds the tonic server for the runtime.
pub fn server(ctx: ServiceContext) -> MonitoringServiceServer<MonitoringApi> {
    MonitoringServiceServer::new(MonitoringApi { ctx: ctx.clone() })
        .max_decoding_message_size(ctx.max_message_bytes())
}

#[tonic::async_trait]
impl MonitoringService for MonitoringApi {
    #[tracing::instrument(skip_all, fields(service = super::NAME))]
    async fn get_status(
        &self,
        _request: Request<GetStatusRequest>,
    ) -> Result<Response<ServiceStatus>, Status> {
        self.ctx.status().await.map(Response::new)
    }
}
