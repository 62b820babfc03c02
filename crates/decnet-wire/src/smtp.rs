//! SMTP codec (RFC 5321, RFC 4954): bounded command lines, command parsing, reverse and
//! forward paths, SASL PLAIN/LOGIN decoding, multi-line replies and the DATA body decoder
//! (end-of-data detection and dot-unstuffing).
//!
//! [`decode_line`] is incremental and total: any byte string yields a line (with the
//! number of bytes it used), "need more input", or [`SmtpError::LineTooLong`] as soon as
//! [`MAX_LINE_LEN`] bytes arrived without an LF. [`DataDecoder`] consumes a message body
//! byte stream of any length with constant memory: it writes unstuffed bytes into a caller
//! buffer up to the room the caller gives and only counts the rest.

use base64::Engine as _;
use thiserror::Error;

/// Longest command line, LF included (Postfix's `line_length_limit`).
pub const MAX_LINE_LEN: usize = 2048;
/// Longest reverse or forward path between the angle brackets (RFC 5321 §4.5.3.1.3).
pub const MAX_PATH_LEN: usize = 256;
/// Longest verb kept; longer first words are cut.
pub const MAX_VERB_LEN: usize = 16;
/// Most ESMTP parameters kept after a path.
pub const MAX_PARAMS: usize = 16;
/// Longest decoded SASL response.
pub const MAX_SASL_LEN: usize = 1536;

/// Why bytes are not a valid SMTP element.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SmtpError {
    /// No LF within the first [`MAX_LINE_LEN`] bytes.
    #[error("command line longer than {limit} bytes")]
    LineTooLong {
        /// The limit, [`MAX_LINE_LEN`].
        limit: usize,
    },
    /// A SASL response is not valid base64.
    #[error("sasl response is not base64")]
    BadBase64,
    /// A SASL response is longer than [`MAX_SASL_LEN`] decoded bytes.
    #[error("sasl response longer than {limit} bytes")]
    SaslTooLong {
        /// The limit, [`MAX_SASL_LEN`].
        limit: usize,
    },
    /// A SASL PLAIN message does not have three NUL-separated fields.
    #[error("sasl plain message without three fields")]
    BadPlain,
}

/// Result of [`decode_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A complete line without its CR LF (or LF), and the bytes it used.
    Line {
        /// The line's bytes.
        line: &'a [u8],
        /// Bytes consumed from the input.
        consumed: usize,
    },
    /// No complete line yet (and fewer than [`MAX_LINE_LEN`] bytes buffered).
    NeedMore,
}

/// Decodes the first line of `buf`.
///
/// # Errors
/// [`SmtpError::LineTooLong`] when [`MAX_LINE_LEN`] bytes hold no LF.
pub fn decode_line(buf: &[u8]) -> Result<Decoded<'_>, SmtpError> {
    let window = &buf[..buf.len().min(MAX_LINE_LEN)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= MAX_LINE_LEN {
            return Err(SmtpError::LineTooLong {
                limit: MAX_LINE_LEN,
            });
        }
        return Ok(Decoded::NeedMore);
    };
    let mut line = &buf[..lf];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    Ok(Decoded::Line {
        line,
        consumed: lf + 1,
    })
}

/// A reverse-path (MAIL FROM) or forward-path (RCPT TO) with its ESMTP parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    /// The mailbox, without angle brackets; empty for the null reverse-path `<>`.
    pub address: String,
    /// `KEYWORD[=value]` parameters, keywords uppercased, at most [`MAX_PARAMS`].
    pub params: Vec<(String, Option<String>)>,
}

impl Path {
    /// The value of the `SIZE=` parameter, when present and numeric.
    pub fn size(&self) -> Option<u64> {
        self.params
            .iter()
            .find(|(k, _)| k == "SIZE")
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| v.parse().ok())
    }
}

