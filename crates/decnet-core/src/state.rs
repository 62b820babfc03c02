//! `decnet-state.json`: the fleet intent of this host, written atomically under a lock.
//!
//! This module is the only writer of the file. Files written by the reference (no
//! `schema_version`, no `host_uuid`) load unchanged and are upgraded on the next write.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::model::DecnetConfig;

/// Current state-file schema. Version 0 is the reference's unversioned format.
pub const SCHEMA_VERSION: u32 = 1;
/// Largest state file read (a 4096-decky fleet is far below this).
pub const MAX_STATE_BYTES: u64 = 64 * 1024 * 1024;

/// The content of `decnet-state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// Format version; absent in reference files (read as 0).
    #[serde(default)]
    pub schema_version: u32,
    /// The deployed fleet.
    pub config: DecnetConfig,
    /// Path of the compose export of this fleet.
    pub compose_path: PathBuf,
    /// Seed the fleet was planned with, so planning the same description again (without
    /// an explicit seed) gives the same fleet. Absent in reference files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

impl State {
    /// A state for `config` at the current schema version.
    pub fn new(config: DecnetConfig, compose_path: PathBuf) -> Self {
        State {
            schema_version: SCHEMA_VERSION,
            config,
            compose_path,
            seed: None,
        }
    }

    /// The same state, recording the plan's seed.
    #[must_use]
    pub fn with_seed(mut self, seed: Option<u64>) -> Self {
        self.seed = seed;
        self
    }
}

