//! The report as a printable HTML page: one table per section, each line with its citation
//! (service, position, hash, ledger leaf) and its proof, the event's fields folded beneath it,
//! and the signed checkpoint at the end so a printed copy can be checked by hand.

use std::fmt::Write;

use super::Report;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#111}\
h1{font-size:1.6rem;margin:0 0 .25rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:1px solid #999}\
table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3rem .45rem;vertical-align:top;text-align:left}\
th{background:#f2f2f2}code,pre{font:12px ui-monospace,monospace;word-break:break-all}\
details summary{cursor:pointer;color:#333}.muted{color:#555}\
@media print{body{margin:1cm}details{display:block}details>*{display:block}a{color:#000}}";

/// The report's page.
pub fn render(r: &Report) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Audit report: {}</title><style>{STYLE}</style></head><body>",
        esc(&r.release)
    );
    let lines: usize = r.sections.iter().map(|s| s.lines.len()).sum();
    let _ = write!(
        h,
        "<h1>Audit report: <span id=\"release\">{}</span></h1><p class=\"muted\">{lines} events from the compliance ledger, each proven included in the signed checkpoint of size {} below (RFC 9162 inclusion proofs; leaf hash SHA-256(0x00 || leaf)).</p>",
        esc(&r.release),
        r.tree_size
    );
    if lines == 0 {
        h.push_str("<p>The ledger holds no event about this release.</p>");
    }
    for s in &r.sections {
        let _ = write!(
            h,
            "<h2>{}</h2><table><thead><tr><th>when</th><th>what</th><th>who</th><th>cited event</th></tr></thead><tbody>",
            esc(s.title)
        );
        for l in &s.lines {
            let _ = write!(
                h,
                "<tr class=\"line\" data-hash=\"{hash}\"><td>{at}</td><td>{summary}<details><summary>fields</summary><table>",
                hash = esc(&l.event_hash),
                at = esc(&l.at),
                summary = esc(&l.summary),
            );
            for f in &l.fields {
                let _ = write!(
                    h,
                    "<tr><td><code>{}</code></td><td>{}</td></tr>",
                    esc(&f.name),
                    esc(&f.value)
                );
            }
            let _ = write!(
                h,
                "</table></details></td><td>{actor}</td><td><code>{service} #{seq}</code><br><code>{hash}</code><br><span class=\"muted\">{ty}, leaf {index}</span><details><summary>leaf and proof ({n} hashes)</summary><pre>{leaf}\n\n{proof}</pre></details></td></tr>",
                actor = esc(&l.actor),
                service = esc(&l.service),
                seq = l.sequence,
                hash = esc(&l.event_hash),
                ty = esc(&l.event_type),
                index = l.index,
                n = l.proof.len(),
                leaf = esc(&l.leaf),
                proof = esc(&l.proof.join("\n")),
            );
        }
        h.push_str("</tbody></table>");
    }
    let _ = write!(
        h,
        "<h2>Signed checkpoint</h2><pre id=\"checkpoint\">{}</pre></body></html>",
        esc(&r.checkpoint)
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_events_is_escaped() {
        assert_eq!(
            esc("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        let r = Report {
            release: "<b>r</b>".into(),
            checkpoint: "o\n1\nroot\n".into(),
            tree_size: 1,
            sections: Vec::new(),
        };
        let page = render(&r);
        assert!(page.contains("&lt;b&gt;r&lt;/b&gt;") && !page.contains("<b>r</b>"));
    }
}
