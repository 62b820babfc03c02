//! Session transcripts: asciinema v2 style JSON lines per login, size-capped, written
//! under `<artifacts_dir>/transcripts/<sid>.cast`, and the `session_recorded` event.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::Rng;

use crate::event::{Event, kind};

/// Default cap of one recording.
pub const MAX_TRANSCRIPT_BYTES: u64 = 10 * 1024 * 1024;
/// Longest TERM value kept in the header.
pub const MAX_TERM: usize = 64;

/// Direction of one recorded chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// What the attacker typed.
    Input,
    /// What the attacker saw.
    Output,
}

/// One session's recording.
pub struct Recorder {
    sid: String,
    service: &'static str,
    peer: SocketAddr,
    started: Instant,
    out: Option<BufWriter<File>>,
    path: Option<PathBuf>,
    bytes: u64,
    cap: u64,
    truncated: bool,
}

/// A fresh session id: 16 hex characters from the OS generator (never from input).
pub fn new_sid() -> String {
    let n: u64 = rand::thread_rng().r#gen();
    format!("{n:016x}")
}

/// Keeps printable ASCII of a TERM value (it is attacker-supplied).
fn clean_term(term: &str) -> String {
    term.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'))
        .take(MAX_TERM)
        .collect()
}

impl Recorder {
    /// Starts a recording. Without an artifacts directory (or when it cannot be created)
    /// nothing is written but the session is still measured for `session_recorded`.
    pub fn start(
        artifacts_dir: Option<&Path>,
        service: &'static str,
        peer: SocketAddr,
        width: u32,
        height: u32,
        term: &str,
        unix_now: i64,
    ) -> Recorder {
        let sid = new_sid();
        let mut rec = Recorder {
            sid,
            service,
            peer,
            started: Instant::now(),
            out: None,
            path: None,
            bytes: 0,
            cap: MAX_TRANSCRIPT_BYTES,
            truncated: false,
        };
        if let Some(dir) = artifacts_dir {
            let dir = dir.join("transcripts");
            let path = dir.join(format!("{}.cast", rec.sid));
            let opened = fs::create_dir_all(&dir)
                .and_then(|()| File::options().create_new(true).write(true).open(&path));
            match opened {
                Ok(file) => {
                    rec.out = Some(BufWriter::new(file));
                    rec.path = Some(path);
                    let header = serde_json::json!({
                        "version": 2,
                        "width": width.min(10_000),
                        "height": height.min(10_000),
                        "timestamp": unix_now,
                        "sid": rec.sid,
                        "service": service,
                        "env": {"TERM": clean_term(term), "SHELL": "/bin/bash"},
                    });
                    rec.write_line(&header.to_string());
                }
                Err(e) => eprintln!("decnet-decky: transcript {}: {e}", path.display()),
            }
        }
        rec
    }

    /// Sets a smaller cap (tests).
    pub fn with_cap(mut self, cap: u64) -> Self {
        self.cap = cap;
        self
    }

    /// The session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Where the recording goes, if anywhere.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn write_line(&mut self, line: &str) {
        let Some(out) = self.out.as_mut() else {
            return;
        };
        if out
            .write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .is_err()
        {
            self.out = None;
        }
        self.bytes += line.len() as u64 + 1;
    }

    fn event(&mut self, code: &str, data: &str) {
        let t = self.started.elapsed().as_secs_f64();
        let line = serde_json::json!([(t * 1e6).round() / 1e6, code, data]).to_string();
        if self.truncated {
            return;
        }
        if self.bytes + line.len() as u64 + 1 > self.cap {
            self.truncated = true;
            let marker = serde_json::json!([(t * 1e6).round() / 1e6, "m", "truncated"]).to_string();
            self.write_line(&marker);
            return;
        }
        self.write_line(&line);
    }

    /// Records bytes typed (`Input`) or shown (`Output`).
    pub fn record(&mut self, stream: Stream, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(data);
        let code = match stream {
            Stream::Input => "i",
            Stream::Output => "o",
        };
        self.event(code, &text);
    }

    /// Records a terminal resize.
    pub fn resize(&mut self, width: u32, height: u32) {
        self.event(
            "r",
            &format!("{}x{}", width.min(10_000), height.min(10_000)),
        );
    }

    /// Ends the recording and returns the `session_recorded` event.
    pub fn finish(mut self) -> Event {
        if let Some(mut out) = self.out.take() {
            let _ = out.flush();
        }
        let duration = self.started.elapsed().as_secs_f64();
        let mut event = Event::from_peer(kind::SESSION_RECORDED, self.peer)
            .field("sid", self.sid.clone())
            .field("service", self.service)
            .field("duration_s", format!("{duration:.3}"))
            .field("bytes", self.bytes.to_string())
            .field("truncated", self.truncated.to_string());
        if let Some(path) = &self.path
            && let Some(name) = path.file_name()
        {
            event = event.field("file", format!("transcripts/{}", name.to_string_lossy()));
        }
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "198.51.100.3:4444".parse().unwrap()
    }

    #[test]
    fn writes_asciinema_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::start(
            Some(dir.path()),
            "ssh",
            peer(),
            120,
            40,
            "xterm\u{1b}]evil",
            1_700_000_000,
        );
        rec.record(Stream::Output, b"root@h:~# ");
        rec.record(Stream::Input, b"id\r");
        rec.resize(100, 30);
        let path = rec.path().unwrap().to_owned();
        let sid = rec.sid().to_owned();
        let event = rec.finish();
        assert_eq!(
            path,
            dir.path().join("transcripts").join(format!("{sid}.cast"))
        );
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["version"], 2);
        assert_eq!(lines[0]["width"], 120);
        assert_eq!(lines[0]["sid"], sid.as_str());
        assert_eq!(lines[0]["env"]["TERM"], "xtermevil");
        assert_eq!(lines[1][1], "o");
        assert_eq!(lines[1][2], "root@h:~# ");
        assert_eq!(lines[2][1], "i");
        assert_eq!(lines[3][1], "r");
        assert_eq!(lines[3][2], "100x30");
        assert_eq!(event.kind, kind::SESSION_RECORDED);
        assert_eq!(event.get("sid"), Some(sid.as_str()));
        assert_eq!(event.get("bytes"), Some(text.len().to_string().as_str()));
        assert_eq!(event.get("truncated"), Some("false"));
        assert_eq!(event.get("src_ip"), Some("198.51.100.3"));
    }

    #[test]
    fn cap_truncates_with_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec =
            Recorder::start(Some(dir.path()), "telnet", peer(), 80, 24, "vt100", 0).with_cap(2_000);
        for _ in 0..100 {
            rec.record(Stream::Output, &[b'x'; 100]);
        }
        let path = rec.path().unwrap().to_owned();
        let event = rec.finish();
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.len() <= 2_000 + 64, "{}", text.len());
        assert!(text.trim_end().ends_with("\"m\",\"truncated\"]"), "{text}");
        assert_eq!(event.get("truncated"), Some("true"));
    }

    #[test]
    fn no_directory_still_reports() {
        let mut rec = Recorder::start(None, "ssh", peer(), 80, 24, "xterm", 0);
        rec.record(Stream::Output, b"hello");
        assert!(rec.path().is_none());
        let event = rec.finish();
        assert_eq!(event.get("bytes"), Some("0"));
        assert!(event.get("file").is_none());
    }
}
