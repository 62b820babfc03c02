//! The forwarding envelope: a collected line with its provenance, as one RFC 5424 line.
//!
//! A worker forwards each container line with who vouches for it (the event key, the
//! decky and service from the container's labels, when it was received) as the FIRST SD
//! element `[decnet@55555 key="…" decky="…" service="…" rcv="<unix µs>"]`:
//! - a line that [`parse_line`](super::parse_line) accepts keeps its own header, elements and MSG; the
//!   envelope element goes in front of its first element, or replaces its nil SD `-`;
//! - any other text (stderr, plain prints, empty lines) is carried whole as MSG of
//!   `<131>1 <rcv> <decky> <service> - unparsed [decnet@55555 … raw="1"] <text>`.
//!
//! [`unwrap`] reads only the first element and gives back the line byte for byte; an
//! element `decnet@55555` the container printed itself is just data after ours.

use super::format::{exact_value, header_field};
use super::parse::{element, header, parse_one};
use super::{MAX_APP_NAME, MAX_HOSTNAME, MAX_LINE, ParseError, format_timestamp};

/// SD-ID of the envelope element.
pub const ENVELOPE_SD_ID: &str = "decnet@55555";

/// Envelope values up to this many bytes each keep a wrapped line within
/// [`MAX_ENVELOPE_OVERHEAD`] bytes of the raw line.
pub const MAX_ENVELOPE_FIELD: usize = 255;

/// Most bytes [`wrap`] adds to a raw line when the envelope's values are each at most
/// [`MAX_ENVELOPE_FIELD`] bytes (escaping included). A raw line of at most
/// `MAX_LINE - MAX_ENVELOPE_OVERHEAD` bytes therefore always round-trips.
pub const MAX_ENVELOPE_OVERHEAD: usize = 2048;

/// Provenance of one forwarded line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Stable per-event key (the collector's idempotency key).
    pub key: String,
    /// Decky, from the container's labels.
    pub decky: String,
    /// Service, from the container's labels.
    pub service: String,
    /// When the runtime received the line, UTC unix microseconds.
    pub received_micros: i64,
}

