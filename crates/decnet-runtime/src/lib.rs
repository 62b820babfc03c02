//! The only code that talks to Docker or configures host networking.
//!
//! Read in this order:
//! - [`spec`]: the containers a fleet consists of (one naming function, one hardening
//!   policy), shared by the live deploy and the export;
//! - [`compose`]: the compose export rendered from those specs;
//! - [`engine`]: the [`engine::Engine`] contract (Docker as DECNET needs it), with
//!   [`docker::DockerEngine`] over the Engine API and [`fake::FakeEngine`] in memory;
//! - [`image`]: the offline `FROM scratch` decky image;
//! - [`network`] and [`hairpin`]: the decky LAN and the host's way into it;
//! - [`deploy`] and [`teardown`]: converge the engine to a config (a per-container diff,
//!   partial success reported per service), and remove exactly what DECNET created;
//! - [`status`]: the aggregation rule and the runtime map;
//! - [`logs`]: what the log collector reads (timestamped, bounded lines and container
//!   events, through [`engine::Engine::follow_logs`] and
//!   [`engine::Engine::container_events`]);
//! - [`hostnet`]: read-only detection of this host's LAN.
//!
//! Pure modules ([`spec`], [`compose`], [`status::aggregate`]) do no IO, so dry runs need
//! no Docker daemon. Everything DECNET creates in Docker is found again by its
//! `decnet.*` labels, never by name patterns. This crate does not touch the database or
//! the bus: callers mirror its results there.

pub mod compose;
pub mod deploy;
pub mod docker;
pub mod engine;
pub mod fake;
pub mod hairpin;
pub mod hostnet;
pub mod image;
pub mod logs;
pub mod network;
pub mod spec;
pub mod status;
pub mod teardown;

use std::path::{Path, PathBuf};

pub use engine::{Engine, EngineError, ErrorKind};

/// Errors of the runtime crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host's network could not be inspected or configured.
    #[error("host network: {0}")]
    HostNetwork(String),
    /// The request cannot be carried out as given (nothing was changed).
    #[error("{0}")]
    Invalid(String),
    /// A decky name that is not deployed.
    #[error("no decky named '{name}' is deployed (deployed: {known})")]
    UnknownDecky {
        /// The name asked for.
        name: String,
        /// The deployed names, comma-separated.
        known: String,
    },
    /// The container engine failed.
    #[error("docker: {0}")]
    Engine(#[from] EngineError),
    /// Building the decky image failed.
    #[error("building the decky image: {0}")]
    ImageBuild(EngineError),
    /// The state file or configuration failed.
    #[error(transparent)]
    Core(#[from] decnet_core::Error),
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
}

impl Error {
    /// An IO error on `path`.
    pub fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// True for bad input found before anything was changed (exit status 2).
    pub fn is_validation(&self) -> bool {
        match self {
            Error::Invalid(_) | Error::UnknownDecky { .. } => true,
            Error::Core(e) => e.is_validation(),
            _ => false,
        }
    }

    /// True when the container engine could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::Engine(e) if e.kind == ErrorKind::Unreachable)
    }
}
