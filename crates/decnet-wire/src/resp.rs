//! RESP2, the Redis serialization protocol: the request decoder (multibulk arrays of bulk
//! strings and inline commands), the reply encoders, and Redis' glob matcher.
//!
//! A request is either a multibulk array
//!
//! ```text
//! *2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n
//! ```
//!
//! or an inline line (`ECHO hi\r\n`, split like Redis' `sdssplitargs`, with `"…"` and
//! `'…'` quoting). [`decode`] is incremental and total: any byte string yields one command
//! (with the bytes it used), an empty request to skip (a blank line, `*0`, `*-1`), "need
//! more input" (with the least total length worth waiting for), or a [`RespError`] whose
//! [`RespError::reply`] is the exact error text Redis 7 answers before closing.
//!
//! Limits are enforced while decoding, before anything is buffered beyond them: at most
//! [`MAX_ARGS`] arguments of at most [`MAX_BULK_LEN`] bytes, [`MAX_COMMAND_LEN`] bytes per
//! multibulk command, [`MAX_INLINE_LEN`] bytes per inline line and per header line.

use std::borrow::Cow;

use thiserror::Error;

/// Most arguments in one command (Redis allows far more; no client we emulate for sends
/// more than a few dozen).
pub const MAX_ARGS: usize = 4096;
/// Longest single argument.
pub const MAX_BULK_LEN: usize = 64 * 1024;
/// Longest multibulk command, headers and payloads included.
pub const MAX_COMMAND_LEN: usize = 256 * 1024;
/// Longest inline request line or multibulk header line (Redis' `PROTO_INLINE_MAX_SIZE`).
pub const MAX_INLINE_LEN: usize = 64 * 1024;
/// Longest glob pattern [`glob_match`] accepts (longer patterns match nothing).
pub const MAX_PATTERN_LEN: usize = 1024;

/// A protocol violation; the server answers [`RespError::reply`] and closes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RespError {
    /// An inline line longer than [`MAX_INLINE_LEN`].
    #[error("too big inline request")]
    TooBigInline,
    /// Unterminated or misplaced quotes in an inline line.
    #[error("unbalanced quotes in request")]
    UnbalancedQuotes,
    /// A `*` header line longer than [`MAX_INLINE_LEN`].
    #[error("too big mbulk count string")]
    TooBigMultibulkCount,
    /// A `*` count that is not a number or above [`MAX_ARGS`].
    #[error("invalid multibulk length")]
    InvalidMultibulkLength,
    /// A `$` header line longer than [`MAX_INLINE_LEN`].
    #[error("too big bulk count string")]
    TooBigBulkCount,
    /// A multibulk element that does not start with `$`.
    #[error("expected '$', got '{}'", char::from(*.0))]
    ExpectedDollar(u8),
    /// A `$` length that is not a number, negative, above [`MAX_BULK_LEN`], or that would
    /// take the command past [`MAX_COMMAND_LEN`].
    #[error("invalid bulk length")]
    InvalidBulkLength,
}

impl RespError {
    /// The error line Redis 7 sends for this violation (without `-` and CRLF).
    pub fn reply(&self) -> String {
        sanitize(&format!("ERR Protocol error: {self}"))
    }
}

/// One decoding step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A command: its arguments (the name first) and the bytes it used.
    Command {
        /// Arguments, borrowed from the buffer unless inline escapes rewrote them.
        args: Vec<Cow<'a, [u8]>>,
        /// Bytes of the buffer the command used.
        consumed: usize,
    },
    /// A request with no arguments (blank line, `*0`, `*-1`): skip it, answer nothing.
    Empty {
        /// Bytes to skip.
        consumed: usize,
    },
    /// The buffer holds a prefix of a request; call again once it holds at least
    /// `min_len` bytes.
    NeedMore {
        /// Least total buffer length that can make progress (always > the buffer length).
        min_len: usize,
    },
}

/// Decodes the request at the start of `buf`.
///
/// # Errors
/// A [`RespError`]; the connection must be closed after answering [`RespError::reply`].
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, RespError> {
    match buf.first() {
        None => Ok(Decoded::NeedMore { min_len: 1 }),
        Some(b'*') => decode_multibulk(buf),
        Some(_) => decode_inline(buf),
    }
}

