//! `flotilla store export` and `flotilla store import`: a service's store as a portable file and
//! back. The file is JSON lines: a manifest first (the head position and hash, how many of
//! each row follow, the columns), then every event with every column in position order, then
//! the idempotency keys (so retried commands and redelivered events are still applied once)
//! and the relays' checkpoints. Snapshots are left out (the service rebuilds them from the
//! events), and so are leases (they belong to running processes).
//!
//! Import rebuilds an empty PostgreSQL store from the file in one transaction: every event's
//! position, link and hash is checked as it is read, and the chain must end at the manifest's
//! head, or nothing is kept.

use std::io::{BufRead, Write};
use std::path::Path;

use base64::Engine;
use flotilla_core::chain::{ChainHead, Hash};
use flotilla_core::event::{Metadata, RecordedEvent, Timestamp};
use flotilla_core::ids::{EventId, StreamId};
use flotilla_store::{IdempotencyRow, PgStore};
use serde::{Deserialize, Serialize};

use crate::output::progress;

/// What the file's first line says.
pub const FORMAT: &str = "flotilla-store-export";
pub const VERSION: u32 = 1;

/// The event columns, in the order each event line carries them.
pub const EVENT_COLUMNS: [&str; 16] = [
    "global_position",
    "stream_id",
    "stream_version",
    "event_id",
    "event_type",
    "schema_version",
    "payload",
    "actor",
    "business_unit",
    "correlation_id",
    "causation_id",
    "traceparent",
    "command_id",
    "recorded_at_us",
    "prev_hash",
    "hash",
];

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub service: String,
    pub schema: String,
    pub exported_at_us: i64,
    pub head_position: u64,
    /// Hex SHA-256 of the last event: the chain's commitment to every event before it.
    pub head_hash: String,
    pub events: u64,
    pub idempotency_keys: u64,
    pub checkpoints: u64,
    pub event_columns: Vec<String>,
}

/// One event with every column (payload base64, hashes hex).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct EventLine {
    global_position: u64,
    stream_id: String,
    stream_version: u64,
    event_id: uuid::Uuid,
    event_type: String,
    schema_version: u32,
    payload: String,
    actor: String,
    business_unit: String,
    correlation_id: Option<uuid::Uuid>,
    causation_id: Option<uuid::Uuid>,
    traceparent: Option<String>,
    command_id: Option<uuid::Uuid>,
    recorded_at_us: i64,
    prev_hash: String,
    hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeyLine {
    key: String,
    stream_id: Option<String>,
    first_position: Option<u64>,
    last_position: Option<u64>,
    stream_version: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Event(EventLine),
    IdempotencyKey(KeyLine),
    Checkpoint { name: String, position: u64 },
}

impl From<&RecordedEvent> for EventLine {
    fn from(e: &RecordedEvent) -> Self {
        Self {
            global_position: e.global_position,
            stream_id: e.stream_id.as_str().to_owned(),
            stream_version: e.stream_version,
            event_id: e.event_id.0,
            event_type: e.event_type.clone(),
            schema_version: e.schema_version,
            payload: base64::engine::general_purpose::STANDARD.encode(&e.payload),
            actor: e.metadata.actor.clone(),
            business_unit: e.metadata.business_unit.clone(),
            correlation_id: e.metadata.correlation_id,
            causation_id: e.metadata.causation_id,
            traceparent: e.metadata.traceparent.clone(),
            command_id: e.metadata.command_id,
            recorded_at_us: e.recorded_at.0,
            prev_hash: e.prev_hash.to_hex(),
            hash: e.hash.to_hex(),
        }
    }
}

fn hash_of(hex: &str, what: &str, position: u64) -> anyhow::Result<Hash> {
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| anyhow::anyhow!("position {position}: {what} is not 64 hex digits"))?;
    Hash::from_slice(&bytes).ok_or_else(|| anyhow::anyhow!("position {position}: bad {what}"))
}

impl EventLine {
    fn into_event(self) -> anyhow::Result<RecordedEvent> {
        let p = self.global_position;
        Ok(RecordedEvent {
            global_position: p,
            stream_id: StreamId::parse(&self.stream_id)
                .map_err(|e| anyhow::anyhow!("position {p}: stream id: {e}"))?,
            stream_version: self.stream_version,
            event_id: EventId(self.event_id),
            event_type: self.event_type,
            schema_version: self.schema_version,
            payload: base64::engine::general_purpose::STANDARD
                .decode(&self.payload)
                .map_err(|e| anyhow::anyhow!("position {p}: payload is not base64: {e}"))?,
            metadata: Metadata {
                actor: self.actor,
                business_unit: self.business_unit,
                correlation_id: self.correlation_id,
                causation_id: self.causation_id,
                traceparent: self.traceparent,
                command_id: self.command_id,
            },
            recorded_at: Timestamp(self.recorded_at_us),
            prev_hash: hash_of(&self.prev_hash, "prev_hash", p)?,
            hash: hash_of(&self.hash, "hash", p)?,
        })
    }
}

fn postgres_only(url: &str, what: &str) -> anyhow::Result<()> {
    if !url.starts_with("postgres") {
        anyhow::bail!(
            "store {what} works on PostgreSQL stores (postgres://…); a flotilla up store is one SQLite file per service: stop it and copy the file"
        );
    }
    Ok(())
}

