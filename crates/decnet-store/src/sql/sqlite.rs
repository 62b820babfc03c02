//! [`SqliteStore`]: the embedded default backend (WAL, `synchronous=NORMAL`).

use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite, Transaction};

use crate::config::{DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT, StoreConfig};

/// Page cache per connection, as SQLite's negative KiB form (32 MiB; allocated as used).
const SQLITE_CACHE_KIB: &str = "-32768";
/// WAL pages after which a commit checkpoints itself (4096-byte pages: ~64 MiB). A
/// safety net: the background checkpointer ([`CHECKPOINT_INTERVAL`]) normally keeps the
/// WAL far below it, so commits do not pay for checkpoints.
const SQLITE_WAL_AUTOCHECKPOINT_PAGES: &str = "16000";
/// How often a background task checkpoints the WAL (`PRAGMA wal_checkpoint(PASSIVE)`:
/// copies what it can into the database file without blocking writers). A commit that
/// checkpointed itself took 45–55 ms instead of 4–7 ms in the ingest benchmark.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);

/// Rows the driver's worker thread may queue before the reader takes them.
const SQLITE_ROW_BUFFER: usize = 2048;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");

/// The repository on a SQLite file.
///
/// Writes that read first run in `BEGIN IMMEDIATE` transactions, so they take the
/// write lock before reading and never fail to upgrade a stale snapshot; the busy
/// timeout makes concurrent writers (other processes included) wait instead of fail.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: Pool<Sqlite>,
    /// Stops the background checkpointer when the last clone of the store is dropped.
    _checkpointer: std::sync::Arc<tokio_util::sync::DropGuard>,
}

impl SqliteStore {
    const LIKE: &'static str = "LIKE";
    const LEAST: &'static str = "MIN";
    const GREATEST: &'static str = "MAX";
    /// Anonymous `?` placeholders in generated multi-row statements (`$N` is a named
    /// parameter to SQLite, looked up linearly).
    const NUMBERED_PARAMS: bool = false;
    const FOR_UPDATE: &'static str = "";
    /// The fleet summary columns of every selected row as one JSON array of arrays.
    const FLEET_SUMMARY_JSON: &'static str =
        "json_group_array(json_array(host_uuid, name, state, last_observed, updated_at))";

    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// Opens (creating when missing) the database at `path` with default pool settings
    /// and applies the migrations.
    ///
    /// # Errors
    /// As [`Self::open`].
    pub async fn open_path(path: &Path) -> crate::Result<Self> {
        Self::open_with(path, DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT).await
    }

    /// Opens the store described by a [`StoreConfig::Sqlite`].
    ///
    /// # Errors
    /// [`crate::Error::Config`] for a PostgreSQL config; [`crate::Error::Io`] when the
    /// directory cannot be created; [`crate::Error::Database`]; [`crate::Error::Migrate`].
    pub async fn open(config: &StoreConfig) -> crate::Result<Self> {
        match config {
            StoreConfig::Sqlite {
                path,
                max_connections,
                busy_timeout,
            } => Self::open_with(path, *max_connections, *busy_timeout).await,
            StoreConfig::Postgres { .. } => Err(crate::Error::Config(
                "a postgres configuration was given to the sqlite store".into(),
            )),
        }
    }

    async fn open_with(
        path: &Path,
        max_connections: u32,
        busy_timeout: Duration,
    ) -> crate::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(|source| crate::Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        // Daemons and CLI commands of one host may open a new database at the same
        // moment; SQLite has no migration lock of its own (two processes both ran the
        // first migration: "table fleet_deckies already exists", and the switch to WAL
        // of a new file can fail with "database is locked"), so a lock file next to the
        // database serialises opening and migrating.
        let lock_path = migration_lock_path(path);
        let lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)?;
            file.lock()?;
            Ok(file)
        })
        .await
        .map_err(|e| crate::Error::Io {
            path: migration_lock_path(path),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(|source| crate::Error::Io {
            path: migration_lock_path(path),
            source,
        })?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(busy_timeout)
            .foreign_keys(true)
            // Statement journals (multi-row inserts inside a transaction) in memory,
            // not in a temporary file.
            .pragma("temp_store", "memory")
            // A 2048-event ingest batch dirties a few MiB of pages: with the default
            // 2 MiB cache they spill to the WAL in the middle of the transaction.
            .pragma("cache_size", SQLITE_CACHE_KIB)
            // Checkpoint every ~16 MiB of WAL instead of 4 MiB: pages rewritten by
            // consecutive batches (index leaves, attacker rows) are copied once.
            .pragma("wal_autocheckpoint", SQLITE_WAL_AUTOCHECKPOINT_PAGES)
            // Rows cross from the driver's worker thread in a bounded channel (default
            // 50): a 1024-row RETURNING would otherwise switch threads every 50 rows.
            .row_buffer_size(SQLITE_ROW_BUFFER);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(busy_timeout)
            .after_release(|conn, _| Box::pin(release_check(conn)))
            .connect_with(options)
            .await
            .map_err(super::db("opening the sqlite database"))?;
        let migrated = MIGRATOR.run(&pool).await.map_err(crate::Error::Migrate);
        drop(lock);
        migrated?;
        tracing::debug!(path = %path.display(), "Opened SQLite store");
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(checkpoint_loop(pool.clone(), stop.clone()));
        Ok(Self {
            pool,
            _checkpointer: std::sync::Arc::new(stop.drop_guard()),
        })
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Decides whether a connection handed back to the pool may be reused: not while it is
/// still inside a transaction.
///
/// A write whose future is dropped (a client gone, a timeout) can leave its connection in
/// an open `BEGIN IMMEDIATE` that nothing will ever commit or roll back: the driver's
/// worker ran the `BEGIN` and handed the acknowledgement over just as the waiting future
/// was dropped. Reused, that connection keeps the write lock for good (every other writer
/// waits out its busy timeout and fails) and refuses the next `BEGIN IMMEDIATE`. A
/// connection that looks inside a transaction is pinged first, which runs a rollback the
/// driver queued for a transaction dropped the ordinary way; one still inside a
/// transaction after that is closed (closing rolls the transaction back) and the pool
/// opens a fresh one when needed. A committed write costs nothing more here.
async fn release_check(conn: &mut sqlx::SqliteConnection) -> sqlx::Result<bool> {
    use sqlx::Connection as _;
    if !conn.is_in_transaction() {
        return Ok(true);
    }
    conn.ping().await?;
    let clean = !conn.is_in_transaction();
    if !clean {
        tracing::debug!("Closing a SQLite connection left inside a cancelled transaction");
    }
    Ok(clean)
}

/// Checkpoints the WAL every [`CHECKPOINT_INTERVAL`] until `stop` or the pool closes.
/// A failed checkpoint (busy, disk) is retried at the next tick; commits still
/// checkpoint themselves past [`SQLITE_WAL_AUTOCHECKPOINT_PAGES`].
async fn checkpoint_loop(pool: Pool<Sqlite>, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(CHECKPOINT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if pool.is_closed() {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "WAL checkpoint skipped");
        }
    }
}

/// The lock file that serialises migrations of the database at `path`.
fn migration_lock_path(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".migrate-lock");
    path.with_file_name(name)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

sql_repository!(SqliteStore, Sqlite);
