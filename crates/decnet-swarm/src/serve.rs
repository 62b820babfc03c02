//! The HTTP(S) server loop shared by the agent and the controller: bounded connections,
//! handshake, header and body timeouts, a body size cap, and the verified [`Peer`]
//! attached to every request (SW-44).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt as _;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use serde::de::DeserializeOwned;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

use crate::tls::Peer;

/// Most connections served at once; further ones are closed at accept.
pub const MAX_CONNECTIONS: usize = 512;
/// Longest TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for a request's headers (also bounds idle keep-alive connections).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request body (a deploy config of [`decnet_core::model::MAX_DECKIES`] deckies
/// fits comfortably).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The error every handler returns. 5xx bodies carry a fixed phrase, never the cause
/// (SW-46); the cause is logged.
#[derive(Debug)]
pub struct ApiError {
    /// Status code.
    pub status: StatusCode,
    /// Body `detail`.
    pub detail: String,
}

impl ApiError {
    /// A 4xx with its detail.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
        }
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    /// 403.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }

    /// 409.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }

    /// 422.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, detail)
    }

    /// 503 with a fixed phrase.
    pub fn unavailable(detail: &'static str) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, detail)
    }

    /// 500: logs `cause`, answers "internal error".
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "Request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        match &e {
            crate::Error::Invalid(m) => Self::unprocessable(m.clone()),
            crate::Error::NotFound(m) => Self::not_found(m.clone()),
            crate::Error::Core(c) if c.is_validation() => Self::unprocessable(c.to_string()),
            crate::Error::Store(s @ decnet_store::Error::NotFound { .. }) => {
                Self::not_found(s.to_string())
            }
            crate::Error::Store(s @ decnet_store::Error::Conflict { .. }) => {
                Self::conflict(s.to_string())
            }
            crate::Error::Store(s @ decnet_store::Error::Invalid { .. }) => {
                Self::unprocessable(s.to_string())
            }
            _ => Self::internal(&e),
        }
    }
}

impl From<decnet_store::Error> for ApiError {
    fn from(e: decnet_store::Error) -> Self {
        crate::Error::Store(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = if self.status.is_server_error() {
            // Whatever built the error, a 5xx says nothing about the cause.
            match self.status {
                StatusCode::SERVICE_UNAVAILABLE => self.detail,
                _ => "internal error".to_owned(),
            }
        } else {
            self.detail
        };
        (
            self.status,
            axum::Json(serde_json::json!({ "detail": detail })),
        )
            .into_response()
    }
}

/// A JSON body whose every rejection is a 422 with the parser's message.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(r) => {
                let mut text = r.body_text();
                text.truncate(512);
                Err(ApiError::unprocessable(text))
            }
        }
    }
}

/// Reads the body under [`BODY_TIMEOUT`] and [`MAX_BODY_BYTES`] and hands the request to
/// `router` with `peer` attached.
async fn handle(
    router: Router,
    peer: Peer,
    req: hyper::Request<hyper::body::Incoming>,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => {
            return ApiError::new(StatusCode::REQUEST_TIMEOUT, "request body too slow")
                .into_response();
        }
        Ok(Err(e)) => {
            let too_large = e
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if too_large {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
                    .into_response()
            } else {
                ApiError::bad_request("could not read the request body").into_response()
            };
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    parts.extensions.insert(peer);
    let req = Request::from_parts(parts, Body::from(bytes));
    match router.oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

/// Serves `router` on `listener` until `shutdown` resolves: TLS with `tls`, plaintext
/// without. Every request carries a [`Peer`] extension.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    accept_each(
        listener,
        MAX_CONNECTIONS,
        shutdown,
        move |stream, remote| {
            let router = router.clone();
            let acceptor = acceptor.clone();
            async move {
                let builder = {
                    let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    b.http1()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT);
                    b
                };
                match acceptor {
                    Some(acceptor) => {
                        let Some(tls) = handshake(&acceptor, stream, remote).await else {
                            return;
                        };
                        let peer = Peer::from_tls(remote, tls.get_ref().1);
                        let svc = hyper::service::service_fn(move |req| {
                            let (router, peer) = (router.clone(), peer.clone());
                            async move {
                                Ok::<_, std::convert::Infallible>(handle(router, peer, req).await)
                            }
                        });
                        let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                    }
                    None => {
                        let peer = Peer::plain(remote);
                        let svc = hyper::service::service_fn(move |req| {
                            let (router, peer) = (router.clone(), peer.clone());
                            async move {
                                Ok::<_, std::convert::Infallible>(handle(router, peer, req).await)
                            }
                        });
                        let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                    }
                }
            }
        },
    )
    .await;
}

/// Accepts connections until `shutdown` resolves, each handled by `handle` in a task of
/// its own, at most `max` at once (further ones are closed at accept, logged). An accept
/// error is logged and retried after 50 ms; shutdown drops the open connections. Used by
/// the HTTP servers and the log listener.
pub(crate) async fn accept_each<F, Fut>(
    listener: TcpListener,
    max: usize,
    shutdown: impl Future<Output = ()>,
    mut handle: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(max));
    // Connections end with the server: shutting down drops them too.
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => {
                connections.abort_all();
                return;
            }
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "Accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(peer = %remote, "Too many connections; closing");
            continue;
        };
        let connection = handle(stream, remote);
        connections.spawn(async move {
            let _permit = permit;
            connection.await;
        });
    }
}

/// The server side of a TLS handshake, within [`HANDSHAKE_TIMEOUT`]; `None` (logged)
/// when the peer is refused or too slow.
pub(crate) async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: TcpStream,
    remote: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::info!(peer = %remote, error = %e, "TLS handshake refused");
            None
        }
        Err(_) => {
            tracing::info!(peer = %remote, "TLS handshake timed out");
            None
        }
    }
}
