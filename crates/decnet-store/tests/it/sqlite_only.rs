//! SQLite-specific checks: pragmas, default path handling, secrets at rest.

use decnet_core::HostUuid;
use decnet_store::{
    NewSwarmHost, SqliteStore, StoreConfig, SwarmHostRepo, Timestamp, token_digest,
};
use sqlx::Connection;
use sqlx::sqlite::SqliteConnection;

#[tokio::test]
async fn wal_and_tokens_stored_as_digests() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("lib").join("db").join("decnet.db");
    let settings_like = StoreConfig::from_values(Some("sqlite"), None, &path)?;
    let repo = decnet_store::open(&settings_like).await?;
    repo.create_swarm_host(&NewSwarmHost {
        uuid: HostUuid::new("u-1")?,
        name: "w1".into(),
        address: String::new(),
        agent_port: 8765,
        client_cert_fingerprint: None,
        updater_cert_fingerprint: None,
        cert_bundle_path: String::new(),
        enrolled_at: Timestamp::from_unix_seconds(1),
        notes: None,
        use_ipvlan: false,
    })
    .await?;
    let token = "plain-secret-token-123456";
    repo.create_enrollment_token(
        token,
        &HostUuid::new("u-1")?,
        Timestamp::from_unix_seconds(1),
        Timestamp::from_unix_seconds(2),
    )
    .await?;
    drop(repo);

    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await?;
    assert_eq!(mode, "wal");
    let stored: Vec<String> = sqlx::query_scalar("SELECT token_sha256 FROM enrollment_tokens")
        .fetch_all(&mut conn)
        .await?;
    assert_eq!(stored, [token_digest(token)]);
    conn.close().await?;
    let bytes = std::fs::read(&path)?;
    let wal = std::fs::read(path.with_extension("db-wal")).unwrap_or_default();
    for data in [&bytes, &wal] {
        assert!(
            !data.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token text never reaches the file"
        );
    }
    Ok(())
}

#[tokio::test]
async fn reopening_keeps_data_and_migrations_are_idempotent() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("decnet.db");
    let store = SqliteStore::open_path(&path).await?;
    store
        .revoke_fingerprint(&decnet_store::RevokedFingerprint {
            fingerprint: decnet_store::Fingerprint::new(&"a".repeat(64))?,
            host_uuid: None,
            revoked_at: Timestamp::from_unix_seconds(3),
            reason: None,
        })
        .await?;
    store.close().await;
    let store = SqliteStore::open_path(&path).await?;
    assert!(
        store
            .is_fingerprint_revoked(&decnet_store::Fingerprint::new(&"a".repeat(64))?)
            .await?
    );
    store.close().await;
    Ok(())
}

/// Daemons of one host open a new database at the same moment: every open succeeds
/// (without the migration lock, two of them ran the first migration and one failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_opens_all_succeed() -> anyhow::Result<()> {
    for round in 0..5 {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("decnet.db");
        let opens: Vec<_> = (0..6)
            .map(|_| {
                let path = path.clone();
                tokio::spawn(async move { SqliteStore::open_path(&path).await })
            })
            .collect();
        for open in opens {
            let store = open
                .await?
                .map_err(|e| anyhow::anyhow!("round {round}: {e}"))?;
            store.close().await;
        }
    }
    Ok(())
}

#[tokio::test]
async fn wrong_backend_config_is_refused() {
    let err = SqliteStore::open(&StoreConfig::postgres("postgres://x/y"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("postgres configuration"), "{err}");
}

/// A database created before the `origin` column (only migration 0001 applied, rows
/// written) upgrades in place: its rows read back as `local`, the dropped indexes are
/// gone, and new rows keep their origin.
#[tokio::test]
async fn upgrade_from_the_first_schema_keeps_rows_as_local() -> anyhow::Result<()> {
    use decnet_store::{IngestEvent, IngestRepo, LogOrigin, LogQuery, LogRepo, NewLog, Order};

    let dir = tempfile::tempdir()?;
    let first = dir.path().join("first");
    std::fs::create_dir(&first)?;
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/sqlite/0001_initial.sql"
        ),
        first.join("0001_initial.sql"),
    )?;
    let path = dir.path().join("decnet.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = SqliteConnection::connect(&url).await?;
    sqlx::migrate::Migrator::new(first.as_path())
        .await?
        .run(&mut conn)
        .await?;
    sqlx::query(
        "INSERT INTO logs (dedup_key, timestamp, decky, service, event_type, attacker_ip, \
         fields, raw_line) VALUES ('old', 1, 'web-01', 'ssh', 'login', '1.2.3.4', '{}', 'x')",
    )
    .execute(&mut conn)
    .await?;
    conn.close().await?;

    let store = SqliteStore::open_path(&path).await?;
    let log = NewLog {
        dedup_key: "new".into(),
        timestamp: Timestamp::from_unix_micros(2),
        decky: "web-01".into(),
        service: "ssh".into(),
        event_type: "login".into(),
        attacker_ip: "1.2.3.4".into(),
        severity: None,
        fields: Default::default(),
        msg: None,
        raw_line: "y".into(),
        source_worker: None,
        trace_id: None,
        span_id: None,
        origin: LogOrigin::Imported,
    };
    store
        .ingest(&[IngestEvent {
            log,
            credential: None,
        }])
        .await?;
    let rows = store
        .query_logs(&LogQuery {
            order: Order::OldestFirst,
            limit: 10,
            ..Default::default()
        })
        .await?;
    let got: Vec<(&str, LogOrigin)> = rows
        .iter()
        .map(|r| (r.dedup_key.as_str(), r.origin))
        .collect();
    assert_eq!(
        got,
        [("old", LogOrigin::Local), ("new", LogOrigin::Imported)]
    );
    store.close().await;

    let mut conn = SqliteConnection::connect(&url).await?;
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'logs' \
         AND name NOT LIKE 'sqlite_autoindex%' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await?;
    assert_eq!(
        indexes,
        ["logs_attacker_ip", "logs_decky", "logs_timestamp"]
    );
    // The column refuses values outside the enum.
    let bad = sqlx::query(
        "INSERT INTO logs (dedup_key, timestamp, decky, service, event_type, attacker_ip, \
         fields, raw_line, origin) VALUES ('bad', 1, 'd', 's', 'e', 'i', '{}', 'x', 'elsewhere')",
    )
    .execute(&mut conn)
    .await;
    assert!(bad.is_err(), "the CHECK constraint holds");
    conn.close().await?;
    Ok(())
}
