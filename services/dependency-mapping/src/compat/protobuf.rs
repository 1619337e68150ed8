//! Breaking changes between two protobuf descriptor sets: removed or renumbered fields, changed
//! field types or cardinality, removed messages, enums, enum values, services or RPCs, changed
//! RPC request/response types or streaming.

use std::collections::BTreeMap;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};

use super::MalformedSchema;

/// An RPC: request type, response type, client streaming, server streaming.
type Rpc = (String, String, bool, bool);

/// A descriptor set flattened by full name.
#[derive(Debug, Default)]
pub struct Schema {
    messages: BTreeMap<String, DescriptorProto>,
    enums: BTreeMap<String, EnumDescriptorProto>,
    /// service -> rpc -> (input, output, client streaming, server streaming)
    services: BTreeMap<String, BTreeMap<String, Rpc>>,
}

fn collect_messages(prefix: &str, msgs: &[DescriptorProto], out: &mut Schema) {
    for m in msgs {
        let name = format!("{prefix}.{}", m.name());
        collect_messages(&name, &m.nested_type, out);
        for e in &m.enum_type {
            out.enums.insert(format!("{name}.{}", e.name()), e.clone());
        }
        out.messages.insert(name, m.clone());
    }
}

/// Decodes an encoded `FileDescriptorSet`.
pub fn parse(bytes: &[u8]) -> Result<Schema, MalformedSchema> {
    let fds = FileDescriptorSet::decode(bytes).map_err(|e| MalformedSchema {
        format: "protobuf",
        reason: format!("not a FileDescriptorSet: {e}"),
    })?;
    if fds.file.is_empty() {
        return Err(MalformedSchema {
            format: "protobuf",
            reason: "the descriptor set holds no file".into(),
        });
    }
    let mut s = Schema::default();
    for f in &fds.file {
        let pkg = if f.package().is_empty() {
            String::new()
        } else {
            format!(".{}", f.package())
        };
        collect_messages(&pkg, &f.message_type, &mut s);
        for e in &f.enum_type {
            s.enums.insert(format!("{pkg}.{}", e.name()), e.clone());
        }
        for svc in &f.service {
            let rpcs = svc
                .method
                .iter()
                .map(|m| {
                    (
                        m.name().to_owned(),
                        (
                            m.input_type().to_owned(),
                            m.output_type().to_owned(),
                            m.client_streaming(),
                            m.server_streaming(),
                        ),
                    )
                })
                .collect();
            s.services.insert(format!("{pkg}.{}", svc.name()), rpcs);
        }
    }
    Ok(s)
}

fn type_name(f: &prost_types::FieldDescriptorProto) -> String {
    match f.r#type() {
        Type::Message | Type::Enum | Type::Group => f.type_name().to_owned(),
        t => format!("{t:?}").to_lowercase(),
    }
}

fn label(f: &prost_types::FieldDescriptorProto) -> &'static str {
    match f.label() {
        Label::Repeated => "repeated",
        Label::Required => "required",
        Label::Optional => "optional",
    }
}