/// Why a MAIL or RCPT argument is not a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// The `FROM:` / `TO:` keyword is missing.
    Syntax,
    /// The address itself is malformed (unbalanced brackets, spaces, too long, control
    /// characters).
    BadAddress,
}

/// One parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `HELO domain` (domain may be empty: the server decides).
    Helo(String),
    /// `EHLO domain`.
    Ehlo(String),
    /// `MAIL FROM:<path> params`.
    Mail(Result<Path, PathError>),
    /// `RCPT TO:<path> params`.
    Rcpt(Result<Path, PathError>),
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (`None` when the size is not a number).
    Bdat(Option<(u64, bool)>),
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY arg`.
    Vrfy(String),
    /// `EXPN arg`.
    Expn(String),
    /// `HELP [topic]`.
    Help,
    /// `ETRN arg`.
    Etrn(String),
    /// `STARTTLS`.
    StartTls,
    /// `AUTH mechanism [initial-response]` (mechanism uppercased).
    Auth {
        /// SASL mechanism name.
        mechanism: String,
        /// The initial response, as sent (base64 or `=`).
        initial: Option<String>,
    },
    /// A line that looks like another protocol (`GET`, `POST`, `CONNECT`, or not starting
    /// with a letter): MTAs hang up on those.
    Forbidden(String),
    /// Any other verb (uppercased, cut at [`MAX_VERB_LEN`]).
    Unknown(String),
}

impl Command {
    /// The verb as a client would write it (for logs).
    pub fn verb(&self) -> &str {
        match self {
            Command::Helo(_) => "HELO",
            Command::Ehlo(_) => "EHLO",
            Command::Mail(_) => "MAIL",
            Command::Rcpt(_) => "RCPT",
            Command::Data => "DATA",
            Command::Bdat(_) => "BDAT",
            Command::Rset => "RSET",
            Command::Noop => "NOOP",
            Command::Quit => "QUIT",
            Command::Vrfy(_) => "VRFY",
            Command::Expn(_) => "EXPN",
            Command::Help => "HELP",
            Command::Etrn(_) => "ETRN",
            Command::StartTls => "STARTTLS",
            Command::Auth { .. } => "AUTH",
            Command::Forbidden(v) | Command::Unknown(v) => v,
        }
    }
}

fn lossy_verb(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(MAX_VERB_LEN)
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b.to_ascii_uppercase())
            } else {
                '?'
            }
        })
        .collect()
}

/// Parses one command line (as returned by [`decode_line`]).
pub fn parse_command(line: &[u8]) -> Command {
    let text = String::from_utf8_lossy(line);
    let trimmed = text.trim_start_matches(' ');
    let (verb_text, arg) = match trimmed.find(' ') {
        Some(sp) => (&trimmed[..sp], trimmed[sp + 1..].trim()),
        None => (trimmed, ""),
    };
    if !line.first().is_some_and(u8::is_ascii_alphabetic) {
        return Command::Forbidden(lossy_verb(
            line.split(|&b| b == b' ').next().unwrap_or(line),
        ));
    }
    let verb = lossy_verb(verb_text.as_bytes());
    match verb.as_str() {
        "HELO" => Command::Helo(arg.to_owned()),
        "EHLO" => Command::Ehlo(arg.to_owned()),
        "MAIL" => Command::Mail(parse_path(arg, "FROM:")),
        "RCPT" => Command::Rcpt(parse_path(arg, "TO:")),
        "DATA" => Command::Data,
        "BDAT" => {
            let mut words = arg.split_ascii_whitespace();
            let size = words.next().and_then(|w| w.parse::<u64>().ok());
            let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
            Command::Bdat(size.map(|s| (s, last)))
        }
        "RSET" => Command::Rset,
        "NOOP" => Command::Noop,
        "QUIT" => Command::Quit,
        "VRFY" => Command::Vrfy(arg.to_owned()),
        "EXPN" => Command::Expn(arg.to_owned()),
        "HELP" => Command::Help,
        "ETRN" => Command::Etrn(arg.to_owned()),
        "STARTTLS" => Command::StartTls,
        "AUTH" => {
            let mut words = arg.split_ascii_whitespace();
            let mechanism = lossy_verb(words.next().unwrap_or("").as_bytes());
            Command::Auth {
                mechanism,
                initial: words.next().map(str::to_owned),
            }
        }
        "GET" | "POST" | "CONNECT" | "HEAD" | "PUT" => Command::Forbidden(verb),
        _ => Command::Unknown(verb),
    }
}

/// Parses `FROM:<addr> params` / `TO:<addr> params` (`keyword` is `FROM:` or `TO:`,
/// matched case-insensitively; spaces after the colon are tolerated, as Postfix does).
pub fn parse_path(arg: &str, keyword: &str) -> Result<Path, PathError> {
    let head = arg.get(..keyword.len()).ok_or(PathError::Syntax)?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(PathError::Syntax);
    }
    let rest = arg[keyword.len()..].trim_start();
    if rest.is_empty() {
        return Err(PathError::Syntax);
    }
    let (address, params_text) = if let Some(inner) = rest.strip_prefix('<') {
        let close = inner.find('>').ok_or(PathError::BadAddress)?;
        (&inner[..close], &inner[close + 1..])
    } else {
        match rest.find(' ') {
            Some(sp) => (&rest[..sp], &rest[sp..]),
            None => (rest, ""),
        }
    };
    if address.len() > MAX_PATH_LEN
        || address
            .chars()
            .any(|c| c.is_control() || c == ' ' || c == '<' || c == '>')
    {
        return Err(PathError::BadAddress);
    }
    if !params_text.is_empty() && !params_text.starts_with(' ') {
        return Err(PathError::BadAddress);
    }
    let params = params_text
        .split_ascii_whitespace()
        .take(MAX_PARAMS)
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_uppercase(), Some(v.to_owned())),
            None => (p.to_ascii_uppercase(), None),
        })
        .collect();
    Ok(Path {
        address: address.to_owned(),
        params,
    })
}

/// Decodes one base64 SASL response (`=` is the empty response).
///
/// # Errors
/// [`SmtpError::BadBase64`] or [`SmtpError::SaslTooLong`].
pub fn decode_sasl(text: &[u8]) -> Result<Vec<u8>, SmtpError> {
    let text = text.trim_ascii();
    if text == b"=" {
        return Ok(Vec::new());
    }
    if text.len() > MAX_SASL_LEN.div_ceil(3) * 4 {
        return Err(SmtpError::SaslTooLong {
            limit: MAX_SASL_LEN,
        });
    }
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|_| SmtpError::BadBase64)
}

/// A decoded SASL PLAIN message (RFC 4616): `authzid NUL authcid NUL passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslPlain {
    /// Authorisation identity (often empty).
    pub authzid: Vec<u8>,
    /// Authentication identity (the username).
    pub authcid: Vec<u8>,
    /// Password bytes.
    pub passwd: Vec<u8>,
}

