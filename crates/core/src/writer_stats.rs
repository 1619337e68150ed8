//! What a store's writer measures as it works: how long appends take, from queued to answered,
//! and how many events each committed transaction (a group commit) carried. Counted with
//! atomics as appends are answered; read as cumulative histograms (the Prometheus kind) by
//! whoever exports them. Time is measured by the writer and passed in here.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of append latency buckets, in seconds.
pub const APPEND_SECONDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// Upper bounds of batch size buckets, in events per committed transaction.
pub const BATCH_EVENTS: [f64; 10] = [
    1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1_000.0, 10_000.0,
];

/// A cumulative histogram: per bound, the observations at or below it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    pub bounds: &'static [f64],
    /// Cumulative: `counts[i]` observations were at most `bounds[i]`.
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum: f64,
}

/// A histogram filled concurrently.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// Not cumulative: per bucket (the last one past every bound).
    buckets: Vec<AtomicU64>,
    /// The sum, in millionths of the unit.
    sum_micros: AtomicU64,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, value: f64) {
        let i = self.bounds.partition_point(|b| *b < value);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        // Whole millionths; negative or non-finite values add nothing.
        let micros = (value * 1e6).round();
        if micros.is_finite() && micros > 0.0 {
            self.sum_micros.fetch_add(micros as u64, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> Histogram {
        let mut counts = Vec::with_capacity(self.bounds.len());
        let mut seen = 0;
        for b in &self.buckets[..self.bounds.len()] {
            seen += b.load(Ordering::Relaxed);
            counts.push(seen);
        }
        let count = seen + self.buckets[self.bounds.len()].load(Ordering::Relaxed);
        Histogram {
            bounds: self.bounds,
            counts,
            count,
            sum: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

/// A writer's measurements, as its store hands them out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriterStats {
    /// Seconds from an append queued to its answer, per append (refused ones too).
    pub append_seconds: Histogram,
    /// Events per committed transaction.
    pub batch_events: Histogram,
}

/// The live counters behind [`WriterStats`].
#[derive(Debug)]
pub struct WriterMeter {
    append_seconds: AtomicHistogram,
    batch_events: AtomicHistogram,
}

impl Default for WriterMeter {
    fn default() -> Self {
        Self {
            append_seconds: AtomicHistogram::new(&APPEND_SECONDS),
            batch_events: AtomicHistogram::new(&BATCH_EVENTS),
        }
    }
}

impl WriterMeter {
    pub fn append_answered(&self, seconds: f64) {
        self.append_seconds.observe(seconds);
    }

    pub fn batch_committed(&self, events: usize) {
        self.batch_events.observe(events as f64);
    }

    pub fn stats(&self) -> WriterStats {
        WriterStats {
            append_seconds: self.append_seconds.snapshot(),
            batch_events: self.batch_events.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_fall_in_the_first_bucket_that_holds_them_and_counts_are_cumulative() {
        let h = AtomicHistogram::new(&BATCH_EVENTS);
        for v in [1.0, 1.0, 2.0, 3.0, 10.0, 11.0, 20_000.0] {
            h.observe(v);
        }
        let s = h.snapshot();
        // <=1: 2, <=2: 3, <=5: 4, <=10: 5, <=25: 6, ... <=10000: 6, and one past every bound.
        assert_eq!(s.counts, vec![2, 3, 4, 5, 6, 6, 6, 6, 6, 6]);
        assert_eq!(s.count, 7);
        assert_eq!(s.sum, 20_028.0);
    }

    #[test]
    fn latencies_sum_in_seconds() {
        let m = WriterMeter::default();
        m.append_answered(0.0004);
        m.append_answered(0.003);
        m.batch_committed(64);
        let s = m.stats();
        assert_eq!(s.append_seconds.counts[0], 1);
        assert_eq!(s.append_seconds.counts[3], 2);
        assert!((s.append_seconds.sum - 0.0034).abs() < 1e-9);
        assert_eq!(s.batch_events.count, 1);
        assert_eq!(s.batch_events.counts[5], 0);
        assert_eq!(s.batch_events.counts[6], 1);
    }
}
