//! Every path the program uses, resolved once at start-up.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::hostcfg::HostConfig;

/// All paths, from one value. System defaults, or everything under one root
/// (`--data-dir` / `DECNET_HOME`) for tests and non-root use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Settings {
    /// The relocation root, when one was given.
    pub home: Option<PathBuf>,
    /// Configuration directory (`/etc/decnet`).
    pub etc_dir: PathBuf,
    /// Host configuration INI (`/etc/decnet/decnet.ini`, or `$DECNET_CONFIG`).
    pub host_config: PathBuf,
    /// Persistent data (`/var/lib/decnet`).
    pub data_dir: PathBuf,
    /// `decnet-state.json`.
    pub state_file: PathBuf,
    /// Compose export of the live fleet.
    pub compose_file: PathBuf,
    /// Directory of the SQLite database (writable on its own, so units can keep the rest
    /// of `data_dir` read-only).
    pub db_dir: PathBuf,
    /// SQLite database file.
    pub db_file: PathBuf,
    /// Captured artifacts (transcripts, mail, downloads), one folder per decky.
    pub artifacts_dir: PathBuf,
    /// Per-installation secret from which decky seeds are derived.
    pub instance_key: PathBuf,
    /// The collector's cursors (`/var/lib/decnet/collector`), writable on its own.
    pub collector_dir: PathBuf,
    /// A worker's log spool (`/var/lib/decnet/spool`): the collector appends, the agent's
    /// forwarder ships and trims it. Writable on its own.
    pub spool_dir: PathBuf,
    /// Logs (`/var/log/decnet`).
    pub log_dir: PathBuf,
    /// Runtime directory (`/run/decnet`).
    pub run_dir: PathBuf,
    /// Bus socket (`/run/decnet/bus.sock`).
    pub bus_socket: PathBuf,
    /// Worker enrollment bundle (`/etc/decnet/agent`).
    pub agent_dir: PathBuf,
    /// Certificate authority (`/etc/decnet/ca`).
    pub ca_dir: PathBuf,
    /// Master client identity (`/etc/decnet/master`).
    pub master_dir: PathBuf,
    /// Install directory (`/opt/decnet`).
    pub install_dir: PathBuf,
}

impl Settings {
    fn layout(
        home: Option<PathBuf>,
        etc: PathBuf,
        data: PathBuf,
        log: PathBuf,
        run: PathBuf,
        opt: PathBuf,
    ) -> Self {
        let db_dir = data.join("db");
        Settings {
            host_config: etc.join("decnet.ini"),
            agent_dir: etc.join("agent"),
            ca_dir: etc.join("ca"),
            master_dir: etc.join("master"),
            state_file: data.join("decnet-state.json"),
            compose_file: data.join("decnet-compose.yml"),
            db_file: db_dir.join("decnet.db"),
            db_dir,
            artifacts_dir: data.join("artifacts"),
            instance_key: data.join("instance.key"),
            collector_dir: data.join("collector"),
            spool_dir: data.join("spool"),
            bus_socket: run.join("bus.sock"),
            home,
            etc_dir: etc,
            data_dir: data,
            log_dir: log,
            run_dir: run,
            install_dir: opt,
        }
    }

    /// The system layout of a root install.
    pub fn system() -> Self {
        Self::layout(
            None,
            PathBuf::from("/etc/decnet"),
            PathBuf::from("/var/lib/decnet"),
            PathBuf::from("/var/log/decnet"),
            PathBuf::from("/run/decnet"),
            PathBuf::from("/opt/decnet"),
        )
    }

    /// Everything under `home`: `etc/`, `lib/`, `log/`, `run/`, `opt/`.
    pub fn under(home: &Path) -> Self {
        Self::layout(
            Some(home.to_path_buf()),
            home.join("etc"),
            home.join("lib"),
            home.join("log"),
            home.join("run"),
            home.join("opt"),
        )
    }

    /// Where the host config lives before it is read: `$DECNET_CONFIG` wins.
    pub fn host_config_path(home: Option<&Path>, decnet_config: Option<&str>) -> PathBuf {
        match decnet_config {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => home.map_or_else(Self::system, Self::under).host_config,
        }
    }

    /// Resolves the layout: the root (if any), then overrides from the host config and
    /// environment (`DECNET_LOG_DIRECTORY`, `DECNET_BUS_SOCKET`, `DECNET_AGENT_DIR`,
    /// `DECNET_CONFIG`). Relative overrides are refused by keeping the default, so no path
    /// depends on the working directory.
    pub fn resolve(home: Option<&Path>, host: &HostConfig) -> Self {
        let mut s = home.map_or_else(Self::system, Self::under);
        let abs = |v: Option<&str>| v.map(PathBuf::from).filter(|p| p.is_absolute());
        if let Some(p) = abs(host.get("DECNET_CONFIG")) {
            s.host_config = p;
        }
        if let Some(p) = abs(host.get("DECNET_LOG_DIRECTORY")) {
            s.log_dir = p;
        }
        if let Some(p) = abs(host.get("DECNET_BUS_SOCKET")) {
            s.bus_socket = p;
        }
        if let Some(p) = abs(host.get("DECNET_AGENT_DIR")) {
            s.agent_dir = p;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_defaults() {
        let s = Settings::system();
        assert_eq!(s.state_file, Path::new("/var/lib/decnet/decnet-state.json"));
        assert_eq!(s.bus_socket, Path::new("/run/decnet/bus.sock"));
        assert_eq!(s.agent_dir, Path::new("/etc/decnet/agent"));
        assert_eq!(s.db_file, Path::new("/var/lib/decnet/db/decnet.db"));
    }

    #[test]
    fn one_root_relocates_everything() {
        let s = Settings::under(Path::new("/tmp/h"));
        let json = serde_json::to_value(&s).unwrap();
        for (k, v) in json.as_object().unwrap() {
            if let Some(p) = v.as_str() {
                assert!(p.starts_with("/tmp/h"), "{k} = {p}");
            }
        }
    }

    #[test]
    fn environment_overrides_absolute_only() {
        let mut host = HostConfig::default();
        host.vars
            .insert("DECNET_BUS_SOCKET".into(), "/x/bus.sock".into());
        host.vars
            .insert("DECNET_LOG_DIRECTORY".into(), "relative/log".into());
        let s = Settings::resolve(None, &host);
        assert_eq!(s.bus_socket, Path::new("/x/bus.sock"));
        assert_eq!(s.log_dir, Path::new("/var/log/decnet"));
        assert_eq!(
            Settings::host_config_path(None, Some("/y.ini")),
            Path::new("/y.ini")
        );
    }
}
