//! The log pipeline's shared shapes: what a collector hands on ([`CollectedEvent`]),
//! where it came from ([`Origin`]) and where it goes ([`EventSink`]).
//!
//! Flow: a container's stdout line → collector (decky and service from the container's
//! labels, never from the line) → on a master [`EventSink`] = the ingester (store
//! transaction, then bus); on a worker the local spool → forwarder → the master's
//! listener → the same ingester with [`Origin::Worker`].
//!
//! Every event carries a stable [`CollectedEvent::key`]; the store ignores a second
//! insert with the same key and derives attacker and credential aggregates only from
//! rows it actually inserted, so re-delivery after a crash changes nothing.

pub mod collector;
pub mod ingest;
pub mod siem;
pub mod spool;

use async_trait::async_trait;
use decnet_store::Timestamp;
use sha2::{Digest, Sha256};

/// Longest raw line handed on (bytes, marker included): a worker wraps every line in the
/// forwarding envelope, and the wrapped line must still fit one RFC 5424 line and one
/// 64 KiB RFC 5425 frame, so the collector cuts (and marks) longer lines, the ingester
/// never stores more, and `decnet logs import` refuses longer lines.
pub const MAX_RAW_LINE: usize =
    decnet_wire::rfc5424::MAX_LINE - decnet_wire::rfc5424::MAX_ENVELOPE_OVERHEAD;

/// Who vouches for an event's decky and service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// This host's collector (container labels).
    Local,
    /// A swarm worker's collector, shipped over mTLS; the name comes from the verified
    /// worker certificate, never from the line.
    Worker(String),
    /// `decnet logs import`: nothing vouches; decky and service come from the line.
    Imported,
}

/// One line read from a decky container (or an imported file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectedEvent {
    /// Stable per-event idempotency key (lowercase hex, ≤ 64 chars).
    pub key: String,
    /// Decky the line is attributed to (container label `decnet.decky`).
    pub decky: String,
    /// Service slug (container label `decnet.service`).
    pub service: String,
    /// When the runtime received the line (Docker's timestamp); used when the line's own
    /// TIMESTAMP is missing or unreadable.
    pub received: Timestamp,
    /// The line exactly as printed (no trailing newline).
    pub raw_line: String,
    /// What the sender named but the receiver could not vouch for (see
    /// [`CollectedEvent::disown`]); empty for every event a collector reads itself.
    pub claimed: Claimed,
}

/// A decky or service named by a sender that the receiver could not vouch for: the
/// master's listener finds a worker's event for a decky that is not one of that worker's
/// shards, or for a service that decky does not run. The claim is kept (as
/// `claimed_decky` / `claimed_service` in the row's fields) and the event is attributed
/// to `-` instead, so a worker cannot write into another decky's history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claimed {
    /// The decky the sender named.
    pub decky: Option<String>,
    /// The service the sender named.
    pub service: Option<String>,
}

/// The attribution of an event nobody vouches for.
pub const UNATTRIBUTED: &str = "-";

impl CollectedEvent {
    /// The key of a line read from a container: Docker's timestamp of the line
    /// (nanoseconds, 32 hex digits, order-preserving) followed by the first 128 bits of
    /// SHA-256 over the container id, the timestamp and the line.
    ///
    /// Time first, so new keys land at the end of the store's unique index instead of on
    /// a random leaf page: measured 1.6x the SQLite ingest rate of plain digests (see
    /// docs/benchmarks.md). The key stays a pure function of the event, so a re-read line
    /// gets the same key.
    pub fn container_key(container_id: &str, docker_ts_nanos: i128, line: &str) -> String {
        let digest = digest(&[
            container_id.as_bytes(),
            &docker_ts_nanos.to_be_bytes(),
            line.as_bytes(),
        ]);
        format!("{:032x}{}", ordered(docker_ts_nanos), &digest[..32])
    }

    /// Moves the decky (and the service with it, since it is the decky's), or only the
    /// service, into [`CollectedEvent::claimed`] and attributes the event to
    /// [`UNATTRIBUTED`] instead.
    pub fn disown(&mut self, decky: bool, service: bool) {
        if decky {
            self.claimed.decky = Some(std::mem::replace(&mut self.decky, UNATTRIBUTED.to_owned()));
        }
        if decky || service {
            self.claimed.service = Some(std::mem::replace(
                &mut self.service,
                UNATTRIBUTED.to_owned(),
            ));
        }
    }

    /// The key of an imported line: the line number (16 hex digits) followed by the first
    /// 192 bits of SHA-256 over the line number and the line, so importing the same file
    /// twice inserts nothing new.
    pub fn import_key(line_no: u64, line: &str) -> String {
        let digest = digest(&[b"import", &line_no.to_be_bytes(), line.as_bytes()]);
        format!("{line_no:016x}{}", &digest[..48])
    }
}

/// `v` mapped to an unsigned value with the same order (sign bit flipped).
fn ordered(v: i128) -> u128 {
    (v as u128) ^ (1u128 << 127)
}

fn digest(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// What a commit did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Rows inserted.
    pub inserted: u64,
    /// Events already stored (same key), skipped.
    pub duplicates: u64,
}

/// Where collected events go. `commit` returns only once the batch is durable (stored
/// in the database, or fsynced in the spool); callers advance their cursors or
/// acknowledge only after it returns `Ok`.
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Commits `batch` durably, idempotently per key.
    ///
    /// # Errors
    /// A description of what failed; nothing in the batch may be considered stored.
    async fn commit(
        &self,
        origin: &Origin,
        batch: &[CollectedEvent],
    ) -> Result<CommitOutcome, SinkError>;
}

/// Why a sink could not commit a batch.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// The database failed.
    #[error("log store")]
    Store(#[from] decnet_store::Error),
    /// The spool failed.
    #[error("log spool {path}")]
    Spool {
        /// The spool file or directory.
        path: std::path::PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The spool is full (its size cap reached): the caller must wait and retry.
    #[error("log spool is full ({bytes} bytes); waiting for the forwarder")]
    SpoolFull {
        /// Bytes held.
        bytes: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_hex_and_ordered_by_time() {
        let a = CollectedEvent::container_key("c1", 1_800_000_000_000_000_000, "line");
        assert_eq!(
            a,
            CollectedEvent::container_key("c1", 1_800_000_000_000_000_000, "line")
        );
        assert_eq!(a.len(), 64);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(
            CollectedEvent::container_key("c1", 5, "l"),
            CollectedEvent::container_key("c2", 5, "l")
        );
        assert_ne!(
            a,
            CollectedEvent::container_key("c1", 1_800_000_000_000_000_000, "other")
        );
        let mut times = [
            -5i128,
            -1,
            0,
            1,
            999,
            1_800_000_000_000_000_000,
            i128::MAX,
            i128::MIN,
        ];
        let keys: Vec<String> = times
            .iter()
            .map(|t| CollectedEvent::container_key("c", *t, "l"))
            .collect();
        times.sort_unstable();
        let mut sorted = keys.clone();
        sorted.sort();
        let by_time: Vec<String> = times
            .iter()
            .map(|t| CollectedEvent::container_key("c", *t, "l"))
            .collect();
        assert_eq!(sorted, by_time);
        let i = CollectedEvent::import_key(7, "x");
        assert_eq!(i.len(), 64);
        assert!(i.starts_with("0000000000000007"));
        assert_ne!(i, CollectedEvent::import_key(8, "x"));
    }
}
