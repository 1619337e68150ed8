//! Tokens: HS256 and RS256 (JWKS file and URL) verify; `alg=none`, expired, wrong audience,
//! wrong key, tampered and malformed tokens are all refused.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use flotilla_auth::token::{Claims, DEFAULT_AUDIENCE, DEV_ISSUER};
use flotilla_auth::{AuthError, KeySource, TokenIssuer, TokenVerifier};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test-only";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn claims(aud: &str, exp: u64) -> Claims {
    Claims {
        sub: "ana".into(),
        roles: vec!["security".into()],
        bu: "payments".into(),
        aud: aud.into(),
        iss: DEV_ISSUER.into(),
        exp,
        iat: now(),
    }
}

async fn hs_verifier() -> TokenVerifier {
    TokenVerifier::new(
        KeySource::Hs256 {
            secret: SECRET.to_vec(),
        },
        DEFAULT_AUDIENCE,
        Some(DEV_ISSUER),
    )
    .await
    .expect("verifier")
}

fn hs(c: &Claims, secret: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        c,
        &EncodingKey::from_secret(secret),
    )
    .expect("encode")
}

fn refused(r: Result<std::sync::Arc<flotilla_auth::Identity>, AuthError>, needle: &str) {
    match r {
        Ok(i) => panic!("token accepted for {i:?}, expected refusal containing {needle:?}"),
        Err(e) => assert!(e.to_string().contains(needle), "{e} lacks {needle:?}"),
    }
}

#[tokio::test]
async fn hs256_round_trip_and_every_bad_token_is_refused() {
    let v = hs_verifier().await;
    let issuer = TokenIssuer::hs256(SECRET, DEFAULT_AUDIENCE, DEV_ISSUER).expect("issuer");
    let roles: BTreeSet<String> = ["cab".to_owned(), "security".to_owned()].into();
    let t = issuer
        .issue("bob", &roles, "cards", Duration::from_secs(60))
        .expect("issue");
    let id = v.verify(&t).await.expect("valid");
    assert_eq!(id.subject, "bob");
    assert_eq!(id.business_unit, "cards");
    assert_eq!(id.roles, roles);

    // alg=none: header {"alg":"none"} and no signature.
    let body =
        B64.encode(serde_json::to_vec(&claims(DEFAULT_AUDIENCE, now() + 600)).expect("json"));
    let none = format!("{}.{}.", B64.encode(br#"{"alg":"none","typ":"JWT"}"#), body);
    refused(v.verify(&none).await, "invalid token");
    // Expired (beyond the 30 s leeway).
    refused(
        v.verify(&hs(&claims(DEFAULT_AUDIENCE, now() - 120), SECRET))
            .await,
        "expired",
    );
    // Wrong audience.
    refused(
        v.verify(&hs(&claims("someone-else", now() + 600), SECRET))
            .await,
        "audience",
    );
    // Wrong key.
    refused(
        v.verify(&hs(
            &claims(DEFAULT_AUDIENCE, now() + 600),
            b"another-secret-another-secret-another",
        ))
        .await,
        "signature",
    );
    // Tampered: claims changed after signing (roles raised to admin).
    let good = hs(&claims(DEFAULT_AUDIENCE, now() + 600), SECRET);
    let parts: Vec<&str> = good.split('.').collect();
    let mut c = claims(DEFAULT_AUDIENCE, now() + 600);
    c.roles = vec!["admin".into()];
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(serde_json::to_vec(&c).expect("json")),
        parts[2]
    );
    refused(v.verify(&forged).await, "signature");
    // Malformed, and an RS256 token shown to an HS256 server.
    refused(v.verify("not-a-jwt").await, "invalid token");
    let rs_header = B64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    refused(
        v.verify(&format!("{rs_header}.{}.{}", parts[1], parts[2]))
            .await,
        "not accepted",
    );
    // A token with no role is refused.
    let mut c = claims(DEFAULT_AUDIENCE, now() + 600);
    c.roles.clear();
    refused(v.verify(&hs(&c, SECRET)).await, "no role");
    // An audience list naming us is accepted; a token not valid before a future time is not.
    let mut c = claims(DEFAULT_AUDIENCE, now() + 600);
    c.aud = flotilla_auth::token::Audience::Many(vec!["other".into(), DEFAULT_AUDIENCE.into()]);
    assert_eq!(
        v.verify(&hs(&c, SECRET))
            .await
            .expect("list audience")
            .subject,
        "ana"
    );
    #[derive(serde::Serialize)]
    struct WithNbf {
        #[serde(flatten)]
        c: Claims,
        nbf: u64,
    }
    let early = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &WithNbf {
            c: claims(DEFAULT_AUDIENCE, now() + 7200),
            nbf: now() + 3600,
        },
        &EncodingKey::from_secret(SECRET),
    )
    .expect("encode");
    refused(v.verify(&early).await, "not valid yet");
    // Short secrets are refused at configuration time.
    assert!(TokenIssuer::hs256(b"short", DEFAULT_AUDIENCE, DEV_ISSUER).is_err());
}

