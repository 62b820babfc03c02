//! The container engine contract: what DECNET asks of Docker, as a trait so the deploy,
//! teardown and status logic runs unchanged against the real daemon ([`crate::docker`])
//! and the in-memory double ([`crate::fake`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use ipnet::Ipv4Net;
use serde::Serialize;

use crate::logs::{ContainerEvents, LogLines};
use crate::spec::{ContainerSpec, labels};

/// How an engine call failed, judged from the structured API error (status code,
/// transport error kind), never from message text (FL-18).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The daemon does not answer (no socket, connection refused).
    Unreachable,
    /// The object does not exist (HTTP 404).
    NotFound,
    /// A name or resource is already in use (HTTP 409).
    Conflict,
    /// The request was refused as invalid (HTTP 400, 403).
    Invalid,
    /// Worth retrying: timeouts, dropped connections, HTTP 429/502/503/504.
    Transient,
    /// Anything else (HTTP 500 and the like): retrying will not help.
    Failed,
}

impl ErrorKind {
    /// The kind of an HTTP status code returned by the daemon.
    pub fn from_status(code: u16) -> ErrorKind {
        match code {
            404 => ErrorKind::NotFound,
            409 => ErrorKind::Conflict,
            400 | 403 => ErrorKind::Invalid,
            429 | 502 | 503 | 504 => ErrorKind::Transient,
            _ => ErrorKind::Failed,
        }
    }
}

/// A failed engine call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    /// Classification (drives retries and exit statuses).
    pub kind: ErrorKind,
    /// What was being done (`create container web-01-ssh`).
    pub op: String,
    /// The daemon's message.
    pub message: String,
}

impl EngineError {
    /// A new error.
    pub fn new(kind: ErrorKind, op: impl Into<String>, message: impl Into<String>) -> Self {
        EngineError {
            kind,
            op: op.into(),
            message: message.into(),
        }
    }

    /// True when retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Transient
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.op, self.message.trim())
    }
}

impl std::error::Error for EngineError {}

/// A container DECNET created, as observed (found by its `decnet.*` labels).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedContainer {
    /// Container id.
    pub id: String,
    /// Container name (without the leading `/`).
    pub name: String,
    /// Image id the container was created from.
    pub image_id: String,
    /// Docker state: `created`, `running`, `paused`, `restarting`, `removing`, `exited`,
    /// `dead`.
    pub state: String,
    /// Human status (`Exited (2) 3 seconds ago`).
    pub status: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

impl ObservedContainer {
    /// The decky it belongs to (`decnet.decky`).
    pub fn decky(&self) -> Option<&str> {
        self.labels.get(labels::DECKY).map(String::as_str)
    }

    /// Its service slug; `None` for a base container (empty `decnet.service`).
    pub fn service(&self) -> Option<&str> {
        self.labels
            .get(labels::SERVICE)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The spec hash it was created with.
    pub fn spec_hash(&self) -> Option<&str> {
        self.labels.get(labels::SPEC_HASH).map(String::as_str)
    }

    /// True when its processes run.
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}

/// MACVLAN or IPvlan L2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    /// MACVLAN in bridge mode: every decky has its own MAC.
    Macvlan,
    /// IPvlan L2: deckies share the parent's MAC (Wi-Fi parents).
    Ipvlan,
}

impl Driver {
    /// Docker's driver name.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Macvlan => "macvlan",
            Driver::Ipvlan => "ipvlan",
        }
    }
}

/// A network to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkSpec {
    /// Network name.
    pub name: String,
    /// Driver.
    pub driver: Driver,
    /// Parent interface.
    pub parent: String,
    /// Subnet.
    pub subnet: Ipv4Net,
    /// Gateway.
    pub gateway: std::net::Ipv4Addr,
    /// Range Docker may allocate from (the decky range).
    pub ip_range: Option<Ipv4Net>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// A network as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkInfo {
    /// Network id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Driver name (`macvlan`, `ipvlan`, `bridge`, ...).
    pub driver: String,
    /// Driver options (`parent`, `ipvlan_mode`, ...).
    pub options: BTreeMap<String, String>,
    /// First IPAM pool: subnet.
    pub subnet: Option<String>,
    /// First IPAM pool: gateway.
    pub gateway: Option<String>,
    /// First IPAM pool: range.
    pub ip_range: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Ids of the containers attached.
    pub containers: Vec<String>,
}

/// An image as observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// Image id (`sha256:…`).
    pub id: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// What DECNET needs from a container engine.
