//! The worker's durable log spool: segment files of RFC 5425 frames, fsynced per batch, read and acknowledged by the forwarder.
//!
//! Layout of `<data_dir>/spool/`:
//!
//! ```text
//! 00000000000000000000.seg     segment 0: frames `LEN SP ENVELOPE-LINE`, back to back
//! 00000000000000000001.seg     the newest segment is the only one appended to
//! forwarder.offset             `<segment> <byte offset>`: everything before is acknowledged
//! ```
//!
//! The writer ([`Spool`], an [`EventSink`]) and the reader ([`SpoolReader`], the
//! forwarder's side) share nothing but the directory, so they may live in different
//! processes (`decnet collect` and `decnet agent`). The writer appends whole batches with
//! one write and one `fsync`, rolls to a new segment past [`SEGMENT_BYTES`], refuses a
//! batch with [`SinkError::SpoolFull`] once the segments hold [`DEFAULT_CAP`] bytes, and
//! on open truncates a torn last frame left by a crash. The reader hands out complete
//! frames only, each with the [`Position`] just past it; [`SpoolReader::ack`] persists a
//! position atomically (temporary file, fsync, rename) and deletes segments that are
//! entirely acknowledged (never the newest, which the writer may still be appending to).
//!
//! Payloads are forwarding envelope lines ([`envelope_line`], [`event_from_envelope`]),
//! through an [`Encode`] function so tests can spool any text.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use decnet_wire::{rfc5424, rfc5425};

use super::{CollectedEvent, CommitOutcome, EventSink, Origin, SinkError};

/// A segment is rolled once it holds this many bytes.
pub const SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Default cap on the bytes all segments hold together.
pub const DEFAULT_CAP: u64 = 1024 * 1024 * 1024;
/// The acknowledged position's file.
pub const OFFSET_FILE: &str = "forwarder.offset";
/// Suffix of segment files.
pub const SEGMENT_SUFFIX: &str = ".seg";
/// Largest offset file read (two 20-digit numbers and a space).
const MAX_OFFSET_FILE: u64 = 64;
/// Bytes the reader asks the file for at once.
const READ_CHUNK: usize = 256 * 1024;

/// Turns an event into the payload of its frame (the forwarding envelope line).
pub type Encode = Arc<dyn Fn(&CollectedEvent) -> String + Send + Sync>;

/// The forwarding envelope line of `event` (the frame payload the spool stores):
/// [`decnet_wire::rfc5424::wrap`] with the event's key, labels and receive time.
pub fn envelope_line(event: &CollectedEvent) -> String {
    let env = rfc5424::Envelope {
        key: event.key.clone(),
        decky: event.decky.clone(),
        service: event.service.clone(),
        received_micros: event.received.as_unix_micros(),
    };
    rfc5424::wrap(&env, &event.raw_line)
}

/// The event an envelope line carries (the listener's side of [`envelope_line`]).
///
/// # Errors
/// [`rfc5424::EnvelopeError`] when `payload` is not an envelope line.
pub fn event_from_envelope(payload: &str) -> Result<CollectedEvent, rfc5424::EnvelopeError> {
    let (env, raw_line) = rfc5424::unwrap(payload)?;
    Ok(CollectedEvent {
        key: env.key,
        decky: env.decky,
        service: env.service,
        received: decnet_store::Timestamp::from_unix_micros(env.received_micros),
        raw_line,
        claimed: Default::default(),
    })
}

/// The spool's default encoder: [`envelope_line`].
pub fn envelope_encoder() -> Encode {
    Arc::new(envelope_line)
}

/// A place in the spool: a segment number and a byte offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Segment number (its file name).
    pub segment: u64,
    /// Byte offset in the segment.
    pub offset: u64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}

/// Spool limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolOptions {
    /// Cap on the bytes held by all segments ([`DEFAULT_CAP`]).
    pub cap: u64,
    /// Roll threshold of one segment ([`SEGMENT_BYTES`]).
    pub segment_bytes: u64,
}

