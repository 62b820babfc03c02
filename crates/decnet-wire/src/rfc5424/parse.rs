//! The tokenizer: header, structured data and MSG of one line.

use super::format::BOM;
use super::{
    Element, Line, MAX_APP_NAME, MAX_ELEMENTS, MAX_HOSTNAME, MAX_LINE, MAX_MSGID, MAX_PARAMS,
    MAX_PROCID, MAX_SD_NAME, MAX_TIMESTAMP, NIL, ParseError,
};

/// The header of a line, borrowed, and where its STRUCTURED-DATA starts.
#[derive(Debug)]
pub(super) struct Header<'a> {
    pub pri: u8,
    pub timestamp: &'a str,
    pub hostname: &'a str,
    pub app_name: &'a str,
    pub procid: &'a str,
    pub msgid: &'a str,
    /// Byte offset of STRUCTURED-DATA in the line.
    pub sd_start: usize,
}

/// Printable US-ASCII (RFC 5424 PRINTUSASCII, %d33-126).
fn printable(b: u8) -> bool {
    (33..=126).contains(&b)
}

/// Reads `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID ` at the start of `line`.
pub(super) fn header(line: &str) -> Result<Header<'_>, ParseError> {
    let b = line.as_bytes();
    if b.first() != Some(&b'<') {
        return Err(ParseError::BadHeader);
    }
    let mut i = 1;
    let mut pri: u16 = 0;
    while i < b.len() && i <= 3 && b[i].is_ascii_digit() {
        pri = pri * 10 + u16::from(b[i] - b'0');
        i += 1;
    }
    if i == 1 || b.get(i) != Some(&b'>') || pri > 191 {
        return Err(ParseError::BadHeader);
    }
    i += 1;
    if b.get(i) != Some(&b'1') || b.get(i + 1) != Some(&b' ') {
        return Err(ParseError::BadHeader);
    }
    i += 2;
    let mut fields = [""; 5];
    const NAMES: [(&str, usize); 5] = [
        ("TIMESTAMP", MAX_TIMESTAMP),
        ("HOSTNAME", MAX_HOSTNAME),
        ("APP-NAME", MAX_APP_NAME),
        ("PROCID", MAX_PROCID),
        ("MSGID", MAX_MSGID),
    ];
    for (slot, (name, max)) in fields.iter_mut().zip(NAMES) {
        let start = i;
        while i < b.len() && b[i] != b' ' {
            if !printable(b[i]) {
                return Err(ParseError::BadField(name));
            }
            if i - start >= max {
                return Err(ParseError::FieldTooLong(name));
            }
            i += 1;
        }
        if i == start {
            return Err(ParseError::MissingField(name));
        }
        *slot = &line[start..i];
        if i >= b.len() {
            // The field ends the line: what should follow is missing.
            let next = NAMES
                .iter()
                .skip_while(|(n, _)| *n != name)
                .nth(1)
                .map_or("STRUCTURED-DATA", |(n, _)| *n);
            return Err(ParseError::MissingField(next));
        }
        i += 1;
    }
    let [timestamp, hostname, app_name, procid, msgid] = fields;
    Ok(Header {
        // At most 191 (checked above).
        pri: u8::try_from(pri).map_err(|_| ParseError::BadHeader)?,
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        sd_start: i,
    })
}

/// Reads an SD-NAME (SD-ID or PARAM-NAME) at `i`, up to the first byte that is not
/// allowed in one; returns its end.
fn sd_name(b: &[u8], mut i: usize) -> Result<usize, ParseError> {
    let start = i;
    while i < b.len() && printable(b[i]) && !matches!(b[i], b'=' | b']' | b'"') {
        if i - start >= MAX_SD_NAME {
            return Err(ParseError::BadSd(i));
        }
        i += 1;
    }
    if i == start {
        return Err(ParseError::BadSd(i));
    }
    Ok(i)
}

