//! What orchestration asks other services, over their gRPC contracts: governance's gate, its
//! release naming rule and its rollback decisions, dependency-mapping's plan and catalog. A call on a person's behalf carries their
//! token (so the other service checks their rights); background work (trigger rules) carries
//! the configured service token.

use flotilla_proto::dependency::v1 as dep;
use flotilla_proto::dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient;
use flotilla_proto::governance::v1 as gov;
use flotilla_proto::governance::v1::governance_service_client::GovernanceServiceClient;
use flotilla_runtime::tls::PeerChannel;

use crate::domain::{GateAnswer, PlannedService, ReleasePlan, RollbackHold, Timestamp};

/// A forward step that failed, for governance's rollback decision about it.
#[derive(Clone, Debug)]
pub struct FailedStep {
    /// The decision's id: the same for the same step, so asking twice opens one decision.
    pub decision: uuid::Uuid,
    pub release: String,
    pub environment: String,
    pub service: String,
    pub business_unit: String,
    /// The step's exit code (-1 when it had none: a timeout, an interrupted step).
    pub exit_code: i32,
    pub at: Timestamp,
}

/// The bearer token a call to another service carries.
#[derive(Clone, Debug, Default)]
pub struct Token(pub Option<String>);

impl Token {
    /// The token of a request (its `authorization: Bearer …` header).
    pub fn of<T>(req: &tonic::Request<T>) -> Self {
        Self(
            req.metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::to_owned),
        )
    }

    fn attach<T>(&self, mut req: tonic::Request<T>) -> tonic::Request<T> {
        if let Some(t) = &self.0
            && let Ok(v) = format!("Bearer {t}").parse()
        {
            req.metadata_mut().insert("authorization", v);
        }
        req
    }
}

/// Why another service could not answer: its status, kept (a refusal there is a refusal here).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{service}: {}", status.message())]
pub struct PeerError {
    pub service: &'static str,
    pub status: tonic::Status,
}

impl From<PeerError> for tonic::Status {
    fn from(e: PeerError) -> Self {
        let code = match e.status.code() {
            // The other service being down is this service's trouble to report as such.
            tonic::Code::Unknown | tonic::Code::Internal | tonic::Code::Cancelled => {
                tonic::Code::Unavailable
            }
            c => c,
        };
        flotilla_runtime::kit::status(code, &e.to_string())
    }
}

/// The other services orchestration asks.
#[async_trait::async_trait]
pub trait Peers: Send + Sync {
    /// Governance's gate for a release (an emergency or not: the flag travels with the
    /// question) entering an environment at a time.
    async fn gate(
        &self,
        release: &str,
        environment: &str,
        emergency: bool,
        at: Timestamp,
        token: &Token,
    ) -> Result<GateAnswer, PeerError>;

    /// Governance's naming rule: why a release name breaks it (None: it does not).
    async fn name_refused(&self, name: &str, token: &Token) -> Result<Option<String>, PeerError>;

    /// Dependency-mapping's plan for releasing these service versions.
    async fn plan(
        &self,
        items: &[(String, String)],
        token: &Token,
    ) -> Result<ReleasePlan, PeerError>;

    /// Opens governance's rollback decision about a failed step (or finds the one opened
    /// already), under the rollback criteria for the release's tier: by when people must
    /// decide and who is told.
    async fn open_rollback_decision(
        &self,
        step: &FailedStep,
        token: &Token,
    ) -> Result<RollbackHold, PeerError>;
}

/// The peers over gRPC.
#[derive(Debug)]
pub struct GrpcPeers {
    governance: PeerChannel,
    dependency: PeerChannel,
}

impl GrpcPeers {
    /// Channels to governance and dependency-mapping (connected on first use); https URLs
    /// with the process's TLS settings (its CA and client certificate), followed as they are
    /// renewed.
    pub fn new(
        config: &flotilla_runtime::Config,
        governance_url: &str,
        dependency_url: &str,
    ) -> Result<Self, String> {
        let channel = |url: &str| {
            PeerChannel::new(config, url, |e| {
                e.connect_timeout(std::time::Duration::from_secs(5))
                    .timeout(std::time::Duration::from_secs(30))
            })
            .map_err(|e| e.to_string())
        };
        Ok(Self {
            governance: channel(governance_url)?,
            dependency: channel(dependency_url)?,
        })
    }
}

fn peer(service: &'static str) -> impl Fn(tonic::Status) -> PeerError {
    move |status| PeerError { service, status }
}

#[async_trait::async_trait]
impl Peers for GrpcPeers {
    async fn gate(
        &self,
        release: &str,
        environment: &str,
        emergency: bool,
        at: Timestamp,
        token: &Token,
    ) -> Result<GateAnswer, PeerError> {
        let answer = GovernanceServiceClient::new(self.governance.channel())
            .check_gate(token.attach(tonic::Request::new(gov::CheckGateRequest {
                release: release.to_owned(),
                environment: environment.to_owned(),
                at: Some(crate::messages::ts(at)),
                emergency: Some(emergency),
            })))
            .await
            .map_err(peer("governance"))?
            .into_inner();
        Ok(GateAnswer {
            allowed: answer.allowed,
            reasons: answer
                .reasons
                .into_iter()
                .filter(|r| r.waived_by_deviation.is_empty())
                .map(|r| r.message)
                .collect(),
        })
    }

    async fn name_refused(&self, name: &str, token: &Token) -> Result<Option<String>, PeerError> {
        let version = version_part(name);
        let answer = GovernanceServiceClient::new(self.governance.channel())
            .check_release_name(
                token.attach(tonic::Request::new(gov::CheckReleaseNameRequest {
                    version: version.to_owned(),
                })),
            )
            .await
            .map_err(peer("governance"))?
            .into_inner();
        Ok((!answer.valid).then(|| format!("{} ({})", answer.reason, answer.scheme)))
    }

