//! The only code that talks to Docker or configures host networking.
//!
//! Read in this order:
//! - [`spec`]: the containers a fleet consists of (one naming function, one hardening
//!   policy), shared by the live deploy and the export;
//! - [`compose`]: the compose export rendered from those specs;
//! - [`hostnet`]: read-only detection of this host's LAN.
//!
//! Pure modules ([`spec`], [`compose`]) do no IO, so dry runs need no Docker daemon.

pub mod compose;
pub mod hostnet;
pub mod spec;

/// Errors of the runtime crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The host's network could not be inspected or configured.
    #[error("host network: {0}")]
    HostNetwork(String),
}
