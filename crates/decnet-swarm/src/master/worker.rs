//! The worker-facing listener: heartbeats and CSR enrollment, nothing else.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use decnet_store::{FleetState, Timestamp, TokenConsumption};

use super::Controller;
use super::intake::{self, Pending};
use crate::pki::Role;
use crate::proto::{AgentStatus, CsrRequest, EnrolledBundle, Heartbeat};
use crate::serve::{ApiError, JsonBody};
use crate::tls::Peer;

type Ctx = State<Arc<Controller>>;

/// The worker listener's router.
pub fn worker_router(ctrl: Arc<Controller>) -> Router {
    Router::new()
        .route("/swarm/heartbeat", post(heartbeat))
        .route("/swarm/enroll/csr", post(enroll_csr))
        .route(
            "/swarm/health",
            get(|| async {
                axum::Json(serde_json::json!({"status": "ok", "role": "swarm-worker-listener"}))
            }),
        )
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(ctrl)
}

/// The state a heartbeat records for one decky: what runs, from the agent's runtime view.
pub fn observed_state(status: &AgentStatus, name: &str) -> FleetState {
    match status.runtime.get(name) {
        Some(r) if r.running => FleetState::Running,
        Some(r) => match r.state.as_deref() {
            Some("failed") => FleetState::Failed,
            Some("torn_down") => FleetState::TornDown,
            _ => FleetState::Degraded,
        },
        None => FleetState::Degraded,
    }
}

/// A digest of what a heartbeat snapshot would write (deckies and their observed
/// states), to skip rewriting an unchanged snapshot.
pub fn snapshot_digest(status: &AgentStatus) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    status.deployed.hash(&mut h);
    for d in &status.deckies {
        serde_json::to_vec(d).unwrap_or_default().hash(&mut h);
        observed_state(status, d.name.as_str())
            .as_str()
            .hash(&mut h);
    }
    h.finish()
}

/// Longest agent version recorded; a longer one is cut (at a character boundary).
pub const MAX_AGENT_VERSION_LEN: usize = 64;

/// Accepts a heartbeat: 204, or 403 (no/wrong/revoked certificate, host being
/// decommissioned), 404 (unknown host), 422 (body), 503 (the intake queue is full).
///
/// The presenting certificate must carry the agent role, not be revoked, and be the one
/// pinned in the host row; all three are checked on the connection carrying the
/// request (SW-3, SW-5), the last two inside the transaction that records the
/// heartbeat together with whatever other heartbeats are pending (group commit, see
/// [`super::intake`]).
pub async fn accept_heartbeat(
    ctrl: &Arc<Controller>,
    peer: &Peer,
    beat: Heartbeat,
) -> Result<(), ApiError> {
    let Some(cert) = &peer.cert else {
        return Err(ApiError::forbidden("peer certificate required"));
    };
    if cert.role != Some(Role::Agent) {
        return Err(ApiError::forbidden("agent certificate required"));
    }
    let mut version = beat.agent_version;
    if let Some(v) = &mut version {
        cut(v, MAX_AGENT_VERSION_LEN);
    }
    let digest = snapshot_digest(&beat.status);
    let (reply, answer) = tokio::sync::oneshot::channel();
    let pending = Pending {
        host: beat.host_uuid,
        fingerprint: cert.fingerprint.clone(),
        agent_version: version,
        status: beat.status,
        digest,
        reply,
    };
    intake::submit(ctrl.heartbeat_intake(), pending, answer).await
}

/// Cuts `s` to at most `max` bytes at a character boundary.
fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

impl ApiError {
    /// Maps store validation errors to 422, everything else to 500.
    pub fn from_store(e: decnet_store::Error) -> Self {
        match e {
            decnet_store::Error::Invalid { .. } => Self::unprocessable(e.to_string()),
            _ => Self::internal(&e),
        }
    }
}

async fn heartbeat(
    State(ctrl): Ctx,
    Extension(peer): Extension<Peer>,
    JsonBody(beat): JsonBody<Heartbeat>,
) -> Result<StatusCode, ApiError> {
    accept_heartbeat(&ctrl, &peer, beat).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn enroll_csr(
    State(ctrl): Ctx,
    Extension(peer): Extension<Peer>,
    JsonBody(req): JsonBody<CsrRequest>,
) -> Result<axum::Json<EnrolledBundle>, ApiError> {
    if req.token.len() > decnet_store::limits::MAX_TOKEN_LEN {
        return Err(ApiError::forbidden("invalid or expired token"));
    }
    let consumed = ctrl
        .repo
        .consume_enrollment_token(&req.token, Timestamp::now())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let TokenConsumption::Consumed(uuid) = consumed else {
        tracing::warn!(peer = %peer.remote, outcome = ?consumed, "Refused an enrollment token");
        return Err(ApiError::forbidden("invalid or expired token"));
    };
    let Some(host) = ctrl
        .repo
        .get_swarm_host(&uuid)
        .await
        .map_err(|e| ApiError::internal(&e))?
    else {
        return Err(ApiError::forbidden("invalid or expired token"));
    };
    let bundle = super::ops::sign_for_host(&ctrl, &host, &req.csr_pem).await?;
    tracing::info!(host = %host.name, peer = %peer.remote, fingerprint = %bundle.fingerprint, "Worker enrolled");
    Ok(axum::Json(bundle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_version_is_cut_at_a_character_boundary() {
        let mut v = format!("{}é-rest", "x".repeat(MAX_AGENT_VERSION_LEN - 1));
        cut(&mut v, MAX_AGENT_VERSION_LEN);
        assert_eq!(v, "x".repeat(MAX_AGENT_VERSION_LEN - 1));
        let mut short = "1.2.3".to_owned();
        cut(&mut short, MAX_AGENT_VERSION_LEN);
        assert_eq!(short, "1.2.3");
    }
}
