//! [`PostgresStore`]: the backend for multi-host masters.

use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres, Transaction};

use crate::config::StoreConfig;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// The repository on a PostgreSQL database.
///
/// Read-modify-write calls lock the rows they read with `SELECT … FOR UPDATE` inside
/// their transaction; text keys are `COLLATE "C"` so ordering matches SQLite.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: Pool<Postgres>,
}

impl PostgresStore {
    const LIKE: &'static str = "ILIKE";
    const LEAST: &'static str = "LEAST";
    const GREATEST: &'static str = "GREATEST";
    /// `$N` placeholders in generated multi-row statements.
    const NUMBERED_PARAMS: bool = true;
    const FOR_UPDATE: &'static str = " FOR UPDATE";
    /// The fleet summary columns of every selected row as one JSON array of arrays
    /// (NULL when no row is selected).
    const FLEET_SUMMARY_JSON: &'static str =
        "json_agg(json_build_array(host_uuid, name, state, last_observed, updated_at))::text";

    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, Postgres>> {
        self.pool.begin().await
    }

    /// Connects to `url` with default pool settings and applies the migrations.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub async fn connect(url: &str) -> crate::Result<Self> {
        Self::open(&StoreConfig::postgres(url)).await
    }

    /// Opens the store described by a [`StoreConfig::Postgres`].
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a SQLite config; [`crate::Error::Database`] when the
    /// server cannot be reached; [`crate::Error::Migrate`].
    pub async fn open(config: &StoreConfig) -> crate::Result<Self> {
        let StoreConfig::Postgres {
            url,
            max_connections,
            acquire_timeout,
        } = config
        else {
            return Err(crate::Error::Config(
                "a sqlite configuration was given to the postgres store".into(),
            ));
        };
        let pool = PgPoolOptions::new()
            .max_connections((*max_connections).max(1))
            .acquire_timeout(*acquire_timeout)
            .connect(url)
            .await
            .map_err(super::db("connecting to postgres"))?;
        MIGRATOR.run(&pool).await.map_err(crate::Error::Migrate)?;
        tracing::debug!("Opened PostgreSQL store");
        Ok(Self { pool })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

sql_repository!(PostgresStore, Postgres);
