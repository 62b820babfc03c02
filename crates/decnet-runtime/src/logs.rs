//! Container output as the log collector reads it: timestamped lines, the container
//! event stream, and the one rule that turns Docker's log frames into bounded lines.
//!
//! Docker (json-file driver, `timestamps=true`) sends one frame per stored message:
//! `<RFC 3339 nanoseconds> SP <text>`; a message without a trailing newline is a partial
//! (Docker splits lines longer than 16 KiB, and the last output of a process may lack
//! one) whose continuation comes in the next frame of the same stream with its own
//! timestamp. [`LineAssembler`] joins those into lines stamped with the first part's
//! timestamp and never holds more than [`MAX_LOG_LINE`] bytes per stream: longer lines
//! are cut and end with [`TRUNCATED_MARK`].

use std::collections::BTreeMap;
use std::collections::VecDeque;

use futures::stream::BoxStream;
use serde::Serialize;

use crate::engine::EngineError;

/// Longest line handed on, in bytes, marker included.
pub const MAX_LOG_LINE: usize = 64 * 1024;
/// Appended to a line cut at [`MAX_LOG_LINE`].
pub const TRUNCATED_MARK: &str = " [decnet: line truncated]";
/// Longest timestamp prefix looked for at the start of a frame.
const MAX_TS_PREFIX: usize = 40;

/// Which output of the container a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line a container wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// Docker's timestamp of the line, nanoseconds since the Unix epoch.
    pub ts_nanos: i128,
    /// Stdout or stderr.
    pub stream: LogStream,
    /// The text without its trailing newline (invalid UTF-8 replaced), at most
    /// [`MAX_LOG_LINE`] bytes.
    pub line: String,
    /// True when the line was longer than [`MAX_LOG_LINE`] and was cut (its text then
    /// ends with [`TRUNCATED_MARK`]).
    pub truncated: bool,
}

/// What happened to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContainerAction {
    /// Its process started (first start or restart).
    Start,
    /// Its process ended.
    Die,
    /// It was removed.
    Destroy,
}

impl ContainerAction {
    /// Docker's action name.
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerAction::Start => "start",
            ContainerAction::Die => "die",
            ContainerAction::Destroy => "destroy",
        }
    }

    /// The action of a Docker action name (`start`, `die`, `destroy`); `None` for others.
    pub fn from_docker(action: &str) -> Option<ContainerAction> {
        match action {
            "start" => Some(ContainerAction::Start),
            "die" => Some(ContainerAction::Die),
            "destroy" => Some(ContainerAction::Destroy),
            _ => None,
        }
    }
}

/// A start, die or destroy of a DECNET-managed container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerEvent {
    /// Container id.
    pub id: String,
    /// What happened.
    pub action: ContainerAction,
    /// The container's attributes as Docker reports them with the event: its labels,
    /// plus `name` and `image`.
    pub attributes: BTreeMap<String, String>,
    /// When, nanoseconds since the Unix epoch (0 when the daemon did not say).
    pub time_nanos: i128,
}

/// A followed container's lines, in the order Docker stored them.
pub type LogLines = BoxStream<'static, Result<LogLine, EngineError>>;
/// The managed containers' events.
pub type ContainerEvents = BoxStream<'static, Result<ContainerEvent, EngineError>>;

/// Parses Docker's RFC 3339 timestamp (`2024-05-01T10:00:00.123456789Z`) into Unix
/// nanoseconds.
pub fn parse_docker_ts(text: &str) -> Option<i128> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(time::OffsetDateTime::unix_timestamp_nanos)
}

/// Cuts `text` so it fits in [`MAX_LOG_LINE`] bytes with the marker (at a character
/// boundary); returns whether it was cut.
pub fn cut_line(text: String) -> (String, bool) {
    cut_to(text, MAX_LOG_LINE)
}

/// Cuts `text` so it fits in `max` bytes (at least 1 KiB) with the marker, at a
/// character boundary; returns whether it was cut. A line already cut and marked is cut
/// again with one marker.
pub fn cut_to(mut text: String, max: usize) -> (String, bool) {
    let max = max.max(1024);
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max - TRUNCATED_MARK.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(TRUNCATED_MARK);
    (text, true)
}

