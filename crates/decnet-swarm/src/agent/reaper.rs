//! Starting the self-destruct reaper so that it outlives the agent and runs as root.
//!
//! The script itself ([`ReaperScript`]) comes from `decnet-systemd`, the one generator for
//! every way it runs. How it is started depends on the host, tried in this order:
//!
//! 1. **Installed unit** (a `decnet init --mode agent` host, where the agent runs as the
//!    unprivileged daemon user in its sandbox): `systemctl --no-block start
//!    decnet-reaper.service`. Polkit admits exactly that request from the daemon user; PID 1
//!    runs the root-owned script init installed, in that unit's own cgroup. The agent
//!    writes nothing: a script it wrote would be code the daemon user chose, run as root.
//! 2. **Transient unit** (systemd is PID 1 but that unit is not installed, e.g. an agent
//!    run by hand as root): the agent writes the script, mode 0700 at creation, into a
//!    0700 directory of its own under the runtime directory (`/run/decnet/reaper-XXXXXXXX/`,
//!    which PID 1 sees at the same path, unlike a private `/tmp`), then `systemd-run
//!    --collect --unit decnet-reaper-<pid> … /bin/sh <script>`.
//! 3. **Detached session** (no systemd, or neither `systemctl` nor `systemd-run` on PATH):
//!    the same script, started with `setsid -f` (or in a process group of its own), never
//!    awaited.
//!
//! When systemd refuses both 1 and 2 (no polkit grant, not root), nothing else is tried:
//! the script would run as the daemon user inside the agent's own cgroup, unable to stop
//! units or remove root's files, and killed if it ever stopped the agent. The error is
//! logged for the operator instead.

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

pub use decnet_systemd::reaper::{REAPER_UNIT, ReaperScript};
use decnet_systemd::registry::UNIT_DIR;

use crate::{Error, Result};

/// Longest `systemctl --no-block start` or `systemd-run` may take: both return once PID 1
/// has queued the job (started the transient unit), well within this.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a failed start command's stderr is kept for the error.
pub const MAX_COMMAND_STDERR: usize = 2048;
/// Exists when systemd is PID 1 (`sd_booted(3)`); visible inside the agent's sandbox.
pub const SYSTEMD_RUNTIME_DIR: &str = "/run/systemd/system";
/// Attempts at a fresh random directory name before giving up.
const MAX_DIR_ATTEMPTS: usize = 8;

/// How the reaper is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `systemctl start` of the installed [`REAPER_UNIT`] (runs the script init installed).
    InstalledUnit,
    /// `systemd-run` of a transient unit running the script the agent wrote.
    TransientUnit,
    /// A detached session running the script the agent wrote (no systemd).
    DetachedSession,
}

/// One way of starting the reaper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnPlan {
    /// Program.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Which way it is.
    pub via: Via,
}

impl SpawnPlan {
    /// Whether PID 1 runs the reaper (outside the agent's cgroup).
    pub fn systemd(&self) -> bool {
        self.via != Via::DetachedSession
    }

    /// Whether the starter must wait for the command and check its exit status
    /// (`systemctl`, `systemd-run` and `setsid -f` return at once; a bare `/bin/sh` is the
    /// reaper itself).
    pub fn awaited(&self) -> bool {
        self.via != Via::DetachedSession || self.program.ends_with("setsid")
    }

