//! Signed checkpoints and RFC 9162 proofs against them.

use flotilla_proto::compliance::v1 as pb;
use flotilla_runtime::kit::status;
use tonic::{Code, Status};

use crate::app::Ledger;
use crate::codec::checkpoint_pb;
use crate::domain::{Checkpoint, Compliance};

fn signed(s: &Compliance, size: u64) -> Result<Checkpoint, Status> {
    s.checkpoint(size).cloned().ok_or_else(|| {
        if size == 0 {
            status(
                Code::FailedPrecondition,
                "no checkpoint is signed yet; call SignCheckpoint (or wait for the scheduler)",
            )
        } else {
            status(
                Code::NotFound,
                &format!(
                    "no checkpoint of size {size} is signed; ListCheckpoints shows the sizes that are"
                ),
            )
        }
    })
}

pub fn checkpoint(ledger: &Ledger, size: u64) -> Result<pb::CheckpointSigned, Status> {
    ledger.query(|s| signed(s, size).map(|c| checkpoint_pb(&c)))
}

pub fn inclusion(
    ledger: &Ledger,
    r: pb::GetInclusionProofRequest,
) -> Result<pb::InclusionProof, Status> {
    use pb::get_inclusion_proof_request::Event as Locator;
    ledger.query(|s| {
        let index = match r.event {
            None => {
                return Err(status(
                    Code::InvalidArgument,
                    "event: name the event by its ledger index, its id or its service and position",
                ));
            }
            Some(Locator::Index(i)) => i,
            Some(Locator::EventId(id)) => {
                let id: uuid::Uuid = id.parse().map_err(|_| {
                    status(
                        Code::InvalidArgument,
                        &format!(
                            "event_id: {} is not a uuid",
                            flotilla_core::names::shown(&id)
                        ),
                    )
                })?;
                *s.by_event.get(&id).ok_or_else(|| {
                    status(Code::NotFound, &format!("event {id} is not in the ledger"))
                })?
            }
            Some(Locator::Position(p)) => s.leaf_at(&p.service, p.sequence).ok_or_else(|| {
                status(
                    Code::NotFound,
                    &format!(
                        "position {} of {} is not in the ledger",
                        p.sequence,
                        flotilla_core::names::shown(&p.service)
                    ),
                )
            })?,
        };
        let cp = signed(s, r.tree_size)?;
        if index >= cp.size {
            return Err(status(
                Code::FailedPrecondition,
                &format!(
                    "leaf {index} is not in the checkpoint of size {}; wait for a newer checkpoint or sign one",
                    cp.size
                ),
            ));
        }
        let entry = &s.entries[index as usize];
        let leaf = crate::domain::SourceEvent::leaf_of(entry).encode();
        let hashes = s
            .tree
            .inclusion_proof(index as usize, cp.size as usize)
            .map_err(|e| status(Code::Internal, &e.to_string()))?;
        Ok(pb::InclusionProof {
            index,
            tree_size: cp.size,
            leaf_hash: flotilla_transparency::merkle::leaf_hash(&leaf).to_vec(),
            leaf,
            hashes: hashes.iter().map(|h| h.to_vec()).collect(),
            checkpoint: cp.note,
        })
    })
}

pub fn consistency(
    ledger: &Ledger,
    r: pb::GetConsistencyProofRequest,
) -> Result<pb::ConsistencyProof, Status> {
    ledger.query(|s| {
        if r.first == 0 {
            return Err(status(
                Code::InvalidArgument,
                "first: a consistency proof needs a first checkpoint of size 1 or more",
            ));
        }
        let first = signed(s, r.first)?;
        let second = signed(s, r.second)?;
        if second.size < first.size {
            return Err(status(
                Code::InvalidArgument,
                &format!(
                    "second: size {} is below the first, {}",
                    second.size, first.size
                ),
            ));
        }
        let hashes = s
            .tree
            .consistency_proof(first.size as usize, second.size as usize)
            .map_err(|e| status(Code::Internal, &e.to_string()))?;
        Ok(pb::ConsistencyProof {
            first: first.size,
            second: second.size,
            hashes: hashes.iter().map(|h| h.to_vec()).collect(),
            first_checkpoint: first.note,
            second_checkpoint: second.note,
        })
    })
}
