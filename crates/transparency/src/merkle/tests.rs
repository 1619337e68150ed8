//! Against the reference vectors of transparency-dev/merkle (its `testonly` leaf inputs, node
//! and root hashes, and its `testdata` inclusion and consistency cases, values written out
//! here), so the tree is checked against what other implementations compute, not against
//! itself.

use super::*;

fn h(s: &str) -> Hash {
    let v = hex::decode(s).expect("hex");
    Hash::try_from(v.as_slice()).expect("32 bytes")
}

/// The eight leaf inputs.
fn leaves() -> Vec<Hash> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|x| leaf_hash(&hex::decode(x).expect("hex")))
    .collect()
}

/// The roots of the trees over the first 0..=8 leaves.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn leaf_hashes_and_the_roots_of_every_size_0_to_8() {
    let l = leaves();
    assert_eq!(
        l[1],
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")
    );
    assert_eq!(
        l[7],
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1")
    );
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(root(&l[..n]), h(want), "size {n}");
    }
}

/// (index, size, proof) of the reference inclusion cases.
fn inclusion_cases() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (
            0,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            5,
            8,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            3,
            vec![h(
                "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            )],
        ),
        (
            1,
            5,
            vec![
                h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
    ]
}

#[test]
fn inclusion_proofs_are_the_reference_paths_and_verify() {
    let l = leaves();
    for (index, size, proof) in inclusion_cases() {
        let made = inclusion_proof(index as usize, &l[..size as usize]).expect("made");
        assert_eq!(made, proof, "leaf {index} of {size}");
        let root = h(ROOTS[size as usize]);
        verify_inclusion(index, size, &l[index as usize], &proof, &root)
            .unwrap_or_else(|e| panic!("leaf {index} of {size}: {e}"));
    }
}

#[test]
fn inclusion_proofs_that_must_be_rejected() {
    let l = leaves();
    let root8 = h(ROOTS[8]);
    let (_, _, proof) = inclusion_cases().remove(0);
    // wrong leaf, index +1, index XOR 2, size / 2, size * 2, a removed component, a trailing
    // hash, a component with one bit changed, another root, the empty root.
    let wrong = [
        verify_inclusion(0, 8, &l[1], &proof, &root8),
        verify_inclusion(1, 8, &l[0], &proof, &root8),
        verify_inclusion(2, 8, &l[0], &proof, &root8),
        verify_inclusion(0, 4, &l[0], &proof, &root8),
        verify_inclusion(0, 16, &l[0], &proof, &root8),
        verify_inclusion(0, 8, &l[0], &proof[..2], &root8),
        verify_inclusion(0, 8, &l[0], &[&proof[..], &[proof[0]]].concat(), &root8),
        verify_inclusion(
            0,
            8,
            &l[0],
            &{
                let mut p = proof.clone();
                p[1][3] ^= 0x10;
                p
            },
            &root8,
        ),
        verify_inclusion(0, 8, &l[0], &proof, &h(ROOTS[7])),
        verify_inclusion(0, 8, &l[0], &proof, &empty_root()),
        verify_inclusion(8, 8, &l[0], &proof, &root8),
    ];
    for (i, r) in wrong.iter().enumerate() {
        assert!(r.is_err(), "case {i} verified");
    }
    // A trailing empty component is not a hash at all.
    let raw: Vec<Vec<u8>> = proof.iter().map(|p| p.to_vec()).chain([vec![]]).collect();
    assert_eq!(hashes(&raw), Err(ProofError::NotAHash(0)));
}

/// (size1, size2, proof) of the reference consistency cases.
fn consistency_cases() -> Vec<(u64, u64, Vec<Hash>)> {
    vec![
        (
            1,
            8,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ],
        ),
        (
            6,
            8,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
        (
            2,
            5,
            vec![
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            ],
        ),
        (
            6,
            7,
            vec![
                h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ],
        ),
    ]
}

#[test]
fn consistency_proofs_are_the_reference_ones_and_verify() {
    let l = leaves();
    for (m, n, proof) in consistency_cases() {
        let made = consistency_proof(m as usize, &l[..n as usize]).expect("made");
        assert_eq!(made, proof, "{m} -> {n}");
        verify_consistency(m, n, &proof, &h(ROOTS[m as usize]), &h(ROOTS[n as usize]))
            .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
    }
    // Every pair of sizes 1..=8 proves consistent with what the tree makes.
    let roots: Vec<Hash> = ROOTS.iter().map(|r| h(r)).collect();
    for n in 1..=8usize {
        for (m, first) in roots.iter().enumerate().take(n + 1).skip(1) {
            let p = consistency_proof(m, &l[..n]).expect("made");
            verify_consistency(m as u64, n as u64, &p, first, &roots[n])
                .unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
        }
    }
}

#[test]
fn consistency_proofs_that_must_be_rejected() {
    let (_, _, proof) = consistency_cases().remove(0);
    let (r1, r8) = (h(ROOTS[1]), h(ROOTS[8]));
    let wrong = [
        // swapped roots, wrong first root, wrong second root
        verify_consistency(1, 8, &proof, &r8, &r1),
        verify_consistency(1, 8, &proof, &h(ROOTS[2]), &r8),
        verify_consistency(1, 8, &proof, &r1, &h(ROOTS[7])),
        // truncated, empty, a trailing hash, a preceding first root
        verify_consistency(1, 8, &proof[..2], &r1, &r8),
        verify_consistency(1, 8, &[], &r1, &r8),
        verify_consistency(1, 8, &[&proof[..], &[proof[0]]].concat(), &r1, &r8),
        verify_consistency(1, 8, &[&[r1][..], &proof[..]].concat(), &r1, &r8),
        // sizes changed: size1 + 1, size2 / 2, size2 * 2
        verify_consistency(2, 8, &proof, &r1, &r8),
        verify_consistency(1, 4, &proof, &r1, &r8),
        verify_consistency(1, 16, &proof, &r1, &r8),
        // one bit of a component changed
        verify_consistency(
            1,
            8,
            &{
                let mut p = proof.clone();
                p[2][4] ^= 0x10;
                p
            },
            &r1,
            &r8,
        ),
    ];
    for (i, r) in wrong.iter().enumerate() {
        assert!(r.is_err(), "case {i} verified");
    }
    // The edge cases: from the empty tree, size1 above size2, equal sizes.
    let empty = empty_root();
    assert_eq!(
        verify_consistency(0, 0, &[], &empty, &empty),
        Err(ProofError::FromEmptyTree)
    );
    assert_eq!(
        verify_consistency(0, 8, &[], &empty, &r8),
        Err(ProofError::FromEmptyTree)
    );
    assert!(matches!(
        verify_consistency(8, 1, &proof, &r8, &r1),
        Err(ProofError::SizesReversed { .. })
    ));
    assert_eq!(verify_consistency(8, 8, &[], &r8, &r8), Ok(()));
    assert_eq!(
        verify_consistency(8, 8, &[], &r8, &r1),
        Err(ProofError::RootMismatch)
    );
    assert_eq!(
        verify_consistency(1, 1, &[r1], &r1, &r1),
        Err(ProofError::WrongLength),
        "equal sizes with a proof"
    );
}

#[test]
fn the_kept_tree_answers_the_reference_roots_and_proofs() {
    let l = leaves();
    let mut t = Tree::new();
    assert_eq!(t.root(0), Ok(h(ROOTS[0])));
    for (i, leaf) in l.iter().enumerate() {
        assert_eq!(t.push(*leaf), i);
        assert_eq!(t.root(i + 1), Ok(h(ROOTS[i + 1])), "size {}", i + 1);
    }
    for (index, size, proof) in inclusion_cases() {
        assert_eq!(t.inclusion_proof(index as usize, size as usize), Ok(proof));
    }
    for (m, n, proof) in consistency_cases() {
        assert_eq!(t.consistency_proof(m as usize, n as usize), Ok(proof));
    }
    assert!(t.root(9).is_err());
    assert!(t.inclusion_proof(8, 8).is_err());
    assert!(t.consistency_proof(3, 9).is_err());
}

#[test]
fn the_kept_tree_agrees_with_the_definitions_at_every_size_to_70() {
    // Past the published vectors: the definitions (checked against them above) at every size.
    let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let mut t = Tree::new();
    for (i, leaf) in leaves.iter().enumerate() {
        t.push(*leaf);
        let n = i + 1;
        let r = root(&leaves[..n]);
        assert_eq!(t.root(n), Ok(r));
        for m in [0, n / 2, n - 1] {
            let p = t.inclusion_proof(m, n).expect("inclusion");
            assert_eq!(p, inclusion_proof(m, &leaves[..n]).expect("definition"));
            verify_inclusion(m as u64, n as u64, &leaves[m], &p, &r).expect("verifies");
        }
        for m in [1, n / 3 + 1, n] {
            if m > n {
                continue;
            }
            let p = t.consistency_proof(m, n).expect("consistency");
            assert_eq!(p, consistency_proof(m, &leaves[..n]).expect("definition"));
            verify_consistency(m as u64, n as u64, &p, &root(&leaves[..m]), &r).expect("verifies");
        }
    }
}

/// A tree read back from its serialized leaves answers the same roots and proofs.
#[test]
fn a_tree_serializes_as_its_leaves_and_rebuilds() {
    let mut t = Tree::new();
    for i in 0..37u8 {
        t.push(leaf_hash(&[i]));
    }
    let json = serde_json::to_string(&t).expect("serializes");
    let back: Tree = serde_json::from_str(&json).expect("reads back");
    assert_eq!(back.size(), 37);
    for size in [1, 8, 21, 37] {
        assert_eq!(back.root(size), t.root(size));
        assert_eq!(back.inclusion_proof(3, size), t.inclusion_proof(3, size));
    }
    assert_eq!(back.consistency_proof(5, 37), t.consistency_proof(5, 37));
    assert_eq!(back.leaf(36), Some(leaf_hash(&[36])));
}
