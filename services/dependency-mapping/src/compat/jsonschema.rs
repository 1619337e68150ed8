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

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<String>, work: &mut Work) {
    if !work.spend(1) {
        return;
    }
    // Boolean schemas: `true` accepts everything (as `{}`), `false` nothing.
    let any = Value::Object(serde_json::Map::new());
    let at0 = if path.is_empty() {
        "the root".to_owned()
    } else {
        path.to_owned()
    };
    if new == &Value::Bool(false) && old != &Value::Bool(false) {
        out.push(format!("{at0} now rejects every value"));
        return;
    }
    if old == &Value::Bool(false) {
        return;
    }
    let old = if old == &Value::Bool(true) { &any } else { old };
    let new = if new == &Value::Bool(true) { &any } else { new };
    alternatives(&at0, old, new, out, work);
    if let Some(c) = new.get("const")
        && old.get("const") != Some(c)
    {
        out.push(format!("{at0} is now restricted to the constant {c}"));
    }
    if new.get("additionalProperties") == Some(&Value::Bool(false))
        && old.get("additionalProperties") != Some(&Value::Bool(false))
    {
        out.push(format!(
            "{at0} no longer allows properties beyond those it lists"
        ));
    }
    if old.get("items").is_none()
        && let Some(items) = new.get("items")
        && items != &Value::Bool(true)
        && items != &any
    {
        out.push(format!(
            "{}[] now restricts its items",
            if path.is_empty() { "" } else { path }
        ));
    }

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
        // Sorted, so reports read the same whatever order the document listed them in.
        let mut props: Vec<_> = op.iter().collect();
        props.sort_by(|a, b| a.0.cmp(b.0));
        for (name, os) in props {
            let child = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            match np.and_then(|p| p.get(name)) {
                None => out.push(format!("property {child} was removed")),
                Some(ns) => walk(&child, os, ns, out, work),
            }
        }
    }
    if let (Some(oi), Some(ni)) = (old.get("items"), new.get("items")) {
        walk(
            &format!("{}[]", if path.is_empty() { "" } else { path }),
            oi,
            ni,
            out,
            work,
        );
    }
}

/// The branches of `anyOf` or `oneOf`, when the schema has them.
fn branches(s: &Value) -> Option<(&'static str, &Vec<Value>)> {
    ["anyOf", "oneOf"]
        .into_iter()
        .find_map(|k| s.get(k).and_then(Value::as_array).map(|b| (k, b)))
}

/// A schema without its `anyOf`/`oneOf` (what every branch must also satisfy).
fn without_branches(s: &Value) -> Value {
    let mut s = s.clone();
    if let Value::Object(m) = &mut s {
        m.remove("anyOf");
        m.remove("oneOf");
    }
    s
}

fn compatible(old: &Value, new: &Value, work: &mut Work) -> bool {
    let mut found = Vec::new();
    walk("", old, new, &mut found, work);
    found.is_empty()
}

/// How much comparing may cost: schema nodes visited and copied. Alternatives nested in
/// alternatives multiply the work, so a small schema could otherwise take minutes; past the
/// budget the comparison stops and the schemas are reported as too complex to compare (so a
/// version that cannot be checked is not published as compatible).
struct Work {
    left: usize,
    exhausted: bool,
}

/// Schema nodes one comparison may visit and copy.
const MAX_WORK: usize = 2_000_000;

impl Work {
    fn spend(&mut self, n: usize) -> bool {
        if self.left < n {
            self.left = 0;
            self.exhausted = true;
            return false;
        }
        self.left -= n;
        true
    }

    /// Charges copying `v` (its node count, stopping once the budget is gone).
    fn copy(&mut self, v: &Value) -> bool {
        let mut stack = vec![v];
        while let Some(v) = stack.pop() {
            if !self.spend(1) {
                return false;
            }
            match v {
                Value::Object(m) => stack.extend(m.values()),
                Value::Array(a) => stack.extend(a.iter()),
                _ => {}
            }
        }
        true
    }
}

/// A branch with what its schema says besides the alternatives.
fn merge(base: &Value, branch: &Value) -> Value {
    let mut merged = without_branches(base);
    if let (Value::Object(m), Value::Object(b)) = (&mut merged, branch) {
        for (k, v) in b {
            m.insert(k.clone(), v.clone());
        }
        return merged;
    }
    branch.clone()
}

/// `anyOf`/`oneOf`: every alternative the old schema accepted must still be accepted by one of
/// the new alternatives (compared as whole schemas, with what they share), and a schema that
/// had no alternatives must fit one of the new ones. (That adding a branch to `oneOf` can make
/// an old value match two is not detected.)
fn alternatives(at: &str, old: &Value, new: &Value, out: &mut Vec<String>, work: &mut Work) {
    let merged = |base: &Value, branch: &Value, work: &mut Work| -> Option<Value> {
        if !(work.copy(base) && work.copy(branch)) {
            return None;
        }
        Some(merge(base, branch))
    };
    match (branches(old), branches(new)) {
        (None, None) => {}
        (Some((kind, ob)), nb) => {
            for (i, o) in ob.iter().enumerate() {
                let Some(o) = merged(old, o, work) else {
                    return;
                };
                let kept = match nb {
                    Some((_, nb)) => nb
                        .iter()
                        .any(|n| merged(new, n, work).is_some_and(|n| compatible(&o, &n, work))),
                    None => compatible(&o, &without_branches(new), work),
                };
                if work.exhausted {
                    return;
                }
                if !kept {
                    out.push(format!(
                        "{at}: alternative {i} of {kind} is no longer accepted by the new schema"
                    ));
                }
            }
        }
        (None, Some((kind, nb))) => {
            let o = without_branches(old);
            let fits = nb
                .iter()
                .any(|n| merged(new, n, work).is_some_and(|n| compatible(&o, &n, work)));
            if work.exhausted {
                return;
            }
            if !fits {
                out.push(format!(
                    "{at} must now match one of the {} alternatives of {kind}, none of which accepts what it accepted",
                    nb.len()
                ));
            }
        }
    }
}