    fn command_line(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Finds a program on PATH (injected so tests can pretend systemd is or is not there).
pub type Lookup = Arc<dyn Fn(&str) -> Option<PathBuf> + Send + Sync>;

/// The real PATH lookup.
pub fn path_lookup() -> Lookup {
    Arc::new(|name: &str| {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Creates `<dir>/reaper-<random>/` (mode 0700 from creation, failing rather than reusing
/// an existing directory) and writes `script` into it as `reaper.sh` (mode 0700 from
/// creation, `O_CREAT|O_EXCL`). Returns the script's path.
///
/// # Errors
/// [`Error::Io`].
pub fn write_script(dir: &Path, script: &str) -> Result<PathBuf> {
    let mut attempt = 0;
    let own = loop {
        let own = dir.join(format!("reaper-{:08x}", rand::random::<u32>()));
        match std::fs::DirBuilder::new().mode(0o700).create(&own) {
            Ok(()) => break own,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                attempt += 1;
                if attempt >= MAX_DIR_ATTEMPTS {
                    return Err(Error::io("create directory", &own)(e));
                }
            }
            Err(e) => return Err(Error::io("create directory", &own)(e)),
        }
    };
    let path = own.join("reaper.sh");
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o700)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&path)
        .map_err(Error::io("create", &path))
        .and_then(|mut file| {
            std::io::Write::write_all(&mut file, script.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(Error::io("write", &path))
        });
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&own);
        return Err(e);
    }
    Ok(path)
}

/// `systemctl --no-block --no-ask-password start decnet-reaper.service`.
pub fn installed_unit_plan(systemctl: PathBuf) -> SpawnPlan {
    SpawnPlan {
        program: systemctl,
        args: vec![
            "--no-block".into(),
            "--no-ask-password".into(),
            "start".into(),
            REAPER_UNIT.into(),
        ],
        via: Via::InstalledUnit,
    }
}

/// `systemd-run --collect --unit decnet-reaper-<pid> … /bin/sh <script>`: a transient
/// service owned by PID 1, outside the agent's cgroup.
pub fn transient_unit_plan(systemd_run: PathBuf, script: &Path) -> SpawnPlan {
    SpawnPlan {
        program: systemd_run,
        args: vec![
            "--collect".into(),
            "--unit".into(),
            format!("decnet-reaper-{}", std::process::id()),
            "--description".into(),
            "DECNET agent self-destruct reaper".into(),
            "--no-ask-password".into(),
            "/bin/sh".into(),
            script.to_string_lossy().into_owned(),
        ],
        via: Via::TransientUnit,
    }
}

/// `setsid -f /bin/sh <script>` when `setsid` exists, else `/bin/sh <script>` (started in
/// a process group of its own).
pub fn detached_session_plan(script: &Path, lookup: &Lookup) -> SpawnPlan {
    let script = script.to_string_lossy().into_owned();
    match lookup("setsid") {
        Some(setsid) => SpawnPlan {
            program: setsid,
            args: vec!["-f".into(), "/bin/sh".into(), script],
            via: Via::DetachedSession,
        },
        None => SpawnPlan {
            program: PathBuf::from("/bin/sh"),
            args: vec![script],
            via: Via::DetachedSession,
        },
    }
}

/// Starts a plan (injected so tests can record instead of run).
pub trait Spawner: Send + Sync {
    /// Starts the plan. An [awaited](SpawnPlan::awaited) plan is run to completion (within
    /// [`START_TIMEOUT`]) and fails on a non-zero exit; any other is started and left
    /// running, never waited for by the caller.
    ///
    /// # Errors
    /// [`Error::Command`] when it cannot be started, times out or fails.
    fn spawn(&self, plan: &SpawnPlan) -> Result<()>;
}

/// Runs plans on this host: stdio on /dev/null (stderr captured, bounded, for awaited
/// plans), each in a process group of its own.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostSpawner;

impl Spawner for HostSpawner {
    fn spawn(&self, plan: &SpawnPlan) -> Result<()> {
        let fail = |reason: String| Error::Command {
            command: plan.command_line(),
            reason,
        };
        let mut child = Command::new(&plan.program)
            .args(&plan.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if plan.awaited() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .process_group(0)
            .spawn()
            .map_err(|e| fail(format!("could not start: {e}")))?;
        if !plan.awaited() {
            // Reaped on a thread so no zombie is left while the agent lives.
            std::thread::spawn(move || {
                let _ = child.wait();
            });
            return Ok(());
        }
        let (status, first) =
            decnet_systemd::system::wait_bounded(child, START_TIMEOUT, MAX_COMMAND_STDERR)
                .map_err(fail)?;
        if status.success() {
            return Ok(());
        }
        Err(fail(if first.is_empty() {
            format!("failed: {status}")
        } else {
            format!("failed: {status}: {first}")
        }))
    }
}

/// Everything self-destruct needs after the runtime purge.
#[derive(Clone)]
pub struct Reaper {
    /// The script parameters (its `root` also locates the installed reaper unit).
    pub script: ReaperScript,
    /// Where the agent writes its own copy of the script (ways 2 and 3): a directory PID 1
    /// sees at the same path and that is not inside the install (the runtime directory,
    /// `/run/decnet`). When it does not exist, the system temporary directory is used.
    pub temp_dir: PathBuf,
    /// PATH lookup.
    pub lookup: Lookup,
    /// Process starter.
    pub spawner: Arc<dyn Spawner>,
    /// Whose existence says systemd is PID 1 ([`SYSTEMD_RUNTIME_DIR`]).
    pub systemd_dir: PathBuf,
}

impl std::fmt::Debug for Reaper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reaper")
            .field("script", &self.script)
            .field("temp_dir", &self.temp_dir)
            .field("systemd_dir", &self.systemd_dir)
            .finish_non_exhaustive()
    }
}

impl Default for Reaper {
    fn default() -> Self {
        Reaper {
            script: ReaperScript::default(),
            temp_dir: decnet_core::Settings::system().run_dir,
            lookup: path_lookup(),
            spawner: Arc::new(HostSpawner),
            systemd_dir: PathBuf::from(SYSTEMD_RUNTIME_DIR),
        }
    }
}

impl Reaper {
    /// Whether `decnet init` installed [`REAPER_UNIT`] under the script's root.
    pub fn unit_installed(&self) -> bool {
        self.script
            .root
            .join(UNIT_DIR.trim_start_matches('/'))
            .join(REAPER_UNIT)
            .is_file()
    }

