//! gRPC server boot: the services' routes plus health (per service) and reflection (v1 and
//! v1alpha, so grpcurl and grpcio clients can discover the API), on a listener the caller binds,
//! until a shutdown future resolves.
//!
//! Health and reflection tell only of the services this process serves. A call to a Flotilla
//! service that is not served here is `UNIMPLEMENTED` naming it and what is served instead; a
//! call to a service whose store's hash chain is broken is `DATA_LOSS` naming the position (its
//! health says NOT_SERVING; `GetStatus` still answers, with the break).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::service::RoutesBuilder;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::integrity::ChainGuard;

/// Errors of serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection setup failed: {0}")]
    Reflection(String),
    #[error("grpc server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// A gRPC service this process serves, and the chain check of the store behind it.
#[derive(Clone, Debug)]
pub struct Served {
    /// Full gRPC name, e.g. `flotilla.<area>.v1.<Name>Service`.
    pub name: String,
    pub chain: Arc<ChainGuard>,
    /// Where the state behind it stands (read-your-writes).
    pub position: crate::positions::StatePosition,
}

/// The gRPC services of the whole platform (every service the contracts declare), for telling
/// a caller where it is not.
static PLATFORM: std::sync::LazyLock<Vec<String>> =
    std::sync::LazyLock::new(flotilla_proto::platform_services);

/// Serves `routes` on `listener` until `shutdown` resolves. Every call except health and
/// reflection goes through the `access` interceptor, and before it through the check that the
/// service is served here and its store intact.
pub async fn serve(
    listener: crate::tls::Listener,
    mut routes: RoutesBuilder,
    served: &[Served],
    access: flotilla_auth::AuthLayer,
    personal: Arc<flotilla_core::personal::PersonalData>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let (health, health_service) = tonic_health::server::health_reporter();
    let mut watchers = Vec::new();
    fn serving(c: &ChainGuard) -> bool {
        c.broken().is_none() && c.is_caught_up()
    }
    fn overall(all: &[Arc<ChainGuard>]) -> ServingStatus {
        if all.iter().all(|c| serving(c)) {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        }
    }
    let guards: Vec<Arc<ChainGuard>> = served.iter().map(|s| s.chain.clone()).collect();
    health.set_service_status("", overall(&guards)).await;
    for s in served {
        let status = if serving(&s.chain) {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        health.set_service_status(&s.name, status).await;
        // Health follows the chain check: NOT_SERVING until it caught up and from the first
        // break, SERVING again once an operator accepted the break. The overall entry ("") is
        // SERVING only while every service is.
        let mut breaks = s.chain.watch();
        let mut caught_up = s.chain.watch_caught_up();
        let reporter = health.clone();
        let name = s.name.clone();
        let chain = s.chain.clone();
        let all = guards.clone();
        watchers.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = breaks.changed() => if r.is_err() { return },
                    r = caught_up.changed() => if r.is_err() { return },
                }
                let status = if serving(&chain) {
                    ServingStatus::Serving
                } else {
                    ServingStatus::NotServing
                };
                reporter.set_service_status(&name, status).await;
                reporter.set_service_status("", overall(&all)).await;
            }
        }));
    }
    let names: Vec<String> = served.iter().map(|s| s.name.clone()).collect();
    let reflection = || {
        let mut b = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(flotilla_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for n in &names {
            b = b.with_service_name(n.clone());
        }
        b
    };
    let reflection_v1 = reflection()
        .build_v1()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    let reflection_v1alpha = reflection()
        .build_v1alpha()
        .map_err(|e| ServeError::Reflection(e.to_string()))?;
    routes
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let addr = listener.tcp.local_addr().ok();
    tracing::info!(
        addr = ?addr,
        services = served.len(),
        tls = listener.tls.is_some(),
        client_certificates = listener.tls.as_ref().map(|t| t.client_auth().to_string()),
        "grpc server listening"
    );
    let serving = ServingLayer {
        served: Arc::new(
            served
                .iter()
                .map(|s| (s.name.clone(), s.chain.clone()))
                .collect(),
        ),
    };
    // Inside the access check: only a caller let in may hold a call waiting for a position.
    let read_your_writes = crate::positions::ReadYourWritesLayer::new(
        served
            .iter()
            .map(|s| (s.name.clone(), s.position.clone()))
            .collect(),
    );
    let mut server = Server::builder();
    if listener.tls.is_some() {
        server = server
            .max_connection_age(crate::tls::CONNECTION_AGE)
            .max_connection_age_grace(crate::tls::CONNECTION_GRACE);
    }
    let metrics_for_drain = metrics.clone();
    let router = server
        .trace_fn(crate::telemetry::request_span)
        .layer(tower::util::option_layer(
            metrics.clone().map(crate::metrics::MetricsLayer::new),
        ))
        .layer(crate::personal::RevealLayer::new(personal))
        .layer(serving)
        .layer(access)
        .layer(read_your_writes)
        .add_routes(routes.routes());
    let draining = async {
        shutdown.await;
        if let Some(m) = &metrics_for_drain {
            m.drain();
        }
        // Tell health checkers first, then drain.
        health
            .set_service_status("", ServingStatus::NotServing)
            .await;
        for name in &names {
            health
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
    };
    let result = match listener.tls {
        None => {
            let incoming = TcpIncoming::from(listener.tcp).with_nodelay(Some(true));
            router
                .serve_with_incoming_shutdown(incoming, draining)
                .await
        }
        Some(tls) => {
            router
                .serve_with_incoming_shutdown(tls.incoming(listener.tcp), draining)
                .await
        }
    };
    for w in watchers {
        w.abort();
    }
    result?;
    tracing::info!("grpc server stopped");
    Ok(())
}

/// Refuses calls to services not served here and to services whose store is broken.
#[derive(Clone, Debug)]
pub struct ServingLayer {
    served: Arc<HashMap<String, Arc<ChainGuard>>>,
}

impl<S> tower::Layer<S> for ServingLayer {
    type Service = ServingService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ServingService {
            inner,
            served: self.served.clone(),
        }
    }
}

