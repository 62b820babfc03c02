//! The crate's error type.

use std::time::Duration;

/// Why a pass (or a fleet operation) could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database failed (listing the host's rows, or a whole-fleet operation).
    #[error("fleet store")]
    Store(#[from] decnet_store::Error),
    /// The state file could not be read (a missing file is not an error: it is an empty
    /// desired fleet).
    #[error("state file")]
    State(#[from] decnet_core::Error),
    /// The pass did not finish in time.
    #[error("reconcile pass timed out after {0:?}")]
    Timeout(Duration),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
