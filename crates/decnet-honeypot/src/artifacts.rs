//! Size-capped artifact files (mail, uploads): named only from our own time stamp and
//! content hash, never from attacker input.
//!
//! An [`ArtifactWriter`] owns one directory (`<artifacts_dir>/<service>/`). A
//! [`PendingArtifact`] streams bytes into a hidden part file while hashing them; past the
//! cap it stops writing and only counts, so a hostile peer cannot fill the disk through
//! one artifact. [`PendingArtifact::finish`] renames the part file to
//! `<UTC time>_<sha256[..12]>.<ext>`; dropping an unfinished artifact deletes its part
//! file.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::Error;

/// Part files written at once by one process get distinct names from this counter.
static NEXT_PART: AtomicU64 = AtomicU64::new(0);

/// Writes artifacts of one service into one directory.
#[derive(Debug, Clone)]
pub struct ArtifactWriter {
    dir: PathBuf,
    max_bytes: u64,
}

/// A stored artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// File name inside the writer's directory (our own name).
    pub name: String,
    /// Full path.
    pub path: PathBuf,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
    /// Bytes stored.
    pub size: u64,
}

impl ArtifactWriter {
    /// A writer for `<root>/<service>/`, keeping at most `max_bytes` per artifact. The
    /// directory is created when missing.
    ///
    /// # Errors
    /// [`Error::Io`] when the directory cannot be created.
    pub fn new(root: &Path, service: &str, max_bytes: u64) -> Result<Self, Error> {
        // `service` is a catalogue slug, never client input; refuse anything else anyway.
        if service.is_empty()
            || !service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::Config(format!(
                "bad artifact service name {service:?}"
            )));
        }
        let dir = root.join(service);
        fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: format!("create {}", dir.display()),
            source,
        })?;
        Ok(ArtifactWriter { dir, max_bytes })
    }

    /// The directory artifacts go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The per-artifact cap.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Starts a new artifact with file extension `ext` (ours: `eml`, `bin`, ...).
    ///
    /// # Errors
    /// [`Error::Io`] when the part file cannot be created.
    pub fn begin(&self, ext: &'static str) -> Result<PendingArtifact, Error> {
        let n = NEXT_PART.fetch_add(1, Ordering::Relaxed);
        let part = self.dir.join(format!(".part-{}-{n}", std::process::id()));
        let file = File::create(&part).map_err(|source| Error::Io {
            action: format!("create {}", part.display()),
            source,
        })?;
        Ok(PendingArtifact {
            dir: self.dir.clone(),
            part: Some(part),
            file: Some(file),
            ext,
            hasher: Sha256::new(),
            written: 0,
            seen: 0,
            max_bytes: self.max_bytes,
        })
    }
}

/// An artifact being written.
#[derive(Debug)]
pub struct PendingArtifact {
    dir: PathBuf,
    part: Option<PathBuf>,
    file: Option<File>,
    ext: &'static str,
    hasher: Sha256,
    written: u64,
    seen: u64,
    max_bytes: u64,
}

impl PendingArtifact {
    /// Appends bytes; bytes past the cap are only counted.
    ///
    /// # Errors
    /// [`Error::Io`] when the write fails (the artifact is then abandoned).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.seen += bytes.len() as u64;
        let room = self.max_bytes.saturating_sub(self.written);
        let take = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if take == 0 {
            return Ok(());
        }
        let chunk = &bytes[..take];
        if let Some(file) = self.file.as_mut() {
            file.write_all(chunk).map_err(|source| Error::Io {
                action: "write artifact".into(),
                source,
            })?;
        }
        self.hasher.update(chunk);
        self.written += take as u64;
        Ok(())
    }

    /// Bytes offered so far (stored or not).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Whether more bytes were offered than the cap allows.
    pub fn over_cap(&self) -> bool {
        self.seen > self.max_bytes
    }

    /// Moves the part file to its final name.
    ///
    /// # Errors
    /// [`Error::Io`] when flushing or renaming fails.
    pub fn finish(mut self) -> Result<Stored, Error> {
        let (Some(part), Some(file)) = (self.part.take(), self.file.take()) else {
            return Err(Error::Config("artifact already finished".into()));
        };
        let io = |action: String| move |source| Error::Io { action, source };
        file.sync_data()
            .map_err(io(format!("flush {}", part.display())))?;
        drop(file);
        let sha256 = hex::encode(std::mem::take(&mut self.hasher).finalize());
        let now = OffsetDateTime::now_utc();
        let name = format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}_{}.{}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            &sha256[..12],
            self.ext
        );
        let path = self.dir.join(&name);
        fs::rename(&part, &path).map_err(io(format!("rename {}", part.display())))?;
        Ok(Stored {
            name,
            path,
            sha256,
            size: self.written,
        })
    }

    /// The SHA-256 of what was stored so far, without storing (for callers that discard).
    pub fn abandon(mut self) -> (String, u64) {
        let sha = hex::encode(std::mem::take(&mut self.hasher).finalize());
        (sha, self.written)
    }
}

impl Drop for PendingArtifact {
    fn drop(&mut self) {
        self.file.take();
        if let Some(part) = self.part.take() {
            let _ = fs::remove_file(part);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_under_our_own_name_and_caps_size() {
        let root = tempfile::tempdir().unwrap();
        let w = ArtifactWriter::new(root.path(), "smtp", 10).unwrap();
        let mut a = w.begin("eml").unwrap();
        a.write(b"hello ").unwrap();
        a.write(b"world, this is long").unwrap();
        assert!(a.over_cap());
        assert_eq!(a.seen(), 25);
        let stored = a.finish().unwrap();
        assert_eq!(stored.size, 10);
        assert_eq!(fs::read(&stored.path).unwrap(), b"hello worl");
        assert_eq!(stored.sha256, hex::encode(Sha256::digest(b"hello worl")));
        assert!(
            stored
                .name
                .ends_with(&format!("_{}.eml", &stored.sha256[..12]))
        );
        assert_eq!(stored.path.parent().unwrap(), root.path().join("smtp"));
        // Only the final file remains.
        assert_eq!(fs::read_dir(w.dir()).unwrap().count(), 1);
    }

    #[test]
    fn dropped_artifacts_leave_nothing() {
        let root = tempfile::tempdir().unwrap();
        let w = ArtifactWriter::new(root.path(), "smtp", 10).unwrap();
        let mut a = w.begin("eml").unwrap();
        a.write(b"x").unwrap();
        drop(a);
        assert_eq!(fs::read_dir(w.dir()).unwrap().count(), 0);
        assert!(ArtifactWriter::new(root.path(), "../etc", 10).is_err());
    }
}
