//! An append-only Merkle tree that keeps every complete subtree's hash (level k holds the
//! hashes of the aligned subtrees of 2^k leaves), so the root of any size and the proofs
//! between any sizes take O(log^2 n) hashes to compute, not the O(n) of hashing the leaves again.

use super::{Hash, ProofError, empty_root, node_hash, split};

/// Kept as its leaves (serialized so, and rebuilt from them when read).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(from = "Vec<Hash>", into = "Vec<Hash>")]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl From<Vec<Hash>> for Tree {
    fn from(leaves: Vec<Hash>) -> Self {
        let mut t = Tree::new();
        for l in leaves {
            t.push(l);
        }
        t
    }
}

impl From<Tree> for Vec<Hash> {
    fn from(mut t: Tree) -> Self {
        if t.levels.is_empty() {
            Vec::new()
        } else {
            t.levels.swap_remove(0)
        }
    }
}

impl Tree {
    pub fn new() -> Self {
        Self::default()
    }

    /// The leaf hash at `index`.
    pub fn leaf(&self, index: usize) -> Option<Hash> {
        self.levels.first().and_then(|l| l.get(index)).copied()
    }

    /// Leaves in the tree.
    pub fn size(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// Appends a leaf hash; answers its index.
    pub fn push(&mut self, leaf: Hash) -> usize {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let index = self.levels[0].len() - 1;
        let mut k = 0;
        while self.levels[k].len().is_multiple_of(2) {
            let n = self.levels[k].len();
            let parent = node_hash(&self.levels[k][n - 2], &self.levels[k][n - 1]);
            if self.levels.len() == k + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[k + 1].push(parent);
            k += 1;
        }
        index
    }

    /// The Merkle tree hash of leaves [a, b), b <= size.
    fn mth(&self, a: usize, b: usize) -> Hash {
        let n = b - a;
        if n == 0 {
            return empty_root();
        }
        if n.is_power_of_two() && a.is_multiple_of(n) {
            let k = n.trailing_zeros() as usize;
            return self.levels[k][a >> k];
        }
        let k = split(n);
        node_hash(&self.mth(a, a + k), &self.mth(a + k, b))
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root(&self, size: usize) -> Result<Hash, ProofError> {
        if size > self.size() {
            return Err(ProofError::SizesReversed {
                first: size as u64,
                second: self.size() as u64,
            });
        }
        Ok(self.mth(0, size))
    }

    /// The audit path of leaf `m` in the tree of the first `size` leaves (RFC 9162 2.1.3.1).
    pub fn inclusion_proof(&self, m: usize, size: usize) -> Result<Vec<Hash>, ProofError> {
        if size > self.size() || m >= size {
            return Err(ProofError::IndexBeyondSize {
                index: m as u64,
                size: size.min(self.size()) as u64,
            });
        }
        let mut out = Vec::new();
        self.path(m, 0, size, &mut out);
        Ok(out)
    }

    fn path(&self, m: usize, a: usize, b: usize, out: &mut Vec<Hash>) {
        let n = b - a;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, a, a + k, out);
            out.push(self.mth(a + k, b));
        } else {
            self.path(m - k, a + k, b, out);
            out.push(self.mth(a, a + k));
        }
    }

    /// The consistency proof from the tree of `first` leaves to that of `second`
    /// (RFC 9162 2.1.4.1).
    pub fn consistency_proof(&self, first: usize, second: usize) -> Result<Vec<Hash>, ProofError> {
        if second > self.size() || first > second {
            return Err(ProofError::SizesReversed {
                first: first as u64,
                second: second as u64,
            });
        }
        let mut out = Vec::new();
        if first > 0 && first < second {
            self.subproof(first, 0, second, true, &mut out);
        }
        Ok(out)
    }

    fn subproof(&self, m: usize, a: usize, b: usize, complete: bool, out: &mut Vec<Hash>) {
        let n = b - a;
        if m == n {
            if !complete {
                out.push(self.mth(a, b));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, a, a + k, complete, out);
            out.push(self.mth(a + k, b));
        } else {
            self.subproof(m - k, a + k, b, false, out);
            out.push(self.mth(a, a + k));
        }
    }
}