/// Finds the `\r` that ends a header line (Redis looks for CR, then skips CR LF). Redis
/// searches with `strchr`, which stops at a NUL byte: a NUL before the CR hides it.
fn header_line(buf: &[u8], from: usize) -> Option<usize> {
    find_before_nul(buf.get(from..)?, b'\r').map(|p| from + p)
}

/// `strchr`: the first `needle` before any NUL byte.
fn find_before_nul(buf: &[u8], needle: u8) -> Option<usize> {
    buf.iter()
        .position(|&b| b == needle || b == 0)
        .filter(|&p| buf[p] == needle)
}

/// Redis' `string2ll`: an optional `-`, decimal digits, no leading zeros (except "0"),
/// no spaces, within i64.
fn parse_int(digits: &[u8]) -> Option<i64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    let (neg, body) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if body.is_empty() || (body[0] == b'0' && (body.len() > 1 || neg)) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in body {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?;
        v = if neg {
            v.checked_sub(i64::from(d - b'0'))?
        } else {
            v.checked_add(i64::from(d - b'0'))?
        };
    }
    Some(v)
}

fn decode_multibulk(buf: &[u8]) -> Result<Decoded<'_>, RespError> {
    let Some(cr) = header_line(buf, 1) else {
        if buf.len() > MAX_INLINE_LEN {
            return Err(RespError::TooBigMultibulkCount);
        }
        return Ok(Decoded::NeedMore {
            min_len: buf.len() + 1,
        });
    };
    if cr > MAX_INLINE_LEN {
        return Err(RespError::TooBigMultibulkCount);
    }
    if cr + 2 > buf.len() {
        return Ok(Decoded::NeedMore { min_len: cr + 2 });
    }
    let count = parse_int(&buf[1..cr]).ok_or(RespError::InvalidMultibulkLength)?;
    let mut at = cr + 2;
    if count <= 0 {
        return Ok(Decoded::Empty { consumed: at });
    }
    let count = usize::try_from(count).map_err(|_| RespError::InvalidMultibulkLength)?;
    if count > MAX_ARGS {
        return Err(RespError::InvalidMultibulkLength);
    }
    let mut args = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        let Some(&first) = buf.get(at) else {
            return Ok(Decoded::NeedMore { min_len: at + 1 });
        };
        let Some(cr) = header_line(buf, at) else {
            if buf.len() - at > MAX_INLINE_LEN {
                return Err(RespError::TooBigBulkCount);
            }
            return Ok(Decoded::NeedMore {
                min_len: buf.len() + 1,
            });
        };
        if cr - at > MAX_INLINE_LEN {
            return Err(RespError::TooBigBulkCount);
        }
        if first != b'$' {
            return Err(RespError::ExpectedDollar(first));
        }
        if cr + 2 > buf.len() {
            return Ok(Decoded::NeedMore { min_len: cr + 2 });
        }
        let len = parse_int(&buf[at + 1..cr])
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= MAX_BULK_LEN)
            .ok_or(RespError::InvalidBulkLength)?;
        let start = cr + 2;
        // Redis skips the two bytes after the payload without checking them.
        let end = start + len + 2;
        if end > MAX_COMMAND_LEN {
            return Err(RespError::InvalidBulkLength);
        }
        if end > buf.len() {
            return Ok(Decoded::NeedMore { min_len: end });
        }
        args.push(Cow::Borrowed(&buf[start..start + len]));
        at = end;
    }
    Ok(Decoded::Command { args, consumed: at })
}

fn decode_inline(buf: &[u8]) -> Result<Decoded<'_>, RespError> {
    // As for headers, Redis' `strchr` does not see a newline after a NUL byte: such a
    // request waits for more input until it is too big.
    let Some(nl) = find_before_nul(buf, b'\n') else {
        if buf.len() > MAX_INLINE_LEN {
            return Err(RespError::TooBigInline);
        }
        return Ok(Decoded::NeedMore {
            min_len: buf.len() + 1,
        });
    };
    if nl > MAX_INLINE_LEN {
        return Err(RespError::TooBigInline);
    }
    let mut line = &buf[..nl];
    if let Some((b'\r', rest)) = line.split_last() {
        line = rest;
    }
    let args = split_args(line)?;
    if args.is_empty() {
        return Ok(Decoded::Empty { consumed: nl + 1 });
    }
    Ok(Decoded::Command {
        args,
        consumed: nl + 1,
    })
}

