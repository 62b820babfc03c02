//! Telemetry: logs, attackers, credentials and artifacts.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::limits::{self, MAX_FIELDS_BYTES, MAX_FILTER_TEXT_LEN, MAX_LABEL_LEN, MAX_TEXT_LEN};
use crate::{Error, Result, Timestamp};

/// A JSON object column.
pub type JsonObject = Map<String, Value>;

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
}

impl LogFilter {
    pub(crate) fn check(&self) -> Result<()> {
        for (what, v) in [
            ("decky filter", &self.decky),
            ("service filter", &self.service),
            ("event type filter", &self.event_type),
            ("attacker ip filter", &self.attacker_ip),
            ("text filter", &self.text),
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
