//! A release moved along: created and planned, made ready for staging, deployed.

use std::time::Duration;

use flotilla_proto::orchestration::v1 as pb;

use super::{Flow, UNIT, approve};

/// A release of `items` in the unit, created and planned.
pub async fn planned(flow: &mut Flow, name: &str, items: Vec<pb::RequestedItem>) {
    flow.orch
        .create_release(pb::CreateReleaseRequest {
            name: name.into(),
            business_unit: UNIT.into(),
            items,
            ..Default::default()
        })
        .await
        .expect("create");
    flow.orch
        .plan_release(pb::PlanReleaseRequest {
            release: name.into(),
        })
        .await
        .expect("plan");
}

/// What leaving dev for staging needs besides approvals (see [`set_up`]): dev's smoke check
/// passed for the release, and staging's data refreshed (masked, yesterday, 80%).
pub async fn ready_for_staging(flow: &mut Flow, release: &str) {
    flow.orch
        .record_validation(pb::RecordValidationRequest {
            business_unit: UNIT.into(),
            environment: "dev".into(),
            release: release.into(),
            check: "smoke".into(),
            passed: true,
        })
        .await
        .expect("validation");
    flow.orch
        .record_data_refresh(pb::RecordDataRefreshRequest {
            business_unit: UNIT.into(),
            environment: "staging".into(),
            masked: true,
            copied_at: Some(prost_types::Timestamp::from(
                std::time::SystemTime::now() - Duration::from_secs(86_400),
            )),
            volume_percent: 80,
        })
        .await
        .expect("refresh");
}

/// A release of `items` in the unit, created, planned, approved and deployed into `env` (the
/// first environment of its path); answers the finished deployment.
pub async fn deployed(
    flow: &mut Flow,
    name: &str,
    items: Vec<pb::RequestedItem>,
    env: &str,
) -> pb::Deployment {
    planned(flow, name, items).await;
    approve(flow, name, env).await;
    let d = flow
        .orch
        .promote_release(pb::PromoteReleaseRequest {
            release: name.into(),
            environment: env.into(),
        })
        .await
        .expect("promote")
        .into_inner();
    flow.finished(&d.deployment_id).await
}
