//! RFC 5425 octet-counted framing (`LEN SP PAYLOAD`) and the listener's cumulative `ack <n>` frames.
//!
//! One frame on the wire:
//!
//! ```text
//! 47 <134>1 2026-11-27T07:00:00Z web-01 ssh - login - hi
//! ^^ ASCII decimal payload length: 1-5 digits, no leading zero
//!   ^ one space, then exactly that many payload bytes, no trailer
//! ```
//!
//! The length is checked against [`MAX_FRAME`] digit by digit while the prefix arrives,
//! so a peer announcing a huge frame is refused before any of its payload is buffered
//! (SW-32). [`decode`] is incremental and total: any byte string yields a frame (its
//! payload range and the bytes it used), "need more input", or an error.
//!
//! The same framing carries acknowledgements from the listener back to the forwarder:
//! the payload `ack <n>`, where `n` counts the frames of the connection committed so far
//! (cumulative, never decreasing).

use std::ops::Range;

use thiserror::Error;

/// Largest payload, in bytes (64 KiB).
pub const MAX_FRAME: usize = 64 * 1024;
/// Most digits in a length prefix (`65536` has five).
pub const MAX_LEN_DIGITS: usize = 5;
/// Longest encoded frame: prefix, space and payload.
pub const MAX_ENCODED: usize = MAX_LEN_DIGITS + 1 + MAX_FRAME;
/// Longest acknowledgement payload (`ack ` and the 20 digits of a `u64`).
pub const MAX_ACK: usize = 4 + 20;

/// Why bytes are not a frame. Every error ends the connection: the stream cannot be
/// re-synchronised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FrameError {
    /// A prefix byte is neither a digit nor the space ending the prefix.
    #[error("frame length: byte {0:#04x} is not a digit")]
    NotDigit(u8),
    /// The prefix starts with `0` (RFC 5425: `NONZERO-DIGIT *DIGIT`; a zero-length frame is refused too).
    #[error("frame length: leading zero")]
    LeadingZero,
    /// The space came before any digit.
    #[error("frame length: empty")]
    EmptyLength,
    /// More than [`MAX_LEN_DIGITS`] digits.
    #[error("frame length: more than {MAX_LEN_DIGITS} digits")]
    TooManyDigits,
    /// The announced length exceeds [`MAX_FRAME`] (known from the prefix alone).
    #[error("frame of {0} or more bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLong(usize),
    /// An acknowledgement payload is not `ack <n>`.
    #[error("malformed acknowledgement")]
    BadAck,
}

/// Decodes the frame at the start of `buf`.
///
/// Returns `Ok(Some((payload, consumed)))` with the payload's byte range in `buf` and the
/// bytes the whole frame used, `Ok(None)` when `buf` holds only the beginning of a
/// frame (including an empty `buf`), or the error that condemns the stream.
///
/// # Errors
/// [`FrameError`] as soon as the bytes present prove the frame invalid.
pub fn decode(buf: &[u8]) -> Result<Option<(Range<usize>, usize)>, FrameError> {
    let mut len: usize = 0;
    for (i, &b) in buf.iter().enumerate() {
        match b {
            b' ' => {
                if i == 0 {
                    return Err(FrameError::EmptyLength);
                }
                let start = i + 1;
                let end = start + len;
                if buf.len() < end {
                    return Ok(None);
                }
                return Ok(Some((start..end, end)));
            }
            b'0'..=b'9' => {
                if i == 0 && b == b'0' {
                    return Err(FrameError::LeadingZero);
                }
                if i >= MAX_LEN_DIGITS {
                    return Err(FrameError::TooManyDigits);
                }
                len = len * 10 + usize::from(b - b'0');
                if len > MAX_FRAME {
                    return Err(FrameError::TooLong(len));
                }
            }
            other => return Err(FrameError::NotDigit(other)),
        }
    }
    Ok(None)
}

/// Appends the frame carrying `payload` to `out`.
///
/// # Errors
/// [`FrameError::TooLong`] for a payload above [`MAX_FRAME`], [`FrameError::LeadingZero`]
/// for an empty one; `out` is then unchanged.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) -> Result<(), FrameError> {
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLong(payload.len()));
    }
    if payload.is_empty() {
        return Err(FrameError::LeadingZero);
    }
    out.reserve(MAX_LEN_DIGITS + 1 + payload.len());
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    Ok(())
}

/// The payload acknowledging the first `n` frames of a connection.
pub fn ack_payload(n: u64) -> String {
    format!("ack {n}")
}

/// Appends the frame acknowledging the first `n` frames.
pub fn encode_ack(n: u64, out: &mut Vec<u8>) {
    let payload = ack_payload(n);
    // An ack payload is at most MAX_ACK bytes and never empty: encoding cannot fail.
    let _ = encode(payload.as_bytes(), out);
}

