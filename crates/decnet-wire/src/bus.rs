//! Frames of the host-local service bus: `VERB[ args]\n`, a 4-byte big-endian body length, a body.
//!
//! One frame on the wire:
//!
//! ```text
//! PUB decky.local:web-01.state\n      header line, ASCII verb, optional args (CR before LF tolerated)
//! \x00\x00\x00\x2a                    body length, u32 big-endian
//! {"v":1,"id":"…","type":"state",…}    body: empty, or exactly one JSON object
//! ```
//!
//! Limits are enforced while decoding, never after buffering: a header with no LF within
//! [`MAX_HEADER_LEN`] bytes is refused as soon as that many bytes are present, and a body
//! length above [`MAX_BODY_LEN`] is refused as soon as the four length bytes are present,
//! before any of the body arrives. [`decode`] is incremental and total: any byte string
//! yields a frame (with the number of bytes it used), "need more input", or an error.
//!
//! Verbs are the reference set (HELLO, PUB, SUB, UNSUB, EVT, BYE) plus `OK`, which a
//! broker sends only to a client that asked for an acknowledgement in its SUB body, so a
//! reference peer never receives a verb it does not know (see the `decnet-bus` crate doc).

use std::fmt;

use thiserror::Error;

/// Longest header line, LF included.
pub const MAX_HEADER_LEN: usize = 4096;
/// Largest body, in bytes.
pub const MAX_BODY_LEN: usize = 1024 * 1024;
/// Size of the big-endian body length that follows the header line.
pub const LEN_PREFIX: usize = 4;
/// Longest verb text kept in an [`FrameError::UnknownVerb`] error.
pub const MAX_REPORTED_VERB: usize = 32;

/// A frame verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// `HELLO <name>`: the client names itself (client → broker).
    Hello,
    /// `PUB <topic>`: publish the envelope in the body (client → broker).
    Pub,
    /// `SUB <pattern>`: subscribe (client → broker).
    Sub,
    /// `UNSUB <pattern>`: drop one subscription (client → broker).
    Unsub,
    /// `EVT <topic>`: one delivered event (broker → client).
    Evt,
    /// `BYE`: orderly end of the connection (either direction).
    Bye,
    /// `OK <pattern>`: acknowledgement of a SUB that asked for one (broker → client).
    Ok,
}

impl Verb {
    /// Every verb, in wire order of the table above.
    pub const ALL: [Verb; 7] = [
        Verb::Hello,
        Verb::Pub,
        Verb::Sub,
        Verb::Unsub,
        Verb::Evt,
        Verb::Bye,
        Verb::Ok,
    ];

    /// The verb as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Hello => "HELLO",
            Verb::Pub => "PUB",
            Verb::Sub => "SUB",
            Verb::Unsub => "UNSUB",
            Verb::Evt => "EVT",
            Verb::Bye => "BYE",
            Verb::Ok => "OK",
        }
    }

    /// Parses a wire verb (exact, case-sensitive).
    pub fn from_wire(text: &[u8]) -> Option<Verb> {
        Some(match text {
            b"HELLO" => Verb::Hello,
            b"PUB" => Verb::Pub,
            b"SUB" => Verb::Sub,
            b"UNSUB" => Verb::Unsub,
            b"EVT" => Verb::Evt,
            b"BYE" => Verb::Bye,
            b"OK" => Verb::Ok,
            _ => return None,
        })
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why bytes are not a valid frame, or a frame cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// No LF within the first [`MAX_HEADER_LEN`] bytes (or an encoded header would be longer).
    #[error("header longer than {limit} bytes")]
    HeaderTooLong {
        /// The limit, [`MAX_HEADER_LEN`].
        limit: usize,
    },
    /// The header line is empty (only LF, or CR LF).
    #[error("empty header line")]
    EmptyHeader,
    /// The header line is not UTF-8.
    #[error("header line is not utf-8")]
    HeaderNotUtf8,
    /// The header carries a control character other than the final CR.
    #[error("header line contains control character {0:#04x}")]
    HeaderControl(u8),
    /// The verb is not one of [`Verb::ALL`] (text cut to [`MAX_REPORTED_VERB`] bytes).
    #[error("unknown verb {0:?}")]
    UnknownVerb(String),
    /// The body length exceeds [`MAX_BODY_LEN`].
    #[error("body of {len} bytes exceeds the limit of {limit}")]
    BodyTooLong {
        /// The announced (or given) length.
        len: u64,
        /// The limit, [`MAX_BODY_LEN`].
        limit: usize,
    },
    /// The body is not UTF-8.
    #[error("body is not utf-8")]
    BodyNotUtf8,
    /// The body is not exactly one JSON object.
    #[error("body is not one json object: {0}")]
    BodyNotObject(String),
    /// The input ended inside a header line.
    #[error("input ended inside a header line")]
    EofInHeader,
    /// The input ended before the body length or the body was complete.
    #[error("input ended after {got} of {expected} frame bytes")]
    Truncated {
        /// Bytes the frame needs (header, length and body).
        expected: usize,
        /// Bytes that were present.
        got: usize,
    },
    /// Encoder: arguments contain CR or LF, which would split the header.
    #[error("arguments contain a line break")]
    ArgsLineBreak,
}

