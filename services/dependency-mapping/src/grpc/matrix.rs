//! The dependency matrix (services x services) as CSV or JSON.

use crate::domain::{Dependency, ServiceName};

fn cell_text(d: &Dependency) -> String {
    if d.data_flows.is_empty() {
        d.kind.as_str().to_owned()
    } else {
        format!(
            "{}:{}",
            d.kind.as_str(),
            d.data_flows.iter().cloned().collect::<Vec<_>>().join(";")
        )
    }
}

/// A CSV cell, quoted when needed; a value a spreadsheet would run as a formula (starting with
/// `=`, `+`, `-`, `@`, tab or carriage return) is prefixed with `'` so it stays text.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Rows are consumers, columns providers; a cell is `kind` or `kind:flow;flow`.
pub fn csv(names: &[ServiceName], cells: &[&Dependency]) -> String {
    let index: std::collections::HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut grid = vec![vec![String::new(); names.len()]; names.len()];
    for d in cells {
        if let (Some(&r), Some(&c)) = (
            index.get(d.consumer.as_str()),
            index.get(d.provider.as_str()),
        ) {
            grid[r][c] = cell_text(d);
        }
    }
    let mut out = String::from("consumer\\provider");
    for n in names {
        out.push(',');
        out.push_str(&csv_field(n.as_str()));
    }
    out.push('\n');
    for (r, n) in names.iter().enumerate() {
        out.push_str(&csv_field(n.as_str()));
        for cell in &grid[r] {
            out.push(',');
            out.push_str(&csv_field(cell));
        }
        out.push('\n');
    }
    out
}

pub fn json(names: &[ServiceName], cells: &[&Dependency]) -> String {
    serde_json::json!({
        "services": names.iter().map(|n| n.as_str()).collect::<Vec<_>>(),
        "cells": cells.iter().map(|d| serde_json::json!({
            "consumer": d.consumer.as_str(),
            "provider": d.provider.as_str(),
            "kind": d.kind.as_str(),
            "data_flows": d.data_flows,
        })).collect::<Vec<_>>(),
    })
    .to_string()
}

#[cfg(test)]
mod csv_tests {
    #[test]
    fn formulas_stay_text_and_separators_are_quoted() {
        assert_eq!(super::csv_field("sync-api"), "sync-api");
        assert_eq!(
            super::csv_field("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(super::csv_field("+1"), "'+1");
        assert_eq!(super::csv_field("-2"), "'-2");
        assert_eq!(super::csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::csv_field("a,b"), "\"a,b\"");
    }
}
