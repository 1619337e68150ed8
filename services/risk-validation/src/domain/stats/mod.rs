//! The statistics the canary judge stands on: the Mann-Whitney U test, the Hodges-Lehmann
//! estimate of the shift between two samples with its confidence interval, and the normal
//! distribution they fall back on. Tested against published reference values (SciPy's and R's
//! documentation, Kayenta's suite), never against themselves.

mod hodges_lehmann;
mod mann_whitney;
mod normal;
mod zeroin;

pub use hodges_lehmann::{ShiftEstimate, shift_estimate};
pub use mann_whitney::{UTest, u_test};
pub use normal::{normal_cdf, normal_quantile, normal_sf};

/// Why a statistic cannot be computed for the samples given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatsError {
    #[error("the {0} sample is empty")]
    Empty(&'static str),
    #[error("the {0} sample holds a value that is not a finite number")]
    NotFinite(&'static str),
    #[error("every observation is tied: the samples carry no order to test")]
    AllTied,
    #[error("confidence {0} is not between 0 and 1")]
    Confidence(String),
}

pub(crate) fn checked(name: &'static str, xs: &[f64]) -> Result<(), StatsError> {
    if xs.is_empty() {
        return Err(StatsError::Empty(name));
    }
    if xs.iter().any(|v| !v.is_finite()) {
        return Err(StatsError::NotFinite(name));
    }
    Ok(())
}

/// Mid-ranks (1-based) of `values` among themselves, and the sizes of the groups of ties.
pub fn mid_ranks(values: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        // Positions i..j (0-based) share the mean of ranks i+1..=j.
        let rank = (i + 1 + j) as f64 / 2.0;
        for &k in &order[i..j] {
            ranks[k] = rank;
        }
        if j - i > 1 {
            ties.push(j - i);
        }
        i = j;
    }
    (ranks, ties)
}

/// `sum(t^3 - t)` over groups of ties: what ties take off the rank statistic's variance.
pub(crate) fn tie_term(ties: &[usize]) -> f64 {
    ties.iter()
        .map(|&t| {
            let t = t as f64;
            t * t * t - t
        })
        .sum()
}

/// How many arrangements of `m` and `n` observations give each value of U (0..=m*n): the
/// coefficients of the Gaussian binomial coefficient [m+n choose m] in q.
pub(crate) fn u_counts(m: usize, n: usize) -> Vec<i128> {
    let top = m * n;
    let mut c = vec![0i128; top + 1];
    c[0] = 1;
    for i in 1..=m {
        // Multiply by (1 - q^(n+i)) ...
        let k = n + i;
        for j in (k..=top).rev() {
            c[j] -= c[j - k];
        }
        // ... and divide by (1 - q^i): the quotient stays a polynomial.
        for j in i..=top {
            c[j] += c[j - i];
        }
    }
    c
}