/// Every change from `old` to `new` that breaks a consumer built against `old`.
pub fn diff(old: &Schema, new: &Schema) -> Vec<String> {
    let mut out = Vec::new();
    let clean = |n: &str| n.trim_start_matches('.').to_owned();
    for (name, m) in &old.messages {
        let Some(n) = new.messages.get(name) else {
            out.push(format!("message {} was removed", clean(name)));
            continue;
        };
        let new_by_number: BTreeMap<i32, &prost_types::FieldDescriptorProto> =
            n.field.iter().map(|f| (f.number(), f)).collect();
        let new_by_name: BTreeMap<&str, &prost_types::FieldDescriptorProto> =
            n.field.iter().map(|f| (f.name(), f)).collect();
        for f in &m.field {
            // Same name, other number: renumbered, even if the old number is reused by another.
            if let Some(moved) = new_by_name.get(f.name())
                && moved.number() != f.number()
            {
                out.push(format!(
                    "field {}.{} was renumbered from {} to {}",
                    clean(name),
                    f.name(),
                    f.number(),
                    moved.number()
                ));
                continue;
            }
            match new_by_number.get(&f.number()) {
                None => match new_by_name.get(f.name()) {
                    Some(moved) => out.push(format!(
                        "field {}.{} was renumbered from {} to {}",
                        clean(name),
                        f.name(),
                        f.number(),
                        moved.number()
                    )),
                    None => out.push(format!(
                        "field {}.{} (number {}) was removed",
                        clean(name),
                        f.name(),
                        f.number()
                    )),
                },
                Some(nf) => {
                    if type_name(f) != type_name(nf) {
                        out.push(format!(
                            "field {}.{} (number {}) changed type from {} to {}",
                            clean(name),
                            f.name(),
                            f.number(),
                            clean(&type_name(f)),
                            clean(&type_name(nf))
                        ));
                    }
                    if label(f) != label(nf) {
                        out.push(format!(
                            "field {}.{} (number {}) changed cardinality from {} to {}",
                            clean(name),
                            f.name(),
                            f.number(),
                            label(f),
                            label(nf)
                        ));
                    }
                }
            }
        }
    }
    // A required field (proto2) that was not there before: messages written by the old
    // schema lack it and fail to parse.
    for (name, n) in &new.messages {
        let Some(m) = old.messages.get(name) else {
            continue;
        };
        for f in &n.field {
            let was = m
                .field
                .iter()
                .any(|o| o.number() == f.number() || o.name() == f.name());
            if !was && f.label() == Label::Required {
                out.push(format!(
                    "field {}.{} (number {}) was added as required",
                    clean(name),
                    f.name(),
                    f.number()
                ));
            }
        }
    }
    for (name, e) in &old.enums {
        let Some(n) = new.enums.get(name) else {
            out.push(format!("enum {} was removed", clean(name)));
            continue;
        };
        for v in &e.value {
            if !n.value.iter().any(|nv| nv.number() == v.number()) {
                out.push(format!(
                    "enum value {}.{} (number {}) was removed",
                    clean(name),
                    v.name(),
                    v.number()
                ));
            }
        }
    }
    for (svc, rpcs) in &old.services {
        let Some(n) = new.services.get(svc) else {
            out.push(format!("service {} was removed", clean(svc)));
            continue;
        };
        for (rpc, (input, output, cs, ss)) in rpcs {
            match n.get(rpc) {
                None => out.push(format!("rpc {}.{rpc} was removed", clean(svc))),
                Some((ni, no, ncs, nss)) => {
                    if input != ni {
                        out.push(format!(
                            "rpc {}.{rpc} request changed from {} to {}",
                            clean(svc),
                            clean(input),
                            clean(ni)
                        ));
                    }
                    if output != no {
                        out.push(format!(
                            "rpc {}.{rpc} response changed from {} to {}",
                            clean(svc),
                            clean(output),
                            clean(no)
                        ));
                    }
                    if cs != ncs || ss != nss {
                        out.push(format!("rpc {}.{rpc} changed streaming (client {cs} -> {ncs}, server {ss} -> {nss})", clean(svc)));
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use prost_types::{
        EnumValueDescriptorProto, FieldDescriptorProto, FileDescriptorProto, MethodDescriptorProto,
        ServiceDescriptorProto,
    };

    use super::*;

    fn field(
        name: &str,
        number: i32,
        ty: Type,
        label: Label,
        type_name: &str,
    ) -> FieldDescriptorProto {
        FieldDescriptorProto {
            name: Some(name.into()),
            number: Some(number),
            r#type: Some(ty as i32),
            label: Some(label as i32),
            type_name: (!type_name.is_empty()).then(|| type_name.into()),
            ..Default::default()
        }
    }

    fn set(
        order_fields: Vec<FieldDescriptorProto>,
        statuses: &[(&str, i32)],
        rpc_streaming: bool,
        with_refund: bool,
    ) -> Vec<u8> {
        let mut messages = vec![DescriptorProto {
            name: Some("Order".into()),
            field: order_fields,
            ..Default::default()
        }];
        messages.push(DescriptorProto {
            name: Some("GetOrder".into()),
            ..Default::default()
        });
        if with_refund {
            messages.push(DescriptorProto {
                name: Some("Refund".into()),
                ..Default::default()
            });
        }
        let file = FileDescriptorProto {
            name: Some("orders.proto".into()),
            package: Some("shop.v1".into()),
            message_type: messages,
            enum_type: vec![EnumDescriptorProto {
                name: Some("Status".into()),
                value: statuses
                    .iter()
                    .map(|(n, v)| EnumValueDescriptorProto {
                        name: Some((*n).into()),
                        number: Some(*v),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            service: vec![ServiceDescriptorProto {
                name: Some("Orders".into()),
                method: vec![MethodDescriptorProto {
                    name: Some("Get".into()),
                    input_type: Some(".shop.v1.GetOrder".into()),
                    output_type: Some(".shop.v1.Order".into()),
                    server_streaming: Some(rpc_streaming),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            syntax: Some("proto3".into()),
            ..Default::default()
        };
        FileDescriptorSet { file: vec![file] }.encode_to_vec()
    }

    fn base_fields() -> Vec<FieldDescriptorProto> {
        vec![
            field("id", 1, Type::String, Label::Optional, ""),
            field("amount", 2, Type::Int64, Label::Optional, ""),
            field("items", 3, Type::String, Label::Repeated, ""),
            field("status", 4, Type::Enum, Label::Optional, ".shop.v1.Status"),
        ]
    }

    #[test]
    fn additions_are_compatible() {
        let old = set(base_fields(), &[("NEW", 0), ("PAID", 1)], false, true);
        let mut fields = base_fields();
        fields.push(field("note", 5, Type::String, Label::Optional, ""));
        let new = set(
            fields,
            &[("NEW", 0), ("PAID", 1), ("SHIPPED", 2)],
            false,
            true,
        );
        assert_eq!(
            diff(&parse(&old).expect("old"), &parse(&new).expect("new")),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_breaking_change_is_named() {
        let old = set(base_fields(), &[("NEW", 0), ("PAID", 1)], false, true);
        let fields = vec![
            field("id", 9, Type::String, Label::Optional, ""), // renumbered
            field("amount", 2, Type::String, Label::Optional, ""), // type changed
            field("items", 3, Type::String, Label::Optional, ""), // cardinality changed
        ]; // status removed
        let new = set(fields, &[("NEW", 0)], true, false);
        let found = diff(&parse(&old).expect("old"), &parse(&new).expect("new"));
        assert_eq!(
            found,
            vec![
                "field shop.v1.Order.id was renumbered from 1 to 9",
                "field shop.v1.Order.amount (number 2) changed type from int64 to string",
                "field shop.v1.Order.items (number 3) changed cardinality from repeated to optional",
                "field shop.v1.Order.status (number 4) was removed",
                "message shop.v1.Refund was removed",
                "enum value shop.v1.Status.PAID (number 1) was removed",
                "rpc shop.v1.Orders.Get changed streaming (client false -> false, server false -> true)",
            ]
        );
    }

    #[test]
    fn a_new_required_field_breaks_an_optional_one_does_not() {
        let old = set(base_fields(), &[("NEW", 0)], false, false);
        let mut fields = base_fields();
        fields.push(field("currency", 5, Type::String, Label::Required, ""));
        fields.push(field("note", 6, Type::String, Label::Optional, ""));
        let new = set(fields, &[("NEW", 0)], false, false);
        assert_eq!(
            diff(&parse(&old).expect("old"), &parse(&new).expect("new")),
            vec!["field shop.v1.Order.currency (number 5) was added as required"]
        );
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(parse(b"\xff\xff\xff").is_err());
        assert!(parse(&FileDescriptorSet::default().encode_to_vec()).is_err());
    }

    #[test]
    fn swapped_field_numbers_are_renumberings() {
        let old = set(base_fields(), &[("NEW", 0)], false, false);
        let mut fields = base_fields();
        fields[0].number = Some(2);
        fields[1].number = Some(1);
        let new = set(fields, &[("NEW", 0)], false, false);
        assert_eq!(
            diff(&parse(&old).expect("old"), &parse(&new).expect("new")),
            vec![
                "field shop.v1.Order.id was renumbered from 1 to 2",
                "field shop.v1.Order.amount was renumbered from 2 to 1"
            ]
        );
    }
}
