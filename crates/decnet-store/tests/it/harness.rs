//! Store factories for the contract suite: each runs one test body against a fresh,
//! isolated store and cleans up afterwards, also when the body fails or panics.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, bail};
use decnet_store::memory::MemoryStore;
use decnet_store::{PostgresStore, Repository, SqliteStore};
use futures::FutureExt;
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::sync::OnceCell;

/// Runs `body` against a fresh in-memory store.
pub async fn memory<F, Fut>(body: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<dyn Repository>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    body(Arc::new(MemoryStore::new())).await
}

/// Runs `body` against a SQLite file in a fresh temporary directory (created by the
/// store, one level deeper than the directory that exists).
pub async fn sqlite<F, Fut>(body: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<dyn Repository>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SqliteStore::open_path(&dir.path().join("db").join("decnet.db")).await?);
    let outcome = AssertUnwindSafe(body(store.clone())).catch_unwind().await;
    store.close().await;
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// The admin URL from the provisioning script, or `None` when live tests are skipped.
fn pg_admin_url() -> anyhow::Result<Option<String>> {
    match std::env::var("DECNET_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Ok(Some(url)),
        _ if std::env::var("DECNET_SKIP_LIVE").as_deref() == Ok("1") => {
            eprintln!("DECNET_TEST_PG_URL is not set and DECNET_SKIP_LIVE=1: skipping");
            Ok(None)
        }
        _ => bail!(
            "DECNET_TEST_PG_URL is not set: run `.ci/provision/20-postgres.sh` (as root) and \
             export the line it prints, or set DECNET_SKIP_LIVE=1 to skip live tests"
        ),
    }
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let (base, _) = url
        .rsplit_once('/')
        .filter(|(base, _)| base.contains("://") && !base.ends_with('/'))
        .context("DECNET_TEST_PG_URL must look like postgres://user:pass@host:port/db")?;
    Ok(format!("{base}/{db}"))
}

static CLEANED: OnceCell<()> = OnceCell::const_new();
static COUNTER: AtomicU32 = AtomicU32::new(0);
const PREFIX: &str = "decnet_t_";

/// Drops test databases left behind by test processes that no longer run.
async fn drop_stale_databases(admin: &mut PgConnection) -> anyhow::Result<()> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'decnet\\_t\\_%'")
            .fetch_all(&mut *admin)
            .await?;
    for name in names {
        let pid = name
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .execute(&mut *admin)
                .await?;
        }
    }
    Ok(())
}

/// Runs `body` against a PostgreSQL database created for this test and dropped after.
pub async fn postgres<F, Fut>(body: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<dyn Repository>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    postgres_at(|repo, _| body(repo)).await
}

/// [`postgres`], also giving `body` the test database's URL (to look at it from a
/// connection of its own).
pub async fn postgres_at<F, Fut>(body: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<dyn Repository>, String) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let Some(admin_url) = pg_admin_url()? else {
        return Ok(());
    };
    let mut admin = PgConnection::connect(&admin_url)
        .await
        .with_context(|| format!("connecting to DECNET_TEST_PG_URL {admin_url}"))?;
    CLEANED
        .get_or_try_init(|| drop_stale_databases(&mut admin))
        .await?;
    let db = format!(
        "{PREFIX}{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    sqlx::query(&format!("CREATE DATABASE \"{db}\""))
        .execute(&mut admin)
        .await
        .with_context(|| format!("creating test database {db}"))?;
    let url = with_database(&admin_url, &db)?;
    let store = PostgresStore::connect(&url).await;
    let outcome = match store {
        Ok(store) => {
            let store = Arc::new(store);
            let outcome = AssertUnwindSafe(body(store.clone(), url))
                .catch_unwind()
                .await;
            store.close().await;
            outcome
        }
        Err(e) => Ok(Err(e.into())),
    };
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .with_context(|| format!("dropping test database {db}"))?;
    admin.close().await?;
    match outcome {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[test]
fn database_name_is_replaced() {
    assert_eq!(
        with_database("postgres://u:p@127.0.0.1:5432/decnet_test", "x").unwrap(),
        "postgres://u:p@127.0.0.1:5432/x"
    );
    assert!(with_database("nonsense", "x").is_err());
}
