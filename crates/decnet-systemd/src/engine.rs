//! The `decnet init` and `decnet init --deinit` step engines: each step looks at the host,
//! changes only what differs, and reports OK, SKIP, DRY or FAIL.

use std::fmt;
use std::fs;
use std::io::Read as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::Error;
use crate::installed::installed_units;
use crate::reaper::REAPER_UNIT;
use crate::registry::{Kind, Mode, TARGET, UNIT_DIR, units};
use crate::render::{Owner, Rendered, Vars, render};
use crate::system::System;

/// Largest text file compared with its rendered content (units, entries, the host INI).
pub const MAX_TEXT_FILE_BYTES: u64 = 1024 * 1024;
/// Shell of the daemon user.
pub const NOLOGIN: &str = "/usr/sbin/nologin";
/// Commands `decnet init` runs.
pub const INIT_COMMANDS: &[&str] = &["groupadd", "useradd", "systemctl", "systemd-tmpfiles"];
/// Group whose members may use Docker's socket.
pub const DOCKER_GROUP: &str = "docker";
/// A command only polkit's daemon package installs (`polkitd` on Debian 12, `polkit`
/// elsewhere): its presence says polkitd is there to evaluate the rules init installs.
pub const POLKIT_PROBE: &str = "pkaction";

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It changed something.
    Ok,
    /// Nothing to do (already so, or not applicable).
    Skip,
    /// Dry run: this is what it would do.
    Dry,
    /// It failed; `init` stops here, `--deinit` carries on.
    Fail,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outcome::Ok => "OK",
            Outcome::Skip => "SKIP",
            Outcome::Dry => "DRY",
            Outcome::Fail => "FAIL",
        })
    }
}

/// One reported step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// How it ended.
    pub outcome: Outcome,
    /// What it is about (`directory /var/lib/decnet`, `systemctl daemon-reload`).
    pub action: String,
    /// What was found or done.
    pub detail: String,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<4}  {}", self.outcome.to_string(), self.action)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Whether any step failed.
pub fn any_failed(steps: &[Step]) -> bool {
    steps.iter().any(|s| s.outcome == Outcome::Fail)
}

/// What `decnet init` was asked to do.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Which side's units to install.
    pub mode: Mode,
    /// Validated template variables.
    pub vars: Vars,
    /// File-system root: `/`, or the `--prefix` directory.
    pub root: PathBuf,
    /// Report what would change; change nothing.
    pub dry_run: bool,
    /// Do not enable, start or restart anything.
    pub no_start: bool,
    /// Rewrite files even when their content is already right.
    pub force: bool,
    /// The running binary, installed as `vars.bin` when that lies inside the install dir.
    pub exe: Option<PathBuf>,
}

/// What `decnet init --deinit` was asked to do.
#[derive(Debug, Clone)]
pub struct DeinitOptions {
    /// Validated template variables (the same `--user`/`--group`/`--install-dir` as init).
    pub vars: Vars,
    /// File-system root: `/`, or the `--prefix` directory.
    pub root: PathBuf,
    /// Report what would change; change nothing.
    pub dry_run: bool,
    /// Also remove data, logs, configuration, and the user and group.
    pub purge: bool,
}

/// Marks that `init` hit a failure and must stop.
struct Stop;

type Flow = Result<(), Stop>;

enum Content<'a> {
    Text(&'a str),
    CopyOf(&'a Path),
}

#[derive(PartialEq, Eq)]
enum Policy {
    Replace { force: bool },
    KeepExisting,
}

struct Run<'a> {
    root: &'a Path,
    vars: &'a Vars,
    sys: Option<&'a mut dyn System>,
    dry_run: bool,
    stop_on_fail: bool,
    steps: Vec<Step>,
    on_step: &'a mut dyn FnMut(&Step),
}

fn owner_label(vars: &Vars, owner: Owner) -> String {
    match owner {
        Owner::Root => "root:root".to_owned(),
        Owner::RootGroup => format!("root:{}", vars.group),
        Owner::User => format!("{}:{}", vars.user, vars.group),
    }
}

fn is_not_found(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

/// Whether two files have the same bytes (sizes first, then 64 KiB chunks).
fn same_file_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    if fs::metadata(a)?.len() != fs::metadata(b)?.len() {
        return Ok(false);
    }
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

fn read_text_bounded(path: &Path) -> std::io::Result<Option<String>> {
    let file = fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_TEXT_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    Ok((text.len() as u64 <= MAX_TEXT_FILE_BYTES).then_some(text))
}

/// Paths deinit may remove recursively or `rmdir`: at least two levels deep, so a
/// relocated layout can never make it touch `/etc` or `/var`.
fn deep_enough(path: &Path) -> bool {
    path.components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count()
        >= 2
}

/// `d <path> <mode> …` lines of a tmpfiles entry: the directories it creates.
fn tmpfiles_dirs(text: &str) -> Vec<(PathBuf, u32)> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            match (f.next(), f.next(), f.next()) {
                (Some("d"), Some(path), Some(mode)) => {
                    Some((PathBuf::from(path), u32::from_str_radix(mode, 8).ok()?))
                }
                _ => None,
            }
        })
        .collect()
}

