//! Correlation of an anomaly with the releases that may have caused it.

use flotilla_proto::monitoring::v1 as pb;
use flotilla_runtime::kit::{Caller, time};
use tonic::{Request, Response, Status};

use super::MonitoringApi;
use crate::domain::*;
use crate::messages::ts;

impl MonitoringApi {
    #[tracing::instrument(skip_all, fields(rpc = "CorrelateAnomaly"))]
    pub(super) async fn correlate(
        &self,
        request: Request<pb::CorrelateAnomalyRequest>,
    ) -> Result<Response<pb::CorrelateAnomalyResponse>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        names::id("service", &r.service).map_err(name_error)?;
        names::label("environment", &r.environment).map_err(name_error)?;
        let at = match &r.at {
            Some(t) => time::from_request(t).map_err(|e| invalid("at", e))?,
            None => Timestamp::now(),
        };
        let anomaly = Anomaly {
            service: r.service,
            environment: r.environment,
            at,
            window_minutes: if r.window_minutes == 0 {
                24 * 60
            } else {
                r.window_minutes
            },
            max_depth: if r.max_depth == 0 {
                3
            } else {
                r.max_depth as usize
            },
        };
        let found = self.app.query(|m| {
            suspects(&m.deployments, &m.depends_on, &anomaly).map(|s| {
                // Only releases of units the caller may see.
                let units: std::collections::BTreeMap<&str, &str> = m
                    .deployments
                    .iter()
                    .map(|d| (d.deployment.as_str(), d.business_unit.as_str()))
                    .collect();
                s.into_iter()
                    .filter(|x| {
                        units
                            .get(x.deployment.as_str())
                            .is_some_and(|u| call.sees(u))
                    })
                    .collect::<Vec<_>>()
            })
        })?;
        Ok(Response::new(pb::CorrelateAnomalyResponse {
            suspects: found
                .into_iter()
                .map(|s| pb::Suspect {
                    release: s.release,
                    deployment_id: s.deployment,
                    service: s.service,
                    version: s.version,
                    deployed_at: Some(ts(s.deployed_at)),
                    distance: s.distance as u32,
                    path: s.path,
                    why: s.why,
                })
                .collect(),
        }))
    }
}