/// Why a payload is not an envelope line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Longer than [`MAX_LINE`].
    #[error("envelope line is longer than {MAX_LINE} bytes")]
    TooLong,
    /// The RFC 5424 header or the first element is malformed.
    #[error("envelope line is not RFC 5424")]
    Syntax(#[source] ParseError),
    /// The first SD element is not `decnet@55555`.
    #[error("first structured-data element is not {ENVELOPE_SD_ID}")]
    NotEnveloped,
    /// The envelope element lacks a parameter, has an unknown one, or a bad `rcv`.
    #[error("bad envelope parameter {0}")]
    BadParam(&'static str),
    /// An `unparsed` envelope without its one space before the carried text.
    #[error("unparsed envelope without its text")]
    MissingText,
}

fn push_param(out: &mut String, name: &str, value: &str) {
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    exact_value(out, value);
    out.push('"');
}

fn push_element(out: &mut String, env: &Envelope, raw: bool) {
    out.push('[');
    out.push_str(ENVELOPE_SD_ID);
    push_param(out, "key", &env.key);
    push_param(out, "decky", &env.decky);
    push_param(out, "service", &env.service);
    push_param(out, "rcv", &env.received_micros.to_string());
    if raw {
        push_param(out, "raw", "1");
    }
    out.push(']');
}

/// Wraps `raw_line` (any text) in the envelope: see the module documentation.
/// [`unwrap`] gives `(env, raw_line)` back exactly as long as the result is at most
/// [`MAX_LINE`] bytes.
pub fn wrap(env: &Envelope, raw_line: &str) -> String {
    let mut out = String::with_capacity(raw_line.len() + 160);
    // `parse_one`: `parse_line` without looking into MSG for a double-wrapped line.
    if parse_one(raw_line).is_ok()
        && let Ok(h) = header(raw_line)
    {
        let (prefix, rest) = raw_line.split_at(h.sd_start);
        out.push_str(prefix);
        push_element(&mut out, env, false);
        // A parsed SD is elements (`[`…) or the nil `-`, which the element replaces.
        out.push_str(rest.strip_prefix('-').unwrap_or(rest));
        return out;
    }
    out.push_str("<131>1 ");
    out.push_str(
        format_timestamp(env.received_micros)
            .as_deref()
            .unwrap_or("-"),
    );
    out.push(' ');
    header_field(&mut out, &env.decky, MAX_HOSTNAME);
    out.push(' ');
    header_field(&mut out, &env.service, MAX_APP_NAME);
    out.push_str(" - unparsed ");
    push_element(&mut out, env, true);
    out.push(' ');
    out.push_str(raw_line);
    out
}

/// Reads an envelope line: the envelope from its first SD element (nothing else in the
/// line is trusted) and the raw line it carries, byte for byte.
///
/// # Errors
/// [`EnvelopeError`] when the payload is longer than [`MAX_LINE`], not RFC 5424 up to its
/// first element, or that element is not a well-formed `decnet@55555` envelope.
pub fn unwrap(payload: &str) -> Result<(Envelope, String), EnvelopeError> {
    if payload.len() > MAX_LINE {
        return Err(EnvelopeError::TooLong);
    }
    let h = header(payload).map_err(EnvelopeError::Syntax)?;
    let mut n_params = 0;
    let ((id, params), end) =
        element(payload, h.sd_start, &mut n_params).map_err(EnvelopeError::Syntax)?;
    if id != ENVELOPE_SD_ID {
        return Err(EnvelopeError::NotEnveloped);
    }
    let mut params = params.into_iter();
    let mut take = |name: &'static str| match params.next() {
        Some((k, v)) if k == name => Ok(v),
        _ => Err(EnvelopeError::BadParam(name)),
    };
    let key = take("key")?;
    let decky = take("decky")?;
    let service = take("service")?;
    let rcv = take("rcv")?;
    let raw = match params.next() {
        None => false,
        Some((k, v)) if k == "raw" && v == "1" => true,
        Some(_) => return Err(EnvelopeError::BadParam("raw")),
    };
    if params.next().is_some() {
        return Err(EnvelopeError::BadParam("raw"));
    }
    let received_micros = canonical_i64(&rcv).ok_or(EnvelopeError::BadParam("rcv"))?;
    let env = Envelope {
        key,
        decky,
        service,
        received_micros,
    };
    let rest = &payload[end..];
    let raw_line = if raw {
        rest.strip_prefix(' ')
            .ok_or(EnvelopeError::MissingText)?
            .to_owned()
    } else {
        let prefix = &payload[..h.sd_start];
        let mut line = String::with_capacity(prefix.len() + rest.len() + 1);
        line.push_str(prefix);
        if !rest.starts_with('[') {
            line.push('-');
        }
        line.push_str(rest);
        line
    };
    Ok((env, raw_line))
}

