//! CloudEvents 1.0 in binary mode: the event's payload is the message body and its attributes
//! travel as headers (`ce_` on Kafka, `ce-` on NATS, plus `content-type`).
//!
//! Extensions: `traceparent`, `correlationid`, `causationid`, `sequence` (the global position in
//! the source store), `businessunit` (the unit the event is about; absent for platform-wide
//! events); Flotilla adds `aggregatetype` (the aggregate the event belongs to, as in the NATS
//! subject), `streamversion`, `schemaversion`, `actor`, `commandid`, `eventhash` and `prevhash`
//! so a consumer can check what it received against the source's hash chain.
//!
//! The bindings are followed as written: Kafka carries `datacontenttype` in `content-type`
//! (Kafka binding 3.2.1), NATS in `ce-datacontenttype` like every other attribute (NATS binding
//! 3.1.3.1; there a `Content-Type` of `application/cloudevents` means structured mode, which
//! Flotilla does not publish and refuses to read as binary). NATS values are percent-encoded
//! (3.1.3.2) and may arrive double-quoted from older senders.

use std::collections::BTreeMap;

use flotilla_core::event::RecordedEvent;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::BusError;
use crate::naming::Namespace;

/// Content type of Flotilla event payloads.
pub const PROTOBUF_CONTENT_TYPE: &str = "application/protobuf";
pub const SPEC_VERSION: &str = "1.0";

/// The fields of a stored event that its CloudEvent carries, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct EventParts<'a> {
    pub position: u64,
    pub stream: &'a str,
    pub stream_version: u64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub schema_version: u32,
    pub payload: &'a [u8],
    pub metadata: &'a flotilla_core::event::Metadata,
    pub recorded_at: flotilla_core::event::Timestamp,
    pub prev_hash: &'a flotilla_core::chain::Hash,
    pub hash: &'a flotilla_core::chain::Hash,
}

impl<'a> EventParts<'a> {
    pub fn of(e: &'a RecordedEvent) -> Self {
        Self {
            position: e.global_position,
            stream: e.stream_id.as_str(),
            stream_version: e.stream_version,
            event_id: e.event_id.0,
            event_type: &e.event_type,
            schema_version: e.schema_version,
            payload: &e.payload,
            metadata: &e.metadata,
            recorded_at: e.recorded_at,
            prev_hash: &e.prev_hash,
            hash: &e.hash,
        }
    }
}

/// A CloudEvent as Flotilla publishes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudEvent {
    pub id: String,
    pub source: String,
    pub ty: String,
    pub specversion: String,
    pub time: Option<String>,
    pub subject: Option<String>,
    pub datacontenttype: Option<String>,
    /// Extension attributes by name (lowercase).
    pub extensions: BTreeMap<String, String>,
    pub data: Vec<u8>,
}

