//! Mutual TLS at the edge of `flotilla up`, with certificates the openssl command line makes:
//! a client with a certificate of the configured CA is served (and its token still checked),
//! one of another CA and one without a certificate are refused; renewed files (a server
//! certificate and a client CA of a new authority) apply to new connections without a
//! restart. The CLI talks to the node over https with --tls-ca/--tls-cert/--tls-key.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use flotilla_proto::dependency::v1 as pb;
use pb::dependency_mapping_service_client::DependencyMappingServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

mod support;
use support::{flotilla, stop, text, token, up};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl (scripts/services.sh installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
}

/// A certificate authority `name` (name.pem, name.key).
fn authority(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN=Flotilla test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A certificate `name` signed by `ca`, for 127.0.0.1 and localhost, good for servers and
/// clients.
fn leaf(dir: &Path, ca: &str, name: &str) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n",
    )
    .expect("ext");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

struct Certs(PathBuf);

impl Certs {
    fn pem(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.0.join(format!("{name}.pem"))).expect("pem")
    }
    fn key(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.0.join(format!("{name}.key"))).expect("key")
    }
    /// TLS trusting `ca`, showing `identity` when given.
    fn client(&self, ca: &str, identity: Option<&str>) -> ClientTlsConfig {
        let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(self.pem(ca)));
        match identity {
            Some(id) => tls.identity(Identity::from_pem(self.pem(id), self.key(id))),
            None => tls,
        }
    }
}

/// ListServices over https with `tls`, with or without a token.
async fn list(addr: &str, tls: ClientTlsConfig, token: Option<&str>) -> Result<(), String> {
    let channel = Channel::from_shared(addr.to_owned())
        .expect("url")
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut client = DependencyMappingServiceClient::new(channel);
    let mut request = tonic::Request::new(pb::ListServicesRequest::default());
    if let Some(t) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("header"),
        );
    }
    client
        .list_services(request)
        .await
        .map(|_| ())
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

