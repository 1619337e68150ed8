//! The demo's story, step by step, over the services' gRPC APIs.

use std::time::{Duration, Instant};

use flotilla_auth::Bearer;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_proto::orchestration::v1 as pb;
use flotilla_proto::orchestration::v1::orchestration_service_client::OrchestrationServiceClient;
use flotilla_proto::risk::v1::risk_validation_service_client::RiskValidationServiceClient;
use serde::Serialize;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::people::People;
use crate::client::failed;
use crate::orchestration::view::{DeploymentView, StepView, progress_line};
use crate::output::Output;

type Authed = InterceptedService<Channel, Bearer>;
type Orch = OrchestrationServiceClient<Authed>;
type Gov = GovernanceServiceClient<Authed>;
pub(super) type Risk = RiskValidationServiceClient<Authed>;

pub struct Addresses {
    pub governance: String,
    pub catalog: String,
    pub orchestration: String,
    pub risk: String,
    pub monitoring: String,
    pub compliance: String,
}

/// One line of the closing table.
#[derive(Serialize)]
pub(super) struct Outcome {
    pub(super) release: String,
    pub(super) unit: String,
    pub(super) environment: String,
    pub(super) what_happened: String,
}

pub struct Story {
    pub(super) addrs: Addresses,
    /// Where the audit report is written.
    pub(super) report_dir: std::path::PathBuf,
    pub(super) people: People,
    pub(super) output: Output,
    pub(super) step: usize,
    pub(super) outcomes: Vec<Outcome>,
    channels: std::collections::HashMap<String, Channel>,
    /// The steps of each deployment as last told.
    told: std::collections::HashMap<String, Vec<StepView>>,
}

