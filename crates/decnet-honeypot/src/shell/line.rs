//! A terminal line discipline for raw-mode clients (ssh with a pty, telnet in character
//! mode): echo, backspace, ^C, ^D, ^U and ^W, escape sequences swallowed, bounded lines.

/// Longest line kept; further characters are dropped (and not echoed), as a tty does
/// when its input buffer is full.
pub const MAX_LINE_BYTES: usize = 4096;

/// What the editor produced for a chunk of input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Edit {
    /// Bytes to echo back to the terminal.
    pub echo: Vec<u8>,
    /// Complete lines (without the line terminator).
    pub lines: Vec<Event>,
}

/// A completed input event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A line ended with Enter.
    Line(String),
    /// ^C: the line was discarded.
    Interrupt,
    /// ^D on an empty line.
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Esc {
    None,
    Started,
    Csi,
}

/// The line editor state.
#[derive(Debug)]
pub struct LineEditor {
    buf: Vec<u8>,
    esc: Esc,
    last_cr: bool,
    /// Whether typed characters are echoed (off while a password is read).
    pub echo: bool,
}

impl Default for LineEditor {
    fn default() -> Self {
        LineEditor {
            buf: Vec::new(),
            esc: Esc::None,
            last_cr: false,
            echo: true,
        }
    }
}

impl LineEditor {
    /// A new editor with echo on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds raw bytes from the client.
    pub fn feed(&mut self, input: &[u8]) -> Edit {
        let mut out = Edit::default();
        for &b in input {
            // A CR LF or CR NUL pair is one Enter.
            if self.last_cr && (b == b'\n' || b == 0) {
                self.last_cr = false;
                continue;
            }
            self.last_cr = false;
            match self.esc {
                Esc::Started => {
                    self.esc = if b == b'[' || b == b'O' {
                        Esc::Csi
                    } else {
                        Esc::None
                    };
                    continue;
                }
                Esc::Csi => {
                    if (0x40..=0x7e).contains(&b) {
                        self.esc = Esc::None;
                    }
                    continue;
                }
                Esc::None => {}
            }
            match b {
                b'\r' | b'\n' => {
                    self.last_cr = b == b'\r';
                    // Enter is echoed even while a password is read.
                    out.echo.extend_from_slice(b"\r\n");
                    let line = String::from_utf8_lossy(&self.buf).into_owned();
                    self.buf.clear();
                    out.lines.push(Event::Line(line));
                }
                0x03 => {
                    self.buf.clear();
                    out.echo.extend_from_slice(b"^C\r\n");
                    out.lines.push(Event::Interrupt);
                }
                0x04 => {
                    if self.buf.is_empty() {
                        out.lines.push(Event::Eof);
                    }
                }
                0x7f | 0x08 => {
                    if let Some(removed) = self.pop_char()
                        && self.echo
                    {
                        for _ in 0..removed {
                            out.echo.extend_from_slice(b"\x08 \x08");
                        }
                    }
                }
                0x15 => {
                    while let Some(removed) = self.pop_char() {
                        if self.echo {
                            for _ in 0..removed {
                                out.echo.extend_from_slice(b"\x08 \x08");
                            }
                        }
                    }
                }
                0x17 => {
                    while self.buf.last() == Some(&b' ') {
                        self.buf.pop();
                        if self.echo {
                            out.echo.extend_from_slice(b"\x08 \x08");
                        }
                    }
                    while self.buf.last().is_some_and(|c| *c != b' ') {
                        if let Some(removed) = self.pop_char()
                            && self.echo
                        {
                            for _ in 0..removed {
                                out.echo.extend_from_slice(b"\x08 \x08");
                            }
                        }
                    }
                }
                0x1b => self.esc = Esc::Started,
                b'\t' | 0x07 | 0x0c => {
                    // No completion; ^L is answered by the shell prompt staying put.
                }
                b if b < 0x20 => {}
                b => {
                    if self.buf.len() < MAX_LINE_BYTES {
                        self.buf.push(b);
                        if self.echo {
                            out.echo.push(b);
                        }
                    }
                }
            }
        }
        out
    }

    /// Removes the last character (UTF-8 aware); returns how many columns to erase.
    fn pop_char(&mut self) -> Option<usize> {
        let mut n = 0;
        while let Some(b) = self.buf.pop() {
            n += 1;
            if b & 0xc0 != 0x80 {
                break;
            }
        }
        (n > 0).then_some(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editing_keys() {
        let mut e = LineEditor::new();
        let out = e.feed(b"lss\x7f -la\x1b[A\r\n");
        assert_eq!(out.lines, [Event::Line("ls -la".into())]);
        assert_eq!(out.echo, b"lss\x08 \x08 -la\r\n");
        let out = e.feed(b"abc\x15id\r");
        assert_eq!(out.lines, [Event::Line("id".into())]);
        let out = e.feed(b"\nfoo\x03\x04");
        assert_eq!(out.lines, [Event::Interrupt, Event::Eof]);
        let out = e.feed(b"echo hi there\x17\r");
        assert_eq!(out.lines, [Event::Line("echo hi ".into())]);
    }

    #[test]
    fn no_echo_and_bounded() {
        let mut e = LineEditor::new();
        e.echo = false;
        let out = e.feed(b"secret\r");
        assert_eq!(out.echo, b"\r\n");
        assert_eq!(out.lines, [Event::Line("secret".into())]);
        e.echo = true;
        let long = vec![b'a'; MAX_LINE_BYTES * 2];
        let out = e.feed(&long);
        assert_eq!(out.echo.len(), MAX_LINE_BYTES);
        let out = e.feed(b"\r");
        assert!(matches!(&out.lines[0], Event::Line(l) if l.len() == MAX_LINE_BYTES));
    }
}
