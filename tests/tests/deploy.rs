//! deploy/: the Kubernetes manifests (Kustomize base and production overlay), rendered and
//! validated strictly against Kubernetes 1.30 with kubernetes-validate (PyPI, installed by
//! scripts/services.sh), by scripts/validate_kubernetes.py. A manifest with a field Kubernetes
//! does not know, or a value of the wrong type, fails it.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository")
        .to_path_buf()
}

fn validate(dir: &Path) -> std::process::Output {
    Command::new("python3")
        .arg(root().join("scripts/validate_kubernetes.py"))
        .arg(dir)
        .args(["--kubernetes-version", "1.30.0"])
        .output()
        .expect("run python3 (scripts/services.sh installs kubernetes-validate)")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read dir").flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

#[test]
fn the_kubernetes_manifests_are_valid_for_kubernetes_1_30() {
    let manifests = root().join("deploy/kubernetes");
    let out = validate(&manifests);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    // Six services, each a Deployment, a Service and a PodDisruptionBudget, with two
    // ConfigMaps, the NetworkPolicy and the ServiceMonitor, in the base and the overlay.
    assert_eq!(said.matches("22 objects rendered").count(), 2, "{said}");

    // The production overlay pins the image, sets the namespace and raises every service's
    // resources.
    let dumped = Command::new("python3")
        .arg(root().join("scripts/validate_kubernetes.py"))
        .arg("--dump")
        .arg(manifests.join("overlays/production"))
        .output()
        .expect("dump");
    let rendered = String::from_utf8_lossy(&dumped.stdout);
    assert_eq!(
        rendered
            .matches("image: ghcr.io/flotilla/flotilla:0.1.0")
            .count(),
        6,
        "{rendered}"
    );
    assert_eq!(
        rendered.matches("namespace: flotilla-production").count(),
        22
    );
    assert_eq!(rendered.matches("memory: 4Gi").count(), 6);
    // Three replicas of each, named by their pods (the holders of the duty leases).
    assert_eq!(rendered.matches("replicas: 3").count(), 6, "{rendered}");
    assert_eq!(rendered.matches("fieldPath: metadata.name").count(), 6);
    // Every Deployment probes gRPC health and runs as non-root.
    assert_eq!(rendered.matches("runAsNonRoot: true").count(), 6);
    assert_eq!(rendered.matches("grpc:").count(), 18, "three probes each");

    // Prometheus scrapes each service's metrics port, which the Service names.
    assert!(rendered.contains("kind: ServiceMonitor"), "{rendered}");
    assert_eq!(
        rendered.matches("name: metrics").count(),
        12,
        "container and Service ports"
    );

    // A field Kubernetes does not know, and a wrong type: refused, naming the object.
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&manifests, dir.path());
    let file = dir.path().join("base/governance.yaml");
    let yaml = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, yaml.replacen("replicas: 1", "replicas: one", 1)).expect("write");
    let out = validate(dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("Deployment/flotilla-governance"),
        "{}",
        text(&out)
    );
    std::fs::write(
        &file,
        yaml.replacen("strategy:", "strategie: {}\n  strategy:", 1),
    )
    .expect("write");
    let out = validate(dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // A ServiceMonitor naming a port no Service has.
    std::fs::write(&file, &yaml).expect("write");
    let monitor = dir.path().join("base/service-monitor.yaml");
    let m = std::fs::read_to_string(&monitor).expect("read");
    std::fs::write(&monitor, m.replace("- port: metrics", "- port: metrix")).expect("write");
    let out = validate(dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("ServiceMonitor/flotilla"),
        "{}",
        text(&out)
    );
}