///
/// Guarantees every implementation gives:
/// - `list_managed` returns exactly the containers labelled `decnet.managed=true` of the
///   given project (`com.docker.compose.project`), stopped ones included, and nothing else;
/// - `remove_container` and `remove_network` are idempotent: a missing object is success;
/// - errors carry an [`ErrorKind`] judged from structured data, so callers decide retries
///   without reading messages.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Checks that the daemon answers.
    async fn ping(&self) -> Result<(), EngineError>;
    /// Looks up an image by reference; `None` when it is not present locally. Never pulls.
    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError>;
    /// Builds `tag` from an uncompressed tar build context; returns the image id.
    async fn build_image(
        &self,
        tag: &str,
        context: Vec<u8>,
        no_cache: bool,
    ) -> Result<String, EngineError>;
    /// Inspects a network by exact name.
    async fn network(&self, name: &str) -> Result<Option<NetworkInfo>, EngineError>;
    /// Creates a network.
    async fn create_network(&self, spec: &NetworkSpec) -> Result<(), EngineError>;
    /// Removes a network by name (missing: success).
    async fn remove_network(&self, name: &str) -> Result<(), EngineError>;
    /// Every container of `project` labelled `decnet.managed=true`, running or not.
    async fn list_managed(&self, project: &str) -> Result<Vec<ObservedContainer>, EngineError>;
    /// Creates (does not start) a container exactly as `spec` says; returns its id.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, EngineError>;
    /// Starts a container.
    async fn start_container(&self, id: &str) -> Result<(), EngineError>;
    /// Stops a container (its restart policy then leaves it stopped).
    async fn stop_container(&self, id: &str) -> Result<(), EngineError>;
    /// Removes a container and its anonymous volumes, stopping it first (missing: success).
    async fn remove_container(&self, id: &str) -> Result<(), EngineError>;

    /// Every container labelled `decnet.managed=true`, of any project, running or not.
    ///
    /// The default (for engines that do not collect logs) refuses.
    async fn list_labelled(&self) -> Result<Vec<ObservedContainer>, EngineError> {
        Err(unsupported("list labelled containers"))
    }

    /// One container labelled `decnet.managed=true` by id; `None` when it does not exist
    /// (or is not managed).
    async fn labelled(&self, id: &str) -> Result<Option<ObservedContainer>, EngineError> {
        Ok(self.list_labelled().await?.into_iter().find(|c| c.id == id))
    }

    /// Follows a container's stdout and stderr from `since_unix_secs` (Docker's `since`
    /// has whole seconds): the stored lines first, then new ones as they are written. The
    /// stream ends when the container stops (or the connection drops); lines are bounded
    /// by [`crate::logs::MAX_LOG_LINE`].
    fn follow_logs(&self, id: &str, since_unix_secs: i64) -> LogLines {
        let _ = since_unix_secs;
        let err = unsupported(&format!("follow logs of {id}"));
        Box::pin(futures::stream::once(async move { Err(err) }))
    }

    /// The start, die and destroy events of `decnet.managed=true` containers, from now
    /// on. The stream ends (or yields an error) when the connection drops.
    fn container_events(&self) -> ContainerEvents {
        let err = unsupported("container events");
        Box::pin(futures::stream::once(async move { Err(err) }))
    }
}

fn unsupported(op: &str) -> EngineError {
    EngineError::new(
        ErrorKind::Invalid,
        op,
        "this engine does not support log collection",
    )
}

/// Retry policy for transient engine errors: exponential backoff on the async timer
/// (never a blocking sleep).
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in total (at least 1).
    pub attempts: u32,
    /// Delay before the second attempt; doubled each time.
    pub first_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            first_delay: Duration::from_millis(500),
        }
    }
}

impl Retry {
    /// No retries (tests of failure paths).
    pub fn none() -> Self {
        Retry {
            attempts: 1,
            first_delay: Duration::ZERO,
        }
    }

    /// Runs `call` until it succeeds, fails permanently or the attempts run out.
    ///
    /// # Errors
    /// The last error.
    pub async fn run<T, F, Fut>(&self, mut call: F) -> Result<T, EngineError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, EngineError>>,
    {
        let mut delay = self.first_delay;
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt < self.attempts.max(1) => {
                    tracing::info!(op = %e.op, error = %e.message, attempt, "Transient engine error, retrying");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn kinds_come_from_status_codes() {
        assert_eq!(ErrorKind::from_status(404), ErrorKind::NotFound);
        assert_eq!(ErrorKind::from_status(409), ErrorKind::Conflict);
        assert_eq!(ErrorKind::from_status(503), ErrorKind::Transient);
        // A 500 saying "not found" somewhere in its text is still a plain failure.
        assert_eq!(ErrorKind::from_status(500), ErrorKind::Failed);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_only_transient_errors() {
        let calls = AtomicU32::new(0);
        let r: Result<(), _> = Retry::default()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(EngineError::new(ErrorKind::Transient, "op", "busy"))
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 3);

        calls.store(0, Ordering::SeqCst);
        let r: Result<(), _> = Retry::default()
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(EngineError::new(ErrorKind::Failed, "op", "no such image"))
            })
            .await;
        assert_eq!(r.unwrap_err().kind, ErrorKind::Failed);
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        calls.store(0, Ordering::SeqCst);
        let r = Retry::default()
            .run(|| async {
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    Err(EngineError::new(ErrorKind::Transient, "op", "timeout"))
                } else {
                    Ok(7)
                }
            })
            .await;
        assert_eq!(r.unwrap(), 7);
    }
}