/// One decoded frame, borrowing from the input buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The verb.
    pub verb: Verb,
    /// Everything after the first space of the header, trimmed (inner spaces kept); may be empty.
    pub args: &'a str,
    /// The body: empty, or the text of one JSON object (validated).
    pub body: &'a [u8],
}

/// Result of one [`decode`] step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole frame, and how many input bytes it took.
    Frame {
        /// The frame.
        frame: Frame<'a>,
        /// Bytes consumed from the front of the input.
        consumed: usize,
    },
    /// The input holds the start of a valid frame; at least `min_len` bytes in total are needed.
    NeedMore {
        /// Lower bound on the buffer length that can make progress.
        min_len: usize,
    },
}

/// Position of the LF ending the header, searched only within the header limit.
fn find_lf(buf: &[u8]) -> Option<usize> {
    let window = &buf[..buf.len().min(MAX_HEADER_LEN)];
    window.iter().position(|&b| b == b'\n')
}

/// Parses the header line (without LF) into verb and args.
fn parse_header(line: &[u8]) -> Result<(Verb, &str), FrameError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(FrameError::EmptyHeader);
    }
    let mut ascii = true;
    for &b in line {
        if b < 0x20 || b == 0x7f {
            return Err(FrameError::HeaderControl(b));
        }
        ascii &= b.is_ascii();
    }
    let text = std::str::from_utf8(line).map_err(|_| FrameError::HeaderNotUtf8)?;
    let (verb_text, args) = match text.split_once(' ') {
        // With control characters refused, the only ASCII whitespace left is the space:
        // trimming spaces is `trim` then, without decoding characters.
        Some((v, a)) if ascii => (v, a.trim_matches(' ')),
        Some((v, a)) => (v, a.trim()),
        None => (text, ""),
    };
    let verb = Verb::from_wire(verb_text.as_bytes()).ok_or_else(|| {
        let mut shown = verb_text.to_owned();
        if shown.len() > MAX_REPORTED_VERB {
            let mut cut = MAX_REPORTED_VERB;
            while !shown.is_char_boundary(cut) {
                cut -= 1;
            }
            shown.truncate(cut);
        }
        FrameError::UnknownVerb(shown)
    })?;
    Ok((verb, args))
}

/// Checks that `body` is empty or exactly one JSON object.
///
/// # Errors
/// [`FrameError::BodyNotUtf8`] or [`FrameError::BodyNotObject`].
pub fn check_body(body: &[u8]) -> Result<(), FrameError> {
    if body.is_empty() {
        return Ok(());
    }
    // serde_json skips over string contents without checking their UTF-8, so check it first.
    std::str::from_utf8(body).map_err(|_| FrameError::BodyNotUtf8)?;
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(FrameError::BodyNotObject(
            "it does not start with '{'".into(),
        ));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(body)
        .map_err(|e| FrameError::BodyNotObject(e.to_string()))?;
    Ok(())
}

