//! The crate's error type.

use std::path::{Path, PathBuf};

/// Errors of the swarm control plane.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input refused before anything was changed (names, addresses, bodies, configs).
    #[error("{0}")]
    Invalid(String),
    /// The agent directory holds no enrolled bundle.
    #[error(
        "no enrolled agent bundle in {}: run `decnet agent enroll --master URL --token TOKEN \
         --master-fingerprint FP` first",
        dir.display()
    )]
    NotEnrolled {
        /// The agent directory looked at.
        dir: PathBuf,
    },
    /// The thing asked about does not exist (unknown decky, nothing deployed).
    #[error("{0}")]
    NotFound(String),
    /// Certificate generation, parsing or signing failed.
    #[error("certificate: {0}")]
    Pki(String),
    /// TLS configuration failed.
    #[error("tls: {0}")]
    Tls(String),
    /// A peer presented a certificate that is not the pinned one.
    #[error("peer certificate fingerprint mismatch (expected {expected}…, got {actual}…)")]
    PinMismatch {
        /// First 16 hex digits of the pinned fingerprint.
        expected: String,
        /// First 16 hex digits of the presented one.
        actual: String,
    },
    /// An HTTP call failed before an answer arrived (connect, TLS, timeout).
    #[error("{what}: {source}")]
    Transport {
        /// Which call.
        what: String,
        /// Cause.
        #[source]
        source: reqwest::Error,
    },
    /// An HTTP call got an unexpected status.
    #[error("{what}: HTTP {status}: {detail}")]
    Status {
        /// Which call.
        what: String,
        /// The status code.
        status: u16,
        /// The `detail` field of the body, or its first bytes.
        detail: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] decnet_store::Error),
    /// The domain crate refused something.
    #[error(transparent)]
    Core(#[from] decnet_core::Error),
    /// The runtime backend failed.
    #[error("runtime: {0}")]
    Runtime(String),
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// A socket operation failed.
    #[error("{op}: {source}")]
    Net {
        /// What was being done.
        op: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The systemd deployment surface failed (rendering the reaper script).
    #[error(transparent)]
    Systemd(#[from] decnet_systemd::Error),
    /// A command could not be started, timed out, or exited non-zero.
    #[error("command `{command}` {reason}")]
    Command {
        /// The command line, space-joined.
        command: String,
        /// What went wrong (exit status and the start of its stderr, timeout, spawn error).
        reason: String,
    },
    /// A JSON document could not be encoded or decoded.
    #[error("{what}: {source}")]
    Json {
        /// Which document.
        what: String,
        /// Cause.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// An IO error on `path`.
    pub fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Self + 'a {
        move |source| Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// An [`Error::Invalid`].
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }

    /// True for bad input found before anything was changed (exit status 2).
    pub fn is_validation(&self) -> bool {
        match self {
            Error::Invalid(_) | Error::NotEnrolled { .. } => true,
            Error::Core(e) => e.is_validation(),
            _ => false,
        }
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
