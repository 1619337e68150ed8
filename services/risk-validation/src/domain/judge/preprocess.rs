//! Samples as the judge classifies them: NaN removed or replaced by 0, and outliers beyond IQR
//! fences removed when asked (Kayenta's "reduced sensitivity" fences: no tighter than the 1st
//! and 99th percentiles).

use serde::{Deserialize, Serialize};

/// What a NaN sample becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NanStrategy {
    Remove,
    /// Replaced by 0 (a missing count is zero requests, say).
    Replace,
}

/// The samples cleaned for classification; infinities count as NaN.
pub fn clean(samples: &[f64], nan: NanStrategy, outlier_factor: Option<f64>) -> Vec<f64> {
    let values: Vec<f64> = samples
        .iter()
        .filter_map(|&v| match (v.is_finite(), nan) {
            (true, _) => Some(v),
            (false, NanStrategy::Remove) => None,
            (false, NanStrategy::Replace) => Some(0.0),
        })
        .collect();
    match outlier_factor {
        Some(f) if values.len() > 1 => {
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let (q1, q3) = (percentile(&sorted, 25.0), percentile(&sorted, 75.0));
            let iqr = q3 - q1;
            let low = percentile(&sorted, 1.0).min(q1 - f * iqr);
            let high = percentile(&sorted, 99.0).max(q3 + f * iqr);
            values
                .into_iter()
                .filter(|v| *v >= low && *v <= high)
                .collect()
        }
        _ => values,
    }
}

/// The p-th percentile of sorted values, Hyndman and Fan's definition 7 (R's default).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p / 100.0;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kayenta's StatisticSuite: R-7 percentiles, and NIST's 12-value example (P90 = 95.1981,
    /// NIST/SEMATECH e-Handbook 7.2.6.2, as Kayenta checks it: 95.19568).
    #[test]
    fn percentiles_follow_r7() {
        let halves: Vec<f64> = (0..8).map(|i| f64::from(i) * 0.5).collect();
        assert!((percentile(&halves, 5.0) - 0.175).abs() < 1e-12);
        assert!((percentile(&halves, 50.0) - 1.75).abs() < 1e-12);
        assert_eq!(percentile(&halves, 100.0), 3.5);
        let ten: Vec<f64> = (0..10).map(f64::from).collect();
        assert_eq!(percentile(&ten, 50.0), 4.5);
        let mut nist = [
            95.1772, 95.1567, 95.1937, 95.1959, 95.1442, 95.0610, 95.1591, 95.1195, 95.1065,
            95.0925, 95.1990, 95.1682,
        ];
        nist.sort_by(f64::total_cmp);
        assert!((percentile(&nist, 90.0) - 95.19568).abs() < 1e-5);
    }

    /// Kayenta's TransformSuite: an IQR fence at 1.5 removes 50.
    #[test]
    fn outliers_and_nans() {
        let s = [21.0, 23.0, 24.0, 25.0, 50.0, 29.0, 23.0, 21.0];
        assert_eq!(
            clean(&s, NanStrategy::Remove, Some(1.5)),
            [21.0, 23.0, 24.0, 25.0, 29.0, 23.0, 21.0]
        );
        let n = [1.0, f64::NAN, 3.0, f64::INFINITY];
        assert_eq!(clean(&n, NanStrategy::Remove, None), [1.0, 3.0]);
        assert_eq!(clean(&n, NanStrategy::Replace, None), [1.0, 0.0, 3.0, 0.0]);
    }
}
