//! Swarm tables: hosts, revoked certificate fingerprints, decky shards and enrollment
//! tokens.

use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use decnet_core::{DeckyConfig, DeckyName, HostUuid};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::enums::text_enum;
use crate::fleet::{FleetState, HostScope};
use crate::limits::{self, MAX_LABEL_LEN, MAX_TEXT_LEN};
use crate::{Error, Result, Timestamp};

text_enum! {
    /// Where a swarm host is in its life (SW-23, SW-24).
    pub enum HostStatus {
        /// Row created at enrollment; never heard from.
        Enrolled = "enrolled",
        /// Heartbeats arrive.
        Active = "active",
        /// Heartbeats stopped or a probe failed.
        Unreachable = "unreachable",
        /// Decommission started; self-destruct not yet acknowledged.
        Decommissioning = "decommissioning",
        /// Decommission finished (kept for audit until the row is deleted).
        Decommissioned = "decommissioned",
    }
}

/// A certificate's SHA-256 fingerprint: 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Validates and lowercases `hex` (upper-case input is accepted).
    ///
    /// # Errors
    /// [`Error::Invalid`] unless `hex` is 64 hex digits.
    pub fn new(hex: &str) -> Result<Self> {
        limits::sha256_hex("certificate fingerprint", hex)?;
        Ok(Self(hex.to_ascii_lowercase()))
    }

    /// The fingerprint of DER bytes.
    pub fn of_der(der: &[u8]) -> Self {
        Self(hex::encode(Sha256::digest(der)))
    }

    /// The lowercase hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(&value)
    }
}

impl From<Fingerprint> for String {
    fn from(value: Fingerprint) -> Self {
        value.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One enrolled worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmHost {
    /// Host id (used in fleet and shard keys and bus topics).
    pub uuid: HostUuid,
    /// Unique name (the certificate CN).
    pub name: String,
    /// IP or DNS name the master dials; empty until known.
    pub address: String,
    /// Agent port.
    pub agent_port: u16,
    /// Life-cycle status.
    pub status: HostStatus,
    /// Last accepted heartbeat.
    pub last_heartbeat: Option<Timestamp>,
    /// Pinned worker client certificate (none until the CSR is signed).
    pub client_cert_fingerprint: Option<Fingerprint>,
    /// Pinned updater certificate.
    pub updater_cert_fingerprint: Option<Fingerprint>,
    /// Master-side bundle directory.
    pub cert_bundle_path: String,
    /// Enrollment time.
    pub enrolled_at: Timestamp,
    /// Operator notes.
    pub notes: Option<String>,
    /// Deploy its deckies with ipvlan.
    pub use_ipvlan: bool,
    /// Agent version from the last heartbeat.
    pub agent_version: Option<String>,
}

/// A host to enroll; it starts as [`HostStatus::Enrolled`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSwarmHost {
    /// Host id.
    pub uuid: HostUuid,
    /// Unique name.
    pub name: String,
    /// Address (may be empty).
    pub address: String,
    /// Agent port.
    pub agent_port: u16,
    /// Pinned worker client certificate, when already known.
    pub client_cert_fingerprint: Option<Fingerprint>,
    /// Pinned updater certificate.
    pub updater_cert_fingerprint: Option<Fingerprint>,
    /// Master-side bundle directory.
    pub cert_bundle_path: String,
    /// Enrollment time.
    pub enrolled_at: Timestamp,
    /// Operator notes.
    pub notes: Option<String>,
    /// Deploy with ipvlan.
    pub use_ipvlan: bool,
}

impl NewSwarmHost {
    pub(crate) fn check(&self) -> Result<()> {
        limits::label("host name", &self.name, MAX_LABEL_LEN)?;
        limits::text("host address", &self.address, MAX_LABEL_LEN)?;
        limits::text("cert bundle path", &self.cert_bundle_path, MAX_TEXT_LEN)?;
        limits::opt_text("host notes", self.notes.as_deref(), MAX_TEXT_LEN)
    }

