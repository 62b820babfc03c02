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

/// Longest line [`parse_line`] accepts.
pub const MAX_LINE: usize = 64 * 1024;
/// Most SD parameters [`parse_line`] accepts in one line.
pub const MAX_PARAMS: usize = 256;

/// A parsed line. Fields borrow nothing: the parser copies what it keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// PRI value.
    pub pri: u8,
    /// TIMESTAMP text as written (RFC 3339 or `-`).
    pub timestamp: String,
    /// HOSTNAME (`-` kept as is).
    pub hostname: String,
    /// APP-NAME.
    pub app_name: String,
    /// PROCID.
    pub procid: String,
    /// MSGID.
    pub msgid: String,
    /// Every SD element, in order: (SD-ID, params in order).
    pub elements: Vec<(String, Vec<(String, String)>)>,
    /// MSG after the structured data, if any.
    pub msg: Option<String>,
}

impl Line {
    /// The value of `key` in the first `relay@55555` element.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.elements
            .iter()
            .find(|(id, _)| id == SD_ID)
            .and_then(|(_, params)| params.iter().find(|(k, _)| k == key))
            .map(|(_, v)| v.as_str())
    }

    /// Severity part of PRI.
    pub fn severity(&self) -> u8 {
        self.pri % 8
    }
}

/// Why a line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Longer than [`MAX_LINE`].
    #[error("line is longer than {MAX_LINE} bytes")]
    TooLong,
    /// Missing or malformed `<PRI>VERSION`.
    #[error("bad PRI or version")]
    BadHeader,
    /// A header field is missing.
    #[error("missing header field {0}")]
    MissingField(&'static str),
    /// Malformed structured data.
    #[error("bad structured data at byte {0}")]
    BadSd(usize),
    /// More than [`MAX_PARAMS`] parameters.
    #[error("more than {MAX_PARAMS} structured-data parameters")]
    TooManyParams,
}

/// Parses one line (a trailing newline is ignored). A real tokenizer: it honours the
/// `\"`, `\\` and `\]` escapes and reads every SD element, so a value containing `]`
/// does not hide the parameters after it.
///
/// # Errors
/// [`ParseError`] naming what is malformed.
pub fn parse_line(line: &str) -> Result<Line, ParseError> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err(ParseError::TooLong);
    }
    let rest = line.strip_prefix('<').ok_or(ParseError::BadHeader)?;
    let close = rest
        .find('>')
        .filter(|i| (1..=3).contains(i))
        .ok_or(ParseError::BadHeader)?;
    let pri: u8 = rest[..close]
        .parse()
        .ok()
        .filter(|p| *p <= 191)
        .ok_or(ParseError::BadHeader)?;
    let rest = rest[close + 1..]
        .strip_prefix("1 ")
        .ok_or(ParseError::BadHeader)?;
    let mut fields = rest.splitn(6, ' ');
    let mut next = |name| {
        fields
            .next()
            .filter(|f| !f.is_empty())
            .ok_or(ParseError::MissingField(name))
    };
    let timestamp = next("TIMESTAMP")?.to_owned();
    let hostname = next("HOSTNAME")?.to_owned();
    let app_name = next("APP-NAME")?.to_owned();
    let procid = next("PROCID")?.to_owned();
    let msgid = next("MSGID")?.to_owned();
    let sd = fields
        .next()
        .ok_or(ParseError::MissingField("STRUCTURED-DATA"))?;
    let (elements, consumed) = parse_sd(sd)?;
    let msg = sd[consumed..].strip_prefix(' ').map(str::to_owned);
    Ok(Line {
        pri,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        elements,
        msg,
    })
}

type Elements = Vec<(String, Vec<(String, String)>)>;

