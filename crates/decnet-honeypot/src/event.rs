//! The event schema: one RFC 5424 line per event, with the universal credential shape.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use decnet_wire::rfc5424::{self, Severity};
use time::OffsetDateTime;

/// Longest value of one field; longer values are cut and flagged with `<field>_truncated`.
pub const MAX_FIELD_BYTES: usize = 4096;
/// Longest secret kept (bytes, before base64).
pub const MAX_SECRET_BYTES: usize = 1024;

/// Well-known event types (MSGIDs). Emulators may add their own protocol-specific ones.
pub mod kind {
    /// A connection was accepted.
    pub const CONNECT: &str = "connect";
    /// A connection ended.
    pub const DISCONNECT: &str = "disconnect";
    /// A connection was refused by the connection budget.
    pub const CONNECTION_REFUSED: &str = "connection_refused";
    /// Any credential presented.
    pub const AUTH_ATTEMPT: &str = "auth_attempt";
    /// A command typed or sent.
    pub const COMMAND: &str = "command";
    /// A request (HTTP and other request/response protocols).
    pub const REQUEST: &str = "request";
    /// An attempt to fetch or download something.
    pub const DOWNLOAD_ATTEMPT: &str = "download_attempt";
    /// A session transcript was written.
    pub const SESSION_RECORDED: &str = "session_recorded";
    /// An artifact (mail, upload) was stored.
    pub const ARTIFACT_STORED: &str = "artifact_stored";
    /// The peer broke the protocol (the connection is closed).
    pub const PROTOCOL_ERROR: &str = "protocol_error";
    /// The service started listening.
    pub const STARTUP: &str = "startup";
}

/// One event, before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// MSGID.
    pub kind: String,
    /// Severity (info unless set).
    pub severity: Severity,
    /// Structured-data parameters, in order.
    pub fields: Vec<(String, String)>,
    /// Optional free text after the structured data.
    pub msg: Option<String>,
}

impl Event {
    /// A new info event of type `kind`.
    pub fn new(kind: &str) -> Self {
        Event {
            kind: kind.to_owned(),
            severity: Severity::Info,
            fields: Vec::with_capacity(8),
            msg: None,
        }
    }

    /// A new event carrying the peer's address (`src_ip`, `src_port`): every event about a
    /// connection starts with this.
    pub fn from_peer(kind: &str, peer: SocketAddr) -> Self {
        Event::new(kind)
            .field("src_ip", peer.ip().to_string())
            .field("src_port", peer.port().to_string())
    }

    /// Adds a field, cutting values longer than [`MAX_FIELD_BYTES`] on a char boundary.
    pub fn field(mut self, key: &str, value: impl Into<String>) -> Self {
        let mut value = value.into();
        if value.len() > MAX_FIELD_BYTES {
            let mut cut = MAX_FIELD_BYTES;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
            self.fields
                .push((format!("{key}_truncated"), "true".to_owned()));
        }
        self.fields.push((key.to_owned(), value));
        self
    }

    /// Adds a field holding arbitrary bytes, as lossy text.
    pub fn field_bytes(self, key: &str, value: &[u8]) -> Self {
        self.field(key, printable(value))
    }

    /// Sets the severity.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Sets the free-text message.
    pub fn msg(mut self, msg: impl Into<String>) -> Self {
        self.msg = Some(msg.into());
        self
    }

    /// Adds the universal credential fields.
    pub fn credential(mut self, credential: &Credential) -> Self {
        for (k, v) in credential.fields() {
            self = self.field(k, v);
        }
        self
    }

    /// The value of a field, if present (used by tests).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Replaces bytes outside 0x20..=0x7E with `?` (the reference's `secret_printable`).
pub fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| {
            if (0x20..=0x7e).contains(b) {
                char::from(*b)
            } else {
                '?'
            }
        })
        .collect()
}

/// How a secret is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A password as typed.
    Plaintext,
    /// An HTTP bearer token.
    HttpBearer,
    /// An HTTP Digest `response` (MD5), with realm/nonce/uri in the event.
    HttpDigestMd5,
    /// A PostgreSQL `md5` response.
    PostgresMd5Challenge,
    /// A MySQL `mysql_native_password` scramble.
    MysqlNativePassword,
    /// A VNC DES challenge response.
    VncDesResponse,
    /// An SSH public key offered.
    SshPublicKey,
}

impl SecretKind {
    /// The reference's name of the kind.
    pub fn as_str(self) -> &'static str {
        match self {
            SecretKind::Plaintext => "plaintext",
            SecretKind::HttpBearer => "http_bearer",
            SecretKind::HttpDigestMd5 => "http_digest_md5",
            SecretKind::PostgresMd5Challenge => "postgres_md5_challenge",
            SecretKind::MysqlNativePassword => "mysql_native_password",
            SecretKind::VncDesResponse => "vnc_des_response",
            SecretKind::SshPublicKey => "ssh_public_key",
        }
    }
}

/// Result of an authentication attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted.
    Success,
    /// Refused.
    Failure,
    /// Seen but not judged (e.g. a challenge response that cannot be verified).
    Observed,
}

impl Outcome {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Observed => "observed",
        }
    }
}

