//! Telemetry: logs, attackers, credentials and artifacts.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::enums::text_enum;
use crate::limits::{self, MAX_FIELDS_BYTES, MAX_FILTER_TEXT_LEN, MAX_LABEL_LEN, MAX_TEXT_LEN};
use crate::{Error, Result, Timestamp};

/// A JSON object column.
pub type JsonObject = Map<String, Value>;

text_enum! {
    /// Who vouches for a log row's decky and service.
    #[derive(Default)]
    pub enum LogOrigin {
        /// This host's collector, from the container's labels (the default).
        #[default]
        Local = "local",
        /// A swarm worker's collector, received over mTLS (see `source_worker`).
        Forwarded = "forwarded",
        /// `decnet logs import`: taken from the line itself, nothing vouches for it.
        Imported = "imported",
    }
}

/// A log record to insert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewLog {
    /// Idempotency key: a second insert with the same key is ignored (SV-4).
    pub dedup_key: String,
    /// Event time (full precision, SV-6).
    pub timestamp: Timestamp,
    /// Decky the line was read from.
    pub decky: String,
    /// Service slug.
    pub service: String,
    /// MSGID.
    pub event_type: String,
    /// Attacker address (or `Unknown`).
    pub attacker_ip: String,
    /// RFC 5424 severity (0–7).
    pub severity: Option<u8>,
    /// Structured data.
    pub fields: JsonObject,
    /// Free-text MSG.
    pub msg: Option<String>,
    /// The raw line.
    pub raw_line: String,
    /// Swarm worker that forwarded it (from its verified certificate).
    pub source_worker: Option<String>,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Span id.
    pub span_id: Option<String>,
    /// Who vouches for `decky` and `service`.
    #[serde(default)]
    pub origin: LogOrigin,
}

impl NewLog {
    /// A dedup key from the content: SHA-256 over time, decky, service and raw line.
    /// Callers with a better identity (container id + sequence) should use it instead.
    pub fn content_key(timestamp: Timestamp, decky: &str, service: &str, raw_line: &str) -> String {
        let mut h = Sha256::new();
        h.update(timestamp.as_unix_micros().to_be_bytes());
        for part in [decky, service, raw_line] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// Checks limits; returns the encoded `fields`.
    pub(crate) fn encode(&self) -> Result<String> {
        limits::label("log dedup key", &self.dedup_key, MAX_LABEL_LEN)?;
        limits::text("log decky", &self.decky, MAX_LABEL_LEN)?;
        limits::text("log service", &self.service, MAX_LABEL_LEN)?;
        limits::text("log event type", &self.event_type, MAX_LABEL_LEN)?;
        limits::text("log attacker ip", &self.attacker_ip, MAX_LABEL_LEN)?;
        limits::text("log line", &self.raw_line, limits::MAX_RAW_LINE_LEN)?;
        limits::opt_text("log msg", self.msg.as_deref(), limits::MAX_RAW_LINE_LEN)?;
        limits::opt_text(
            "source worker",
            self.source_worker.as_deref(),
            MAX_LABEL_LEN,
        )?;
        limits::opt_text("trace id", self.trace_id.as_deref(), MAX_LABEL_LEN)?;
        limits::opt_text("span id", self.span_id.as_deref(), MAX_LABEL_LEN)?;
        if let Some(s) = self.severity
            && s > 7
        {
            return Err(Error::invalid("log severity", format!("{s} is not 0..=7")));
        }
        limits::json("log fields", &self.fields, MAX_FIELDS_BYTES)
    }
}

/// A stored log record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRow {
    /// Increasing id (gaps allowed).
    pub id: i64,
    /// Idempotency key.
    pub dedup_key: String,
    /// Event time.
    pub timestamp: Timestamp,
    /// Decky.
    pub decky: String,
    /// Service.
    pub service: String,
    /// Event type.
    pub event_type: String,
    /// Attacker address.
    pub attacker_ip: String,
    /// Severity.
    pub severity: Option<u8>,
    /// Structured data.
    pub fields: JsonObject,
    /// Free text.
    pub msg: Option<String>,
    /// Raw line.
    pub raw_line: String,
    /// Forwarding worker.
    pub source_worker: Option<String>,
    /// Trace id.
    pub trace_id: Option<String>,
    /// Span id.
    pub span_id: Option<String>,
    /// Who vouches for `decky` and `service`.
    #[serde(default)]
    pub origin: LogOrigin,
}

