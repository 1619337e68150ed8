//! The Mann-Whitney U test of two independent samples, two-sided, as SciPy's `mannwhitneyu`
//! defines it: U1 counts the pairs where the first sample's value is larger (ties half), the
//! exact p from the permutation distribution when there are no ties, and the normal
//! approximation with tie and continuity corrections otherwise.

use super::{StatsError, checked, mid_ranks, normal_sf, rank_sum_variance, u_of_first};

/// The test's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct UTest {
    /// U of the first sample (`x`), and of the second: `u1 + u2 = n1 * n2`.
    pub u1: f64,
    pub u2: f64,
    /// Exact two-sided p: without ties, when a sample has at most 8 values (its permutation
    /// distribution is counted, which grows with both sizes).
    pub p_exact: Option<f64>,
    /// Two-sided p of the normal approximation, tie- and continuity-corrected.
    pub p_asymptotic: f64,
    /// SciPy's `method="auto"`: exact when a sample has at most 8 values and nothing is tied.
    pub p: f64,
}

/// The two-sided Mann-Whitney U test of `x` against `y`.
pub fn u_test(x: &[f64], y: &[f64]) -> Result<UTest, StatsError> {
    checked("first", x)?;
    checked("second", y)?;
    let (n1, n2) = (x.len(), y.len());
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let (ranks, ties) = mid_ranks(&all);
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u1 = u_of_first(&ranks, n1, n2);
    let u2 = f1 * f2 - u1;
    let big = u1.max(u2);

    let variance = rank_sum_variance(n1, n2, &ties);
    let p_asymptotic = if variance > 0.0 {
        let z = (big - f1 * f2 / 2.0 - 0.5) / variance.sqrt();
        (2.0 * normal_sf(z)).min(1.0)
    } else {
        // Every value tied: no evidence of a difference either way.
        1.0
    };
    let p_exact = (ties.is_empty() && n1.min(n2) <= 8).then(|| {
        let counts = u_counts(n1.min(n2), n1.max(n2));
        let total: i128 = counts.iter().sum();
        // P(U >= big), by the distribution's symmetry the same as P(U <= n1*n2 - big).
        let from = big as usize;
        let upper: i128 = counts[from.min(counts.len())..].iter().sum();
        (2.0 * upper as f64 / total as f64).min(1.0)
    });
    let p = p_exact.unwrap_or(p_asymptotic);
    Ok(UTest {
        u1,
        u2,
        p_exact,
        p_asymptotic,
        p,
    })
}

/// How many arrangements of `m` and `n` observations give each value of U (0..=m*n): the
/// coefficients of the Gaussian binomial coefficient [m+n choose m] in q.
fn u_counts(m: usize, n: usize) -> Vec<i128> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// SciPy's `mannwhitneyu` docstring: ages of males and females at graduation.
    #[test]
    fn scipy_docstring_example() {
        let males = [19.0, 22.0, 16.0, 29.0, 24.0];
        let females = [20.0, 11.0, 17.0, 12.0];
        let t = u_test(&males, &females).expect("test");
        assert_eq!((t.u1, t.u2), (17.0, 3.0));
        let exact = t.p_exact.expect("no ties");
        assert!((exact - 0.111_111_111_111_111_1).abs() < 1e-12, "{exact}");
        assert!(
            (t.p_asymptotic - 0.111_346).abs() < 1e-6,
            "{}",
            t.p_asymptotic
        );
        assert_eq!(
            t.p, exact,
            "auto picks exact for small samples without ties"
        );
    }

    /// R's `wilcox.test(Ozone ~ Month, data = airquality, subset = Month %in% c(5, 8))`, the
    /// documentation's tied example: W = 127.5, p-value = 0.0001208 (normal approximation with
    /// continuity correction; NAs dropped).
    #[test]
    fn r_airquality_example_with_ties() {
        let may = [
            41.0, 36.0, 12.0, 18.0, 28.0, 23.0, 19.0, 8.0, 7.0, 16.0, 11.0, 14.0, 18.0, 14.0, 34.0,
            6.0, 30.0, 11.0, 1.0, 11.0, 4.0, 32.0, 23.0, 45.0, 115.0, 37.0,
        ];
        let august = [
            39.0, 9.0, 16.0, 78.0, 35.0, 66.0, 122.0, 89.0, 110.0, 44.0, 28.0, 65.0, 22.0, 59.0,
            23.0, 31.0, 44.0, 21.0, 9.0, 45.0, 168.0, 73.0, 76.0, 118.0, 84.0, 85.0,
        ];
        let t = u_test(&may, &august).expect("test");
        assert_eq!(t.u1, 127.5);
        assert!(t.p_exact.is_none(), "ties: no exact p");
        assert!(
            (t.p_asymptotic - 0.000_120_8).abs() < 5e-8,
            "{}",
            t.p_asymptotic
        );
        assert_eq!(t.p, t.p_asymptotic);
    }

    #[test]
    fn bad_samples_are_refused_not_judged() {
        assert_eq!(u_test(&[], &[1.0]), Err(StatsError::Empty("first")));
        assert_eq!(
            u_test(&[1.0, f64::NAN], &[1.0]),
            Err(StatsError::NotFinite("first"))
        );
        let same = u_test(&[3.0, 3.0], &[3.0, 3.0]).expect("all tied");
        assert_eq!(same.p, 1.0);
    }
}
