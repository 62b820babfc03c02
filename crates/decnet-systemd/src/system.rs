//! The host's account database and commands, behind a trait so the step engine runs
//! against a fake in tests.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::Error;

/// Longest a command may run (`systemctl enable --now` waits for every start job).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);
/// How much of a failing command's stderr is kept for the report.
pub const MAX_COMMAND_OUTPUT: usize = 2048;
/// Directories searched for commands. Fixed on purpose: the engine never trusts `PATH`.
pub const COMMAND_DIRS: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// What the step engine needs from the host besides its file system.
pub trait System {
    /// Whether the process may change the host (effective uid 0).
    fn is_root(&mut self) -> bool;
    /// Whether a command exists.
    fn has_command(&mut self, program: &str) -> bool;
    /// The uid of a user, `None` when there is no such user.
    ///
    /// # Errors
    /// When the lookup itself fails.
    fn user_id(&mut self, name: &str) -> Result<Option<u32>, Error>;
    /// The gid of a group, `None` when there is no such group.
    ///
    /// # Errors
    /// When the lookup itself fails.
    fn group_id(&mut self, name: &str) -> Result<Option<u32>, Error>;
    /// Runs a command that changes the host; success is exit status 0.
    ///
    /// # Errors
    /// [`Error::Command`] when it cannot start, times out or fails.
    fn run(&mut self, argv: &[&str]) -> Result<(), Error>;
    /// Runs a read-only query whose exit status is the answer (`systemctl is-active`).
    ///
    /// # Errors
    /// [`Error::Command`] when it cannot start or times out.
    fn query(&mut self, argv: &[&str]) -> Result<bool, Error>;
}

/// The real host: NSS lookups, commands from [`COMMAND_DIRS`] with a timeout.
#[derive(Debug, Default)]
pub struct HostSystem;

fn find(program: &str) -> Option<PathBuf> {
    COMMAND_DIRS
        .iter()
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

fn joined(argv: &[&str]) -> String {
    argv.join(" ")
}

/// Runs `argv` to completion within [`COMMAND_TIMEOUT`]; returns whether it exited 0 and
/// the start of its stderr.
fn execute(argv: &[&str]) -> Result<(bool, String), Error> {
    let fail = |reason: String| Error::Command {
        command: joined(argv),
        reason,
    };
    let (program, args) = argv.split_first().ok_or_else(|| fail("is empty".into()))?;
    let path = find(program).ok_or_else(|| fail("not found".into()))?;
    let child = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| fail(format!("could not start: {e}")))?;
    let (status, first) = wait_bounded(child, COMMAND_TIMEOUT, MAX_COMMAND_OUTPUT).map_err(fail)?;
    if status.success() {
        Ok((true, first))
    } else {
        Ok((
            false,
            format!(
                "{status}{}{first}",
                if first.is_empty() { "" } else { ": " }
            ),
        ))
    }
}

/// Waits for `child` at most `timeout` (killing and reaping it past that) and returns its
/// exit status with the first non-empty line of its stderr, when stderr was piped. The
/// stderr is read on a thread, so a chatty command never blocks on a full pipe; only the
/// first `max_stderr` bytes are kept, the rest is discarded.
///
/// # Errors
/// The reason, as a message fragment: `timed out after …s` or `wait failed: …`.
pub fn wait_bounded(
    mut child: Child,
    timeout: Duration,
    max_stderr: usize,
) -> Result<(ExitStatus, String), String> {
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut err) = stderr {
            let _ = err.by_ref().take(max_stderr as u64).read_to_end(&mut kept);
            let _ = std::io::copy(&mut err, &mut std::io::sink());
        }
        String::from_utf8_lossy(&kept).into_owned()
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {}s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("wait failed: {e}")),
        }
    };
    let stderr = reader.join().unwrap_or_default();
    let first = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned();
    Ok((status, first))
}

impl System for HostSystem {
    fn is_root(&mut self) -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn has_command(&mut self, program: &str) -> bool {
        find(program).is_some()
    }

    fn user_id(&mut self, name: &str) -> Result<Option<u32>, Error> {
        nix::unistd::User::from_name(name)
            .map(|u| u.map(|u| u.uid.as_raw()))
            .map_err(|source| Error::Lookup {
                what: "user",
                name: name.to_owned(),
                source,
            })
    }

    fn group_id(&mut self, name: &str) -> Result<Option<u32>, Error> {
        nix::unistd::Group::from_name(name)
            .map(|g| g.map(|g| g.gid.as_raw()))
            .map_err(|source| Error::Lookup {
                what: "group",
                name: name.to_owned(),
                source,
            })
    }

    fn run(&mut self, argv: &[&str]) -> Result<(), Error> {
        match execute(argv)? {
            (true, _) => Ok(()),
            (false, reason) => Err(Error::Command {
                command: joined(argv),
                reason: format!("failed: {reason}"),
            }),
        }
    }

    fn query(&mut self, argv: &[&str]) -> Result<bool, Error> {
        execute(argv).map(|(ok, _)| ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_report_status_and_stderr() {
        let mut sys = HostSystem;
        assert!(sys.query(&["true"]).unwrap());
        assert!(!sys.query(&["false"]).unwrap());
        sys.run(&["true"]).unwrap();
        let err = sys
            .run(&["sh", "-c", "echo boom >&2; exit 3"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("exit status: 3: boom"), "{err}");
        let err = sys
            .run(&["no-such-program-decnet"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not found"), "{err}");
    }

    #[test]
    fn long_stderr_is_bounded() {
        let (ok, text) = execute(&[
            "sh",
            "-c",
            "head -c 1000000 /dev/zero | tr '\\0' x >&2; exit 1",
        ])
        .unwrap();
        assert!(!ok);
        assert!(text.len() <= MAX_COMMAND_OUTPUT + 64, "{}", text.len());
    }

    #[test]
    fn lookups_find_root_and_miss_nonsense() {
        let mut sys = HostSystem;
        assert_eq!(sys.user_id("root").unwrap(), Some(0));
        assert_eq!(sys.group_id("root").unwrap(), Some(0));
        assert_eq!(sys.user_id("no-such-user-decnet").unwrap(), None);
        assert!(sys.has_command("sh"));
    }
}
