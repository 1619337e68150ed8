//! The test Prometheus (Debian's, started by scripts/services.sh) and exporters for it to scrape.

use std::sync::{Arc, Mutex};

/// An exporter for the test Prometheus (scripts/services.sh) to scrape: serves the exposition
/// text it is given, listed in a file_sd target file labelled `flotilla_test=<label>`.
pub struct Exporter {
    value: Arc<Mutex<String>>,
    #[allow(dead_code)]
    targets: Target,
}

impl Exporter {
    pub async fn start(label: &str, text: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let value = Arc::new(Mutex::new(text.to_owned()));
        let shared = value.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let v = shared.lock().map(|v| v.clone()).unwrap_or_default();
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buf = [0u8; 4096];
                    let _ = sock.read(&mut buf).await;
                    let body = v;
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                });
            }
        });
        let targets = Target::new(label, port);
        Self { value, targets }
    }

    /// Serves `text` from now on.
    pub fn set(&self, v: &str) {
        if let Ok(mut value) = self.value.lock() {
            *value = v.to_owned();
        }
    }
}

/// A file_sd target file for the test Prometheus: `127.0.0.1:<port>` labelled
/// `flotilla_test=<label>`, removed when dropped.
pub struct Target(std::path::PathBuf);

impl Target {
    pub fn new(label: &str, port: u16) -> Self {
        let dir = std::env::var("FLOTILLA_TEST_PROMETHEUS_TARGETS")
            .unwrap_or_else(|_| "/tmp/flotilla-prometheus/targets".into());
        std::fs::create_dir_all(&dir).expect("targets dir");
        let file = std::path::Path::new(&dir).join(format!("{label}.json"));
        std::fs::write(
            &file,
            format!(
                r#"[{{"targets":["127.0.0.1:{port}"],"labels":{{"flotilla_test":"{label}"}}}}]"#
            ),
        )
        .expect("targets");
        Self(file)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The test Prometheus' URL.
pub fn prometheus_url() -> String {
    std::env::var("FLOTILLA_TEST_PROMETHEUS_URL").unwrap_or_else(|_| "http://127.0.0.1:9090".into())
}
