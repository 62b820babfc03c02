//! RFC 5424 event lines in the reference's format:
//! `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [relay@55555 k="v" ...] MSG`.
//!
//! Reading order:
//! - [`format_line`]: what emulators print (one line per event);
//! - [`parse_line`] → [`Line`]: a real tokenizer for any RFC 5424 line (every SD element,
//!   the `\"` `\\` `\]` escapes, nil values, a UTF-8 BOM before MSG), bounded by
//!   [`MAX_LINE`], [`MAX_ELEMENTS`], [`MAX_PARAMS`] and the RFC's field lengths;
//!   `Line`'s `Display` writes it back in canonical form;
//! - [`parse_timestamp`]: RFC 3339 TIMESTAMP → UTC unix microseconds;
//! - [`effective`] → [`Effective`]: the reference's conventions (the `relay@55555`
//!   element, double-wrapped lines, bare `CMD …` messages) and [`attacker_addr`], the
//!   attacker's address from the SD keys only (never from MSG prose);
//! - [`wrap`] / [`unwrap`] with [`Envelope`]: the worker → master forwarding envelope
//!   (`[decnet@55555 ...]` as the first SD element), byte-exact for any raw line.

use std::fmt;

mod envelope;
mod event;
mod format;
mod parse;
mod timestamp;

#[cfg(test)]
mod tests;

pub use envelope::{
    ENVELOPE_SD_ID, Envelope, EnvelopeError, MAX_ENVELOPE_FIELD, MAX_ENVELOPE_OVERHEAD, unwrap,
    wrap,
};
pub use event::{ATTACKER_KEYS, Effective, PORT_KEYS, attacker_addr, effective};
pub use format::format_line;
pub use parse::parse_line;
pub use timestamp::{format_timestamp, parse_timestamp};

/// Syslog facility of every DECNET event (local0).
pub const FACILITY_LOCAL0: u8 = 16;
/// Structured-data element id of an event's fields (private enterprise number 55555).
pub const SD_ID: &str = "relay@55555";
/// Longest HOSTNAME (RFC 5424 §6.2.4).
pub const MAX_HOSTNAME: usize = 255;
/// Longest APP-NAME (RFC 5424 §6.2.5).
pub const MAX_APP_NAME: usize = 48;
/// Longest PROCID (RFC 5424 §6.2.6).
pub const MAX_PROCID: usize = 128;
/// Longest MSGID (RFC 5424 §6.2.7).
pub const MAX_MSGID: usize = 32;
/// Longest SD-NAME (SD-ID or parameter name, RFC 5424 §6.3.2–6.3.3).
pub const MAX_SD_NAME: usize = 32;
/// Longest TIMESTAMP text [`parse_line`] accepts (an RFC 3339 one with nanoseconds is 35).
pub const MAX_TIMESTAMP: usize = 64;
/// Longest line [`parse_line`] accepts (without its line break).
pub const MAX_LINE: usize = 64 * 1024;
/// Most SD parameters [`parse_line`] accepts in one line (all elements together).
pub const MAX_PARAMS: usize = 256;
/// Most SD elements [`parse_line`] accepts in one line.
pub const MAX_ELEMENTS: usize = 64;
/// The NILVALUE.
pub const NIL: &str = "-";

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

/// One SD element: SD-ID and its parameters in order (names may repeat).
pub type Element = (String, Vec<(String, String)>);

/// A parsed line. Fields borrow nothing: the parser copies what it keeps. Nil header
/// fields are kept as `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// PRI value (0–191).
    pub pri: u8,
    /// TIMESTAMP text as written (RFC 3339, `-`, or whatever printable text the emitter
    /// wrote; [`Line::timestamp_micros`] reads it).
    pub timestamp: String,
    /// HOSTNAME.
    pub hostname: String,
    /// APP-NAME.
    pub app_name: String,
    /// PROCID.
    pub procid: String,
    /// MSGID.
    pub msgid: String,
    /// Every SD element, in order, with values unescaped.
    pub elements: Vec<Element>,
    /// MSG after the structured data, if any, without a leading UTF-8 BOM.
    pub msg: Option<String>,
    /// The inner line of a double-wrapped line (nil MSGID, MSG an RFC 5424 line), parsed
    /// once here (one level only); derived from `msg`, so `Display` ignores it.
    inner: Option<Box<Line>>,
}

impl Line {
    /// The parameters of the first element with SD-ID `id`.
    pub fn element(&self, id: &str) -> Option<&[(String, String)]> {
        self.elements
            .iter()
            .find(|(e, _)| e == id)
            .map(|(_, params)| params.as_slice())
    }

    /// The parameters of the first `relay@55555` element (empty when there is none).
    pub fn relay_params(&self) -> &[(String, String)] {
        self.element(SD_ID).unwrap_or(&[])
    }

    /// The value of the first `key` in the first `relay@55555` element.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.relay_params()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Severity part of PRI.
    pub fn severity(&self) -> u8 {
        self.pri % 8
    }

    /// Facility part of PRI.
    pub fn facility(&self) -> u8 {
        self.pri / 8
    }

    /// TIMESTAMP as UTC unix microseconds; `None` for `-` or text that is not RFC 3339.
    pub fn timestamp_micros(&self) -> Option<i64> {
        parse_timestamp(&self.timestamp)
    }

    /// The inner line when this one is double-wrapped: MSGID `-` and MSG (after leading
    /// white space) a whole RFC 5424 line, as rsyslog relays `logger` lines. See
    /// [`effective`].
    pub fn inner(&self) -> Option<&Line> {
        self.inner.as_deref()
    }
}

impl fmt::Display for Line {
    /// The canonical text of the line: header fields as stored, every element with only
    /// `"`, `\` and `]` escaped, MSG after one space (with a BOM in front when MSG itself
    /// starts with U+FEFF, so parsing gives the same MSG back). Parsing the output gives
    /// an equal `Line` unless MSG ends with a line break (which parsing strips).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(256);
        format::canonical(&mut out, self);
        f.write_str(&out)
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
    /// A header field holds a byte outside printable US-ASCII.
    #[error("header field {0} holds a byte outside printable US-ASCII")]
    BadField(&'static str),
    /// A header field is longer than RFC 5424 allows.
    #[error("header field {0} is too long")]
    FieldTooLong(&'static str),
    /// Malformed structured data (byte offset in the line).
    #[error("bad structured data at byte {0}")]
    BadSd(usize),
    /// More than [`MAX_PARAMS`] parameters.
    #[error("more than {MAX_PARAMS} structured-data parameters")]
    TooManyParams,
    /// More than [`MAX_ELEMENTS`] elements.
    #[error("more than {MAX_ELEMENTS} structured-data elements")]
    TooManyElements,
}
