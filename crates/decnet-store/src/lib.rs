//! DECNET's repository: the only code that talks to the database.
//!
//! Read in this order:
//! - [`Repository`]: the supertrait of the per-domain traits, used as
//!   `Arc<dyn Repository>`: [`FleetRepo`], [`SwarmHostRepo`], [`ShardRepo`],
//!   [`HeartbeatRepo`], [`TokenRepo`], [`LogRepo`], [`IngestRepo`], [`AttackerRepo`],
//!   [`CredentialRepo`],
//!   [`ArtifactRepo`], [`UserRepo`], [`StateRepo`];
//! - the typed rows and inputs next to each trait ([`fleet`], [`swarm`], [`telemetry`],
//!   [`users`]) and [`Timestamp`];
//! - [`StoreConfig`] and [`open`]: pick SQLite or PostgreSQL from configuration values;
//! - [`SqliteStore`] and [`PostgresStore`]: the SQL backends, each with its own
//!   embedded migrations (`migrations/sqlite`, `migrations/postgres`);
//! - [`memory::MemoryStore`]: the in-memory double for other crates' tests.
//!
//! The same contract suite (`tests/it/contract.rs`) runs unchanged against all three.
//!
//! # Invariants
//! - **Typed rows, explicit scope.** Rows are structs with validated ids
//!   ([`decnet_core::HostUuid`], [`decnet_core::DeckyName`]) and enums for states; a
//!   host scope is [`HostScope::All`] or [`HostScope::Host`], never an empty string.
//!   Fleet rows are keyed by `(host_uuid, name)`, shard rows by `(host_uuid, decky_name)`.
//! - **Real upserts.** Upserts are single `INSERT … ON CONFLICT` statements (or one
//!   transaction when a previous value must be returned); a read-modify-write runs in a
//!   write transaction (`BEGIN IMMEDIATE` on SQLite, `SELECT … FOR UPDATE` on
//!   PostgreSQL), so [`FleetRepo::update_fleet_state`] returns the true previous state.
//! - **Batches are transactions.** A batch write (logs, credentials, attacker
//!   observations, shard snapshots, heartbeats) commits whole or not at all; log inserts are
//!   idempotent on their dedup key. [`IngestRepo::ingest`] writes logs, attackers and
//!   credentials in one transaction and derives the aggregates only from the log rows it
//!   actually inserted, so a replayed batch changes nothing.
//! - **Bounded.** Every text, batch and page is checked against a named limit in
//!   [`limits`] before anything is written; pages are capped at
//!   [`limits::MAX_PAGE_SIZE`].
//! - **Same semantics everywhere.** Timestamps are UTC microseconds in a 64-bit integer
//!   on both backends; text ordering is byte order (`COLLATE "C"` on PostgreSQL);
//!   substring filters are ASCII case-insensitive with `%`/`_` taken literally.
//! - **Secrets are not stored.** Enrollment tokens are stored as SHA-256 digests.
//!
//! Dyn compatibility: the traits use the `async_trait` crate (boxed `Send` futures),
//! because native `async fn` in traits cannot be called through `dyn`.
//!
//! This crate reads no environment and no configuration file: [`StoreConfig`] takes
//! the `DECNET_DB_TYPE` / `DECNET_DB_URL` values as parameters. It does not publish bus
//! events, derive intelligence, or decide policy (what a heartbeat or deploy should
//! write); it stores what it is told, atomically.

mod config;
mod enums;
mod error;
pub mod fleet;
pub mod limits;
pub mod memory;
mod sql;
pub mod swarm;
pub mod telemetry;
mod time;
pub mod users;

pub use config::{DbType, StoreConfig, open};
pub use error::{Error, Result};
pub use fleet::{FleetDecky, FleetRepo, FleetState, FleetSummary, FleetUpsert, HostScope};
pub use sql::{PostgresStore, SqliteStore};
pub use swarm::{
    DeckyShard, ErrorUpdate, Fingerprint, HeartbeatOutcome, HeartbeatRepo, HeartbeatWrite,
    HostStatus, NewSwarmHost, ObservedShard, RevokedFingerprint, ShardFilter, ShardRepo,
    ShardUpsert, SnapshotOutcome, SwarmHost, SwarmHostPatch, SwarmHostRepo, TokenConsumption,
    TokenRepo, token_digest,
};
pub use telemetry::{
    Artifact, ArtifactRepo, Attacker, AttackerObservation, AttackerQuery, AttackerRepo,
    AttackerTouched, Credential, CredentialFilter, CredentialRepo, CredentialUpserted, IngestEvent,
    IngestOutcome, IngestRepo, InsertOutcome, JsonObject, LogFilter, LogOrigin, LogQuery, LogRepo,
    LogRow, NewArtifact, NewCredential, NewLog, Order, UNKNOWN_ATTACKER,
};
pub use time::Timestamp;
pub use users::{NewUser, Role, StateRepo, User, UserRepo};

/// Everything the rest of DECNET stores, as one object-safe trait:
/// `Arc<dyn Repository>` is how the store is passed around. Each domain trait
/// documents its own guarantees.
pub trait Repository:
    FleetRepo
    + SwarmHostRepo
    + ShardRepo
    + HeartbeatRepo
    + TokenRepo
    + LogRepo
    + IngestRepo
    + AttackerRepo
    + CredentialRepo
    + ArtifactRepo
    + UserRepo
    + StateRepo
    + Send
    + Sync
{
}

impl<T> Repository for T where
    T: FleetRepo
        + SwarmHostRepo
        + ShardRepo
        + HeartbeatRepo
        + TokenRepo
        + LogRepo
        + IngestRepo
        + AttackerRepo
        + CredentialRepo
        + ArtifactRepo
        + UserRepo
        + StateRepo
        + Send
        + Sync
{
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// `Arc<dyn Repository>` is the currency type and can be narrowed to one domain.
    #[test]
    fn repository_is_dyn_compatible_and_upcasts() {
        let repo: Arc<dyn Repository> = Arc::new(memory::MemoryStore::new());
        let fleet: Arc<dyn FleetRepo> = repo.clone();
        let logs: Arc<dyn LogRepo> = repo;
        assert_eq!(Arc::strong_count(&fleet), 2);
        drop(logs);
        assert_eq!(Arc::strong_count(&fleet), 1);
    }
}
