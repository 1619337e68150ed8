//! `flotilla status`: asks each service of a node for its status.

use std::process::ExitCode;

use flotilla_auth::Bearer;
use flotilla_proto::common::v1::{GetStatusRequest, ServiceStatus};
use tonic::transport::Channel;

use crate::client::Target;

use crate::output::{Output, table};

async fn one(
    channel: &Channel,
    bearer: &Bearer,
    service: &str,
) -> Result<ServiceStatus, tonic::Status> {
    use flotilla_proto::*;
    let req = || tonic::Request::new(GetStatusRequest {});
    let r = match service {
        "governance" => {
            governance::v1::governance_service_client::GovernanceServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .get_status(req())
                .await
        }
        "dependency-mapping" => {
            dependency::v1::dependency_mapping_service_client::DependencyMappingServiceClient::with_interceptor(channel.clone(), bearer.clone())
            .get_status(req())
            .await
        }
        "orchestration" => {
            orchestration::v1::orchestration_service_client::OrchestrationServiceClient::with_interceptor(channel.clone(), bearer.clone())
            .get_status(req())
            .await
        }
        "risk-validation" => {
            risk::v1::risk_validation_service_client::RiskValidationServiceClient::with_interceptor(channel.clone(), bearer.clone())
            .get_status(req())
            .await
        }
        "monitoring" => {
            monitoring::v1::monitoring_service_client::MonitoringServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .get_status(req())
                .await
        }
        _ => {
            compliance::v1::compliance_service_client::ComplianceServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .get_status(req())
                .await
        }
    };
    r.map(tonic::Response::into_inner)
}

pub async fn run(target: &Target, output: Output) -> anyhow::Result<ExitCode> {
    let (channel, bearer) = target.connect("node").await?;
    let mut rows = Vec::new();
    let mut json = Vec::new();
    let mut failed = false;
    for m in flotilla_platform::all() {
        match one(&channel, &bearer, m.name()).await {
            Ok(s) => {
                let state = if s.chain_intact {
                    "serving".to_owned()
                } else {
                    failed = true;
                    eprintln!(
                        "{}: {}; repair the store, or start it with --accept-chain-break {}@<position> once you have looked",
                        s.service, s.chain_break, s.service
                    );
                    "NOT SERVING: chain broken".to_owned()
                };
                rows.push(vec![
                    s.service.clone(),
                    state.clone(),
                    s.store_backend.clone(),
                    s.head_position.to_string(),
                    s.head_hash.chars().take(16).collect(),
                    s.verified_position.to_string(),
                ]);
                json.push(serde_json::json!({"service": s.service, "state": if s.chain_intact { "serving" } else { "chain-broken" }, "store": s.store_backend, "head_position": s.head_position, "head_hash": s.head_hash, "version": s.version, "chain_intact": s.chain_intact, "chain_break": s.chain_break, "verified_position": s.verified_position}));
            }
            Err(st) if st.code() == tonic::Code::Unimplemented => {
                rows.push(vec![
                    m.name().into(),
                    "not on this node".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
                json.push(serde_json::json!({"service": m.name(), "state": "absent"}));
            }
            Err(st) => {
                if st.code() == tonic::Code::Unauthenticated && !failed {
                    eprintln!("{}", crate::client::failed("status", st.clone()));
                }
                failed = true;
                rows.push(vec![
                    m.name().into(),
                    format!("error: {}", st.message()),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
                json.push(serde_json::json!({"service": m.name(), "state": "error", "error": st.message()}));
            }
        }
    }
    match output {
        Output::Table => table(
            &[
                "service",
                "state",
                "store",
                "head",
                "head hash",
                "chain checked to",
            ],
            &rows,
        ),
        Output::Json => println!("{}", serde_json::to_string_pretty(&json)?),
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
