//! The ingester: collected lines → `logs`, `attackers` and `credentials` rows in one
//! store transaction per batch, then `attacker.observed` / `credential.captured` on the
//! bus (and, optionally, a copy of every new event to an external SIEM).
//!
//! [`to_ingest`] is the pure mapping of one line; [`Ingester`] is the [`EventSink`] of a
//! master (collector, swarm listener and `decnet logs import` all commit through it).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use decnet_bus::{Bus, publish_safely, topics};
use decnet_store::limits::{MAX_FIELDS_BYTES, MAX_INGEST_BATCH, MAX_LABEL_LEN};
use decnet_store::{
    IngestEvent, IngestOutcome, IngestRepo, JsonObject, LogOrigin, NewCredential, NewLog,
    Timestamp, UNKNOWN_ATTACKER,
};
use decnet_wire::rfc5424::{self, Line};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::siem::SiemOutput;
use super::{CollectedEvent, CommitOutcome, EventSink, Origin, SinkError};

/// Attacker address of an event without one.
pub const UNKNOWN_IP: &str = UNKNOWN_ATTACKER;
/// Event type of a line that is not RFC 5424.
pub const UNPARSED: &str = "unparsed";
/// Longest secret (decoded bytes) turned into a credential; the store keeps 2 048
/// base64 characters.
pub const MAX_SECRET_BYTES: usize = 1536;
/// Longest printable form of a secret stored.
const MAX_PRINTABLE: usize = 512;
/// Field keys of the credential shape that are not copied into the credential's own
/// `fields` (they have columns).
const CREDENTIAL_COLUMNS: [&str; 5] = [
    "principal",
    "secret_kind",
    "secret_printable",
    "secret_b64",
    "outcome",
];
/// Fields kept in a credential's `fields` column.
const CREDENTIAL_EXTRA: [&str; 4] = ["username", "mechanism", "auth_path", "src_port"];

/// Maps one collected line to the rows it produces.
///
/// Decky and service come from `event` (the container's labels, or for imports the
/// line's own HOSTNAME and APP-NAME, set by the importer); the line's HOSTNAME and
/// APP-NAME are kept as `claimed_hostname` / `claimed_app` when they differ. The
/// attacker address comes from the structured data only (SV-3). Every value is cut to the
/// store's limits, so no line can make a batch fail.
pub fn to_ingest(origin: &Origin, event: &CollectedEvent) -> IngestEvent {
    let raw_line = cut(&event.raw_line, super::MAX_RAW_LINE).to_owned();
    let (log_origin, source_worker) = match origin {
        Origin::Local => (LogOrigin::Local, None),
        Origin::Worker(name) => (
            LogOrigin::Forwarded,
            Some(cut(name, MAX_LABEL_LEN).to_owned()),
        ),
        Origin::Imported => (LogOrigin::Imported, None),
    };
    let mut log = NewLog {
        dedup_key: cut(&event.key, MAX_LABEL_LEN).to_owned(),
        timestamp: event.received,
        decky: label(&event.decky),
        service: label(&event.service),
        event_type: UNPARSED.to_owned(),
        attacker_ip: UNKNOWN_IP.to_owned(),
        severity: None,
        fields: JsonObject::new(),
        msg: None,
        raw_line,
        source_worker,
        trace_id: None,
        span_id: None,
        origin: log_origin,
    };
    let Ok(line) = rfc5424::parse_line(&event.raw_line) else {
        log.msg = Some(log.raw_line.clone());
        insert_disowned(&mut log.fields, event);
        return IngestEvent {
            log,
            credential: None,
        };
    };
    let view = rfc5424::effective(&line);
    let src = view.line;
    log.event_type = label(view.event_type);
    log.severity = Some(src.severity());
    if let Some(micros) = src.timestamp_micros() {
        log.timestamp = Timestamp::from_unix_micros(micros);
    }
    log.msg = view
        .msg
        .map(|m| cut(m, decnet_store::limits::MAX_RAW_LINE_LEN).to_owned());
    log.fields = fields_of(src, view.params, event);
    if view.unwrapped {
        log.fields
            .insert("double_wrapped".to_owned(), Value::Bool(true));
    }
    if let Some((ip, _)) = view.attacker_addr() {
        log.attacker_ip = ip.to_string();
    }
    let credential = credential_of(&log);
    IngestEvent { log, credential }
}

