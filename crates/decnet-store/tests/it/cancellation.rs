//! Writes cancelled at any point (their future dropped: a client gone, a timeout) leave
//! neither SQL backend unusable: the next writes succeed and are committed.

use std::time::Duration;

use decnet_store::{
    IngestEvent, IngestRepo, LogOrigin, NewLog, SqliteStore, StoreConfig, Timestamp,
};
use sqlx::Connection as _;

use crate::harness;

/// Decky of the writes that follow a cancelled one.
const NEXT: &str = "next";
const ROUNDS: u64 = 40;
const NEXT_PER_ROUND: usize = 10;

fn batch(tag: &str, decky: &str, n: usize) -> Vec<IngestEvent> {
    (0..n)
        .map(|i| IngestEvent {
            log: NewLog {
                dedup_key: format!("{tag}-{i:06}"),
                timestamp: Timestamp::from_unix_micros(1_800_000_000_000_000 + i as i64),
                decky: decky.to_owned(),
                service: "ssh".into(),
                event_type: "auth_attempt".into(),
                attacker_ip: format!("203.0.113.{}", i % 200),
                severity: Some(6),
                fields: serde_json::Map::new(),
                msg: None,
                raw_line: format!("line {tag} {i} {}", "x".repeat(200)),
                source_worker: None,
                trace_id: None,
                span_id: None,
                origin: LogOrigin::Local,
            },
            credential: None,
        })
        .collect()
}

/// Rounds of a large ingest cancelled after a growing delay (before, during and after
/// its statements), each followed by a small ingest that must succeed in time. Returns
/// how many ingests were cancelled.
async fn cancel_rounds(store: &dyn IngestRepo) -> anyhow::Result<u32> {
    let mut cancelled = 0;
    for round in 0..ROUNDS {
        let big = batch(&format!("big{round}"), "big", 4000);
        let cut = Duration::from_micros(200 + round * 700);
        if tokio::time::timeout(cut, store.ingest(&big)).await.is_err() {
            cancelled += 1;
        }
        let next = batch(&format!("next{round}"), NEXT, NEXT_PER_ROUND);
        let out = tokio::time::timeout(Duration::from_secs(20), store.ingest(&next))
            .await
            .map_err(|_| anyhow::anyhow!("round {round}: the next write hung"))?
            .map_err(|e| anyhow::anyhow!("round {round}: the next write failed: {e:?}"))?;
        assert_eq!(out.inserted.len(), NEXT_PER_ROUND, "round {round}");
    }
    assert!(cancelled > 5, "only {cancelled} writes were cancelled");
    Ok(cancelled)
}

const COUNT_NEXT: &str = "SELECT COUNT(*) FROM logs WHERE decky = 'next'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cancelled_writes_lock_out_no_later_writer() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("decnet.db");
    let store = SqliteStore::open(&StoreConfig::Sqlite {
        path: path.clone(),
        max_connections: 4,
        busy_timeout: Duration::from_secs(5),
    })
    .await?;
    cancel_rounds(&store).await?;
    store.close().await;
    // Seen from a connection of its own: every acknowledged write was committed.
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
    let n: i64 = sqlx::query_scalar(COUNT_NEXT).fetch_one(&mut conn).await?;
    assert_eq!(n, (ROUNDS as usize * NEXT_PER_ROUND) as i64);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cancelled_writes_lock_out_no_later_writer() -> anyhow::Result<()> {
    harness::postgres_at(|repo, url| async move {
        cancel_rounds(repo.as_ref()).await?;
        // Seen from a connection of its own: every acknowledged write was committed
        // (a pooled connection left inside a cancelled transaction would hide them).
        let mut conn = sqlx::PgConnection::connect(&url).await?;
        let n: i64 = sqlx::query_scalar(COUNT_NEXT).fetch_one(&mut conn).await?;
        assert_eq!(n, (ROUNDS as usize * NEXT_PER_ROUND) as i64);
        Ok(())
    })
    .await
}
