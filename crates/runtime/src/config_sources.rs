//! Where each effective setting came from (the configuration file, the environment or the
//! default), with secrets masked: what `flotilla config show` prints.

use std::path::Path;

use crate::config::{Config, ConfigError};

/// One effective setting.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Setting {
    /// `store_url`, or `<service>.<key>` for a service's section.
    pub key: String,
    /// As the configuration holds it (TOML), a secret masked.
    pub value: String,
    /// `default`, `file <path>` or `env FLOTILLA_…`.
    pub source: String,
}

/// Whether a key names a secret whose value is never shown.
fn secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["secret", "password", "token", "sasl", "private"]
        .iter()
        .any(|s| k.contains(s))
}

/// A URL's password masked (`postgres://user:***@host/db`).
pub fn mask_url(v: &str) -> String {
    let Some((scheme, rest)) = v.split_once("://") else {
        return v.to_owned();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return v.to_owned();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => v.to_owned(),
    }
}

fn shown(key: &str, value: &toml::Value) -> String {
    if secret(key) {
        return match value {
            toml::Value::String(s) if s.is_empty() => String::new(),
            _ => "***".into(),
        };
    }
    match value {
        toml::Value::String(s) => mask_url(s),
        toml::Value::Table(t) => {
            let parts: Vec<String> = t
                .iter()
                .map(|(k, v)| format!("{k}={}", shown(k, v).trim_matches('"')))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// Every effective setting of `path` (if given) and the `FLOTILLA_*` variables in `env`, in
/// key order, then each service section's, with where it came from.
pub fn settings(
    path: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Vec<Setting>, ConfigError> {
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("FLOTILLA_"))
        .collect();
    let config = Config::load_with_env(path, env.clone())?;
    let file: toml::Table = match path {
        Some(p) => std::fs::read_to_string(p)
            .ok()
            .and_then(|t| toml::from_str(&t).ok())
            .unwrap_or_default(),
        None => toml::Table::new(),
    };
    let from_file = format!(
        "file {}",
        path.map(Path::display)
            .map(|d| d.to_string())
            .unwrap_or_default()
    );
    // The environment wins over the file, the file over the default.
    let source = |var: &str, in_file: bool| {
        if env.iter().any(|(k, _)| k == var) {
            format!("env {var}")
        } else if in_file {
            from_file.clone()
        } else {
            "default".to_owned()
        }
    };
    let effective = toml::Table::try_from(&config).unwrap_or_default();
    let mut out = Vec::new();
    for (key, value) in &effective {
        let var = format!("FLOTILLA_{}", key.to_ascii_uppercase());
        out.push(Setting {
            key: key.clone(),
            value: shown(key, value),
            source: source(&var, file.contains_key(key)),
        });
    }
    for (section, table) in &config.sections {
        for (key, value) in table {
            let var = format!(
                "FLOTILLA_{}__{}",
                section.to_ascii_uppercase(),
                key.to_ascii_uppercase()
            );
            let in_file = file
                .iter()
                .find(|(k, _)| k.replace('-', "_") == *section)
                .and_then(|(_, v)| v.as_table())
                .is_some_and(|t| t.contains_key(key));
            out.push(Setting {
                key: format!("{section}.{key}"),
                value: shown(key, value),
                source: source(&var, in_file),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find<'a>(s: &'a [Setting], key: &str) -> &'a Setting {
        s.iter()
            .find(|x| x.key == key)
            .unwrap_or_else(|| panic!("{key} in {s:?}"))
    }

    #[test]
    fn each_value_says_where_it_came_from_and_secrets_are_masked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("flotilla.toml");
        std::fs::write(
            &path,
            "listen = \"0.0.0.0:9000\"\nstore_url = \"postgres://app:hunter2@db/flotilla\"\nauth_hs256_secret = \"0123456789abcdef0123456789abcdef\"\n[orchestration]\nservice_token = \"eyJ.secret.token\"\nshutdown_grace_secs = 5\n",
        )
        .expect("write");
        let env = vec![
            ("FLOTILLA_NAMESPACE".to_owned(), "acme-prod".to_owned()),
            (
                "FLOTILLA_COMPLIANCE__CHECKPOINT_SECS".to_owned(),
                "30".to_owned(),
            ),
            ("HOME".to_owned(), "/root".to_owned()),
        ];
        let s = settings(Some(&path), env).expect("settings");
        let file = format!("file {}", path.display());
        assert_eq!(find(&s, "listen").value, "0.0.0.0:9000");
        assert_eq!(find(&s, "listen").source, file);
        assert_eq!(find(&s, "namespace").value, "acme-prod");
        assert_eq!(find(&s, "namespace").source, "env FLOTILLA_NAMESPACE");
        assert_eq!(find(&s, "nats_url").source, "default");
        assert_eq!(
            find(&s, "store_url").value,
            "postgres://app:***@db/flotilla"
        );
        assert_eq!(find(&s, "auth_hs256_secret").value, "***");
        assert_eq!(find(&s, "orchestration.service_token").value, "***");
        assert_eq!(find(&s, "orchestration.shutdown_grace_secs").value, "5");
        assert_eq!(find(&s, "orchestration.shutdown_grace_secs").source, file);
        assert_eq!(
            find(&s, "compliance.checkpoint_secs").source,
            "env FLOTILLA_COMPLIANCE__CHECKPOINT_SECS"
        );
        let all = format!("{s:?}");
        assert!(
            !all.contains("hunter2") && !all.contains("0123456789abcdef") && !all.contains("eyJ"),
            "{all}"
        );
    }
}
