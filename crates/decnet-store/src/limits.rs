//! Named limits every backend enforces before it writes, and the checks that use them.

use crate::{Error, Result};

/// Most rows one query returns; larger `limit`s are lowered to it.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Most rows in one batched write (logs, credentials, attacker observations).
pub const MAX_BATCH: usize = 1000;
/// Most events in one [`crate::IngestRepo::ingest`] batch (the swarm listener commits
/// up to 2048 frames at once).
pub const MAX_INGEST_BATCH: usize = 4096;
/// Most shards in one heartbeat snapshot.
pub const MAX_SHARD_SNAPSHOT: usize = 4096;
/// Longest raw log line (the swarm log frame cap).
pub const MAX_RAW_LINE_LEN: usize = 64 * 1024;
/// Largest JSON document in a `fields` / `meta` column.
pub const MAX_FIELDS_BYTES: usize = 256 * 1024;
/// Largest serialized decky config.
pub const MAX_DECKY_CONFIG_BYTES: usize = 256 * 1024;
/// Longest short text value: names, slugs, addresses, event types, usernames.
pub const MAX_LABEL_LEN: usize = 256;
/// Longest free-text or substring filter.
pub const MAX_FILTER_TEXT_LEN: usize = 256;
/// Longest stored error text; longer errors are truncated, not refused.
pub const MAX_ERROR_LEN: usize = 2000;
/// Longest note, path or password hash.
pub const MAX_TEXT_LEN: usize = 4096;
/// Most services on one decky row.
pub const MAX_SERVICES: usize = 64;
/// Longest key of the key/value `state` table.
pub const MAX_STATE_KEY_LEN: usize = 128;
/// Largest JSON value of the key/value `state` table.
pub const MAX_STATE_VALUE_BYTES: usize = 4 * 1024 * 1024;
/// Longest enrollment token accepted (it is hashed, never stored).
pub const MAX_TOKEN_LEN: usize = 512;
/// Shortest enrollment token accepted: guessable tokens are refused.
pub const MIN_TOKEN_LEN: usize = 16;
/// Longest base64 credential secret kept.
pub const MAX_SECRET_B64_LEN: usize = 2048;
/// Longest printable credential secret kept.
pub const MAX_SECRET_PRINTABLE_LEN: usize = 512;
/// Longest credential secret kind.
pub const MAX_SECRET_KIND_LEN: usize = 32;

/// Refuses empty or over-long `value`.
pub(crate) fn label(what: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(what, "it is empty"));
    }
    text(what, value, max)
}

/// Refuses over-long `value` (empty allowed).
pub(crate) fn text(what: &'static str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid(
            what,
            format!("{} bytes, at most {max} allowed", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(Error::invalid(what, "it contains a NUL character"));
    }
    Ok(())
}

/// [`text`] for an optional value.
pub(crate) fn opt_text(what: &'static str, value: Option<&str>, max: usize) -> Result<()> {
    value.map_or(Ok(()), |v| text(what, v, max))
}

/// Refuses anything but 64 hex digits.
pub(crate) fn sha256_hex(what: &'static str, value: &str) -> Result<()> {
    if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::invalid(what, "expected 64 hex digits"));
    }
    Ok(())
}

/// Clamps a requested page size to [`MAX_PAGE_SIZE`].
pub(crate) fn page(limit: u32) -> u32 {
    limit.min(MAX_PAGE_SIZE)
}

/// Refuses a batch larger than `max`.
pub(crate) fn batch(what: &'static str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(Error::invalid(
            what,
            format!("{len} rows in one batch, at most {max} allowed"),
        ));
    }
    Ok(())
}

/// Cuts `error` to [`MAX_ERROR_LEN`] bytes on a character boundary and drops NULs.
pub(crate) fn error_text(error: &str) -> String {
    let mut end = error.len().min(MAX_ERROR_LEN);
    while !error.is_char_boundary(end) {
        end -= 1;
    }
    error[..end].replace('\0', "")
}

/// Serializes a JSON value and refuses it when larger than `max`.
pub(crate) fn json<T: serde::Serialize + ?Sized>(
    what: &'static str,
    value: &T,
    max: usize,
) -> Result<String> {
    let text = serde_json::to_string(value).map_err(|e| Error::invalid(what, e.to_string()))?;
    if text.len() > max {
        return Err(Error::invalid(
            what,
            format!("{} bytes of JSON, at most {max} allowed", text.len()),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_text_cuts_on_char_boundary() {
        let long = "é".repeat(MAX_ERROR_LEN);
        let cut = error_text(&long);
        assert!(cut.len() <= MAX_ERROR_LEN);
        assert!(cut.len() >= MAX_ERROR_LEN - 1);
        assert_eq!(error_text("a\0b"), "ab");
    }

    #[test]
    fn label_rules() {
        assert!(label("x", "", 3).is_err());
        assert!(label("x", "abcd", 3).is_err());
        assert!(label("x", "a\0", 3).is_err());
        assert!(label("x", "abc", 3).is_ok());
        assert!(sha256_hex("h", &"A".repeat(64)).is_ok());
        assert!(sha256_hex("h", &"g".repeat(64)).is_err());
        assert_eq!(page(5000), MAX_PAGE_SIZE);
        assert_eq!(page(0), 0);
    }
}
