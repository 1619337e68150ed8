//! The ledgered events, filtered: streamed in ledger order (`Replay`, resumable from an index)
//! and exported with their inclusion proofs as an audit bundle.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use flotilla_bus::{CloudEvent, EventParts};
use flotilla_core::decider::StoredEvents;
use flotilla_proto::compliance::v1 as pb;
use flotilla_runtime::kit::time::from_request;
use flotilla_runtime::kit::{Caller, status};
use flotilla_runtime::outbound::withhold;
use flotilla_transparency::bundle::{Bundle, FORMAT};
use flotilla_transparency::ledger::EventRecord;
use tonic::{Code, Status};

use crate::app::Ledger;
use crate::codec::ComplianceEvents;
use crate::domain::{Event, Ledgered, SourceEvent, Timestamp};

/// Events read from the store per page.
const PAGE: usize = 1_000;
/// Most entries one bundle holds.
pub const MAX_BUNDLE_ENTRIES: usize = 10_000;

/// Which ledgered events a replay or an export takes.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub services: Vec<String>,
    pub streams: Vec<String>,
    pub event_types: Vec<String>,
    pub business_unit: String,
    pub from_time: Option<Timestamp>,
    pub to_time: Option<Timestamp>,
    pub from_index: u64,
    pub limit: u64,
}

impl TryFrom<pb::ReplayRequest> for Filter {
    type Error = Status;

    fn try_from(r: pb::ReplayRequest) -> Result<Self, Status> {
        let time = |field: &str, t: Option<prost_types::Timestamp>| {
            t.map(|t| {
                from_request(&t)
                    .map_err(|e| status(Code::InvalidArgument, &format!("{field}: {e}")))
            })
            .transpose()
        };
        let f = Filter {
            from_time: time("from_time", r.from_time)?,
            to_time: time("to_time", r.to_time)?,
            services: r.services,
            streams: r.streams,
            event_types: r.event_types,
            business_unit: r.business_unit,
            from_index: r.from_index,
            limit: r.limit,
        };
        if let (Some(a), Some(b)) = (f.from_time, f.to_time)
            && b <= a
        {
            return Err(status(
                Code::InvalidArgument,
                "to_time: must be after from_time",
            ));
        }
        Ok(f)
    }
}

impl Filter {
    pub fn matches(&self, e: &SourceEvent) -> bool {
        let listed = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        // Event types may be prefixes ending in "." (a retention policy's data class).
        let typed = |list: &[String], v: &str| {
            list.is_empty()
                || list
                    .iter()
                    .any(|x| x == v || (x.ends_with('.') && v.starts_with(x.as_str())))
        };
        listed(&self.services, &e.service)
            && listed(&self.streams, &e.stream)
            && typed(&self.event_types, &e.event_type)
            && (self.business_unit.is_empty() || self.business_unit == e.metadata.business_unit)
            && self.from_time.is_none_or(|t| e.recorded_at >= t)
            && self.to_time.is_none_or(|t| e.recorded_at < t)
    }
}

/// The event as the buses carried it: the relay's CloudEvent of its fields (its digest, for
/// a withheld one).
pub fn cloud_event(e: &SourceEvent) -> pb::CloudEvent {
    let ce = CloudEvent::from_parts(
        e.source.clone(),
        &e.aggregate_type,
        EventParts {
            position: e.position,
            stream: &e.stream,
            stream_version: e.stream_version,
            event_id: e.id,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            payload: &e.payload,
            metadata: &e.metadata,
            recorded_at: e.recorded_at,
            prev_hash: &e.prev_hash,
            hash: &e.hash,
        },
    );
    let ce = if e.withheld { withhold(ce) } else { ce };
    pb::CloudEvent {
        id: ce.id,
        source: ce.source,
        r#type: ce.ty,
        subject: ce.subject.unwrap_or_default(),
        time: ce.time.unwrap_or_default(),
        datacontenttype: ce.datacontenttype.unwrap_or_default(),
        extensions: ce.extensions,
        data: ce.data,
    }
}

