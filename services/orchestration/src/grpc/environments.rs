//! The environment family of the API: shared infrastructure, environments and their paths,
//! reported configuration and parity, data refreshes, test windows and validations. The trait
//! methods in `mod.rs` call these.

use flotilla_auth::AccessContext;
use flotilla_proto::orchestration::v1 as pb;
use flotilla_runtime::kit::Caller;
use tonic::{Request, Response};

use super::scope::{self, PLATFORM};
use super::{Answer, OrchestrationApi, WINDOW, convert, now};
use crate::domain::*;
use crate::messages::*;

impl OrchestrationApi {
    pub(super) async fn define_shared_infrastructure_in(
        &self,
        request: Request<pb::DefineSharedInfrastructureRequest>,
    ) -> Answer<pb::SharedInfrastructure> {
        let call = Caller::of(&request)?;
        call.allow_in(PLATFORM, &AccessContext::default())?;
        let i = request
            .into_inner()
            .infrastructure
            .ok_or_else(|| invalid("infrastructure", "is required"))?;
        let infrastructure = SharedInfrastructure {
            name: i.name,
            capacity: i.capacity,
        };
        let answer = pb::SharedInfrastructure {
            name: infrastructure.name.clone(),
            capacity: infrastructure.capacity,
        };
        self.app
            .execute(
                DefineSharedInfrastructure { infrastructure },
                call.metadata(),
            )
            .await?;
        Ok(Response::new(answer))
    }

    pub(super) async fn define_environment_in(
        &self,
        request: Request<pb::DefineEnvironmentRequest>,
    ) -> Answer<pb::Environment> {
        let call = Caller::of(&request)?;
        let spec = convert::spec(request.into_inner().spec)?;
        call.allow_in(&spec.business_unit, &AccessContext::default())?;
        let (unit, name) = (spec.business_unit.clone(), spec.name.clone());
        self.app
            .execute(DefineEnvironment { spec, at: now() }, call.metadata())
            .await?;
        self.environment_view(&unit, &name)
    }