struct RsaKey {
    pem: Vec<u8>,
    jwk: serde_json::Value,
}

fn rsa_key(dir: &std::path::Path, name: &str, kid: &str) -> RsaKey {
    let path = dir.join(format!("{name}.pem"));
    let ok = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&path)
        .arg("2048")
        .output()
        .expect("openssl must be installed for the RS256 tests")
        .status
        .success();
    assert!(ok, "openssl genrsa failed");
    let out = Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(&path)
        .output()
        .expect("openssl rsa");
    let text = String::from_utf8(out.stdout).expect("utf8");
    let hex = text.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    RsaKey {
        pem: std::fs::read(&path).expect("pem"),
        jwk: serde_json::json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": B64.encode(&n), "e": B64.encode([1u8, 0, 1]),
        }),
    }
}

fn rs(c: &Claims, key: &RsaKey, kid: &str) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, c, &EncodingKey::from_rsa_pem(&key.pem).expect("pem")).expect("encode")
}

/// Serves `body` to every HTTP request, counting requests.
async fn jwks_server(
    body: std::sync::Arc<std::sync::Mutex<String>>,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let text = body.lock().expect("lock").clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    (format!("http://{addr}/jwks.json"), hits)
}

#[tokio::test]
async fn rs256_from_jwks_file_and_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = rsa_key(dir.path(), "a", "key-a");
    let b = rsa_key(dir.path(), "b", "key-b");
    let jwks_a = serde_json::json!({ "keys": [a.jwk] }).to_string();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, &jwks_a).expect("write");
    let v = TokenVerifier::new(KeySource::JwksFile(file), DEFAULT_AUDIENCE, None)
        .await
        .expect("verifier");
    let c = claims(DEFAULT_AUDIENCE, now() + 600);
    assert_eq!(
        v.verify(&rs(&c, &a, "key-a")).await.expect("valid").subject,
        "ana"
    );
    // Signed by a key the JWKS does not hold, under a trusted kid and under its own kid.
    refused(v.verify(&rs(&c, &b, "key-a")).await, "signature");
    refused(v.verify(&rs(&c, &b, "key-b")).await, "no key with id");
    // An HS256 token signed with the public modulus as secret (algorithm confusion).
    refused(v.verify(&hs(&c, SECRET)).await, "not accepted");
    refused(
        v.verify(&rs(&claims(DEFAULT_AUDIENCE, now() - 120), &a, "key-a"))
            .await,
        "expired",
    );

    // URL: a key rotated in later is fetched when a token names it.
    let body = std::sync::Arc::new(std::sync::Mutex::new(jwks_a));
    let (url, hits) = jwks_server(body.clone()).await;
    let v = TokenVerifier::new(KeySource::JwksUrl(url), DEFAULT_AUDIENCE, None)
        .await
        .expect("verifier")
        .with_refresh_interval(Duration::ZERO);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    v.verify(&rs(&c, &a, "key-a")).await.expect("valid");
    *body.lock().expect("lock") = serde_json::json!({ "keys": [a.jwk, b.jwk] }).to_string();
    assert_eq!(
        v.verify(&rs(&c, &b, "key-b"))
            .await
            .expect("rotated key")
            .subject,
        "ana"
    );
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Plain http is refused off the loopback interface.
    assert!(
        TokenVerifier::new(
            KeySource::JwksUrl("http://idp.example.com/jwks.json".into()),
            DEFAULT_AUDIENCE,
            None
        )
        .await
        .expect_err("plain http")
        .to_string()
        .contains("https")
    );
    for sneaky in [
        "http://localhost.evil.example/jwks",
        "http://localhost@evil.example/jwks",
    ] {
        assert!(
            TokenVerifier::new(KeySource::JwksUrl(sneaky.into()), DEFAULT_AUDIENCE, None)
                .await
                .is_err(),
            "{sneaky}"
        );
    }
    // A key removed by the identity provider stops verifying after a refresh.
    *body.lock().expect("lock") = serde_json::json!({ "keys": [b.jwk] }).to_string();
    assert!(v.refresh().await);
    refused(v.verify(&rs(&c, &a, "key-a")).await, "no key with id");
    // A bad JWKS document is refused at start.
    let (bad, _) = jwks_server(std::sync::Arc::new(std::sync::Mutex::new("{}".into()))).await;
    assert!(
        TokenVerifier::new(KeySource::JwksUrl(bad), DEFAULT_AUDIENCE, None)
            .await
            .is_err()
    );
}