    /// The row as stored right after insertion.
    pub(crate) fn to_row(&self) -> SwarmHost {
        SwarmHost {
            uuid: self.uuid.clone(),
            name: self.name.clone(),
            address: self.address.clone(),
            agent_port: self.agent_port,
            status: HostStatus::Enrolled,
            last_heartbeat: None,
            client_cert_fingerprint: self.client_cert_fingerprint.clone(),
            updater_cert_fingerprint: self.updater_cert_fingerprint.clone(),
            cert_bundle_path: self.cert_bundle_path.clone(),
            enrolled_at: self.enrolled_at,
            notes: self.notes.clone(),
            use_ipvlan: self.use_ipvlan,
            agent_version: None,
        }
    }
}

/// Columns to change on a host; `None` leaves a column as it is. An empty patch
/// writes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwarmHostPatch {
    /// New status.
    pub status: Option<HostStatus>,
    /// New heartbeat time.
    pub last_heartbeat: Option<Timestamp>,
    /// New address.
    pub address: Option<String>,
    /// New agent version.
    pub agent_version: Option<String>,
    /// New worker certificate pin.
    pub client_cert_fingerprint: Option<Fingerprint>,
    /// New updater certificate pin.
    pub updater_cert_fingerprint: Option<Fingerprint>,
    /// New notes.
    pub notes: Option<String>,
}

impl SwarmHostPatch {
    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    pub(crate) fn check(&self) -> Result<()> {
        limits::opt_text("host address", self.address.as_deref(), MAX_LABEL_LEN)?;
        limits::opt_text(
            "agent version",
            self.agent_version.as_deref(),
            MAX_LABEL_LEN,
        )?;
        limits::opt_text("host notes", self.notes.as_deref(), MAX_TEXT_LEN)
    }

    /// Applies the patch to an in-memory row.
    pub(crate) fn apply(&self, host: &mut SwarmHost) {
        if let Some(s) = self.status {
            host.status = s;
        }
        if let Some(t) = self.last_heartbeat {
            host.last_heartbeat = Some(t);
        }
        if let Some(a) = &self.address {
            host.address.clone_from(a);
        }
        if let Some(v) = &self.agent_version {
            host.agent_version = Some(v.clone());
        }
        if let Some(f) = &self.client_cert_fingerprint {
            host.client_cert_fingerprint = Some(f.clone());
        }
        if let Some(f) = &self.updater_cert_fingerprint {
            host.updater_cert_fingerprint = Some(f.clone());
        }
        if let Some(n) = &self.notes {
            host.notes = Some(n.clone());
        }
    }
}

/// A certificate that must be refused everywhere (SW-3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedFingerprint {
    /// The certificate.
    pub fingerprint: Fingerprint,
    /// The host it belonged to, if known.
    pub host_uuid: Option<HostUuid>,
    /// When it was revoked.
    pub revoked_at: Timestamp,
    /// Why.
    pub reason: Option<String>,
}

/// Swarm hosts and the revoked-fingerprint list.
///
/// Guarantees: names, uuids and client fingerprints are unique; deleting a host
/// removes its shards and tokens in the same transaction; revocations are permanent.
#[async_trait]
pub trait SwarmHostRepo: Send + Sync {
    /// Inserts a host in status `enrolled`.
    ///
    /// # Errors
    /// [`Error::Conflict`] when the uuid, name or client fingerprint is taken;
    /// [`Error::Invalid`]; [`Error::Database`].
    async fn create_swarm_host(&self, host: &NewSwarmHost) -> Result<SwarmHost>;

    /// The host with this uuid.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn get_swarm_host(&self, uuid: &HostUuid) -> Result<Option<SwarmHost>>;

    /// The host with this name.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn get_swarm_host_by_name(&self, name: &str) -> Result<Option<SwarmHost>>;

    /// The host whose *client* certificate has this fingerprint. Revocation is a
    /// separate check ([`Self::is_fingerprint_revoked`]).
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn get_swarm_host_by_fingerprint(
        &self,
        fingerprint: &Fingerprint,
    ) -> Result<Option<SwarmHost>>;

    /// Hosts ordered by name (byte order), optionally only those in `status`.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn list_swarm_hosts(&self, status: Option<HostStatus>) -> Result<Vec<SwarmHost>>;

    /// Applies `patch`; returns whether the host exists. An empty patch writes nothing.
    ///
    /// # Errors
    /// [`Error::Conflict`] for a client fingerprint used by another host;
    /// [`Error::Invalid`]; [`Error::Database`].
    async fn update_swarm_host(&self, uuid: &HostUuid, patch: &SwarmHostPatch) -> Result<bool>;

