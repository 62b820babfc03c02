//! Writing lines: the emulators' [`format_line`] and the canonical text of a parsed [`Line`].

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::{Line, MAX_APP_NAME, MAX_HOSTNAME, MAX_MSGID, MAX_SD_NAME, SD_ID, Severity};

/// The UTF-8 byte order mark RFC 5424 allows in front of MSG.
pub(super) const BOM: char = '\u{feff}';

/// Replaces characters RFC 5424 forbids in header fields (non-printing ASCII, space) and
/// truncates to `max` bytes; an empty value becomes the NILVALUE `-`.
pub(super) fn header_field(out: &mut String, value: &str, max: usize) {
    let start = out.len();
    for c in value.chars() {
        if out.len() - start + c.len_utf8() > max {
            break;
        }
        if c.is_ascii_graphic() {
            out.push(c);
        } else {
            out.push('_');
        }
    }
    if out.len() == start {
        out.push('-');
    }
}

/// Appends a PARAM-VALUE with RFC 5424 escaping of `"`, `\` and `]`. Line breaks are
/// escaped too (as `\n`/`\r`), so one event is always one line.
fn sd_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' | '\\' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
}

/// Appends a PARAM-VALUE with exactly the RFC 5424 escapes (`"`, `\`, `]`) and nothing
/// else, so [`super::parse_line`] gives `value` back byte for byte.
pub(super) fn exact_value(out: &mut String, value: &str) {
    let mut seg = 0;
    for (i, b) in value.bytes().enumerate() {
        if matches!(b, b'"' | b'\\' | b']') {
            out.push_str(&value[seg..i]);
            out.push('\\');
            seg = i;
        }
    }
    out.push_str(&value[seg..]);
}

/// Formats one line (without the trailing newline).
///
/// `timestamp` is rendered as UTC ISO-8601 with microseconds and `+00:00`, as the
/// reference does. Parameter names are truncated to [`MAX_SD_NAME`] and stripped of the
/// characters SD-NAME forbids (`=`, space, `]`, `"`).
#[allow(clippy::too_many_arguments)]
pub fn format_line(
    severity: Severity,
    timestamp: OffsetDateTime,
    hostname: &str,
    app_name: &str,
    msgid: &str,
    params: &[(&str, &str)],
    msg: Option<&str>,
) -> String {
    let mut out = String::with_capacity(
        128 + params
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>(),
    );
    let ts = timestamp.to_offset(time::UtcOffset::UTC);
    let _ = write!(
        out,
        "<{}>1 {:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+00:00 ",
        severity.pri(),
        ts.year(),
        u8::from(ts.month()),
        ts.day(),
        ts.hour(),
        ts.minute(),
        ts.second(),
        ts.microsecond()
    );
    header_field(&mut out, hostname, MAX_HOSTNAME);
    out.push(' ');
    header_field(&mut out, app_name, MAX_APP_NAME);
    out.push_str(" - ");
    header_field(&mut out, msgid, MAX_MSGID);
    out.push(' ');
    if params.is_empty() {
        out.push('-');
    } else {
        out.push('[');
        out.push_str(SD_ID);
        for (key, value) in params {
            out.push(' ');
            let name: String = key
                .chars()
                .filter(|c| c.is_ascii_graphic() && !matches!(c, '=' | ']' | '"'))
                .take(MAX_SD_NAME)
                .collect();
            out.push_str(if name.is_empty() { "_" } else { &name });
            out.push_str("=\"");
            sd_value(&mut out, value);
            out.push('"');
        }
        out.push(']');
    }
    if let Some(msg) = msg {
        out.push(' ');
        for c in msg.chars() {
            match c {
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
    }
    out
}

/// The canonical text of a parsed line (see `Display for Line`).
pub(super) fn canonical(out: &mut String, line: &Line) {
    let _ = write!(
        out,
        "<{}>1 {} {} {} {} {} ",
        line.pri, line.timestamp, line.hostname, line.app_name, line.procid, line.msgid
    );
    if line.elements.is_empty() {
        out.push('-');
    }
    for (id, params) in &line.elements {
        out.push('[');
        out.push_str(id);
        for (name, value) in params {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            exact_value(out, value);
            out.push('"');
        }
        out.push(']');
    }
    if let Some(msg) = &line.msg {
        out.push(' ');
        if msg.starts_with(BOM) {
            out.push(BOM);
        }
        out.push_str(msg);
    }
}
