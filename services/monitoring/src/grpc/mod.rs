//! gRPC edge of the monitoring service (`flotilla.monitoring.v1.MonitoringService`): the caller,
//! the request as domain values (`messages`), the unit checked against the caller, the app, the
//! answer as a message. Refusals become statuses through the one table below.

use std::sync::Arc;

use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::monitoring::v1 as pb;
use flotilla_proto::monitoring::v1::monitoring_service_server::{
    MonitoringService, MonitoringServiceServer,
};
use flotilla_runtime::ServiceContext;
use flotilla_runtime::kit::{Caller, ServiceError, time};
use tonic::{Code, Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::app::MonitoringApp;
use crate::domain::*;
use crate::messages::*;

mod correlate;
mod dora;
mod feedback;
mod postmortem;

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.monitoring.v1.MonitoringService";

/// Most batches one PushSamples stream carries.
pub const MAX_BATCHES: u64 = 100_000;

/// The one table of monitoring's refusals and their codes.
impl ServiceError for DomainError {
    fn code(&self) -> Code {
        match self {
            DomainError::Invalid { .. } => Code::InvalidArgument,
            DomainError::NotFound(_) => Code::NotFound,
            DomainError::FailedPrecondition(_) => Code::FailedPrecondition,
            DomainError::AlreadyExists(_) => Code::AlreadyExists,
        }
    }
}

impl From<DomainError> for Status {
    fn from(e: DomainError) -> Self {
        flotilla_runtime::kit::refuse(e)
    }
}

#[derive(Clone)]
pub struct MonitoringApi {
    ctx: ServiceContext,
    app: Arc<MonitoringApp>,
}

impl std::fmt::Debug for MonitoringApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitoringApi").finish_non_exhaustive()
    }
}

pub fn server(
    ctx: ServiceContext,
    app: Arc<MonitoringApp>,
) -> MonitoringServiceServer<MonitoringApi> {
    let max = ctx.max_message_bytes();
    MonitoringServiceServer::new(MonitoringApi { ctx, app }).max_decoding_message_size(max)
}

