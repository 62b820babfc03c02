//! The agent's routes and its one-at-a-time operation queue (SW-30).
//!
//! Status-code contract (SW-45):
//! - `GET /health` 200 `{status:"ok", backend}` to any CA-signed client.
//! - Every other route answers 403 `{detail}` unless the client certificate carries the
//!   master role *and* is the pinned master certificate (SW-1).
//! - `GET /status` 200, the snapshot (never an error: an unobservable runtime is `{}`).
//! - `POST /deploy` 200 with a [`DeployResponse`] whenever the deploy ran, whatever its
//!   outcome (`deployed`, `partial`, `failed`, `dry_run`): the call is synchronous and
//!   answers when the shard has been converged. 409 during self-destruct; 422 for a body
//!   that does not parse or validate or deckies of another host.
//! - `POST /teardown` 200 `{status:"torn_down", decky_id}`; 404 for an unknown decky.
//! - `POST /mutate` 200 `{status:"dry_run"|"mutated", decky_id, services}`; 404 without a
//!   deployment or for an unknown decky.
//! - `POST /self-destruct` 202 `{status:"self_destruct_scheduled"}`, answered before any
//!   teardown starts (SW-25); repeated calls answer 202 again.
//! - 503 `{detail:"agent busy"}` when the queue is full; 500 `{detail:"internal error"}`
//!   for anything unexpected (the cause is only logged, SW-46). Unknown paths 404.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use decnet_core::{DeckyName, HostUuid};
use decnet_store::Fingerprint;
use tokio::sync::{mpsc, oneshot};

use super::backend::AgentBackend;
use super::reaper::Reaper;
use super::relocalize::{LanDetector, relocalize_for_deploy};
use crate::pki::Role;
use crate::proto::{
    DeckyResult, DeployRequest, DeployResponse, MutateRequest, MutateResponse, TeardownRequest,
    TeardownResponse, bounded_error,
};
use crate::serve::{ApiError, JsonBody};
use crate::tls::Peer;

/// Most operations waiting in the queue; more get 503.
pub const MAX_QUEUED_OPS: usize = 16;

type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs submitted operations one at a time, each in its own task (so a panic in one does
/// not stop the queue), away from the request-serving tasks.
#[derive(Clone, Debug)]
pub struct OpQueue {
    tx: mpsc::Sender<Job>,
}

impl OpQueue {
    /// Starts the queue's worker task.
    pub fn start() -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(MAX_QUEUED_OPS);
        tokio::spawn(async move {
            while let Some(job) = rx.recv().await {
                if let Err(e) = tokio::spawn(job).await {
                    tracing::error!(error = %e, "Agent operation panicked");
                }
            }
        });
        OpQueue { tx }
    }

    /// Queues `op` and waits for its result.
    ///
    /// # Errors
    /// 503 when the queue is full; 500 when the operation died.
    pub async fn run<T: Send + 'static>(
        &self,
        op: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, ApiError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::pin(async move {
            let _ = done.send(op.await);
        });
        self.tx
            .try_send(job)
            .map_err(|_| ApiError::unavailable("agent busy"))?;
        result
            .await
            .map_err(|_| ApiError::internal(&"agent operation ended without a result"))
    }
}

/// Everything the routes share.
pub struct AgentContext {
    backend: Arc<dyn AgentBackend>,
    detector: Arc<dyn LanDetector>,
    master: Fingerprint,
    host_uuid: HostUuid,
    queue: OpQueue,
    reaper: Reaper,
    destructing: AtomicBool,
    generation: Arc<AtomicU64>,
}

impl AgentContext {
    /// A context; starts the operation queue (call inside a Tokio runtime).
    pub fn new(
        backend: Arc<dyn AgentBackend>,
        detector: Arc<dyn LanDetector>,
        master: Fingerprint,
        host_uuid: HostUuid,
        reaper: Reaper,
    ) -> Self {
        AgentContext {
            backend,
            detector,
            master,
            host_uuid,
            queue: OpQueue::start(),
            reaper,
            destructing: AtomicBool::new(false),
            generation: Arc::new(AtomicU64::new(start_generation())),
        }
    }

