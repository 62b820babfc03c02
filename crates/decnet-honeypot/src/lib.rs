//! DECNET's honeypot services: the protocol emulators that run inside decky containers,
//! the emulated shell, and the event/credential schema they emit.
//!
//! Read in this order:
//! - [`event`]: [`event::Event`], the universal [`event::Credential`] shape, and the sinks
//!   that write one RFC 5424 line per event;
//! - [`persona`]: who the decky pretends to be (name, hostname, distro, kernel, seed and
//!   the service's persona settings);
//! - [`server`]: the connection harness (budgets, timeouts, connect/disconnect events) and
//!   the [`server::Emulator`] trait;
//! - [`services`]: the registry and one folder per emulated service;
//! - [`artifacts`]: size-capped artifact files (mail, uploads) named by our own time
//!   stamp and hash, never by attacker input.
//!
//! Emulators only emit: events on stdout and size-capped artifacts in the directory they
//! are given. They never touch the database, the bus, Docker, the master or the Internet,
//! and nothing an attacker sends is executed, fetched or used as a host path. This crate
//! links no control-plane code (only `decnet-core` and `decnet-wire`).

pub mod artifacts;
pub mod event;
pub mod persona;
pub mod server;
pub mod services;
pub mod shell;
pub mod transcript;

/// Errors of the honeypot crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bad persona or service configuration.
    #[error("configuration: {0}")]
    Config(String),
    /// The service is not served by this build.
    #[error("unknown service '{0}' (this decnet-decky serves: {1})")]
    UnknownService(String, String),
    /// A socket or file operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}
