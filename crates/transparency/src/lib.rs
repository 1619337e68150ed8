//! The transparency-log ecosystem's formats, so a third party can check Flotilla's ledger with
//! standard tools: `merkle`, the RFC 6962 / RFC 9162 Merkle tree hash and its inclusion and
//! consistency proofs (made and verified); `note`, C2SP signed notes with Ed25519 keys;
//! `checkpoint`, C2SP tlog checkpoints signed as notes; `ledger`, the compliance ledger's leaves
//! and the events they stand for; `bundle`, an audit bundle (a signed
//! checkpoint and entries with their proofs) checked offline with the verifier key.

pub mod bundle;
pub mod checkpoint;
pub mod ledger;
pub mod merkle;
pub mod note;
