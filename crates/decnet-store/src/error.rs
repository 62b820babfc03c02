//! The crate's one error type.

/// Everything a repository call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The database refused or failed a statement.
    #[error("database error while {op}")]
    Database {
        /// What the store was doing (`"listing fleet deckies"`).
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Applying the embedded migrations failed.
    #[error("applying database migrations failed")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    /// A row with the same unique key already exists.
    #[error("{what} {key:?} already exists")]
    Conflict {
        /// Kind of row (`"swarm host"`).
        what: &'static str,
        /// The clashing key.
        key: String,
    },
    /// A row the call depends on does not exist (e.g. the host of a shard).
    #[error("{what} {key:?} does not exist")]
    NotFound {
        /// Kind of row.
        what: &'static str,
        /// The missing key.
        key: String,
    },
    /// An argument broke a documented limit or rule; nothing was written.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The argument.
        what: &'static str,
        /// The broken rule.
        reason: String,
    },
    /// One event of an ingest batch broke a limit or rule; nothing of the batch was
    /// written. `source` is the [`Error::Invalid`] naming the field.
    #[error("invalid event {index} of the ingest batch")]
    InvalidEvent {
        /// Position of the event in the batch.
        index: usize,
        /// What was wrong with it.
        #[source]
        source: Box<Error>,
    },
    /// A stored value could not be decoded into its typed form.
    #[error("corrupt {what} in the database: {detail}")]
    Corrupt {
        /// The column or row kind.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The store configuration is unusable (unknown backend, missing URL).
    #[error("store configuration: {0}")]
    Config(String),
    /// Preparing the database directory failed.
    #[error("cannot prepare database directory {path}")]
    Io {
        /// The directory.
        path: std::path::PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn invalid(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl ToString) -> Self {
        Self::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn conflict(what: &'static str, key: impl Into<String>) -> Self {
        Self::Conflict {
            what,
            key: key.into(),
        }
    }

    pub(crate) fn not_found(what: &'static str, key: impl Into<String>) -> Self {
        Self::NotFound {
            what,
            key: key.into(),
        }
    }
}
