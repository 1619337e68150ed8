//! Retention policies, legal holds and erasures (crypto-shredding) at the edge: subjects come
//! in as people name them (an e-mail) or as key ids, and are kept only as key ids.

use flotilla_core::personal::KeyId;
use flotilla_proto::compliance::v1 as pb;
use flotilla_runtime::kit::{Caller, status};
use tonic::{Code, Status};
use uuid::Uuid;

use super::ComplianceApi;
use crate::domain::{Command, DataClass, Erasure, LegalHold, ReleaseLegalHold, Timestamp};
use crate::retention_pb::*;

fn invalid(field: &str, why: &str) -> Status {
    status(Code::InvalidArgument, &format!("{field}: {why}"))
}

/// A subject given as a key id (32 hex digits, as answers show them).
fn key_id_in(s: &str) -> Option<Uuid> {
    (s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| Uuid::try_parse(s).ok())
        .flatten()
}

fn keyring_down(e: impl std::fmt::Display) -> Status {
    status(
        Code::Unavailable,
        &format!("the keyring is unavailable ({e}); retry shortly, or check keyring_url"),
    )
}

fn class(c: Option<pb::DataClass>, field: &str) -> Result<DataClass, Status> {
    let c = class_of(c);
    for t in &c.event_types {
        if !t.starts_with("flotilla.") {
            return Err(invalid(
                &format!("{field}.event_types"),
                &format!(
                    "{} is not a flotilla event type or prefix",
                    flotilla_core::names::shown(t)
                ),
            ));
        }
    }
    Ok(c)
}

impl ComplianceApi {
    /// The key a subject is named by: who it is (their live key), else a key id that the
    /// keyring or the ledger knows (an erased subject's, to finish its erasure). None: unknown.
    async fn subject_key(&self, subject: &str) -> Result<Option<Uuid>, Status> {
        if let Some(k) = self
            .ctx
            .personal
            .find(subject)
            .await
            .map_err(keyring_down)?
        {
            return Ok(Some(k.0));
        }
        let Some(id) = key_id_in(subject) else {
            return Ok(None);
        };
        let known = self.ledger.query(|s| {
            s.retention.subjects.contains_key(&id) || s.retention.erasures.contains_key(&id)
        }) || self
            .ctx
            .personal
            .keyring()
            .key(KeyId(id))
            .await
            .map_err(keyring_down)?
            .is_some();
        Ok(known.then_some(id))
    }

    pub(super) async fn set_policy(
        &self,
        call: &Caller,
        r: pb::SetRetentionPolicyRequest,
    ) -> Result<pb::RetentionPolicy, Status> {
        let p = r.policy.ok_or_else(|| invalid("policy", "is missing"))?;
        let regulation = regulation_of(p.regulation)
            .ok_or_else(|| invalid("policy.regulation", "is not SOX, HIPAA, GDPR or INTERNAL"))?;
        let mut policy = policy_of(pb::RetentionPolicy {
            set_by: call.metadata().actor,
            set_at: None,
            ..p.clone()
        });
        policy.regulation = regulation;
        policy.data_class = class(p.data_class, "policy.data_class")?;
        policy.set_at = Timestamp::now();
        let name = policy.name.clone();
        self.ledger
            .app()
            .execute(Command::SetRetentionPolicy(policy), call.metadata())
            .await?;
        self.ledger
            .query(|s| s.retention.policies.get(&name).map(policy_pb))
            .ok_or_else(|| {
                status(
                    Code::Unavailable,
                    "the policy is not in the state yet; read it again",
                )
            })
    }

    pub(super) fn retention(&self) -> pb::Retention {
        self.ledger.query(|s| {
            let r = &s.retention;
            pb::Retention {
                policies: r.policies.values().map(policy_pb).collect(),
                holds: r.holds.values().map(hold_pb).collect(),
                erasures: r.erasures.values().map(erasure_pb).collect(),
                subjects_seen: r.subjects.len() as u64,
            }
        })
    }

    pub(super) async fn place_hold(
        &self,
        call: &Caller,
        r: pb::PlaceLegalHoldRequest,
    ) -> Result<pb::LegalHold, Status> {
        let h = r.hold.ok_or_else(|| invalid("hold", "is missing"))?;
        let mut subjects = Vec::new();
        for s in &h.subjects {
            if s.is_empty() || s.len() > 256 {
                return Err(invalid(
                    "hold.subjects",
                    "holds an empty subject or one over 256 bytes",
                ));
            }
            let id = match self.subject_key(s).await? {
                Some(id) => id,
                // Their key is made now if they have none: the hold covers what comes later.
                None => self.ctx.personal.key_id(s).await.map_err(keyring_down)?.0,
            };
            subjects.push(id);
        }
        let hold = LegalHold {
            id: h.id.clone(),
            matter: h.matter,
            data_class: class(h.data_class, "hold.data_class")?,
            subjects,
            placed_by: call.metadata().actor,
            placed_at: Timestamp::now(),
            released_by: String::new(),
            released_at: None,
        };
        self.ledger
            .app()
            .execute(Command::PlaceLegalHold(hold), call.metadata())
            .await?;
        self.hold(&h.id)
    }

    fn hold(&self, id: &str) -> Result<pb::LegalHold, Status> {
        self.ledger
            .query(|s| s.retention.holds.get(id).map(hold_pb))
            .ok_or_else(|| {
                status(
                    Code::Unavailable,
                    "the hold is not in the state yet; read it again",
                )
            })
    }

    pub(super) async fn release_hold(
        &self,
        call: &Caller,
        r: pb::ReleaseLegalHoldRequest,
    ) -> Result<pb::LegalHold, Status> {
        if r.id.is_empty() {
            return Err(invalid("id", "is empty"));
        }
        let c = ReleaseLegalHold {
            id: r.id.clone(),
            by: call.metadata().actor,
            at: Timestamp::now(),
        };
        self.ledger
            .app()
            .execute(Command::ReleaseLegalHold(c), call.metadata())
            .await?;
        self.hold(&r.id)
    }

    pub(super) async fn erase(
        &self,
        call: &Caller,
        r: pb::EraseSubjectRequest,
    ) -> Result<pb::Erasure, Status> {
        if r.subject.is_empty() {
            return Err(invalid(
                "subject",
                "is empty; name the person (e.g. their e-mail)",
            ));
        }
        let Some(key) = self.subject_key(&r.subject).await?.map(KeyId) else {
            return Err(status(
                Code::NotFound,
                "no personal data of this subject is held (no live key): nothing to erase",
            ));
        };
        let erasure = Erasure {
            subject: key.0,
            reason: r.reason,
            request_ref: r.request_ref,
            erased_by: call.metadata().actor,
            erased_at: Timestamp::now(),
            automatic: false,
        };
        let done = self.erasures.erase(erasure, call.metadata()).await?;
        tracing::info!(subject_key = %key, "subject erased");
        Ok(erasure_pb(&done))
    }
}
