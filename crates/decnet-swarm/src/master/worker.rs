//! The worker-facing listener: heartbeats and CSR enrollment, nothing else.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use decnet_store::{
    ErrorUpdate, FleetState, HostStatus, ShardUpsert, SwarmHostPatch, Timestamp, TokenConsumption,
};

use super::Controller;
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

/// The shard snapshot a heartbeat describes (empty when nothing is deployed).
pub fn snapshot(
    host: &decnet_core::HostUuid,
    status: &AgentStatus,
    now: Timestamp,
) -> Vec<ShardUpsert> {
    if !status.deployed {
        return Vec::new();
    }
    status
        .deckies
        .iter()
        .map(|d| ShardUpsert {
            host_uuid: host.clone(),
            decky_name: d.name.clone(),
            services: d.services.clone(),
            decky_config: Some(d.clone()),
            decky_ip: Some(std::net::IpAddr::V4(d.ip)),
            state: observed_state(status, d.name.as_str()),
            last_error: ErrorUpdate::Keep,
            last_seen: Some(now),
        })
        .collect()
}

/// Accepts a heartbeat: 204, or 403 (no/wrong/revoked certificate, host being
/// decommissioned), 404 (unknown host), 422 (body).
///
/// The presenting certificate must carry the agent role, not be revoked, and be the one
/// pinned in the host row; all three are checked on the connection carrying the
/// request (SW-3, SW-5).
pub async fn accept_heartbeat(
    ctrl: &Controller,
    peer: &Peer,
    beat: Heartbeat,
) -> Result<(), ApiError> {
    let Some(cert) = &peer.cert else {
        return Err(ApiError::forbidden("peer certificate required"));
    };
    if cert.role != Some(Role::Agent) {
        return Err(ApiError::forbidden("agent certificate required"));
    }
    if ctrl
        .repo
        .is_fingerprint_revoked(&cert.fingerprint)
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        return Err(ApiError::forbidden("certificate revoked"));
    }
    let Some(host) = ctrl
        .repo
        .get_swarm_host(&beat.host_uuid)
        .await
        .map_err(|e| ApiError::internal(&e))?
    else {
        return Err(ApiError::not_found("unknown host"));
    };
    if host.client_cert_fingerprint.as_ref() != Some(&cert.fingerprint) {
        tracing::warn!(host = %host.name, peer = %peer.remote, "Heartbeat with a certificate that is not the host's");
        return Err(ApiError::forbidden("certificate fingerprint mismatch"));
    }
    if matches!(
        host.status,
        HostStatus::Decommissioning | HostStatus::Decommissioned
    ) {
        return Err(ApiError::forbidden("host is being decommissioned"));
    }
    let now = Timestamp::now();
    let mut version = beat.agent_version.clone();
    if let Some(v) = &mut version {
        v.truncate(64);
    }
    ctrl.repo
        .update_swarm_host(
            &host.uuid,
            &SwarmHostPatch {
                status: (host.status != HostStatus::Active).then_some(HostStatus::Active),
                last_heartbeat: Some(now),
                agent_version: version.filter(|v| host.agent_version.as_ref() != Some(v)),
                ..SwarmHostPatch::default()
            },
        )
        .await
        .map_err(|e| ApiError::internal(&e))?;
    ctrl.set_lan(&host.uuid, beat.status.lan.clone());
    let _guard = ctrl.lock_shards(&host.uuid).await;
    if ctrl.is_stale(&host.uuid, beat.status.generation) {
        // Taken before a deploy or teardown whose outcome is already recorded.
        tracing::debug!(host = %host.name, "Stale heartbeat snapshot skipped");
        return Ok(());
    }
    ctrl.note_generation(&host.uuid, beat.status.generation);
    let digest = snapshot_digest(&beat.status);
    if ctrl.snapshot_unchanged(&host.uuid, digest) {
        return Ok(());
    }
    ctrl.repo
        .replace_host_shards(&host.uuid, &snapshot(&host.uuid, &beat.status, now))
        .await
        .map_err(ApiError::from_store)?;
    ctrl.snapshot_written(&host.uuid, Some(digest));
    Ok(())
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