/// The layered service.
#[derive(Clone, Debug)]
pub struct ServingService<S> {
    inner: S,
    served: Arc<HashMap<String, Arc<ChainGuard>>>,
}

impl ServingLayer {
    /// The refusal for a path, if it is refused.
    fn refusal(served: &HashMap<String, Arc<ChainGuard>>, path: &str) -> Option<tonic::Status> {
        let mut parts = path.trim_start_matches('/').splitn(2, '/');
        let service = parts.next().unwrap_or_default();
        let method = parts.next().unwrap_or_default();
        if service.starts_with("grpc.health.") || service.starts_with("grpc.reflection.") {
            return None;
        }
        let Some(chain) = served.get(service) else {
            let mut here: Vec<&str> = served.keys().map(String::as_str).collect();
            here.sort_unstable();
            let known = PLATFORM.iter().any(|p| p == service);
            let shown = flotilla_core::names::shown(service);
            let message = if known {
                format!(
                    "{shown} is not served by this process (it serves {}); call the node that runs it",
                    here.join(", ")
                )
            } else {
                format!(
                    "{shown} is not a Flotilla service; this process serves {}",
                    here.join(", ")
                )
            };
            return Some(tonic::Status::unimplemented(message));
        };
        if method == "GetStatus" {
            return None;
        }
        if chain.broken().is_none() && !chain.is_caught_up() {
            return Some(tonic::Status::unavailable(format!(
                "{service} is still checking its store's hash chain (checked to position {}); try again shortly",
                chain.verified_to()
            )));
        }
        chain.broken().map(|b| {
            tonic::Status::data_loss(format!(
                "{service} does not serve: its store's hash chain is broken at position {}: {}. Repair the store, or start the service with accept_chain_breaks = [\"{}@{}\"] to serve it as it is (the acceptance is recorded)",
                b.position,
                b.reason,
                chain.service(),
                b.position
            ))
        })
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for ServingService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let refusal = ServingLayer::refusal(&self.served, req.uri().path());
        Box::pin(async move {
            if let Some(status) = refusal {
                tracing::info!(path = %flotilla_core::names::shown(req.uri().path()), code = ?status.code(), error = %status.message(), "call refused before access checks");
                return Ok(status.into_http());
            }
            inner.call(req).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(chain: &Arc<ChainGuard>) -> HashMap<String, Arc<ChainGuard>> {
        [("flotilla.ledger.v1.LedgerService".to_owned(), chain.clone())]
            .into_iter()
            .collect()
    }

    #[test]
    fn calls_wait_for_the_check_and_stop_at_a_break() {
        let chain = ChainGuard::new("ledger");
        let map = served(&chain);
        let call = "/flotilla.ledger.v1.LedgerService/PostEntry";
        let e = ServingLayer::refusal(&map, call).expect("still checking");
        assert_eq!(e.code(), tonic::Code::Unavailable);
        assert!(e.message().contains("still checking"), "{e:?}");
        assert!(
            ServingLayer::refusal(&map, "/flotilla.ledger.v1.LedgerService/GetStatus").is_none(),
            "status always answers"
        );
        chain.set_caught_up();
        assert!(ServingLayer::refusal(&map, call).is_none());
        chain.read_failed(&flotilla_core::StoreError::Corrupt {
            position: 9,
            reason: "bad row".into(),
        });
        let e = ServingLayer::refusal(&map, call).expect("broken");
        assert_eq!(e.code(), tonic::Code::DataLoss);
        assert!(e.message().contains("position 9"), "{e:?}");
        let e = ServingLayer::refusal(&map, "/flotilla.risk.v1.RiskValidationService/Assess")
            .expect("not served");
        assert_eq!(e.code(), tonic::Code::Unimplemented);
        assert!(e.message().contains("not served by this process"), "{e:?}");
        assert!(ServingLayer::refusal(&map, "/grpc.health.v1.Health/Check").is_none());
    }
}