/// Decodes a base64 SASL PLAIN response.
///
/// # Errors
/// The errors of [`decode_sasl`], or [`SmtpError::BadPlain`] without two NULs.
pub fn decode_plain(text: &[u8]) -> Result<SaslPlain, SmtpError> {
    let raw = decode_sasl(text)?;
    let mut parts = raw.splitn(3, |&b| b == 0);
    let (Some(authzid), Some(authcid), Some(passwd)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(SmtpError::BadPlain);
    };
    Ok(SaslPlain {
        authzid: authzid.to_vec(),
        authcid: authcid.to_vec(),
        passwd: passwd.to_vec(),
    })
}

/// Appends a reply: every line but the last as `code-text`, the last as `code text`.
/// CR and LF inside a line become spaces.
pub fn reply(code: u16, lines: &[&str], out: &mut Vec<u8>) {
    let n = lines.len();
    if n == 0 {
        out.extend_from_slice(format!("{code:03} \r\n").as_bytes());
        return;
    }
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == n { ' ' } else { '-' };
        out.extend_from_slice(format!("{code:03}{sep}").as_bytes());
        out.extend(
            line.bytes()
                .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
        );
        out.extend_from_slice(b"\r\n");
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataState {
    /// At the start of a line.
    LineStart,
    /// Inside a line.
    InLine,
    /// A line started with `.`.
    Dot,
    /// A line started with `.` CR.
    DotCr,
    /// The end-of-data line was seen.
    Done,
}

/// Decodes a DATA body: finds the end-of-data line (`.` alone on a line, CR LF or bare
/// LF) and removes the leading dot of stuffed lines (RFC 5321 §4.5.2). Bytes are kept up
/// to the room the caller grants and counted beyond it, so any body length uses constant
/// memory.
#[derive(Debug, Clone)]
pub struct DataDecoder {
    state: DataState,
    total: u64,
}

impl Default for DataDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl DataDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        DataDecoder {
            state: DataState::LineStart,
            total: 0,
        }
    }

    /// Unstuffed body bytes seen so far (kept or not).
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Whether the end-of-data line was seen.
    pub fn is_done(&self) -> bool {
        self.state == DataState::Done
    }

    /// Consumes bytes of `input` until the end-of-data line or the end of `input`,
    /// appending at most `room` unstuffed bytes to `out` (later ones are only counted).
    /// Returns the number of input bytes consumed: less than `input.len()` only when the
    /// end was reached (the rest belongs to the next command).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>, room: usize) -> usize {
        let mut room = room;
        let mut emit = |bytes: &[u8], total: &mut u64| {
            *total += bytes.len() as u64;
            let take = bytes.len().min(room);
            out.extend_from_slice(&bytes[..take]);
            room -= take;
        };
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            match self.state {
                DataState::Done => return i,
                DataState::InLine => {
                    // Fast path: copy up to and including the next LF in one go.
                    let end = input[i..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(input.len(), |p| i + p + 1);
                    emit(&input[i..end], &mut self.total);
                    if input[end - 1] == b'\n' {
                        self.state = DataState::LineStart;
                    }
                    i = end;
                    continue;
                }
                DataState::LineStart => {
                    if b == b'.' {
                        self.state = DataState::Dot;
                    } else {
                        emit(&[b], &mut self.total);
                        if b != b'\n' {
                            self.state = DataState::InLine;
                        }
                    }
                }
                DataState::Dot => match b {
                    b'\r' => self.state = DataState::DotCr,
                    b'\n' => self.state = DataState::Done,
                    _ => {
                        // A stuffed line: the leading dot is dropped.
                        emit(&[b], &mut self.total);
                        self.state = DataState::InLine;
                    }
                },
                DataState::DotCr => {
                    if b == b'\n' {
                        self.state = DataState::Done;
                    } else {
                        emit(b"\r", &mut self.total);
                        self.state = DataState::InLine;
                        continue;
                    }
                }
            }
            i += 1;
        }
        if self.state == DataState::Done {
            return i.min(input.len());
        }
        input.len()
    }
}

