//! The crate's error type: every validation failure names its culprit.

use std::net::Ipv4Addr;
use std::path::PathBuf;

/// Where in a configuration file an error was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file name as the user gave it (or `<string>` for text input).
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// Section the line belongs to, when there is one.
    pub section: Option<String>,
    /// Key on that line, when the error concerns a key.
    pub key: Option<String>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)?;
        match (&self.section, &self.key) {
            (Some(s), Some(k)) => write!(f, ": [{s}] key '{k}'"),
            (Some(s), None) => write!(f, ": section [{s}]"),
            (None, Some(k)) => write!(f, ": key '{k}'"),
            (None, None) => Ok(()),
        }
    }
}

/// Errors of the domain crate.
///
/// Every variant except [`Error::Io`] and [`Error::StateFormat`] is a validation error
/// (see [`Error::is_validation`]): bad input that changed nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name or id that breaks its grammar.
    #[error("invalid {what} '{name}': {reason}")]
    InvalidName {
        /// What kind of name ("decky name", "host uuid", ...).
        what: &'static str,
        /// The offending value.
        name: String,
        /// Which rule it broke.
        reason: String,
    },
    /// A slug that is not in a catalogue.
    #[error("unknown {what} '{name}' (known: {known})")]
    Unknown {
        /// Catalogue ("service", "archetype", "distro", "OS family").
        what: &'static str,
        /// The offending slug.
        name: String,
        /// Comma-separated list of valid slugs.
        known: String,
    },
    /// A CIDR, address or number that does not parse or is out of range.
    #[error("invalid {what} '{value}': {reason}")]
    InvalidValue {
        /// What was being parsed.
        what: String,
        /// The offending text.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// The subnet has fewer free addresses than deckies requested.
    #[error(
        "not enough free IPs in {subnet}: {requested} requested, {available} available \
         (network, broadcast, gateway, host and already-used addresses are skipped)"
    )]
    NotEnoughIps {
        /// Subnet being allocated from.
        subnet: String,
        /// Addresses asked for.
        requested: usize,
        /// Addresses that were free.
        available: usize,
    },
    /// Two deckies share an address.
    #[error("duplicate IP {ip}: used by decky '{first}' and decky '{second}'")]
    DuplicateIp {
        /// The shared address.
        ip: Ipv4Addr,
        /// First decky holding it.
        first: String,
        /// Second decky holding it.
        second: String,
    },
    /// Two deckies share a name.
    #[error("duplicate decky name '{0}'")]
    DuplicateName(String),
    /// A decky address that cannot be used.
    #[error("decky '{decky}' IP {ip}: {reason}")]
    BadDeckyIp {
        /// Decky name.
        decky: String,
        /// Its address.
        ip: Ipv4Addr,
        /// Why it is refused (outside subnet, gateway, ...).
        reason: String,
    },
    /// A persona key the service does not accept.
    #[error("service '{service}' does not accept persona key '{key}' (accepted: {accepted})")]
    PersonaKey {
        /// Service slug.
        service: String,
        /// Offending key.
        key: String,
        /// Keys the service accepts.
        accepted: String,
    },
    /// A persona value of the wrong shape.
    #[error("service '{service}' persona key '{key}': {reason}")]
    PersonaValue {
        /// Service slug.
        service: String,
        /// Key.
        key: String,
        /// Why the value is refused.
        reason: String,
    },
    /// Any other rule about the shape of a configuration.
    #[error("{0}")]
    Invalid(String),
    /// An error found at a place in a configuration file.
    #[error("{location}: {source}")]
    At {
        /// Where.
        location: Location,
        /// What.
        #[source]
        source: Box<Error>,
    },
    /// A state file that exists but cannot be understood.
    #[error("state file {path}: {reason}")]
    StateFormat {
        /// The file.
        path: PathBuf,
        /// Parse or validation failure, with serde's line and column.
        reason: String,
    },
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("read", "write", "lock", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the error is bad input (exit status 2) rather than an environment failure.
    pub fn is_validation(&self) -> bool {
        match self {
            Error::Io { .. } | Error::StateFormat { .. } => false,
            Error::At { source, .. } => source.is_validation(),
            _ => true,
        }
    }

    /// Attaches a file location to this error (no-op if it already has one).
    pub fn at(self, location: Location) -> Self {
        match self {
            e @ Error::At { .. } => e,
            e => Error::At {
                location,
                source: Box::new(e),
            },
        }
    }

    pub(crate) fn invalid(
        what: impl Into<String>,
        value: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidValue {
            what: what.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
