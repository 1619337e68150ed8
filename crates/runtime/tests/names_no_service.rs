//! The runtime names no service: what a service is, does or consumes is the service's to say
//! (through its module), so a new service needs no change here. Scans the runtime's sources
//! (comments and test modules aside) for the platform's service names.

const SERVICES: &[&str] = &[
    "governance",
    "dependency-mapping",
    "dependency_mapping",
    "orchestration",
    "risk-validation",
    "risk_validation",
    "monitoring",
    "compliance",
];

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn runtime_sources_name_no_service() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 10, "found the sources");
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read");
        for (n, line) in text.lines().enumerate() {
            // Unit tests sit at the end of a file; they may use real names as examples.
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            let code = line
                .split("//")
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            for s in SERVICES {
                if code.contains(s) {
                    found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the runtime names services:\n{}",
        found.join("\n")
    );
}