/// Log filters; every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFilter {
    /// Exact decky.
    pub decky: Option<String>,
    /// Exact service.
    pub service: Option<String>,
    /// Exact event type.
    pub event_type: Option<String>,
    /// Exact attacker address.
    pub attacker_ip: Option<String>,
    /// `timestamp >= since`.
    pub since: Option<Timestamp>,
    /// `timestamp < until`.
    pub until: Option<Timestamp>,
    /// Substring of the raw line, ASCII case-insensitive (`%` and `_` are literal).
    pub text: Option<String>,
    /// Exact origin.
    #[serde(default)]
    pub origin: Option<LogOrigin>,
    /// Exact forwarding worker.
    #[serde(default)]
    pub source_worker: Option<String>,
    /// `id > after_id` (tailing with `decnet logs --follow`), whatever the order.
    #[serde(default)]
    pub after_id: Option<i64>,
}

impl LogFilter {
    pub(crate) fn check(&self) -> Result<()> {
        for (what, v) in [
            ("decky filter", &self.decky),
            ("service filter", &self.service),
            ("event type filter", &self.event_type),
            ("attacker ip filter", &self.attacker_ip),
            ("text filter", &self.text),
            ("source worker filter", &self.source_worker),
        ] {
            limits::opt_text(what, v.as_deref(), MAX_FILTER_TEXT_LEN)?;
        }
        Ok(())
    }
}

/// Row order by id.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    /// Highest id first.
    #[default]
    NewestFirst,
    /// Lowest id first (tailing).
    OldestFirst,
}

/// A page of logs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    /// Filters.
    pub filter: LogFilter,
    /// Order.
    pub order: Order,
    /// Keyset cursor: only ids strictly after this one in `order`.
    pub cursor: Option<i64>,
    /// Rows to skip after filtering and the cursor.
    pub offset: u64,
    /// Page size, lowered to [`limits::MAX_PAGE_SIZE`]; 0 returns nothing.
    pub limit: u32,
}

/// What a batched insert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsertOutcome {
    /// New rows.
    pub inserted: u64,
    /// Rows skipped because their dedup key was already stored (or repeated in the batch).
    pub duplicates: u64,
}

/// Log records.
///
/// Guarantees: a batch is one transaction (all rows or none); inserts are idempotent
/// on `dedup_key`; ids increase with insertion order.
#[async_trait]
pub trait LogRepo: Send + Sync {
    /// Inserts a batch of at most [`limits::MAX_BATCH`] rows in one transaction.
    ///
    /// # Errors
    /// [`Error::Invalid`] (nothing written); [`Error::Database`].
    async fn insert_logs(&self, batch: &[NewLog]) -> Result<InsertOutcome>;

    /// One page of matching rows.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an over-long filter; [`Error::Database`], [`Error::Corrupt`].
    async fn query_logs(&self, query: &LogQuery) -> Result<Vec<LogRow>>;

    /// Number of matching rows.
    ///
    /// # Errors
    /// [`Error::Invalid`]; [`Error::Database`].
    async fn count_logs(&self, filter: &LogFilter) -> Result<u64>;

    /// Highest id, if any row exists.
    ///
    /// # Errors
    /// [`Error::Database`].
    async fn max_log_id(&self) -> Result<Option<i64>>;
}

/// One parsed event to ingest: its log row and, when it carried a secret, the
/// credential attempt it records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestEvent {
    /// The log row (its `dedup_key` decides whether the event is new).
    pub log: NewLog,
    /// The credential attempt, counted only when the log row is new.
    pub credential: Option<NewCredential>,
}