    pub(super) async fn set_promotion_path_in(
        &self,
        request: Request<pb::SetPromotionPathRequest>,
    ) -> Answer<pb::PromotionPath> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        call.allow_in(&r.business_unit, &AccessContext::default())?;
        let command = SetPromotionPath {
            business_unit: r.business_unit.clone(),
            environments: r.environments,
            at: now(),
        };
        self.app.execute(command, call.metadata()).await?;
        Ok(Response::new(self.app.query(|o| pb::PromotionPath {
            environments: o.paths.get(&r.business_unit).cloned().unwrap_or_default(),
            business_unit: r.business_unit,
        })))
    }

    pub(super) async fn list_environments_in(
        &self,
        request: Request<pb::ListEnvironmentsRequest>,
    ) -> Answer<pb::ListEnvironmentsResponse> {
        let call = Caller::of(&request)?;
        let unit = request.into_inner().business_unit;
        scope::unit_filter(&call, &unit)?;
        let shown = |u: &str| (unit.is_empty() || u == unit) && call.sees(u);
        Ok(Response::new(self.app.query(|o| {
            pb::ListEnvironmentsResponse {
                environments: o
                    .environments
                    .values()
                    .filter(|e| shown(&e.business_unit))
                    .map(environment_pb)
                    .collect(),
                paths: o
                    .paths
                    .iter()
                    .filter(|(u, _)| shown(u))
                    .map(|(u, envs)| pb::PromotionPath {
                        business_unit: u.clone(),
                        environments: envs.clone(),
                    })
                    .collect(),
                infrastructure: o
                    .infrastructure
                    .values()
                    .map(|i| pb::SharedInfrastructure {
                        name: i.name.clone(),
                        capacity: i.capacity,
                    })
                    .collect(),
            }
        })))
    }

    pub(super) async fn remove_environment_in(
        &self,
        request: Request<pb::RemoveEnvironmentRequest>,
    ) -> Answer<pb::RemoveEnvironmentResponse> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        self.visible_environment(&call, &r.business_unit, &r.environment)?;
        call.allow_in(&r.business_unit, &AccessContext::default())?;
        let command = RemoveEnvironment {
            business_unit: r.business_unit,
            name: r.environment,
            at: now(),
        };
        self.app.execute(command, call.metadata()).await?;
        Ok(Response::new(pb::RemoveEnvironmentResponse {}))
    }

    pub(super) async fn report_configuration_in(
        &self,
        request: Request<pb::ReportConfigurationRequest>,
    ) -> Answer<pb::Environment> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        call.allow_in(&r.business_unit, &AccessContext::default())?;
        let command = ReportConfiguration {
            actual: convert::actual(r.actual)?,
            business_unit: r.business_unit.clone(),
            environment: r.environment.clone(),
            at: now(),
        };
        self.app.execute(command, call.metadata()).await?;
        self.environment_view(&r.business_unit, &r.environment)
    }

    pub(super) async fn get_parity_in(
        &self,
        request: Request<pb::GetParityRequest>,
    ) -> Answer<pb::ParityReport> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        let left = self.visible_environment(&call, &r.business_unit, &r.environment)?;
        let right =
            self.visible_environment(&call, &r.other_business_unit, &r.other_environment)?;
        Ok(Response::new(pb::ParityReport {
            differences: diff(&left.actual, &right.actual)
                .iter()
                .map(|(k, l, r)| difference_pb(k, l, r))
                .collect(),
        }))
    }

    pub(super) async fn record_data_refresh_in(
        &self,
        request: Request<pb::RecordDataRefreshRequest>,
    ) -> Answer<pb::Environment> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        call.allow_in(&r.business_unit, &AccessContext::default())?;
        let command = RecordDataRefresh {
            refresh: DataRefresh {
                masked: r.masked,
                copied_at: convert::not_after("copied_at", r.copied_at.as_ref(), now())?,
                volume_percent: r.volume_percent,
                recorded_by: call.subject().to_owned(),
            },
            business_unit: r.business_unit.clone(),
            environment: r.environment.clone(),
        };
        self.app.execute(command, call.metadata()).await?;
        self.environment_view(&r.business_unit, &r.environment)
    }

    pub(super) async fn book_test_window_in(
        &self,
        request: Request<pb::BookTestWindowRequest>,
    ) -> Answer<pb::TestWindow> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        call.allow_in(&r.business_unit, &AccessContext::default())?;
        let window = TestWindow {
            id: call.new_id(WINDOW),
            release: r.release,
            team: r.team,
            start: convert::time("start", r.start.as_ref())?,
            end: convert::time("end", r.end.as_ref())?,
            signed_off: None,
        };
        let id = window.id;
        let command = BookTestWindow {
            business_unit: r.business_unit.clone(),
            environment: r.environment.clone(),
            window,
            at: now(),
        };
        self.app.execute(command, call.metadata()).await?;
        self.window_view(&r.business_unit, &r.environment, id)
    }

    pub(super) async fn sign_off_test_window_in(
        &self,
        request: Request<pb::SignOffTestWindowRequest>,
    ) -> Answer<pb::TestWindow> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        call.allow_in(&r.business_unit, &AccessContext::default())?;
        let window = convert::uuid("window_id", &r.window_id)?;
        let command = SignOffTestWindow {
            business_unit: r.business_unit.clone(),
            environment: r.environment.clone(),
            window,
            sign_off: SignOff {
                by: call.subject().to_owned(),
                at: now(),
                passed: r.passed,
                comment: r.comment,
            },
        };
        self.app.execute(command, call.metadata()).await?;
        self.window_view(&r.business_unit, &r.environment, window)
    }

    pub(super) async fn record_validation_in(
        &self,
        request: Request<pb::RecordValidationRequest>,
    ) -> Answer<pb::Environment> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        call.allow_in(&r.business_unit, &AccessContext::default())?;
        let command = RecordValidation {
            business_unit: r.business_unit.clone(),
            environment: r.environment.clone(),
            release: r.release,
            check: r.check,
            passed: r.passed,
            at: now(),
        };
        self.app.execute(command, call.metadata()).await?;
        self.environment_view(&r.business_unit, &r.environment)
    }
}
