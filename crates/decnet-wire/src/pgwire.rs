//! The PostgreSQL v3 frontend/backend protocol up to authentication: the untyped startup
//! packets (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest), typed frontend
//! messages (the PasswordMessage), and the backend messages a server sends before a
//! session starts (AuthenticationMD5Password, NegotiateProtocolVersion, ErrorResponse).
//!
//! Limits follow the real server: a startup packet of more than [`MAX_STARTUP_LEN`] bytes
//! (after its length word) or fewer than 4 is refused from its length word alone, as is a
//! typed message longer than the limit the caller passes (the server uses
//! [`MAX_AUTH_MESSAGE_LEN`] for password messages). [`decode_startup`] and
//! [`decode_message`] are incremental and total.

use thiserror::Error;

/// Largest startup packet body, as `MAX_STARTUP_PACKET_LENGTH` in the server.
pub const MAX_STARTUP_LEN: usize = 10_000;
/// Largest password/authentication message body (the server's `PG_MAX_AUTH_TOKEN_LENGTH`).
pub const MAX_AUTH_MESSAGE_LEN: usize = 65_535;
/// Most startup parameters (each takes at least two bytes, so the length cap already
/// bounds them; named for the invariant).
pub const MAX_STARTUP_PARAMS: usize = MAX_STARTUP_LEN / 2;
/// Longest role or database name the server keeps (`NAMEDATALEN - 1`).
pub const MAX_NAME_LEN: usize = 63;

/// Request codes in the version field of a startup packet.
pub mod codes {
    /// `SSLRequest`.
    pub const SSL_REQUEST: u32 = 80_877_103;
    /// `GSSENCRequest`.
    pub const GSSENC_REQUEST: u32 = 80_877_104;
    /// `CancelRequest`.
    pub const CANCEL_REQUEST: u32 = 80_877_102;
    /// Protocol 3.0.
    pub const PROTOCOL_3_0: u32 = 196_608;
}

/// A startup packet the server refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PgError {
    /// The length word is below 8 or above the limit: the server closes without a word.
    #[error("invalid length of startup packet ({0})")]
    BadLength(u32),
    /// A typed message longer than allowed: the server closes without a word.
    #[error("message of {0} bytes is over the limit")]
    MessageTooLarge(usize),
}

/// Startup parameters, `(name, value)` in order.
pub type Params = Vec<(Vec<u8>, Vec<u8>)>;

/// A decoded startup packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Startup {
    /// `SSLRequest`.
    SslRequest,
    /// `GSSENCRequest`.
    GssEncRequest,
    /// `CancelRequest` (the server closes silently, whatever the key).
    Cancel {
        /// Backend process id.
        pid: u32,
        /// Secret key.
        key: u32,
    },
    /// A `StartupMessage`, or any other version number.
    Message {
        /// Requested protocol version (major << 16 | minor).
        version: u32,
        /// Parameters in order; empty when `layout_ok` is false.
        params: Params,
        /// Whether the parameter block ends with its terminator as the last byte.
        layout_ok: bool,
    },
}

/// One decoding step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    /// A value and the bytes it used.
    Done {
        /// The value.
        value: T,
        /// Bytes used.
        consumed: usize,
    },
    /// Call again with at least `min_len` bytes.
    NeedMore {
        /// Least useful buffer length (> the current one).
        min_len: usize,
    },
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes the startup packet at the start of `buf`.
///
/// # Errors
/// [`PgError::BadLength`] from the length word alone.
pub fn decode_startup(buf: &[u8]) -> Result<Decoded<Startup>, PgError> {
    let Some(head) = buf.get(..4) else {
        return Ok(Decoded::NeedMore { min_len: 4 });
    };
    let total = be32(head);
    let body_len = usize::try_from(total)
        .ok()
        .and_then(|t| t.checked_sub(4))
        .filter(|&b| (4..=MAX_STARTUP_LEN).contains(&b))
        .ok_or(PgError::BadLength(total))?;
    let end = 4 + body_len;
    if buf.len() < end {
        return Ok(Decoded::NeedMore { min_len: end });
    }
    let body = &buf[4..end];
    let version = be32(body);
    let value = match version {
        codes::SSL_REQUEST => Startup::SslRequest,
        codes::GSSENC_REQUEST => Startup::GssEncRequest,
        codes::CANCEL_REQUEST => {
            if body.len() != 12 {
                return Err(PgError::BadLength(total));
            }
            Startup::Cancel {
                pid: be32(&body[4..]),
                key: be32(&body[8..]),
            }
        }
        _ => {
            let (params, layout_ok) = parse_params(&body[4..]);
            Startup::Message {
                version,
                params,
                layout_ok,
            }
        }
    };
    Ok(Decoded::Done {
        value,
        consumed: end,
    })
}

