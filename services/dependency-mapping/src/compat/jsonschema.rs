//! Breaking changes between two JSON Schemas (for message payloads a producer sends): removed
//! properties, newly required properties, narrowed types and narrowed enums, recursively through
//! `properties` and `items`.

use std::collections::BTreeSet;

use serde_json::Value;

use super::MalformedSchema;

/// Parses a JSON Schema document (an object, or `true`/`false`).
pub fn parse(bytes: &[u8]) -> Result<Value, MalformedSchema> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| MalformedSchema {
        format: "JSON Schema",
        reason: e.to_string(),
    })?;
    if !(v.is_object() || v.is_boolean()) {
        return Err(MalformedSchema {
            format: "JSON Schema",
            reason: "a schema is an object or a boolean".into(),
        });
    }
    Ok(v)
}

fn types(s: &Value) -> Option<BTreeSet<String>> {
    match s.get("type")? {
        Value::String(t) => Some(BTreeSet::from([t.clone()])),
        Value::Array(ts) => Some(
            ts.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
        ),
        _ => None,
    }
}

fn strings(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().map(|x| x.to_string()).collect())
        .unwrap_or_default()
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    let at = if path.is_empty() {
        "the root".to_owned()
    } else {
        path.to_owned()
    };
    // Types: every value the old schema allowed must still be allowed. ("integer" fits "number".)
    if let (Some(ot), Some(nt)) = (types(old), types(new)) {
        let lost: Vec<&String> = ot
            .iter()
            .filter(|t| !(nt.contains(*t) || (t.as_str() == "integer" && nt.contains("number"))))
            .collect();
        if !lost.is_empty() {
            out.push(format!(
                "{at} narrowed its type from {} to {}",
                ot.iter().cloned().collect::<Vec<_>>().join("|"),
                nt.iter().cloned().collect::<Vec<_>>().join("|")
            ));
        }
    } else if types(old).is_none() && types(new).is_some() {
        out.push(format!(
            "{at} now restricts its type to {}",
            types(new)
                .unwrap_or_default()
                .into_iter()
                .collect::<Vec<_>>()
                .join("|")
        ));
    }
    // Enums: every old value must stay allowed.
    let (oe, ne) = (strings(old.get("enum")), strings(new.get("enum")));
    if new.get("enum").is_some() {
        let lost: Vec<&String> = if old.get("enum").is_some() {
            oe.iter().filter(|v| !ne.contains(*v)).collect()
        } else {
            Vec::new()
        };
        if old.get("enum").is_none() {
            out.push(format!(
                "{at} is now restricted to the values {}",
                ne.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        } else if !lost.is_empty() {
            out.push(format!(
                "{at} no longer allows {}",
                lost.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    // Required: a property required now that was not before breaks producers of old messages.
    let (or, nr) = (strings(old.get("required")), strings(new.get("required")));
    for r in nr.difference(&or) {
        out.push(format!(
            "{at} now requires property {}",
            r.trim_matches('"')
        ));
    }
    // Properties: removing one breaks consumers that read it.
    if let (Some(op), np) = (
        old.get("properties").and_then(Value::as_object),
        new.get("properties").and_then(Value::as_object),
    ) {
        for (name, os) in op {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            match np.and_then(|p| p.get(name)) {
                None => out.push(format!("property {child} was removed")),
                Some(ns) => walk(&child, os, ns, out),
            }
        }
    }
    if let (Some(oi), Some(ni)) = (old.get("items"), new.get("items")) {
        walk(
            &format!("{}[]", if path.is_empty() { "" } else { path }),
            oi,
            ni,
            out,
        );
    }
}

/// Every change from `old` to `new` that breaks a consumer of `old`.
pub fn diff(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn old() -> Value {
        json!({
            "type": "object",
            "required": ["id"],
            "properties": {
                "id": {"type": "string"},
                "amount": {"type": ["number", "null"]},
                "status": {"type": "string", "enum": ["new", "paid", "shipped"]},
                "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}}}},
                "note": {"type": "string"}
            }
        })
    }

    #[test]
    fn additions_and_widening_are_compatible() {
        let mut new = old();
        new["properties"]["coupon"] = json!({"type": "string"});
        new["properties"]["status"]["enum"] = json!(["new", "paid", "shipped", "returned"]);
        new["properties"]["lines"]["items"]["properties"]["qty"] = json!({"type": "number"});
        assert_eq!(diff(&old(), &new), Vec::<String>::new());
    }

    #[test]
    fn every_breaking_change_is_named() {
        let mut new = old();
        new["required"] = json!(["id", "amount"]);
        new["properties"]["amount"] = json!({"type": "number"});
        new["properties"]["status"]["enum"] = json!(["new", "paid"]);
        new["properties"]["lines"]["items"]["properties"]["qty"] = json!({"type": "string"});
        new["properties"].as_object_mut().map(|p| p.remove("note"));
        assert_eq!(
            diff(&old(), &new),
            vec![
                "the root now requires property amount",
                "amount narrowed its type from null|number to number",
                "lines[].qty narrowed its type from integer to string",
                "property note was removed",
                "status no longer allows \"shipped\"",
            ]
        );
    }

    #[test]
    fn malformed_documents_are_refused() {
        assert!(parse(b"{not json").is_err());
        assert!(parse(b"42").is_err());
        assert!(parse(b"true").is_ok());
    }
}
