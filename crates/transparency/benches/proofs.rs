//! Merkle tree figures for BENCHMARKS.md: leaves appended per second into the kept tree, and
//! inclusion and consistency proofs made at 10,000,000 leaves (p50, p99 over 10,000 each, made
//! and verified).
//!
//! `cargo bench -p flotilla-transparency --bench proofs` (`FLOTILLA_MERKLE_LEAVES` sets the
//! size, default 10,000,000).

use std::time::Instant;

use flotilla_transparency::merkle::{Tree, leaf_hash, verify_consistency, verify_inclusion};

fn main() {
    let n: usize = std::env::var("FLOTILLA_MERKLE_LEAVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let started = Instant::now();
    let mut t = Tree::new();
    let mut leaves = Vec::with_capacity(n);
    for i in 0..n as u64 {
        let leaf = leaf_hash(&i.to_be_bytes());
        leaves.push(leaf);
        t.push(leaf);
    }
    let took = started.elapsed().as_secs_f64();
    println!(
        "{n} leaves hashed and appended in {took:.2} s: {:.0} leaves/s",
        n as f64 / took
    );
    let root = t.root(n).expect("root");
    // A small linear congruential generator: the same indices every run.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |bound: usize| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((x >> 33) as usize) % bound
    };
    let at = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(f64::total_cmp);
        v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1]
    };
    let mut inclusion = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let m = next(n);
        let s = Instant::now();
        let p = t.inclusion_proof(m, n).expect("proof");
        inclusion.push(s.elapsed().as_secs_f64() * 1e6);
        verify_inclusion(m as u64, n as u64, &leaves[m], &p, &root).expect("verifies");
    }
    let mut consistency = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let first = next(n - 1) + 1;
        let s = Instant::now();
        let p = t.consistency_proof(first, n).expect("proof");
        consistency.push(s.elapsed().as_secs_f64() * 1e6);
        let r1 = t.root(first).expect("root");
        verify_consistency(first as u64, n as u64, &p, &r1, &root).expect("verifies");
    }
    println!(
        "inclusion proof at {n} leaves: p50 {:.1} µs, p99 {:.1} µs",
        at(&mut inclusion, 0.5),
        at(&mut inclusion, 0.99)
    );
    println!(
        "consistency proof to {n} leaves: p50 {:.1} µs, p99 {:.1} µs",
        at(&mut consistency, 0.5),
        at(&mut consistency, 0.99)
    );
}