/// An event's encoded JSON columns, produced by [`IngestEvent::encode`].
pub(crate) struct EncodedEvent {
    /// The log's `fields`.
    pub(crate) log_fields: String,
    /// The credential's `fields`, if any.
    pub(crate) credential_fields: Option<String>,
}

impl IngestEvent {
    /// True when the log's `attacker_ip` names an address to aggregate (not empty,
    /// not `Unknown`).
    pub fn has_attacker(&self) -> bool {
        attacker_ip_counts(&self.log.attacker_ip)
    }

    /// Checks every limit [`IngestRepo::ingest`] checks, so a caller can drop a bad event
    /// before it sinks a batch.
    ///
    /// # Errors
    /// [`Error::Invalid`] naming the field.
    pub fn check(&self) -> Result<()> {
        self.encode().map(|_| ())
    }

    pub(crate) fn encode(&self) -> Result<EncodedEvent> {
        let log_fields = self.log.encode()?;
        let credential_fields = self
            .credential
            .as_ref()
            .map(NewCredential::encode)
            .transpose()?;
        Ok(EncodedEvent {
            log_fields,
            credential_fields,
        })
    }
}

/// True when `ip` names an address to aggregate into `attackers`.
pub(crate) fn attacker_ip_counts(ip: &str) -> bool {
    !ip.is_empty() && ip != UNKNOWN_ATTACKER
}

/// The `attacker_ip` of events without a known source address; never aggregated.
pub const UNKNOWN_ATTACKER: &str = "Unknown";

/// Encodes a whole ingest batch: the batch size, then every event, failing with
/// [`Error::InvalidEvent`] at the first bad one.
pub(crate) fn encode_batch(batch: &[IngestEvent]) -> Result<Vec<EncodedEvent>> {
    limits::batch("ingest batch", batch.len(), limits::MAX_INGEST_BATCH)?;
    batch
        .iter()
        .enumerate()
        .map(|(index, e)| {
            e.encode().map_err(|source| Error::InvalidEvent {
                index,
                source: Box::new(source),
            })
        })
        .collect()
}

/// One attacker row an ingest batch folded events into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackerTouched {
    /// Address (the row key).
    pub ip: String,
    /// The row's stable id.
    pub uuid: String,
    /// True when this batch created the row.
    pub created: bool,
    /// New events of this batch counted into the row.
    pub added: u64,
    /// The row's event count after the batch.
    pub event_count: u64,
}

/// What an ingest batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestOutcome {
    /// Batch indexes of the events whose log rows were inserted, ascending.
    pub inserted: Vec<usize>,
    /// Events skipped because their dedup key was already stored or appeared earlier in
    /// the batch.
    pub duplicates: u64,
    /// Attacker rows touched, one per distinct address, sorted by address.
    pub attackers: Vec<AttackerTouched>,
    /// Credential upserts of the inserted events: (batch index, result), ascending. The
    /// results are those of upserting the attempts one by one in batch order.
    pub credentials: Vec<(usize, CredentialUpserted)>,
}

/// Ingestion of parsed events: logs, attackers and credentials in one transaction.
///
/// Guarantees: the batch commits whole or not at all; a log row is inserted only when
/// its `dedup_key` is new (the first of repeated keys in a batch wins); attacker
/// aggregates (first/last seen, event count, deckies, services) and credential
/// attempts are derived **only** from the inserted rows, so re-ingesting a batch, or
/// part of one, changes nothing. Events whose `attacker_ip` is empty or
/// [`UNKNOWN_ATTACKER`] touch no attacker row.
#[async_trait]
pub trait IngestRepo: Send + Sync {
    /// Ingests at most [`limits::MAX_INGEST_BATCH`] events in one transaction.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an oversized batch and [`Error::InvalidEvent`] (with the
    /// index and the field) for a bad event, both before anything is written;
    /// [`Error::Database`] (nothing written).
    async fn ingest(&self, batch: &[IngestEvent]) -> Result<IngestOutcome>;
}