/// The event with every hashed field, for a bundle (none for a withheld event: it has no
/// fields to check).
pub fn event_record(e: &SourceEvent) -> Option<EventRecord> {
    let md = &e.metadata;
    (!e.withheld).then(|| EventRecord {
        service: e.service.clone(),
        position: e.position,
        stream: e.stream.clone(),
        stream_version: e.stream_version,
        id: e.id.to_string(),
        event_type: e.event_type.clone(),
        schema_version: e.schema_version,
        payload: STANDARD.encode(&e.payload),
        actor: md.actor.clone(),
        business_unit: md.business_unit.clone(),
        correlation_id: md.correlation_id.map(|u| u.to_string()),
        causation_id: md.causation_id.map(|u| u.to_string()),
        traceparent: md.traceparent.clone(),
        command_id: md.command_id.map(|u| u.to_string()),
        recorded_at_micros: e.recorded_at.0,
        prev_hash: e.prev_hash.to_hex(),
        hash: e.hash.to_hex(),
    })
}

/// The ledgered entries from `filter.from_index` to the ledger as it was when the walk began,
/// those that match and the caller may see, a store page at a time.
pub struct Walk<'a> {
    ledger: &'a Ledger,
    filter: &'a Filter,
    /// Whether the caller may see a business unit's events.
    sees: Box<dyn Fn(&str) -> bool + Send + Sync + 'a>,
    seen: HashMap<String, bool>,
    next: u64,
    end: u64,
    taken: u64,
}

impl<'a> Walk<'a> {
    pub fn new(
        ledger: &'a Ledger,
        filter: &'a Filter,
        sees: impl Fn(&str) -> bool + Send + Sync + 'a,
    ) -> Self {
        let (next, end) = ledger.query(|s| {
            (
                s.entries
                    .get(filter.from_index as usize)
                    .map_or(u64::MAX, |e| e.position),
                s.entries.last().map_or(0, |e| e.position),
            )
        });
        Self {
            ledger,
            filter,
            sees: Box::new(sees),
            seen: HashMap::new(),
            next,
            end,
            taken: 0,
        }
    }

    /// The matching entries of the next page; None once the walk is done.
    pub async fn page(&mut self) -> Result<Option<Vec<Ledgered>>, Status> {
        if self.next > self.end || (self.filter.limit > 0 && self.taken >= self.filter.limit) {
            return Ok(None);
        }
        let page = self
            .ledger
            .app()
            .store()
            .read_all(self.next, PAGE)
            .await
            .map_err(|e| status(Code::Unavailable, &format!("reading the ledger: {e}")))?;
        let Some(last) = page.last() else {
            return Ok(None);
        };
        self.next = last.global_position + 1;
        let mut out = Vec::new();
        for r in page {
            if r.global_position > self.end
                || (self.filter.limit > 0 && self.taken >= self.filter.limit)
            {
                self.next = u64::MAX;
                break;
            }
            let Ok(Some(Event::Ledgered(l))) =
                ComplianceEvents.decode(&r.event_type, r.schema_version, &r.payload)
            else {
                continue;
            };
            if !self.filter.matches(&l.event) {
                continue;
            }
            let sees = &self.sees;
            let unit = l.event.metadata.business_unit.clone();
            if !*self.seen.entry(unit).or_insert_with_key(|u| sees(u)) {
                continue;
            }
            self.taken += 1;
            out.push(*l);
        }
        Ok(Some(out))
    }
}

pub type Replayed = Pin<Box<dyn futures::Stream<Item = Result<pb::ReplayedEvent, Status>> + Send>>;