/// Parses `name\0value\0…\0` the way the server does: stop at an empty name or when a
/// name has no value; the layout is valid only if that stop is at the last byte.
fn parse_params(block: &[u8]) -> (Params, bool) {
    let mut params = Vec::new();
    let mut at = 0;
    let cstr = |from: usize| -> &[u8] {
        let rest = &block[from..];
        let n = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        &rest[..n]
    };
    while at < block.len() {
        let name = cstr(at);
        if name.is_empty() {
            break;
        }
        let value_at = at + name.len() + 1;
        if value_at >= block.len() {
            break;
        }
        let value = cstr(value_at);
        if params.len() < MAX_STARTUP_PARAMS {
            params.push((name.to_vec(), value.to_vec()));
        }
        at = value_at + value.len() + 1;
    }
    let layout_ok = block.len().checked_sub(1) == Some(at);
    if layout_ok {
        (params, true)
    } else {
        (Vec::new(), false)
    }
}

/// A typed frontend message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// Type byte (`p` for a password message).
    pub tag: u8,
    /// Body, after the length word.
    pub body: &'a [u8],
}

/// Decodes the typed message at the start of `buf`; bodies longer than `max_body` are
/// refused from the length word alone.
///
/// # Errors
/// [`PgError::MessageTooLarge`] for an oversized or impossible (below 4) length.
pub fn decode_message(buf: &[u8], max_body: usize) -> Result<Decoded<Message<'_>>, PgError> {
    let Some(head) = buf.get(..5) else {
        return Ok(Decoded::NeedMore { min_len: 5 });
    };
    let len = usize::try_from(be32(&head[1..])).unwrap_or(usize::MAX);
    let body_len = len
        .checked_sub(4)
        .filter(|&b| b <= max_body)
        .ok_or(PgError::MessageTooLarge(len))?;
    let end = 5 + body_len;
    if buf.len() < end {
        return Ok(Decoded::NeedMore { min_len: end });
    }
    Ok(Decoded::Done {
        value: Message {
            tag: head[0],
            body: &buf[5..end],
        },
        consumed: end,
    })
}

/// What a password message holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password<'a> {
    /// A NUL-terminated password (or `md5…` hash) with nothing after the NUL.
    Text(&'a [u8]),
    /// An empty password.
    Empty,
    /// The body is not exactly one NUL-terminated string.
    BadSize,
}

/// Reads a password message body as the server does.
pub fn password(body: &[u8]) -> Password<'_> {
    match body.iter().position(|&b| b == 0) {
        Some(n) if n + 1 == body.len() => {
            if n == 0 {
                Password::Empty
            } else {
                Password::Text(&body[..n])
            }
        }
        _ => Password::BadSize,
    }
}

/// Appends `AuthenticationMD5Password` with `salt`.
pub fn encode_auth_md5(salt: [u8; 4], out: &mut Vec<u8>) {
    out.push(b'R');
    out.extend_from_slice(&12u32.to_be_bytes());
    out.extend_from_slice(&5u32.to_be_bytes());
    out.extend_from_slice(&salt);
}

/// Appends `NegotiateProtocolVersion`: the newest minor version supported and the
/// protocol options (`_pq_.*`) not recognised.
pub fn encode_negotiate_version(newest_minor: u32, unrecognised: &[&[u8]], out: &mut Vec<u8>) {
    let mut body = Vec::new();
    body.extend_from_slice(&newest_minor.to_be_bytes());
    body.extend_from_slice(&u32::try_from(unrecognised.len()).unwrap_or(0).to_be_bytes());
    for o in unrecognised {
        body.extend_from_slice(o);
        body.push(0);
    }
    out.push(b'v');
    out.extend_from_slice(
        &u32::try_from(body.len() + 4)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&body);
}