impl Default for SpoolOptions {
    fn default() -> Self {
        SpoolOptions {
            cap: DEFAULT_CAP,
            segment_bytes: SEGMENT_BYTES,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SinkError + '_ {
    move |source| SinkError::Spool {
        path: path.to_path_buf(),
        source,
    }
}

/// The file name of segment `n`.
pub fn segment_name(n: u64) -> String {
    format!("{n:020}{SEGMENT_SUFFIX}")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir` with their sizes, by number.
fn list_segments(dir: &Path) -> Result<BTreeMap<u64, u64>, SinkError> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let Some(n) = entry.file_name().to_str().and_then(parse_segment_name) else {
            continue;
        };
        match entry.metadata() {
            Ok(m) => {
                out.insert(n, m.len());
            }
            // Deleted by the reader between the listing and the stat.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&entry.path())(e)),
        }
    }
    Ok(out)
}

fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// The length of the longest prefix of `data` made of whole valid frames.
fn complete_prefix(data: &[u8]) -> u64 {
    let mut at = 0usize;
    while let Ok(Some((_, used))) = rfc5425::decode(&data[at..]) {
        at += used;
    }
    at as u64
}

struct Writer {
    file: Option<File>,
    segment: u64,
    size: u64,
    /// Bytes held by all segments as last seen (the reader deletes segments behind our back).
    held: u64,
}

/// The writing side of the spool: an [`EventSink`] whose `commit` returns after the
/// batch's frames are fsynced. Clones share one writer.
#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    opts: SpoolOptions,
    encode: Encode,
    writer: Arc<Mutex<Writer>>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Spool {
    /// Opens (creating) the spool in `dir`; a torn frame at the end of the newest
    /// segment is truncated. `encode` turns an event into its frame payload.
    ///
    /// # Errors
    /// [`SinkError::Spool`].
    pub fn open(dir: &Path, opts: SpoolOptions, encode: Encode) -> Result<Spool, SinkError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let segments = list_segments(dir)?;
        let held: u64 = segments.values().sum();
        let (segment, size) = match segments.last_key_value() {
            Some((&n, &len)) => {
                let path = dir.join(segment_name(n));
                let mut data = Vec::new();
                File::open(&path)
                    .and_then(|mut f| f.read_to_end(&mut data))
                    .map_err(io_err(&path))?;
                let good = complete_prefix(&data);
                if good < len {
                    tracing::warn!(
                        segment = %path.display(),
                        kept = good,
                        dropped = len - good,
                        "Truncating a torn frame at the end of the spool"
                    );
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_err(&path))?;
                    f.set_len(good).map_err(io_err(&path))?;
                    f.sync_all().map_err(io_err(&path))?;
                }
                (n, good)
            }
            // Numbering never goes back behind the acknowledged position, which the
            // reader would otherwise wait at forever.
            None => match read_offset(&dir.join(OFFSET_FILE)) {
                Ok(p) => (p.segment.saturating_add(1), 0),
                Err(_) => (0, 0),
            },
        };
        Ok(Spool {
            dir: dir.to_path_buf(),
            opts,
            encode,
            writer: Arc::new(Mutex::new(Writer {
                file: None,
                segment,
                size,
                held: held.saturating_sub(segments.last_key_value().map_or(0, |(_, &l)| l)) + size,
            })),
        })
    }

    /// The spool directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends already-encoded payloads as one fsynced write; returns how many were
    /// written (payloads that cannot be framed — empty or above the frame cap — are
    /// skipped with a warning).
    ///
    /// # Errors
    /// [`SinkError::SpoolFull`] when the cap would be exceeded; [`SinkError::Spool`].
    pub fn append_blocking(&self, payloads: &[String]) -> Result<u64, SinkError> {
        let mut bytes = Vec::with_capacity(payloads.iter().map(|p| p.len() + 7).sum());
        let mut written = 0;
        for p in payloads {
            match rfc5425::encode(p.as_bytes(), &mut bytes) {
                Ok(()) => written += 1,
                Err(e) => {
                    tracing::warn!(error = %e, len = p.len(), "Event cannot be spooled: skipped");
                }
            }
        }
        if bytes.is_empty() {
            return Ok(written);
        }
        let mut w = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.append_locked(&mut w, &bytes)?;
        Ok(written)
    }

    fn append_locked(&self, w: &mut Writer, bytes: &[u8]) -> Result<(), SinkError> {
        let len = bytes.len() as u64;
        if w.held + len > self.opts.cap {
            // The reader may have deleted acknowledged segments since we last looked.
            w.held = list_segments(&self.dir)?.values().sum();
            if w.held + len > self.opts.cap {
                return Err(SinkError::SpoolFull { bytes: w.held });
            }
        }
        if w.size > 0 && w.size + len > self.opts.segment_bytes {
            w.file = None;
            w.segment += 1;
            w.size = 0;
        }
        let path = self.dir.join(segment_name(w.segment));
        if w.file.is_none() {
            let created = !path.exists();
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            if created {
                f.sync_all().map_err(io_err(&path))?;
                sync_dir(&self.dir)?;
            }
            w.file = Some(f);
        }
        let Some(f) = w.file.as_mut() else {
            return Ok(());
        };
        let res = f.write_all(bytes).and_then(|()| f.sync_data());
        if let Err(e) = res {
            // Whatever reached the file may be a torn frame: cut back to the last good end.
            w.file = None;
            if let Ok(f) = OpenOptions::new().write(true).open(&path) {
                let _ = f.set_len(w.size);
            }
            return Err(io_err(&path)(e));
        }
        w.size += len;
        w.held += len;
        Ok(())
    }
}

#[async_trait]
impl EventSink for Spool {
    /// Appends the batch as envelope frames; the origin is ignored (a worker's events
    /// are always its own collector's).
    async fn commit(
        &self,
        _origin: &Origin,
        batch: &[CollectedEvent],
    ) -> Result<CommitOutcome, SinkError> {
        let payloads: Vec<String> = batch.iter().map(|e| (self.encode)(e)).collect();
        let this = self.clone();
        let written = tokio::task::spawn_blocking(move || this.append_blocking(&payloads))
            .await
            .map_err(|e| SinkError::Spool {
                path: self.dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })??;
        Ok(CommitOutcome {
            inserted: written,
            duplicates: 0,
        })
    }
}

/// One spooled frame handed to the forwarder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledFrame {
    /// The payload (an envelope line).
    pub payload: Vec<u8>,
    /// The position just past this frame: acknowledging it acknowledges the frame.
    pub end: Position,
}

/// The forwarder's side of the spool: reads complete frames from a cursor, persists the
/// acknowledged position.
#[derive(Debug)]
pub struct SpoolReader {
    dir: PathBuf,
    acked: Position,
    /// Where the next frame is read: segment, and the file offset of `buf[0]`.
    cursor: Position,
    file: Option<File>,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out.
    used: usize,
}

impl SpoolReader {
    /// Opens the reading side of the spool in `dir` (created when missing) at the
    /// persisted acknowledged position.
    ///
    /// # Errors
    /// [`SinkError::Spool`] for IO errors; an unreadable offset file is reported and
    /// replaced by the start of the oldest segment.
    pub fn open(dir: &Path) -> Result<SpoolReader, SinkError> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(OFFSET_FILE);
        let acked = match read_offset(&path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Position::default(),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "Unreadable spool offset: starting at the oldest segment");
                Position::default()
            }
        };
        let mut r = SpoolReader {
            dir: dir.to_path_buf(),
            acked,
            cursor: acked,
            file: None,
            buf: Vec::new(),
            used: 0,
        };
        r.normalize()?;
        r.acked = r.cursor;
        Ok(r)
    }

    /// The acknowledged position.
    pub fn acked(&self) -> Position {
        self.acked
    }

    /// Where the next frame will be read.
    pub fn cursor(&self) -> Position {
        self.cursor_at_used()
    }

    fn cursor_at_used(&self) -> Position {
        Position {
            segment: self.cursor.segment,
            offset: self.cursor.offset + self.used as u64,
        }
    }

    /// Moves the read cursor back to the acknowledged position (after a reconnect:
    /// unacknowledged frames are sent again).
    pub fn rewind(&mut self) {
        self.cursor = self.acked;
        self.file = None;
        self.buf.clear();
        self.used = 0;
    }

    /// A cursor pointing at a missing segment moves to the oldest segment at or after it.
    fn normalize(&mut self) -> Result<(), SinkError> {
        let segments = list_segments(&self.dir)?;
        if segments.contains_key(&self.cursor.segment) {
            return Ok(());
        }
        if let Some((&n, _)) = segments.range(self.cursor.segment..).next() {
            self.cursor = Position {
                segment: n,
                offset: 0,
            };
        }
        Ok(())
    }

    /// Appends up to `max` complete frames from the cursor to `out`; returns how many.
    /// Zero means nothing new is spooled yet.
    ///
    /// # Errors
    /// [`SinkError::Spool`].
    pub fn read(&mut self, max: usize, out: &mut Vec<SpooledFrame>) -> Result<usize, SinkError> {
        let mut n = 0;
        let mut advanced = true;
        while n < max {
            match rfc5425::decode(&self.buf[self.used..]) {
                Ok(Some((range, used))) => {
                    let start = self.used;
                    self.used += used;
                    out.push(SpooledFrame {
                        payload: self.buf[start + range.start..start + range.end].to_vec(),
                        end: self.cursor_at_used(),
                    });
                    n += 1;
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    let at = self.cursor_at_used();
                    tracing::error!(segment = at.segment, offset = at.offset, error = %e, "Corrupt spool segment: skipping its remainder");
                    self.next_segment_or_stay(true)?;
                    continue;
                }
            }
            if !advanced {
                // A partial frame at the end: the writer is mid-append, or crashed and
                // will truncate it on restart. Forget it and read from the frame
                // boundary next time.
                self.buf.truncate(self.used);
                self.file = None;
                break;
            }
            advanced = self.fill()?;
            if !advanced && self.buf.len() == self.used {
                // End of this segment's data: move on when a newer segment exists.
                advanced = self.next_segment_or_stay(false)?;
            }
        }
        Ok(n)
    }

    /// Reads more of the current segment into the buffer; false at its end.
    fn fill(&mut self) -> Result<bool, SinkError> {
        if self.used > 0 {
            self.buf.drain(..self.used);
            self.cursor.offset += self.used as u64;
            self.used = 0;
        }
        let path = self.dir.join(segment_name(self.cursor.segment));
        if self.file.is_none() {
            let mut f = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(io_err(&path)(e)),
            };
            let at = self.cursor.offset + self.buf.len() as u64;
            f.seek(SeekFrom::Start(at)).map_err(io_err(&path))?;
            self.file = Some(f);
        }
        let Some(f) = self.file.as_mut() else {
            return Ok(false);
        };
        let old = self.buf.len();
        self.buf.resize(old + READ_CHUNK, 0);
        let got = f.read(&mut self.buf[old..]).map_err(io_err(&path));
        let got = match got {
            Ok(g) => g,
            Err(e) => {
                self.buf.truncate(old);
                return Err(e);
            }
        };
        self.buf.truncate(old + got);
        Ok(got > 0)
    }

    /// Moves to the next segment if one exists (`force`: also when bytes remain in
    /// this one, which is corrupt); true when it moved.
    fn next_segment_or_stay(&mut self, force: bool) -> Result<bool, SinkError> {
        let segments = list_segments(&self.dir)?;
        let Some((&next, _)) = segments.range(self.cursor.segment + 1..).next() else {
            if force {
                // Nothing newer: drop the bad bytes and wait at the end of this segment.
                self.cursor.offset += self.buf.len() as u64;
                self.buf.clear();
                self.used = 0;
            }
            return Ok(false);
        };
        if !force && self.buf.len() > self.used {
            return Ok(false);
        }
        // A segment is complete once a newer one exists: re-read its end once more so
        // frames appended just before the roll are not skipped.
        if !force && self.fill()? {
            return Ok(true);
        }
        self.cursor = Position {
            segment: next,
            offset: 0,
        };
        self.file = None;
        self.buf.clear();
        self.used = 0;
        Ok(true)
    }

    /// Persists `pos` as acknowledged (temporary file, fsync, rename, directory fsync)
    /// and deletes the segments before it.
    ///
    /// # Errors
    /// [`SinkError::Spool`].
    pub fn ack(&mut self, pos: Position) -> Result<(), SinkError> {
        if pos <= self.acked {
            return Ok(());
        }
        let path = self.dir.join(OFFSET_FILE);
        let tmp = self.dir.join(format!("{OFFSET_FILE}.tmp"));
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            writeln!(f, "{} {}", pos.segment, pos.offset).map_err(io_err(&tmp))?;
            f.sync_all().map_err(io_err(&tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
        sync_dir(&self.dir)?;
        let old = self.acked.segment;
        self.acked = pos;
        if pos.segment > old {
            for (n, _) in list_segments(&self.dir)?.range(..pos.segment) {
                let seg = self.dir.join(segment_name(*n));
                match std::fs::remove_file(&seg) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&seg)(e)),
                }
            }
        }
        Ok(())
    }
}

fn read_offset(path: &Path) -> std::io::Result<Position> {
    let f = File::open(path)?;
    let mut text = String::new();
    f.take(MAX_OFFSET_FILE).read_to_string(&mut text)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not `<segment> <offset>`");
    let mut parts = text.split_ascii_whitespace();
    let segment = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let offset = parts.next().and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(Position { segment, offset })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use decnet_store::Timestamp;

    fn plain() -> Encode {
        Arc::new(|e: &CollectedEvent| format!("{} {}", e.key, e.raw_line))
    }

    fn ev(i: usize) -> CollectedEvent {
        CollectedEvent {
            key: format!("{i:08x}"),
            decky: "web-01".into(),
            service: "ssh".into(),
            received: Timestamp::from_unix_seconds(1_700_000_000),
            raw_line: format!("line number {i}"),
            claimed: Default::default(),
        }
    }

    fn read_all(r: &mut SpoolReader) -> Vec<SpooledFrame> {
        let mut out = Vec::new();
        while r.read(1000, &mut out).unwrap() > 0 {}
        out
    }

    fn text(f: &SpooledFrame) -> String {
        String::from_utf8(f.payload.clone()).unwrap()
    }

    #[tokio::test]
    async fn frames_are_read_back_in_order_and_acks_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolOptions::default(), plain()).unwrap();
        let batch: Vec<_> = (0..10).map(ev).collect();
        let out = spool.commit(&Origin::Local, &batch).await.unwrap();
        assert_eq!(out.inserted, 10);
        let mut r = SpoolReader::open(dir.path()).unwrap();
        let frames = read_all(&mut r);
        assert_eq!(frames.len(), 10);
        assert_eq!(text(&frames[3]), "00000003 line number 3");
        r.ack(frames[4].end).unwrap();
        drop(r);
        let mut r = SpoolReader::open(dir.path()).unwrap();
        assert_eq!(r.acked(), frames[4].end);
        let rest = read_all(&mut r);
        assert_eq!(rest.len(), 5);
        assert_eq!(text(&rest[0]), "00000005 line number 5");
        // Rewinding re-reads what is not acknowledged.
        r.rewind();
        assert_eq!(read_all(&mut r).len(), 5);
        // New events appended later are picked up by the same reader.
        spool.commit(&Origin::Local, &[ev(10)]).await.unwrap();
        let more = read_all(&mut r);
        assert_eq!(more.len(), 1);
        assert_eq!(text(&more[0]), "0000000a line number 10");
    }

    #[tokio::test]
    async fn segments_roll_and_acknowledged_ones_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SpoolOptions {
            cap: 1 << 20,
            segment_bytes: 100,
        };
        let spool = Spool::open(dir.path(), opts, plain()).unwrap();
        for i in 0..20 {
            spool.commit(&Origin::Local, &[ev(i)]).await.unwrap();
        }
        let segs = list_segments(dir.path()).unwrap();
        assert!(segs.len() >= 5, "{segs:?}");
        let mut r = SpoolReader::open(dir.path()).unwrap();
        let frames = read_all(&mut r);
        let texts: Vec<_> = frames.iter().map(text).collect();
        let want: Vec<_> = (0..20).map(|i| (plain())(&ev(i))).collect();
        assert_eq!(texts, want);
        r.ack(frames[19].end).unwrap();
        // Only the newest segment is left (the writer may still append to it).
        let left = list_segments(dir.path()).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left.keys().next(), Some(&frames[19].end.segment));
        spool.commit(&Origin::Local, &[ev(20)]).await.unwrap();
        let more = read_all(&mut r);
        assert_eq!(more.len(), 1);
    }

    #[tokio::test]
    async fn a_torn_tail_is_truncated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let spool = Spool::open(dir.path(), SpoolOptions::default(), plain()).unwrap();
            spool.commit(&Origin::Local, &[ev(0), ev(1)]).await.unwrap();
        }
        let seg = dir.path().join(segment_name(0));
        let good = std::fs::metadata(&seg).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"40 half a fra").unwrap();
        drop(f);
        // The reader never hands out the torn frame.
        let mut r = SpoolReader::open(dir.path()).unwrap();
        assert_eq!(read_all(&mut r).len(), 2);
        let spool = Spool::open(dir.path(), SpoolOptions::default(), plain()).unwrap();
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), good);
        spool.commit(&Origin::Local, &[ev(2)]).await.unwrap();
        let frames = read_all(&mut r);
        assert_eq!(frames.len(), 1);
        assert_eq!(text(&frames[0]), "00000002 line number 2");
    }

    #[tokio::test]
    async fn the_cap_refuses_until_the_forwarder_catches_up() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SpoolOptions {
            cap: 200,
            segment_bytes: 60,
        };
        let spool = Spool::open(dir.path(), opts, plain()).unwrap();
        let mut n = 0;
        let full = loop {
            match spool.commit(&Origin::Local, &[ev(n)]).await {
                Ok(_) => n += 1,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(full, SinkError::SpoolFull { bytes } if bytes <= 200),
            "{full:?}"
        );
        assert!(n >= 4);
        let mut r = SpoolReader::open(dir.path()).unwrap();
        let frames = read_all(&mut r);
        assert_eq!(frames.len(), n);
        r.ack(frames[n - 1].end).unwrap();
        spool.commit(&Origin::Local, &[ev(n)]).await.unwrap();
        let more = read_all(&mut r);
        assert_eq!(text(&more[0]), (plain())(&ev(n)));
    }

    #[tokio::test]
    async fn the_default_encoder_spools_envelope_lines_that_give_the_event_back() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolOptions::default(), envelope_encoder()).unwrap();
        let mut events = vec![ev(1), ev(2)];
        events[1].raw_line =
            "<38>1 2026-11-27T07:00:00.5Z web-01 ssh - login [relay@55555 src_ip=\"10.0.0.9\"] hi"
                .into();
        spool.commit(&Origin::Local, &events).await.unwrap();
        let mut r = SpoolReader::open(dir.path()).unwrap();
        let frames = read_all(&mut r);
        let back: Vec<_> = frames
            .iter()
            .map(|f| event_from_envelope(&text(f)).unwrap())
            .collect();
        assert_eq!(back, events);
        assert!(event_from_envelope("00000001 line number 1").is_err());
    }

    #[test]
    fn a_garbled_offset_file_starts_from_the_oldest_segment() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), SpoolOptions::default(), plain()).unwrap();
        spool.append_blocking(&["a".into(), "b".into()]).unwrap();
        std::fs::write(dir.path().join(OFFSET_FILE), "garbage").unwrap();
        let mut r = SpoolReader::open(dir.path()).unwrap();
        assert_eq!(r.acked(), Position::default());
        assert_eq!(read_all(&mut r).len(), 2);
        // An empty and an oversized payload are skipped, not written.
        assert_eq!(
            spool
                .append_blocking(&[
                    String::new(),
                    "x".repeat(rfc5425::MAX_FRAME + 1),
                    "c".into()
                ])
                .unwrap(),
            1
        );
        assert_eq!(read_all(&mut r).len(), 1);
    }
}