    /// Moves every `active` host whose last heartbeat is older than `older_than` (or
    /// absent) to `unreachable` in one statement; returns those hosts (SW-23).
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn mark_stale_hosts_unreachable(&self, older_than: Timestamp) -> Result<Vec<HostUuid>>;

    /// Deletes the host, its shards and its enrollment tokens in one transaction;
    /// returns whether the host existed.
    ///
    /// # Errors
    /// [`Error::Database`].
    async fn delete_swarm_host(&self, uuid: &HostUuid) -> Result<bool>;

    /// Records a revoked fingerprint; returns false when it was already revoked (the
    /// first record is kept).
    ///
    /// # Errors
    /// [`Error::Invalid`]; [`Error::Database`].
    async fn revoke_fingerprint(&self, revoked: &RevokedFingerprint) -> Result<bool>;

    /// Whether `fingerprint` was revoked.
    ///
    /// # Errors
    /// [`Error::Database`].
    async fn is_fingerprint_revoked(&self, fingerprint: &Fingerprint) -> Result<bool>;

    /// Every revocation, oldest first.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn list_revoked_fingerprints(&self) -> Result<Vec<RevokedFingerprint>>;
}

/// How a shard upsert treats the stored error text (SW-21).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorUpdate {
    /// Leave the stored error as it is (heartbeats).
    #[default]
    Keep,
    /// Replace it.
    Set(String),
    /// Clear it.
    Clear,
}

/// One decky as a worker reports it (`decky_shards`, keyed by `(host_uuid, decky_name)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeckyShard {
    /// Worker.
    pub host_uuid: HostUuid,
    /// Decky name, unique per worker.
    pub decky_name: DeckyName,
    /// Service slugs.
    pub services: Vec<String>,
    /// Full config, when known.
    pub decky_config: Option<DeckyConfig>,
    /// LAN address.
    pub decky_ip: Option<IpAddr>,
    /// Reported state.
    pub state: FleetState,
    /// Last error (survives heartbeats).
    pub last_error: Option<String>,
    /// Last heartbeat that reported it.
    pub last_seen: Option<Timestamp>,
    /// Last write.
    pub updated_at: Timestamp,
}

/// A shard write. `last_seen: None` keeps the stored value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardUpsert {
    /// Worker (must exist).
    pub host_uuid: HostUuid,
    /// Decky name.
    pub decky_name: DeckyName,
    /// Service slugs.
    pub services: Vec<String>,
    /// Full config.
    pub decky_config: Option<DeckyConfig>,
    /// LAN address.
    pub decky_ip: Option<IpAddr>,
    /// State to store.
    pub state: FleetState,
    /// What to do with the stored error.
    pub last_error: ErrorUpdate,
    /// Heartbeat time, when this write comes from one.
    pub last_seen: Option<Timestamp>,
}

impl ShardUpsert {
    /// Checks limits; returns `(services_json, config_json, error_or_none, clear_error)`.
    pub(crate) fn encode(&self) -> Result<EncodedShard> {
        crate::fleet::services(&self.services)?;
        let config = self
            .decky_config
            .as_ref()
            .map(|c| limits::json("decky config", c, limits::MAX_DECKY_CONFIG_BYTES))
            .transpose()?;
        let (error, clear_error) = match &self.last_error {
            ErrorUpdate::Keep => (None, false),
            ErrorUpdate::Set(e) => (Some(limits::error_text(e)), false),
            ErrorUpdate::Clear => (None, true),
        };
        Ok(EncodedShard {
            services: limits::json("services", &self.services, usize::MAX)?,
            config,
            error,
            clear_error,
        })
    }
}

/// A [`ShardUpsert`] with its columns encoded.
pub(crate) struct EncodedShard {
    pub services: String,
    pub config: Option<String>,
    pub error: Option<String>,
    pub clear_error: bool,
}

/// Which shards to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardFilter {
    /// Host scope.
    pub host: HostScope,
    /// Only rows in this state.
    pub state: Option<FleetState>,
}

impl ShardFilter {
    /// Every shard.
    pub fn all() -> Self {
        Self {
            host: HostScope::All,
            state: None,
        }
    }

