//! The transparency-log ecosystem's formats, so a third party can check Flotilla's ledger with
//! standard tools: `merkle`, the RFC 6962 / RFC 9162 Merkle tree hash, and its inclusion and
//! consistency proofs (made and verified).

pub mod merkle;