fn rfc3339(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(micros as i128 * 1_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

const REQUIRED: [&str; 4] = ["id", "source", "type", "specversion"];

impl CloudEvent {
    /// Maps a stored event of `service` in a deployment to a CloudEvent; `aggregate` is the
    /// aggregate type of its stream.
    pub fn from_recorded(
        namespace: &Namespace,
        service: &str,
        aggregate: &str,
        e: &RecordedEvent,
    ) -> Self {
        Self::from_parts(namespace.source(service), aggregate, EventParts::of(e))
    }

    /// The CloudEvent of a stored event's fields, published from `source` (what
    /// [`CloudEvent::from_recorded`] gives; a consumer that kept the fields, such as a ledger,
    /// gives them back as the bus carried them).
    pub fn from_parts(source: String, aggregate: &str, e: EventParts<'_>) -> Self {
        let mut ext = BTreeMap::new();
        ext.insert("aggregatetype".into(), aggregate.to_owned());
        ext.insert("sequence".into(), e.position.to_string());
        ext.insert("streamversion".into(), e.stream_version.to_string());
        ext.insert("schemaversion".into(), e.schema_version.to_string());
        let md = e.metadata;
        if !md.business_unit.is_empty() {
            ext.insert("businessunit".into(), md.business_unit.clone());
        }
        if !md.actor.is_empty() {
            ext.insert("actor".into(), md.actor.clone());
        }
        if let Some(t) = &md.traceparent {
            ext.insert("traceparent".into(), t.clone());
        }
        if let Some(c) = md.correlation_id {
            ext.insert("correlationid".into(), c.to_string());
        }
        if let Some(c) = md.causation_id {
            ext.insert("causationid".into(), c.to_string());
        }
        if let Some(c) = md.command_id {
            ext.insert("commandid".into(), c.to_string());
        }
        ext.insert("eventhash".into(), e.hash.to_hex());
        ext.insert("prevhash".into(), e.prev_hash.to_hex());
        Self {
            id: e.event_id.to_string(),
            source,
            ty: e.event_type.to_owned(),
            specversion: SPEC_VERSION.into(),
            time: Some(rfc3339(e.recorded_at.0)),
            subject: Some(e.stream.to_owned()),
            datacontenttype: Some(PROTOBUF_CONTENT_TYPE.into()),
            extensions: ext,
            data: e.payload.to_vec(),
        }
    }

    /// The event id as a uuid (Flotilla ids are uuid v7).
    pub fn event_id(&self) -> Result<Uuid, BusError> {
        Uuid::parse_str(&self.id)
            .map_err(|e| BusError::Malformed(format!("ce id {:?} is not a uuid: {e}", self.id)))
    }

    /// The source store's global position (`sequence`), if present and numeric.
    pub fn sequence(&self) -> Option<u64> {
        self.extensions.get("sequence").and_then(|s| s.parse().ok())
    }

    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions.get(name).map(String::as_str)
    }

    /// Calls `f` with each binary-mode header (name, value) of a binding, without building
    /// intermediate collections: names of the attributes Flotilla sends are static, values are
    /// encoded only when they need it.
    pub fn each_header(
        &self,
        binding: Binding,
        mut f: impl FnMut(std::borrow::Cow<'static, str>, std::borrow::Cow<'_, str>),
    ) {
        let mut put = |attr: &str, value: &str| {
            f(header_name(binding, attr), binding.encode_value(value));
        };
        put("id", &self.id);
        put("source", &self.source);
        put("type", &self.ty);
        put("specversion", &self.specversion);
        if let Some(t) = &self.time {
            put("time", t);
        }
        if let Some(s) = &self.subject {
            put("subject", s);
        }
        for (k, v) in &self.extensions {
            put(k, v);
        }
        if let Some(ct) = &self.datacontenttype {
            f(
                std::borrow::Cow::Borrowed(binding.content_type_header()),
                binding.encode_value(ct),
            );
        }
    }

    /// Binary-mode headers in a protocol binding.
    pub fn to_headers(&self, binding: Binding) -> Vec<(String, String)> {
        let mut h = Vec::with_capacity(self.extensions.len() + 8);
        self.each_header(binding, |k, v| h.push((k.into_owned(), v.into_owned())));
        h
    }

    /// Rebuilds an event from binary-mode headers and body. Header names are matched
    /// case-insensitively; the four required attributes must be present.
    pub fn from_headers<'a>(
        binding: Binding,
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
        data: Vec<u8>,
    ) -> Result<Self, BusError> {
        let prefix = binding.prefix();
        let mut attrs: BTreeMap<String, String> = BTreeMap::new();
        let mut content_type = None;
        for (k, v) in headers {
            let lower = k.to_ascii_lowercase();
            if lower == "content-type" {
                if v.trim_start_matches('"')
                    .to_ascii_lowercase()
                    .starts_with("application/cloudevents")
                {
                    return Err(BusError::Malformed(format!(
                        "message is a structured-mode CloudEvent (content-type {v:?}); Flotilla reads binary mode only"
                    )));
                }
                // On Kafka it is the data's content type; on NATS that is ce-datacontenttype.
                if binding == Binding::Kafka {
                    content_type = Some(binding.decode_value(v)?);
                }
            } else if let Some(name) = lower.strip_prefix(prefix) {
                attrs.insert(name.to_owned(), binding.decode_value(v)?);
            }
        }
        for r in REQUIRED {
            if !attrs.contains_key(r) {
                return Err(BusError::Malformed(format!(
                    "message lacks required CloudEvents header {prefix}{r}"
                )));
            }
        }
        if let Some(ct) = attrs.remove("datacontenttype") {
            content_type = Some(ct);
        }
        let mut take = |k: &str| attrs.remove(k);
        let id = take("id").unwrap_or_default();
        let source = take("source").unwrap_or_default();
        let ty = take("type").unwrap_or_default();
        let specversion = take("specversion").unwrap_or_default();
        if specversion != SPEC_VERSION {
            return Err(BusError::Malformed(format!(
                "unsupported CloudEvents specversion {specversion:?}, expected 1.0"
            )));
        }
        let time = take("time");
        let subject = take("subject");
        Ok(Self {
            id,
            source,
            ty,
            specversion,
            time,
            subject,
            datacontenttype: content_type,
            extensions: attrs,
            data,
        })
    }
}

