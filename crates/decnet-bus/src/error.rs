//! The crate's error type.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// Everything that can go wrong on the bus.
#[derive(Debug, Error)]
pub enum Error {
    /// A topic does not follow the grammar (see [`crate::Topic`]).
    #[error("invalid topic {topic:?}: {reason}")]
    InvalidTopic {
        /// The refused text (cut to 200 bytes).
        topic: String,
        /// The broken rule.
        reason: &'static str,
    },
    /// A subscription pattern does not follow the grammar (see [`crate::Pattern`]).
    #[error("invalid pattern {pattern:?}: {reason}")]
    InvalidPattern {
        /// The refused text (cut to 200 bytes).
        pattern: String,
        /// The broken rule.
        reason: &'static str,
    },
    /// An id used as one topic token is not a safe token (see [`crate::IdToken`]).
    #[error("invalid {what} {token:?}: {reason}")]
    InvalidToken {
        /// What the token names (`worker`, `topology id`, …).
        what: &'static str,
        /// The refused text (cut to 200 bytes).
        token: String,
        /// The broken rule.
        reason: &'static str,
    },
    /// A body is not a valid v1 envelope.
    #[error("invalid envelope: {0}")]
    Envelope(String),
    /// A payload given to a publish helper is not a JSON object.
    #[error("payload is not a json object")]
    PayloadNotObject,
    /// A payload does not fit the type it was read into.
    #[error("payload does not fit the requested type")]
    PayloadType(#[source] serde_json::Error),
    /// The bus handle was closed.
    #[error("bus is closed")]
    Closed,
    /// The socket client has no connection to the broker right now.
    #[error("not connected to the bus at {0}")]
    NotConnected(String),
    /// The broker did not acknowledge a SUB in time.
    #[error("subscription to {pattern:?} not acknowledged within {timeout:?}")]
    AckTimeout {
        /// The pattern.
        pattern: String,
        /// How long the client waited.
        timeout: Duration,
    },
    /// A frame could not be encoded or decoded.
    #[error("bus protocol error")]
    Frame(#[from] decnet_wire::bus::FrameError),
    /// The peer broke the protocol above the frame level.
    #[error("bus protocol error: {0}")]
    Protocol(String),
    /// The broker socket's parent directory does not exist.
    #[error("socket directory {0} does not exist")]
    MissingParent(PathBuf),
    /// Something that is not a socket sits at the socket path.
    #[error("{0} exists and is not a socket")]
    NotASocket(PathBuf),
    /// Another broker is already listening on the socket path.
    #[error("another broker is listening on {0}")]
    AlreadyRunning(PathBuf),
    /// An I/O operation on a socket path failed.
    #[error("{what} {path}")]
    Io {
        /// The operation (`bind`, `connect to`, `chmod`, …).
        what: &'static str,
        /// The path it was about.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// An I/O error on an established connection.
    #[error("bus connection")]
    Connection(#[source] std::io::Error),
    /// The NATS backend failed.
    #[error("nats {what}: {message}")]
    Nats {
        /// The operation.
        what: &'static str,
        /// The client's error text (its error types are not `'static + Sync` everywhere).
        message: String,
    },
    /// `DECNET_BUS_TYPE` names no backend.
    #[error("unsupported bus type {0:?} (expected unix, nats or memory)")]
    UnsupportedType(String),
    /// Writing subscriber output failed.
    #[error("writing output")]
    Output(#[source] std::io::Error),
}

/// Cuts text kept in an error so that hostile input cannot make errors large.
pub(crate) fn shown(text: &str) -> String {
    const MAX_SHOWN: usize = 200;
    if text.len() <= MAX_SHOWN {
        return text.to_owned();
    }
    let mut cut = MAX_SHOWN;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}