/// The universal credential shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Username, DN, `DOMAIN\user`, or none.
    pub principal: Option<String>,
    /// Encoding of `secret`.
    pub kind: SecretKind,
    /// The secret's bytes, lossless (cut at [`MAX_SECRET_BYTES`]).
    pub secret: Vec<u8>,
    /// Result.
    pub outcome: Outcome,
    /// Mechanism (`password`, `publickey`, `PLAIN`, `LOGIN`, `basic`, ...), when useful.
    pub mechanism: Option<String>,
}

impl Credential {
    /// A plaintext password attempt.
    pub fn password(principal: &str, secret: &[u8], outcome: Outcome) -> Self {
        Credential {
            principal: Some(principal.to_owned()),
            kind: SecretKind::Plaintext,
            secret: secret[..secret.len().min(MAX_SECRET_BYTES)].to_vec(),
            outcome,
            mechanism: None,
        }
    }

    /// Sets the mechanism.
    pub fn mechanism(mut self, mechanism: &str) -> Self {
        self.mechanism = Some(mechanism.to_owned());
        self
    }

    /// The fields in the reference's order.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let secret = &self.secret[..self.secret.len().min(MAX_SECRET_BYTES)];
        let mut out = vec![
            ("principal", self.principal.clone().unwrap_or_default()),
            ("secret_kind", self.kind.as_str().to_owned()),
            ("secret_printable", printable(secret)),
            (
                "secret_b64",
                base64::engine::general_purpose::STANDARD.encode(secret),
            ),
            ("outcome", self.outcome.as_str().to_owned()),
        ];
        if let Some(m) = &self.mechanism {
            out.push(("mechanism", m.clone()));
        }
        if let Some(p) = &self.principal {
            out.push(("username", p.clone()));
        }
        out
    }
}

/// Where events go. Implementations must not block for long: emulators call `emit` on
/// their async tasks.
pub trait EventSink: Send + Sync {
    /// Writes one event of service `app`.
    fn emit(&self, app: &str, event: Event);
}

/// Writes RFC 5424 lines to any writer (stdout in production), one `write` per line so
/// lines from concurrent connections never interleave.
pub struct LineSink<W: Write + Send> {
    hostname: String,
    out: Mutex<W>,
}

impl<W: Write + Send> LineSink<W> {
    /// A sink stamping `hostname` (the decky name) on every line.
    pub fn new(hostname: &str, out: W) -> Self {
        LineSink {
            hostname: hostname.to_owned(),
            out: Mutex::new(out),
        }
    }
}

impl<W: Write + Send> EventSink for LineSink<W> {
    fn emit(&self, app: &str, event: Event) {
        let params: Vec<(&str, &str)> = event
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut line = rfc5424::format_line(
            event.severity,
            OffsetDateTime::now_utc(),
            &self.hostname,
            app,
            &event.kind,
            &params,
            event.msg.as_deref(),
        );
        line.push('\n');
        if let Ok(mut out) = self.out.lock() {
            // A closed stdout must not take the emulator down; the event is lost either way.
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
    }
}

/// Keeps events in memory (tests and transcripts).
#[derive(Default, Clone)]
pub struct MemorySink {
    events: Arc<Mutex<Vec<(String, Event)>>>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far, as `(app, event)`.
    pub fn events(&self) -> Vec<(String, Event)> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Events of one type.
    pub fn of_kind(&self, kind: &str) -> Vec<Event> {
        self.events()
            .into_iter()
            .filter(|(_, e)| e.kind == kind)
            .map(|(_, e)| e)
            .collect()
    }
}

impl EventSink for MemorySink {
    fn emit(&self, app: &str, event: Event) {
        if let Ok(mut events) = self.events.lock() {
            events.push((app.to_owned(), event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_shape() {
        let c = Credential::password("root", b"p\xffw", Outcome::Failure).mechanism("password");
        let e = Event::from_peer(kind::AUTH_ATTEMPT, "203.0.113.7:40022".parse().unwrap())
            .credential(&c);
        assert_eq!(e.get("src_ip"), Some("203.0.113.7"));
        assert_eq!(e.get("src_port"), Some("40022"));
        assert_eq!(e.get("principal"), Some("root"));
        assert_eq!(e.get("secret_kind"), Some("plaintext"));
        assert_eq!(e.get("secret_printable"), Some("p?w"));
        assert_eq!(e.get("secret_b64"), Some("cP93"));
        assert_eq!(e.get("outcome"), Some("failure"));
    }

    #[test]
    fn long_fields_are_cut_and_flagged() {
        let e = Event::new("x").field("body", "é".repeat(MAX_FIELD_BYTES));
        assert!(e.get("body").unwrap().len() <= MAX_FIELD_BYTES);
        assert_eq!(e.get("body_truncated"), Some("true"));
    }

    #[test]
    fn line_sink_writes_one_line_per_event() {
        let sink = LineSink::new("decky-07", Vec::new());
        sink.emit(
            "redis",
            Event::from_peer("command", "10.0.0.9:5000".parse().unwrap()).field("cmd", "PING"),
        );
        let out = String::from_utf8(sink.out.into_inner().unwrap()).unwrap();
        assert!(out.starts_with("<134>1 "), "{out}");
        assert!(out.ends_with(" decky-07 redis - command [relay@55555 src_ip=\"10.0.0.9\" src_port=\"5000\" cmd=\"PING\"]\n"), "{out}");
    }
}
