//! Risk-validation's pure domain.
//!
//! - `stats`: the Mann-Whitney U test and the Hodges-Lehmann shift with its interval;
//! - `judge`: the canary judge (classifier and scorer) built on them.

pub mod judge;
pub mod stats;