/// C's `isspace` in the "C" locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline line like Redis' `sdssplitargs`: a NUL byte ends the line, a quote
/// anywhere in a word opens a quoted part, and a closing quote must be followed by a space
/// or the end of the line.
fn split_args(line: &[u8]) -> Result<Vec<Cow<'_, [u8]>>, RespError> {
    let line = match line.iter().position(|&b| b == 0) {
        Some(nul) => &line[..nul],
        None => line,
    };
    let mut args: Vec<Cow<'_, [u8]>> = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && is_space(line[i]) {
            i += 1;
        }
        if i >= line.len() {
            return Ok(args);
        }
        if args.len() >= MAX_ARGS {
            // Counted like a multibulk count that is too large.
            return Err(RespError::InvalidMultibulkLength);
        }
        let start = i;
        let mut owned: Option<Vec<u8>> = None;
        // Bare bytes before any quote stay borrowed; the first quote switches to an owned
        // buffer because escapes and the quotes themselves are not copied.
        while let Some(&c) = line.get(i) {
            match c {
                b' ' | b'\n' | b'\r' | b'\t' => break,
                b'"' | b'\'' => {
                    let buf = owned.get_or_insert_with(|| line[start..i].to_vec());
                    i = quoted(line, i, buf)?;
                    break;
                }
                _ => {
                    if let Some(buf) = owned.as_mut() {
                        buf.push(c);
                    }
                    i += 1;
                }
            }
        }
        args.push(match owned {
            Some(buf) => Cow::Owned(buf),
            None => Cow::Borrowed(&line[start..i]),
        });
    }
}

/// Reads the quoted part opening at `line[at]` into `out`; returns the index after the
/// closing quote.
fn quoted(line: &[u8], at: usize, out: &mut Vec<u8>) -> Result<usize, RespError> {
    let double = line[at] == b'"';
    let mut i = at + 1;
    loop {
        let Some(&c) = line.get(i) else {
            return Err(RespError::UnbalancedQuotes);
        };
        if double && c == b'\\' {
            if line.get(i + 1) == Some(&b'x')
                && let (Some(h), Some(l)) = (
                    line.get(i + 2).copied().and_then(hex_val),
                    line.get(i + 3).copied().and_then(hex_val),
                )
            {
                out.push(h * 16 + l);
                i += 4;
                continue;
            }
            if let Some(&e) = line.get(i + 1) {
                out.push(match e {
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'b' => 0x08,
                    b'a' => 0x07,
                    other => other,
                });
                i += 2;
                continue;
            }
        }
        if !double && c == b'\\' && line.get(i + 1) == Some(&b'\'') {
            out.push(b'\'');
            i += 2;
            continue;
        }
        if c == line[at] {
            if line.get(i + 1).is_some_and(|&n| !is_space(n)) {
                return Err(RespError::UnbalancedQuotes);
            }
            return Ok(i + 1);
        }
        out.push(c);
        i += 1;
    }
}