/// Activity of one address, folded into its attacker row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackerObservation {
    /// Attacker address (the row key).
    pub ip: String,
    /// When the activity happened.
    pub seen_at: Timestamp,
    /// Decky it touched.
    pub decky: Option<String>,
    /// Service it touched.
    pub service: Option<String>,
    /// Events to add to the count.
    pub events: u64,
}

impl AttackerObservation {
    pub(crate) fn check(&self) -> Result<()> {
        limits::label("attacker ip", &self.ip, MAX_LABEL_LEN)?;
        limits::opt_text("attacker decky", self.decky.as_deref(), MAX_LABEL_LEN)?;
        limits::opt_text("attacker service", self.service.as_deref(), MAX_LABEL_LEN)?;
        if i64::try_from(self.events).is_err() {
            return Err(Error::invalid("attacker events", "count out of range"));
        }
        Ok(())
    }
}

/// Aggregated activity of one address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attacker {
    /// Stable id (created with the row).
    pub uuid: String,
    /// Address.
    pub ip: String,
    /// Earliest activity.
    pub first_seen: Timestamp,
    /// Latest activity.
    pub last_seen: Timestamp,
    /// Events counted.
    pub event_count: u64,
    /// Distinct services touched, sorted.
    pub services: Vec<String>,
    /// Distinct deckies touched, sorted.
    pub deckies: Vec<String>,
    /// Last write.
    pub updated_at: Timestamp,
}

/// Attacker filters and paging (most recent activity first, then by address).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackerQuery {
    /// Substring of the address.
    pub ip_contains: Option<String>,
    /// Touched this service.
    pub service: Option<String>,
    /// Touched this decky.
    pub decky: Option<String>,
    /// Rows to skip.
    pub offset: u64,
    /// Page size (capped).
    pub limit: u32,
}

impl AttackerQuery {
    pub(crate) fn check(&self) -> Result<()> {
        limits::opt_text(
            "ip filter",
            self.ip_contains.as_deref(),
            MAX_FILTER_TEXT_LEN,
        )?;
        limits::opt_text(
            "service filter",
            self.service.as_deref(),
            MAX_FILTER_TEXT_LEN,
        )?;
        limits::opt_text("decky filter", self.decky.as_deref(), MAX_FILTER_TEXT_LEN)
    }
}

/// Attackers, one row per address.
///
/// Guarantees: a batch of observations is one transaction; folding is commutative
/// (first/last seen are min/max, counts add, sets union), so replays only add counts.
#[async_trait]
pub trait AttackerRepo: Send + Sync {
    /// Folds each observation into its address's row, creating it when new.
    ///
    /// # Errors
    /// [`Error::Invalid`] (nothing written); [`Error::Database`].
    async fn upsert_attackers(&self, observations: &[AttackerObservation]) -> Result<()>;

    /// By id.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn get_attacker(&self, uuid: &str) -> Result<Option<Attacker>>;

    /// By address.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn get_attacker_by_ip(&self, ip: &str) -> Result<Option<Attacker>>;

    /// A page, most recent `last_seen` first, ties by address.
    ///
    /// # Errors
    /// [`Error::Invalid`]; [`Error::Database`], [`Error::Corrupt`].
    async fn list_attackers(&self, query: &AttackerQuery) -> Result<Vec<Attacker>>;

    /// Number of rows matching the query's filters (paging ignored).
    ///
    /// # Errors
    /// [`Error::Invalid`]; [`Error::Database`].
    async fn count_attackers(&self, query: &AttackerQuery) -> Result<u64>;
}