/// Dot-stuffs `body` and appends it with the end-of-data line (the encoder of
/// [`DataDecoder`]; used by tests and clients). A body not ending in CR LF gets one.
pub fn encode_data(body: &[u8], out: &mut Vec<u8>) {
    let mut at_start = true;
    for &b in body {
        if at_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_start = b == b'\n';
    }
    if !body.is_empty() && !body.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lines_and_limits() {
        assert_eq!(
            decode_line(b"EHLO x\r\nQUIT\r\n").unwrap(),
            Decoded::Line {
                line: b"EHLO x",
                consumed: 8
            }
        );
        assert_eq!(decode_line(b"EHLO").unwrap(), Decoded::NeedMore);
        assert!(decode_line(&vec![b'a'; MAX_LINE_LEN]).is_err());
        assert_eq!(
            decode_line(&vec![b'a'; MAX_LINE_LEN - 1]).unwrap(),
            Decoded::NeedMore
        );
    }

    #[test]
    fn commands() {
        assert_eq!(
            parse_command(b"ehlo client.example"),
            Command::Ehlo("client.example".into())
        );
        assert_eq!(parse_command(b"HELO"), Command::Helo(String::new()));
        let Command::Mail(Ok(p)) =
            parse_command(b"MAIL FROM:<a@b.example> SIZE=1200 BODY=8BITMIME")
        else {
            panic!()
        };
        assert_eq!(p.address, "a@b.example");
        assert_eq!(p.size(), Some(1200));
        assert_eq!(p.params[1], ("BODY".into(), Some("8BITMIME".into())));
        let Command::Mail(Ok(p)) = parse_command(b"mail from: <>") else {
            panic!()
        };
        assert_eq!(p.address, "");
        let Command::Rcpt(Ok(p)) = parse_command(b"RCPT TO:bob@example.org") else {
            panic!()
        };
        assert_eq!(p.address, "bob@example.org");
        assert_eq!(
            parse_command(b"MAIL <a@b>"),
            Command::Mail(Err(PathError::Syntax))
        );
        assert_eq!(
            parse_command(b"MAIL FROM:"),
            Command::Mail(Err(PathError::Syntax))
        );
        assert_eq!(
            parse_command(b"MAIL FROM:<a@b"),
            Command::Mail(Err(PathError::BadAddress))
        );
        assert_eq!(
            parse_command(b"RCPT TO:<a b@c>"),
            Command::Rcpt(Err(PathError::BadAddress))
        );
        assert_eq!(
            parse_command(b"AUTH login dXNlcg=="),
            Command::Auth {
                mechanism: "LOGIN".into(),
                initial: Some("dXNlcg==".into())
            }
        );
        assert_eq!(
            parse_command(b"BDAT 120 LAST"),
            Command::Bdat(Some((120, true)))
        );
        assert_eq!(parse_command(b"BDAT x"), Command::Bdat(None));
        assert_eq!(
            parse_command(b"GET / HTTP/1.0"),
            Command::Forbidden("GET".into())
        );
        assert_eq!(
            parse_command(b"\x16\x03\x01"),
            Command::Forbidden("???".into())
        );
        assert_eq!(parse_command(b"XYZZY a"), Command::Unknown("XYZZY".into()));
    }

    #[test]
    fn sasl() {
        let p = decode_plain(b"AGFkbWluAHMzY3JldA==").unwrap();
        assert_eq!(p.authzid, b"");
        assert_eq!(p.authcid, b"admin");
        assert_eq!(p.passwd, b"s3cret");
        assert_eq!(decode_plain(b"YWRtaW4="), Err(SmtpError::BadPlain));
        assert_eq!(decode_sasl(b"not base64!"), Err(SmtpError::BadBase64));
        assert_eq!(decode_sasl(b"=").unwrap(), b"");
        assert_eq!(decode_sasl(b"dXNlcg==\r").unwrap(), b"user");
        assert!(matches!(
            decode_sasl(&vec![b'A'; MAX_SASL_LEN / 3 * 4 + 4]),
            Err(SmtpError::SaslTooLong { .. })
        ));
    }

    #[test]
    fn multi_line_replies() {
        let mut out = Vec::new();
        reply(
            250,
            &["mx.example", "PIPELINING", "SIZE 10240000"],
            &mut out,
        );
        assert_eq!(
            out,
            b"250-mx.example\r\n250-PIPELINING\r\n250 SIZE 10240000\r\n"
        );
        out.clear();
        reply(334, &[""], &mut out);
        assert_eq!(out, b"334 \r\n");
    }

    #[test]
    fn data_end_and_unstuffing() {
        let mut d = DataDecoder::new();
        let mut out = Vec::new();
        let input = b"Subject: x\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n";
        let used = d.feed(input, &mut out, usize::MAX);
        assert!(d.is_done());
        assert_eq!(&input[used..], b"QUIT\r\n");
        assert_eq!(out, b"Subject: x\r\n\r\n.leading dot\r\n");
        assert_eq!(d.total(), out.len() as u64);
    }

    #[test]
    fn data_split_anywhere_and_capped() {
        let input = b"a\r\n.b\r\n.\rc\r\n.\r\n";
        for split in 0..input.len() {
            let mut d = DataDecoder::new();
            let mut out = Vec::new();
            let a = d.feed(&input[..split], &mut out, 5);
            assert_eq!(a, split);
            let room = 5 - out.len();
            let b = d.feed(&input[split..], &mut out, room);
            assert!(d.is_done(), "split {split}");
            assert_eq!(split + b, input.len());
            assert_eq!(out, b"a\r\nb\r");
            assert_eq!(d.total(), b"a\r\nb\r\n\rc\r\n".len() as u64);
        }
    }

    #[test]
    fn bare_lf_end_of_data() {
        let mut d = DataDecoder::new();
        let mut out = Vec::new();
        d.feed(b"hi\n.\n", &mut out, 100);
        assert!(d.is_done());
        assert_eq!(out, b"hi\n");
    }

    proptest! {
        #[test]
        fn data_roundtrip(body in prop::collection::vec(prop_oneof![Just(b'.'), Just(b'\r'), Just(b'\n'), any::<u8>()], 0..400), chunk in 1usize..50) {
            // Bodies are lines ending in CR LF on the wire; normalise the generated body.
            let mut text = body.clone();
            text.retain(|&b| b != b'\r' && b != b'\n');
            let lines: Vec<u8> = text.chunks(7).flat_map(|c| c.iter().copied().chain(*b"\r\n")).collect();
            let mut wire = Vec::new();
            encode_data(&lines, &mut wire);
            wire.extend_from_slice(b"NEXT");
            let mut d = DataDecoder::new();
            let mut out = Vec::new();
            let mut at = 0;
            while !d.is_done() && at < wire.len() {
                let end = (at + chunk).min(wire.len());
                at += d.feed(&wire[at..end], &mut out, usize::MAX);
            }
            prop_assert!(d.is_done());
            prop_assert_eq!(&wire[at..], b"NEXT");
            prop_assert_eq!(out, lines);
        }

        #[test]
        fn data_decoder_is_total_and_bounded(input in prop::collection::vec(any::<u8>(), 0..2000), room in 0usize..100) {
            let mut d = DataDecoder::new();
            let mut out = Vec::new();
            let used = d.feed(&input, &mut out, room);
            prop_assert!(used <= input.len());
            prop_assert!(out.len() <= room);
            prop_assert!(d.total() <= input.len() as u64);
            if !d.is_done() {
                prop_assert_eq!(used, input.len());
            }
        }

        #[test]
        fn parse_never_panics(line in prop::collection::vec(any::<u8>(), 0..300)) {
            let c = parse_command(&line);
            prop_assert!(c.verb().len() <= MAX_VERB_LEN * 3);
            if let Command::Mail(Ok(p)) | Command::Rcpt(Ok(p)) = &c {
                prop_assert!(p.address.len() <= MAX_PATH_LEN);
                prop_assert!(p.params.len() <= MAX_PARAMS);
            }
        }

        #[test]
        fn lines_are_total(data in prop::collection::vec(any::<u8>(), 0..5000)) {
            let mut rest = &data[..];
            while let Ok(Decoded::Line { line, consumed }) = decode_line(rest) {
                prop_assert!(consumed > 0 && consumed <= MAX_LINE_LEN);
                prop_assert!(!line.contains(&b'\n'));
                rest = &rest[consumed..];
            }
        }
    }
}
