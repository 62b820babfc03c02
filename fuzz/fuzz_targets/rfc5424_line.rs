//! Fuzzes the RFC 5424 parser and the forwarding envelope: total, bounded, canonical, and
//! the envelope gives back any line byte for byte.
#![no_main]

use decnet_wire::rfc5424::{
    self, Envelope, MAX_ELEMENTS, MAX_LINE, MAX_PARAMS, MAX_SD_NAME, effective,
    format_timestamp, parse_line, parse_timestamp, unwrap, wrap,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_parse(&text);
    check_unwrap(&text);
    check_wrap(&text);
});

/// Whatever parses is within bounds, writes back to a canonical text that parses to the
/// same line, and its conventions are consistent.
fn check_parse(text: &str) {
    let Ok(line) = parse_line(text) else { return };
    assert!(line.pri <= 191);
    assert!(line.elements.len() <= MAX_ELEMENTS);
    assert!(line.elements.iter().map(|(_, ps)| ps.len()).sum::<usize>() <= MAX_PARAMS);
    for (id, params) in &line.elements {
        assert!(!id.is_empty() && id.len() <= MAX_SD_NAME);
        for (name, _) in params {
            assert!(!name.is_empty() && name.len() <= MAX_SD_NAME);
        }
    }
    let canonical = line.to_string();
    // A MSG ending in a line break loses it when parsed again (the parser strips one).
    let msg_keeps = !line
        .msg
        .as_deref()
        .is_some_and(|m| m.ends_with('\n') || m.ends_with('\r'));
    if msg_keeps && canonical.len() <= MAX_LINE {
        let again = parse_line(&canonical).expect("the canonical text of a line parses");
        assert_eq!(again, line);
        assert_eq!(again.to_string(), canonical);
    }
    if let Some(micros) = line.timestamp_micros() {
        if let Some(text) = format_timestamp(micros) {
            assert_eq!(parse_timestamp(&text), Some(micros));
        }
    }
    let ev = effective(&line);
    assert_eq!(ev.unwrapped, line.inner().is_some());
    if ev.unwrapped {
        assert_eq!(line.msgid, "-");
        assert!(ev.line.inner().is_none());
    }
    if ev.event_type == "command" {
        assert!(ev.line.msgid == "command" || ev.msg.is_some_and(|m| m.starts_with("CMD")));
    }
    assert_eq!(rfc5424::attacker_addr(&line), ev.attacker_addr());
}

/// Whatever unwraps wraps again to a payload that unwraps to the same pair.
fn check_unwrap(text: &str) {
    let Ok((env, raw)) = unwrap(text) else { return };
    let payload = wrap(&env, &raw);
    if payload.len() <= MAX_LINE {
        assert_eq!(unwrap(&payload), Ok((env, raw)));
    }
}

/// Any raw line and envelope round-trip: `key NUL decky NUL service NUL raw`.
fn check_wrap(text: &str) {
    let mut parts = text.splitn(4, '\0');
    let (Some(key), Some(decky), Some(service), Some(raw)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let env = Envelope {
        key: key.to_owned(),
        decky: decky.to_owned(),
        service: service.to_owned(),
        received_micros: (raw.len() as i64).wrapping_mul(0x9e37_79b9_7f4a_7c15u64 as i64),
    };
    let payload = wrap(&env, raw);
    if payload.len() <= MAX_LINE {
        assert_eq!(unwrap(&payload), Ok((env, raw.to_owned())));
    }
}