    /// The state generation counter (shared with the heartbeat).
    pub fn generation(&self) -> Arc<AtomicU64> {
        self.generation.clone()
    }

    /// Records that the deployed state changed; returns the new generation.
    fn bump(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// 403 unless `peer` is the pinned master.
    fn require_master(&self, peer: &Peer) -> Result<(), ApiError> {
        match &peer.cert {
            Some(c) if c.role == Some(Role::Master) && c.fingerprint == self.master => Ok(()),
            Some(c) => {
                tracing::warn!(
                    peer = %peer.remote,
                    role = ?c.role,
                    name = ?c.name,
                    "Refused a control call from a certificate that is not the pinned master"
                );
                Err(ApiError::forbidden("master certificate required"))
            }
            None => Err(ApiError::forbidden("master certificate required")),
        }
    }

    fn refuse_if_destructing(&self) -> Result<(), ApiError> {
        if self.destructing.load(Ordering::SeqCst) {
            return Err(ApiError::conflict("self-destruct in progress"));
        }
        Ok(())
    }
}

/// The first generation of this process: its start time in microseconds, so a restarted
/// agent's generations are larger than those of its previous life.
fn start_generation() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
}

type Ctx = State<Arc<AgentContext>>;

/// The agent's router (no docs or OpenAPI routes).
pub fn router(ctx: Arc<AgentContext>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/status", get(status))
        .route("/deploy", post(deploy))
        .route("/teardown", post(teardown))
        .route("/mutate", post(mutate))
        .route("/self-destruct", post(self_destruct))
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(ctx)
}

async fn health(State(ctx): Ctx) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "backend": ctx.backend.name() }))
}

async fn status(State(ctx): Ctx, Extension(peer): Extension<Peer>) -> Result<Response, ApiError> {
    ctx.require_master(&peer)?;
    // Read before the snapshot: the snapshot is at least this new.
    let generation = ctx.generation.load(Ordering::SeqCst);
    let mut status = ctx.backend.status().await;
    status.lan = ctx.detector.detect().ok();
    status.generation = generation;
    Ok(Json(status).into_response())
}

fn parse_decky(id: &str) -> Result<DeckyName, ApiError> {
    DeckyName::new(id).map_err(|e| ApiError::unprocessable(e.to_string()))
}

async fn deploy(
    State(ctx): Ctx,
    Extension(peer): Extension<Peer>,
    JsonBody(req): JsonBody<DeployRequest>,
) -> Result<Response, ApiError> {
    ctx.require_master(&peer)?;
    ctx.refuse_if_destructing()?;
    if let Some(d) = req
        .config
        .deckies
        .iter()
        .find(|d| d.host_uuid.as_ref().is_some_and(|h| h != &ctx.host_uuid))
    {
        return Err(ApiError::unprocessable(format!(
            "decky '{}' belongs to another host",
            d.name
        )));
    }
    let job_ctx = ctx.clone();
    let outcome = ctx
        .queue
        .run(async move {
            let DeployRequest {
                mut config,
                dry_run,
                no_cache,
            } = req;
            let relocalized = match relocalize_for_deploy(&mut config, job_ctx.detector.as_ref()) {
                Ok(r) => r,
                Err(e) => return Err(e),
            };
            let results = job_ctx.backend.deploy(&config, dry_run, no_cache).await;
            let generation = if dry_run {
                job_ctx.generation.load(Ordering::SeqCst)
            } else {
                job_ctx.bump()
            };
            Ok((config, relocalized, results, dry_run, generation))
        })
        .await?;
    let (config, relocalized, results, dry_run, generation) = match outcome {
        Ok(v) => v,
        Err(e) if e.is_validation() => return Err(ApiError::unprocessable(e.to_string())),
        Err(e) => {
            tracing::error!(error = %e, "Relocalization failed");
            return Err(ApiError::internal(&e));
        }
    };
    let mut resp = match results {
        Ok(results) => DeployResponse::from_results(results, dry_run),
        Err(e) if e.is_validation() => return Err(ApiError::unprocessable(e.to_string())),
        Err(e) => {
            tracing::error!(error = %e, "Deploy failed");
            let error = bounded_error(&e.to_string());
            DeployResponse::from_results(
                config
                    .deckies
                    .iter()
                    .map(|d| DeckyResult {
                        name: d.name.to_string(),
                        ok: false,
                        error: Some(error.clone()),
                    })
                    .collect(),
                false,
            )
        }
    };
    resp.relocalized = relocalized;
    resp.generation = generation;
    Ok(Json(resp).into_response())
}