/// One captured credential attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewCredential {
    /// Attacker address.
    pub attacker_ip: String,
    /// Decky.
    pub decky: String,
    /// Service.
    pub service: String,
    /// User name, DN or similar.
    pub principal: Option<String>,
    /// Secret kind (`plaintext`, `ntlmssp_v2`, …).
    pub secret_kind: String,
    /// SHA-256 of the secret's bytes, hex.
    pub secret_sha256: String,
    /// The secret, base64.
    pub secret_b64: Option<String>,
    /// Printable rendering.
    pub secret_printable: Option<String>,
    /// `success`, `failure`, `observed`.
    pub outcome: Option<String>,
    /// Extra structured data.
    pub fields: JsonObject,
    /// When it was seen.
    pub seen_at: Timestamp,
}

impl NewCredential {
    /// The non-null form of `principal` used in the unique key.
    pub(crate) fn principal_key(&self) -> &str {
        self.principal.as_deref().unwrap_or("")
    }

    /// Checks limits; returns the encoded `fields`.
    pub(crate) fn encode(&self) -> Result<String> {
        limits::text("credential attacker ip", &self.attacker_ip, MAX_LABEL_LEN)?;
        limits::text("credential decky", &self.decky, MAX_LABEL_LEN)?;
        limits::text("credential service", &self.service, MAX_LABEL_LEN)?;
        limits::opt_text("principal", self.principal.as_deref(), MAX_LABEL_LEN)?;
        limits::label(
            "secret kind",
            &self.secret_kind,
            limits::MAX_SECRET_KIND_LEN,
        )?;
        limits::sha256_hex("secret sha256", &self.secret_sha256)?;
        limits::opt_text(
            "secret base64",
            self.secret_b64.as_deref(),
            limits::MAX_SECRET_B64_LEN,
        )?;
        limits::opt_text(
            "printable secret",
            self.secret_printable.as_deref(),
            limits::MAX_SECRET_PRINTABLE_LEN,
        )?;
        limits::opt_text("outcome", self.outcome.as_deref(), MAX_LABEL_LEN)?;
        limits::json("credential fields", &self.fields, MAX_FIELDS_BYTES)
    }
}

/// A stored credential with its attempt count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    /// Row id.
    pub id: i64,
    /// Attacker address.
    pub attacker_ip: String,
    /// Decky.
    pub decky: String,
    /// Service.
    pub service: String,
    /// Principal.
    pub principal: Option<String>,
    /// Secret kind.
    pub secret_kind: String,
    /// Secret digest (lowercase hex).
    pub secret_sha256: String,
    /// Secret, base64.
    pub secret_b64: Option<String>,
    /// Printable secret.
    pub secret_printable: Option<String>,
    /// Latest known outcome.
    pub outcome: Option<String>,
    /// Fields of the latest attempt.
    pub fields: JsonObject,
    /// First attempt.
    pub first_seen: Timestamp,
    /// Latest attempt.
    pub last_seen: Timestamp,
    /// Attempts folded into this row.
    pub attempt_count: u64,
}

/// What one credential upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialUpserted {
    /// Row id.
    pub id: i64,
    /// Attempts now counted.
    pub attempt_count: u64,
    /// True when the row was created by this attempt.
    pub created: bool,
}

/// Credential filters (exact matches).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialFilter {
    /// Attacker address.
    pub attacker_ip: Option<String>,
    /// Decky.
    pub decky: Option<String>,
    /// Service.
    pub service: Option<String>,
    /// Secret kind.
    pub secret_kind: Option<String>,
    /// Principal.
    pub principal: Option<String>,
    /// Secret digest (any case).
    pub secret_sha256: Option<String>,
}

impl CredentialFilter {
    pub(crate) fn check(&self) -> Result<()> {
        for (what, v) in [
            ("attacker ip filter", &self.attacker_ip),
            ("decky filter", &self.decky),
            ("service filter", &self.service),
            ("secret kind filter", &self.secret_kind),
            ("principal filter", &self.principal),
            ("secret sha256 filter", &self.secret_sha256),
        ] {
            limits::opt_text(what, v.as_deref(), MAX_FILTER_TEXT_LEN)?;
        }
        Ok(())
    }
}

