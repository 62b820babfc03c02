//! FTP control-channel codec (RFC 959): bounded command lines, replies, PORT/EPRT
//! arguments and path normalisation.
//!
//! A command is one line `VERB[ SP argument] CRLF`; a bare LF is accepted as the end of a
//! line (several clients send it, and vsftpd accepts it). [`decode`] is incremental and
//! total: any byte string yields a command (with the number of bytes it used), "need more
//! input", or [`FtpError::LineTooLong`] as soon as [`MAX_LINE_LEN`] bytes arrived without
//! an LF. Telnet IAC sequences that clients put before `ABOR` are skipped.
//!
//! [`normalize_path`] turns a client argument into an absolute, canonical path inside the
//! emulated file tree: it never yields `..`, `.` or empty components and never leaves `/`,
//! so an emulator can use it as a lookup key but never as a host path.

use thiserror::Error;

/// Longest command line, LF included (vsftpd's `VSFTP_MAX_COMMAND_LINE`).
pub const MAX_LINE_LEN: usize = 4096;
/// Longest verb kept as a verb; longer first words are still returned (uppercased, cut).
pub const MAX_VERB_LEN: usize = 16;
/// Most components a normalised path may have.
pub const MAX_PATH_DEPTH: usize = 64;
/// Longest reply text line written by [`reply`] (longer text is cut).
pub const MAX_REPLY_TEXT: usize = 1024;

/// Why bytes are not a command line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FtpError {
    /// No LF within the first [`MAX_LINE_LEN`] bytes.
    #[error("command line longer than {limit} bytes")]
    LineTooLong {
        /// The limit, [`MAX_LINE_LEN`].
        limit: usize,
    },
    /// A path argument has more than [`MAX_PATH_DEPTH`] components.
    #[error("path deeper than {limit} components")]
    PathTooDeep {
        /// The limit, [`MAX_PATH_DEPTH`].
        limit: usize,
    },
}

/// One command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command<'a> {
    /// The first word, ASCII-uppercased, cut at [`MAX_VERB_LEN`] bytes; bytes that are not
    /// printable ASCII become `?`. Empty for an empty line.
    pub verb: String,
    /// Everything after the first space (CR and LF removed), raw.
    pub arg: &'a [u8],
}

/// Result of [`decode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A complete command and the bytes it used (line terminator included).
    Command {
        /// The command.
        command: Command<'a>,
        /// Bytes consumed from the input.
        consumed: usize,
    },
    /// No complete line yet (and fewer than [`MAX_LINE_LEN`] bytes buffered).
    NeedMore,
}

/// Telnet "interpret as command" byte.
const IAC: u8 = 0xff;

/// Decodes the first command line of `buf`.
///
/// # Errors
/// [`FtpError::LineTooLong`] when [`MAX_LINE_LEN`] bytes hold no LF.
pub fn decode(buf: &[u8]) -> Result<Decoded<'_>, FtpError> {
    let window = &buf[..buf.len().min(MAX_LINE_LEN)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= MAX_LINE_LEN {
            return Err(FtpError::LineTooLong {
                limit: MAX_LINE_LEN,
            });
        }
        return Ok(Decoded::NeedMore);
    };
    let mut line = &buf[..lf];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    // Clients send `IAC IP IAC DM` (or `IAC IP IAC SYNCH`) before ABOR: drop IAC pairs.
    while let [IAC, _, rest @ ..] = line {
        line = rest;
    }
    let (verb_bytes, arg) = match line.iter().position(|&b| b == b' ') {
        Some(sp) => (&line[..sp], &line[sp + 1..]),
        None => (line, &line[line.len()..]),
    };
    let verb = verb_bytes
        .iter()
        .take(MAX_VERB_LEN)
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b.to_ascii_uppercase())
            } else {
                '?'
            }
        })
        .collect();
    Ok(Decoded::Command {
        command: Command { verb, arg },
        consumed: lf + 1,
    })
}

/// Appends one reply line `code SP text CRLF`. CR and LF inside `text` become spaces so a
/// reply can never be split by data that came from the client.
pub fn reply(code: u16, text: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{code:03} ").as_bytes());
    push_text(text, out);
    out.extend_from_slice(b"\r\n");
}

/// Appends a multi-line reply: `code-first`, then each of `middle` as is (RFC 959 lets
/// them start with a space), then `code last`.
pub fn reply_multi(code: u16, first: &str, middle: &[&str], last: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{code:03}-").as_bytes());
    push_text(first, out);
    out.extend_from_slice(b"\r\n");
    for line in middle {
        push_text(line, out);
        out.extend_from_slice(b"\r\n");
    }
    reply(code, last, out);
}