/// Replaces CR and LF with spaces, as Redis does in error and status replies (they would
/// break the framing).
pub fn sanitize(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// Appends `+text\r\n` (CR and LF in `text` become spaces).
pub fn simple(out: &mut Vec<u8>, text: &str) {
    out.push(b'+');
    push_clean(out, text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `-text\r\n` (CR and LF in `text` become spaces).
pub fn error(out: &mut Vec<u8>, text: &str) {
    out.push(b'-');
    push_clean(out, text.as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends an error line built from raw bytes (command names and arguments echoed back).
pub fn error_bytes(out: &mut Vec<u8>, text: &[u8]) {
    out.push(b'-');
    push_clean(out, text);
    out.extend_from_slice(b"\r\n");
}

fn push_clean(out: &mut Vec<u8>, text: &[u8]) {
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

/// Appends `:n\r\n`.
pub fn integer(out: &mut Vec<u8>, n: i64) {
    out.push(b':');
    push_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// Appends `$len\r\nbytes\r\n`.
pub fn bulk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'$');
    push_decimal(out, i64::try_from(bytes.len()).unwrap_or(i64::MAX));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

/// Appends the null bulk string `$-1\r\n`.
pub fn null_bulk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"$-1\r\n");
}

/// Appends an array header `*n\r\n`.
pub fn array(out: &mut Vec<u8>, n: usize) {
    out.push(b'*');
    push_decimal(out, i64::try_from(n).unwrap_or(i64::MAX));
    out.extend_from_slice(b"\r\n");
}

/// Appends a decimal integer without allocating.
pub fn push_decimal(out: &mut Vec<u8>, n: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut v = n.unsigned_abs();
    loop {
        at -= 1;
        // `v % 10` is below 10, so the cast cannot truncate.
        digits[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
}

/// Encodes a command as a multibulk array (what clients send).
pub fn encode_command<A: AsRef<[u8]>>(args: &[A], out: &mut Vec<u8>) {
    array(out, args.len());
    for a in args {
        bulk(out, a.as_ref());
    }
}

/// Redis' glob matcher (`stringmatchlen`): `*`, `?`, `[abc]`, `[^a-z]`, `\x` escapes.
///
/// Unlike Redis' recursive matcher it backtracks only to the last `*`, so it runs in
/// O(pattern × text) however many stars the pattern has. Patterns longer than
/// [`MAX_PATTERN_LEN`] match nothing.
pub fn glob_match(pattern: &[u8], text: &[u8], nocase: bool) -> bool {
    if pattern.len() > MAX_PATTERN_LEN {
        return false;
    }
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let step = match pattern.get(p) {
            Some(b'*') => {
                while pattern.get(p) == Some(&b'*') {
                    p += 1;
                }
                if p == pattern.len() {
                    return true;
                }
                star = Some((p, t));
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => match_class(pattern, p, text[t], &eq),
            Some(b'\\') if p + 1 < pattern.len() => eq(pattern[p + 1], text[t]).then_some(p + 2),
            Some(&c) => eq(c, text[t]).then_some(p + 1),
            None => None,
        };
        match step {
            Some(next) => {
                p = next;
                t += 1;
            }
            None => match star {
                Some((sp, st)) => {
                    p = sp;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    while pattern.get(p) == Some(&b'*') {
        p += 1;
    }
    p == pattern.len()
}

/// Matches `c` against the class starting at `pattern[at] == b'['`; returns the index
/// after the class on a match.
fn match_class(pattern: &[u8], at: usize, c: u8, eq: &impl Fn(u8, u8) -> bool) -> Option<usize> {
    let mut p = at + 1;
    let negate = pattern.get(p) == Some(&b'^');
    if negate {
        p += 1;
    }
    let mut matched = false;
    loop {
        match pattern.get(p) {
            // An unterminated class ends at the end of the pattern, as in Redis.
            None => break,
            Some(b']') => {
                p += 1;
                break;
            }
            Some(b'\\') if p + 1 < pattern.len() => {
                if eq(pattern[p + 1], c) {
                    matched = true;
                }
                p += 2;
            }
            Some(&lo) if pattern.get(p + 1) == Some(&b'-') && p + 2 < pattern.len() => {
                let hi = pattern[p + 2];
                let (lo, hi) = if lo > hi { (hi, lo) } else { (lo, hi) };
                let lc = c.to_ascii_lowercase();
                let in_range = |x: u8| x >= lo && x <= hi;
                if in_range(c) || (eq(c, lc) && (in_range(lc) || in_range(c.to_ascii_uppercase())))
                {
                    matched = true;
                }
                p += 3;
            }
            Some(&x) => {
                if eq(x, c) {
                    matched = true;
                }
                p += 1;
            }
        }
    }
    (matched != negate).then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn command(buf: &[u8]) -> (Vec<Vec<u8>>, usize) {
        match decode(buf).unwrap() {
            Decoded::Command { args, consumed } => {
                (args.into_iter().map(Cow::into_owned).collect(), consumed)
            }
            other => panic!("expected a command, got {other:?}"),
        }
    }

    fn strs(args: &[Vec<u8>]) -> Vec<&str> {
        args.iter()
            .map(|a| std::str::from_utf8(a).unwrap())
            .collect()
    }

    #[test]
    fn multibulk_and_pipelining() {
        let buf = b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r\n$4\r\nPING\r\n";
        let (args, used) = command(buf);
        assert_eq!(strs(&args), ["ECHO", "hi"]);
        let (args, used2) = command(&buf[used..]);
        assert_eq!(strs(&args), ["PING"]);
        assert_eq!(used + used2, buf.len());
    }

    #[test]
    fn inline_splitting_follows_sdssplitargs() {
        let (args, used) = command(b"set  k \"a\\x41\\n\\\"b\" 'it\\'s' x\"y z\"\r\nrest");
        assert_eq!(
            args,
            [&b"set"[..], b"k", b"aA\n\"b", b"it's", b"xy z"].map(<[u8]>::to_vec)
        );
        assert_eq!(used, 36);
        // Redis' strchr never finds a newline after a NUL byte: the request waits.
        assert_eq!(
            decode(b"GET a\0b c\n"),
            Ok(Decoded::NeedMore { min_len: 11 })
        );
        assert_eq!(decode(b"*1\0\r\n"), Ok(Decoded::NeedMore { min_len: 6 }));
        assert_eq!(command(b"PING\n").0, [b"PING".to_vec()]);
        assert_eq!(decode(b"\r\n"), Ok(Decoded::Empty { consumed: 2 }));
        assert_eq!(decode(b"   \n"), Ok(Decoded::Empty { consumed: 4 }));
    }

    #[test]
    fn errors_have_the_redis_text() {
        let reply = |b: &[u8]| decode(b).unwrap_err().reply();
        assert_eq!(
            reply(b"foo 'a\r\n"),
            "ERR Protocol error: unbalanced quotes in request"
        );
        assert_eq!(
            reply(b"\"a\"b\r\n"),
            "ERR Protocol error: unbalanced quotes in request"
        );
        assert_eq!(
            reply(b"*x\r\n"),
            "ERR Protocol error: invalid multibulk length"
        );
        assert_eq!(
            reply(b"*1\r\n$x\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            reply(b"*1\r\n$-2\r\n"),
            "ERR Protocol error: invalid bulk length"
        );
        assert_eq!(
            reply(b"*1\r\nfoo\r\n"),
            "ERR Protocol error: expected '$', got 'f'"
        );
        assert_eq!(
            reply(&vec![b'a'; MAX_INLINE_LEN + 1]),
            "ERR Protocol error: too big inline request"
        );
    }

    #[test]
    fn empty_and_negative_counts_are_skipped() {
        assert_eq!(decode(b"*0\r\nPING"), Ok(Decoded::Empty { consumed: 4 }));
        assert_eq!(decode(b"*-1\r\n"), Ok(Decoded::Empty { consumed: 5 }));
    }

    #[test]
    fn limits_are_enforced_before_buffering() {
        // A count above MAX_ARGS fails on the header alone.
        let header = format!("*{}\r\n", MAX_ARGS + 1);
        assert_eq!(
            decode(header.as_bytes()),
            Err(RespError::InvalidMultibulkLength)
        );
        // A bulk above MAX_BULK_LEN fails on its header alone.
        let header = format!("*1\r\n${}\r\n", MAX_BULK_LEN + 1);
        assert_eq!(decode(header.as_bytes()), Err(RespError::InvalidBulkLength));
        // Many bulks that together pass MAX_COMMAND_LEN fail at the first one that does.
        let mut buf = format!("*{}\r\n", MAX_ARGS).into_bytes();
        let chunk = vec![b'x'; MAX_BULK_LEN];
        while buf.len() < MAX_COMMAND_LEN {
            bulk(&mut buf, &chunk);
        }
        assert_eq!(decode(&buf), Err(RespError::InvalidBulkLength));
    }

    #[test]
    fn need_more_reports_a_useful_length() {
        let full = b"*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
        assert_eq!(decode(&full[..15]), Ok(Decoded::NeedMore { min_len: 16 }));
        assert_eq!(
            decode(&full[..20]),
            Ok(Decoded::NeedMore {
                min_len: full.len()
            })
        );
        assert_eq!(decode(b"PIN"), Ok(Decoded::NeedMore { min_len: 4 }));
    }

    #[test]
    fn reply_encoders() {
        let mut out = Vec::new();
        simple(&mut out, "OK");
        error(&mut out, "ERR a\r\nb");
        integer(&mut out, -42);
        integer(&mut out, i64::MIN);
        bulk(&mut out, b"hi");
        null_bulk(&mut out);
        array(&mut out, 3);
        assert_eq!(
            out,
            b"+OK\r\n-ERR a  b\r\n:-42\r\n:-9223372036854775808\r\n$2\r\nhi\r\n$-1\r\n*3\r\n"
        );
    }

    #[test]
    fn glob_matches_like_redis() {
        let m = |p: &str, t: &str| glob_match(p.as_bytes(), t.as_bytes(), false);
        assert!(m("*", ""));
        assert!(m("session:*", "session:abc"));
        assert!(!m("session:*", "user:1"));
        assert!(m("h?llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!m("*a*b*c*d", "xxaxxbxxcxx"));
        assert!(glob_match(b"USER:*", b"user:1", true));
        // A pathological pattern finishes quickly.
        let text = vec![b'a'; 5000];
        assert!(!glob_match(b"*a*a*a*a*a*a*a*a*a*a*b", &text, false));
    }

    fn arg() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..40)
    }

    proptest! {
        #[test]
        fn multibulk_roundtrip_and_prefixes(cmds in prop::collection::vec(prop::collection::vec(arg(), 1..6), 1..4)) {
            let mut buf = Vec::new();
            for c in &cmds {
                encode_command(c, &mut buf);
            }
            let mut at = 0;
            for c in &cmds {
                let (args, used) = command(&buf[at..]);
                prop_assert_eq!(&args, c);
                // Every strict prefix of this command asks for more, never decodes wrongly.
                for cut in 0..used {
                    match decode(&buf[at..at + cut]) {
                        Ok(Decoded::NeedMore { min_len }) => prop_assert!(min_len > cut && min_len <= used),
                        other => prop_assert!(false, "prefix {cut} gave {other:?}"),
                    }
                }
                at += used;
            }
            prop_assert_eq!(at, buf.len());
        }

        #[test]
        fn inline_quoting_roundtrip(args in prop::collection::vec(arg(), 1..6)) {
            // Quote every argument the way redis-cli does, then decode it inline.
            let mut line = Vec::new();
            for a in &args {
                line.push(b'"');
                for &b in a {
                    match b {
                        b'"' | b'\\' => { line.push(b'\\'); line.push(b); }
                        0x20..=0x7e => line.push(b),
                        _ => line.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                    }
                }
                line.extend_from_slice(b"\" ");
            }
            line.extend_from_slice(b"\r\n");
            let (decoded, used) = command(&line);
            prop_assert_eq!(decoded, args);
            prop_assert_eq!(used, line.len());
        }

        #[test]
        fn decode_is_total_and_bounded(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
            match decode(&bytes) {
                Ok(Decoded::Command { args, consumed }) => {
                    prop_assert!(consumed > 0 && consumed <= bytes.len());
                    prop_assert!(!args.is_empty() && args.len() <= MAX_ARGS);
                    prop_assert!(args.iter().all(|a| a.len() <= MAX_BULK_LEN));
                }
                Ok(Decoded::Empty { consumed }) => prop_assert!(consumed > 0 && consumed <= bytes.len()),
                Ok(Decoded::NeedMore { min_len }) => prop_assert!(min_len > bytes.len()),
                Err(e) => prop_assert!(e.reply().starts_with("ERR Protocol error: ")),
            }
        }

        #[test]
        fn glob_star_matches_everything_and_literals_match_themselves(text in prop::collection::vec(any::<u8>(), 0..60)) {
            prop_assert!(glob_match(b"*", &text, false));
            let literal: Vec<u8> = text.iter().flat_map(|&b| if matches!(b, b'*' | b'?' | b'[' | b'\\') { vec![b'\\', b] } else { vec![b] }).collect();
            prop_assert!(glob_match(&literal, &text, false));
        }
    }
}