/// Captured credentials, unique on
/// `(attacker_ip, decky, service, secret_kind, secret_sha256, principal)`.
///
/// Guarantees: a repeat attempt bumps `attempt_count` and `last_seen` of the one
/// existing row (`ON CONFLICT DO UPDATE`); a batch is one transaction.
#[async_trait]
pub trait CredentialRepo: Send + Sync {
    /// Upserts each attempt in order; one result per input.
    ///
    /// # Errors
    /// [`Error::Invalid`] (nothing written); [`Error::Database`].
    async fn upsert_credentials(&self, batch: &[NewCredential]) -> Result<Vec<CredentialUpserted>>;

    /// A page, latest `last_seen` first, ties by id descending.
    ///
    /// # Errors
    /// [`Error::Invalid`]; [`Error::Database`], [`Error::Corrupt`].
    async fn list_credentials(
        &self,
        filter: &CredentialFilter,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<Credential>>;

    /// Number of matching rows.
    ///
    /// # Errors
    /// [`Error::Invalid`]; [`Error::Database`].
    async fn count_credentials(&self, filter: &CredentialFilter) -> Result<u64>;
}

/// A captured artifact (dropped file, stored mail) kept under the artifacts directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewArtifact {
    /// Attacker address.
    pub attacker_ip: String,
    /// Decky.
    pub decky: String,
    /// Service.
    pub service: String,
    /// `file_captured`, `message_stored`, …
    pub kind: String,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Path relative to the artifacts directory (no `..`, not absolute).
    pub stored_path: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was captured.
    pub observed_at: Timestamp,
    /// Extra metadata.
    pub meta: JsonObject,
}

impl NewArtifact {
    /// Checks limits and the path rule; returns the encoded `meta`.
    pub(crate) fn encode(&self) -> Result<String> {
        limits::label("artifact attacker ip", &self.attacker_ip, MAX_LABEL_LEN)?;
        limits::text("artifact decky", &self.decky, MAX_LABEL_LEN)?;
        limits::text("artifact service", &self.service, MAX_LABEL_LEN)?;
        limits::label("artifact kind", &self.kind, MAX_LABEL_LEN)?;
        limits::sha256_hex("artifact sha256", &self.sha256)?;
        limits::label("artifact path", &self.stored_path, MAX_TEXT_LEN)?;
        let path = std::path::Path::new(&self.stored_path);
        if path.is_absolute()
            || self.stored_path.starts_with('/')
            || path
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(Error::invalid(
                "artifact path",
                format!("{:?} must be relative without '..'", self.stored_path),
            ));
        }
        if i64::try_from(self.size).is_err() {
            return Err(Error::invalid("artifact size", "out of range"));
        }
        limits::json("artifact meta", &self.meta, MAX_FIELDS_BYTES)
    }
}

/// A stored artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Artifact {
    /// Row id.
    pub id: i64,
    /// Attacker address.
    pub attacker_ip: String,
    /// Decky.
    pub decky: String,
    /// Service.
    pub service: String,
    /// Kind.
    pub kind: String,
    /// Content digest (lowercase hex).
    pub sha256: String,
    /// Path relative to the artifacts directory.
    pub stored_path: String,
    /// Size in bytes.
    pub size: u64,
    /// Capture time.
    pub observed_at: Timestamp,
    /// Metadata.
    pub meta: JsonObject,
}

/// Artifacts, unique on `(attacker_ip, decky, service, sha256)`.
#[async_trait]
pub trait ArtifactRepo: Send + Sync {
    /// Records an artifact; returns false when the same content from the same attacker
    /// on the same decky and service was already recorded (nothing changes).
    ///
    /// # Errors
    /// [`Error::Invalid`]; [`Error::Database`].
    async fn record_artifact(&self, artifact: &NewArtifact) -> Result<bool>;

    /// An attacker's artifacts, newest first, at most `limit` (capped).
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn get_attacker_artifacts(&self, attacker_ip: &str, limit: u32) -> Result<Vec<Artifact>>;
}