/// The decky and service a sender named that the receiver could not vouch for
/// ([`CollectedEvent::disown`]), as `claimed_decky` / `claimed_service`.
fn insert_disowned(out: &mut JsonObject, event: &CollectedEvent) {
    for (key, claim) in [
        ("claimed_decky", &event.claimed.decky),
        ("claimed_service", &event.claimed.service),
    ] {
        if let Some(c) = claim {
            out.insert(
                key.to_owned(),
                Value::String(cut(c, MAX_LABEL_LEN).to_owned()),
            );
        }
    }
}

/// The event made acceptable to the store after it refused it. The mapping above cuts
/// every value to the store's limits, so this is a second line of defence: the first
/// refusal drops the event's credential, the next its fields and MSG, so one event can
/// never make its batch fail for good; its raw line is always kept.
fn repair(mut e: IngestEvent) -> IngestEvent {
    if e.credential.take().is_some() {
        return e;
    }
    e.log.fields = JsonObject::new();
    e.log
        .fields
        .insert("fields_dropped".to_owned(), Value::Bool(true));
    e.log.msg = None;
    e
}

/// The `fields` object: the event element's parameters, other SD elements under
/// `sd.<id>`, and the claims that differ from the trusted attribution. Cut to the store's
/// size limit (values dropped from the end, `fields_truncated` set).
fn fields_of(line: &Line, params: &[(String, String)], event: &CollectedEvent) -> JsonObject {
    let mut out = JsonObject::new();
    for (k, v) in params {
        out.insert(k.clone(), Value::String(v.clone()));
    }
    let others: JsonObject = line
        .elements
        .iter()
        .filter(|(id, _)| id != rfc5424::SD_ID)
        .map(|(id, ps)| {
            let obj: JsonObject = ps
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            (id.clone(), Value::Object(obj))
        })
        .collect();
    if !others.is_empty() {
        out.insert("sd".to_owned(), Value::Object(others));
    }
    if line.hostname != "-" && line.hostname != event.decky {
        out.insert(
            "claimed_hostname".to_owned(),
            Value::String(cut(&line.hostname, MAX_LABEL_LEN).to_owned()),
        );
    }
    if line.app_name != "-" && line.app_name != event.service {
        out.insert(
            "claimed_app".to_owned(),
            Value::String(cut(&line.app_name, MAX_LABEL_LEN).to_owned()),
        );
    }
    insert_disowned(&mut out, event);
    // JSON escaping at most sextuples a value (\u00XX), and every name and value comes
    // from the line (plus at most four claims, each ≤ MAX_LABEL_LEN): only a long line
    // can produce fields over the store's limit, so only such a line pays for measuring
    // them (the store encodes them once more anyway).
    let bound = 6 * (event.raw_line.len() + 4 * MAX_LABEL_LEN) + 1024;
    while bound > MAX_FIELDS_BYTES - 64
        && serde_json::to_vec(&out).map_or(0, |v| v.len()) > MAX_FIELDS_BYTES - 64
    {
        let Some(last) = out.keys().next_back().cloned() else {
            break;
        };
        out.remove(&last);
        out.insert("fields_truncated".to_owned(), Value::Bool(true));
    }
    out
}

