//! Prometheus over its HTTP API (`/api/v1/query`, `/api/v1/query_range`), for services that
//! read metrics from it: values come as strings (`"0.998"`, `"NaN"`, `"+Inf"`), times as Unix
//! seconds with decimals; answers are points `(time, value)`, NaN and infinities kept for the
//! caller's rules to judge.

use std::time::Duration;

use flotilla_core::event::Timestamp;
use serde::Deserialize;

/// One sample: when, and the value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub at: Timestamp,
    pub value: f64,
}

/// Why Prometheus gave no samples.
#[derive(Debug, thiserror::Error)]
pub enum PrometheusError {
    #[error("prometheus_url {0:?} is not a URL")]
    Url(String),
    #[error("prometheus at {url} did not answer: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("prometheus refused the query ({kind}): {message}")]
    Refused { kind: String, message: String },
    #[error("prometheus answered what is not its API's JSON: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: String,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<Instant>),
    Matrix(Vec<Range>),
    Scalar((f64, String)),
    String(serde::de::IgnoredAny),
}

#[derive(Deserialize)]
struct Instant {
    value: (f64, String),
}

#[derive(Deserialize)]
struct Range {
    values: Vec<(f64, String)>,
}

/// A Prometheus sample value: a float as Go formats it, `NaN` and `±Inf` included.
pub fn value_of(s: &str) -> Result<f64, PrometheusError> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => s
            .parse()
            .map_err(|_| PrometheusError::Malformed(format!("{s:?} is not a sample value"))),
    }
}

fn time_of(seconds: f64) -> Result<Timestamp, PrometheusError> {
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(PrometheusError::Malformed(format!(
            "{seconds} is not a sample time"
        )));
    }
    Ok(Timestamp((seconds * 1e6).round() as i64))
}

/// The series of an answer, each in time order (an instant vector's series hold one point each;
/// a scalar is one series of one point).
pub fn series_of(body: &[u8]) -> Result<Vec<Vec<Point>>, PrometheusError> {
    let a: Answer =
        serde_json::from_slice(body).map_err(|e| PrometheusError::Malformed(e.to_string()))?;
    if a.status != "success" {
        return Err(PrometheusError::Refused {
            kind: a.error_type,
            message: a.error,
        });
    }
    let point = |(t, v): &(f64, String)| -> Result<Point, PrometheusError> {
        Ok(Point {
            at: time_of(*t)?,
            value: value_of(v)?,
        })
    };
    match a.data {
        None => Err(PrometheusError::Malformed("no data".into())),
        Some(Data::Vector(series)) => series.iter().map(|s| Ok(vec![point(&s.value)?])).collect(),
        Some(Data::Matrix(series)) => series
            .iter()
            .map(|s| s.values.iter().map(point).collect())
            .collect(),
        Some(Data::Scalar(v)) => Ok(vec![vec![point(&v)?]]),
        Some(Data::String(_)) => Err(PrometheusError::Malformed(
            "the expression answers a string, not a number".into(),
        )),
    }
}

/// The samples of an answer, every series' together in time order.
pub fn samples_of(body: &[u8]) -> Result<Vec<Point>, PrometheusError> {
    let mut out: Vec<Point> = series_of(body)?.into_iter().flatten().collect();
    out.sort_by_key(|p| p.at);
    Ok(out)
}

/// The largest answer read (an 11,000-point range of a few series is far below it).
pub const MAX_ANSWER_BYTES: u64 = 32 * 1024 * 1024;

/// A Prometheus server.
#[derive(Clone, Debug)]
pub struct Prometheus {
    base: String,
    http: reqwest::Client,
}

