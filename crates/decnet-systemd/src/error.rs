//! The crate's error type.

use std::path::PathBuf;

/// Errors of the systemd deployment surface.
///
/// [`Error::Invalid`] is bad input (exit status 2 at the CLI, nothing changed); the others
/// are failures of the templates, the file system or a command.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A user-supplied value (user or group name, path) that cannot go into a unit file.
    #[error("invalid {what} '{value}': {reason}")]
    Invalid {
        /// Which option or setting.
        what: &'static str,
        /// The offending value, as given.
        value: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// An embedded template is malformed (bad header, unknown location, render error).
    #[error("template {name}: {reason}")]
    Template {
        /// Template path relative to `deploy/systemd/`.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file-system operation failed.
    #[error("{op} {}", path.display())]
    Io {
        /// What was being done (`write`, `create directory`, …).
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A command could not be run, timed out, or exited non-zero.
    #[error("command `{command}` {reason}")]
    Command {
        /// The command line, space-joined.
        command: String,
        /// What went wrong (exit status and the start of its stderr, timeout, spawn error).
        reason: String,
    },
    /// Looking up a user or group failed (not "absent": the lookup itself failed).
    #[error("look up {what} '{name}'")]
    Lookup {
        /// `user` or `group`.
        what: &'static str,
        /// The name looked up.
        name: String,
        /// The cause.
        #[source]
        source: nix::Error,
    },
}

impl Error {
    /// Whether this is bad input (exit status 2) rather than a failure.
    pub fn is_validation(&self) -> bool {
        matches!(self, Error::Invalid { .. })
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
