//! Reading certificates (against what openssl reads) and the TLS settings' rules.

use super::*;

fn first(pem: &str) -> CertificateDer<'static> {
    certificates(Path::new("fixture"), pem.as_bytes())
        .expect("pem")
        .remove(0)
}

/// Certificates made with `openssl req -x509 … -days 30` and `-days 10000`; the expected
/// values are what `openssl x509 -noout -enddate` printed for them (2027-01-06 01:55:54Z,
/// a UTCTime, and 2054-04-24 01:55:54Z, past 2049 so a GeneralizedTime), as Unix seconds.
#[test]
fn not_after_reads_what_openssl_reads() {
    let utc = first(include_str!("fixtures/utc_time.pem"));
    assert_eq!(not_after(&utc), Ok(1_799_200_554));
    let generalized = first(include_str!("fixtures/generalized_time.pem"));
    assert_eq!(not_after(&generalized), Ok(2_660_608_554));
}

#[test]
fn not_a_certificate_is_an_error() {
    let der = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    assert!(not_after(&der).is_err());
    assert!(not_after(&CertificateDer::from(Vec::new())).is_err());
    assert!(certificates(Path::new("x"), b"not pem").is_err());
}

fn config(cert: &str, key: &str, ca: &str, auth: &str) -> Config {
    Config {
        tls_cert: cert.into(),
        tls_key: key.into(),
        tls_client_ca: ca.into(),
        tls_client_auth: auth.into(),
        ..Config::default()
    }
}

#[test]
fn settings_that_do_not_go_together_say_what_to_set() {
    let err = |c: Config| TlsFiles::from_config(&c).expect_err("refused").to_string();
    assert!(err(config("c.pem", "", "", "")).contains("tls_cert and tls_key go together"));
    assert!(err(config("", "", "ca.pem", "")).contains("needs the server's certificate"));
    assert!(err(config("c.pem", "k.pem", "ca.pem", "sometimes")).contains("\"sometimes\""));
    assert!(
        err(config("c.pem", "k.pem", "", "required")).contains("tls_client_ca is not set"),
        "mutual TLS asked for without a CA is refused, not silently off"
    );
    assert_eq!(TlsFiles::from_config(&Config::default()).ok(), Some(None));
    let optional = TlsFiles::from_config(&config("c.pem", "k.pem", "ca.pem", "optional"))
        .expect("valid")
        .expect("tls");
    assert_eq!(optional.client_auth, ClientAuth::Optional);
    let missing = ServerTls::load(optional).expect_err("no such files");
    assert!(
        missing.to_string().contains("cannot read c.pem"),
        "{missing}"
    );
}
