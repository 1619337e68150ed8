//! Helpers the service clients share: times in and out, the current time, JSON on stdout.

use serde::Serialize;

/// Parses an RFC 3339 time given for `field`; the error shows `example`.
pub fn parse_time(field: &str, s: &str, example: &str) -> anyhow::Result<prost_types::Timestamp> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            anyhow::anyhow!("{field} {s:?} is not an RFC 3339 time like {example} ({e})")
        })?;
    Ok(prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    })
}

/// A timestamp as RFC 3339 (whole seconds), or "" when absent.
pub fn show_time(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| time::OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Now, in whole seconds.
pub fn now() -> anyhow::Result<prost_types::Timestamp> {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs() as i64;
    Ok(prost_types::Timestamp { seconds, nanos: 0 })
}

/// Now, to the nanosecond (for instants compared with what services record).
pub fn instant() -> anyhow::Result<prost_types::Timestamp> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    Ok(prost_types::Timestamp {
        seconds: now.as_secs() as i64,
        nanos: now.subsec_nanos() as i32,
    })
}

/// "yes" for a set flag, "" otherwise (table cells).
pub fn yes(flag: bool) -> String {
    if flag { "yes".into() } else { String::new() }
}

/// Prints a view as pretty-printed JSON.
pub fn print_json<T: Serialize + ?Sized>(view: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(view)?);
    Ok(())
}

/// Prints a view as JSON on one line.
pub fn print_json_line<T: Serialize + ?Sized>(view: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(view)?);
    Ok(())
}