/// Every change from `old` to `new` that breaks a consumer of `old`.
pub fn diff(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let (mut ob, mut nb) = (MAX_INLINED, MAX_INLINED);
    let mut work = Work {
        left: MAX_WORK,
        exhausted: false,
    };
    walk(
        "",
        &inline(old, old, 0, &mut ob),
        &inline(new, new, 0, &mut nb),
        &mut out,
        &mut work,
    );
    if work.exhausted {
        out.push(format!(
            "the schemas are too complex to compare (more than {MAX_WORK} steps, from alternatives nested in alternatives); simplify the anyOf/oneOf nesting"
        ));
    }
    out
}

/// Most local `$ref`s followed along one path (a recursive schema stops there).
const MAX_REFS: u32 = 16;

/// Most schema nodes inlining may produce: references past it stay unresolved, so a schema
/// with many recursive references cannot blow up.
const MAX_INLINED: usize = 100_000;

/// Replaces local references (`{"$ref": "#/$defs/address"}`) by what they point to.
fn inline(v: &Value, root: &Value, refs: u32, budget: &mut usize) -> Value {
    *budget = budget.saturating_sub(1);
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref")
                && refs < MAX_REFS
                && *budget > 0
                && let Some(target) = r.strip_prefix('#').and_then(|ptr| root.pointer(ptr))
            {
                return inline(target, root, refs + 1, budget);
            }
            Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), inline(x, root, refs, budget)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| inline(x, root, refs, budget)).collect()),
        other => other.clone(),
    }
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
    fn alternatives_of_any_of_and_one_of_are_compared() {
        let old = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
        // Widened: a new alternative, and integer widened to number.
        let wider = json!({"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "null"}]});
        assert_eq!(diff(&old, &wider), Vec::<String>::new());
        // An alternative dropped.
        let narrower = json!({"anyOf": [{"type": "string"}]});
        assert_eq!(
            diff(&old, &narrower),
            vec!["the root: alternative 1 of anyOf is no longer accepted by the new schema"]
        );
        // Alternatives compared with what they share: a property removed inside one.
        let old = json!({"type": "object", "oneOf": [
            {"properties": {"card": {"type": "string"}}},
            {"properties": {"iban": {"type": "string"}}}
        ]});
        let new = json!({"type": "object", "oneOf": [
            {"properties": {"card": {"type": "string"}}},
            {"properties": {"bic": {"type": "string"}}}
        ]});
        assert_eq!(
            diff(&old, &new),
            vec!["the root: alternative 1 of oneOf is no longer accepted by the new schema"]
        );
        // A schema that gains alternatives none of which takes what it took.
        let old = json!({"type": "string"});
        let new = json!({"oneOf": [{"type": "integer"}, {"type": "boolean"}]});
        assert_eq!(
            diff(&old, &new),
            vec![
                "the root must now match one of the 2 alternatives of oneOf, none of which accepts what it accepted"
            ]
        );
        assert_eq!(
            diff(
                &old,
                &json!({"anyOf": [{"type": "string"}, {"type": "null"}]})
            ),
            Vec::<String>::new()
        );
    }

    #[test]
    fn alternatives_nested_in_alternatives_stop_at_the_budget() {
        // Each level doubles the comparisons of the one below (an outside probe's schema took
        // 24 s before the budget).
        let recursive = json!({"$defs": {"n": {"anyOf": [
            {"properties": {"a": {"$ref": "#/$defs/n"}}, "const": 0},
            {"properties": {"a": {"$ref": "#/$defs/n"}}, "const": 1}
        ]}}, "$ref": "#/$defs/n"});
        let found = diff(&recursive, &recursive);
        assert!(
            found.iter().any(|f| f.contains("too complex to compare")),
            "{found:?}"
        );
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

    #[test]
    fn refs_booleans_consts_and_closed_objects() {
        let old = json!({
            "$defs": {"address": {"type": "object", "properties": {"city": {"type": "string"}, "zip": {"type": "string"}}}},
            "type": "object",
            "properties": {"ship_to": {"$ref": "#/$defs/address"}, "extra": true, "tags": {"type": "array"}, "kind": {"type": "string"}}
        });
        let mut new = old.clone();
        new["$defs"]["address"]["properties"]
            .as_object_mut()
            .map(|p| p.remove("zip"));
        new["properties"]["extra"] = json!(false);
        new["properties"]["tags"]["items"] = json!({"type": "string"});
        new["properties"]["kind"]["const"] = json!("order");
        new["additionalProperties"] = json!(false);
        assert_eq!(
            diff(&old, &new),
            vec![
                "the root no longer allows properties beyond those it lists",
                "extra now rejects every value",
                "kind is now restricted to the constant \"order\"",
                "property ship_to.zip was removed",
                "tags[] now restricts its items",
            ]
        );
        // A recursive schema terminates.
        let tree = json!({"$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}}, "$ref": "#/$defs/node"});
        assert_eq!(diff(&tree, &tree), Vec::<String>::new());
    }

    #[test]
    fn many_recursive_references_stay_bounded() {
        let wide = json!({"$defs": {"n": {"type": "object", "properties": {
            "a": {"$ref": "#/$defs/n"}, "b": {"$ref": "#/$defs/n"}, "c": {"$ref": "#/$defs/n"}, "d": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"});
        let started = std::time::Instant::now();
        assert_eq!(diff(&wide, &wide), Vec::<String>::new());
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "inlining must be bounded"
        );
    }
}