/// Decodes one frame from the front of `buf`.
///
/// Total and bounded: a header with no LF in its first [`MAX_HEADER_LEN`] bytes and a body
/// length above [`MAX_BODY_LEN`] are refused as soon as they can be seen; the body is
/// checked to be empty or one JSON object ([`check_body`]).
///
/// # Errors
/// Any [`FrameError`] but the encoder-only ones; after an error the stream cannot be
/// resynchronised and the connection should be closed.
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, FrameError> {
    let decoded = decode_unchecked(buf)?;
    if let Decoded::Frame { frame, .. } = &decoded {
        check_body(frame.body)?;
    }
    Ok(decoded)
}

/// Like [`decode`] but leaves the body unchecked (framing and limits are still enforced).
///
/// For a caller that parses the body with a strict JSON parser right away (the broker
/// and client parse every event body into an envelope), so it is scanned once instead
/// of twice; such a caller must treat a parse failure as the protocol error [`decode`]
/// would have reported, and call [`check_body`] for bodies it does not parse.
///
/// # Errors
/// As [`decode`], minus the body checks.
pub fn decode_unchecked(buf: &[u8]) -> Result<Decoded<'_>, FrameError> {
    let Some(lf) = find_lf(buf) else {
        if buf.len() >= MAX_HEADER_LEN {
            return Err(FrameError::HeaderTooLong {
                limit: MAX_HEADER_LEN,
            });
        }
        return Ok(Decoded::NeedMore {
            min_len: buf.len() + 1,
        });
    };
    let (verb, args) = parse_header(&buf[..lf])?;
    let len_at = lf + 1;
    let body_at = len_at + LEN_PREFIX;
    let Some(len_bytes) = buf.get(len_at..body_at) else {
        return Ok(Decoded::NeedMore { min_len: body_at });
    };
    let mut be = [0u8; LEN_PREFIX];
    be.copy_from_slice(len_bytes);
    let len = u32::from_be_bytes(be);
    if u64::from(len) > MAX_BODY_LEN as u64 {
        return Err(FrameError::BodyTooLong {
            len: u64::from(len),
            limit: MAX_BODY_LEN,
        });
    }
    // The bound above keeps this addition far from overflow.
    let end = body_at + len as usize;
    let Some(body) = buf.get(body_at..end) else {
        return Ok(Decoded::NeedMore { min_len: end });
    };
    Ok(Decoded::Frame {
        frame: Frame { verb, args, body },
        consumed: end,
    })
}

/// Classifies what is left in the buffer when the input ends.
///
/// # Errors
/// [`FrameError::EofInHeader`] when `rest` holds part of a header line,
/// [`FrameError::Truncated`] when it holds a header but not the whole frame, or the
/// decoding error the bytes already carry. An empty `rest` is a clean end.
pub fn check_eof(rest: &[u8]) -> Result<(), FrameError> {
    if rest.is_empty() {
        return Ok(());
    }
    match decode(rest)? {
        // A whole frame is still there: the caller should have taken it; treat it as the
        // clean end it would be after that.
        Decoded::Frame { .. } => Ok(()),
        Decoded::NeedMore { min_len } => {
            if find_lf(rest).is_none() {
                Err(FrameError::EofInHeader)
            } else {
                Err(FrameError::Truncated {
                    expected: min_len,
                    got: rest.len(),
                })
            }
        }
    }
}

/// `args.trim()`, answered without decoding characters when both ends are visible ASCII
/// (topics and patterns always are).
fn trim_args(args: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b.is_ascii());
    let bytes = args.as_bytes();
    if visible(bytes.first()) && visible(bytes.last()) {
        args
    } else {
        args.trim()
    }
}

