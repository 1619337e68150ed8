//! The Merkle tree hash of RFC 9162 (as RFC 6962): a leaf is SHA-256(0x00 || data), a node
//! SHA-256(0x01 || left || right), the tree over n leaves splits at the largest power of two
//! below n. Inclusion and consistency proofs are made (`inclusion_proof`, `consistency_proof`,
//! RFC 9162 2.1.3.1 and 2.1.4.1) and verified (`verify_inclusion`, `verify_consistency`,
//! 2.1.3.2 and 2.1.4.2), refusing whatever does not prove exactly what it claims. The functions
//! over a slice of leaves are the RFC's definitions; [`Tree`] keeps the subtrees' hashes and
//! answers the same in O(log^2 n).

use sha2::{Digest, Sha256};

mod tree;
pub use tree::Tree;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexBeyondSize { index: u64, size: u64 },
    #[error("the second tree size {second} is below the first {first}")]
    SizesReversed { first: u64, second: u64 },
    #[error("a consistency proof from the empty tree proves nothing")]
    FromEmptyTree,
    #[error("the proof has the wrong number of hashes")]
    WrongLength,
    #[error("the proof does not lead to the root")]
    RootMismatch,
    #[error("a hash is {0} bytes, not 32")]
    NotAHash(usize),
}

/// Hashes as bytes (a proof's wire form) checked to be 32 bytes each.
pub fn hashes(raw: &[Vec<u8>]) -> Result<Vec<Hash>, ProofError> {
    raw.iter()
        .map(|h| Hash::try_from(h.as_slice()).map_err(|_| ProofError::NotAHash(h.len())))
        .collect()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two below `n` (n >= 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The Merkle tree hash over these leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path of leaf `m` in the tree over `leaves` (RFC 9162 2.1.3.1), nearest first.
pub fn inclusion_proof(m: usize, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    if m >= leaves.len() {
        return Err(ProofError::IndexBeyondSize {
            index: m as u64,
            size: leaves.len() as u64,
        });
    }
    let mut path = Vec::new();
    path_into(m, leaves, &mut path);
    Ok(path)
}

fn path_into(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    if d.len() <= 1 {
        return;
    }
    let k = split(d.len());
    if m < k {
        path_into(m, &d[..k], out);
        out.push(root(&d[k..]));
    } else {
        path_into(m - k, &d[k..], out);
        out.push(root(&d[..k]));
    }
}

/// The consistency proof between the tree over the first `m` leaves and the tree over all of
/// them (RFC 9162 2.1.4.1); empty when `m` is 0 or all of them.
pub fn consistency_proof(m: usize, leaves: &[Hash]) -> Result<Vec<Hash>, ProofError> {
    if m > leaves.len() {
        return Err(ProofError::SizesReversed {
            first: m as u64,
            second: leaves.len() as u64,
        });
    }
    let mut out = Vec::new();
    if m > 0 && m < leaves.len() {
        subproof(m, leaves, true, &mut out);
    }
    Ok(out)
}

fn subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !complete {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], complete, out);
        out.push(root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root(&d[..k]));
    }
}

/// Verifies that `leaf` is at `index` in the tree of `size` leaves with `root`
/// (RFC 9162 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexBeyondSize { index, size });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Verifies that the tree of `second` leaves with `second_root` extends the tree of `first`
/// leaves with `first_root` (RFC 9162 2.1.4.2). Equal sizes need an empty proof and equal
/// roots; a proof from the empty tree is refused (it proves nothing).
pub fn verify_consistency(
    first: u64,
    second: u64,
    proof: &[Hash],
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), ProofError> {
    if second < first {
        return Err(ProofError::SizesReversed { first, second });
    }
    if first == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    if first == second {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        return if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != first_root || &sr != second_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