impl<'a> Run<'a> {
    fn on_host(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    fn push(
        &mut self,
        outcome: Outcome,
        action: impl Into<String>,
        detail: impl Into<String>,
    ) -> Flow {
        let step = Step {
            outcome,
            action: action.into(),
            detail: detail.into(),
        };
        (self.on_step)(&step);
        self.steps.push(step);
        if outcome == Outcome::Fail && self.stop_on_fail {
            Err(Stop)
        } else {
            Ok(())
        }
    }

    fn fail(&mut self, action: impl Into<String>, err: impl fmt::Display) -> Flow {
        self.push(Outcome::Fail, action, err.to_string())
    }

    /// How an owner is shown: `decnet:decnet`, or a note that `--prefix` leaves it.
    fn owner_text(&self, owner: Owner) -> String {
        let label = owner_label(self.vars, owner);
        if self.sys.is_some() {
            label
        } else {
            format!("(owner {label} not applied under --prefix)")
        }
    }

    /// The uid and gid `owner` stands for; `None` under `--prefix` (ownership is left to
    /// the packager) or, in a dry run, when the user does not exist yet.
    fn ids(&mut self, owner: Owner) -> Result<Option<(u32, u32)>, Error> {
        let (user, group) = (self.vars.user.clone(), self.vars.group.clone());
        let Some(sys) = self.sys.as_deref_mut() else {
            return Ok(None);
        };
        let uid = match owner {
            Owner::Root | Owner::RootGroup => sys.user_id("root")?,
            Owner::User => sys.user_id(&user)?,
        };
        let gid = match owner {
            Owner::Root => sys.group_id("root")?,
            Owner::RootGroup | Owner::User => sys.group_id(&group)?,
        };
        match (uid, gid) {
            (Some(u), Some(g)) => Ok(Some((u, g))),
            _ if self.dry_run => Ok(None),
            _ => Err(Error::Invalid {
                what: "owner",
                value: owner_label(self.vars, owner),
                reason: "user or group does not exist",
            }),
        }
    }

    /// Sets mode and owner of an existing file or directory through a descriptor opened
    /// without following symlinks, and checks its type on that same descriptor: a daemon
    /// that owns the parent directory cannot swap in a symlink (to `/etc/shadow`, say)
    /// between the check and the change.
    fn apply_meta(&self, real: &Path, mode: u32, ids: Option<(u32, u32)>) -> Result<(), Error> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let flags = nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK | nix::libc::O_CLOEXEC;
        let file = fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(real)
            .map_err(Error::io("open", real))?;
        let kind = file
            .metadata()
            .map_err(Error::io("inspect", real))?
            .file_type();
        if !(kind.is_file() || kind.is_dir()) {
            return Err(Error::io("set mode of", real)(std::io::Error::other(
                "not a regular file or directory",
            )));
        }
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(Error::io("chmod", real))?;
        if let Some((u, g)) = ids {
            std::os::unix::fs::fchown(&file, Some(u), Some(g)).map_err(Error::io("chown", real))?;
        }
        Ok(())
    }

    /// What differs between an existing path's mode/owner and the wanted ones.
    fn meta_changes(
        &self,
        meta: &fs::Metadata,
        mode: u32,
        ids: Option<(u32, u32)>,
        label: &str,
    ) -> Vec<String> {
        let mut changes = Vec::new();
        let have = meta.mode() & 0o7777;
        if have != mode {
            changes.push(format!("mode {have:04o} -> {mode:04o}"));
        }
        if let Some((u, g)) = ids
            && (meta.uid(), meta.gid()) != (u, g)
        {
            changes.push(format!("owner {}:{} -> {label}", meta.uid(), meta.gid()));
        }
        changes
    }

    fn dir(&mut self, path: &Path, mode: u32, owner: Owner) -> Flow {
        let action = format!("directory {}", path.display());
        let label = owner_label(self.vars, owner);
        let want = format!("{mode:04o} {}", self.owner_text(owner));
        let ids = match self.ids(owner) {
            Ok(ids) => ids,
            Err(e) => return self.fail(action, e),
        };
        let real = self.on_host(path);
        match fs::symlink_metadata(&real) {
            Err(e) if is_not_found(&e) => {
                if self.dry_run {
                    return self.push(Outcome::Dry, action, format!("would create {want}"));
                }
                let made = fs::create_dir_all(&real)
                    .map_err(Error::io("create directory", &real))
                    .and_then(|()| self.apply_meta(&real, mode, ids));
                match made {
                    Ok(()) => self.push(Outcome::Ok, action, format!("created {want}")),
                    Err(e) => self.fail(action, e),
                }
            }
            Err(e) => self.fail(action, Error::io("inspect", &real)(e)),
            Ok(m) if !m.is_dir() => self.fail(action, "exists and is not a directory"),
            Ok(m) => {
                let changes = self.meta_changes(&m, mode, ids, &label);
                if changes.is_empty() {
                    self.push(Outcome::Skip, action, want)
                } else if self.dry_run {
                    self.push(
                        Outcome::Dry,
                        action,
                        format!("would fix {}", changes.join(", ")),
                    )
                } else {
                    match self.apply_meta(&real, mode, ids) {
                        Ok(()) => {
                            self.push(Outcome::Ok, action, format!("fixed {}", changes.join(", ")))
                        }
                        Err(e) => self.fail(action, e),
                    }
                }
            }
        }
    }