/// Length of the frame [`encode`] would write, or the reason it cannot.
///
/// # Errors
/// See [`encode`].
pub fn encoded_len(verb: Verb, args: &str, body: &[u8]) -> Result<usize, FrameError> {
    let args = trim_args(args);
    if args.bytes().any(|b| b == b'\r' || b == b'\n') {
        return Err(FrameError::ArgsLineBreak);
    }
    let header = verb.as_str().len() + if args.is_empty() { 0 } else { 1 + args.len() } + 1;
    if header > MAX_HEADER_LEN {
        return Err(FrameError::HeaderTooLong {
            limit: MAX_HEADER_LEN,
        });
    }
    if body.len() > MAX_BODY_LEN {
        return Err(FrameError::BodyTooLong {
            len: body.len() as u64,
            limit: MAX_BODY_LEN,
        });
    }
    Ok(header + LEN_PREFIX + body.len())
}

/// Appends one frame to `out`.
///
/// `args` is trimmed (so `VERB\n` is written when it is empty). The body must be empty or
/// the text of one JSON object; that is the caller's duty (callers serialise a JSON object),
/// checked only by the decoder on the other side.
///
/// # Errors
/// [`FrameError::ArgsLineBreak`], [`FrameError::HeaderTooLong`] or
/// [`FrameError::BodyTooLong`]; `out` is unchanged then.
pub fn encode(verb: Verb, args: &str, body: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    let total = encoded_len(verb, args, body)?;
    let args = trim_args(args);
    out.reserve(total);
    out.extend_from_slice(verb.as_str().as_bytes());
    if !args.is_empty() {
        out.push(b' ');
        out.extend_from_slice(args.as_bytes());
    }
    out.push(b'\n');
    // encoded_len bounded the body to MAX_BODY_LEN, which fits in a u32.
    let len = u32::try_from(body.len()).map_err(|_| FrameError::BodyTooLong {
        len: body.len() as u64,
        limit: MAX_BODY_LEN,
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// A frame whose header is written and whose body is being appended in place; see [`begin`].
#[derive(Debug)]
#[must_use = "a begun frame must be finished"]
pub struct OpenFrame {
    start: usize,
    body_at: usize,
}

/// Starts a frame at the end of `out`: writes the header and a length placeholder, so the
/// caller can serialise the body straight into `out` and then call [`finish`].
///
/// # Errors
/// As [`encode`] for the header; `out` is unchanged then.
pub fn begin(verb: Verb, args: &str, out: &mut Vec<u8>) -> Result<OpenFrame, FrameError> {
    let start = out.len();
    encode(verb, args, b"", out)?;
    Ok(OpenFrame {
        start,
        body_at: out.len(),
    })
}

/// Completes a frame started by [`begin`]: everything appended since is its body.
///
/// # Errors
/// [`FrameError::BodyTooLong`] when the body exceeds [`MAX_BODY_LEN`]; the whole frame is
/// removed from `out` then.
pub fn finish(frame: OpenFrame, out: &mut Vec<u8>) -> Result<(), FrameError> {
    let body_len = out.len().saturating_sub(frame.body_at);
    let len = u32::try_from(body_len)
        .ok()
        .filter(|l| *l as usize <= MAX_BODY_LEN);
    let Some(len) = len else {
        out.truncate(frame.start);
        return Err(FrameError::BodyTooLong {
            len: body_len as u64,
            limit: MAX_BODY_LEN,
        });
    };
    out[frame.body_at - LEN_PREFIX..frame.body_at].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(verb: Verb, args: &str, body: &str) -> Vec<u8> {
        let mut out = Vec::new();
        encode(verb, args, body.as_bytes(), &mut out).unwrap();
        out
    }

    fn one(buf: &[u8]) -> (Frame<'_>, usize) {
        match decode(buf).unwrap() {
            Decoded::Frame { frame, consumed } => (frame, consumed),
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn encodes_the_reference_layout() {
        let out = frame(Verb::Pub, "a.b", r#"{"x":1}"#);
        assert_eq!(out, b"PUB a.b\n\x00\x00\x00\x07{\"x\":1}");
        assert_eq!(frame(Verb::Bye, "", ""), b"BYE\n\x00\x00\x00\x00");
        assert_eq!(
            frame(Verb::Sub, "  a.>  ", ""),
            b"SUB a.>\n\x00\x00\x00\x00"
        );
    }

    #[test]
    fn decodes_args_trimmed_with_inner_spaces_and_crlf() {
        let buf = b"HELLO  my client \r\n\x00\x00\x00\x00rest";
        let (f, used) = one(buf);
        assert_eq!(f.verb, Verb::Hello);
        assert_eq!(f.args, "my client");
        assert_eq!(f.body, b"");
        assert_eq!(&buf[used..], b"rest");
    }

    #[test]
    fn every_prefix_of_a_frame_needs_more() {
        let buf = frame(Verb::Evt, "system.bus.health", r#"{"payload":{"pid":1}}"#);
        for cut in 0..buf.len() {
            match decode(&buf[..cut]).unwrap() {
                Decoded::NeedMore { min_len } => assert!(min_len > cut, "cut {cut}"),
                other => panic!("cut {cut}: {other:?}"),
            }
        }
        assert_eq!(one(&buf).1, buf.len());
    }

    #[test]
    fn refuses_unknown_verbs_and_empty_headers() {
        let err = decode(b"PING x\n\x00\x00\x00\x00").unwrap_err();
        assert_eq!(err, FrameError::UnknownVerb("PING".into()));
        assert_eq!(
            decode(b"pub a\n").unwrap_err(),
            FrameError::UnknownVerb("pub".into())
        );
        assert_eq!(decode(b"\n").unwrap_err(), FrameError::EmptyHeader);
        assert_eq!(decode(b"\r\n").unwrap_err(), FrameError::EmptyHeader);
        assert_eq!(
            decode(b"PUB a\0b\n").unwrap_err(),
            FrameError::HeaderControl(0)
        );
        assert_eq!(
            decode(b"PUB \xff\n").unwrap_err(),
            FrameError::HeaderNotUtf8
        );
        let long = format!("{}\n", "X".repeat(100));
        match decode(long.as_bytes()).unwrap_err() {
            FrameError::UnknownVerb(v) => assert_eq!(v.len(), MAX_REPORTED_VERB),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn header_limit_is_enforced_while_reading() {
        // 4095 bytes without LF: still a possible header.
        let partial = vec![b'A'; MAX_HEADER_LEN - 1];
        assert!(matches!(decode(&partial), Ok(Decoded::NeedMore { .. })));
        // The 4096th byte without LF: refused at once, without waiting for more input.
        let full = vec![b'A'; MAX_HEADER_LEN];
        assert_eq!(
            decode(&full).unwrap_err(),
            FrameError::HeaderTooLong {
                limit: MAX_HEADER_LEN
            }
        );
        // A header of exactly 4096 bytes including LF is accepted.
        let mut ok = b"PUB ".to_vec();
        ok.extend(std::iter::repeat_n(b'a', MAX_HEADER_LEN - 5));
        ok.push(b'\n');
        ok.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(one(&ok).0.args.len(), MAX_HEADER_LEN - 5);
        // The encoder refuses what the decoder would refuse.
        let args = "a".repeat(MAX_HEADER_LEN - 4);
        assert_eq!(
            encode(Verb::Pub, &args, b"", &mut Vec::new()).unwrap_err(),
            FrameError::HeaderTooLong {
                limit: MAX_HEADER_LEN
            }
        );
    }

    #[test]
    fn body_limit_is_enforced_from_the_length_alone() {
        let mut buf = b"PUB a\n".to_vec();
        buf.extend_from_slice(&(MAX_BODY_LEN as u32 + 1).to_be_bytes());
        assert_eq!(
            decode(&buf).unwrap_err(),
            FrameError::BodyTooLong {
                len: MAX_BODY_LEN as u64 + 1,
                limit: MAX_BODY_LEN
            }
        );
        let mut buf = b"PUB a\n".to_vec();
        buf.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(decode(&buf), Err(FrameError::BodyTooLong { .. })));
        let body = vec![b' '; MAX_BODY_LEN + 1];
        assert!(matches!(
            encode(Verb::Pub, "a", &body, &mut Vec::new()),
            Err(FrameError::BodyTooLong { .. })
        ));
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_accepted() {
        let mut body = String::from("{\"p\":\"");
        body.push_str(&"x".repeat(MAX_BODY_LEN - 8));
        body.push_str("\"}");
        assert_eq!(body.len(), MAX_BODY_LEN);
        let buf = frame(Verb::Pub, "a", &body);
        assert_eq!(one(&buf).0.body.len(), MAX_BODY_LEN);
    }

    #[test]
    fn refuses_bodies_that_are_not_one_object() {
        for bad in [
            "[1,2]",
            "\"s\"",
            "42",
            "null",
            "{\"a\":1} {\"b\":2}",
            "{\"a\":",
            "{\"a\":1}x",
            "   ",
        ] {
            let buf = frame(Verb::Pub, "a", bad);
            assert!(
                matches!(decode(&buf), Err(FrameError::BodyNotObject(_))),
                "{bad:?}"
            );
        }
        let mut buf = b"PUB a\n\x00\x00\x00\x08".to_vec();
        buf.extend_from_slice(b"{\"a\":\"\xff\"}");
        assert_eq!(decode(&buf).unwrap_err(), FrameError::BodyNotUtf8);
        // Whitespace around an object is fine.
        assert_eq!(one(&frame(Verb::Pub, "a", " {} \n")).0.body, b" {} \n");
    }

    #[test]
    fn unchecked_decoding_frames_the_same_but_leaves_the_body() {
        let good = frame(Verb::Pub, "a", r#"{"k":[1]}"#);
        assert_eq!(decode_unchecked(&good).unwrap(), decode(&good).unwrap());
        let bad = frame(Verb::Pub, "a", "[1]");
        assert!(decode(&bad).is_err());
        match decode_unchecked(&bad).unwrap() {
            Decoded::Frame { frame, consumed } => {
                assert_eq!(frame.body, b"[1]");
                assert_eq!(consumed, bad.len());
            }
            other => panic!("{other:?}"),
        }
        let mut over = b"PUB a\n".to_vec();
        over.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            decode_unchecked(&over),
            Err(FrameError::BodyTooLong { .. })
        ));
    }

    #[test]
    fn frames_built_in_place_equal_encoded_ones() {
        let mut out = b"prefix".to_vec();
        let open = begin(Verb::Evt, "a.b", &mut out).unwrap();
        out.extend_from_slice(br#"{"x":1}"#);
        finish(open, &mut out).unwrap();
        let mut want = b"prefix".to_vec();
        encode(Verb::Evt, "a.b", br#"{"x":1}"#, &mut want).unwrap();
        assert_eq!(out, want);

        let mut out = b"keep".to_vec();
        let open = begin(Verb::Pub, "a", &mut out).unwrap();
        out.resize(out.len() + MAX_BODY_LEN + 1, b' ');
        assert!(matches!(
            finish(open, &mut out),
            Err(FrameError::BodyTooLong { .. })
        ));
        assert_eq!(out, b"keep");
    }

    #[test]
    fn encoder_refuses_line_breaks_in_args() {
        for args in ["a\nb", "a\rb"] {
            assert_eq!(
                encode(Verb::Pub, args, b"", &mut Vec::new()).unwrap_err(),
                FrameError::ArgsLineBreak
            );
        }
    }

    #[test]
    fn eof_classification() {
        assert_eq!(check_eof(b""), Ok(()));
        assert_eq!(check_eof(b"PU"), Err(FrameError::EofInHeader));
        assert_eq!(
            check_eof(b"PUB a\n\x00\x00"),
            Err(FrameError::Truncated {
                expected: 10,
                got: 8
            })
        );
        assert_eq!(
            check_eof(b"PUB a\n\x00\x00\x00\x05{}"),
            Err(FrameError::Truncated {
                expected: 15,
                got: 12
            })
        );
        assert_eq!(
            check_eof(b"NOPE\n"),
            Err(FrameError::UnknownVerb("NOPE".into()))
        );
    }

    fn verb() -> impl Strategy<Value = Verb> {
        prop::sample::select(Verb::ALL.to_vec())
    }

    fn body() -> impl Strategy<Value = String> {
        prop::option::of(prop::collection::btree_map(
            "[a-z]{1,8}",
            prop_oneof![
                any::<i64>().prop_map(serde_json::Value::from),
                ".{0,20}".prop_map(serde_json::Value::from),
                any::<bool>().prop_map(serde_json::Value::from),
            ],
            0..6,
        ))
        .prop_map(|m| match m {
            None => String::new(),
            Some(m) => serde_json::to_string(&m).unwrap(),
        })
    }

    proptest! {
        #[test]
        fn roundtrip_and_concatenation(
            frames in prop::collection::vec((verb(), "[ -~]{0,40}", body()), 1..5)
        ) {
            let mut buf = Vec::new();
            for (v, a, b) in &frames {
                encode(*v, a, b.as_bytes(), &mut buf).unwrap();
            }
            let mut at = 0;
            for (v, a, b) in &frames {
                let (f, used) = match decode(&buf[at..]).unwrap() {
                    Decoded::Frame { frame, consumed } => (frame, consumed),
                    other => panic!("{other:?}"),
                };
                prop_assert_eq!(f.verb, *v);
                prop_assert_eq!(f.args, a.trim());
                prop_assert_eq!(f.body, b.as_bytes());
                at += used;
            }
            prop_assert_eq!(at, buf.len());
            prop_assert_eq!(check_eof(&buf[at..]), Ok(()));
        }

        #[test]
        fn decode_is_total_and_consistent(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            match decode(&bytes) {
                Ok(Decoded::Frame { frame, consumed }) => {
                    prop_assert!(consumed <= bytes.len());
                    prop_assert!(frame.body.len() <= MAX_BODY_LEN);
                    // Re-encoding a decoded frame gives a frame that decodes the same.
                    let mut again = Vec::new();
                    encode(frame.verb, frame.args, frame.body, &mut again).unwrap();
                    match decode(&again).unwrap() {
                        Decoded::Frame { frame: f2, consumed: c2 } => {
                            prop_assert_eq!(f2, frame);
                            prop_assert_eq!(c2, again.len());
                        }
                        other => prop_assert!(false, "{:?}", other),
                    }
                }
                Ok(Decoded::NeedMore { min_len }) => prop_assert!(min_len > bytes.len()),
                Err(_) => {}
            }
            let _ = check_eof(&bytes);
        }

        #[test]
        fn encoder_args_are_trimmed_like_str_trim(
            args in "[ a.\u{a0}\u{3000}\u{85}\t\u{b}\u{c}é]{0,12}",
        ) {
            prop_assert_eq!(trim_args(&args), args.trim());
        }

        #[test]
        fn header_args_are_trimmed_of_unicode_whitespace(
            args in "[ a.\u{a0}\u{3000}\u{2028}\u{85}é]{0,12}",
        ) {
            let line = format!("PUB {args}");
            let (verb, got) = parse_header(line.as_bytes()).unwrap();
            prop_assert_eq!(verb, Verb::Pub);
            prop_assert_eq!(got, args.trim());
        }

        #[test]
        fn garbage_after_a_valid_prefix_never_panics(
            prefix_cut in 0usize..40,
            tail in prop::collection::vec(any::<u8>(), 0..64)
        ) {
            let mut buf = frame(Verb::Pub, "a.b", r#"{"payload":{"k":"v"}}"#);
            let cut = prefix_cut.min(buf.len());
            buf.truncate(cut);
            buf.extend_from_slice(&tail);
            if let Ok(Decoded::NeedMore { min_len }) = decode(&buf) {
                prop_assert!(min_len > buf.len());
            }
        }
    }
}
