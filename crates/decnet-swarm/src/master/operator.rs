//! The operator listener's routes and its gate.
//!
//! Status codes (SW-45): `POST /swarm/enroll` 201; `GET /swarm/hosts[/{uuid}]` 200 / 404;
//! `DELETE /swarm/hosts/{uuid}` 200 with a [`crate::proto::DecommissionResponse`] / 404;
//! `POST /swarm/deploy` and `POST /swarm/teardown` 200 when every host succeeded and
//! **207** when any host or decky failed (the body says which), 400 for a config that is
//! not swarm-mode or has an unassigned decky, 404 for an unknown host, 409 for a host
//! that cannot take a deploy (never enrolled, decommissioning), 422 for bodies;
//! `POST /swarm/check` 200; `GET /swarm/deckies` 200. 403 from the gate.

use std::sync::Arc;

use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use decnet_core::HostUuid;
use decnet_store::{FleetState, HostScope, HostStatus, ShardFilter};
use serde::Deserialize;

use super::{Controller, dispatch, ops};
use crate::pki::Role;
use crate::proto::{
    CheckResponse, DeployRequest, DispatchResponse, EnrollRequest, SwarmTeardownRequest,
};
use crate::serve::{ApiError, JsonBody};
use crate::tls::Peer;

type Ctx = State<Arc<Controller>>;

/// The operator listener's router.
pub fn operator_router(ctrl: Arc<Controller>) -> Router {
    let health = || async { Json(serde_json::json!({"status": "ok", "role": "swarm-controller"})) };
    Router::new()
        .route("/swarm/enroll", post(enroll))
        .route("/swarm/hosts", get(list_hosts))
        .route("/swarm/hosts/{uuid}", get(get_host).delete(decommission))
        .route("/swarm/deploy", post(deploy))
        .route("/swarm/teardown", post(teardown))
        .route("/swarm/deckies", get(deckies))
        .route("/swarm/check", post(check))
        .route_layer(middleware::from_fn_with_state(ctrl.clone(), gate))
        .route("/swarm/health", get(health))
        .route("/health", get(health))
        .fallback(|| async { ApiError::not_found("no such route") })
        .with_state(ctrl)
}

/// Certless callers only from loopback; certificate holders only with the operator or
/// master role and a fingerprint that is not revoked.
async fn gate(State(ctrl): Ctx, req: Request, next: Next) -> Response {
    let Some(peer) = req.extensions().get::<Peer>().cloned() else {
        return ApiError::forbidden("operator certificate required").into_response();
    };
    match &peer.cert {
        None if peer.remote.ip().is_loopback() => {}
        None => return ApiError::forbidden("operator certificate required").into_response(),
        Some(c) => {
            if !matches!(c.role, Some(Role::Operator | Role::Master)) {
                return ApiError::forbidden("operator certificate required").into_response();
            }
            match ctrl.repo.is_fingerprint_revoked(&c.fingerprint).await {
                Ok(false) => {}
                Ok(true) => return ApiError::forbidden("certificate revoked").into_response(),
                Err(e) => return ApiError::internal(&e).into_response(),
            }
        }
    }
    next.run(req).await
}

async fn enroll(
    State(ctrl): Ctx,
    JsonBody(req): JsonBody<EnrollRequest>,
) -> Result<Response, ApiError> {
    let resp = ops::enroll(&ctrl, req).await?;
    Ok((StatusCode::CREATED, Json(resp)).into_response())
}

#[derive(Deserialize)]
struct HostQuery {
    host_status: Option<String>,
}

async fn list_hosts(State(ctrl): Ctx, Query(q): Query<HostQuery>) -> Result<Response, ApiError> {
    let status = q
        .host_status
        .as_deref()
        .map(|s| {
            HostStatus::parse(s)
                .ok_or_else(|| ApiError::unprocessable(format!("unknown host status {s:?}")))
        })
        .transpose()?;
    let hosts = ctrl
        .repo
        .list_swarm_hosts(status)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let views: Vec<_> = hosts.iter().map(|h| ops::view(&ctrl, h)).collect();
    Ok(Json(views).into_response())
}

fn parse_uuid(text: &str) -> Result<HostUuid, ApiError> {
    HostUuid::new(text).map_err(|e| ApiError::unprocessable(e.to_string()))
}

async fn get_host(State(ctrl): Ctx, Path(uuid): Path<String>) -> Result<Response, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    match ctrl
        .repo
        .get_swarm_host(&uuid)
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        Some(h) => Ok(Json(ops::view(&ctrl, &h)).into_response()),
        None => Err(ApiError::not_found("host not found")),
    }
}

async fn decommission(State(ctrl): Ctx, Path(uuid): Path<String>) -> Result<Response, ApiError> {
    let uuid = parse_uuid(&uuid)?;
    Ok(Json(ops::decommission(&ctrl, &uuid).await?).into_response())
}

fn dispatch_response(resp: DispatchResponse) -> Response {
    let code = if resp.ok {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    (code, Json(resp)).into_response()
}

async fn deploy(
    State(ctrl): Ctx,
    Extension(_peer): Extension<Peer>,
    JsonBody(req): JsonBody<DeployRequest>,
) -> Result<Response, ApiError> {
    Ok(dispatch_response(dispatch::deploy(&ctrl, req).await?))
}

async fn teardown(
    State(ctrl): Ctx,
    JsonBody(req): JsonBody<SwarmTeardownRequest>,
) -> Result<Response, ApiError> {
    Ok(dispatch_response(ops::teardown(&ctrl, req).await?))
}

#[derive(Deserialize)]
struct ShardQuery {
    host_uuid: Option<String>,
    state: Option<String>,
}

async fn deckies(State(ctrl): Ctx, Query(q): Query<ShardQuery>) -> Result<Response, ApiError> {
    let filter = ShardFilter {
        host: match q.host_uuid.as_deref() {
            Some(u) => HostScope::Host(parse_uuid(u)?),
            None => HostScope::All,
        },
        state: q
            .state
            .as_deref()
            .map(|s| {
                FleetState::parse(s)
                    .ok_or_else(|| ApiError::unprocessable(format!("unknown state {s:?}")))
            })
            .transpose()?,
    };
    Ok(Json(ops::deckies(&ctrl, &filter).await?).into_response())
}

async fn check(State(ctrl): Ctx) -> Result<Json<CheckResponse>, ApiError> {
    Ok(Json(CheckResponse {
        results: ops::check(&ctrl).await?,
    }))
}