async fn teardown(
    State(ctx): Ctx,
    Extension(peer): Extension<Peer>,
    JsonBody(req): JsonBody<TeardownRequest>,
) -> Result<Response, ApiError> {
    ctx.require_master(&peer)?;
    let decky = req.decky_id.as_deref().map(parse_decky).transpose()?;
    let job_ctx = ctx.clone();
    let job_decky = decky.clone();
    let generation = ctx
        .queue
        .run(async move {
            let r = job_ctx.backend.teardown(job_decky.as_ref()).await;
            let generation = job_ctx.bump();
            r.map(|()| generation)
        })
        .await??;
    Ok(Json(TeardownResponse {
        status: "torn_down".into(),
        decky_id: req.decky_id,
        generation,
    })
    .into_response())
}

async fn mutate(
    State(ctx): Ctx,
    Extension(peer): Extension<Peer>,
    JsonBody(req): JsonBody<MutateRequest>,
) -> Result<Response, ApiError> {
    ctx.require_master(&peer)?;
    let decky = parse_decky(&req.decky_id)?;
    if req.services.is_empty() || req.services.len() > decnet_core::model::MAX_SERVICES_PER_DECKY {
        return Err(ApiError::unprocessable(format!(
            "services: 1 to {} expected",
            decnet_core::model::MAX_SERVICES_PER_DECKY
        )));
    }
    let services = if req.dry_run {
        ctx.backend.mutate(&decky, &req.services, true).await?
    } else {
        ctx.refuse_if_destructing()?;
        let job_ctx = ctx.clone();
        let wanted = req.services.clone();
        ctx.queue
            .run(async move {
                let r = job_ctx.backend.mutate(&decky, &wanted, false).await;
                job_ctx.bump();
                r
            })
            .await??
    };
    Ok(Json(MutateResponse {
        status: if req.dry_run { "dry_run" } else { "mutated" }.into(),
        decky_id: req.decky_id,
        services,
    })
    .into_response())
}

async fn self_destruct(
    State(ctx): Ctx,
    Extension(peer): Extension<Peer>,
) -> Result<Response, ApiError> {
    ctx.require_master(&peer)?;
    if !ctx.destructing.swap(true, Ordering::SeqCst) {
        tracing::warn!("Self-destruct requested by the master: tearing down, then reaping");
        let job_ctx = ctx.clone();
        tokio::spawn(async move {
            let purge_ctx = job_ctx.clone();
            match job_ctx
                .queue
                .run(async move {
                    let r = purge_ctx.backend.purge().await;
                    purge_ctx.bump();
                    r
                })
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "Pre-reap teardown failed; reaping anyway");
                }
                Err(e) => {
                    tracing::warn!(detail = %e.detail, "Pre-reap teardown not run; reaping anyway");
                }
            }
            // Starting it waits for systemctl or systemd-run: off the async workers.
            let reaper = job_ctx.reaper.clone();
            match tokio::task::spawn_blocking(move || reaper.launch()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(error = %e, "Could not start the reaper"),
                Err(e) => tracing::error!(error = %e, "Reaper start task failed"),
            }
        });
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "status": "self_destruct_scheduled" })),
    )
        .into_response())
}
