//! The connection to PostgreSQL breaks after the server committed a batch but before its answer
//! reached the store: the append is answered as written (looked up), not as an error a client
//! would retry into a second copy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use flotilla_core::ExpectedVersion;
use flotilla_core::conformance::synthetic;
use flotilla_core::ids::StreamId;
use flotilla_core::store::{AppendRequest, EventStore};
use flotilla_store::PgStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn postgres() -> (String, String) {
    let url = std::env::var("FLOTILLA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let rest = url.split("://").nth(1).unwrap_or_default();
    let host = rest
        .split('@')
        .next_back()
        .unwrap_or_default()
        .split('/')
        .next()
        .unwrap_or("127.0.0.1:5432")
        .to_owned();
    (url, host)
}

/// A TCP proxy that, once armed, kills the next connection that sends the batch statement, at
/// the moment the server answers it (so the server has run it and the client never learns).
struct Proxy {
    addr: std::net::SocketAddr,
    armed: Arc<AtomicBool>,
}

async fn start_proxy(upstream: String) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let armed = Arc::new(AtomicBool::new(false));
    let arm = armed.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let upstream = upstream.clone();
            let arm = arm.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let doomed = Arc::new(AtomicBool::new(false));
                let d = doomed.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    // sqlx prepares the statement (Parse, Describe) and then runs it (Bind,
                    // Execute): doom the connection at the Bind that follows the statement's text.
                    let mut prepared = false;
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let chunk = &buf[..n];
                        if chunk.windows(12).any(|w| w == b"WITH head AS") {
                            prepared = true;
                        }
                        if prepared
                            && chunk.first() == Some(&b'B')
                            && arm.swap(false, Ordering::SeqCst)
                        {
                            d.store(true, Ordering::SeqCst);
                        }
                        if sw.write_all(chunk).await.is_err() {
                            return;
                        }
                    }
                });
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if doomed.load(Ordering::SeqCst) {
                        // The server answered the batch: the client never hears it.
                        break;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    Proxy { addr, armed }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_committed_before_the_connection_broke_is_answered_as_written() {
    let (url, host) = postgres();
    let proxy = start_proxy(host.clone()).await;
    let proxied = url.replacen(&host, &proxy.addr.to_string(), 1);
    let schema = format!("settle_{}", uuid::Uuid::now_v7().simple());
    let store = PgStore::connect(&proxied, &schema).await.expect("store");
    let s = StreamId::new_for("settle");
    // The writer opens its connection with the first batch (whose first statement carries the
    // batch statement's text): kill it once the server has answered.
    proxy.armed.store(true, Ordering::SeqCst);
    let first = store
        .append(AppendRequest::new(
            s.clone(),
            ExpectedVersion::Any,
            vec![synthetic(1, 0)],
        ))
        .await;
    assert!(
        !proxy.armed.load(Ordering::SeqCst),
        "the batch statement went through the proxy"
    );
    let first = first.expect("a committed batch is answered as written");
    assert_eq!(first.first_position, 1);
    // The next append (on a new connection) follows on, and the chain holds.
    let second = store
        .append(AppendRequest::new(
            s.clone(),
            ExpectedVersion::Exact(0),
            vec![synthetic(1, 1)],
        ))
        .await
        .expect("next append");
    assert_eq!(second.first_position, 2);
    let direct = PgStore::connect(&url, &schema).await.expect("direct");
    let stored = direct.read_all(1, 100).await.expect("read");
    assert_eq!(stored.len(), 2, "each append stored once");
    assert!(direct.verify(&|_| {}).await.expect("verify").holds());
    PgStore::drop_schema(&url, &schema).await.expect("drop");
}