impl Story {
    pub async fn new(
        addrs: Addresses,
        people: People,
        output: Output,
        report_dir: std::path::PathBuf,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            addrs,
            report_dir,
            people,
            output,
            step: 0,
            outcomes: Vec::new(),
            channels: Default::default(),
            told: Default::default(),
        })
    }

    pub(super) async fn channel(&mut self, addr: &str) -> anyhow::Result<Channel> {
        if let Some(c) = self.channels.get(addr) {
            return Ok(c.clone());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let c = loop {
            match Channel::from_shared(addr.to_owned())?.connect().await {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => {
                    anyhow::bail!(
                        "cannot reach {addr} ({e}); start the services with `flotilla up` or pass their addresses"
                    )
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        self.channels.insert(addr.to_owned(), c.clone());
        Ok(c)
    }

    pub(super) async fn authed(
        &mut self,
        addr: &str,
        who: &str,
        roles: &[&str],
        unit: &str,
    ) -> anyhow::Result<Authed> {
        let token = self.people.token(who, roles, unit)?;
        Ok(InterceptedService::new(
            self.channel(addr).await?,
            Bearer::try_new(&token)?,
        ))
    }

    pub(super) async fn orch(
        &mut self,
        who: &str,
        roles: &[&str],
        unit: &str,
    ) -> anyhow::Result<Orch> {
        let addr = self.addrs.orchestration.clone();
        Ok(OrchestrationServiceClient::new(
            self.authed(&addr, who, roles, unit).await?,
        ))
    }

    pub(super) async fn risk(
        &mut self,
        who: &str,
        roles: &[&str],
        unit: &str,
    ) -> anyhow::Result<Risk> {
        let addr = self.addrs.risk.clone();
        Ok(RiskValidationServiceClient::new(
            self.authed(&addr, who, roles, unit).await?,
        ))
    }

    pub(super) async fn gov(
        &mut self,
        who: &str,
        roles: &[&str],
        unit: &str,
    ) -> anyhow::Result<Gov> {
        let addr = self.addrs.governance.clone();
        Ok(GovernanceServiceClient::new(
            self.authed(&addr, who, roles, unit).await?,
        ))
    }

    /// A line for people (stderr keeps stdout for the JSON answer).
    pub(super) fn say(&mut self, what: impl AsRef<str>) {
        self.step += 1;
        let line = format!("[{:>2}] {}", self.step, what.as_ref());
        match self.output {
            Output::Table => println!("{line}"),
            Output::Json => eprintln!("{line}"),
        }
    }

    pub(super) fn detail(&self, what: impl AsRef<str>) {
        match self.output {
            Output::Table => println!("       {}", what.as_ref()),
            Output::Json => eprintln!("       {}", what.as_ref()),
        }
    }

    pub(super) fn outcome(
        &mut self,
        release: &str,
        unit: &str,
        env: &str,
        what: impl Into<String>,
    ) {
        self.outcomes.push(Outcome {
            release: release.into(),
            unit: unit.into(),
            environment: env.into(),
            what_happened: what.into(),
        });
    }

    /// Retries while a service catches up with what another published (the catalog reaching
    /// governance) or is still starting.
    pub(super) async fn eventually<T, F, Fut>(&self, what: &str, mut call: F) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match call().await {
                Ok(r) => return Ok(r.into_inner()),
                Err(s)
                    if Instant::now() < deadline
                        && (s.code() == tonic::Code::Unavailable
                            || s.message().contains("not in the service catalog")) =>
                {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(s) => return Err(failed(what, s)),
            }
        }
    }

    /// Follows a deployment, a line per step that changed, until `done` holds.
    pub(super) async fn follow(
        &mut self,
        unit: &str,
        id: &str,
        done: impl Fn(&pb::Deployment) -> bool,
    ) -> anyhow::Result<pb::Deployment> {
        let mut orch = self.orch("rita", &["release-manager"], unit).await?;
        let mut seen: Vec<StepView> = self.told.remove(id).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let d = orch
                .get_deployment(pb::GetDeploymentRequest {
                    deployment_id: id.into(),
                })
                .await
                .map_err(|s| failed("get deployment", s))?
                .into_inner();
            let view = DeploymentView::from(&d);
            for s in &view.steps {
                if s.state != "pending"
                    && seen
                        .iter()
                        .find(|x| x.index == s.index)
                        .is_none_or(|b| b != s)
                {
                    self.detail(progress_line(&view, s));
                }
            }
            seen = view.steps.clone();
            if done(&d) {
                self.told.insert(id.to_owned(), seen);
                return Ok(d);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "deployment {id} did not get there in 2 minutes: {}",
                view.status
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Promotes; a refusal is told with its reasons and answered None.
    pub(super) async fn promote(
        &mut self,
        unit: &str,
        release: &str,
        env: &str,
    ) -> anyhow::Result<Option<pb::Deployment>> {
        let mut orch = self.orch("rita", &["release-manager"], unit).await?;
        match orch
            .promote_release(pb::PromoteReleaseRequest {
                release: release.into(),
                environment: env.into(),
            })
            .await
        {
            Ok(d) => Ok(Some(d.into_inner())),
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {
                let reasons = s
                    .message()
                    .split_once(": ")
                    .map_or(s.message(), |(_, r)| r)
                    .to_owned();
                for r in reasons.split("; ") {
                    self.detail(format!("- {r}"));
                }
                Ok(None)
            }
            Err(s) => Err(failed("promote", s)),
        }
    }

    pub(super) async fn record(
        &mut self,
        unit: &str,
        deployment: &str,
        name: &str,
        verdict: pb::Verdict,
        detail: &str,
    ) -> anyhow::Result<()> {
        let mut orch = self.orch("sre", &["service-owner"], unit).await?;
        orch.record_analysis(pb::RecordAnalysisRequest {
            deployment_id: deployment.into(),
            analysis: name.into(),
            verdict: verdict as i32,
            detail: detail.into(),
        })
        .await
        .map_err(|s| failed("record analysis", s))?;
        Ok(())
    }
}

pub(super) fn over(d: &pb::Deployment) -> bool {
    matches!(
        pb::DeploymentStatus::try_from(d.status),
        Ok(pb::DeploymentStatus::Succeeded
            | pb::DeploymentStatus::RolledBack
            | pb::DeploymentStatus::Failed)
    )
}

pub(super) fn waiting(d: &pb::Deployment, kind: &str) -> bool {
    d.steps
        .iter()
        .any(|s| s.kind == kind && s.state == pb::StepState::Started as i32 && s.outcome.is_none())
}