/// Appends an `ErrorResponse` with its fields in order (`S`, `V`, `C`, `M`, `F`, `L`, `R`
/// in the real server's order). NUL bytes inside values are dropped.
pub fn encode_error(fields: &[(u8, &[u8])], out: &mut Vec<u8>) {
    let mut body = Vec::new();
    for (code, value) in fields {
        body.push(*code);
        body.extend(value.iter().copied().filter(|&b| b != 0));
        body.push(0);
    }
    body.push(0);
    out.push(b'E');
    out.extend_from_slice(
        &u32::try_from(body.len() + 4)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&body);
}

/// Appends a protocol-2 error (`E`, text, NUL): what the server sends a client that asked
/// for a protocol major version below 3.
pub fn encode_v2_error(message: &str, out: &mut Vec<u8>) {
    out.push(b'E');
    out.extend(message.bytes().filter(|&b| b != 0));
    out.push(0);
}

/// Appends a `StartupMessage` (what clients send; used by tests and fuzzing).
pub fn encode_startup(version: u32, params: &[(&[u8], &[u8])], out: &mut Vec<u8>) {
    let mut body = version.to_be_bytes().to_vec();
    for (k, v) in params {
        body.extend_from_slice(k);
        body.push(0);
        body.extend_from_slice(v);
        body.push(0);
    }
    body.push(0);
    out.extend_from_slice(
        &u32::try_from(body.len() + 4)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(&body);
}

/// Cuts a role or database name to [`MAX_NAME_LEN`] bytes on a UTF-8 character boundary
/// when the name is valid UTF-8 (the server's `pg_mbcliplen`), else at the byte limit.
pub fn clip_name(name: &[u8]) -> &[u8] {
    if name.len() <= MAX_NAME_LEN {
        return name;
    }
    match std::str::from_utf8(name) {
        Ok(text) => {
            let mut cut = MAX_NAME_LEN;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            &name[..cut]
        }
        Err(_) => &name[..MAX_NAME_LEN],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn startup_requests() {
        assert_eq!(
            decode_startup(&[0, 0, 0, 8, 4, 210, 22, 47]),
            Ok(Decoded::Done {
                value: Startup::SslRequest,
                consumed: 8
            })
        );
        let mut buf = Vec::new();
        encode_startup(
            codes::PROTOCOL_3_0,
            &[(b"user", b"bob"), (b"database", b"shop")],
            &mut buf,
        );
        let Ok(Decoded::Done { value, consumed }) = decode_startup(&buf) else {
            panic!()
        };
        assert_eq!(consumed, buf.len());
        assert_eq!(
            value,
            Startup::Message {
                version: codes::PROTOCOL_3_0,
                params: vec![
                    (b"user".to_vec(), b"bob".to_vec()),
                    (b"database".to_vec(), b"shop".to_vec())
                ],
                layout_ok: true
            }
        );
        let mut cancel = 16u32.to_be_bytes().to_vec();
        cancel.extend_from_slice(&codes::CANCEL_REQUEST.to_be_bytes());
        cancel.extend_from_slice(&[0, 0, 4, 210, 0, 0, 22, 46]);
        assert!(matches!(
            decode_startup(&cancel),
            Ok(Decoded::Done {
                value: Startup::Cancel {
                    pid: 1234,
                    key: 5678
                },
                ..
            })
        ));
    }

    #[test]
    fn lengths_like_the_server() {
        // Observed on PostgreSQL 15: a body of 10 000 bytes is parsed, 19 996 is refused.
        assert!(matches!(
            decode_startup(&[0, 0, 0x27, 0x14]),
            Ok(Decoded::NeedMore { min_len: 10_004 })
        ));
        assert_eq!(
            decode_startup(&[0, 0, 0x4e, 0x20]),
            Err(PgError::BadLength(20_000))
        );
        assert_eq!(decode_startup(&[0, 0, 0, 4]), Err(PgError::BadLength(4)));
        assert_eq!(
            decode_startup(b"GET / HTTP/1.0"),
            Err(PgError::BadLength(0x4745_5420))
        );
    }

    #[test]
    fn layout_errors_like_the_server() {
        // `user\0bob\0` without the final terminator, and a name with no value.
        for block in [&b"user\0bob\0"[..], b"user\0bob\0database\0\0"] {
            let mut buf = u32::try_from(block.len() + 8)
                .unwrap()
                .to_be_bytes()
                .to_vec();
            buf.extend_from_slice(&codes::PROTOCOL_3_0.to_be_bytes());
            buf.extend_from_slice(block);
            assert!(matches!(
                decode_startup(&buf),
                Ok(Decoded::Done {
                    value: Startup::Message {
                        layout_ok: false,
                        ..
                    },
                    ..
                })
            ));
        }
    }

    #[test]
    fn backend_messages_match_a_real_server() {
        // Bytes captured from PostgreSQL 15.20.
        let mut out = Vec::new();
        encode_error(
            &[
                (b'S', b"FATAL"),
                (b'V', b"FATAL"),
                (b'C', b"28P01"),
                (b'M', b"password authentication failed for user \"bob\""),
                (b'F', b"auth.c"),
                (b'L', b"334"),
                (b'R', b"auth_failed"),
            ],
            &mut out,
        );
        assert_eq!(out, &b"E\x00\x00\x00cSFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed for user \"bob\"\x00Fauth.c\x00L334\x00Rauth_failed\x00\x00"[..]);
        let mut out = Vec::new();
        encode_negotiate_version(0, &[b"_pq_.foo"], &mut out);
        assert_eq!(
            out,
            b"v\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x01_pq_.foo\x00"
        );
        let mut out = Vec::new();
        encode_v2_error(
            "FATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n",
            &mut out,
        );
        assert_eq!(
            out,
            b"EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n\x00"
        );
        let mut out = Vec::new();
        encode_auth_md5([1, 2, 3, 4], &mut out);
        assert_eq!(out, b"R\x00\x00\x00\x0c\x00\x00\x00\x05\x01\x02\x03\x04");
    }

    #[test]
    fn password_messages() {
        let msg = b"p\x00\x00\x00\x28md500000000000000000000000000000000\x00";
        let Ok(Decoded::Done { value, consumed }) = decode_message(msg, MAX_AUTH_MESSAGE_LEN)
        else {
            panic!()
        };
        assert_eq!((value.tag, consumed), (b'p', msg.len()));
        assert!(matches!(password(value.body), Password::Text(t) if t.starts_with(b"md5")));
        assert_eq!(password(b"\0"), Password::Empty);
        assert_eq!(password(b""), Password::BadSize);
        assert_eq!(password(b"a\0b\0"), Password::BadSize);
        assert_eq!(
            decode_message(b"p\x00\x01\x86\xa4", MAX_AUTH_MESSAGE_LEN),
            Err(PgError::MessageTooLarge(100_004))
        );
        assert_eq!(clip_name("é".repeat(40).as_bytes()).len(), 62);
    }

    proptest! {
        #[test]
        fn startup_roundtrip(params in prop::collection::vec((prop::collection::vec(1u8..=255, 1..20), prop::collection::vec(1u8..=255, 0..20)), 0..8)) {
            let refs: Vec<(&[u8], &[u8])> = params.iter().map(|(k, v)| (k.as_slice(), v.as_slice())).collect();
            let mut buf = Vec::new();
            encode_startup(codes::PROTOCOL_3_0, &refs, &mut buf);
            for cut in 0..buf.len() {
                let more = matches!(decode_startup(&buf[..cut]), Ok(Decoded::NeedMore { min_len }) if min_len > cut);
                prop_assert!(more);
            }
            prop_assert_eq!(
                decode_startup(&buf),
                Ok(Decoded::Done { value: Startup::Message { version: codes::PROTOCOL_3_0, params, layout_ok: true }, consumed: buf.len() })
            );
        }

        #[test]
        fn decoders_are_total(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            match decode_startup(&bytes) {
                Ok(Decoded::Done { consumed, value }) => {
                    prop_assert!(consumed <= bytes.len() && consumed <= MAX_STARTUP_LEN + 4);
                    if let Startup::Message { params, .. } = value {
                        prop_assert!(params.len() <= MAX_STARTUP_PARAMS);
                    }
                }
                Ok(Decoded::NeedMore { min_len }) => prop_assert!(min_len > bytes.len() && min_len <= MAX_STARTUP_LEN + 4),
                Err(_) => {}
            }
            match decode_message(&bytes, 100) {
                Ok(Decoded::Done { consumed, value }) => prop_assert!(consumed <= bytes.len() && value.body.len() <= 100),
                Ok(Decoded::NeedMore { min_len }) => prop_assert!(min_len > bytes.len() && min_len <= 105),
                Err(_) => {}
            }
            let _ = password(&bytes);
            prop_assert!(clip_name(&bytes).len() <= MAX_NAME_LEN);
        }
    }
}