#[derive(Debug)]
struct Pending {
    ts: i128,
    bytes: Vec<u8>,
    overflow: bool,
}

impl Pending {
    fn push(&mut self, part: &[u8]) {
        // Keep one byte more than the cap, so a line of exactly the cap is not cut.
        let room = (MAX_LOG_LINE + 1).saturating_sub(self.bytes.len());
        if part.len() > room {
            self.overflow = true;
        }
        self.bytes.extend_from_slice(&part[..part.len().min(room)]);
    }

    fn finish(self, stream: LogStream) -> LogLine {
        let text = String::from_utf8_lossy(&self.bytes).into_owned();
        let (line, cut) = cut_line(text);
        LogLine {
            ts_nanos: self.ts,
            stream,
            line,
            truncated: cut || self.overflow,
        }
    }
}

/// Turns timestamped Docker log frames into complete, bounded lines (one partial line
/// held per stream).
#[derive(Debug, Default)]
pub struct LineAssembler {
    stdout: Option<Pending>,
    stderr: Option<Pending>,
    last_ts: i128,
    ready: VecDeque<LogLine>,
}

impl LineAssembler {
    /// An empty assembler.
    pub fn new() -> Self {
        LineAssembler::default()
    }

    /// Feeds one frame of `stream`: `<timestamp> SP <text>`. A frame without a readable
    /// timestamp is taken whole, stamped with the last timestamp seen.
    pub fn push_frame(&mut self, stream: LogStream, frame: &[u8]) {
        let head = &frame[..frame.len().min(MAX_TS_PREFIX)];
        let (ts, mut rest) = match head.iter().position(|b| *b == b' ') {
            Some(sp) => match std::str::from_utf8(&frame[..sp])
                .ok()
                .and_then(parse_docker_ts)
            {
                Some(ts) => (ts, &frame[sp + 1..]),
                None => (self.last_ts, frame),
            },
            None => (self.last_ts, frame),
        };
        self.last_ts = ts;
        loop {
            let slot = match stream {
                LogStream::Stdout => &mut self.stdout,
                LogStream::Stderr => &mut self.stderr,
            };
            let pending = slot.get_or_insert_with(|| Pending {
                ts,
                bytes: Vec::new(),
                overflow: false,
            });
            match rest.iter().position(|b| *b == b'\n') {
                Some(nl) => {
                    pending.push(&rest[..nl]);
                    if let Some(done) = slot.take() {
                        self.ready.push_back(done.finish(stream));
                    }
                    rest = &rest[nl + 1..];
                    if rest.is_empty() {
                        break;
                    }
                }
                None => {
                    pending.push(rest);
                    break;
                }
            }
        }
    }

    /// Ends the input: partial lines still held become lines (stdout first).
    pub fn finish(&mut self) {
        if let Some(p) = self.stdout.take() {
            self.ready.push_back(p.finish(LogStream::Stdout));
        }
        if let Some(p) = self.stderr.take() {
            self.ready.push_back(p.finish(LogStream::Stderr));
        }
    }