/// A CloudEvents protocol binding for binary mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binding {
    /// Kafka: `ce_<attr>` headers with UTF-8 values, `content-type` for `datacontenttype`.
    Kafka,
    /// NATS: `ce-<attr>` headers (`ce-datacontenttype` included) with percent-encoded values,
    /// so spaces, quotes, non-ASCII text and line breaks travel safely.
    Nats,
}

impl Binding {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Kafka => "ce_",
            Self::Nats => "ce-",
        }
    }

    fn content_type_header(self) -> &'static str {
        match self {
            Self::Kafka => "content-type",
            Self::Nats => "ce-datacontenttype",
        }
    }

    fn encode_value(self, v: &str) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Kafka => std::borrow::Cow::Borrowed(v),
            Self::Nats if !needs_percent_encoding(v) => std::borrow::Cow::Borrowed(v),
            Self::Nats => std::borrow::Cow::Owned(percent_encode(v)),
        }
    }

    fn decode_value(self, v: &str) -> Result<String, BusError> {
        match self {
            Self::Kafka => Ok(v.to_owned()),
            // NATS binding 3.1.3.2: unquote an RFC 7230 quoted string first, then one round of
            // percent-decoding.
            Self::Nats => percent_decode(&unquote(v.trim())?),
        }
    }
}

/// The header of an attribute in a binding: static for the attributes Flotilla sends.
fn header_name(binding: Binding, attr: &str) -> std::borrow::Cow<'static, str> {
    macro_rules! known {
        ($($a:literal),*) => {
            match (binding, attr) {
                $(
                    (Binding::Kafka, $a) => return std::borrow::Cow::Borrowed(concat!("ce_", $a)),
                    (Binding::Nats, $a) => return std::borrow::Cow::Borrowed(concat!("ce-", $a)),
                )*
                _ => {}
            }
        };
    }
    known!(
        "id",
        "source",
        "type",
        "specversion",
        "time",
        "subject",
        "aggregatetype",
        "sequence",
        "streamversion",
        "schemaversion",
        "businessunit",
        "actor",
        "traceparent",
        "correlationid",
        "causationid",
        "commandid",
        "eventhash",
        "prevhash"
    );
    std::borrow::Cow::Owned(format!("{}{attr}", binding.prefix()))
}

fn needs_percent_encoding(v: &str) -> bool {
    v.bytes()
        .any(|b| !(0x21..=0x7e).contains(&b) || b == b'"' || b == b'%')
}

/// Percent-encodes what may not appear raw in a header value: controls, space, `"`, `%` and
/// every non-ASCII byte (as UTF-8).
pub fn percent_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if (0x21..=0x7e).contains(&b) && b != b'"' && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Removes RFC 7230 double quotes (with their backslash escapes) around a header value, as
/// older CloudEvents senders produced; other values are returned unchanged.
pub fn unquote(v: &str) -> Result<String, BusError> {
    let Some(inner) = v.strip_prefix('"') else {
        return Ok(v.to_owned());
    };
    let inner = inner.strip_suffix('"').ok_or_else(|| {
        BusError::Malformed(format!(
            "header value {v:?} opens a quoted string it does not close"
        ))
    })?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().ok_or_else(|| {
                BusError::Malformed(format!("header value {v:?} ends inside an escape"))
            })?),
            '"' => {
                return Err(BusError::Malformed(format!(
                    "header value {v:?} has an unescaped quote inside a quoted string"
                )));
            }
            c => out.push(c),
        }
    }
    Ok(out)
}

/// Reverses [`percent_encode`] (upper- or lower-case hex); the result must be UTF-8, so overlong
/// and other invalid sequences are refused.
pub fn percent_decode(v: &str) -> Result<String, BusError> {
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    BusError::Malformed(format!("bad percent-encoding in header value {v:?}"))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| BusError::Malformed(format!("header value {v:?} is not UTF-8 once decoded")))
}

