//! The Prometheus text exposition format (version 0.0.4) of a node's metrics.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use flotilla_core::writer_stats::Histogram;

use super::{BUCKETS, Metrics, Sample, lock};

/// The name of a gRPC status code as Prometheus labels carry it (`OK`, `NOT_FOUND`...).
pub(super) fn code_name(code: &str) -> String {
    let n: i32 = code.trim().parse().unwrap_or(2);
    format!("{:?}", tonic::Code::from_i32(n))
        .chars()
        .fold(String::new(), |mut s, c| {
            if c.is_uppercase() && !s.is_empty() {
                s.push('_');
            }
            s.push(c.to_ascii_uppercase());
            s
        })
}

/// A label value escaped for the exposition format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `{a="x",b="y"}` (empty for no labels), with `extra` (e.g. `le`) last.
fn labels(pairs: &[(&str, &str)], extra: Option<(&str, &str)>) -> String {
    let all: Vec<String> = pairs
        .iter()
        .chain(extra.as_ref())
        .map(|(k, v)| format!("{k}=\"{}\"", label(v)))
        .collect();
    if all.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", all.join(","))
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn value(out: &mut String, name: &str, pairs: &[(&str, &str)], v: impl std::fmt::Display) {
    let _ = writeln!(out, "{name}{} {v}", labels(pairs, None));
}

/// One series of a histogram: its buckets (cumulative), `+Inf`, sum and count.
fn histogram(out: &mut String, name: &str, pairs: &[(&str, &str)], h: &Histogram) {
    for (bound, count) in h.bounds.iter().zip(&h.counts) {
        let le = bound.to_string();
        let _ = writeln!(
            out,
            "{name}_bucket{} {count}",
            labels(pairs, Some(("le", &le)))
        );
    }
    let _ = writeln!(
        out,
        "{name}_bucket{} {}",
        labels(pairs, Some(("le", "+Inf"))),
        h.count
    );
    value(out, &format!("{name}_sum"), pairs, h.sum);
    value(out, &format!("{name}_count"), pairs, h.count);
}

impl Metrics {
    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_duties(&mut out);
        self.render_stores(&mut out);
        self.render_grpc(&mut out);
        self.render_gauges(&mut out);
        out
    }

    fn render_duties(&self, out: &mut String) {
        let duties = lock(&self.duties).clone();
        header(
            out,
            "flotilla_lease_held",
            "gauge",
            "Whether this replica holds the service's duty lease (runs its relays and schedulers).",
        );
        for (service, term) in &duties {
            value(
                out,
                "flotilla_lease_held",
                &[("service", service)],
                u8::from(term.is_some()),
            );
        }
        header(
            out,
            "flotilla_lease_term",
            "gauge",
            "The fencing token of the duty lease's term this replica holds.",
        );
        for (service, term) in duties.iter().filter_map(|(s, t)| t.map(|t| (s, t))) {
            value(out, "flotilla_lease_term", &[("service", service)], term);
        }
    }

    fn render_stores(&self, out: &mut String) {
        header(
            out,
            "flotilla_store_readable",
            "gauge",
            "Whether this replica reads the service's store (0: a chain break, or an event version this build does not know; it does not serve the service).",
        );
        for (service, readable) in lock(&self.readable).iter() {
            value(
                out,
                "flotilla_store_readable",
                &[("service", service)],
                u8::from(*readable),
            );
        }
        header(
            out,
            "flotilla_store_head_position",
            "gauge",
            "The newest position of the service's store.",
        );
        for (service, head) in lock(&self.heads).iter() {
            value(
                out,
                "flotilla_store_head_position",
                &[("service", service)],
                head,
            );
        }
        header(
            out,
            "flotilla_relay_lag_events",
            "gauge",
            "Events in the service's store not yet published to the bus.",
        );
        for ((service, bus), lag) in lock(&self.relay_lag).iter() {
            value(
                out,
                "flotilla_relay_lag_events",
                &[("service", service), ("bus", bus)],
                lag,
            );
        }
        let writers = lock(&self.writers).clone();
        header(
            out,
            "flotilla_store_append_duration_seconds",
            "histogram",
            "Time from an append queued at the service's store writer to its answer (this process's appends).",
        );
        for (service, w) in &writers {
            histogram(
                out,
                "flotilla_store_append_duration_seconds",
                &[("service", service)],
                &w.append_seconds,
            );
        }
        header(
            out,
            "flotilla_store_batch_events",
            "histogram",
            "Events per transaction the service's store writer committed (group commit).",
        );
        for (service, w) in &writers {
            histogram(
                out,
                "flotilla_store_batch_events",
                &[("service", service)],
                &w.batch_events,
            );
        }
        header(
            out,
            "flotilla_consumer_lag_events",
            "gauge",
            "Events of a source the consumer group has not acknowledged, as the bus counts them.",
        );
        for ((group, source, bus), lag) in lock(&self.consumer_lag).iter() {
            value(
                out,
                "flotilla_consumer_lag_events",
                &[("group", group), ("source", source), ("bus", bus)],
                lag,
            );
        }
    }

    fn render_grpc(&self, out: &mut String) {
        header(
            out,
            "flotilla_grpc_requests_total",
            "counter",
            "gRPC calls answered, by method and code.",
        );
        for ((method, code), n) in lock(&self.requests).iter() {
            value(
                out,
                "flotilla_grpc_requests_total",
                &[("method", method), ("code", code)],
                n,
            );
        }
        header(
            out,
            "flotilla_grpc_request_duration_seconds",
            "histogram",
            "Time to answer a gRPC call, by method.",
        );
        for (method, l) in lock(&self.latency).iter() {
            let h = Histogram {
                bounds: &BUCKETS,
                counts: l.counts.to_vec(),
                count: l.count,
                sum: l.sum,
            };
            histogram(
                out,
                "flotilla_grpc_request_duration_seconds",
                &[("method", method)],
                &h,
            );
        }
    }

    /// The services' domain gauges (and counters), each metric's samples together under one
    /// header.
    fn render_gauges(&self, out: &mut String) {
        let gauges: Vec<_> = lock(&self.gauges).clone();
        let mut by_name: BTreeMap<&'static str, Vec<Sample>> = BTreeMap::new();
        for (service, g) in gauges {
            // The state's figures from the duty's holder only; counters from every process.
            let held = self.holds(&service);
            for s in g().into_iter().filter(|s| held || s.kind == "counter") {
                by_name.entry(s.name).or_default().push(s);
            }
        }
        for (name, samples) in by_name {
            header(out, name, samples[0].kind, samples[0].help);
            for s in samples {
                let pairs: Vec<(&str, &str)> =
                    s.labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                value(out, name, &pairs, s.value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_calls_by_method_and_code_with_a_histogram() {
        let m = Metrics::default();
        m.observe("/flotilla.x.v1.XService/Get", "0", 0.002);
        m.observe("/flotilla.x.v1.XService/Get", "0", 0.2);
        m.observe("/flotilla.x.v1.XService/Get", "5", 0.0001);
        let text = m.render();
        assert!(
            text.contains(
                "flotilla_grpc_requests_total{method=\"/flotilla.x.v1.XService/Get\",code=\"OK\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("flotilla_grpc_requests_total{method=\"/flotilla.x.v1.XService/Get\",code=\"NOT_FOUND\"} 1"), "{text}");
        assert!(text.contains("flotilla_grpc_request_duration_seconds_bucket{method=\"/flotilla.x.v1.XService/Get\",le=\"0.0025\"} 2"), "{text}");
        assert!(text.contains("flotilla_grpc_request_duration_seconds_bucket{method=\"/flotilla.x.v1.XService/Get\",le=\"+Inf\"} 3"), "{text}");
        assert!(text.contains("flotilla_grpc_request_duration_seconds_count{method=\"/flotilla.x.v1.XService/Get\"} 3"), "{text}");
    }

    #[test]
    fn writer_histograms_consumer_lag_and_domain_gauges_are_exposed() {
        let m = Metrics::default();
        let meter = flotilla_core::writer_stats::WriterMeter::default();
        meter.append_answered(0.003);
        meter.batch_committed(12);
        m.set_writer("approvals", meter.stats());
        m.set_consumer_lag("ledger", "approvals", "nats", Some(7));
        m.set_consumer_lag("ledger", "gone", "nats", Some(1));
        m.set_consumer_lag("ledger", "gone", "nats", None);
        m.add_gauges(
            "watch",
            std::sync::Arc::new(|| vec![Sample::new("flotilla_not_held", "Not held.", 1.0)]),
        );
        m.set_duty("approvals", Some(3));
        m.set_duty("watch", None);
        m.add_gauges(
            "approvals",
            std::sync::Arc::new(|| {
                vec![
                    Sample::new("flotilla_approvals_pending", "Pending approvals.", 2.0)
                        .label("business_unit", "payments \"eu\""),
                    Sample::new("flotilla_approvals_pending", "Pending approvals.", 1.0)
                        .label("business_unit", "cards"),
                ]
            }),
        );
        let text = m.render();
        for line in [
            "flotilla_store_append_duration_seconds_bucket{service=\"approvals\",le=\"0.0025\"} 0",
            "flotilla_store_append_duration_seconds_bucket{service=\"approvals\",le=\"0.005\"} 1",
            "flotilla_store_append_duration_seconds_count{service=\"approvals\"} 1",
            "flotilla_store_batch_events_bucket{service=\"approvals\",le=\"10\"} 0",
            "flotilla_store_batch_events_bucket{service=\"approvals\",le=\"25\"} 1",
            "flotilla_store_batch_events_sum{service=\"approvals\"} 12",
            "flotilla_consumer_lag_events{group=\"ledger\",source=\"approvals\",bus=\"nats\"} 7",
            "flotilla_approvals_pending{business_unit=\"payments \\\"eu\\\"\"} 2",
            "flotilla_approvals_pending{business_unit=\"cards\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        assert_eq!(
            text.matches("# TYPE flotilla_approvals_pending gauge")
                .count(),
            1
        );
        assert!(!text.contains("source=\"gone\""), "{text}");
        assert!(
            !text.contains("flotilla_not_held"),
            "a replica without the duty lease reports no state gauges: {text}"
        );
    }
}