    /// The next complete line, in arrival order.
    pub fn pop(&mut self) -> Option<LogLine> {
        self.ready.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TS: &str = "2024-05-01T10:00:00.123456789Z";
    const TS_NANOS: i128 = 1_714_557_600_123_456_789;

    fn drain(a: &mut LineAssembler) -> Vec<LogLine> {
        std::iter::from_fn(|| a.pop()).collect()
    }

    #[test]
    fn timestamps_are_nanoseconds() {
        assert_eq!(parse_docker_ts(TS), Some(TS_NANOS));
        assert_eq!(
            parse_docker_ts("1970-01-01T00:00:01.000000001Z"),
            Some(1_000_000_001)
        );
        assert_eq!(parse_docker_ts("yesterday"), None);
    }

    #[test]
    fn frames_become_lines_with_their_timestamp_and_stream() {
        let mut a = LineAssembler::new();
        a.push_frame(LogStream::Stdout, format!("{TS} hello\n").as_bytes());
        a.push_frame(
            LogStream::Stderr,
            b"2024-05-01T10:00:01.000000000Z oops: bad\n",
        );
        let lines = drain(&mut a);
        assert_eq!(
            lines,
            vec![
                LogLine {
                    ts_nanos: TS_NANOS,
                    stream: LogStream::Stdout,
                    line: "hello".into(),
                    truncated: false
                },
                LogLine {
                    ts_nanos: 1_714_557_601_000_000_000,
                    stream: LogStream::Stderr,
                    line: "oops: bad".into(),
                    truncated: false
                },
            ]
        );
    }

    #[test]
    fn partial_messages_join_under_the_first_timestamp() {
        let mut a = LineAssembler::new();
        a.push_frame(LogStream::Stdout, format!("{TS} first half ").as_bytes());
        // Interleaved stderr does not disturb the stdout partial.
        a.push_frame(LogStream::Stderr, format!("{TS} err\n").as_bytes());
        a.push_frame(
            LogStream::Stdout,
            b"2024-05-01T10:00:00.200000000Z second half\n",
        );
        let lines = drain(&mut a);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].line, "err");
        assert_eq!(lines[1].line, "first half second half");
        assert_eq!(lines[1].ts_nanos, TS_NANOS);
        // A trailing partial is handed on at the end.
        a.push_frame(LogStream::Stdout, format!("{TS} no newline").as_bytes());
        assert!(a.pop().is_none());
        a.finish();
        assert_eq!(a.pop().unwrap().line, "no newline");
    }

    #[test]
    fn long_lines_are_cut_marked_and_bounded() {
        let mut a = LineAssembler::new();
        let chunk = "x".repeat(16 * 1024);
        a.push_frame(LogStream::Stdout, format!("{TS} {chunk}").as_bytes());
        for _ in 0..10 {
            a.push_frame(LogStream::Stdout, format!("{TS} {chunk}").as_bytes());
            let held = a.stdout.as_ref().map_or(0, |p| p.bytes.len());
            assert!(held <= MAX_LOG_LINE + 1, "{held}");
        }
        a.push_frame(LogStream::Stdout, format!("{TS} end\n").as_bytes());
        let line = a.pop().unwrap();
        assert!(line.truncated);
        assert_eq!(line.line.len(), MAX_LOG_LINE);
        assert!(line.line.ends_with(TRUNCATED_MARK));
        assert_eq!(line.ts_nanos, TS_NANOS);

        // Exactly the cap is kept whole.
        let exact = "y".repeat(MAX_LOG_LINE);
        a.push_frame(LogStream::Stdout, format!("{TS} {exact}\n").as_bytes());
        let line = a.pop().unwrap();
        assert!(!line.truncated);
        assert_eq!(line.line, exact);
    }

    #[test]
    fn cutting_again_keeps_one_marker() {
        let (once, _) = cut_line("w".repeat(MAX_LOG_LINE * 2));
        let (twice, cut) = cut_to(once, 4096);
        assert!(cut);
        assert_eq!(twice.len(), 4096);
        assert_eq!(twice.matches(TRUNCATED_MARK).count(), 1);
        assert!(twice.ends_with(TRUNCATED_MARK));
    }

    #[test]
    fn cuts_at_a_character_boundary() {
        let (cut, was) = cut_line("é".repeat(MAX_LOG_LINE));
        assert!(was);
        assert!(cut.len() <= MAX_LOG_LINE);
        assert!(cut.ends_with(TRUNCATED_MARK));
    }

    #[test]
    fn garbage_frames_keep_the_last_timestamp() {
        let mut a = LineAssembler::new();
        a.push_frame(LogStream::Stdout, format!("{TS} a\n").as_bytes());
        a.push_frame(LogStream::Stdout, b"no-timestamp-here\xff\n");
        a.push_frame(LogStream::Stdout, b"two\nlines\n");
        let lines = drain(&mut a);
        let texts: Vec<_> = lines.iter().map(|l| l.line.as_str()).collect();
        assert_eq!(texts, ["a", "no-timestamp-here\u{fffd}", "two", "lines"]);
        assert!(lines.iter().all(|l| l.ts_nanos == TS_NANOS));
    }
}