/// Reads one SD-ELEMENT starting at the `[` at `i`; returns it and the offset after its
/// `]`. `n_params` counts parameters across elements.
pub(super) fn element(
    line: &str,
    mut i: usize,
    n_params: &mut usize,
) -> Result<(Element, usize), ParseError> {
    let b = line.as_bytes();
    if b.get(i) != Some(&b'[') {
        return Err(ParseError::BadSd(i));
    }
    i += 1;
    let id_start = i;
    i = sd_name(b, i)?;
    let id = line[id_start..i].to_owned();
    let mut params = Vec::with_capacity(8);
    loop {
        match b.get(i) {
            Some(b']') => return Ok(((id, params), i + 1)),
            Some(b' ') => i += 1,
            _ => return Err(ParseError::BadSd(i)),
        }
        let name_start = i;
        i = sd_name(b, i)?;
        if b.get(i) != Some(&b'=') || b.get(i + 1) != Some(&b'"') {
            return Err(ParseError::BadSd(i));
        }
        let name = line[name_start..i].to_owned();
        i += 2;
        // Find the closing quote first (a backslash escapes `"`, `\\` and `]`; before
        // anything else it is kept as written, RFC 5424 §6.3.3), then copy once.
        let start = i;
        let mut escapes = false;
        loop {
            // Only `"` and `\` matter inside a value; skip to the next of them.
            match b[i..].iter().position(|&c| c == b'"' || c == b'\\') {
                None => return Err(ParseError::BadSd(b.len())),
                Some(off) => i += off,
            }
            if b[i] == b'"' {
                break;
            }
            if matches!(b.get(i + 1), Some(b'"' | b'\\' | b']')) {
                escapes = true;
                i += 2;
            } else {
                i += 1;
            }
        }
        let raw = &line[start..i];
        i += 1;
        let value = if escapes {
            unescape(raw)
        } else {
            raw.to_owned()
        };
        *n_params += 1;
        if *n_params > MAX_PARAMS {
            return Err(ParseError::TooManyParams);
        }
        params.push((name, value));
    }
}

/// A PARAM-VALUE without its escapes (`\"`, `\\`, `\]`).
fn unescape(raw: &str) -> String {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut seg = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && matches!(b.get(i + 1), Some(b'"' | b'\\' | b']')) {
            out.push_str(&raw[seg..i]);
            seg = i + 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    out.push_str(&raw[seg..]);
    out
}

/// Reads STRUCTURED-DATA at `start`; returns the elements and the offset after them.
fn structured_data(line: &str, start: usize) -> Result<(Vec<Element>, usize), ParseError> {
    let b = line.as_bytes();
    if b.get(start) == Some(&b'-') {
        return Ok((Vec::new(), start + 1));
    }
    let mut i = start;
    let mut elements = Vec::new();
    let mut n_params = 0usize;
    while b.get(i) == Some(&b'[') {
        if elements.len() == MAX_ELEMENTS {
            return Err(ParseError::TooManyElements);
        }
        let (el, end) = element(line, i, &mut n_params)?;
        elements.push(el);
        i = end;
    }
    if elements.is_empty() {
        return Err(ParseError::BadSd(start));
    }
    Ok((elements, i))
}

/// Parses one line. A trailing `\n` (and then a `\r` before it) is ignored.
///
/// A real tokenizer: it honours the `\"`, `\\` and `\]` escapes (a backslash before any
/// other character is kept), reads every SD element, so a value containing `]` (escaped
/// or not) does not hide the parameters after it. Header fields are 1*PRINTUSASCII
/// within the RFC's lengths (TIMESTAMP within [`MAX_TIMESTAMP`]; its syntax is checked
/// only by [`Line::timestamp_micros`]); SD-IDs and parameter names are SD-NAMEs (at most
/// [`MAX_SD_NAME`] printable US-ASCII bytes other than `=`, `]`, `"`). After the
/// structured data comes the end of the line or one space and MSG (a UTF-8 BOM in front
/// of MSG is dropped).
///
/// # Errors
/// [`ParseError`] naming what is malformed.
pub fn parse_line(line: &str) -> Result<Line, ParseError> {
    let mut parsed = parse_one(line)?;
    parsed.inner = double_wrapped(&parsed).map(Box::new);
    Ok(parsed)
}

/// The inner line of a double-wrapped line (one level: the inner line's own MSG is not
/// looked into).
pub(super) fn double_wrapped(line: &Line) -> Option<Line> {
    if line.msgid != NIL {
        return None;
    }
    let msg = line.msg.as_deref()?.trim_start();
    if !msg.starts_with('<') {
        return None;
    }
    parse_one(msg).ok()
}

/// [`parse_line`] without looking into MSG.
pub(super) fn parse_one(line: &str) -> Result<Line, ParseError> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err(ParseError::TooLong);
    }
    let h = header(line)?;
    let (elements, end) = structured_data(line, h.sd_start)?;
    let msg = match line[end..].strip_prefix(' ') {
        Some(msg) => Some(msg.strip_prefix(BOM).unwrap_or(msg).to_owned()),
        None if end == line.len() => None,
        None => return Err(ParseError::BadSd(end)),
    };
    Ok(Line {
        pri: h.pri,
        timestamp: h.timestamp.to_owned(),
        hostname: h.hostname.to_owned(),
        app_name: h.app_name.to_owned(),
        procid: h.procid.to_owned(),
        msgid: h.msgid.to_owned(),
        elements,
        msg,
        inner: None,
    })
}