fn push_text(text: &str, out: &mut Vec<u8>) {
    let mut cut = text.len().min(MAX_REPLY_TEXT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    out.extend(
        text[..cut]
            .bytes()
            .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
}

/// The text of a 227 reply: `Entering Passive Mode (h1,h2,h3,h4,p1,p2).`
pub fn pasv_text(ip: [u8; 4], port: u16) -> String {
    format!(
        "Entering Passive Mode ({},{},{},{},{},{}).",
        ip[0],
        ip[1],
        ip[2],
        ip[3],
        port >> 8,
        port & 0xff
    )
}

/// The text of a 229 reply: `Entering Extended Passive Mode (|||port|)`.
pub fn epsv_text(port: u16) -> String {
    format!("Entering Extended Passive Mode (|||{port}|)")
}

/// Parses a PORT argument `h1,h2,h3,h4,p1,p2`.
pub fn parse_port(arg: &[u8]) -> Option<([u8; 4], u16)> {
    let text = std::str::from_utf8(arg).ok()?.trim();
    let mut nums = [0u8; 6];
    let mut n = 0;
    for part in text.split(',') {
        if n == 6 {
            return None;
        }
        nums[n] = part.trim().parse().ok()?;
        n += 1;
    }
    if n != 6 {
        return None;
    }
    Some((
        [nums[0], nums[1], nums[2], nums[3]],
        u16::from(nums[4]) << 8 | u16::from(nums[5]),
    ))
}

/// Parses an EPRT argument `|proto|address|port|` (any delimiter byte).
pub fn parse_eprt(arg: &[u8]) -> Option<(std::net::IpAddr, u16)> {
    let text = std::str::from_utf8(arg).ok()?;
    let delim = text.chars().next()?;
    let parts: Vec<&str> = text.split(delim).collect();
    if parts.len() != 5 || !parts[0].is_empty() || !parts[4].is_empty() {
        return None;
    }
    let ip: std::net::IpAddr = parts[2].parse().ok()?;
    match (parts[1], ip) {
        ("1", std::net::IpAddr::V4(_)) | ("2", std::net::IpAddr::V6(_)) => {}
        _ => return None,
    }
    Some((ip, parts[3].parse().ok()?))
}

/// Resolves `arg` against the absolute directory `cwd` into a canonical absolute path:
/// `.` and empty components are dropped, `..` goes up but never above `/`. Bytes that are
/// not UTF-8 are replaced (the emulated tree has only UTF-8 names).
///
/// # Errors
/// [`FtpError::PathTooDeep`] when the result would exceed [`MAX_PATH_DEPTH`] components
/// or the input is longer than [`MAX_LINE_LEN`].
pub fn normalize_path(cwd: &str, arg: &[u8]) -> Result<String, FtpError> {
    let too_deep = FtpError::PathTooDeep {
        limit: MAX_PATH_DEPTH,
    };
    if arg.len() > MAX_LINE_LEN || cwd.len() > MAX_LINE_LEN {
        return Err(too_deep);
    }
    let arg = String::from_utf8_lossy(arg);
    let mut parts: Vec<&str> = Vec::new();
    let joined: [&str; 2] = if arg.starts_with('/') {
        ["", &arg]
    } else {
        [cwd, &arg]
    };
    for piece in joined.iter().flat_map(|s| s.split('/')) {
        match piece {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            name => {
                if parts.len() == MAX_PATH_DEPTH {
                    return Err(too_deep);
                }
                parts.push(name);
            }
        }
    }
    let mut out = String::with_capacity(arg.len() + cwd.len() + 1);
    for p in &parts {
        out.push('/');
        out.push_str(p);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cmd(buf: &[u8]) -> (Command<'_>, usize) {
        match decode(buf).unwrap() {
            Decoded::Command { command, consumed } => (command, consumed),
            Decoded::NeedMore => panic!("need more"),
        }
    }

    #[test]
    fn decodes_verb_and_argument() {
        let (c, used) = cmd(b"user Anonymous\r\nPASS x\r\n");
        assert_eq!(c.verb, "USER");
        assert_eq!(c.arg, b"Anonymous");
        assert_eq!(used, 16);
        let (c, used) = cmd(b"PWD\n");
        assert_eq!((c.verb.as_str(), c.arg, used), ("PWD", &b""[..], 4));
        let (c, _) = cmd(b"RETR my file.txt\r\n");
        assert_eq!(c.arg, b"my file.txt");
        let (c, _) = cmd(b"\r\n");
        assert_eq!(c.verb, "");
    }

    #[test]
    fn skips_telnet_interrupt_before_abor() {
        let (c, _) = cmd(b"\xff\xf4\xff\xf2ABOR\r\n");
        assert_eq!(c.verb, "ABOR");
    }

    #[test]
    fn long_lines_are_refused_as_soon_as_the_limit_is_reached() {
        assert_eq!(
            decode(&vec![b'A'; MAX_LINE_LEN - 1]).unwrap(),
            Decoded::NeedMore
        );
        assert_eq!(
            decode(&vec![b'A'; MAX_LINE_LEN]),
            Err(FtpError::LineTooLong {
                limit: MAX_LINE_LEN
            })
        );
        let mut ok = vec![b'A'; MAX_LINE_LEN - 1];
        ok.push(b'\n');
        assert!(matches!(decode(&ok), Ok(Decoded::Command { .. })));
    }

    #[test]
    fn replies_cannot_be_split_by_client_text() {
        let mut out = Vec::new();
        reply(550, "a\r\n230 Login successful.", &mut out);
        assert_eq!(out, b"550 a  230 Login successful.\r\n");
        out.clear();
        reply_multi(211, "Features:", &[" EPSV", " PASV"], "End", &mut out);
        assert_eq!(out, b"211-Features:\r\n EPSV\r\n PASV\r\n211 End\r\n");
    }

    #[test]
    fn passive_texts_and_port_arguments() {
        assert_eq!(
            pasv_text([127, 0, 0, 1], 40001),
            "Entering Passive Mode (127,0,0,1,156,65)."
        );
        assert_eq!(
            epsv_text(40001),
            "Entering Extended Passive Mode (|||40001|)"
        );
        assert_eq!(parse_port(b"10,0,0,9,156,65"), Some(([10, 0, 0, 9], 40001)));
        assert_eq!(parse_port(b"10,0,0,9,156"), None);
        assert_eq!(parse_port(b"10,0,0,9,156,65,1"), None);
        assert_eq!(parse_port(b"300,0,0,9,156,65"), None);
        assert_eq!(
            parse_eprt(b"|1|10.0.0.9|40001|"),
            Some(("10.0.0.9".parse().unwrap(), 40001))
        );
        assert_eq!(
            parse_eprt(b"|2|::1|21|"),
            Some(("::1".parse().unwrap(), 21))
        );
        assert_eq!(parse_eprt(b"|2|10.0.0.9|21|"), None);
        assert_eq!(parse_eprt(b"|1|x|21|"), None);
    }

    #[test]
    fn paths_never_escape_the_root() {
        assert_eq!(normalize_path("/", b"backups").unwrap(), "/backups");
        assert_eq!(
            normalize_path("/backups", b"../../../etc/passwd").unwrap(),
            "/etc/passwd"
        );
        assert_eq!(normalize_path("/a/b", b"./c//d/.").unwrap(), "/a/b/c/d");
        assert_eq!(normalize_path("/a/b", b"/x").unwrap(), "/x");
        assert_eq!(normalize_path("/a", b"..").unwrap(), "/");
        assert_eq!(normalize_path("/", b"").unwrap(), "/");
        let deep = "a/".repeat(MAX_PATH_DEPTH + 1);
        assert!(normalize_path("/", deep.as_bytes()).is_err());
    }

    proptest! {
        #[test]
        fn decode_is_total_and_consistent(data in prop::collection::vec(any::<u8>(), 0..6000)) {
            let mut rest = &data[..];
            loop {
                match decode(rest) {
                    Ok(Decoded::Command { command, consumed }) => {
                        prop_assert!(consumed > 0 && consumed <= rest.len());
                        prop_assert!(consumed <= MAX_LINE_LEN);
                        prop_assert!(command.verb.len() <= MAX_VERB_LEN);
                        prop_assert!(!command.arg.contains(&b'\n'));
                        rest = &rest[consumed..];
                    }
                    Ok(Decoded::NeedMore) => {
                        prop_assert!(rest.len() < MAX_LINE_LEN);
                        prop_assert!(!rest.contains(&b'\n'));
                        break;
                    }
                    Err(FtpError::LineTooLong { .. }) => {
                        prop_assert!(!rest[..MAX_LINE_LEN].contains(&b'\n'));
                        break;
                    }
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }
        }

        #[test]
        fn normalised_paths_are_canonical(cwd in "(/[a-z.]{0,4}){0,4}", arg in prop::collection::vec(any::<u8>(), 0..200)) {
            let cwd = if cwd.is_empty() { "/".to_owned() } else { cwd };
            if let Ok(p) = normalize_path(&cwd, &arg) {
                prop_assert!(p.starts_with('/'));
                prop_assert!(p == "/" || !p.ends_with('/'));
                for part in p.split('/').skip(1) {
                    prop_assert!(p == "/" || (!part.is_empty() && part != "." && part != ".."));
                }
                prop_assert_eq!(normalize_path("/", p.as_bytes()).unwrap(), p.clone());
            }
        }

        #[test]
        fn replies_are_one_line(code in 100u16..600, text in ".{0,300}") {
            let mut out = Vec::new();
            reply(code, &text, &mut out);
            prop_assert!(out.ends_with(b"\r\n"));
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        }
    }
}
