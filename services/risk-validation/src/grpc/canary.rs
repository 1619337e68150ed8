//! Canary judgements: judged and recorded, and read back.

use flotilla_auth::AccessContext;
use flotilla_proto::risk::v1 as pb;
use flotilla_runtime::kit::Caller;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::RiskValidationApi;
use crate::domain::judge::MetricSamples;
use crate::domain::*;
use crate::messages::{config_of, judged_pb};

/// Most metrics one judgement reads from Prometheus.
const MAX_RANGES: usize = 20;

impl RiskValidationApi {
    #[tracing::instrument(skip_all, fields(rpc = "JudgeCanary"))]
    pub(super) async fn judge(
        &self,
        request: Request<pb::JudgeCanaryRequest>,
    ) -> Result<Response<pb::CanaryJudgement>, Status> {
        let call = Caller::of(&request)?;
        let r = request.into_inner();
        names::label("business_unit", &r.business_unit).map_err(name_error)?;
        call.allow_in(&r.business_unit, &AccessContext::default())?;
        let id = Uuid::now_v7();
        let mut samples: Vec<MetricSamples> = r
            .samples
            .into_iter()
            .map(|s| MetricSamples {
                name: s.name,
                experiment: s.experiment,
                control: s.control,
            })
            .collect();
        // Each range is two queries to Prometheus: bounded before any is asked.
        if r.prometheus.len() > MAX_RANGES {
            return Err(invalid(
                "prometheus",
                format!("at most {MAX_RANGES} metrics read from Prometheus per judgement"),
            )
            .into());
        }
        let mut sources = Vec::with_capacity(r.prometheus.len());
        for (i, range) in r.prometheus.into_iter().enumerate() {
            let (source, read) = self.read_range(i, range).await?;
            if samples.iter().any(|s| s.name == source.name) {
                return Err(invalid(
                    &format!("prometheus[{i}].name"),
                    format!(
                        "{} has samples in the request too; give them one way",
                        source.name
                    ),
                )
                .into());
            }
            samples.push(read);
            sources.push(source);
        }
        let command = JudgeCanary {
            id,
            deployment: r.deployment_id,
            analysis: r.analysis,
            release: r.release,
            environment: r.environment,
            business_unit: r.business_unit,
            config: config_of(r.config.unwrap_or_default()),
            samples,
            sources,
            by: call.subject().to_owned(),
            at: Timestamp::now(),
        };
        self.app
            .execute(Command::JudgeCanary(command), call.metadata())
            .await?;
        self.answer(&call, id)
    }

    #[tracing::instrument(skip_all, fields(rpc = "GetCanaryJudgement"))]
    pub(super) async fn judgement(
        &self,
        request: Request<pb::GetCanaryJudgementRequest>,
    ) -> Result<Response<pb::CanaryJudgement>, Status> {
        let call = Caller::of(&request)?;
        let raw = request.into_inner().judgement_id;
        let id: Uuid = raw.parse().map_err(|_| {
            invalid(
                "judgement_id",
                format!("{} is not a uuid", names::shown(&raw)),
            )
        })?;
        self.answer(&call, id)
    }

    /// One metric's canary and baseline samples read from Prometheus over the range (each
    /// expression must answer one series; NaN values are kept for the metric's NaN strategy).
    async fn read_range(
        &self,
        i: usize,
        r: pb::PrometheusRange,
    ) -> Result<(SampleSource, MetricSamples), Status> {
        let f = |name: &str| format!("prometheus[{i}].{name}");
        let Some(prometheus) = &self.prometheus else {
            return Err(DomainError::FailedPrecondition(
                "canary samples are named by PromQL but [risk_validation] prometheus_url is not set; set it or send the samples".into(),
            )
            .into());
        };
        names::id(&f("name"), &r.name).map_err(name_error)?;
        for (field, q) in [
            ("experiment_query", &r.experiment_query),
            ("control_query", &r.control_query),
        ] {
            names::text(&f(field), q, 4096).map_err(name_error)?;
        }
        let time = |field: &str, t: Option<&prost_types::Timestamp>| {
            let t = t.ok_or_else(|| invalid(&f(field), "is missing"))?;
            flotilla_runtime::kit::time::from_request(t).map_err(|e| invalid(&f(field), e))
        };
        let start = time("start", r.start.as_ref())?;
        let end = time("end", r.end.as_ref())?;
        if end <= start {
            return Err(invalid(&f("end"), "is not after start").into());
        }
        let step = r.step_seconds.max(1);
        // Prometheus answers at most 11,000 points per series.
        if (end.0 - start.0) / (i64::from(step) * 1_000_000) > 11_000 {
            return Err(invalid(
                &f("step_seconds"),
                "gives more than 11,000 points over the range; take a larger step",
            )
            .into());
        }
        let mut values = Vec::with_capacity(2);
        for (field, q) in [
            ("experiment_query", &r.experiment_query),
            ("control_query", &r.control_query),
        ] {
            let series = prometheus
                .query_range(q, start, end, step)
                .await
                .map_err(|e| {
                    tracing::warn!(field = %f(field), error = %e, "prometheus did not answer a canary query");
                    Status::unavailable(format!(
                        "{}: prometheus did not answer the query; see risk-validation's log",
                        f(field)
                    ))
                })?;
            match series.as_slice() {
                [] => values.push(Vec::new()),
                [one] => values.push(one.iter().map(|p| p.value).collect()),
                many => {
                    return Err(DomainError::FailedPrecondition(format!(
                        "{}: the expression answers {} series; aggregate it to one (e.g. avg or sum)",
                        f(field),
                        many.len()
                    ))
                    .into());
                }
            }
        }
        let control = values.pop().unwrap_or_default();
        let experiment = values.pop().unwrap_or_default();
        Ok((
            SampleSource {
                name: r.name.clone(),
                experiment_query: r.experiment_query,
                control_query: r.control_query,
                start,
                end,
                step_seconds: step,
            },
            MetricSamples {
                name: r.name,
                experiment,
                control,
            },
        ))
    }

    /// A judgement the caller may see (another unit's is not found).
    fn answer(&self, call: &Caller, id: Uuid) -> Result<Response<pb::CanaryJudgement>, Status> {
        let j = self
            .app
            .query(|s| s.judgements.get(&id).cloned())
            .filter(|j| {
                call.allow_in(&j.business_unit, &AccessContext::default())
                    .is_ok()
            })
            .ok_or_else(|| DomainError::NotFound(format!("canary judgement {id}")))?;
        Ok(Response::new(judged_pb(&j)))
    }
}