#[cfg(test)]
mod tests {
    use flotilla_core::chain::Hash;
    use flotilla_core::event::{Metadata, Timestamp};
    use flotilla_core::ids::{EventId, StreamId};

    use super::*;

    fn sample() -> RecordedEvent {
        RecordedEvent {
            global_position: 42,
            stream_id: StreamId::for_aggregate("approval-request", Uuid::now_v7()),
            stream_version: 3,
            event_id: EventId::new(),
            event_type: "flotilla.governance.v1.ApprovalGranted".into(),
            schema_version: 2,
            payload: vec![8, 1, 18, 3, 97, 98, 99],
            metadata: Metadata {
                actor: "alice".into(),
                business_unit: "payments".into(),
                correlation_id: Some(Uuid::now_v7()),
                causation_id: Some(Uuid::now_v7()),
                traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
                command_id: Some(Uuid::now_v7()),
            },
            recorded_at: Timestamp(1_764_000_000_123_456),
            prev_hash: Hash([1; 32]),
            hash: Hash([2; 32]),
        }
    }

    #[test]
    fn kafka_and_nats_headers_round_trip() {
        let e = sample();
        let ce =
            CloudEvent::from_recorded(&Namespace::default(), "governance", "approval-request", &e);
        assert_eq!(ce.time.as_deref(), Some("2025-11-24T16:00:00.123456Z"));
        assert_eq!(ce.sequence(), Some(42));
        assert_eq!(ce.extension("businessunit"), Some("payments"));
        assert_eq!(
            ce.extension("correlationid"),
            Some(
                e.metadata
                    .correlation_id
                    .map(|u| u.to_string())
                    .unwrap_or_default()
                    .as_str()
            )
        );
        for (binding, ct) in [
            (Binding::Kafka, "content-type"),
            (Binding::Nats, "ce-datacontenttype"),
        ] {
            let prefix = binding.prefix();
            let headers = ce.to_headers(binding);
            assert!(
                headers
                    .iter()
                    .any(|(k, v)| k == &format!("{prefix}id") && v == &e.event_id.to_string())
            );
            assert!(headers.iter().any(|(k, v)| k == &format!("{prefix}type")
                && v == "flotilla.governance.v1.ApprovalGranted"));
            assert!(
                headers
                    .iter()
                    .any(|(k, v)| k == ct && v == PROTOBUF_CONTENT_TYPE)
            );
            assert!(
                headers
                    .iter()
                    .any(|(k, _)| k == &format!("{prefix}traceparent"))
            );
            let back = CloudEvent::from_headers(
                binding,
                headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                ce.data.clone(),
            )
            .expect("parses");
            assert_eq!(back, ce);
            assert_eq!(back.event_id().expect("uuid"), e.event_id.0);
        }
    }

    #[test]
    fn missing_required_header_is_malformed() {
        let ce = CloudEvent::from_recorded(
            &Namespace::default(),
            "governance",
            "approval-request",
            &sample(),
        );
        let headers: Vec<_> = ce
            .to_headers(Binding::Kafka)
            .into_iter()
            .filter(|(k, _)| k != "ce_source")
            .collect();
        let err = CloudEvent::from_headers(
            Binding::Kafka,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            vec![],
        )
        .expect_err("must fail");
        assert!(err.to_string().contains("ce_source"), "{err}");
    }

