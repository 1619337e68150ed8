//! An event's payload as named fields, read with the platform's own descriptor set (the one
//! gRPC reflection serves), so a report shows every field of every service's event as it was
//! recorded without a line of code per event type. Unknown fields are shown by number.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::Message;
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

/// One field's value, with its path (`release.items.service`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Field {
    pub name: String,
    pub value: String,
}

struct Pool {
    messages: HashMap<String, DescriptorProto>,
    enums: HashMap<String, EnumDescriptorProto>,
}

fn collect(prefix: &str, m: &DescriptorProto, pool: &mut Pool) {
    let name = format!("{prefix}.{}", m.name());
    for n in &m.nested_type {
        collect(&name, n, pool);
    }
    for e in &m.enum_type {
        pool.enums.insert(format!("{name}.{}", e.name()), e.clone());
    }
    pool.messages.insert(name, m.clone());
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut pool = Pool {
            messages: HashMap::new(),
            enums: HashMap::new(),
        };
        if let Ok(fds) = FileDescriptorSet::decode(flotilla_proto::FILE_DESCRIPTOR_SET) {
            for f in &fds.file {
                let package = format!(".{}", f.package());
                for m in &f.message_type {
                    collect(&package, m, &mut pool);
                }
                for e in &f.enum_type {
                    pool.enums
                        .insert(format!("{package}.{}", e.name()), e.clone());
                }
            }
        }
        pool
    })
}

struct Wire<'a>(&'a [u8]);

impl Wire<'_> {
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = self.0.split_first()?;
            self.0 = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
}

fn scalar(ty: Type, raw: u64) -> String {
    match ty {
        Type::Bool => (raw != 0).to_string(),
        Type::Int32 | Type::Int64 => (raw as i64).to_string(),
        Type::Sint32 | Type::Sint64 => (((raw >> 1) as i64) ^ -((raw & 1) as i64)).to_string(),
        Type::Double => f64::from_bits(raw).to_string(),
        Type::Float => f32::from_bits(raw as u32).to_string(),
        Type::Sfixed32 => (raw as u32 as i32).to_string(),
        Type::Sfixed64 => (raw as i64).to_string(),
        _ => raw.to_string(),
    }
}

/// An enum value's name in its field's enum, else its number.
fn enum_name(field: Option<&prost_types::FieldDescriptorProto>, v: u64) -> String {
    field
        .and_then(|f| pool().enums.get(f.type_name()))
        .and_then(|e| e.value.iter().find(|x| i64::from(x.number()) == v as i64))
        .map_or_else(|| v.to_string(), |x| x.name().to_owned())
}

fn timestamp(data: &[u8]) -> Option<String> {
    let t = prost_types::Timestamp::decode(data).ok()?;
    Some(
        flotilla_core::event::Timestamp::from_parts(t.seconds, t.nanos)
            .ok()?
            .to_rfc3339(),
    )
}

