//! [`StoreConfig`] and [`open`]: choose and open a backend from configuration values.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use decnet_core::Settings;
use decnet_core::hostcfg::HostConfig;

use crate::sql::{PostgresStore, SqliteStore};
use crate::{Error, Repository, Result};

/// Database backend (`DECNET_DB_TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DbType {
    /// Embedded SQLite file (default).
    #[default]
    Sqlite,
    /// PostgreSQL server (multi-host masters).
    Postgres,
}

impl DbType {
    /// Parses `DECNET_DB_TYPE`: absent or empty means SQLite.
    ///
    /// # Errors
    /// [`Error::Config`] for anything but `sqlite`, `postgres` or `postgresql`.
    pub fn parse(value: Option<&str>) -> Result<Self> {
        match value.map(str::trim).map(str::to_ascii_lowercase).as_deref() {
            None | Some("" | "sqlite" | "sqlite3") => Ok(Self::Sqlite),
            Some("postgres" | "postgresql" | "pg") => Ok(Self::Postgres),
            Some(other) => Err(Error::Config(format!(
                "unknown database type {other:?} (expected sqlite or postgres)"
            ))),
        }
    }
}

/// Where and how to open the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// A SQLite file (created with its directory when missing).
    Sqlite {
        /// Database file.
        path: PathBuf,
        /// Pool size.
        max_connections: u32,
        /// How long a writer waits for the lock.
        busy_timeout: Duration,
    },
    /// A PostgreSQL server.
    Postgres {
        /// `postgres://user:pass@host:port/db`.
        url: String,
        /// Pool size.
        max_connections: u32,
        /// How long to wait for a pooled connection.
        acquire_timeout: Duration,
    },
}

/// Default pool size.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// Default SQLite busy timeout and PostgreSQL acquire timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl StoreConfig {
    /// SQLite at `path` with default pool settings.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        Self::Sqlite {
            path: path.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            busy_timeout: DEFAULT_TIMEOUT,
        }
    }

    /// PostgreSQL at `url` with default pool settings.
    pub fn postgres(url: impl Into<String>) -> Self {
        Self::Postgres {
            url: url.into(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Builds the config from the `DECNET_DB_TYPE` and `DECNET_DB_URL` values.
    /// For SQLite the URL may be a path, `sqlite://<path>` or `sqlite:<path>`; without
    /// one, `default_sqlite_path` (normally [`Settings::db_file`]) is used. PostgreSQL
    /// needs a URL.
    ///
    /// # Errors
    /// [`Error::Config`] for an unknown type, a missing PostgreSQL URL, a URL of the
    /// other backend, or a relative SQLite path.
    pub fn from_values(
        db_type: Option<&str>,
        db_url: Option<&str>,
        default_sqlite_path: &Path,
    ) -> Result<Self> {
        let url = db_url.map(str::trim).filter(|u| !u.is_empty());
        match DbType::parse(db_type)? {
            DbType::Sqlite => {
                let path = match url {
                    None => default_sqlite_path.to_path_buf(),
                    Some(u) => sqlite_path(u)?,
                };
                if !path.is_absolute() {
                    return Err(Error::Config(format!(
                        "sqlite path {} is not absolute",
                        path.display()
                    )));
                }
                Ok(Self::sqlite(path))
            }
            DbType::Postgres => match url {
                Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                    Ok(Self::postgres(u))
                }
                Some(_) => Err(Error::Config(
                    "DECNET_DB_URL must start with postgres:// for the postgres backend".into(),
                )),
                None => Err(Error::Config(
                    "DECNET_DB_URL is required for the postgres backend".into(),
                )),
            },
        }
    }

    /// [`Self::from_values`] with the values of a loaded host configuration and the
    /// SQLite default from `settings`.
    ///
    /// # Errors
    /// As [`Self::from_values`].
    pub fn from_host_config(host: &HostConfig, settings: &Settings) -> Result<Self> {
        Self::from_values(
            host.vars.get("DECNET_DB_TYPE").map(String::as_str),
            host.vars.get("DECNET_DB_URL").map(String::as_str),
            &settings.db_file,
        )
    }

    /// The backend.
    pub fn db_type(&self) -> DbType {
        match self {
            Self::Sqlite { .. } => DbType::Sqlite,
            Self::Postgres { .. } => DbType::Postgres,
        }
    }
}

fn sqlite_path(url: &str) -> Result<PathBuf> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Err(Error::Config(
            "DECNET_DB_URL is a postgres URL but the database type is sqlite".into(),
        ));
    }
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let rest = rest.split('?').next().unwrap_or(rest);
    Ok(PathBuf::from(rest))
}

/// Opens the configured backend and applies its migrations.
///
/// # Errors
/// [`Error::Io`] when the SQLite directory cannot be created; [`Error::Database`] when
/// the database cannot be opened; [`Error::Migrate`].
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Repository>> {
    Ok(match config {
        StoreConfig::Sqlite { .. } => Arc::new(SqliteStore::open(config).await?),
        StoreConfig::Postgres { .. } => Arc::new(PostgresStore::open(config).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_backend() {
        let default = Path::new("/var/lib/decnet/db/decnet.db");
        assert_eq!(
            StoreConfig::from_values(None, None, default).unwrap(),
            StoreConfig::sqlite(default)
        );
        assert_eq!(
            StoreConfig::from_values(Some("SQLite"), Some("sqlite:///tmp/x.db"), default).unwrap(),
            StoreConfig::sqlite("/tmp/x.db")
        );
        assert_eq!(
            StoreConfig::from_values(Some(""), Some("/srv/d.db?mode=rwc"), default).unwrap(),
            StoreConfig::sqlite("/srv/d.db")
        );
        assert_eq!(
            StoreConfig::from_values(Some("postgres"), Some("postgres://u@h/db"), default).unwrap(),
            StoreConfig::postgres("postgres://u@h/db")
        );
    }

    #[test]
    fn refuses_bad_values() {
        let default = Path::new("/d.db");
        for (t, u, why) in [
            (Some("mysql"), None, "unknown database type"),
            (Some("postgres"), None, "required"),
            (Some("postgres"), Some("/tmp/x.db"), "must start with"),
            (None, Some("postgres://h/db"), "postgres URL"),
            (None, Some("relative.db"), "not absolute"),
        ] {
            let err = StoreConfig::from_values(t, u, default)
                .unwrap_err()
                .to_string();
            assert!(err.contains(why), "{t:?} {u:?}: {err}");
        }
    }

    #[test]
    fn reads_host_config_values() {
        let mut host = HostConfig::default();
        host.vars
            .insert("DECNET_DB_TYPE".into(), "postgresql".into());
        host.vars
            .insert("DECNET_DB_URL".into(), "postgresql://x/y".into());
        let settings = Settings::under(Path::new("/tmp/decnet-home"));
        assert_eq!(
            StoreConfig::from_host_config(&host, &settings).unwrap(),
            StoreConfig::postgres("postgresql://x/y")
        );
        let cfg = StoreConfig::from_host_config(&HostConfig::default(), &settings).unwrap();
        assert_eq!(cfg, StoreConfig::sqlite(settings.db_file.clone()));
        assert_eq!(cfg.db_type(), DbType::Sqlite);
    }
}