    /// Writes a file atomically (temporary file, mode, owner, fsync, rename).
    fn write_atomic(
        &self,
        real: &Path,
        content: &Content<'_>,
        mode: u32,
        ids: Option<(u32, u32)>,
    ) -> Result<(), Error> {
        let parent = real.parent().unwrap_or(Path::new("/"));
        fs::create_dir_all(parent).map_err(Error::io("create directory", parent))?;
        let name = real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.decnet-new"));
        let written = match content {
            Content::Text(text) => fs::write(&tmp, text),
            Content::CopyOf(src) => fs::copy(src, &tmp).map(|_| ()),
        };
        let result = written
            .map_err(Error::io("write", &tmp))
            .and_then(|()| self.apply_meta(&tmp, mode, ids))
            .and_then(|()| {
                fs::File::open(&tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(Error::io("sync", &tmp))
            })
            .and_then(|()| fs::rename(&tmp, real).map_err(Error::io("rename", real)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Makes `path` hold `content` with `mode`/`owner`; returns whether its content was
    /// (or, in a dry run, would be) written.
    fn file(
        &mut self,
        path: &Path,
        content: Content<'_>,
        mode: u32,
        owner: Owner,
        policy: Policy,
    ) -> Result<bool, Stop> {
        let action = format!("file {}", path.display());
        let label = owner_label(self.vars, owner);
        let ids = match self.ids(owner) {
            Ok(ids) => ids,
            Err(e) => return self.fail(action, e).map(|()| false),
        };
        let real = self.on_host(path);
        let meta = match fs::symlink_metadata(&real) {
            Ok(m) if !m.is_file() => {
                return self
                    .fail(action, "exists and is not a regular file")
                    .map(|()| false);
            }
            Ok(m) => Some(m),
            Err(e) if is_not_found(&e) => None,
            Err(e) => {
                return self
                    .fail(action, Error::io("inspect", &real)(e))
                    .map(|()| false);
            }
        };
        let Some(meta) = meta else {
            if self.dry_run {
                return self
                    .push(
                        Outcome::Dry,
                        action,
                        format!("would write {mode:04o} {}", self.owner_text(owner)),
                    )
                    .map(|()| true);
            }
            return match self.write_atomic(&real, &content, mode, ids) {
                Ok(()) => self
                    .push(
                        Outcome::Ok,
                        action,
                        format!("written {mode:04o} {}", self.owner_text(owner)),
                    )
                    .map(|()| true),
                Err(e) => self.fail(action, e).map(|()| false),
            };
        };
        let same = match &content {
            Content::Text(text) => read_text_bounded(&real).map(|t| t.as_deref() == Some(*text)),
            Content::CopyOf(src) => same_file_content(src, &real),
        };
        let same = match same {
            Ok(same) => same,
            Err(e) => {
                return self
                    .fail(action, Error::io("read", &real)(e))
                    .map(|()| false);
            }
        };
        let changes = self.meta_changes(&meta, mode, ids, &label);
        let rewrite = match policy {
            Policy::KeepExisting => false,
            Policy::Replace { force } => force || !same,
        };
        if !rewrite && changes.is_empty() {
            let detail = if policy == Policy::KeepExisting && !same {
                "exists; kept as it is".to_owned()
            } else {
                "up to date".to_owned()
            };
            return self.push(Outcome::Skip, action, detail).map(|()| false);
        }
        let what = match (rewrite, same) {
            (true, true) => "rewrite (--force)".to_owned(),
            (true, false) => "update content".to_owned(),
            (false, _) => format!("fix {}", changes.join(", ")),
        };
        if self.dry_run {
            return self
                .push(Outcome::Dry, action, format!("would {what}"))
                .map(|()| rewrite);
        }
        let done = if rewrite {
            self.write_atomic(&real, &content, mode, ids)
        } else {
            self.apply_meta(&real, mode, ids)
        };
        match done {
            Ok(()) => self
                .push(Outcome::Ok, action, format!("{what}: done"))
                .map(|()| rewrite),
            Err(e) => self.fail(action, e).map(|()| false),
        }
    }

    /// Runs a command that changes the host (never under `--prefix`, never in a dry run).
    fn command(&mut self, argv: &[&str]) -> Result<bool, Stop> {
        let action = argv.join(" ");
        if self.sys.is_none() {
            return self
                .push(Outcome::Skip, action, "not run under --prefix")
                .map(|()| false);
        }
        if self.dry_run {
            return self.push(Outcome::Dry, action, "would run").map(|()| false);
        }
        let result = match self.sys.as_deref_mut() {
            Some(sys) => sys.run(argv),
            None => Ok(()),
        };
        match result {
            Ok(()) => self.push(Outcome::Ok, action, "").map(|()| true),
            Err(e) => self.fail(action, e).map(|()| false),
        }
    }

    /// Root and the needed commands, when the run will change a real host.
    fn preflight(&mut self, commands: &[&str]) -> Flow {
        if self.dry_run {
            return Ok(());
        }
        let Some(sys) = self.sys.as_deref_mut() else {
            return Ok(());
        };
        if !sys.is_root() {
            return self.fail(
                "preflight",
                "must run as root (or with --dry-run, or --prefix DIR)",
            );
        }
        let missing: Vec<&str> = commands
            .iter()
            .copied()
            .filter(|c| !sys.has_command(c))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            self.fail(
                "preflight",
                format!("missing commands: {}", missing.join(", ")),
            )
        }
    }

    fn exists_step(&mut self, what: &'static str, name: &str, create: &[&str]) -> Flow {
        let action = format!("{what} {name}");
        let Some(sys) = self.sys.as_deref_mut() else {
            return self.push(
                Outcome::Skip,
                action,
                format!("not created under --prefix ({})", create.join(" ")),
            );
        };
        let found = if what == "user" {
            sys.user_id(name)
        } else {
            sys.group_id(name)
        };
        match found {
            Ok(Some(_)) => self.push(Outcome::Skip, action, "exists"),
            Ok(None) => self.command(create).map(|_| ()),
            Err(e) => self.fail(action, e),
        }
    }

    fn exists_gone(&mut self, what: &'static str, name: &str, delete: &[&str]) -> Flow {
        let action = format!("{what} {name}");
        let Some(sys) = self.sys.as_deref_mut() else {
            return self.push(
                Outcome::Skip,
                action,
                format!("not removed under --prefix ({})", delete.join(" ")),
            );
        };
        let found = if what == "user" {
            sys.user_id(name)
        } else {
            sys.group_id(name)
        };
        match found {
            Ok(Some(_)) => self.command(delete).map(|_| ()),
            Ok(None) => self.push(Outcome::Skip, action, "absent"),
            Err(e) => self.fail(action, e),
        }
    }

    fn docker_group(&mut self) -> Flow {
        let action = format!("group {DOCKER_GROUP}");
        let Some(sys) = self.sys.as_deref_mut() else {
            return self.push(Outcome::Skip, action, "not checked under --prefix");
        };
        match sys.group_id(DOCKER_GROUP) {
            Ok(Some(_)) => self.push(Outcome::Skip, action, "present"),
            Ok(None) => self.fail(
                action,
                "missing: install Docker first (the reconciler and agent run with SupplementaryGroups=docker)",
            ),
            Err(e) => self.fail(action, e),
        }
    }

    /// A side that installs polkit rules needs polkitd to read them: without it the agent
    /// could not start the reaper unit, and decommission would leave the install behind.
    fn polkit(&mut self, files: &[Rendered]) -> Flow {
        let rules: Vec<String> = files
            .iter()
            .filter(|f| matches!(f.kind, Kind::Polkit { .. }))
            .map(|f| f.path.display().to_string())
            .collect();
        if rules.is_empty() {
            return Ok(());
        }
        let action = "polkit";
        let Some(sys) = self.sys.as_deref_mut() else {
            return self.push(Outcome::Skip, action, "not checked under --prefix");
        };
        if sys.has_command(POLKIT_PROBE) {
            self.push(Outcome::Skip, action, "present")
        } else {
            self.fail(
                action,
                format!(
                    "polkitd is not installed: the agent starts {} through it on self-destruct \
                     ({}); install it (Debian 12: apt-get install polkitd) and run init again",
                    REAPER_UNIT,
                    rules.join(", ")
                ),
            )
        }
    }

    /// Removes `path` when it exists (a file another mode installed); says nothing otherwise.
    fn remove_if_present(&mut self, path: &Path, why: &str) -> Result<bool, Stop> {
        match fs::symlink_metadata(self.on_host(path)) {
            Err(e) if is_not_found(&e) => Ok(false),
            _ => self.remove_file(path, why),
        }
    }

    fn binary(&mut self, exe: Option<&Path>, force: bool) -> Result<bool, Stop> {
        let bin = self.vars.bin.clone();
        if !self.vars.manages_bin() {
            let action = format!("binary {}", bin.display());
            let real = self.on_host(&bin);
            let executable =
                fs::metadata(&real).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0);
            return match (executable, self.sys.is_some()) {
                (true, _) => self.push(
                    Outcome::Skip,
                    action,
                    "present (outside the install dir: not managed)",
                ),
                (false, false) => self.push(
                    Outcome::Skip,
                    action,
                    "not present under the prefix (not checked)",
                ),
                (false, true) => self.fail(
                    action,
                    "missing or not executable: install decnet there, or drop --bin",
                ),
            }
            .map(|()| false);
        }
        let Some(exe) = exe else {
            return self
                .fail(
                    format!("file {}", bin.display()),
                    "cannot locate the running decnet binary to install",
                )
                .map(|()| false);
        };
        self.file(
            &bin,
            Content::CopyOf(exe),
            0o755,
            Owner::Root,
            Policy::Replace { force },
        )
    }

    /// Ensures an empty-or-existing log file with the daemon's ownership, so logrotate can
    /// rotate it as that user and systemd appends to it.
    fn log_file(&mut self, path: &Path) -> Flow {
        let action = format!("log {}", path.display());
        let label = owner_label(self.vars, Owner::User);
        let ids = match self.ids(Owner::User) {
            Ok(ids) => ids,
            Err(e) => return self.fail(action, e),
        };
        let real = self.on_host(path);
        match fs::symlink_metadata(&real) {
            Err(e) if is_not_found(&e) => {
                if self.dry_run {
                    return self.push(
                        Outcome::Dry,
                        action,
                        format!("would create 0640 {}", self.owner_text(Owner::User)),
                    );
                }
                let made = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&real)
                    .map_err(Error::io("create", &real))
                    .and_then(|_| self.apply_meta(&real, 0o640, ids));
                match made {
                    Ok(()) => self.push(
                        Outcome::Ok,
                        action,
                        format!("created 0640 {}", self.owner_text(Owner::User)),
                    ),
                    Err(e) => self.fail(action, e),
                }
            }
            Err(e) => self.fail(action, Error::io("inspect", &real)(e)),
            Ok(m) if !m.is_file() => self.fail(action, "exists and is not a regular file"),
            Ok(m) => {
                let changes = self.meta_changes(&m, 0o640, ids, &label);
                if changes.is_empty() {
                    self.push(
                        Outcome::Skip,
                        action,
                        format!("0640 {}", self.owner_text(Owner::User)),
                    )
                } else if self.dry_run {
                    self.push(
                        Outcome::Dry,
                        action,
                        format!("would fix {}", changes.join(", ")),
                    )
                } else {
                    match self.apply_meta(&real, 0o640, ids) {
                        Ok(()) => {
                            self.push(Outcome::Ok, action, format!("fixed {}", changes.join(", ")))
                        }
                        Err(e) => self.fail(action, e),
                    }
                }
            }
        }
    }

    /// Creates the tmpfiles-managed directories now (they are recreated at every boot).
    fn runtime_dirs(&mut self, entry: &Path, dirs: &[(PathBuf, u32)], entry_changed: bool) -> Flow {
        let ids = match self.ids(Owner::User) {
            Ok(ids) => ids,
            Err(e) => return self.fail("runtime directories", e),
        };
        let label = owner_label(self.vars, Owner::User);
        let mut pending = Vec::new();
        for (dir, mode) in dirs {
            let real = self.on_host(dir);
            let ok = fs::symlink_metadata(&real)
                .is_ok_and(|m| m.is_dir() && self.meta_changes(&m, *mode, ids, &label).is_empty());
            if !ok {
                pending.push(dir.display().to_string());
            }
        }
        let entry_text = entry.display().to_string();
        if pending.is_empty() && !entry_changed {
            let all: Vec<String> = dirs
                .iter()
                .map(|(d, m)| format!("{} {m:04o}", d.display()))
                .collect();
            return self.push(
                Outcome::Skip,
                "runtime directories",
                format!("{} {label}", all.join(", ")),
            );
        }
        self.command(&["systemd-tmpfiles", "--create", &entry_text])
            .map(|_| ())
    }

    fn query(&mut self, argv: &[&str]) -> bool {
        match self.sys.as_deref_mut() {
            Some(sys) => sys.query(argv).unwrap_or(false),
            None => false,
        }
    }

    fn remove_file(&mut self, path: &Path, why: &str) -> Result<bool, Stop> {
        let action = format!("remove {}", path.display());
        let real = self.on_host(path);
        match fs::symlink_metadata(&real) {
            Err(e) if is_not_found(&e) => {
                self.push(Outcome::Skip, action, "absent").map(|()| false)
            }
            Err(e) => self
                .fail(action, Error::io("inspect", &real)(e))
                .map(|()| false),
            Ok(m) if m.is_dir() => self.fail(action, "is a directory").map(|()| false),
            Ok(_) if self.dry_run => self
                .push(Outcome::Dry, action, format!("would remove ({why})"))
                .map(|()| true),
            Ok(_) => match fs::remove_file(&real) {
                Ok(()) => self
                    .push(Outcome::Ok, action, why.to_owned())
                    .map(|()| true),
                Err(e) => self
                    .fail(action, Error::io("remove", &real)(e))
                    .map(|()| false),
            },
        }
    }

    fn rmdir_if_empty(&mut self, path: &Path) -> Flow {
        let action = format!("remove directory {}", path.display());
        if !deep_enough(path) {
            return self.push(Outcome::Skip, action, "top-level directory; left alone");
        }
        let real = self.on_host(path);
        let empty = match fs::read_dir(&real) {
            Err(e) if is_not_found(&e) => return self.push(Outcome::Skip, action, "absent"),
            Err(e) => return self.fail(action, Error::io("read directory", &real)(e)),
            Ok(mut entries) => entries.next().is_none(),
        };
        if !empty {
            return self.push(Outcome::Skip, action, "not empty; kept");
        }
        if self.dry_run {
            return self.push(Outcome::Dry, action, "would remove (empty)");
        }
        match fs::remove_dir(&real) {
            Ok(()) => self.push(Outcome::Ok, action, "removed (empty)"),
            Err(e) => self.fail(action, Error::io("remove directory", &real)(e)),
        }
    }

    fn remove_tree(&mut self, path: &Path) -> Flow {
        let action = format!("purge {}", path.display());
        if !deep_enough(path) {
            return self.fail(action, "refusing to remove a top-level directory");
        }
        let real = self.on_host(path);
        match fs::symlink_metadata(&real) {
            Err(e) if is_not_found(&e) => self.push(Outcome::Skip, action, "absent"),
            Err(e) => self.fail(action, Error::io("inspect", &real)(e)),
            Ok(m) if !m.is_dir() => self.fail(action, "not a directory (a symlink?); left alone"),
            Ok(_) if self.dry_run => self.push(Outcome::Dry, action, "would remove recursively"),
            Ok(_) => match fs::remove_dir_all(&real) {
                Ok(()) => self.push(Outcome::Ok, action, "removed"),
                Err(e) => self.fail(action, Error::io("remove", &real)(e)),
            },
        }
    }
}

/// The directories init creates, in creation order: (path, mode, owner). Deinit removes
/// them in reverse, each only if empty. `/run/decnet` is not here: tmpfiles owns it.
fn directories(vars: &Vars) -> Vec<(PathBuf, u32, Owner)> {
    let mut dirs = vec![(vars.install_dir.clone(), 0o755, Owner::Root)];
    if vars.manages_bin()
        && let Some(parent) = vars.bin.parent()
        && parent != vars.install_dir
    {
        dirs.push((parent.to_path_buf(), 0o755, Owner::Root));
    }
    dirs.extend([
        (vars.data_dir.clone(), 0o750, Owner::User),
        (vars.db_dir.clone(), 0o750, Owner::User),
        // Each writable on its own inside a read-only data_dir, so they exist before the
        // units that carve them out start (a missing ReadWritePaths= entry fails a unit).
        (vars.collector_dir.clone(), 0o750, Owner::User),
        (vars.spool_dir.clone(), 0o750, Owner::User),
        (vars.log_dir.clone(), 0o750, Owner::User),
        (vars.etc_dir.clone(), 0o755, Owner::RootGroup),
    ]);
    dirs
}

/// Files only a side installs besides its units (polkit rules, the reaper script), as
/// rendered for every mode: what `mode` does not render is another side's, removed when a
/// host changes sides, and deinit removes them all.
fn side_files(vars: &Vars) -> Result<Vec<PathBuf>, Error> {
    let mut paths = Vec::new();
    for mode in Mode::ALL {
        for f in render(mode, vars)? {
            if matches!(f.kind, Kind::Polkit { .. } | Kind::ReaperScript)
                && !paths.contains(&f.path)
            {
                paths.push(f.path);
            }
        }
    }
    Ok(paths)
}

fn init_steps(
    run: &mut Run<'_>,
    opts: &InitOptions,
    files: &[Rendered],
    other_side_files: &[PathBuf],
) -> Flow {
    let vars = opts.vars.clone();
    run.preflight(INIT_COMMANDS)?;
    run.exists_step("group", &vars.group, &["groupadd", "--system", &vars.group])?;
    let home = vars.data_dir.display().to_string();
    let useradd = [
        "useradd",
        "--system",
        "--gid",
        &vars.group,
        "--home-dir",
        &home,
        "--no-create-home",
        "--shell",
        NOLOGIN,
        &vars.user,
    ];
    run.exists_step("user", &vars.user, &useradd)?;
    run.docker_group()?;
    run.polkit(files)?;
    for (path, mode, owner) in directories(&vars) {
        run.dir(&path, mode, owner)?;
    }
    let bin_changed = run.binary(opts.exe.as_deref(), opts.force)?;

    let by_kind = |want: fn(&Kind) -> bool| files.iter().filter(move |f| want(&f.kind));
    for f in by_kind(|k| *k == Kind::HostConfig) {
        run.file(
            &f.path,
            Content::Text(&f.text),
            f.mode,
            f.owner,
            Policy::KeepExisting,
        )?;
    }
    // The reaper's script before its unit, so the unit never names a missing file.
    for f in by_kind(|k| *k == Kind::ReaperScript) {
        run.file(
            &f.path,
            Content::Text(&f.text),
            f.mode,
            f.owner,
            Policy::Replace { force: opts.force },
        )?;
    }
    let mut changed_units = Vec::new();
    for f in by_kind(|k| matches!(k, Kind::Unit(_) | Kind::Target)) {
        let policy = Policy::Replace { force: opts.force };
        if run.file(&f.path, Content::Text(&f.text), f.mode, f.owner, policy)?
            && let Some(name) = f.unit_name()
        {
            changed_units.push(name.to_owned());
        }
    }
    // Units installed by an earlier version or the other mode, that this one no longer has.
    let wanted: Vec<&str> = files.iter().filter_map(Rendered::unit_name).collect();
    let installed = match installed_units(run.root) {
        Ok(list) => list,
        Err(e) => return run.fail("list installed units", e),
    };
    let stale: Vec<&str> = installed
        .iter()
        .map(String::as_str)
        .filter(|u| !wanted.contains(u))
        .collect();
    let mut removed_stale = false;
    if !stale.is_empty() {
        // Best effort, like deinit: a unit that cannot be stopped is still removed.
        let mut argv = vec!["systemctl", "disable", "--now"];
        argv.extend(stale.iter().copied());
        let stop_on_fail = std::mem::replace(&mut run.stop_on_fail, false);
        let _ = run.command(&argv);
        run.stop_on_fail = stop_on_fail;
    }
    for unit in &stale {
        removed_stale |= run.remove_file(
            &Path::new(UNIT_DIR).join(unit),
            "stale: not part of this mode",
        )?;
    }
    // Polkit rules and the reaper script of the other mode (a host that changed sides).
    for path in other_side_files {
        if !files.iter().any(|f| &f.path == path) {
            run.remove_if_present(path, "stale: not part of this mode")?;
        }
    }
    for f in by_kind(|k| matches!(k, Kind::Polkit { .. })) {
        run.file(
            &f.path,
            Content::Text(&f.text),
            f.mode,
            f.owner,
            Policy::Replace { force: opts.force },
        )?;
    }
    for f in by_kind(|k| *k == Kind::Tmpfiles) {
        let changed = run.file(
            &f.path,
            Content::Text(&f.text),
            f.mode,
            f.owner,
            Policy::Replace { force: opts.force },
        )?;
        run.runtime_dirs(&f.path, &tmpfiles_dirs(&f.text), changed)?;
    }
    for f in by_kind(|k| *k == Kind::Logrotate) {
        run.file(
            &f.path,
            Content::Text(&f.text),
            f.mode,
            f.owner,
            Policy::Replace { force: opts.force },
        )?;
    }
    for f in files {
        if let Kind::Unit(meta) = &f.kind {
            run.log_file(&vars.log_dir.join(meta.log_file_name()))?;
        }
    }
    if changed_units.is_empty() && !removed_stale {
        run.push(Outcome::Skip, "systemctl daemon-reload", "no unit changed")?;
    } else {
        run.command(&["systemctl", "daemon-reload"])?;
    }
    // Daemons only: restarting the reaper would run the uninstall.
    let daemons: Vec<&str> = files
        .iter()
        .filter_map(|f| match &f.kind {
            Kind::Unit(m) if m.daemon => Some(m.name.as_str()),
            _ => None,
        })
        .collect();
    let mut restart: Vec<&str> = if bin_changed {
        daemons
    } else {
        changed_units
            .iter()
            .map(String::as_str)
            .filter(|u| daemons.contains(u))
            .collect()
    };
    restart.sort_unstable();
    let mut is_active = vec!["systemctl", "is-active", "--quiet"];
    is_active.extend(restart.iter().copied());
    let try_restart = format!("systemctl try-restart {}", restart.join(" "));
    if restart.is_empty() {
        run.push(
            Outcome::Skip,
            "systemctl try-restart",
            "no unit or binary changed",
        )?;
    } else if opts.no_start {
        run.push(Outcome::Skip, try_restart, "--no-start")?;
    } else if run.sys.is_some() && !run.query(&is_active) {
        // A fresh install: nothing runs yet, enable --now starts everything below.
        run.push(Outcome::Skip, try_restart, "none of them is running")?;
    } else {
        let mut argv = vec!["systemctl", "try-restart"];
        argv.extend(restart);
        run.command(&argv)?;
    }
    let enable = ["systemctl", "enable", "--now", TARGET];
    if opts.no_start {
        run.push(Outcome::Skip, enable.join(" "), "--no-start")?;
    } else if run.sys.is_some()
        && run.query(&["systemctl", "is-enabled", "--quiet", TARGET])
        && run.query(&["systemctl", "is-active", "--quiet", TARGET])
    {
        run.push(Outcome::Skip, enable.join(" "), "enabled and active")?;
    } else {
        run.command(&enable)?;
    }
    Ok(())
}

/// `decnet init`: installs the units of `opts.mode` and everything they need. `sys` is the
/// host (`None` under `--prefix`: no command runs and ownership is not applied). Each step
/// is passed to `on_step` as it ends; the first FAIL stops a real run (a dry run goes on,
/// to show everything).
///
/// # Errors
/// [`Error::Template`] when rendering fails, before anything is changed. Failures while
/// changing the host are FAIL steps, not errors.
pub fn init(
    opts: &InitOptions,
    sys: Option<&mut dyn System>,
    on_step: &mut dyn FnMut(&Step),
) -> Result<Vec<Step>, Error> {
    let files = render(opts.mode, &opts.vars)?;
    let other_side_files = side_files(&opts.vars)?;
    let mut run = Run {
        root: &opts.root,
        vars: &opts.vars,
        // Shortens the trait object's lifetime to the run's (a coercion Option hides).
        sys: sys.map(|s| -> &mut dyn System { s }),
        dry_run: opts.dry_run,
        stop_on_fail: !opts.dry_run,
        steps: Vec::new(),
        on_step,
    };
    let _ = init_steps(&mut run, opts, &files, &other_side_files);
    Ok(run.steps)
}

fn deinit_steps(
    run: &mut Run<'_>,
    opts: &DeinitOptions,
    files: &[Rendered],
    side_files: &[PathBuf],
    placeholders: &[String],
) -> Flow {
    let vars = opts.vars.clone();
    let mut needed = vec!["systemctl"];
    if opts.purge {
        needed.extend(["userdel", "groupdel"]);
    }
    run.preflight(&needed)?;
    let installed = match installed_units(run.root) {
        Ok(list) => list,
        Err(e) => return run.fail("list installed units", e),
    };
    if installed.is_empty() {
        run.push(
            Outcome::Skip,
            "systemctl disable --now",
            "no DECNET unit installed",
        )?;
    } else {
        let mut argv = vec!["systemctl", "disable", "--now"];
        argv.extend(installed.iter().map(String::as_str));
        run.command(&argv)?;
    }
    let mut removed_units = false;
    for unit in &installed {
        removed_units |= run.remove_file(&Path::new(UNIT_DIR).join(unit), "removed")?;
    }
    for f in files
        .iter()
        .filter(|f| matches!(f.kind, Kind::Tmpfiles | Kind::Logrotate))
    {
        run.remove_file(&f.path, "removed")?;
    }
    for path in side_files {
        run.remove_file(path, "removed")?;
    }
    if removed_units {
        run.command(&["systemctl", "daemon-reload"])?;
    } else {
        run.push(Outcome::Skip, "systemctl daemon-reload", "no unit removed")?;
    }
    let host_config = vars.host_config.clone();
    let real = run.on_host(&host_config);
    match read_text_bounded(&real) {
        Err(e) if is_not_found(&e) => {
            run.push(
                Outcome::Skip,
                format!("remove {}", host_config.display()),
                "absent",
            )?;
        }
        Err(e) => run.fail(
            format!("remove {}", host_config.display()),
            Error::io("read", &real)(e),
        )?,
        Ok(_) if opts.purge => {
            run.remove_file(&host_config, "--purge")?;
        }
        Ok(Some(text)) if placeholders.contains(&text) => {
            run.remove_file(&host_config, "the unchanged placeholder")?;
        }
        Ok(_) => run.push(
            Outcome::Skip,
            format!("remove {}", host_config.display()),
            "edited since init; kept (--purge removes it)",
        )?,
    }
    if vars.manages_bin() {
        run.remove_file(&vars.bin, "installed by init")?;
    }
    if !opts.purge {
        // Log files init created and nothing wrote to: artifacts of init, not logs.
        let units = match units() {
            Ok(u) => u,
            Err(e) => return run.fail("unit registry", e),
        };
        for meta in units {
            let path = vars.log_dir.join(meta.log_file_name());
            let real = run.on_host(&path);
            match fs::symlink_metadata(&real) {
                Ok(m) if m.is_file() && m.len() == 0 => {
                    run.remove_file(&path, "empty log")?;
                }
                Ok(_) => run.push(
                    Outcome::Skip,
                    format!("remove {}", path.display()),
                    "has output; kept (--purge removes it)",
                )?,
                Err(_) => {}
            }
        }
    }
    let run_dirs: Vec<PathBuf> = files
        .iter()
        .filter(|f| f.kind == Kind::Tmpfiles)
        .flat_map(|f| tmpfiles_dirs(&f.text))
        .map(|(d, _)| d)
        .collect();
    if opts.purge {
        for dir in [&vars.data_dir, &vars.log_dir, &vars.etc_dir]
            .into_iter()
            .chain(&run_dirs)
        {
            run.remove_tree(dir)?;
        }
    }
    let mut dirs: Vec<PathBuf> = directories(&vars).into_iter().map(|(d, _, _)| d).collect();
    dirs.extend(run_dirs);
    dirs.reverse();
    // Children before parents, whatever the layout.
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in &dirs {
        run.rmdir_if_empty(dir)?;
    }
    if opts.purge {
        run.exists_gone("user", &vars.user.clone(), &["userdel", &vars.user])?;
        run.exists_gone("group", &vars.group.clone(), &["groupdel", &vars.group])?;
    }
    Ok(())
}

/// `decnet init --deinit`: stops and disables every installed DECNET unit (enumerated from
/// the unit files, so units outside the target stop too), removes what init wrote, and
/// removes directories only when empty. With `purge`, also data, logs, configuration and
/// the user and group. Runs every step even after a FAIL.
///
/// # Errors
/// [`Error::Template`] when rendering fails, before anything is changed.
pub fn deinit(
    opts: &DeinitOptions,
    sys: Option<&mut dyn System>,
    on_step: &mut dyn FnMut(&Step),
) -> Result<Vec<Step>, Error> {
    let files = render(Mode::Master, &opts.vars)?;
    let mut placeholders = Vec::new();
    for mode in Mode::ALL {
        for f in render(mode, &opts.vars)? {
            if f.kind == Kind::HostConfig {
                placeholders.push(f.text);
            }
        }
    }
    let mut run = Run {
        root: &opts.root,
        vars: &opts.vars,
        // Shortens the trait object's lifetime to the run's (a coercion Option hides).
        sys: sys.map(|s| -> &mut dyn System { s }),
        dry_run: opts.dry_run,
        stop_on_fail: false,
        steps: Vec::new(),
        on_step,
    };
    let side = side_files(&opts.vars)?;
    let _ = deinit_steps(&mut run, opts, &files, &side, &placeholders);
    Ok(run.steps)
}