/// A CreateRelease with a name governance's naming rule refuses: orchestration asks governance
/// (its peer, over https with the node's certificate as its client certificate), so the answer
/// is INVALID_ARGUMENT naming it when the peer call went through.
async fn peer_answers(addr: &str, tls: ClientTlsConfig, token: &str) -> Result<(), String> {
    use flotilla_proto::orchestration::v1 as orch;
    let channel = Channel::from_shared(addr.to_owned())
        .expect("url")
        .tls_config(tls)
        .map_err(|e| e.to_string())?
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    let mut client = orch::orchestration_service_client::OrchestrationServiceClient::new(channel);
    let mut request = tonic::Request::new(orch::CreateReleaseRequest {
        name: "tls-next".into(),
        business_unit: "central".into(),
        ..Default::default()
    });
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    match client.create_release(request).await {
        Err(s) if s.code() == tonic::Code::InvalidArgument && s.message().contains("tls-next") => {
            Ok(())
        }
        other => Err(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_the_configured_ca_are_served_others_refused_and_renewals_apply_live() {
    let dir = tempfile::tempdir().expect("tempdir");
    let certs = Certs(dir.path().join("certs"));
    std::fs::create_dir_all(&certs.0).expect("certs");
    for ca in ["ca1", "ca2"] {
        authority(&certs.0, ca);
    }
    leaf(&certs.0, "ca1", "server1");
    leaf(&certs.0, "ca2", "server2");
    leaf(&certs.0, "ca1", "client1");
    leaf(&certs.0, "ca2", "client2");
    // The node reads these paths; the renewal below replaces their contents.
    let at = |n: &str| certs.0.join(n);
    std::fs::copy(at("server1.pem"), at("node.pem")).expect("copy");
    std::fs::copy(at("server1.key"), at("node.key")).expect("copy");
    std::fs::copy(at("ca1.pem"), at("clients.pem")).expect("copy");
    std::fs::write(
        dir.path().join("flotilla.toml"),
        format!(
            "tls_cert = \"{}\"\ntls_key = \"{}\"\ntls_client_ca = \"{}\"\ntls_reload_secs = 1\n",
            at("node.pem").display(),
            at("node.key").display(),
            at("clients.pem").display(),
        ),
    )
    .expect("config");
    let (node, plain) = up(dir.path());
    let addr = plain.replacen("http://", "https://", 1);
    let token = token(dir.path(), "tls-user", "admin", "central");

    // The right client is served; its token is still checked.
    list(&addr, certs.client("ca1", Some("client1")), Some(&token))
        .await
        .expect("a client of the configured CA with a token is served");
    let tokenless = list(&addr, certs.client("ca1", Some("client1")), None).await;
    assert!(
        tokenless
            .as_ref()
            .is_err_and(|e| e.starts_with("Unauthenticated")),
        "a certificate does not replace the token: {tokenless:?}"
    );
    // A client of another CA, and one without a certificate, are refused.
    let other = list(&addr, certs.client("ca1", Some("client2")), Some(&token)).await;
    assert!(other.is_err(), "a client of another CA was served");
    let none = list(&addr, certs.client("ca1", None), Some(&token)).await;
    assert!(none.is_err(), "a client without a certificate was served");
    // Plain gRPC is not served at all.
    let cleartext = Channel::from_shared(plain.clone())
        .expect("url")
        .connect_timeout(Duration::from_secs(5))
        .connect()
        .await;
    if let Ok(ch) = cleartext {
        let r = DependencyMappingServiceClient::new(ch)
            .list_services(pb::ListServicesRequest::default())
            .await;
        assert!(r.is_err(), "plain gRPC was served on a TLS node");
    }

    // The CLI over https.
    let cli = |cert: &str| {
        flotilla()
            .args([
                "status", "--addr", &addr, "--output", "json", "--token", &token,
            ])
            .arg("--tls-ca")
            .arg(at("ca1.pem"))
            .arg("--tls-cert")
            .arg(at(&format!("{cert}.pem")))
            .arg("--tls-key")
            .arg(at(&format!("{cert}.key")))
            .output()
            .expect("flotilla status")
    };
    let out = cli("client1");
    assert!(out.status.success(), "{}", text(&out));
    let out = cli("client2");
    assert!(
        !out.status.success(),
        "the CLI with another CA's certificate was served"
    );
    let out = flotilla()
        .args(["status", "--addr", &addr, "--token", &token])
        .output()
        .expect("flotilla status");
    assert!(
        !out.status.success() && text(&out).contains("--tls-ca"),
        "an https address without a CA says what to pass: {}",
        text(&out)
    );

    // doctor tells when each file's certificates end, as openssl reads them (two days: a
    // warning), and that the files make a configuration.
    let doctor = || {
        let out = flotilla()
            .args(["doctor", "--output", "json", "--config"])
            .arg(dir.path().join("flotilla.toml"))
            .output()
            .expect("flotilla doctor");
        let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("doctor's JSON ({e}): {}", text(&out)));
        move |name: &str| {
            checks
                .iter()
                .find(|c| c["check"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("no {name} check: {checks:#?}"))
        }
    };
    let enddate = |pem: &str| {
        let out = Command::new("openssl")
            .args(["x509", "-noout", "-enddate", "-dateopt", "iso_8601", "-in"])
            .arg(at(pem))
            .output()
            .expect("openssl x509");
        assert!(out.status.success(), "openssl x509: {}", text(&out));
        let date = String::from_utf8_lossy(&out.stdout)
            .trim()
            .trim_start_matches("notAfter=")
            .to_owned();
        assert!(date.len() >= 10, "openssl printed no date: {date:?}");
        date
    };
    let checks = doctor();
    assert_eq!(checks("tls")["result"], "ok", "{:#?}", checks("tls"));
    for (check, pem) in [
        ("tls_cert expiry", "server1.pem"),
        ("tls_client_ca expiry", "ca1.pem"),
    ] {
        let c = checks(check);
        assert_eq!(c["result"], "warn", "{c:#?}");
        let detail = c["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(&format!("expires at {}", enddate(pem))),
            "{check}: {detail} (openssl: {})",
            enddate(pem)
        );
    }

    // Renewal: a server certificate of the new authority, and clients of it only. New
    // connections use the new files within the reload interval, without a restart.
    std::fs::copy(at("server2.key"), at("node.key")).expect("copy");
    std::fs::copy(at("server2.pem"), at("node.pem")).expect("copy");
    std::fs::copy(at("ca2.pem"), at("clients.pem")).expect("copy");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match list(&addr, certs.client("ca2", Some("client2")), Some(&token)).await {
            Ok(()) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "the renewed certificates never applied: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Orchestration reaches governance over https, showing the node's certificate: its first
    // call comes after the renewal, so it goes through only if its channel follows the files
    // (one built from the files it started with trusts the old CA).
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match peer_answers(&addr, certs.client("ca2", Some("client2")), &token).await {
            Ok(()) => break,
            Err(e) => assert!(
                Instant::now() < deadline,
                "orchestration's peer calls never followed the renewal: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let old = list(&addr, certs.client("ca1", Some("client1")), Some(&token)).await;
    assert!(old.is_err(), "the old authority's client is still served");
    let mismatched = list(&addr, certs.client("ca2", Some("client1")), Some(&token)).await;
    assert!(
        mismatched.is_err(),
        "a client of the old CA is still accepted"
    );

    // A broken file is refused and the last good configuration stays.
    std::fs::write(at("clients.pem"), "not a certificate").expect("write");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    list(&addr, certs.client("ca2", Some("client2")), Some(&token))
        .await
        .expect("still served with the last good files after a broken renewal");
    let checks = doctor();
    assert_eq!(checks("tls")["result"], "fail", "{:#?}", checks("tls"));
    assert_eq!(checks("tls_client_ca expiry")["result"], "fail");
    stop(node);
}
