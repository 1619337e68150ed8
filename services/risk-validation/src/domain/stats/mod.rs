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

/// U of the first `n1` of `ranks` (mid-ranks of both samples together, the first sample
/// first): the pairs where its value is larger, ties counting half.
pub fn u_of_first(ranks: &[f64], n1: usize, n2: usize) -> f64 {
    debug_assert_eq!(ranks.len(), n1 + n2);
    let f1 = n1 as f64;
    ranks[..n1].iter().sum::<f64>() - f1 * (f1 + 1.0) / 2.0
}

/// The variance of U under no difference, less what ties (`ties`: their group sizes) take off.
pub(crate) fn rank_sum_variance(n1: usize, n2: usize, ties: &[usize]) -> f64 {
    let (f1, f2) = (n1 as f64, n2 as f64);
    let n = f1 + f2;
    let tied: f64 = ties
        .iter()
        .map(|&t| {
            let t = t as f64;
            t * t * t - t
        })
        .sum();
    f1 * f2 / 12.0 * ((n + 1.0) - tied / (n * (n - 1.0)))
}
