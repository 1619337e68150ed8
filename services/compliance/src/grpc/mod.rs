//! gRPC edge of the compliance service (`flotilla.compliance.v1.ComplianceService`).
//!
//! - `proofs`: checkpoints, inclusion and consistency proofs;
//! - `replay`: the ledgered events filtered, streamed and exported as an audit bundle;
//! - `report`: the audit report of a release;
//! - `history`: point in time (any aggregate as of an instant; what an approver knew) and the
//!   controls' evidence pack;
//! - this file: the server, the error table, the chains and alerts.

mod history;
mod proofs;
pub mod replay;
mod report;
mod retention;

use std::pin::Pin;
use std::sync::Arc;

use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use flotilla_proto::compliance::v1 as pb;
use flotilla_proto::compliance::v1::compliance_service_server::{
    ComplianceService, ComplianceServiceServer,
};
use flotilla_runtime::ServiceContext;
use flotilla_runtime::kit::{Caller, ServiceError};
use tonic::{Code, Request, Response, Status};

use crate::app::Ledger;
use crate::codec::alert_pb;
use crate::domain::DomainError;

/// Full gRPC name of the service.
pub const GRPC_NAME: &str = "flotilla.compliance.v1.ComplianceService";

type Answer<T> = Result<Response<T>, Status>;

impl ServiceError for DomainError {
    fn code(&self) -> Code {
        match self {
            DomainError::Invalid { .. } => Code::InvalidArgument,
            DomainError::NotFound(_) => Code::NotFound,
            DomainError::FailedPrecondition(_) => Code::FailedPrecondition,
        }
    }
}

impl From<DomainError> for Status {
    fn from(e: DomainError) -> Self {
        flotilla_runtime::kit::refuse(e)
    }
}

/// The tonic service.
#[derive(Clone)]
pub struct ComplianceApi {
    ctx: ServiceContext,
    ledger: Arc<Ledger>,
    erasures: Arc<crate::erasure::Erasures>,
}

impl std::fmt::Debug for ComplianceApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComplianceApi").finish_non_exhaustive()
    }
}

impl ComplianceApi {
    /// A value a caller looks up by, as the ledger records it: a person with a key is
    /// recorded as their token; anything else as it is.
    async fn as_recorded(&self, value: &str) -> Result<String, Status> {
        let unavailable = |e: flotilla_core::personal::KeyringError| {
            Status::unavailable(format!(
                "the keyring is unavailable ({e}); retry shortly, or check keyring_url"
            ))
        };
        if value.is_empty()
            || self
                .ctx
                .personal
                .find(value)
                .await
                .map_err(unavailable)?
                .is_none()
        {
            return Ok(value.to_owned());
        }
        self.ctx.personal.seal(value).await.map_err(unavailable)
    }
}

/// Builds the tonic server for the runtime.
pub fn server(
    ctx: ServiceContext,
    ledger: Arc<Ledger>,
    erasures: Arc<crate::erasure::Erasures>,
) -> ComplianceServiceServer<ComplianceApi> {
    let max = ctx.max_message_bytes();
    ComplianceServiceServer::new(ComplianceApi {
        ctx,
        ledger,
        erasures,
    })
    .max_decoding_message_size(max)
}