/// Streams the matching entries; a client that goes away stops the walk.
pub fn stream(ledger: Arc<Ledger>, filter: Filter, call: Caller) -> Replayed {
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(async move {
        let mut walk = Walk::new(&ledger, &filter, |u| call.sees(u));
        loop {
            match walk.page().await {
                Ok(Some(page)) => {
                    for l in page {
                        let item = pb::ReplayedEvent {
                            index: l.index,
                            service: l.event.service.clone(),
                            event: Some(cloud_event(&l.event)),
                            withheld: l.event.withheld,
                            content_matches: l.content_matches,
                            // Revealed on the way out.
                            actor: l.event.metadata.actor.clone(),
                        };
                        if tx.send(Ok(item)).await.is_err() {
                            return;
                        }
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}

/// A signed checkpoint and the matching entries below its size with their proofs and events.
pub async fn bundle(
    ledger: &Ledger,
    filter: Filter,
    tree_size: u64,
    call: &Caller,
) -> Result<pb::AuditBundle, Status> {
    let checkpoint = super::proofs::checkpoint(ledger, tree_size)?;
    let size = checkpoint.size;
    let mut picked: Vec<Ledgered> = Vec::new();
    let mut over = false;
    let mut walk = Walk::new(ledger, &filter, |u| call.sees(u));
    'pages: while let Some(page) = walk.page().await? {
        for l in page {
            if l.index >= size {
                break 'pages;
            }
            if picked.len() == MAX_BUNDLE_ENTRIES {
                over = true;
                break 'pages;
            }
            picked.push(l);
        }
    }
    if over {
        return Err(status(
            Code::ResourceExhausted,
            &format!(
                "more than {MAX_BUNDLE_ENTRIES} entries match; narrow the filter or export in parts with from_index and limit"
            ),
        ));
    }
    let entries = ledger.query(|s| {
        picked
            .iter()
            .map(|l| {
                let leaf = l.event.leaf().encode();
                let proof = s
                    .tree
                    .inclusion_proof(l.index as usize, size as usize)
                    .map_err(|e| status(Code::Internal, &e.to_string()))?;
                let mut entry = Bundle::entry(l.index, &leaf, &proof);
                // An event whose fields did not hash to its hash (alerted ALTERED when it came)
                // is proven by its leaf only: carrying it would fail the whole bundle.
                if l.content_matches {
                    entry.event = event_record(&l.event);
                }
                Ok(entry)
            })
            .collect::<Result<Vec<_>, Status>>()
    })?;
    let b = Bundle {
        format: FORMAT.to_owned(),
        checkpoint: checkpoint.note,
        entries,
    };
    let json = serde_json::to_vec_pretty(&b)
        .map_err(|e| status(Code::Internal, &format!("the bundle does not encode: {e}")))?;
    Ok(pb::AuditBundle {
        json,
        entries: b.entries.len() as u64,
        tree_size: size,
    })
}

#[cfg(test)]
mod tests {
    use flotilla_bus::{CloudEvent, Namespace};

    use super::*;
    use crate::domain::tests::event_at;

    /// A replayed event is the event a bus consumer got: same id, type, subject, time and
    /// extensions (and a digest for a withheld one).
    #[test]
    fn a_replayed_event_is_the_one_the_relay_published() {
        let ns = Namespace::new("test").expect("namespace");
        let mut e = event_at("governance", 3, flotilla_core::chain::Hash([4; 32]));
        e.metadata.traceparent =
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into());
        e.metadata.command_id = Some(uuid::Uuid::from_u128(77));
        let recorded = flotilla_core::event::RecordedEvent {
            global_position: e.position,
            stream_id: flotilla_core::ids::StreamId::parse(&e.stream).expect("stream"),
            stream_version: e.stream_version,
            event_id: flotilla_core::ids::EventId(e.id),
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            payload: e.payload.clone(),
            metadata: e.metadata.clone(),
            recorded_at: e.recorded_at,
            prev_hash: e.prev_hash,
            hash: e.hash,
        };
        let compare = |bus: CloudEvent, ours: pb::CloudEvent| {
            assert_eq!(ours.id, bus.id);
            assert_eq!(ours.r#type, bus.ty);
            assert_eq!(Some(ours.subject), bus.subject);
            assert_eq!(Some(ours.time), bus.time);
            assert_eq!(ours.extensions, bus.extensions);
            assert_eq!(ours.data, bus.data);
        };
        let mut published = CloudEvent::from_recorded(&ns, "governance", "release", &recorded);
        e.source = published.source.clone();
        compare(published.clone(), cloud_event(&e));

        published = flotilla_runtime::outbound::digest(&ns, "governance", "release", &recorded);
        e.withheld = true;
        e.payload.clear();
        compare(published, cloud_event(&e));
    }
}