    #[test]
    fn nats_values_with_spaces_non_ascii_and_line_breaks_round_trip() {
        let mut e = sample();
        e.metadata.actor = "Zoë \"ops\" O'Brien 100%\r\nX-Injected: 1".into();
        e.metadata.business_unit = "paiements et crédit".into();
        let ce =
            CloudEvent::from_recorded(&Namespace::default(), "governance", "approval-request", &e);
        let headers = ce.to_headers(Binding::Nats);
        for (k, v) in &headers {
            assert!(
                v.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"'),
                "{k}: {v:?} is not header-safe"
            );
        }
        let actor = headers
            .iter()
            .find(|(k, _)| k == "ce-actor")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            actor,
            Some("Zo%C3%AB%20%22ops%22%20O'Brien%20100%25%0D%0AX-Injected:%201")
        );
        let back = CloudEvent::from_headers(
            Binding::Nats,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            ce.data.clone(),
        )
        .expect("parses");
        assert_eq!(back, ce);
        assert!(percent_decode("%zz").is_err());
        assert!(percent_decode("%C3").is_err());
    }

    /// The NATS binding's binary-mode example (3.1.4): `ce-` headers, `ce-datacontenttype`.
    #[test]
    fn nats_binding_example_reads_and_writes() {
        let headers = [
            ("ce-specversion", "1.0"),
            ("ce-type", "com.example.someevent"),
            ("ce-time", "2018-04-05T03:56:24Z"),
            ("ce-id", "1234-1234-1234"),
            ("ce-source", "/mycontext/subcontext"),
            ("ce-datacontenttype", "application/json"),
        ];
        let ce =
            CloudEvent::from_headers(Binding::Nats, headers, b"{}".to_vec()).expect("spec example");
        assert_eq!(ce.ty, "com.example.someevent");
        assert_eq!(ce.source, "/mycontext/subcontext");
        assert_eq!(ce.time.as_deref(), Some("2018-04-05T03:56:24Z"));
        assert_eq!(ce.datacontenttype.as_deref(), Some("application/json"));
        assert!(ce.extensions.is_empty(), "{:?}", ce.extensions);
        let mut written = ce.to_headers(Binding::Nats);
        written.sort();
        let mut want: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        assert_eq!(
            written, want,
            "the same headers as the spec's example, nothing else"
        );
        // Names are case-insensitive; older senders quote values.
        let ce2 = CloudEvent::from_headers(
            Binding::Nats,
            [
                ("CE-SpecVersion", "\"1.0\""),
                ("Ce-Type", "\"com.example.someevent\""),
                ("ce-id", "1234-1234-1234"),
                ("ce-source", "\"/my context/\\\"sub\\\"\""),
            ],
            vec![],
        )
        .expect("quoted values");
        assert_eq!(ce2.source, "/my context/\"sub\"");
        // A structured-mode message is not read as binary.
        let structured = CloudEvent::from_headers(
            Binding::Nats,
            [("Content-Type", "application/cloudevents+json")],
            b"{}".to_vec(),
        )
        .expect_err("structured");
        assert!(
            structured.to_string().contains("structured"),
            "{structured}"
        );
    }

    /// The NATS binding's percent-encoding example (3.1.3.2) and its decoding rules.
    #[test]
    fn nats_percent_encoding_follows_the_spec() {
        assert_eq!(
            percent_encode("Euro \u{20AC} \u{1F600}"),
            "Euro%20%E2%82%AC%20%F0%9F%98%80"
        );
        assert_eq!(
            percent_decode("Euro%20%e2%82%ac%20%F0%9F%98%80").expect("lower case hex is accepted"),
            "Euro \u{20AC} \u{1F600}"
        );
        assert_eq!(percent_decode("%41bc").expect("needless encoding"), "Abc");
        assert!(
            percent_decode("%C0%A0").is_err(),
            "overlong UTF-8 must be rejected"
        );
    }

    /// The Kafka binding's binary-mode example (3.2.5): `ce_` headers and `content-type`.
    #[test]
    fn kafka_binding_example_reads_and_writes() {
        let headers = [
            ("ce_specversion", "1.0"),
            ("ce_type", "com.example.someevent"),
            ("ce_source", "/mycontext/subcontext"),
            ("ce_id", "1234-1234-1234"),
            ("ce_time", "2018-04-05T03:56:24Z"),
            ("content-type", "application/avro"),
        ];
        let ce = CloudEvent::from_headers(Binding::Kafka, headers, vec![1]).expect("spec example");
        assert_eq!(ce.datacontenttype.as_deref(), Some("application/avro"));
        let mut written = ce.to_headers(Binding::Kafka);
        written.sort();
        let mut want: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        want.sort();
        assert_eq!(written, want);
    }

    #[test]
    fn flotilla_events_carry_source_aggregate_and_unit() {
        let ns = Namespace::new("acme").expect("ns");
        let ce = CloudEvent::from_recorded(&ns, "governance", "approval", &sample());
        assert_eq!(ce.source, "/acme/governance");
        assert_eq!(ce.extension("aggregatetype"), Some("approval"));
        assert_eq!(ce.extension("businessunit"), Some("payments"));
    }
}
