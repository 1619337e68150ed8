//! Retention's messages: the domain's policies, holds and erasures to and from protobuf (for
//! stored events and the API alike). Decoding takes what was stored as it is.

use flotilla_proto::compliance::v1 as pb;
use flotilla_runtime::kit::time::{stored, to_proto};
use uuid::Uuid;

use crate::domain::{DataClass, Erasure, LegalHold, Regulation, ReleaseLegalHold, RetentionPolicy};

pub fn regulation_pb(r: Regulation) -> pb::Regulation {
    match r {
        Regulation::Sox => pb::Regulation::Sox,
        Regulation::Hipaa => pb::Regulation::Hipaa,
        Regulation::Gdpr => pb::Regulation::Gdpr,
        Regulation::Internal => pb::Regulation::Internal,
    }
}

/// A stored regulation (an unknown number reads as internal: it was accepted once).
pub fn regulation_of(n: i32) -> Option<Regulation> {
    match pb::Regulation::try_from(n) {
        Ok(pb::Regulation::Sox) => Some(Regulation::Sox),
        Ok(pb::Regulation::Hipaa) => Some(Regulation::Hipaa),
        Ok(pb::Regulation::Gdpr) => Some(Regulation::Gdpr),
        Ok(pb::Regulation::Internal) => Some(Regulation::Internal),
        _ => None,
    }
}

pub fn class_pb(c: &DataClass) -> pb::DataClass {
    pb::DataClass {
        services: c.services.clone(),
        event_types: c.event_types.clone(),
        business_unit: c.business_unit.clone(),
    }
}

pub fn class_of(c: Option<pb::DataClass>) -> DataClass {
    let c = c.unwrap_or_default();
    DataClass {
        services: c.services,
        event_types: c.event_types,
        business_unit: c.business_unit,
    }
}

pub fn policy_pb(p: &RetentionPolicy) -> pb::RetentionPolicy {
    pb::RetentionPolicy {
        name: p.name.clone(),
        regulation: regulation_pb(p.regulation) as i32,
        data_class: Some(class_pb(&p.data_class)),
        keep_days: p.keep_days,
        personal_data_days: p.personal_data_days,
        set_by: p.set_by.clone(),
        set_at: Some(to_proto(p.set_at)),
    }
}

pub fn policy_of(p: pb::RetentionPolicy) -> RetentionPolicy {
    RetentionPolicy {
        name: p.name,
        regulation: regulation_of(p.regulation).unwrap_or(Regulation::Internal),
        data_class: class_of(p.data_class),
        keep_days: p.keep_days,
        personal_data_days: p.personal_data_days,
        set_by: p.set_by,
        set_at: stored(p.set_at.as_ref()),
    }
}

pub fn hold_pb(h: &LegalHold) -> pb::LegalHold {
    pb::LegalHold {
        id: h.id.clone(),
        matter: h.matter.clone(),
        data_class: Some(class_pb(&h.data_class)),
        subjects: h.subjects.iter().map(|s| s.simple().to_string()).collect(),
        placed_by: h.placed_by.clone(),
        placed_at: Some(to_proto(h.placed_at)),
        released_by: h.released_by.clone(),
        released_at: h.released_at.map(to_proto),
    }
}

pub fn hold_of(h: pb::LegalHold) -> LegalHold {
    LegalHold {
        id: h.id,
        matter: h.matter,
        data_class: class_of(h.data_class),
        subjects: h
            .subjects
            .iter()
            .filter_map(|s| Uuid::try_parse(s).ok())
            .collect(),
        placed_by: h.placed_by,
        placed_at: stored(h.placed_at.as_ref()),
        released_by: h.released_by,
        released_at: h.released_at.as_ref().map(|t| stored(Some(t))),
    }
}

pub fn released_pb(r: &ReleaseLegalHold) -> pb::LegalHoldReleased {
    pb::LegalHoldReleased {
        id: r.id.clone(),
        released_by: r.by.clone(),
        released_at: Some(to_proto(r.at)),
    }
}

pub fn released_of(r: pb::LegalHoldReleased) -> ReleaseLegalHold {
    ReleaseLegalHold {
        id: r.id,
        by: r.released_by,
        at: stored(r.released_at.as_ref()),
    }
}

pub fn erasure_pb(e: &Erasure) -> pb::Erasure {
    pb::Erasure {
        subject_key: e.subject.simple().to_string(),
        reason: e.reason.clone(),
        request_ref: e.request_ref.clone(),
        erased_by: e.erased_by.clone(),
        erased_at: Some(to_proto(e.erased_at)),
        automatic: e.automatic,
    }
}

pub fn erasure_of(e: pb::Erasure) -> Erasure {
    Erasure {
        subject: Uuid::try_parse(&e.subject_key).unwrap_or_default(),
        reason: e.reason,
        request_ref: e.request_ref,
        erased_by: e.erased_by,
        erased_at: stored(e.erased_at.as_ref()),
        automatic: e.automatic,
    }
}