/// Writes `service`'s store (schema `schema` at `url`) to `out`; the manifest.
pub async fn export(
    url: &str,
    schema: &str,
    service: &str,
    out: &Path,
) -> anyhow::Result<Manifest> {
    postgres_only(url, "export")?;
    let store = PgStore::connect_existing(url, schema)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the store in schema {schema} at {url}: {e}"))?;
    use flotilla_core::store::EventStore;
    // Everything up to the head as it is now; events appended meanwhile are for the next export
    // (stop the service's writers for an export of its last state).
    let head = store.head().await?;
    let keys: Vec<IdempotencyRow> = store
        .idempotency_rows()
        .await?
        .into_iter()
        .filter(|k| k.last_position.is_none_or(|p| p <= head.position))
        .collect();
    let checkpoints: Vec<(String, u64)> = store
        .checkpoints()
        .await?
        .into_iter()
        .map(|(n, p)| (n, p.min(head.position)))
        .collect();
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        service: service.into(),
        schema: schema.into(),
        exported_at_us: Timestamp::now().0,
        head_position: head.position,
        head_hash: head.hash.to_hex(),
        events: head.position,
        idempotency_keys: keys.len() as u64,
        checkpoints: checkpoints.len() as u64,
        event_columns: EVENT_COLUMNS.iter().map(|c| (*c).to_owned()).collect(),
    };
    let file = std::fs::File::create(out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut w, &manifest)?;
    w.write_all(b"\n")?;
    let bar = progress(head.position, "exporting");
    let mut next = 1;
    while next <= head.position {
        let want = (head.position - next + 1).min(5_000) as usize;
        let page = store.read_all(next, want).await?;
        let Some(last) = page.last().map(|e| e.global_position) else {
            anyhow::bail!(
                "the store ends at position {} before its head {}",
                next - 1,
                head.position
            );
        };
        for e in &page {
            serde_json::to_writer(&mut w, &Line::Event(EventLine::from(e)))?;
            w.write_all(b"\n")?;
        }
        bar.set_position(last);
        next = last + 1;
    }
    bar.finish_and_clear();
    for k in keys {
        let line = Line::IdempotencyKey(KeyLine {
            key: k.key,
            stream_id: k.stream_id,
            first_position: k.first_position,
            last_position: k.last_position,
            stream_version: k.stream_version,
        });
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")?;
    }
    for (name, position) in checkpoints {
        serde_json::to_writer(&mut w, &Line::Checkpoint { name, position })?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(manifest)
}

/// Rebuilds the empty store in `schema` at `url` from the file at `input`; the manifest.
pub async fn import(url: &str, schema: &str, input: &Path) -> anyhow::Result<Manifest> {
    postgres_only(url, "import")?;
    let file = std::fs::File::open(input)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", input.display()))?;
    let mut lines = std::io::BufReader::new(file).lines();
    let first = lines
        .next()
        .ok_or_else(|| anyhow::anyhow!("{} is empty", input.display()))??;
    let manifest: Manifest = serde_json::from_str(&first).map_err(|e| {
        anyhow::anyhow!(
            "{} does not start with a store export's manifest: {e}",
            input.display()
        )
    })?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        anyhow::bail!(
            "{} is {} version {}; this build reads {FORMAT} version {VERSION}",
            input.display(),
            manifest.format,
            manifest.version
        );
    }
    let head = ChainHead {
        position: manifest.head_position,
        hash: hash_of(
            &manifest.head_hash,
            "the manifest's head hash",
            manifest.head_position,
        )?,
    };
    let store = PgStore::connect(url, schema)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open schema {schema} at {url}: {e}"))?;
    let mut restore = store.restore().await?;
    let bar = progress(manifest.events, "importing");
    let mut page = Vec::with_capacity(1_000);
    let mut keys = Vec::new();
    let mut checkpoints = Vec::new();
    for (n, line) in lines.enumerate() {
        let line = line?;
        let parsed: Line = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("line {} of {}: {e}", n + 2, input.display()))?;
        match parsed {
            Line::Event(e) => {
                if !keys.is_empty() || !checkpoints.is_empty() {
                    anyhow::bail!("line {}: an event after the keys and checkpoints", n + 2);
                }
                page.push(e.into_event()?);
                if page.len() == 1_000 {
                    restore.events(&page).await?;
                    bar.set_position(restore.checked());
                    page.clear();
                }
            }
            Line::IdempotencyKey(k) => keys.push(IdempotencyRow {
                key: k.key,
                stream_id: k.stream_id,
                first_position: k.first_position,
                last_position: k.last_position,
                stream_version: k.stream_version,
            }),
            Line::Checkpoint { name, position } => checkpoints.push((name, position)),
        }
    }
    restore.events(&page).await?;
    bar.finish_and_clear();
    if restore.checked() != manifest.events
        || keys.len() as u64 != manifest.idempotency_keys
        || checkpoints.len() as u64 != manifest.checkpoints
    {
        anyhow::bail!(
            "{} holds {} events, {} keys and {} checkpoints; its manifest names {}, {} and {}: the file is incomplete",
            input.display(),
            restore.checked(),
            keys.len(),
            checkpoints.len(),
            manifest.events,
            manifest.idempotency_keys,
            manifest.checkpoints
        );
    }
    restore.finish(head, &keys, &checkpoints).await?;
    Ok(manifest)
}
