//! gRPC server boot: the services' routes plus health (per service) and reflection (v1 and
//! v1alpha, so grpcurl and grpcio clients can discover the API), on a listener the caller binds,
//! until a shutdown future resolves.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

/// Errors of serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection setup failed: {0}")]
    Reflection(String),
    #[error("grpc server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `routes` on `listener` until `shutdown` resolves. `service_names` are the gRPC full
/// names reported SERVING by the health service. Every call except health and reflection goes
/// through the `access` interceptor.
pub async fn serve(
    listener: TcpListener,
    mut routes: RoutesBuilder,
    service_names: &[String],
    access: flotilla_auth::AuthLayer,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    for name in service_names {
        health
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(flotilla_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(flotilla_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let addr = listener.local_addr().ok();
    tracing::info!(addr = ?addr, services = service_names.len(), "grpc server listening");
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    Server::builder()
        .trace_fn(crate::telemetry::request_span)
        .layer(access)
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, async {
            shutdown.await;
            // Tell health checkers first, then drain.
            health
                .set_service_status("", ServingStatus::NotServing)
                .await;
            for name in service_names {
                health
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
        })
        .await?;
    tracing::info!("grpc server stopped");
    Ok(())
}