    /// Every shard of one host.
    pub fn host(host: HostUuid) -> Self {
        Self {
            host: HostScope::Host(host),
            state: None,
        }
    }
}

/// What replacing a host's snapshot did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotOutcome {
    /// Rows inserted or updated.
    pub upserted: usize,
    /// Rows removed because the snapshot no longer lists them, by name.
    pub removed: Vec<DeckyName>,
}

/// Decky shards keyed by `(host_uuid, decky_name)` (SW-19).
///
/// Guarantees: a write names its host and touches only that host's rows; a shard
/// cannot exist without its host; snapshot replacement is one transaction.
#[async_trait]
pub trait ShardRepo: Send + Sync {
    /// Inserts or updates one shard (`ON CONFLICT DO UPDATE`), stamping `updated_at`.
    ///
    /// # Errors
    /// [`Error::NotFound`] when the host does not exist; [`Error::Invalid`];
    /// [`Error::Database`].
    async fn upsert_shard(&self, shard: &ShardUpsert) -> Result<()>;

    /// Shards matching `filter`, ordered by host, then name.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn list_shards(&self, filter: &ShardFilter) -> Result<Vec<DeckyShard>>;

    /// One shard.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn get_shard(&self, host: &HostUuid, name: &DeckyName) -> Result<Option<DeckyShard>>;

    /// Deletes one shard; returns whether it existed.
    ///
    /// # Errors
    /// [`Error::Database`].
    async fn delete_shard(&self, host: &HostUuid, name: &DeckyName) -> Result<bool>;

    /// Deletes every shard of `host`; returns how many.
    ///
    /// # Errors
    /// [`Error::Database`].
    async fn delete_shards_for_host(&self, host: &HostUuid) -> Result<u64>;

    /// Makes `snapshot` the complete shard set of `host` in one transaction (SW-20):
    /// upserts each entry and removes the host's rows the snapshot does not list.
    /// An empty snapshot removes every row of the host. Errors are kept or changed per
    /// entry's [`ErrorUpdate`] (SW-21).
    ///
    /// # Errors
    /// [`Error::Invalid`] when an entry names another host, a name repeats, or the
    /// snapshot exceeds [`limits::MAX_SHARD_SNAPSHOT`]; [`Error::NotFound`] when the
    /// host does not exist; [`Error::Database`].
    async fn replace_host_shards(
        &self,
        host: &HostUuid,
        snapshot: &[ShardUpsert],
    ) -> Result<SnapshotOutcome>;
}

/// Checks a snapshot for one host.
pub(crate) fn check_snapshot(host: &HostUuid, snapshot: &[ShardUpsert]) -> Result<()> {
    limits::batch("shard snapshot", snapshot.len(), limits::MAX_SHARD_SNAPSHOT)?;
    let mut seen = std::collections::BTreeSet::new();
    for shard in snapshot {
        if &shard.host_uuid != host {
            return Err(Error::invalid(
                "shard snapshot",
                format!(
                    "entry {} names host {} instead of {host}",
                    shard.decky_name, shard.host_uuid
                ),
            ));
        }
        if !seen.insert(&shard.decky_name) {
            return Err(Error::invalid(
                "shard snapshot",
                format!("decky {} is listed twice", shard.decky_name),
            ));
        }
    }
    Ok(())
}

/// One decky of a heartbeat snapshot, as the worker observes it. Heartbeats never touch
/// a shard's error (SW-21) and stamp `last_seen` with the heartbeat time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedShard {
    /// Decky name.
    pub decky_name: DeckyName,
    /// Service slugs.
    pub services: Vec<String>,
    /// Full config.
    pub decky_config: Option<DeckyConfig>,
    /// LAN address.
    pub decky_ip: Option<IpAddr>,
    /// Observed state.
    pub state: FleetState,
}

/// One heartbeat to record: who presented it and what it reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatWrite {
    /// The host the heartbeat names.
    pub host_uuid: HostUuid,
    /// The client certificate that presented it: it must be the host's pinned one and
    /// not revoked.
    pub fingerprint: Fingerprint,
    /// The agent's version; `None` keeps the stored one.
    pub agent_version: Option<String>,
    /// The host's complete shard set (SW-20); `None` leaves the shards as they are (the
    /// caller knows the snapshot did not change, or it is older than a recorded deploy).
    pub snapshot: Option<Vec<ObservedShard>>,
}