/// Parses the SD part; returns the elements and how many bytes they used.
fn parse_sd(sd: &str) -> Result<(Elements, usize), ParseError> {
    if sd.starts_with('-') {
        return Ok((Vec::new(), 1));
    }
    let bytes = sd.as_bytes();
    let mut i = 0;
    let mut elements = Vec::new();
    let mut n_params = 0usize;
    while i < bytes.len() && bytes[i] == b'[' {
        i += 1;
        let id_start = i;
        while i < bytes.len() && !matches!(bytes[i], b' ' | b']') {
            i += 1;
        }
        if i == id_start || i >= bytes.len() {
            return Err(ParseError::BadSd(i));
        }
        let id = sd[id_start..i].to_owned();
        let mut params = Vec::new();
        loop {
            match bytes.get(i) {
                Some(b']') => {
                    i += 1;
                    break;
                }
                Some(b' ') => i += 1,
                _ => return Err(ParseError::BadSd(i)),
            }
            let name_start = i;
            while i < bytes.len() && bytes[i] != b'=' {
                if matches!(bytes[i], b' ' | b']' | b'"') {
                    return Err(ParseError::BadSd(i));
                }
                i += 1;
            }
            if i == name_start || bytes.get(i + 1) != Some(&b'"') {
                return Err(ParseError::BadSd(i));
            }
            let name = sd[name_start..i].to_owned();
            i += 2;
            let mut value = String::new();
            let mut seg = i;
            loop {
                match bytes.get(i) {
                    None => return Err(ParseError::BadSd(i)),
                    Some(b'\\') if matches!(bytes.get(i + 1), Some(b'"' | b'\\' | b']')) => {
                        value.push_str(&sd[seg..i]);
                        i += 1;
                        seg = i;
                        i += 1;
                    }
                    Some(b'"') => {
                        value.push_str(&sd[seg..i]);
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
            n_params += 1;
            if n_params > MAX_PARAMS {
                return Err(ParseError::TooManyParams);
            }
            params.push((name, value));
        }
        elements.push((id, params));
    }
    if elements.is_empty() {
        return Err(ParseError::BadSd(0));
    }
    Ok((elements, i))
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

    #[test]
    fn parse_round_trips_format() {
        let line = format_line(
            Severity::Warning,
            ts(),
            "decky-01",
            "http",
            "request",
            &[
                ("body", "a]b\"c\\d"),
                ("path", "/wp-login.php"),
                ("headers", "[\"Host\",\"UA\"]"),
            ],
            Some("free text"),
        );
        let parsed = parse_line(&line).unwrap();
        assert_eq!(parsed.pri, 132);
        assert_eq!(parsed.severity(), 4);
        assert_eq!(parsed.hostname, "decky-01");
        assert_eq!(parsed.app_name, "http");
        assert_eq!(parsed.msgid, "request");
        assert_eq!(parsed.param("body"), Some("a]b\"c\\d"));
        assert_eq!(parsed.param("path"), Some("/wp-login.php"));
        assert_eq!(parsed.param("headers"), Some("[\"Host\",\"UA\"]"));
        assert_eq!(parsed.msg.as_deref(), Some("free text"));
    }

    #[test]
    fn parse_multiple_elements_and_nil() {
        let p = parse_line("<134>1 - h a 12 m [x@1 a=\"1\"][relay@55555 k=\"v\"]").unwrap();
        assert_eq!(p.elements.len(), 2);
        assert_eq!(p.param("k"), Some("v"));
        assert_eq!(p.procid, "12");
        let p = parse_line("<134>1 - h a - m -").unwrap();
        assert!(p.elements.is_empty() && p.msg.is_none());
        for bad in [
            "",
            "<1344>1 - h a - m -",
            "<13>2 - h a - m -",
            "<13>1 - h a - m",
            "<13>1 - h a - m [x a=\"1]",
            "<13>1 - h a - m [x a=1]",
        ] {
            assert!(parse_line(bad).is_err(), "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,200}") {
            let _ = parse_line(&s);
        }

        #[test]
        fn parse_inverts_format(key in "[a-z_]{1,12}", value in "\\PC{0,60}") {
            let line = format_line(Severity::Info, ts(), "d", "a", "m", &[(&key, &value)], None);
            let parsed = parse_line(&line).unwrap();
            let expected: String = value.replace('\n', "\\n").replace('\r', "\\r");
            if !value.chars().any(|c| c.is_control() && c != '\n' && c != '\r') {
                proptest::prop_assert_eq!(parsed.param(&key), Some(expected.as_str()));
            }
        }
    }
}