fn watch_status_of(v: i32) -> Option<WatchStatus> {
    match pb::WatchStatus::try_from(v) {
        Ok(pb::WatchStatus::Unspecified) | Err(_) => None,
        Ok(_) => Some(status_of(v)),
    }
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

    #[tracing::instrument(skip_all, fields(rpc = "DefineHealthCheck"))]
    async fn define_health_check(
        &self,
        request: Request<pb::DefineHealthCheckRequest>,
    ) -> Result<Response<pb::HealthCheck>, Status> {
        let call = Caller::of(&request)?;
        let check = request
            .into_inner()
            .check
            .ok_or_else(|| invalid("check", "is missing"))?;
        if pb::Comparison::try_from(check.comparison) != Ok(pb::Comparison::Above)
            && pb::Comparison::try_from(check.comparison) != Ok(pb::Comparison::Below)
        {
            return Err(invalid("check.comparison", "is not ABOVE or BELOW").into());
        }
        let mut check = check_of(check);
        // The service's unit is the catalog's, whatever the request says.
        if let Some(unit) = self
            .app
            .query(|m| m.catalog.get(&check.service).map(|(u, _)| u.clone()))
        {
            check.business_unit = unit;
        }
        names::label("check.business_unit", &check.business_unit).map_err(name_error)?;
        call.allow_in(&check.business_unit, &Default::default())?;
        self.app
            .execute(
                DefineHealthCheck {
                    check: check.clone(),
                }
                .into(),
                call.metadata(),
            )
            .await?;
        Ok(Response::new(check_pb(&check)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "RemoveHealthCheck"))]
    async fn remove_health_check(
        &self,
        request: Request<pb::RemoveHealthCheckRequest>,
    ) -> Result<Response<pb::HealthCheck>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let absent = || {
            Status::from(DomainError::NotFound(format!(
                "health check {} of {}",
                names::shown(&r.name),
                names::shown(&r.service)
            )))
        };
        let check = self
            .app
            .query(|m| m.checks.get(&(r.service.clone(), r.name.clone())).cloned())
            .ok_or_else(absent)?;
        call.allow_or_hide(&check.business_unit, absent)?;
        self.app
            .execute(
                RemoveHealthCheck {
                    service: r.service,
                    name: r.name,
                }
                .into(),
                call.metadata(),
            )
            .await?;
        Ok(Response::new(check_pb(&check)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListHealthChecks"))]
    async fn list_health_checks(
        &self,
        request: Request<pb::ListHealthChecksRequest>,
    ) -> Result<Response<pb::ListHealthChecksResponse>, Status> {
        let call = Caller::of(&request)?;
        let service = request.into_inner().service;
        let checks = self.app.query(|m| {
            m.checks
                .values()
                .filter(|c| service.is_empty() || c.service == service)
                .filter(|c| call.sees(&c.business_unit))
                .map(check_pb)
                .collect()
        });
        Ok(Response::new(pb::ListHealthChecksResponse { checks }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "SetWatchPolicy"))]
    async fn set_watch_policy(
        &self,
        request: Request<pb::SetWatchPolicyRequest>,
    ) -> Result<Response<pb::WatchPolicyVersion>, Status> {
        let call = Caller::of(&request)?;
        let policy = request
            .into_inner()
            .policy
            .ok_or_else(|| invalid("policy", "is missing"))?;
        self.app
            .execute(
                SetWatchPolicy {
                    policy: policy_of(policy),
                    by: call.subject().to_owned(),
                    at: Timestamp::now(),
                }
                .into(),
                call.metadata(),
            )
            .await?;
        Ok(Response::new(self.policy()))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetWatchPolicy"))]
    async fn get_watch_policy(
        &self,
        request: Request<pb::GetWatchPolicyRequest>,
    ) -> Result<Response<pb::WatchPolicyVersion>, Status> {
        Caller::of(&request)?;
        Ok(Response::new(self.policy()))
    }

    #[tracing::instrument(skip_all, fields(rpc = "PushSamples"))]
    async fn push_samples(
        &self,
        request: Request<Streaming<pb::SampleBatch>>,
    ) -> Result<Response<pb::PushSamplesResponse>, Status> {
        let call = Caller::of(&request)?;
        let mut stream = request.into_inner();
        let mut answer = pb::PushSamplesResponse::default();
        while let Some(batch) = stream.message().await? {
            if answer.batches >= MAX_BATCHES {
                return Err(invalid(
                    "batches",
                    format!("at most {MAX_BATCHES} batches per stream; open another"),
                )
                .into());
            }
            let n = answer.batches;
            let taken = self.take(&call, batch).await.map_err(|s| {
                Status::new(
                    s.code(),
                    format!(
                        "batch {n}: {} ({} batches taken before it)",
                        s.message(),
                        answer.batches
                    ),
                )
            })?;
            answer.batches += 1;
            answer.samples += taken.samples;
            answer.outside_windows += taken.outside;
            answer
                .breach_ids
                .extend(taken.breach.map(|b| b.to_string()));
        }
        Ok(Response::new(answer))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetWatch"))]
    async fn get_watch(
        &self,
        request: Request<pb::GetWatchRequest>,
    ) -> Result<Response<pb::Watch>, Status> {
        let call = Caller::of(&request)?;
        let raw = request.into_inner().watch_id;
        let id: Uuid = raw
            .parse()
            .map_err(|_| invalid("watch_id", format!("{} is not a uuid", names::shown(&raw))))?;
        let absent = || Status::from(DomainError::NotFound(format!("watch {id}")));
        let w = self
            .app
            .query(|m| m.watches.get(&id).cloned())
            .ok_or_else(absent)?;
        call.allow_or_hide(&w.business_unit, absent)?;
        Ok(Response::new(watch_pb(&w)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListWatches"))]
    async fn list_watches(
        &self,
        request: Request<pb::ListWatchesRequest>,
    ) -> Result<Response<pb::ListWatchesResponse>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let status = watch_status_of(r.status);
        let watches = self.app.query(|m| {
            m.watches
                .values()
                .filter(|w| r.service.is_empty() || w.service == r.service)
                .filter(|w| r.environment.is_empty() || w.environment == r.environment)
                .filter(|w| status.is_none_or(|s| w.status == s))
                .filter(|w| call.sees(&w.business_unit))
                .map(watch_pb)
                .collect()
        });
        Ok(Response::new(pb::ListWatchesResponse { watches }))
    }

    async fn correlate_anomaly(
        &self,
        request: Request<pb::CorrelateAnomalyRequest>,
    ) -> Result<Response<pb::CorrelateAnomalyResponse>, Status> {
        self.correlate(request).await
    }

    async fn record_ticket(
        &self,
        request: Request<pb::RecordTicketRequest>,
    ) -> Result<Response<pb::Ticket>, Status> {
        self.ticket(request).await
    }

    async fn declare_adoption_target(
        &self,
        request: Request<pb::DeclareAdoptionTargetRequest>,
    ) -> Result<Response<pb::AdoptionTarget>, Status> {
        self.adoption_target(request).await
    }

    async fn record_adoption(
        &self,
        request: Request<pb::RecordAdoptionRequest>,
    ) -> Result<Response<pb::RecordAdoptionResponse>, Status> {
        self.adoption(request).await
    }

    async fn get_release_outcome(
        &self,
        request: Request<pb::GetReleaseOutcomeRequest>,
    ) -> Result<Response<pb::ReleaseOutcome>, Status> {
        self.outcome(request).await
    }

    async fn record_postmortem(
        &self,
        request: Request<pb::RecordPostmortemRequest>,
    ) -> Result<Response<pb::Postmortem>, Status> {
        self.postmortem_recorded(request).await
    }

    async fn get_postmortem(
        &self,
        request: Request<pb::GetPostmortemRequest>,
    ) -> Result<Response<pb::Postmortem>, Status> {
        self.postmortem(request).await
    }

    async fn list_postmortems(
        &self,
        request: Request<pb::ListPostmortemsRequest>,
    ) -> Result<Response<pb::ListPostmortemsResponse>, Status> {
        self.postmortems(request).await
    }

    async fn get_dora_metrics(
        &self,
        request: Request<pb::GetDoraMetricsRequest>,
    ) -> Result<Response<pb::DoraMetrics>, Status> {
        self.dora_metrics(request).await
    }
}

impl MonitoringApi {
    fn policy(&self) -> pb::WatchPolicyVersion {
        self.app.query(|m| pb::WatchPolicyVersion {
            version: m.policy_version,
            policy: Some(policy_pb(&m.policy)),
        })
    }

    /// One batch: the caller may push for the service's unit (the catalog's, or its open
    /// window's); then judged.
    async fn take(&self, call: &Caller, b: pb::SampleBatch) -> Result<Taken, Status> {
        let unit = self.app.query(|m| {
            m.catalog
                .get(&b.service)
                .map(|(u, _)| u.clone())
                .or_else(|| {
                    m.open
                        .get(&(b.service.clone(), b.environment.clone()))
                        .and_then(|id| m.watches.get(id))
                        .map(|w| w.business_unit.clone())
                })
                .unwrap_or_default()
        });
        call.allow_in(&unit, &Default::default())?;
        let mut samples = Vec::with_capacity(b.samples.len());
        for (i, s) in b.samples.into_iter().enumerate() {
            let at =
                s.at.as_ref()
                    .ok_or_else(|| invalid(&format!("samples[{i}].at"), "is missing"))
                    .and_then(|t| {
                        time::from_request(t).map_err(|e| invalid(&format!("samples[{i}].at"), e))
                    })?;
            samples.push(Sample { at, value: s.value });
        }
        let c = RecordSamples {
            service: b.service,
            environment: b.environment,
            metric: b.metric,
            samples,
            source: "push".into(),
            seed: Uuid::now_v7(),
            now: Timestamp::now(),
        };
        Ok(self.app.record_samples(c, call.metadata()).await?)
    }
}