    /// Writes the agent's own copy of the script (into its own 0700 directory).
    fn write_own_script(&self) -> Result<PathBuf> {
        let script = ReaperScript {
            own_dir: true,
            ..self.script.clone()
        }
        .render()?;
        let dir = if self.temp_dir.is_dir() {
            self.temp_dir.clone()
        } else {
            std::env::temp_dir()
        };
        write_script(&dir, &script)
    }

    fn start(&self, plan: SpawnPlan, script: Option<&Path>) -> Result<SpawnPlan> {
        match self.spawner.spawn(&plan) {
            Ok(()) => {
                tracing::warn!(
                    command = %plan.command_line(),
                    via = ?plan.via,
                    "Self-destruct reaper started"
                );
                Ok(plan)
            }
            Err(e) => {
                if let Some(own) = script.and_then(Path::parent) {
                    let _ = std::fs::remove_dir_all(own);
                }
                tracing::warn!(error = %e, via = ?plan.via, "Reaper start refused");
                Err(e)
            }
        }
    }

    /// Starts the reaper the first way the host accepts (see the module documentation);
    /// returns the plan that was started. Blocks for at most a few [`START_TIMEOUT`]s:
    /// call it off the async runtime.
    ///
    /// # Errors
    /// [`Error::Command`] from the last systemd way tried when systemd refused them all
    /// (or the detached session could not start), [`Error::Io`] when the script cannot be
    /// written.
    pub fn launch(&self) -> Result<SpawnPlan> {
        let booted = self.systemd_dir.is_dir();
        let mut refused = None;
        if booted
            && self.unit_installed()
            && let Some(systemctl) = (self.lookup)("systemctl")
        {
            match self.start(installed_unit_plan(systemctl), None) {
                Ok(plan) => return Ok(plan),
                Err(e) => refused = Some(e),
            }
        }
        if booted && let Some(systemd_run) = (self.lookup)("systemd-run") {
            let script = self.write_own_script()?;
            match self.start(transient_unit_plan(systemd_run, &script), Some(&script)) {
                Ok(plan) => return Ok(plan),
                Err(e) => refused = Some(e),
            }
        }
        if let Some(e) = refused {
            return Err(e);
        }
        if booted {
            tracing::warn!(
                "systemd runs but neither systemctl nor systemd-run is on PATH: \
                 the reaper runs as a detached session of the agent"
            );
        }
        let script = self.write_own_script()?;
        let plan = detached_session_plan(&script, &self.lookup);
        self.start(plan, Some(&script))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;
    use std::sync::Mutex;
    use std::time::Instant;

    use super::*;

    /// Records plans; refuses those whose `via` is listed.
    #[derive(Default)]
    struct Recorder {
        plans: Mutex<Vec<SpawnPlan>>,
        refuse: Vec<Via>,
    }

    impl Spawner for Recorder {
        fn spawn(&self, plan: &SpawnPlan) -> Result<()> {
            self.plans.lock().unwrap().push(plan.clone());
            if self.refuse.contains(&plan.via) {
                return Err(Error::Command {
                    command: plan.command_line(),
                    reason: "failed: exit status: 1: Access denied".into(),
                });
            }
            Ok(())
        }
    }

    fn lookup(names: &'static [&'static str]) -> Lookup {
        Arc::new(move |n: &str| {
            names
                .contains(&n)
                .then(|| PathBuf::from(format!("/usr/bin/{n}")))
        })
    }

    /// A reaper over temporary directories: `root` (with the reaper unit installed or
    /// not), the runtime directory, and systemd running or not.
    struct Setup {
        dir: tempfile::TempDir,
        recorder: Arc<Recorder>,
        reaper: Reaper,
    }

