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

#[tokio::test]
async fn wrong_backend_config_is_refused() {
    let err = SqliteStore::open(&StoreConfig::postgres("postgres://x/y"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("postgres configuration"), "{err}");
}