#[tonic::async_trait]
impl ComplianceService for ComplianceApi {
    #[tracing::instrument(skip_all, fields(service = super::NAME))]
    async fn get_status(&self, _request: Request<GetStatusRequest>) -> Answer<ServiceStatus> {
        self.ctx.status().await.map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetCheckpoint"))]
    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Answer<pb::CheckpointSigned> {
        Caller::of(&request)?;
        proofs::checkpoint(&self.ledger, request.into_inner().size).map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "SignCheckpoint"))]
    async fn sign_checkpoint(
        &self,
        request: Request<pb::SignCheckpointRequest>,
    ) -> Answer<pb::CheckpointSigned> {
        let call = Caller::of(&request)?;
        let c = self.ledger.sign(call.metadata()).await?;
        Ok(Response::new(crate::codec::checkpoint_pb(&c)))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListCheckpoints"))]
    async fn list_checkpoints(
        &self,
        request: Request<pb::ListCheckpointsRequest>,
    ) -> Answer<pb::ListCheckpointsResponse> {
        Caller::of(&request)?;
        Ok(Response::new(pb::ListCheckpointsResponse {
            checkpoints: self.ledger.query(|s| {
                s.checkpoints
                    .iter()
                    .map(crate::codec::checkpoint_pb)
                    .collect()
            }),
            verifier_key: self.ledger.verifier().encode(),
        }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetInclusionProof"))]
    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> Answer<pb::InclusionProof> {
        Caller::of(&request)?;
        proofs::inclusion(&self.ledger, request.into_inner()).map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetConsistencyProof"))]
    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> Answer<pb::ConsistencyProof> {
        Caller::of(&request)?;
        proofs::consistency(&self.ledger, request.into_inner()).map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListSources"))]
    async fn list_sources(
        &self,
        request: Request<pb::ListSourcesRequest>,
    ) -> Answer<pb::ListSourcesResponse> {
        Caller::of(&request)?;
        let sources = self.ledger.query(|s| {
            s.sources
                .iter()
                .map(|(service, c)| pb::SourceChain {
                    service: service.clone(),
                    linked_to: c.linked_to,
                    head_hash: hex::encode(s.head_hash(c)),
                    waiting: c.waiting.len() as u64,
                    events: c.events,
                    withheld: c.withheld,
                    alerts: c.alerts,
                })
                .collect()
        });
        Ok(Response::new(pb::ListSourcesResponse { sources }))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ListChainAlerts"))]
    async fn list_chain_alerts(
        &self,
        request: Request<pb::ListChainAlertsRequest>,
    ) -> Answer<pb::ListChainAlertsResponse> {
        Caller::of(&request)?;
        let service = request.into_inner().service;
        let alerts = self.ledger.query(|s| {
            s.alerts
                .iter()
                .filter(|a| service.is_empty() || a.service == service)
                .map(alert_pb)
                .collect()
        });
        Ok(Response::new(pb::ListChainAlertsResponse { alerts }))
    }

    type ReplayStream =
        Pin<Box<dyn futures::Stream<Item = Result<pb::ReplayedEvent, Status>> + Send + 'static>>;

    #[tracing::instrument(skip_all, fields(rpc = "Replay"))]
    async fn replay(&self, request: Request<pb::ReplayRequest>) -> Answer<Self::ReplayStream> {
        let call = Caller::of(&request)?;
        let filter = replay::Filter::try_from(request.into_inner())?;
        Ok(Response::new(replay::stream(
            self.ledger.clone(),
            filter,
            call,
        )))
    }

    #[tracing::instrument(skip_all, fields(rpc = "ExportAuditBundle"))]
    async fn export_audit_bundle(
        &self,
        request: Request<pb::ExportAuditBundleRequest>,
    ) -> Answer<pb::AuditBundle> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let filter = replay::Filter::try_from(r.filter.unwrap_or_default())?;
        replay::bundle(&self.ledger, filter, r.tree_size, &call)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetAuditReport"))]
    async fn get_audit_report(
        &self,
        request: Request<pb::GetAuditReportRequest>,
    ) -> Answer<pb::AuditReport> {
        let call = Caller::of(&request)?;
        let subject = report::Subject::try_from(request.into_inner())?;
        report::answer(&self.ledger, subject, &call, &self.ctx.personal)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetStateAt"))]
    async fn get_state_at(&self, request: Request<pb::GetStateAtRequest>) -> Answer<pb::StateAt> {
        let call = Caller::of(&request)?;
        let mut query: crate::report::point_in_time::StateQuery =
            request.into_inner().try_into()?;
        query.key = self.as_recorded(&query.key).await?;
        history::state_at(&self.ledger, query, &call)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetApprovalEvidence"))]
    async fn get_approval_evidence(
        &self,
        request: Request<pb::GetApprovalEvidenceRequest>,
    ) -> Answer<pb::ApprovalEvidence> {
        let call = Caller::of(&request)?;
        let mut r = request.into_inner();
        r.approver = self.as_recorded(&r.approver).await?;
        history::approval(&self.ledger, r, &call)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetEvidencePack"))]
    async fn get_evidence_pack(
        &self,
        request: Request<pb::GetEvidencePackRequest>,
    ) -> Answer<pb::EvidencePack> {
        let call = Caller::of(&request)?;
        history::pack(&self.ledger, request.into_inner(), &call)
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "SetRetentionPolicy"))]
    async fn set_retention_policy(
        &self,
        request: Request<pb::SetRetentionPolicyRequest>,
    ) -> Answer<pb::RetentionPolicy> {
        let call = Caller::of(&request)?;
        self.set_policy(&call, request.into_inner())
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetRetention"))]
    async fn get_retention(
        &self,
        request: Request<pb::GetRetentionRequest>,
    ) -> Answer<pb::Retention> {
        Caller::of(&request)?;
        Ok(Response::new(self.retention()))
    }

    #[tracing::instrument(skip_all, fields(rpc = "PlaceLegalHold"))]
    async fn place_legal_hold(
        &self,
        request: Request<pb::PlaceLegalHoldRequest>,
    ) -> Answer<pb::LegalHold> {
        let call = Caller::of(&request)?;
        self.place_hold(&call, request.into_inner())
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "ReleaseLegalHold"))]
    async fn release_legal_hold(
        &self,
        request: Request<pb::ReleaseLegalHoldRequest>,
    ) -> Answer<pb::LegalHold> {
        let call = Caller::of(&request)?;
        self.release_hold(&call, request.into_inner())
            .await
            .map(Response::new)
    }

    #[tracing::instrument(skip_all, fields(rpc = "EraseSubject"))]
    async fn erase_subject(
        &self,
        request: Request<pb::EraseSubjectRequest>,
    ) -> Answer<pb::Erasure> {
        let call = Caller::of(&request)?;
        self.erase(&call, request.into_inner())
            .await
            .map(Response::new)
    }
}
