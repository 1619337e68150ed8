//! The governance service: policies, approval requests with segregation of duties, CAB
//! decisions, freeze windows and embargoes, deviations, rollback decisions, the gate, and the
//! platform's access policy.
//!
//! Layout: `domain` is pure (decide/evolve/gate); `app` keeps the state from the store and runs
//! commands and the deadline scheduler; `convert` maps proto and domain types; `grpc` is the
//! tonic edge.

pub mod app;
pub mod codec;
pub mod convert;
pub mod domain;
pub mod grpc;
pub mod testing;

use flotilla_runtime::{Consumer, EventHandler, HandlerError, ServiceContext, ServiceModule};
use tonic::service::RoutesBuilder;

/// Service name as used in subjects, topics and store schemas.
pub const NAME: &str = "governance";

/// The governance service's entry point for the runtime.
#[derive(Debug, Default, Clone, Copy)]
pub struct GovernanceModule;

impl ServiceModule for GovernanceModule {
    fn name(&self) -> &'static str {
        NAME
    }

    fn grpc_services(&self) -> Vec<String> {
        vec![grpc::GRPC_NAME.to_owned()]
    }

    fn register(&self, ctx: ServiceContext, routes: &mut RoutesBuilder) {
        routes.add_service(grpc::server(ctx));
    }

    /// The singleton streams `governance-policy` and `governance-access-policy` hold the
    /// `policy` and `access-policy` aggregates.
    fn aggregate_type(&self, stream: &flotilla_core::ids::StreamId) -> Option<String> {
        match stream.as_str() {
            "governance-policy" => Some("policy".into()),
            "governance-access-policy" => Some("access-policy".into()),
            _ => None,
        }
    }

    /// Risk assessments open approval requests; threshold breaches open rollback decisions;
    /// the catalog's services give approval requests their unit, tier and personal-data facts.
    fn consumers(&self, ctx: &ServiceContext) -> Vec<Consumer> {
        let app = std::sync::Arc::new(app::GovernanceApp::new(
            ctx.store.clone(),
            ctx.authorizer.clone(),
        ));
        ["risk-validation", "monitoring", "dependency-mapping"]
            .into_iter()
            .map(|source| Consumer {
                source: source.into(),
                handler: std::sync::Arc::new(EventsConsumer {
                    app: app.clone(),
                    waiting: std::sync::Mutex::default(),
                }),
            })
            .collect()
    }
}

/// Applies the catalog's, risk-validation's and monitoring's events.
struct EventsConsumer {
    app: std::sync::Arc<app::GovernanceApp>,
    /// Events naming what is not known yet, by id, with how often they were tried.
    waiting: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

/// How often an event naming something not known yet is tried before it is refused (with the
/// consumer's growing pause between tries, some minutes).
const TRIES_WHILE_UNKNOWN: u32 = 30;

#[async_trait::async_trait]
impl EventHandler for EventsConsumer {
    async fn handle(&self, event: &flotilla_bus::CloudEvent) -> Result<(), HandlerError> {
        let result = self.app.on_event(event).await;
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                waiting.remove(&event.id);
                Ok(())
            }
            Err(app::AppError::Store(e)) => Err(HandlerError::Retry(e.to_string())),
            // An assessment may come before the catalog's word on its service: try again later.
            Err(app::AppError::Domain(domain::DomainError::NotYetKnown(m))) => {
                let tries = waiting.entry(event.id.clone()).or_insert(0);
                *tries += 1;
                if *tries >= TRIES_WHILE_UNKNOWN {
                    waiting.remove(&event.id);
                    return Err(HandlerError::Reject(format!(
                        "{m} (gave up after {TRIES_WHILE_UNKNOWN} tries)"
                    )));
                }
                Err(HandlerError::Retry(m))
            }
            Err(e) => Err(HandlerError::Reject(e.to_string())),
        }
    }
}
