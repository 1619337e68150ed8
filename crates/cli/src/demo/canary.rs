//! Canary analyses in the demo: the canary's and the baseline's samples sent to
//! risk-validation's judge (Mann-Whitney with a Hodges-Lehmann interval per metric, as
//! Kayenta's); orchestration's analysis step takes the judgement from its event.

use flotilla_proto::risk::v1 as risk;

use super::story::Story;
use crate::client::failed;

/// A day's worth of minutes: latencies around `centre` ms, deterministic.
fn latencies(centre: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| centre + ((i * 37) % 23) as f64 - 11.0)
        .collect()
}

impl Story {
    /// Judges the canary of `release` in `env` at its analysis step: healthy (p99 as the
    /// baseline's) or not (p99 more than twice it), and tells the verdict.
    pub(super) async fn judge(
        &mut self,
        unit: &str,
        deployment: &str,
        release: &str,
        env: &str,
        healthy: bool,
    ) -> anyhow::Result<()> {
        let metric = |name: &str, critical: bool| risk::MetricConfig {
            name: name.into(),
            direction: risk::Direction::Increase as i32,
            critical,
            must_have_data: true,
            ..Default::default()
        };
        let canary = if healthy { 181.0 } else { 412.0 };
        let errors = |rate: f64| (0..30).map(|i| rate + f64::from(i % 3) * 0.0005).collect();
        let judged = self
            .risk("sre", &["service-owner"], unit)
            .await?
            .judge_canary(risk::JudgeCanaryRequest {
                deployment_id: deployment.into(),
                analysis: "canary-judge".into(),
                release: release.into(),
                environment: env.into(),
                business_unit: unit.into(),
                config: Some(risk::JudgeConfig {
                    metrics: vec![metric("latency_p99_ms", true), metric("error_rate", false)],
                    ..Default::default()
                }),
                samples: vec![
                    risk::MetricSamples {
                        name: "latency_p99_ms".into(),
                        experiment: latencies(canary, 30),
                        control: latencies(180.0, 30),
                    },
                    risk::MetricSamples {
                        name: "error_rate".into(),
                        experiment: errors(0.002),
                        control: errors(0.002),
                    },
                ],
                prometheus: vec![],
            })
            .await
            .map_err(|s| failed("judge canary", s))?
            .into_inner();
        let label = risk::JudgementLabel::try_from(judged.label)
            .map_or("unknown", |l| l.as_str_name())
            .trim_start_matches("JUDGEMENT_LABEL_")
            .to_lowercase();
        self.detail(format!(
            "- risk-validation judged the canary: score {} ({label}); {}",
            judged.score, judged.reason
        ));
        Ok(())
    }
}