/// The fields of a message of `type_name` (`.flotilla.governance.v1.ApprovalGranted`).
fn walk(type_name: &str, data: &[u8], path: &str, out: &mut Vec<Field>, depth: usize) -> bool {
    let pool = pool();
    let Some(desc) = pool.messages.get(type_name) else {
        return false;
    };
    let mut w = Wire(data);
    let start = out.len();
    while !w.0.is_empty() {
        let Some(key) = w.varint() else {
            out.truncate(start);
            return false;
        };
        // A value that ends early: the payload does not read as this message.
        macro_rules! or_fail {
            ($e:expr) => {
                match $e {
                    Some(v) => v,
                    None => {
                        out.truncate(start);
                        return false;
                    }
                }
            };
        }
        let (number, wire) = ((key >> 3) as i32, key & 7);
        let field = desc.field.iter().find(|f| f.number() == number);
        let name = match field {
            Some(f) if path.is_empty() => f.name().to_owned(),
            Some(f) => format!("{path}.{}", f.name()),
            None if path.is_empty() => format!("#{number}"),
            None => format!("{path}.#{number}"),
        };
        let ty = field.map_or(Type::Bytes, |f| f.r#type());
        let value = match wire {
            0 => {
                let v = or_fail!(w.varint());
                match ty {
                    Type::Enum => enum_name(field, v),
                    _ => scalar(ty, v),
                }
            }
            1 => {
                let b = or_fail!(w.bytes(8));
                scalar(
                    ty,
                    u64::from_le_bytes(<[u8; 8]>::try_from(b).unwrap_or_default()),
                )
            }
            5 => {
                let b = or_fail!(w.bytes(4));
                scalar(
                    ty,
                    u64::from(u32::from_le_bytes(
                        <[u8; 4]>::try_from(b).unwrap_or_default(),
                    )),
                )
            }
            2 => {
                let Some(len) = w.varint() else { break };
                let Some(b) = w.bytes(len as usize) else {
                    break;
                };
                match (ty, field) {
                    (Type::String, _) => String::from_utf8_lossy(b).into_owned(),
                    (Type::Message, Some(f)) if f.type_name() == ".google.protobuf.Timestamp" => {
                        timestamp(b).unwrap_or_else(|| hex::encode(b))
                    }
                    (Type::Message, Some(f)) => {
                        if depth < 16 && walk(f.type_name(), b, &name, out, depth + 1) {
                            continue;
                        }
                        hex::encode(b)
                    }
                    (Type::Bytes, _) => hex::encode(b),
                    // A packed repeated scalar: fixed-width elements or varints.
                    (t, f) => {
                        let width = match t {
                            Type::Fixed64 | Type::Sfixed64 | Type::Double => 8,
                            Type::Fixed32 | Type::Sfixed32 | Type::Float => 4,
                            _ => 0,
                        };
                        let mut p = Wire(b);
                        let mut vs = Vec::new();
                        while !p.0.is_empty() {
                            let v = if width == 0 {
                                or_fail!(p.varint())
                            } else {
                                let raw = or_fail!(p.bytes(width));
                                let mut buf = [0u8; 8];
                                buf[..width].copy_from_slice(raw);
                                u64::from_le_bytes(buf)
                            };
                            vs.push(match t {
                                Type::Enum => enum_name(f, v),
                                _ => scalar(t, v),
                            });
                        }
                        vs.join(", ")
                    }
                }
            }
            _ => {
                out.truncate(start);
                return false;
            }
        };
        out.push(Field { name, value });
    }
    true
}

/// The fields of an event of `event_type`, in the order they were encoded; none when the type
/// is not one this build knows or the payload does not read.
pub fn fields(event_type: &str, payload: &[u8]) -> Vec<Field> {
    let mut out = Vec::new();
    if !walk(&format!(".{event_type}"), payload, "", &mut out, 0) {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use flotilla_proto::orchestration::v1 as orch;

    use super::*;

    #[test]
    fn an_events_fields_are_named_as_its_contract_names_them() {
        let e = orch::ReleaseCreated {
            release: Some(orch::Release {
                release_id: "01932c07-8f6b-7c3e-9a51-3b1f2d9e4c13".into(),
                name: "payments-2.0.1".into(),
                emergency: true,
                status: orch::ReleaseStatus::Planned as i32,
                items: vec![orch::ReleaseItem {
                    service: "payments-api".into(),
                    version: "2.0.1".into(),
                    ..Default::default()
                }],
                created_at: Some(prost_types::Timestamp {
                    seconds: 1_767_225_600,
                    nanos: 0,
                }),
                ..Default::default()
            }),
        };
        let f = fields(
            "flotilla.orchestration.v1.ReleaseCreated",
            &e.encode_to_vec(),
        );
        let get = |n: &str| {
            f.iter()
                .find(|x| x.name == n)
                .map(|x| x.value.as_str())
                .unwrap_or_else(|| panic!("{n} in {f:?}"))
        };
        assert_eq!(get("release.name"), "payments-2.0.1");
        assert_eq!(get("release.emergency"), "true");
        assert_eq!(get("release.items.service"), "payments-api");
        assert_eq!(get("release.status"), "RELEASE_STATUS_PLANNED");
        assert_eq!(get("release.created_at"), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn a_payload_that_does_not_read_gives_no_fields() {
        assert_eq!(
            fields("flotilla.orchestration.v1.ReleaseCreated", &[0x0a, 0x05, 1]),
            vec![]
        );
        assert_eq!(fields("flotilla.nothing.v1.Unknown", &[]), vec![]);
    }
}