/// What recording one heartbeat did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeartbeatOutcome {
    /// The host is `active` with the new `last_heartbeat` (and version); the snapshot,
    /// if any, is its shard set.
    Recorded,
    /// The host row is recorded (`active`, `last_heartbeat`) but the version or the
    /// snapshot broke a limit, and neither was written; the text says which.
    Invalid(String),
    /// No host with this uuid.
    UnknownHost,
    /// The presenting certificate is revoked.
    Revoked,
    /// The presenting certificate is not the host's pinned one.
    FingerprintMismatch,
    /// The host is being (or was) decommissioned.
    Decommissioning,
}

/// A snapshot row's encoded columns: `(services_json, config_json)`.
pub(crate) type EncodedObserved = (String, Option<String>);

/// A heartbeat's encoded snapshot (`None`: no snapshot), or why it is invalid.
pub(crate) type EncodedHeartbeat = std::result::Result<Option<Vec<EncodedObserved>>, String>;

impl HeartbeatWrite {
    /// Checks the version and snapshot against the limits and encodes the snapshot
    /// rows; `Err` carries the reason.
    pub(crate) fn encode(&self) -> EncodedHeartbeat {
        let text = |e: Error| e.to_string();
        limits::opt_text(
            "agent version",
            self.agent_version.as_deref(),
            MAX_LABEL_LEN,
        )
        .map_err(text)?;
        let Some(snapshot) = &self.snapshot else {
            return Ok(None);
        };
        limits::batch("shard snapshot", snapshot.len(), limits::MAX_SHARD_SNAPSHOT)
            .map_err(text)?;
        let mut seen = std::collections::BTreeSet::new();
        let mut rows = Vec::with_capacity(snapshot.len());
        for shard in snapshot {
            if !seen.insert(&shard.decky_name) {
                return Err(text(Error::invalid(
                    "shard snapshot",
                    format!("decky {} is listed twice", shard.decky_name),
                )));
            }
            crate::fleet::services(&shard.services).map_err(text)?;
            let config = shard
                .decky_config
                .as_ref()
                .map(|c| limits::json("decky config", c, limits::MAX_DECKY_CONFIG_BYTES))
                .transpose()
                .map_err(text)?;
            rows.push((
                limits::json("services", &shard.services, usize::MAX).map_err(text)?,
                config,
            ));
        }
        Ok(Some(rows))
    }
}

/// What the store holds for a host a heartbeat names: its pinned client fingerprint
/// and status.
pub(crate) type HostTrust = (Option<Fingerprint>, HostStatus);

/// What a batch writes for one host once its trusted items are merged in batch order.
/// Recording the items one after another leaves the same rows: a full snapshot
/// replaces whatever an earlier one wrote, and a version is kept unless a later item
/// names one.
#[derive(Debug)]
pub(crate) struct HostHeartbeat<'a> {
    /// The newest valid version.
    pub version: Option<&'a str>,
    /// Index (into the batch) of the newest valid snapshot.
    pub snapshot: Option<usize>,
}

/// Outcomes of a batch and the per-host writes they call for.
#[derive(Debug)]
pub(crate) struct HeartbeatPlan<'a> {
    /// One per item, in order.
    pub outcomes: Vec<HeartbeatOutcome>,
    /// Hosts to record, in uuid order.
    pub hosts: std::collections::BTreeMap<&'a HostUuid, HostHeartbeat<'a>>,
}

