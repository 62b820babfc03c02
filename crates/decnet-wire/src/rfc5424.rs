//! RFC 5424 event lines in the reference's format:
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [relay@55555 k="v" ...] MSG`.

use std::fmt::Write as _;

use time::OffsetDateTime;

/// Syslog facility of every DECNET event (local0).
pub const FACILITY_LOCAL0: u8 = 16;
/// Structured-data element id (private enterprise number 55555).
pub const SD_ID: &str = "relay@55555";
/// Longest HOSTNAME (RFC 5424 §6.2.4).
pub const MAX_HOSTNAME: usize = 255;
/// Longest APP-NAME (RFC 5424 §6.2.5).
pub const MAX_APP_NAME: usize = 48;
/// Longest MSGID (RFC 5424 §6.2.7).
pub const MAX_MSGID: usize = 32;
/// Longest SD-NAME (parameter name, RFC 5424 §6.3.3).
pub const MAX_SD_NAME: usize = 32;

/// Severity of an event (RFC 5424 numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// 3.
    Error = 3,
    /// 4.
    Warning = 4,
    /// 5.
    Notice = 5,
    /// 6.
    Info = 6,
    /// 7.
    Debug = 7,
}

impl Severity {
    /// The PRI value with facility local0.
    pub fn pri(self) -> u8 {
        FACILITY_LOCAL0 * 8 + self as u8
    }
}

/// Replaces characters RFC 5424 forbids in header fields (non-printing ASCII, space) and
/// truncates to `max` bytes; an empty value becomes the NILVALUE `-`.
fn header_field(out: &mut String, value: &str, max: usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ts() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(1_714_000_000_123_456_000).unwrap()
    }

    #[test]
    fn reference_format() {
        let line = format_line(
            Severity::Info,
            ts(),
            "decky-01",
            "ssh",
            "auth_attempt",
            &[
                ("src_ip", "203.0.113.9"),
                ("principal", "root"),
                ("secret_printable", "p\"a]s\\s"),
            ],
            None,
        );
        assert_eq!(
            line,
            r#"<134>1 2024-04-24T23:06:40.123456+00:00 decky-01 ssh - auth_attempt [relay@55555 src_ip="203.0.113.9" principal="root" secret_printable="p\"a\]s\\s"]"#
        );
    }

    #[test]
    fn nil_values_and_messages() {
        let line = format_line(
            Severity::Warning,
            ts(),
            "",
            "a b",
            "startup",
            &[],
            Some("two\nlines"),
        );
        assert_eq!(
            line,
            "<132>1 2024-04-24T23:06:40.123456+00:00 - a_b - startup - two\\nlines"
        );
    }

    proptest::proptest! {
        #[test]
        fn always_one_line(host in "\\PC{0,40}", key in "\\PC{0,40}", value in "\\PC{0,80}", msg in "\\PC{0,40}") {
            let line = format_line(Severity::Info, ts(), &host, "app", "id", &[(&key, &value)], Some(&msg));
            proptest::prop_assert!(!line.contains('\n') && !line.contains('\r'));
        }
    }
}
