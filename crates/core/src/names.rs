//! One validation rule for the names every service takes from outside: business units,
//! environments, roles and ids (releases, change requests, tags), and free text. Invalid names are
//! refused at the edge with the field named; what was once stored is never checked again.
//!
//! - A **label** (business unit, environment): 1 to 63 lowercase ASCII letters, digits, `-`, `_`
//!   or `.`, starting with a letter or digit. So `prod\n`, `Prod`, `*platform*` (the internal
//!   label of platform-wide scope) and names with NUL, tab, zero-width or bidi characters are
//!   refused, and two units cannot differ only by case or by invisible characters.
//! - A **role**: 1 to 64 lowercase ASCII letters, digits or `-`, starting with a letter.
//! - An **id**: 1 to 128 ASCII letters, digits or `-_.:/@+`, starting with a letter or digit.
//! - **Text** (comments, justifications, reasons): at most the field's length, no control
//!   characters but newline and tab, no bidi embedding, override or isolate characters (which
//!   make an audit line read differently from what it says).
//!
//! [`shown`] is how a refused value is echoed in an error: escaped and cut to 64 characters,
//! so a 1 MB field never becomes a 1 MB status message or log line.

use std::fmt;

/// A name or text that breaks the rule, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError {
    pub field: String,
    pub reason: String,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for NameError {}

type Result<T = ()> = std::result::Result<T, NameError>;

fn refuse(field: &str, reason: impl Into<String>) -> NameError {
    NameError {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

/// Longest label (business unit, environment), in bytes.
pub const MAX_LABEL: usize = 63;
/// Longest role name, in bytes.
pub const MAX_ROLE: usize = 64;
/// Longest id, in bytes.
pub const MAX_ID: usize = 128;
/// Characters of a refused value echoed in an error.
pub const SHOWN_CHARS: usize = 64;

/// The value as an error may quote it: escaped like Rust's `{:?}` (so control, zero-width and
/// bidi characters are visible), cut to [`SHOWN_CHARS`] characters with the full length noted.
pub fn shown(s: &str) -> String {
    let mut out = String::with_capacity(SHOWN_CHARS + 16);
    out.push('"');
    for (count, c) in s.chars().enumerate() {
        if count == SHOWN_CHARS {
            out.push_str("\"… (");
            out.push_str(&s.len().to_string());
            out.push_str(" bytes)");
            return out;
        }
        if is_invisible(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.extend(c.escape_debug());
        }
    }
    out.push('"');
    out
}

/// Longest error message answered, in bytes.
pub const MAX_MESSAGE: usize = 2_048;

/// An error message cut to [`MAX_MESSAGE`] bytes (at a character boundary), so no refusal
/// grows with its input.
pub fn capped(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_MESSAGE {
        return std::borrow::Cow::Borrowed(message);
    }
    std::borrow::Cow::Owned(format!(
        "{}… (message cut at {MAX_MESSAGE} bytes)",
        &message[..message.floor_char_boundary(MAX_MESSAGE)]
    ))
}

/// Zero-width, bidi and other format characters that change how text reads without showing.
pub fn is_invisible(c: char) -> bool {
    matches!(c as u32,
        0x00AD
        | 0x061C
        | 0x180E
        | 0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x2064
        | 0x2066..=0x2069
        | 0xFEFF
        | 0xFFF9..=0xFFFB)
}

/// Bidi embedding, override and isolate characters (refused even in free text).
fn is_bidi_control(c: char) -> bool {
    matches!(c as u32, 0x202A..=0x202E | 0x2066..=0x2069)
}

fn length(field: &str, s: &str, max: usize) -> Result {
    if s.is_empty() {
        return Err(refuse(field, "is empty"));
    }
    if s.len() > max {
        return Err(refuse(
            field,
            format!("is {} bytes, at most {max} allowed", s.len()),
        ));
    }
    Ok(())
}

/// Checks a business unit or environment name.
pub fn label(field: &str, s: &str) -> Result {
    length(field, s, MAX_LABEL)?;
    let first_ok = s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit());
    let all_ok = s
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'));
    if !(first_ok && all_ok) {
        return Err(refuse(
            field,
            format!(
                "{} is not a name: use 1 to {MAX_LABEL} lowercase letters, digits, '-', '_' or '.', starting with a letter or digit",
                shown(s)
            ),
        ));
    }
    Ok(())
}

/// Checks a label that may be empty (meaning "none" or "all").
pub fn optional_label(field: &str, s: &str) -> Result {
    if s.is_empty() {
        Ok(())
    } else {
        label(field, s)
    }
}

/// Checks a role name.
pub fn role(field: &str, s: &str) -> Result {
    length(field, s, MAX_ROLE)?;
    let ok = s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok {
        return Err(refuse(
            field,
            format!(
                "{} is not a role: use 1 to {MAX_ROLE} lowercase letters, digits or '-', starting with a letter",
                shown(s)
            ),
        ));
    }
    Ok(())
}

/// Checks an id (release, change request, tag, …).
pub fn id(field: &str, s: &str) -> Result {
    length(field, s, MAX_ID)?;
    let ok = s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | '@' | '+')
        });
    if !ok {
        return Err(refuse(
            field,
            format!(
                "{} is not an id: use 1 to {MAX_ID} ASCII letters, digits or '-_.:/@+', starting with a letter or digit",
                shown(s)
            ),
        ));
    }
    Ok(())
}