/// Reads an acknowledgement payload: `ack ` then a decimal `u64` without leading zeros.
///
/// # Errors
/// [`FrameError::BadAck`].
pub fn parse_ack(payload: &[u8]) -> Result<u64, FrameError> {
    let digits = payload.strip_prefix(b"ack ").ok_or(FrameError::BadAck)?;
    if digits.is_empty()
        || digits.len() > 20
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return Err(FrameError::BadAck);
    }
    let mut n: u64 = 0;
    for &d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(FrameError::BadAck)?;
    }
    Ok(n)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_frame_round_trips() {
        let mut out = Vec::new();
        encode(b"hello world", &mut out).unwrap();
        assert_eq!(out, b"11 hello world");
        assert_eq!(decode(&out), Ok(Some((3..14, 14))));
    }

    #[test]
    fn partial_input_needs_more() {
        for buf in [&b""[..], b"1", b"11", b"11 ", b"11 hello worl"] {
            assert_eq!(decode(buf), Ok(None), "{buf:?}");
        }
    }

    #[test]
    fn bad_prefixes_are_refused() {
        assert_eq!(decode(b"0 "), Err(FrameError::LeadingZero));
        assert_eq!(decode(b"012 abc"), Err(FrameError::LeadingZero));
        assert_eq!(decode(b" abc"), Err(FrameError::EmptyLength));
        assert_eq!(decode(b"1x2"), Err(FrameError::NotDigit(b'x')));
        assert_eq!(decode(b"-1 a"), Err(FrameError::NotDigit(b'-')));
        assert_eq!(decode(b"12345"), Ok(None));
        assert_eq!(decode(b"123456"), Err(FrameError::TooManyDigits));
        assert_eq!(decode(b"655360"), Err(FrameError::TooManyDigits));
    }

    #[test]
    fn the_limit_is_checked_from_the_prefix() {
        assert_eq!(decode(b"65536"), Ok(None));
        assert_eq!(decode(b"65537"), Err(FrameError::TooLong(65_537)));
        assert_eq!(decode(b"99999"), Err(FrameError::TooLong(99_999)));
        let mut out = Vec::new();
        assert_eq!(
            encode(&vec![b'a'; MAX_FRAME + 1], &mut out),
            Err(FrameError::TooLong(MAX_FRAME + 1))
        );
        assert!(out.is_empty());
        encode(&vec![b'a'; MAX_FRAME], &mut out).unwrap();
        assert_eq!(decode(&out), Ok(Some((6..6 + MAX_FRAME, out.len()))));
        assert_eq!(encode(b"", &mut out), Err(FrameError::LeadingZero));
    }

    #[test]
    fn acks_round_trip_and_garbage_is_refused() {
        for n in [0, 1, 8192, u64::MAX] {
            let mut out = Vec::new();
            encode_ack(n, &mut out);
            let (range, used) = decode(&out).unwrap().unwrap();
            assert_eq!(used, out.len());
            assert_eq!(parse_ack(&out[range]), Ok(n));
        }
        for bad in [
            &b"ack"[..],
            b"ack ",
            b"ack 01",
            b"ack -1",
            b"ACK 1",
            b"ack 1 ",
            b"ack 18446744073709551616",
            b"nak 1",
        ] {
            assert_eq!(parse_ack(bad), Err(FrameError::BadAck), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn decode_is_total_and_consistent(data in proptest::collection::vec(any::<u8>(), 0..80)) {
            if let Ok(Some((range, used))) = decode(&data) {
                prop_assert!(range.end == used && used <= data.len());
                prop_assert!(!range.is_empty() && range.len() <= MAX_FRAME);
                let mut again = Vec::new();
                encode(&data[range.clone()], &mut again).unwrap();
                prop_assert_eq!(&again[..], &data[..used]);
            }
        }

        #[test]
        fn encoded_frames_decode_at_every_split(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..5),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut wire = Vec::new();
            for p in &payloads {
                encode(p, &mut wire).unwrap();
            }
            let cut = cut.index(wire.len());
            // A prefix of the stream decodes to whole frames followed by "need more".
            let mut rest = &wire[..cut];
            let mut seen = 0;
            while let Some((range, used)) = decode(rest).unwrap() {
                prop_assert_eq!(&rest[range], &payloads[seen][..]);
                seen += 1;
                rest = &rest[used..];
            }
            let mut rest = &wire[..];
            for p in &payloads {
                let (range, used) = decode(rest).unwrap().unwrap();
                prop_assert_eq!(&rest[range], &p[..]);
                rest = &rest[used..];
            }
            prop_assert!(rest.is_empty());
        }
    }
}