impl Prometheus {
    pub fn new(base: &str) -> Result<Self, PrometheusError> {
        let base = base.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base).map_err(|_| PrometheusError::Url(base.clone()))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| PrometheusError::Unreachable {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self { base, http })
    }

    async fn get(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Vec<Vec<Point>>, PrometheusError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |e: reqwest::Error| PrometheusError::Unreachable {
            url: url.clone(),
            reason: e.to_string(),
        };
        let answer = self
            .http
            .get(&url)
            .query(query)
            .send()
            .await
            .map_err(unreachable)?;
        if answer
            .content_length()
            .is_some_and(|n| n > MAX_ANSWER_BYTES)
        {
            return Err(PrometheusError::Malformed(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes; narrow the query"
            )));
        }
        let body = answer.bytes().await.map_err(unreachable)?;
        if body.len() as u64 > MAX_ANSWER_BYTES {
            return Err(PrometheusError::Malformed(format!(
                "the answer is larger than {MAX_ANSWER_BYTES} bytes; narrow the query"
            )));
        }
        series_of(&body)
    }

    /// The expression's value at `at` (`/api/v1/query`).
    pub async fn query(&self, promql: &str, at: Timestamp) -> Result<Vec<Point>, PrometheusError> {
        let series = self
            .get(
                "/api/v1/query",
                &[
                    ("query", promql.to_owned()),
                    ("time", format!("{:.3}", at.0 as f64 / 1e6)),
                ],
            )
            .await?;
        let mut out: Vec<Point> = series.into_iter().flatten().collect();
        out.sort_by_key(|p| p.at);
        Ok(out)
    }

    /// The expression's series from `start` to `end` every `step_secs` (`/api/v1/query_range`).
    pub async fn query_range(
        &self,
        promql: &str,
        start: Timestamp,
        end: Timestamp,
        step_secs: u32,
    ) -> Result<Vec<Vec<Point>>, PrometheusError> {
        self.get(
            "/api/v1/query_range",
            &[
                ("query", promql.to_owned()),
                ("start", format!("{:.3}", start.0 as f64 / 1e6)),
                ("end", format!("{:.3}", end.0 as f64 / 1e6)),
                ("step", step_secs.max(1).to_string()),
            ],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The instant-vector example of Prometheus' HTTP API documentation.
    const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},"value":[1435781451.781,"1"]},
        {"metric":{"__name__":"up","job":"node","instance":"localhost:9100"},"value":[1435781451.781,"0"]}]}}"#;

    /// The range-query example of the same documentation.
    const MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"__name__":"up","job":"prometheus","instance":"localhost:9090"},
         "values":[[1435781430.781,"1"],[1435781445.781,"1"],[1435781460.781,"1"]]},
        {"metric":{"__name__":"up","job":"node","instance":"localhost:9091"},
         "values":[[1435781430.781,"0"],[1435781445.781,"0"],[1435781460.781,"1"]]}]}}"#;

    #[test]
    fn the_documented_answers_read_as_samples() {
        let v = samples_of(VECTOR.as_bytes()).expect("vector");
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].at, Timestamp(1_435_781_451_781_000));
        assert_eq!(v.iter().map(|s| s.value).collect::<Vec<_>>(), [1.0, 0.0]);
        let m = series_of(MATRIX.as_bytes()).expect("matrix");
        assert_eq!(m.len(), 2, "two series");
        assert_eq!(m[0].len(), 3);
        assert_eq!(m[0][2].at, Timestamp(1_435_781_460_781_000));
        assert_eq!(
            m[1].iter().map(|p| p.value).collect::<Vec<_>>(),
            [0.0, 0.0, 1.0]
        );
        assert_eq!(samples_of(MATRIX.as_bytes()).expect("flat").len(), 6);
    }

    #[test]
    fn string_values_nan_and_infinities_and_errors() {
        assert!(value_of("NaN").expect("nan").is_nan());
        assert_eq!(value_of("+Inf").expect("inf"), f64::INFINITY);
        assert_eq!(value_of("-Inf").expect("-inf"), f64::NEG_INFINITY);
        assert_eq!(value_of("0.995").expect("float"), 0.995);
        assert_eq!(value_of("1e-3").expect("exp"), 0.001);
        assert!(value_of("fast").is_err());
        let refused = samples_of(
            br#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#,
        )
        .expect_err("refused");
        assert!(refused.to_string().contains("bad_data"), "{refused}");
        assert!(matches!(
            samples_of(b"<html>"),
            Err(PrometheusError::Malformed(_))
        ));
        let scalar = samples_of(
            br#"{"status":"success","data":{"resultType":"scalar","result":[1435781451.781,"NaN"]}}"#,
        )
        .expect("scalar");
        assert!(scalar[0].value.is_nan());
    }
}