/// Checks a name that refers to something that may already exist (a lookup, a filter, a
/// reference): what was accepted under older rules must stay reachable, so only length and
/// control or bidi characters are refused.
pub fn reference(field: &str, s: &str, max: usize) -> Result {
    length(field, s, max)?;
    if s.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(refuse(
            field,
            format!("{} holds control or bidi characters", shown(s)),
        ));
    }
    Ok(())
}

/// Checks required free text of at most `max` bytes.
pub fn text(field: &str, s: &str, max: usize) -> Result {
    if s.trim().is_empty() {
        return Err(refuse(field, "is empty"));
    }
    optional_text(field, s, max)
}

/// Checks free text that may be empty.
pub fn optional_text(field: &str, s: &str, max: usize) -> Result {
    if s.len() > max {
        return Err(refuse(
            field,
            format!("is {} bytes, at most {max} allowed", s.len()),
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| (c.is_control() && *c != '\n' && *c != '\t') || is_bidi_control(*c))
    {
        return Err(refuse(
            field,
            format!(
                "holds the character U+{:04X}; control and bidi override characters are not allowed",
                c as u32
            ),
        ));
    }
    Ok(())
}

/// Checks a list's length before its items are looked at, and that no item repeats.
pub fn list<T: PartialEq>(field: &str, items: &[T], max: usize) -> Result {
    if items.len() > max {
        return Err(refuse(
            field,
            format!("has {} items, at most {max} allowed", items.len()),
        ));
    }
    for (i, x) in items.iter().enumerate() {
        if items[..i].contains(x) {
            return Err(refuse(field, format!("item {i} repeats an earlier one")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_refuse_what_looks_alike_or_hides() {
        for ok in ["payments", "prod", "eu-west.1", "bu_7", "2026q4"] {
            assert!(label("bu", ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "prod\n",
            "pay\0ments",
            "pay\tments",
            "Payments",
            "*platform*",
            "pay\u{200b}ments",
            "pay\u{202e}stnemyap",
            "-lead",
            "cr\u{e9}dit",
            &"a".repeat(64),
        ] {
            let e = label("bu", bad).expect_err(bad);
            assert_eq!(e.field, "bu");
        }
    }

    #[test]
    fn ids_roles_and_text() {
        assert!(id("release", "release-7").is_ok());
        assert!(id("release", "CHG0031234").is_ok());
        assert!(id("release", "pkg:oci/checkout@sha256:ab+1").is_ok());
        assert!(id("release", "r 7").is_err());
        assert!(id("release", "r7\u{200d}").is_err());
        assert!(role("role", "release-manager").is_ok());
        assert!(role("role", "").is_err());
        assert!(role("role", "Admin").is_err());
        assert!(text("comment", "fine\nwith\ttabs and ünïcode", 100).is_ok());
        assert!(text("comment", "  ", 100).is_err());
        assert!(text("comment", "evil\u{202e}txt", 100).is_err());
        assert!(text("comment", "bell\u{7}", 100).is_err());
        assert!(optional_text("comment", "", 100).is_ok());
        assert!(optional_text("comment", &"x".repeat(101), 100).is_err());
    }

    #[test]
    fn shown_escapes_and_cuts() {
        assert_eq!(shown("prod\n"), "\"prod\\n\"");
        assert_eq!(shown("a\u{200b}b"), "\"a\\u{200b}b\"");
        let long = "x".repeat(300_000);
        let s = shown(&long);
        assert!(s.len() < 100, "{s}");
        assert!(s.ends_with("(300000 bytes)"), "{s}");
        let e = label("name", &long).expect_err("too long");
        assert!(e.to_string().len() < 100, "{e}");
    }

    #[test]
    fn lists_are_sized_before_they_are_read() {
        assert!(list("xs", &[1, 2, 3], 3).is_ok());
        assert!(list("xs", &[1, 2, 3, 4], 3).is_err());
        let e = list("xs", &["a", "b", "a"], 10).expect_err("duplicate");
        assert!(e.reason.contains("item 2"), "{e}");
    }
}