/// Classifies each item of `batch` (`encoded` from [`HeartbeatWrite::encode`], same
/// order) against the revoked fingerprints and hosts the store holds.
pub(crate) fn plan_heartbeats<'a>(
    batch: &'a [HeartbeatWrite],
    encoded: &[EncodedHeartbeat],
    is_revoked: impl Fn(&Fingerprint) -> bool,
    host: impl Fn(&HostUuid) -> Option<HostTrust>,
) -> HeartbeatPlan<'a> {
    let mut plan = HeartbeatPlan {
        outcomes: Vec::with_capacity(batch.len()),
        hosts: std::collections::BTreeMap::new(),
    };
    for (i, (write, enc)) in batch.iter().zip(encoded).enumerate() {
        let refusal = if is_revoked(&write.fingerprint) {
            Some(HeartbeatOutcome::Revoked)
        } else {
            match host(&write.host_uuid) {
                None => Some(HeartbeatOutcome::UnknownHost),
                Some((pin, _)) if pin.as_ref() != Some(&write.fingerprint) => {
                    Some(HeartbeatOutcome::FingerprintMismatch)
                }
                Some((_, HostStatus::Decommissioning | HostStatus::Decommissioned)) => {
                    Some(HeartbeatOutcome::Decommissioning)
                }
                Some(_) => None,
            }
        };
        if let Some(refusal) = refusal {
            plan.outcomes.push(refusal);
            continue;
        }
        let entry = plan.hosts.entry(&write.host_uuid).or_insert(HostHeartbeat {
            version: None,
            snapshot: None,
        });
        match enc {
            Ok(rows) => {
                if let Some(v) = &write.agent_version {
                    entry.version = Some(v);
                }
                if rows.is_some() {
                    entry.snapshot = Some(i);
                }
                plan.outcomes.push(HeartbeatOutcome::Recorded);
            }
            Err(reason) => plan
                .outcomes
                .push(HeartbeatOutcome::Invalid(reason.clone())),
        }
    }
    plan
}

/// Records heartbeats in batches (the swarm controller's intake).
///
/// Guarantees: the whole batch is one transaction; each item is checked inside it
/// against the revocation list, the host's pinned client fingerprint and its status,
/// so a certificate revoked or a host decommissioned before the transaction is refused
/// even if the caller checked earlier; every item that passes moves its host to
/// `active` with `last_heartbeat = at` and, with a snapshot, makes the snapshot the
/// host's complete shard set (rows upserted with `last_seen = updated_at = at`, errors
/// kept, rows it does not list removed). Items are independent: one refused or invalid
/// item does not affect the others; the result is the same as recording the items one
/// after another in batch order.
#[async_trait]
pub trait HeartbeatRepo: Send + Sync {
    /// Records `batch` at `at`; returns one outcome per item, in order.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the batch holds more than [`limits::MAX_BATCH`] items;
    /// [`Error::Database`] (nothing of the batch is written).
    async fn apply_heartbeats(
        &self,
        batch: &[HeartbeatWrite],
        at: Timestamp,
    ) -> Result<Vec<HeartbeatOutcome>>;
}

/// Result of presenting an enrollment token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenConsumption {
    /// The token was valid and is now used up; it was issued for this host.
    Consumed(HostUuid),
    /// No such token.
    Unknown,
    /// The token was used before.
    AlreadyUsed,
    /// The token expired before it was used.
    Expired,
}

/// The stored form of an enrollment token: hex SHA-256 of its text.
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks a token's length.
pub(crate) fn check_token(token: &str) -> Result<()> {
    if token.len() < limits::MIN_TOKEN_LEN || token.len() > limits::MAX_TOKEN_LEN {
        return Err(Error::invalid(
            "enrollment token",
            format!(
                "{} bytes, expected {}..={}",
                token.len(),
                limits::MIN_TOKEN_LEN,
                limits::MAX_TOKEN_LEN
            ),
        ));
    }
    Ok(())
}

/// Durable one-time enrollment tokens (SW-10). Only the SHA-256 of a token is stored.
///
/// Guarantees: a token is consumed at most once even under concurrent presentation
/// (one conditional `UPDATE`); an expired token is never consumed.
#[async_trait]
pub trait TokenRepo: Send + Sync {
    /// Stores the digest of `token`, issued for `host`, valid until `expires_at`
    /// (exclusive).
    ///
    /// # Errors
    /// [`Error::NotFound`] when the host does not exist; [`Error::Conflict`] when the
    /// same token exists; [`Error::Invalid`] for a token shorter than
    /// [`limits::MIN_TOKEN_LEN`] or longer than [`limits::MAX_TOKEN_LEN`];
    /// [`Error::Database`].
    async fn create_enrollment_token(
        &self,
        token: &str,
        host: &HostUuid,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()>;

    /// Uses the token up if it is known, unused and `now < expires_at`.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn consume_enrollment_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<TokenConsumption>;

    /// Deletes tokens with `expires_at <= now`; returns how many.
    ///
    /// # Errors
    /// [`Error::Database`].
    async fn purge_expired_tokens(&self, now: Timestamp) -> Result<u64>;
}