/// Parses state-file text. `path` is only used in error messages.
///
/// # Errors
/// [`Error::StateFormat`] with serde's line and column, or naming a schema version newer
/// than this build understands.
pub fn parse_state(path: &Path, text: &str) -> Result<State, Error> {
    let state: State = serde_json::from_str(text).map_err(|e| Error::StateFormat {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    if state.schema_version > SCHEMA_VERSION {
        return Err(Error::StateFormat {
            path: path.to_path_buf(),
            reason: format!(
                "schema_version {} was written by a newer DECNET (this build reads up to {SCHEMA_VERSION})",
                state.schema_version
            ),
        });
    }
    Ok(state)
}

/// Reads the state file; `Ok(None)` when it does not exist ("nothing deployed").
///
/// # Errors
/// [`Error::Io`] when it cannot be read, [`Error::StateFormat`] when it cannot be parsed.
pub fn load(path: &Path) -> Result<Option<State>, Error> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    if meta.len() > MAX_STATE_BYTES {
        return Err(Error::StateFormat {
            path: path.to_path_buf(),
            reason: format!(
                "{} bytes is larger than the {MAX_STATE_BYTES}-byte limit",
                meta.len()
            ),
        });
    }
    let text = fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
    parse_state(path, &text).map(Some)
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    path.with_file_name(name)
}

/// An exclusive hold on the state file; released on drop.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the exclusive lock next to `path`, creating the directory if needed.
    ///
    /// # Errors
    /// [`Error::Io`] when the lock file cannot be created or locked.
    pub fn acquire(path: &Path) -> Result<Self, Error> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        }
        let lock = lock_path(path);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|e| Error::io("open lock", &lock, e))?;
        file.lock().map_err(|e| Error::io("lock", &lock, e))?;
        Ok(StateLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Reads the state under the lock.
    ///
    /// # Errors
    /// As [`load`].
    pub fn load(&self) -> Result<Option<State>, Error> {
        load(&self.path)
    }

    /// Writes `state` atomically: a temporary file in the same directory, fsync, rename,
    /// fsync of the directory. Always writes the current schema version.
    ///
    /// # Errors
    /// [`Error::Io`] naming the step that failed; the old file is then left intact.
    pub fn save(&self, state: &State) -> Result<(), Error> {
        let mut state = state.clone();
        state.schema_version = SCHEMA_VERSION;
        let mut text = serde_json::to_string_pretty(&state).map_err(|e| Error::StateFormat {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        text.push('\n');
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = self
            .path
            .with_extension(format!("json.tmp.{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            File::open(dir)?.sync_all()
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&tmp);
            Error::io("write", &self.path, e)
        })
    }

    /// Removes the state file ("nothing deployed").
    ///
    /// # Errors
    /// [`Error::Io`] unless the file is already gone.
    pub fn clear(&self) -> Result<(), Error> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &self.path, e)),
        }
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state file as the Python reference writes it: no schema_version, no host_uuid.
    pub(crate) const LEGACY: &str = r#"{
  "config": {
    "mode": "unihost",
    "interface": "eth0",
    "subnet": "192.168.1.0/24",
    "gateway": "192.168.1.1",
    "deckies": [
      {
        "name": "decky-01",
        "ip": "192.168.1.10",
        "services": ["ssh", "http"],
        "distro": "debian",
        "base_image": "debian:bookworm-slim",
        "build_base": "debian:bookworm-slim",
        "hostname": "SRV-ATLAS-42",
        "archetype": "linux-server",
        "service_config": {"http": {"server_header": "nginx/1.22.1", "response_code": 403}},
        "nmap_os": "linux",
        "mutate_interval": 30,
        "last_mutated": 1714000000.5,
        "last_login_attempt": 0.0
      }
    ],
    "log_file": "/var/log/decnet/decnet.log",
    "ipvlan": false,
    "mutate_interval": 30
  },
  "compose_path": "decnet-compose.yml"
}"#;

    #[test]
    fn legacy_file_loads_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decnet-state.json");
        fs::write(&path, LEGACY).unwrap();
        let state = load(&path).unwrap().unwrap();
        assert_eq!(state.schema_version, 0);
        assert_eq!(state.config.deckies[0].host_uuid, None);
        assert_eq!(state.config.deckies[0].last_mutated, 1714000000.5);

        let lock = StateLock::acquire(&path).unwrap();
        lock.save(&state).unwrap();
        drop(lock);
        let written: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let original: serde_json::Value = serde_json::from_str(LEGACY).unwrap();
        assert_eq!(written["schema_version"], 1);
        // Every field of the reference survives with its value; host_uuid is added as null.
        let (w, o) = (
            &written["config"]["deckies"][0],
            &original["config"]["deckies"][0],
        );
        for (k, v) in o.as_object().unwrap() {
            assert_eq!(&w[k], v, "field {k}");
        }
        assert_eq!(w["host_uuid"], serde_json::Value::Null);
        for k in [
            "mode",
            "interface",
            "subnet",
            "gateway",
            "log_file",
            "ipvlan",
            "mutate_interval",
        ] {
            assert_eq!(written["config"][k], original["config"][k], "field {k}");
        }
        assert_eq!(written["compose_path"], original["compose_path"]);
        let again = load(&path).unwrap().unwrap();
        assert_eq!(again.config, state.config);
    }

    #[test]
    fn swarm_assignments_survive() {
        let mut v: serde_json::Value = serde_json::from_str(LEGACY).unwrap();
        v["config"]["mode"] = "swarm".into();
        v["config"]["deckies"][0]["host_uuid"] = "2b7c1a4e-worker".into();
        let state = parse_state(Path::new("s.json"), &v.to_string()).unwrap();
        assert_eq!(state.config.deckies[0].host().as_str(), "2b7c1a4e-worker");
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(parse_state(Path::new("s.json"), &text).unwrap(), state);
    }

    #[test]
    fn precise_errors() {
        let mut v: serde_json::Value = serde_json::from_str(LEGACY).unwrap();
        v["config"]["deckies"][0]["surprise"] = 1.into();
        let err = parse_state(Path::new("s.json"), &v.to_string())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("state file s.json") && err.contains("surprise"),
            "{err}"
        );
        let mut v: serde_json::Value = serde_json::from_str(LEGACY).unwrap();
        v["schema_version"] = 9.into();
        let err = parse_state(Path::new("s.json"), &v.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains("newer"), "{err}");
        assert!(
            load(Path::new("/nonexistent/decnet-state.json"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn save_is_atomic_and_clear_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/decnet-state.json");
        let state = parse_state(&path, LEGACY).unwrap();
        let lock = StateLock::acquire(&path).unwrap();
        lock.save(&state).unwrap();
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        lock.clear().unwrap();
        lock.clear().unwrap();
        assert!(lock.load().unwrap().is_none());
    }

    #[test]
    fn the_lock_excludes_a_second_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decnet-state.json");
        let first = StateLock::acquire(&path).unwrap();
        let f = OpenOptions::new()
            .write(true)
            .open(lock_path(&path))
            .unwrap();
        assert!(
            f.try_lock().is_err(),
            "a second exclusive lock must not be granted"
        );
        drop(first);
        assert!(f.try_lock().is_ok());
    }
}