    async fn plan(
        &self,
        items: &[(String, String)],
        token: &Token,
    ) -> Result<ReleasePlan, PeerError> {
        let answer = DependencyMappingServiceClient::new(self.dependency.channel())
            .plan_release(
                token.attach(tonic::Request::new(dep::PlanReleaseRequest {
                    items: items
                        .iter()
                        .map(|(service, version)| dep::ReleaseItem {
                            service: service.clone(),
                            version: version.clone(),
                        })
                        .collect(),
                })),
            )
            .await
            .map_err(peer("dependency-mapping"))?
            .into_inner();
        Ok(ReleasePlan {
            waves: answer
                .waves
                .into_iter()
                .map(|w| {
                    w.services
                        .into_iter()
                        .map(|s| PlannedService {
                            service: s.service,
                            version: (!s.version.is_empty()).then_some(s.version),
                            group: (!s.co_deployment_group.is_empty())
                                .then_some(s.co_deployment_group),
                        })
                        .collect()
                })
                .collect(),
            impact: answer.impact.into_iter().map(|e| e.service).collect(),
            skew: answer
                .skew_violations
                .into_iter()
                .map(|v| {
                    format!(
                        "{}: {}@{} requires {} {} and would get {}",
                        v.environment,
                        v.consumer,
                        v.consumer_version,
                        v.provider,
                        v.requirement,
                        v.provider_version
                    )
                })
                .collect(),
        })
    }

    async fn open_rollback_decision(
        &self,
        step: &FailedStep,
        token: &Token,
    ) -> Result<RollbackHold, PeerError> {
        let tier = self.tier_of(&step.service, token).await;
        let mut governance = GovernanceServiceClient::new(self.governance.channel());
        let opened = governance
            .open_rollback_decision(token.attach(tonic::Request::new(
                gov::OpenRollbackDecisionRequest {
                    decision: Some(gov::RollbackDecision {
                        decision_id: step.decision.to_string(),
                        release: step.release.clone(),
                        environment: step.environment.clone(),
                        service: step.service.clone(),
                        business_unit: step.business_unit.clone(),
                        tier,
                        metric: "failed-step".into(),
                        observed: f64::from(step.exit_code),
                        opened_at: Some(crate::messages::ts(step.at)),
                        ..Default::default()
                    }),
                },
            )))
            .await;
        match opened {
            Ok(d) => hold_of(d.get_ref()),
            // Opened already (asked again after a lost answer): the one governance holds.
            Err(s) if s.code() == tonic::Code::AlreadyExists => {
                let listed = governance
                    .list_rollback_decisions(token.attach(tonic::Request::new(
                        gov::ListRollbackDecisionsRequest {
                            release: step.release.clone(),
                            business_unit: step.business_unit.clone(),
                        },
                    )))
                    .await
                    .map_err(peer("governance"))?
                    .into_inner();
                let d = listed
                    .decisions
                    .iter()
                    .find(|d| d.decision_id == step.decision.to_string())
                    .ok_or_else(|| PeerError {
                        service: "governance",
                        status: s.clone(),
                    })?;
                hold_of(d)
            }
            Err(s) => Err(peer("governance")(s)),
        }
    }
}

impl GrpcPeers {
    /// The catalog's criticality tier of a service; governance uses the release's own tier
    /// when it holds an approval request for it, this one otherwise (1, the strictest, when
    /// the catalog does not know the service).
    async fn tier_of(&self, service: &str, token: &Token) -> u32 {
        let entry = DependencyMappingServiceClient::new(self.dependency.channel())
            .get_service(token.attach(tonic::Request::new(dep::GetServiceRequest {
                name: service.to_owned(),
            })))
            .await;
        match entry {
            Ok(e) if (1..=4).contains(&e.get_ref().criticality_tier) => {
                e.into_inner().criticality_tier
            }
            _ => 1,
        }
    }
}

fn hold_of(d: &gov::RollbackDecision) -> Result<RollbackHold, PeerError> {
    let bad = |why: &str| PeerError {
        service: "governance",
        status: tonic::Status::internal(format!("rollback decision {}: {why}", d.decision_id)),
    };
    Ok(RollbackHold {
        decision: d
            .decision_id
            .parse()
            .map_err(|_| bad("its id is not a uuid"))?,
        decide_by: d
            .decide_by
            .as_ref()
            .map(|t| flotilla_runtime::kit::time::stored(Some(t)))
            .ok_or_else(|| bad("it has no deadline"))?,
        notify: d.notify.clone(),
    })
}

/// The version a release name carries, which governance's naming rule is about: the name
/// itself when it starts with a digit, else what follows the first `-` before a digit
/// (`payments-2026.12.1` -> `2026.12.1`, `checkout-1.4.0-rc.1` -> `1.4.0-rc.1`).
pub fn version_part(name: &str) -> &str {
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        return name;
    }
    name.char_indices()
        .find(|(i, c)| *c == '-' && name[i + 1..].starts_with(|d: char| d.is_ascii_digit()))
        .map_or(name, |(i, _)| &name[i + 1..])
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_version_of_a_release_name() {
        assert_eq!(super::version_part("payments-2026.12.1"), "2026.12.1");
        assert_eq!(super::version_part("checkout-1.4.0-rc.1"), "1.4.0-rc.1");
        assert_eq!(super::version_part("2.0.0"), "2.0.0");
        assert_eq!(super::version_part("big-bang"), "big-bang");
    }
}