/// The credential an event carries: any event with a valid `secret_b64` (the universal
/// shape); the printable form is recomputed from the bytes, never trusted from the line.
fn credential_of(log: &NewLog) -> Option<NewCredential> {
    let text = |k: &str| log.fields.get(k).and_then(Value::as_str);
    let b64 = text("secret_b64")?;
    if b64.len() > decnet_store::limits::MAX_SECRET_B64_LEN {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    if bytes.len() > MAX_SECRET_BYTES {
        return None;
    }
    let kind = text("secret_kind")
        .filter(|k| {
            !k.is_empty()
                && k.len() <= decnet_store::limits::MAX_SECRET_KIND_LEN
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .unwrap_or("plaintext");
    let principal = text("principal")
        .or_else(|| text("username"))
        .filter(|p| !p.is_empty())
        .map(|p| cut(p, MAX_LABEL_LEN).to_owned());
    let outcome = text("outcome")
        .filter(|o| matches!(*o, "success" | "failure" | "observed"))
        .map(str::to_owned);
    let fields: JsonObject = CREDENTIAL_EXTRA
        .iter()
        .filter_map(|k| log.fields.get(*k).map(|v| ((*k).to_owned(), v.clone())))
        .filter(|(k, _)| !CREDENTIAL_COLUMNS.contains(&k.as_str()))
        .collect();
    let printable: String = bytes
        .iter()
        .take(MAX_PRINTABLE)
        .map(|&b| {
            if (0x20..=0x7e).contains(&b) {
                b as char
            } else {
                '?'
            }
        })
        .collect();
    Some(NewCredential {
        attacker_ip: log.attacker_ip.clone(),
        decky: log.decky.clone(),
        service: log.service.clone(),
        principal,
        secret_kind: kind.to_owned(),
        secret_sha256: hex::encode(Sha256::digest(&bytes)),
        secret_b64: Some(b64.to_owned()),
        secret_printable: Some(printable),
        outcome,
        fields,
        seen_at: log.timestamp,
    })
}

/// A stand-in while an event is being repaired (never stored).
fn placeholder() -> IngestEvent {
    IngestEvent {
        log: NewLog {
            dedup_key: String::new(),
            timestamp: Timestamp::from_unix_micros(0),
            decky: String::new(),
            service: String::new(),
            event_type: String::new(),
            attacker_ip: String::new(),
            severity: None,
            fields: JsonObject::new(),
            msg: None,
            raw_line: String::new(),
            source_worker: None,
            trace_id: None,
            span_id: None,
            origin: LogOrigin::Local,
        },
        credential: None,
    }
}

/// A non-empty label within the store's limit.
fn label(s: &str) -> String {
    let s = cut(s, MAX_LABEL_LEN);
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

/// `s` cut to at most `max` bytes at a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The master's sink: the store, then the bus, then the SIEM copy.
///
/// Commits may come from several tasks at once (the collector, every worker connection
/// of the listener): each maps its lines to rows on its own, concurrently, and the store
/// writes are taken one at a time (`write`), so a commit's parsing overlaps the previous
/// one's database work instead of contending for the database's write lock.
pub struct Ingester {
    store: Arc<dyn IngestRepo>,
    bus: Option<Arc<dyn Bus>>,
    siem: Option<SiemOutput>,
    write: tokio::sync::Mutex<()>,
}

/// How many times a batch is retried after the store refused one of its events (each
/// retry degrades that event, see [`repair`]).
const MAX_REPAIRS: usize = 8;

impl Ingester {
    /// An ingester writing to `store` and publishing on `bus` (none: no events).
    pub fn new(store: Arc<dyn IngestRepo>, bus: Option<Arc<dyn Bus>>) -> Self {
        Ingester {
            store,
            bus,
            siem: None,
            write: tokio::sync::Mutex::new(()),
        }
    }

    /// Also sends every newly stored event to an external SIEM.
    #[must_use]
    pub fn with_siem(mut self, siem: SiemOutput) -> Self {
        self.siem = Some(siem);
        self
    }

    /// Stores `rows` in one transaction, repairing an event the store refuses.
    async fn store(&self, rows: &mut [IngestEvent]) -> Result<IngestOutcome, SinkError> {
        let _turn = self.write.lock().await;
        let mut repairs = 0;
        loop {
            match self.store.ingest(rows).await {
                Err(decnet_store::Error::InvalidEvent { index, source })
                    if repairs < MAX_REPAIRS && index < rows.len() =>
                {
                    tracing::warn!(index, error = %source, "Store refused an event; keeping its line only");
                    repairs += 1;
                    let e = std::mem::replace(&mut rows[index], placeholder());
                    rows[index] = repair(e);
                }
                other => return other.map_err(SinkError::from),
            }
        }
    }

    async fn publish(&self, rows: &[IngestEvent], outcome: &IngestOutcome) {
        let Some(bus) = self.bus.as_deref() else {
            return;
        };
        for a in &outcome.attackers {
            let payload = serde_json::json!({
                "ip": a.ip,
                "created": a.created,
                "event_count": a.event_count,
            });
            publish_safely(
                Some(bus),
                topics::ATTACKER_OBSERVED,
                "attacker_observed",
                payload,
            )
            .await;
        }
        for (index, up) in &outcome.credentials {
            let Some(c) = rows.get(*index).and_then(|r| r.credential.as_ref()) else {
                continue;
            };
            let payload = serde_json::json!({
                "id": up.id,
                "created": up.created,
                "attempt_count": up.attempt_count,
                "attacker_ip": c.attacker_ip,
                "decky": c.decky,
                "service": c.service,
                "principal": c.principal,
                "secret_kind": c.secret_kind,
                "secret_sha256": c.secret_sha256,
                "outcome": c.outcome,
            });
            publish_safely(
                Some(bus),
                topics::CREDENTIAL_CAPTURED,
                "credential_captured",
                payload,
            )
            .await;
        }
    }
}

#[async_trait]
impl EventSink for Ingester {
    async fn commit(
        &self,
        origin: &Origin,
        batch: &[CollectedEvent],
    ) -> Result<CommitOutcome, SinkError> {
        let mut total = CommitOutcome::default();
        for events in batch.chunks(MAX_INGEST_BATCH) {
            let mut chunk: Vec<IngestEvent> = events.iter().map(|e| to_ingest(origin, e)).collect();
            let outcome = self.store(&mut chunk).await?;
            total.inserted += outcome.inserted.len() as u64;
            total.duplicates += outcome.duplicates;
            if let Some(siem) = &self.siem {
                for &i in &outcome.inserted {
                    if let (Some(e), Some(row)) = (events.get(i), chunk.get(i)) {
                        siem.send(e, &row.log);
                    }
                }
            }
            self.publish(&chunk, &outcome).await;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RCV: Timestamp = Timestamp::from_unix_micros(1_800_000_000_000_000);

    fn event(decky: &str, service: &str, line: &str) -> CollectedEvent {
        CollectedEvent {
            key: CollectedEvent::container_key("c1", 1, line),
            decky: decky.to_owned(),
            service: service.to_owned(),
            received: RCV,
            raw_line: line.to_owned(),
            claimed: Default::default(),
        }
    }

    const AUTH: &str = "<134>1 2026-11-27T08:00:00.123456+00:00 decky-01 ssh - auth_attempt \
        [relay@55555 src_ip=\"203.0.113.9\" src_port=\"50022\" principal=\"root\" \
        secret_kind=\"plaintext\" secret_printable=\"lies\" secret_b64=\"aHVudGVyMgo=\" \
        outcome=\"failure\" mechanism=\"password\"]";

    #[test]
    fn an_auth_attempt_gives_a_log_an_attacker_and_a_credential() {
        let e = to_ingest(&Origin::Local, &event("decky-01", "ssh", AUTH));
        assert_eq!(e.log.event_type, "auth_attempt");
        assert_eq!(e.log.attacker_ip, "203.0.113.9");
        assert_eq!(e.log.severity, Some(6));
        assert_eq!(
            e.log.timestamp,
            Timestamp::parse_rfc3339("2026-11-27T08:00:00.123456Z").unwrap()
        );
        assert_eq!(e.log.fields["src_port"], "50022");
        assert_eq!(e.log.origin, LogOrigin::Local);
        assert_eq!(e.log.source_worker, None);
        assert!(!e.log.fields.contains_key("claimed_hostname"));
        let c = e.credential.unwrap();
        assert_eq!(c.principal.as_deref(), Some("root"));
        assert_eq!(c.secret_kind, "plaintext");
        // Printable form recomputed from the bytes, not the line's claim.
        assert_eq!(c.secret_printable.as_deref(), Some("hunter2?"));
        assert_eq!(c.secret_sha256, hex::encode(Sha256::digest(b"hunter2\n")));
        assert_eq!(c.outcome.as_deref(), Some("failure"));
        assert_eq!(c.fields["mechanism"], "password");
        assert_eq!((c.decky.as_str(), c.service.as_str()), ("decky-01", "ssh"));
    }

    #[test]
    fn a_forged_line_is_attributed_to_its_container() {
        let forged = AUTH.replace("decky-01 ssh", "decky-99 mysql");
        let e = to_ingest(&Origin::Local, &event("decky-01", "ssh", &forged));
        assert_eq!(
            (e.log.decky.as_str(), e.log.service.as_str()),
            ("decky-01", "ssh")
        );
        assert_eq!(e.log.fields["claimed_hostname"], "decky-99");
        assert_eq!(e.log.fields["claimed_app"], "mysql");
        let c = e.credential.unwrap();
        assert_eq!((c.decky.as_str(), c.service.as_str()), ("decky-01", "ssh"));
    }

    #[test]
    fn a_worker_is_named_by_its_certificate() {
        let e = to_ingest(
            &Origin::Worker("worker-a".into()),
            &event("decky-01", "ssh", AUTH),
        );
        assert_eq!(e.log.origin, LogOrigin::Forwarded);
        assert_eq!(e.log.source_worker.as_deref(), Some("worker-a"));
        let i = to_ingest(&Origin::Imported, &event("decky-01", "ssh", AUTH));
        assert_eq!(i.log.origin, LogOrigin::Imported);
    }

    #[test]
    fn a_disowned_event_keeps_its_claim_but_not_the_decky() {
        for line in [AUTH, "not syslog at all"] {
            let mut ev = event("decky-01", "ssh", line);
            ev.disown(true, false);
            let e = to_ingest(&Origin::Worker("worker-a".into()), &ev);
            assert_eq!((e.log.decky.as_str(), e.log.service.as_str()), ("-", "-"));
            assert_eq!(e.log.fields["claimed_decky"], "decky-01", "{line}");
            assert_eq!(e.log.fields["claimed_service"], "ssh", "{line}");
            if let Some(c) = e.credential {
                assert_eq!((c.decky.as_str(), c.service.as_str()), ("-", "-"));
            }
        }
        let mut ev = event("decky-01", "mysql", AUTH);
        ev.disown(false, true);
        let e = to_ingest(&Origin::Worker("worker-a".into()), &ev);
        assert_eq!(
            (e.log.decky.as_str(), e.log.service.as_str()),
            ("decky-01", "-")
        );
        assert!(!e.log.fields.contains_key("claimed_decky"));
        assert_eq!(e.log.fields["claimed_service"], "mysql");
    }

    #[test]
    fn text_never_names_the_attacker() {
        let line = "<134>1 2026-11-27T08:00:00+00:00 d telnet - command \
            [relay@55555 cmd=\"ping 8.8.8.8\"] CMD ping 8.8.8.8 from 8.8.4.4";
        let e = to_ingest(&Origin::Local, &event("d", "telnet", line));
        assert_eq!(e.log.attacker_ip, UNKNOWN_IP);
        assert!(e.credential.is_none());
    }

    #[test]
    fn unparsable_and_hostile_lines_still_fit_the_store() {
        let e = to_ingest(&Origin::Local, &event("d", "http", "panic: oh no"));
        assert_eq!(e.log.event_type, UNPARSED);
        assert_eq!(e.log.timestamp, RCV);
        assert_eq!(e.log.msg.as_deref(), Some("panic: oh no"));
        assert!(e.log.severity.is_none());
        e.check().unwrap();

        let long_id = "x".repeat(400);
        let line = format!(
            "<134>1 2026-11-27T08:00:00+00:00 d http - {long_id} [relay@55555 src_ip=\"{}\" \
             secret_b64=\"!!notbase64\" secret_kind=\"{}\"]",
            "1".repeat(300),
            "k".repeat(100)
        );
        let e = to_ingest(&Origin::Local, &event(&"d".repeat(300), "", &line));
        e.check().unwrap();
        assert!(e.credential.is_none(), "invalid base64 gives no credential");
        assert_eq!(e.log.service, "-");

        let line = "<134>1 - d ftp - login [relay@55555 src_ip=\"198.51.100.7\" \
            principal=\"a\" secret_b64=\"AAEC\" secret_kind=\"weird kind!\"]";
        let c = to_ingest(&Origin::Local, &event("d", "ftp", line))
            .credential
            .unwrap();
        assert_eq!(c.secret_kind, "plaintext");
        assert_eq!(c.secret_printable.as_deref(), Some("???"));
        assert_eq!(c.seen_at, RCV, "no TIMESTAMP: Docker's time");
    }

    #[test]
    fn fields_that_would_overflow_the_store_are_cut() {
        let control = "\u{1}".repeat(45 * 1024);
        let line = format!(
            "<134>1 2026-11-27T08:00:00+00:00 d http - request \
             [relay@55555 src_ip=\"192.0.2.1\" zbody=\"{control}\"]"
        );
        let e = to_ingest(&Origin::Local, &event("d", "http", &line));
        e.check().unwrap();
        assert_eq!(e.log.fields["fields_truncated"], true);
        assert!(!e.log.fields.contains_key("zbody"));
        assert_eq!(e.log.fields["src_ip"], "192.0.2.1");
        assert_eq!(e.log.raw_line, line);
    }

    #[test]
    fn other_elements_are_kept_under_sd() {
        let line = "<134>1 2026-11-27T08:00:00+00:00 d http - request \
            [meta@1 a=\"1\"][relay@55555 path=\"/a]b\" src_ip=\"192.0.2.1\"]";
        let e = to_ingest(&Origin::Local, &event("d", "http", line));
        assert_eq!(e.log.fields["path"], "/a]b");
        assert_eq!(e.log.fields["sd"]["meta@1"]["a"], "1");
        assert_eq!(e.log.attacker_ip, "192.0.2.1");
    }
}
