//! Shared helpers: a root skeleton, tree snapshots, a fake host, systemd-analyze.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use decnet_core::Settings;
use decnet_systemd::{Error, Mode, System, Vars};

/// Directories a real root has before DECNET is installed (`etc/polkit-1/rules.d` comes
/// with polkitd, which `decnet init --mode agent` requires).
pub const SKELETON: &[&str] = &[
    "etc/systemd/system",
    "etc/tmpfiles.d",
    "etc/logrotate.d",
    "etc/polkit-1/rules.d",
    "usr/local/sbin",
    "var/lib",
    "var/log",
    "opt",
    "run",
];

/// A temporary root with the skeleton.
pub fn skeleton() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for dir in SKELETON {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    root
}

/// Default variables (system layout, `/opt/decnet`).
pub fn vars() -> Vars {
    Vars::new(
        "decnet",
        "decnet",
        Path::new("/opt/decnet"),
        None,
        &Settings::system(),
    )
    .unwrap()
}

/// Variables whose `bin` is a real executable, for `systemd-analyze verify`.
pub fn vars_with_real_bin() -> Vars {
    Vars::new(
        "decnet",
        "decnet",
        Path::new("/opt/decnet"),
        Some(Path::new("/usr/bin/true")),
        &Settings::system(),
    )
    .unwrap()
}

/// Every entry under `root`: relative path → (mode, content or link target or "<dir>").
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u32, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let body = if meta.is_dir() {
                stack.push(path.clone());
                b"<dir>".to_vec()
            } else if meta.file_type().is_symlink() {
                std::fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                std::fs::read(&path).unwrap()
            };
            out.insert(rel, (meta.mode() & 0o7777, body));
        }
    }
    out
}

/// A fake executable to install as the decnet binary.
pub fn fake_exe(dir: &Path) -> PathBuf {
    let exe = dir.join("decnet-under-test");
    std::fs::write(&exe, b"#!/bin/sh\nexit 0\n").unwrap();
    exe
}

/// A host that runs nothing: names resolve to the test process's own uid/gid once
/// "created" (so chown works unprivileged), commands are recorded, `systemctl enable`
/// and `systemd-tmpfiles --create` are simulated.
pub struct FakeHost {
    pub root: PathBuf,
    pub is_root: bool,
    /// Commands `has_command` denies.
    pub missing: BTreeSet<String>,
    pub users: BTreeSet<String>,
    pub groups: BTreeSet<String>,
    pub enabled: bool,
    pub active: BTreeSet<String>,
    pub commands: Vec<String>,
}

impl FakeHost {
    pub fn new(root: &Path) -> Self {
        FakeHost {
            root: root.to_path_buf(),
            is_root: true,
            missing: BTreeSet::new(),
            users: ["root".to_owned()].into(),
            groups: ["root".to_owned(), "docker".to_owned()].into(),
            enabled: false,
            active: BTreeSet::new(),
            commands: Vec::new(),
        }
    }

    /// Takes the recorded commands.
    pub fn take(&mut self) -> Vec<String> {
        std::mem::take(&mut self.commands)
    }
}

impl System for FakeHost {
    fn is_root(&mut self) -> bool {
        self.is_root
    }

    fn has_command(&mut self, program: &str) -> bool {
        !self.missing.contains(program)
    }

    fn user_id(&mut self, name: &str) -> Result<Option<u32>, Error> {
        Ok(self
            .users
            .contains(name)
            .then(|| nix::unistd::geteuid().as_raw()))
    }

    fn group_id(&mut self, name: &str) -> Result<Option<u32>, Error> {
        Ok(self
            .groups
            .contains(name)
            .then(|| nix::unistd::getegid().as_raw()))
    }

    fn run(&mut self, argv: &[&str]) -> Result<(), Error> {
        self.commands.push(argv.join(" "));
        let last = argv.last().copied().unwrap_or_default().to_owned();
        match argv {
            ["groupadd", ..] => {
                self.groups.insert(last);
            }
            ["useradd", ..] => {
                self.users.insert(last);
            }
            ["userdel", ..] => {
                self.users.remove(&last);
            }
            ["groupdel", ..] => {
                self.groups.remove(&last);
            }
            ["systemctl", "enable", "--now", units @ ..] => {
                self.enabled = true;
                self.active.extend(units.iter().map(|u| u.to_string()));
            }
            ["systemctl", "disable", "--now", units @ ..] => {
                self.enabled = false;
                for u in units {
                    self.active.remove(*u);
                }
            }
            ["systemd-tmpfiles", "--create", entry] => {
                let text =
                    std::fs::read_to_string(self.root.join(entry.trim_start_matches('/'))).unwrap();
                for line in text.lines().filter(|l| l.starts_with("d ")) {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let dir = self.root.join(f[1].trim_start_matches('/'));
                    std::fs::create_dir_all(&dir).unwrap();
                    let mode = u32::from_str_radix(f[2], 8).unwrap();
                    std::fs::set_permissions(
                        &dir,
                        std::os::unix::fs::PermissionsExt::from_mode(mode),
                    )
                    .unwrap();
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn query(&mut self, argv: &[&str]) -> Result<bool, Error> {
        Ok(match argv {
            ["systemctl", "is-enabled", "--quiet", _] => self.enabled,
            ["systemctl", "is-active", "--quiet", units @ ..] => units.iter().any(|u| {
                self.active.contains(*u)
                    || (self.active.contains("decnet.target") && u.starts_with("decnet-"))
            }),
            _ => false,
        })
    }
}

/// `systemd-analyze`, from the provisioning script; `None` when live tests are skipped.
pub fn systemd_analyze() -> Option<PathBuf> {
    match std::env::var("DECNET_TEST_SYSTEMD_ANALYZE") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ if std::env::var("DECNET_SKIP_LIVE").as_deref() == Ok("1") => {
            eprintln!("DECNET_TEST_SYSTEMD_ANALYZE is not set and DECNET_SKIP_LIVE=1: skipping");
            None
        }
        _ => panic!(
            "DECNET_TEST_SYSTEMD_ANALYZE is not set: run `.ci/provision/15-systemd.sh` (as root) \
             and export the line it prints, or set DECNET_SKIP_LIVE=1 to skip live tests"
        ),
    }
}

/// Writes a mode's rendered units and target into `dir`; returns their paths.
pub fn write_units(dir: &Path, mode: Mode, vars: &Vars) -> Vec<PathBuf> {
    decnet_systemd::render(mode, vars)
        .unwrap()
        .into_iter()
        .filter(|r| r.unit_name().is_some())
        .map(|r| {
            let path = dir.join(r.path.file_name().unwrap());
            std::fs::write(&path, &r.text).unwrap();
            path
        })
        .collect()
}

/// Runs systemd-analyze; returns (success, stdout, stderr).
pub fn analyze(bin: &Path, args: &[&str], files: &[PathBuf]) -> (bool, String, String) {
    let out = Command::new(bin).args(args).args(files).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The account the live tests render as: an unprivileged one (`nobody:nogroup`) when
/// running as root, like a real install; the test's own otherwise.
pub fn daemon_account() -> (String, String) {
    let me = nix::unistd::geteuid();
    if me.is_root() {
        return ("nobody".to_owned(), "nogroup".to_owned());
    }
    let u = nix::unistd::User::from_uid(me).unwrap().unwrap();
    let g = nix::unistd::Group::from_gid(nix::unistd::getegid())
        .unwrap()
        .unwrap();
    (u.name, g.name)
}