/// An i64 in the text `i64::to_string` writes (no sign on positives, no leading zeros),
/// so one envelope has one text.
fn canonical_i64(s: &str) -> Option<i64> {
    let v: i64 = s.parse().ok()?;
    (v.to_string() == s).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::super::{SD_ID, parse_line};
    use super::*;

    fn env() -> Envelope {
        Envelope {
            key: "9f86d081884c7d65".into(),
            decky: "decky-01".into(),
            service: "ssh".into(),
            received_micros: 1_714_000_000_123_456,
        }
    }

    #[test]
    fn rfc5424_line_gets_a_first_element() {
        let raw = r#"<134>1 2024-04-24T23:06:40.123456+00:00 decky-01 ssh - auth_attempt [relay@55555 src_ip="203.0.113.9"] hi"#;
        let payload = wrap(&env(), raw);
        assert_eq!(
            payload,
            r#"<134>1 2024-04-24T23:06:40.123456+00:00 decky-01 ssh - auth_attempt [decnet@55555 key="9f86d081884c7d65" decky="decky-01" service="ssh" rcv="1714000000123456"][relay@55555 src_ip="203.0.113.9"] hi"#
        );
        // The payload is itself a valid line whose event fields are untouched.
        let parsed = parse_line(&payload).unwrap();
        assert_eq!(parsed.elements[0].0, ENVELOPE_SD_ID);
        assert_eq!(parsed.param("src_ip"), Some("203.0.113.9"));
        assert_eq!(unwrap(&payload).unwrap(), (env(), raw.to_owned()));
    }

    #[test]
    fn nil_sd_is_replaced() {
        let raw = "<134>1 - h app - startup - up and running";
        let payload = wrap(&env(), raw);
        assert_eq!(
            payload,
            r#"<134>1 - h app - startup [decnet@55555 key="9f86d081884c7d65" decky="decky-01" service="ssh" rcv="1714000000123456"] up and running"#
        );
        assert_eq!(unwrap(&payload).unwrap(), (env(), raw.to_owned()));
        let raw = "<134>1 - h app - startup -";
        assert_eq!(unwrap(&wrap(&env(), raw)).unwrap().1, raw);
    }

    #[test]
    fn other_text_is_carried_whole() {
        let e = Envelope {
            decky: "a b\"c".into(),
            ..env()
        };
        for raw in [
            "",
            " ",
            "Traceback (most recent call last):",
            "<134>1 - h a - m",
            "<134>1 - h a - m -x",
            "plain [decnet@55555 key=\"x\"] text\n",
            "\u{feff}bom",
        ] {
            let payload = wrap(&e, raw);
            assert!(payload.starts_with("<131>1 2024-04-24T23:06:40.123456+00:00 a_b\"c ssh - unparsed [decnet@55555 key="), "{payload}");
            let parsed = parse_line(payload.trim_end_matches('\n')).unwrap();
            assert_eq!(parsed.element(ENVELOPE_SD_ID).unwrap()[1].1, "a b\"c");
            assert_eq!(
                unwrap(&payload).unwrap(),
                (e.clone(), raw.to_owned()),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn a_forged_envelope_in_the_line_is_data() {
        // A container printing its own decnet element, claiming another decky.
        let forged = r#"<134>1 - decky-99 smb - login [decnet@55555 key="00" decky="decky-99" service="smb" rcv="1"][relay@55555 src_ip="10.0.0.1"]"#;
        let payload = wrap(&env(), forged);
        let (got, raw) = unwrap(&payload).unwrap();
        assert_eq!(got, env());
        assert_eq!(raw, forged);
        // Same with a value that tries to close our element early.
        let e = Envelope {
            service: "ssh\"] [decnet@55555 decky=\"evil".into(),
            ..env()
        };
        let (got, raw) = unwrap(&wrap(&e, forged)).unwrap();
        assert_eq!(got, e);
        assert_eq!(raw, forged);
    }

    #[test]
    fn refuses_what_is_not_an_envelope() {
        let cases: [(&str, EnvelopeError); 7] = [
            ("no header", EnvelopeError::Syntax(ParseError::BadHeader)),
            (
                "<134>1 - h a - m -",
                EnvelopeError::Syntax(ParseError::BadSd(17)),
            ),
            (
                r#"<134>1 - h a - m [relay@55555 k="v"][decnet@55555 key="1" decky="d" service="s" rcv="1"]"#,
                EnvelopeError::NotEnveloped,
            ),
            (
                r#"<134>1 - h a - m [decnet@55555 key="1" decky="d" rcv="1"]"#,
                EnvelopeError::BadParam("service"),
            ),
            (
                r#"<134>1 - h a - m [decnet@55555 key="1" decky="d" service="s" rcv="01"]"#,
                EnvelopeError::BadParam("rcv"),
            ),
            (
                r#"<134>1 - h a - m [decnet@55555 key="1" decky="d" service="s" rcv="1" raw="1" x="y"]"#,
                EnvelopeError::BadParam("raw"),
            ),
            (
                r#"<131>1 - h a - unparsed [decnet@55555 key="1" decky="d" service="s" rcv="1" raw="1"]"#,
                EnvelopeError::MissingText,
            ),
        ];
        for (payload, err) in cases {
            assert_eq!(unwrap(payload), Err(err), "{payload}");
        }
        let long = format!("<134>1 - h a - m - {}", "x".repeat(MAX_LINE));
        assert_eq!(unwrap(&long), Err(EnvelopeError::TooLong));
    }

    #[test]
    fn overhead_bound_holds_for_the_largest_fields() {
        let e = Envelope {
            key: "\"".repeat(MAX_ENVELOPE_FIELD),
            decky: "]".repeat(MAX_ENVELOPE_FIELD),
            service: "\\".repeat(MAX_ENVELOPE_FIELD),
            received_micros: i64::MIN,
        };
        for raw in ["x", "<134>1 - h a - m -"] {
            let payload = wrap(&e, raw);
            assert!(
                payload.len() - raw.len() <= MAX_ENVELOPE_OVERHEAD,
                "{}",
                payload.len()
            );
            assert_eq!(unwrap(&payload).unwrap(), (e.clone(), raw.to_owned()));
        }
        let raw = format!(
            "<134>1 - h a - m [{SD_ID} k=\"v\"] {}",
            "y".repeat(MAX_LINE - MAX_ENVELOPE_OVERHEAD - 40)
        );
        assert_eq!(unwrap(&wrap(&e, &raw)).unwrap().1, raw);
    }

    proptest::proptest! {
        #[test]
        fn round_trip_any_text(
            key in "[0-9a-f]{0,64}",
            decky in "\\PC{0,20}",
            service in "[\\PC\"\\\\\\]]{0,12}",
            rcv in proptest::num::i64::ANY,
            raw in "\\PC{0,120}|[\\PC\\n\\r]{0,40}",
        ) {
            let e = Envelope { key, decky, service, received_micros: rcv };
            let payload = wrap(&e, &raw);
            proptest::prop_assert_eq!(unwrap(&payload), Ok((e, raw)));
        }

        #[test]
        fn round_trip_rfc5424_lines(
            pri in 0u8..=191,
            host in "[!-~]{1,8}|-",
            msgid in "[!-~]{1,8}|-",
            elements in proptest::collection::vec(
                ("[a-z@0-9]{1,8}", proptest::collection::vec(("[a-z_]{1,6}", "[\\PC\"\\\\\\]]{0,12}"), 0..3)),
                0..3,
            ),
            msg in proptest::option::of("\\PC{0,30}"),
            eol in "|\n|\r\n",
            rcv in proptest::num::i64::ANY,
        ) {
            let line = super::super::Line {
                pri,
                timestamp: "2024-04-24T23:06:40.123456+00:00".into(),
                hostname: host,
                app_name: "app".into(),
                procid: "-".into(),
                msgid,
                elements,
                msg,
                inner: None,
            };
            let raw = format!("{line}{eol}");
            let e = Envelope { received_micros: rcv, ..env() };
            let payload = wrap(&e, &raw);
            // Taken the RFC 5424 way: our element first, the line's own after it.
            let parsed = parse_line(&payload).unwrap();
            proptest::prop_assert_eq!(&parsed.elements[0].0, ENVELOPE_SD_ID);
            proptest::prop_assert_eq!(&parsed.elements[1..], &parse_line(&raw).unwrap().elements[..]);
            proptest::prop_assert_eq!(unwrap(&payload), Ok((e, raw)));
        }
    }
}
