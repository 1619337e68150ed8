//! DORA metrics over the recorded history, for a unit the caller may see.

use flotilla_proto::monitoring::v1 as pb;
use flotilla_runtime::kit::Caller;
use tonic::{Request, Response, Status};

use super::MonitoringApi;
use crate::domain::*;

fn date_of(field: &str, s: &str) -> Result<time::Date, DomainError> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format).map_err(|_| {
        invalid(
            field,
            format!("{} is not a date (YYYY-MM-DD)", names::shown(s)),
        )
    })
}

fn metric_of(m: pb::DoraMetric) -> Option<(DoraMetric, &'static str)> {
    Some(match m {
        pb::DoraMetric::Unspecified => return None,
        pb::DoraMetric::DeploymentFrequency => (DoraMetric::DeploymentFrequency, "count"),
        pb::DoraMetric::LeadTimeForChanges => (DoraMetric::LeadTimeForChanges, "seconds"),
        pb::DoraMetric::ChangeFailureRate => (DoraMetric::ChangeFailureRate, "ratio"),
        pb::DoraMetric::TimeToRestoreService => (DoraMetric::TimeToRestoreService, "seconds"),
        pb::DoraMetric::DeployDuration => (DoraMetric::DeployDuration, "seconds"),
        pb::DoraMetric::FailureFrequency => (DoraMetric::FailureFrequency, "count"),
        pb::DoraMetric::RollbackIncidence => (DoraMetric::RollbackIncidence, "count"),
    })
}

const ALL: [pb::DoraMetric; 7] = [
    pb::DoraMetric::DeploymentFrequency,
    pb::DoraMetric::LeadTimeForChanges,
    pb::DoraMetric::ChangeFailureRate,
    pb::DoraMetric::TimeToRestoreService,
    pb::DoraMetric::DeployDuration,
    pb::DoraMetric::FailureFrequency,
    pb::DoraMetric::RollbackIncidence,
];

impl MonitoringApi {
    #[tracing::instrument(skip_all, fields(rpc = "GetDoraMetrics"))]
    pub(super) async fn dora_metrics(
        &self,
        request: Request<pb::GetDoraMetricsRequest>,
    ) -> Result<Response<pb::DoraMetrics>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        names::label("business_unit", &r.business_unit).map_err(name_error)?;
        names::optional_label("service", &r.service).map_err(name_error)?;
        call.allow_in(&r.business_unit, &Default::default())?;
        let from = date_of("start_date", &r.start_date)?;
        let to = date_of("end_date", &r.end_date)?;
        let interval = match pb::DoraInterval::try_from(r.interval) {
            Ok(pb::DoraInterval::Monthly) => Interval::Monthly,
            Ok(pb::DoraInterval::All) => Interval::All,
            Ok(pb::DoraInterval::Daily | pb::DoraInterval::Unspecified) => Interval::Daily,
            Err(_) => {
                return Err(
                    invalid("interval", format!("{} is not an interval", r.interval)).into(),
                );
            }
        };
        let mut wanted = Vec::new();
        for m in &r.metrics {
            let m = pb::DoraMetric::try_from(*m)
                .ok()
                .filter(|m| *m != pb::DoraMetric::Unspecified)
                .ok_or_else(|| invalid("metrics", format!("{m} is not a DORA metric")))?;
            if !wanted.contains(&m) {
                wanted.push(m);
            }
        }
        if wanted.is_empty() {
            wanted = ALL.to_vec();
        }
        let production = self.app.production.clone();
        let series = self.app.query(|m| {
            let breaches: Vec<&Breach> = m.breaches.values().collect();
            wanted
                .iter()
                .filter_map(|w| metric_of(*w).map(|(metric, unit)| (*w, metric, unit)))
                .map(|(w, metric, unit)| {
                    let q = DoraQuery {
                        metric,
                        business_unit: r.business_unit.clone(),
                        service: r.service.clone(),
                        from,
                        to,
                        interval,
                        production: production.clone(),
                    };
                    dora(&m.deployments, &m.artifacts, &breaches, &q).map(|points| pb::DoraSeries {
                        metric: w as i32,
                        unit: unit.into(),
                        points: points
                            .into_iter()
                            .map(|p| pb::DoraPoint {
                                date: p.date.to_string(),
                                value: p.value,
                            })
                            .collect(),
                    })
                })
                .collect::<Result<Vec<_>>>()
        })?;
        Ok(Response::new(pb::DoraMetrics {
            series,
            production_environments: production,
        }))
    }
}
