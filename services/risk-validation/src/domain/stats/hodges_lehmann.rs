//! The Hodges-Lehmann estimate of how far the first sample is shifted from the second, and its
//! confidence interval, as Kayenta's judge computes them (and R's
//! `wilcox.test(x, y, conf.int = TRUE, exact = FALSE)`): the normal approximation of the
//! rank-sum statistic of `x - d` against `y`, tie- and continuity-corrected, inverted for the
//! interval's ends and solved at zero for the estimate with Brent's method.

use super::zeroin::zeroin;
use super::{StatsError, checked, mid_ranks, normal_quantile, rank_sum_variance, u_of_first};

/// The shift of `x` from `y` and its interval.
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftEstimate {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

/// R's and Kayenta's tolerance for the roots.
const TOL: f64 = 1e-4;

/// The Hodges-Lehmann shift of `x` from `y` with a two-sided interval at `confidence`.
pub fn shift_estimate(x: &[f64], y: &[f64], confidence: f64) -> Result<ShiftEstimate, StatsError> {
    checked("first", x)?;
    checked("second", y)?;
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(StatsError::Confidence(confidence.to_string()));
    }
    let lo = min(x) - max(y);
    let hi = max(x) - min(y);
    // Both samples constant: every shifted observation ties and the statistic has no spread.
    if lo == hi {
        return Err(StatsError::AllTied);
    }
    let f = |d: f64, zq: f64| standardised(x, y, d) - zq;
    // R's absolute 1e-4, but never coarser than a millionth of the range: metrics of tiny
    // values (error rates of 1e-5) get an interval, not the whole range.
    let tol = TOL.min((hi - lo) * 1e-6).max(f64::MIN_POSITIVE);
    let root = |zq: f64| {
        let (f_lo, f_hi) = (f(lo, zq), f(hi, zq));
        if f_lo <= 0.0 {
            return lo;
        }
        if f_hi >= 0.0 {
            return hi;
        }
        zeroin(|d| f(d, zq), lo, hi, f_lo, f_hi, tol)
    };
    let z = normal_quantile((1.0 - confidence) / 2.0);
    Ok(ShiftEstimate {
        estimate: zeroin(|d| f(d, 0.0), lo, hi, f(lo, 0.0), f(hi, 0.0), tol),
        lower: root(-z),
        upper: root(z),
    })
}

/// The rank-sum statistic of `x - d` against `y`, centred, continuity-corrected toward zero
/// and scaled by its tie-corrected spread (R's `wdiff` without the quantile). One ranking per
/// evaluation: the root finder calls it at every step.
fn standardised(x: &[f64], y: &[f64], d: f64) -> f64 {
    let shifted: Vec<f64> = x.iter().map(|v| v - d).chain(y.iter().copied()).collect();
    let (ranks, ties) = mid_ranks(&shifted);
    let dz = u_of_first(&ranks, x.len(), y.len()) - (x.len() * y.len()) as f64 / 2.0;
    let correction = if dz == 0.0 { 0.0 } else { 0.5 * dz.signum() };
    (dz - correction) / rank_sum_variance(x.len(), y.len(), &ties).sqrt()
}

fn min(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(xs: &[f64]) -> f64 {
    xs.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kayenta's own suite: experiment 10,20,30,40 against control 1,2,3,4 at 0.95.
    #[test]
    fn kayenta_reference_interval() {
        let e = shift_estimate(&[10.0, 20.0, 30.0, 40.0], &[1.0, 2.0, 3.0, 4.0], 0.95)
            .expect("estimate");
        for (got, want) in [(e.lower, 6.0), (e.upper, 39.0), (e.estimate, 22.5)] {
            assert!((got - want).abs() < 1e-6, "{e:?}");
        }
    }

    /// Samples of tiny values (error rates) get an interval, not the whole range: two samples
    /// that do not overlap have a shift interval above 0.
    #[test]
    fn tiny_values_keep_their_interval() {
        let e = [2.0e-5, 2.1e-5, 2.2e-5, 2.3e-5, 2.4e-5];
        let c = [1.0e-5, 1.1e-5, 1.2e-5, 1.3e-5, 1.4e-5];
        let s = shift_estimate(&e, &c, 0.95).expect("estimate");
        assert!(s.lower > 0.0 && s.upper > s.lower, "{s:?}");
        assert!((s.estimate - 1.0e-5).abs() < 1e-9, "{s:?}");
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(matches!(
            shift_estimate(&[1.0], &[2.0], 1.0),
            Err(StatsError::Confidence(_))
        ));
        assert_eq!(
            shift_estimate(&[1.0; 60], &[1.0; 60], 0.98),
            Err(StatsError::AllTied)
        );
    }
}
