//! The agent's heartbeat: `{host_uuid, agent_version, status}` to the pinned controller
//! every interval, with ±10 % jitter and exponential backoff after failures (SW-43).

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};

use super::AgentBundle;
use super::backend::AgentBackend;
use super::relocalize::LanDetector;
use crate::client::HttpClient;
use crate::proto::Heartbeat;
use crate::{Error, Result};

/// Default interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Longest wait after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Timeout of one heartbeat.
pub const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// The wait before the next heartbeat: `interval` after a success, doubled per
/// consecutive failure up to `max(interval, MAX_BACKOFF)`, then scaled by `jitter`
/// (`0.9..=1.1`, drawn by the caller).
pub fn next_delay(interval: Duration, failures: u32, jitter: f64) -> Duration {
    let cap = interval.max(MAX_BACKOFF);
    let base = interval
        .checked_mul(1u32 << failures.min(16))
        .unwrap_or(cap)
        .min(cap);
    base.mul_f64(jitter.clamp(0.9, 1.1))
}

/// Sends heartbeats for one agent.
pub struct Heartbeater {
    http: HttpClient,
    body: HeartbeatSource,
}

struct HeartbeatSource {
    generation: Arc<std::sync::atomic::AtomicU64>,
    host_uuid: decnet_core::HostUuid,
    version: String,
    backend: Arc<dyn AgentBackend>,
    detector: Arc<dyn LanDetector>,
}

impl Heartbeater {
    /// A heartbeater for `bundle` (controller pinned, worker identity presented).
    ///
    /// # Errors
    /// [`Error::Tls`], [`Error::Transport`].
    pub fn new(
        bundle: &AgentBundle,
        backend: Arc<dyn AgentBackend>,
        detector: Arc<dyn LanDetector>,
        version: String,
        generation: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Self> {
        Ok(Heartbeater {
            http: HttpClient::tls(&bundle.meta.controller_url, bundle.controller_tls()?)?,
            body: HeartbeatSource {
                generation,
                host_uuid: bundle.meta.host_uuid.clone(),
                version,
                backend,
                detector,
            },
        })
    }

    /// Sends one heartbeat; success is a 204.
    ///
    /// # Errors
    /// Transport errors or [`Error::Status`].
    pub async fn send_once(&self) -> Result<()> {
        let generation = self
            .body
            .generation
            .load(std::sync::atomic::Ordering::SeqCst);
        let mut status = self.body.backend.status().await;
        status.lan = self.body.detector.detect().ok();
        status.generation = generation;
        let beat = Heartbeat {
            host_uuid: self.body.host_uuid.clone(),
            agent_version: Some(self.body.version.clone()),
            status,
        };
        let (code, bytes) = self
            .http
            .send(
                Method::POST,
                "/swarm/heartbeat",
                Some(&beat),
                Some(HEARTBEAT_TIMEOUT),
            )
            .await?;
        if code == StatusCode::NO_CONTENT {
            return Ok(());
        }
        Err(Error::Status {
            what: "heartbeat".into(),
            status: code.as_u16(),
            detail: crate::client::detail_of(&bytes),
        })
    }

    /// Beats forever (until the task is aborted): at once, then every `interval`.
    pub async fn run(self, interval: Duration) {
        let mut failures = 0u32;
        loop {
            match self.send_once().await {
                Ok(()) => {
                    if failures > 0 {
                        tracing::info!(after = failures, "Heartbeat accepted again");
                    }
                    failures = 0;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, failures, "Heartbeat failed");
                }
            }
            let jitter = 0.9 + rand::random::<f64>() * 0.2;
            tokio::time::sleep(next_delay(interval, failures, jitter)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s = Duration::from_secs;
        assert_eq!(next_delay(s(10), 0, 1.0), s(10));
        assert_eq!(next_delay(s(10), 1, 1.0), s(20));
        assert_eq!(next_delay(s(10), 2, 1.0), s(40));
        assert_eq!(next_delay(s(10), 3, 1.0), s(60));
        assert_eq!(next_delay(s(10), 40, 1.0), s(60));
        assert_eq!(next_delay(s(120), 5, 1.0), s(120));
        assert_eq!(next_delay(s(10), 0, 0.9), s(9));
        assert_eq!(next_delay(s(10), 0, 5.0), s(11));
        assert_eq!(
            next_delay(Duration::from_millis(200), 1, 1.0),
            Duration::from_millis(400)
        );
    }
}