    fn setup(
        installed: bool,
        booted: bool,
        names: &'static [&'static str],
        refuse: Vec<Via>,
    ) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let units = root.join("etc/systemd/system");
        std::fs::create_dir_all(&units).unwrap();
        if installed {
            std::fs::write(units.join(REAPER_UNIT), "[Service]\n").unwrap();
        }
        let run = dir.path().join("run-decnet");
        std::fs::create_dir(&run).unwrap();
        let systemd_dir = dir.path().join("run-systemd-system");
        if booted {
            std::fs::create_dir(&systemd_dir).unwrap();
        }
        let recorder = Arc::new(Recorder {
            refuse,
            ..Recorder::default()
        });
        let reaper = Reaper {
            script: ReaperScript {
                root,
                delay_secs: 0,
                systemctl: "true".into(),
                docker: "none".into(),
                own_dir: false,
            },
            temp_dir: run,
            lookup: lookup(names),
            spawner: recorder.clone(),
            systemd_dir,
        };
        Setup {
            dir,
            recorder,
            reaper,
        }
    }

    fn own_dirs(s: &Setup) -> Vec<PathBuf> {
        std::fs::read_dir(&s.reaper.temp_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    #[test]
    fn a_hardened_install_starts_the_installed_unit_and_writes_nothing() {
        let s = setup(true, true, &["systemctl", "systemd-run", "setsid"], vec![]);
        let plan = s.reaper.launch().unwrap();
        assert_eq!(plan.via, Via::InstalledUnit);
        assert_eq!(plan.program, Path::new("/usr/bin/systemctl"));
        assert_eq!(
            plan.args,
            [
                "--no-block",
                "--no-ask-password",
                "start",
                "decnet-reaper.service"
            ]
        );
        assert!(plan.systemd() && plan.awaited());
        assert_eq!(s.recorder.plans.lock().unwrap().len(), 1);
        assert!(own_dirs(&s).is_empty(), "the agent wrote a script");
    }

    #[test]
    fn without_the_unit_a_transient_unit_runs_a_script_pid1_can_see() {
        let s = setup(false, true, &["systemctl", "systemd-run", "setsid"], vec![]);
        let plan = s.reaper.launch().unwrap();
        assert_eq!(plan.via, Via::TransientUnit);
        assert_eq!(plan.program, Path::new("/usr/bin/systemd-run"));
        assert_eq!(
            plan.args[..3],
            [
                "--collect".to_owned(),
                "--unit".to_owned(),
                format!("decnet-reaper-{}", std::process::id())
            ]
        );
        assert_eq!(plan.args[plan.args.len() - 2], "/bin/sh");
        // The script: in a 0700 directory of its own under the runtime directory, 0700.
        let script = PathBuf::from(plan.args.last().unwrap());
        let own = script.parent().unwrap();
        assert_eq!(own.parent().unwrap(), s.reaper.temp_dir);
        assert!(
            own.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("reaper-")
        );
        assert_eq!(std::fs::metadata(own).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(std::fs::metadata(&script).unwrap().mode() & 0o7777, 0o700);
        let text = std::fs::read_to_string(&script).unwrap();
        assert!(text.contains(&format!("ROOT='{}'", s.reaper.script.root.display())));
        assert!(
            text.ends_with("rmdir \"${SELF%/*}\" 2>/dev/null || true\n"),
            "{text}"
        );
    }

    #[test]
    fn a_refused_unit_start_falls_back_to_a_transient_unit() {
        let s = setup(
            true,
            true,
            &["systemctl", "systemd-run", "setsid"],
            vec![Via::InstalledUnit],
        );
        let plan = s.reaper.launch().unwrap();
        assert_eq!(plan.via, Via::TransientUnit);
        let tried: Vec<Via> = s
            .recorder
            .plans
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.via)
            .collect();
        assert_eq!(tried, [Via::InstalledUnit, Via::TransientUnit]);
    }

    #[test]
    fn under_systemd_nothing_runs_inside_the_agents_cgroup() {
        // Both systemd ways refused (no polkit grant, not root): no detached fallback, and
        // the script written for the transient unit is gone again.
        let s = setup(
            true,
            true,
            &["systemctl", "systemd-run", "setsid"],
            vec![Via::InstalledUnit, Via::TransientUnit],
        );
        let err = s.reaper.launch().unwrap_err().to_string();
        assert!(
            err.contains("systemd-run") && err.contains("Access denied"),
            "{err}"
        );
        let tried: Vec<Via> = s
            .recorder
            .plans
            .lock()
            .unwrap()
            .iter()
            .map(|p| p.via)
            .collect();
        assert_eq!(tried, [Via::InstalledUnit, Via::TransientUnit]);
        assert!(own_dirs(&s).is_empty());
        // Only the installed unit on offer, refused: the same.
        let s = setup(
            true,
            true,
            &["systemctl", "setsid"],
            vec![Via::InstalledUnit],
        );
        assert!(s.reaper.launch().is_err());
        assert_eq!(s.recorder.plans.lock().unwrap().len(), 1);
        assert!(own_dirs(&s).is_empty());
    }

    #[test]
    fn without_systemd_a_detached_session_runs_the_script() {
        // systemd-run on PATH means nothing when systemd is not PID 1 (a container).
        let s = setup(true, false, &["systemctl", "systemd-run", "setsid"], vec![]);
        let plan = s.reaper.launch().unwrap();
        assert_eq!(plan.via, Via::DetachedSession);
        assert!(!plan.systemd() && plan.awaited());
        assert_eq!(plan.program, Path::new("/usr/bin/setsid"));
        assert_eq!(plan.args[..2], ["-f".to_owned(), "/bin/sh".to_owned()]);
        let script = Path::new(plan.args.last().unwrap());
        assert!(script.starts_with(&s.reaper.temp_dir) && script.is_file());

        // No setsid either: the shell itself, in a process group of its own.
        let s = setup(false, false, &[], vec![]);
        let plan = s.reaper.launch().unwrap();
        assert_eq!(plan.program, Path::new("/bin/sh"));
        assert!(!plan.awaited());
        assert_eq!(plan.args.len(), 1);
        // systemd runs but its tools are not on PATH: nothing systemd can be asked, so the
        // detached session it is.
        let s = setup(true, true, &["setsid"], vec![]);
        assert_eq!(s.reaper.launch().unwrap().via, Via::DetachedSession);
        assert!(s.dir.path().exists());
    }

    #[test]
    fn scripts_are_created_0700_in_a_fresh_0700_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write_script(tmp.path(), "#!/bin/sh\n").unwrap();
        let b = write_script(tmp.path(), "#!/bin/sh\n").unwrap();
        assert_ne!(a.parent(), b.parent(), "each script gets its own directory");
        for p in [&a, &b] {
            assert_eq!(std::fs::metadata(p).unwrap().mode() & 0o7777, 0o700);
            assert_eq!(
                std::fs::metadata(p.parent().unwrap()).unwrap().mode() & 0o7777,
                0o700
            );
            assert_eq!(p.file_name().unwrap(), "reaper.sh");
        }
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "#!/bin/sh\n");
        assert!(write_script(&tmp.path().join("missing"), "x").is_err());
    }

    #[test]
    fn the_host_spawner_reports_failures_and_runs_the_fallback_script() {
        let tmp = tempfile::tempdir().unwrap();
        let failing = SpawnPlan {
            program: PathBuf::from("/bin/sh"),
            args: vec![
                "-c".into(),
                "echo 'Failed: Access denied' >&2; exit 4".into(),
            ],
            via: Via::TransientUnit,
        };
        let err = HostSpawner.spawn(&failing).unwrap_err().to_string();
        assert!(
            err.contains("exit status: 4: Failed: Access denied"),
            "{err}"
        );
        let missing = SpawnPlan {
            program: PathBuf::from("/nonexistent/systemd-run"),
            args: vec![],
            via: Via::TransientUnit,
        };
        assert!(
            HostSpawner
                .spawn(&missing)
                .unwrap_err()
                .to_string()
                .contains("could not start")
        );
        // A real detached run of a real script against a fake root.
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("opt/decnet/bin")).unwrap();
        std::fs::create_dir_all(root.join("var/log/decnet")).unwrap();
        std::fs::write(root.join("var/log/decnet/decnet.agent.log"), "kept").unwrap();
        let reaper = Reaper {
            script: ReaperScript {
                root: root.clone(),
                delay_secs: 0,
                systemctl: "true".into(),
                docker: "decnet-test-no-such-docker".into(),
                own_dir: false,
            },
            temp_dir: tmp.path().to_path_buf(),
            lookup: path_lookup(),
            spawner: Arc::new(HostSpawner),
            systemd_dir: tmp.path().join("no-systemd"),
        };
        let plan = reaper.launch().unwrap();
        assert_eq!(plan.via, Via::DetachedSession);
        let script = PathBuf::from(plan.args.last().unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        while script.parent().unwrap().exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !script.parent().unwrap().exists(),
            "script and its dir not removed"
        );
        assert!(!root.join("opt/decnet").exists());
        assert_eq!(
            std::fs::read_to_string(root.join("var/log/decnet/decnet.agent.log")).unwrap(),
            "kept"
        );
    }
}
