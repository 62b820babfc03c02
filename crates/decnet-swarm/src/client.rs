//! A small JSON-over-HTTP(S) client with bounded responses and explicit timeouts, and the
//! pinned clients built on it: master → agent ([`AgentClient`]) and operator →
//! controller ([`OperatorClient`]).

use std::net::IpAddr;
use std::time::Duration;

use decnet_store::SwarmHost;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::pki::{Identity, Role};
use crate::proto::{AgentStatus, DeployRequest, DeployResponse, TeardownRequest, TeardownResponse};
use crate::tls::{ServerPin, client_config};
use crate::{Error, Result};

/// Largest response body read.
pub const MAX_RESPONSE_BYTES: usize = 32 * 1024 * 1024;
/// Connect timeout of every call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Total timeout of control calls (health, status, teardown, self-destruct).
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(15);
/// Total timeout of a deploy (the agent answers when the deploy is over).
pub const DEPLOY_TIMEOUT: Duration = Duration::from_secs(900);

/// `https://host:port` with IPv6 literals bracketed.
pub fn https_url(address: &str, port: u16) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("https://[{v6}]:{port}"),
        _ => format!("https://{address}:{port}"),
    }
}

/// A JSON client for one base URL.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    base: String,
}

impl HttpClient {
    fn build(builder: reqwest::ClientBuilder, base: &str) -> Result<Self> {
        let inner = builder
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CONTROL_TIMEOUT)
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|source| Error::Transport {
                what: "build HTTP client".into(),
                source,
            })?;
        Ok(HttpClient {
            inner,
            base: base.trim_end_matches('/').to_owned(),
        })
    }

    /// An HTTPS client using `tls` (pinning is in its verifier).
    ///
    /// # Errors
    /// [`Error::Transport`].
    pub fn tls(base: &str, tls: rustls::ClientConfig) -> Result<Self> {
        if !base.starts_with("https://") {
            return Err(Error::invalid(format!(
                "{base}: an https:// URL is required"
            )));
        }
        Self::build(
            reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .https_only(true),
            base,
        )
    }

    /// A plaintext client (loopback operator listener only).
    ///
    /// # Errors
    /// [`Error::Transport`].
    pub fn plain(base: &str) -> Result<Self> {
        Self::build(reqwest::Client::builder(), base)
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request and returns the status and the (bounded) body.
    ///
    /// # Errors
    /// [`Error::Transport`] when no answer arrived; [`Error::Invalid`] for an oversized body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&(dyn erased::Body + Sync)>,
        timeout: Option<Duration>,
    ) -> Result<(StatusCode, bytes::Bytes)> {
        let what = format!("{method} {}{path}", self.base);
        let mut req = self.inner.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_json()?);
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let transport = |source| Error::Transport {
            what: what.clone(),
            source,
        };
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let mut buf = bytes::BytesMut::new();
        while let Some(chunk) = resp.chunk().await.map_err(transport)? {
            if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Error::invalid(format!("{what}: response too large")));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok((status, buf.freeze()))
    }

    /// Sends a request and decodes a JSON answer with one of the `ok` statuses.
    ///
    /// # Errors
    /// [`Error::Transport`], [`Error::Status`] for any other status, [`Error::Json`].
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(dyn erased::Body + Sync)>,
        ok: &[StatusCode],
        timeout: Option<Duration>,
    ) -> Result<(StatusCode, T)> {
        let what = format!("{method} {path}");
        let (status, bytes) = self.send(method, path, body, timeout).await?;
        if !ok.contains(&status) {
            return Err(Error::Status {
                what,
                status: status.as_u16(),
                detail: detail_of(&bytes),
            });
        }
        let value =
            serde_json::from_slice(&bytes).map_err(|source| Error::Json { what, source })?;
        Ok((status, value))
    }
}

/// The `detail` field of an error body, or its first 200 characters.
pub fn detail_of(bytes: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes)
        && let Some(d) = v.get("detail").and_then(|d| d.as_str())
    {
        return crate::proto::bounded_error(d);
    }
    String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned()
}

/// Object-safe JSON bodies.
pub mod erased {
    /// Anything serializable, behind `dyn`.
    pub trait Body {
        /// The JSON text.
        ///
        /// # Errors
        /// [`crate::Error::Json`].
        fn to_json(&self) -> crate::Result<Vec<u8>>;
    }

    impl<T: serde::Serialize> Body for T {
        fn to_json(&self) -> crate::Result<Vec<u8>> {
            serde_json::to_vec(self).map_err(|source| crate::Error::Json {
                what: "encode request".into(),
                source,
            })
        }
    }
}

/// The master's client of one agent: presents the master identity and accepts only the
/// agent certificate pinned in the host row (SW-5). No pin, no client (SW-6).
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: HttpClient,
}

impl AgentClient {
    /// A client for `host`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the host has no pinned certificate or no address;
    /// [`Error::Tls`].
    pub fn for_host(host: &SwarmHost, master: &Identity) -> Result<Self> {
        let Some(fingerprint) = host.client_cert_fingerprint.clone() else {
            return Err(Error::invalid(format!(
                "host {} has no enrolled certificate yet",
                host.name
            )));
        };
        if host.address.is_empty() {
            return Err(Error::invalid(format!("host {} has no address", host.name)));
        }
        let tls = client_config(
            Some(master),
            Some(&master.ca_pem),
            ServerPin {
                fingerprint,
                role: Role::Agent,
            },
        )?;
        Ok(AgentClient {
            http: HttpClient::tls(&https_url(&host.address, host.agent_port), tls)?,
        })
    }

    /// `GET /health`.
    ///
    /// # Errors
    /// Transport or status errors.
    pub async fn health(&self) -> Result<serde_json::Value> {
        Ok(self
            .http
            .call(Method::GET, "/health", None, &[StatusCode::OK], None)
            .await?
            .1)
    }

    /// `GET /status`.
    ///
    /// # Errors
    /// Transport or status errors.
    pub async fn status(&self) -> Result<AgentStatus> {
        Ok(self
            .http
            .call(Method::GET, "/status", None, &[StatusCode::OK], None)
            .await?
            .1)
    }

    /// `POST /deploy` (synchronous; waits up to [`DEPLOY_TIMEOUT`]).
    ///
    /// # Errors
    /// Transport or status errors.
    pub async fn deploy(&self, req: &DeployRequest) -> Result<DeployResponse> {
        Ok(self
            .http
            .call(
                Method::POST,
                "/deploy",
                Some(req),
                &[StatusCode::OK],
                Some(DEPLOY_TIMEOUT),
            )
            .await?
            .1)
    }

    /// `POST /teardown`.
    ///
    /// # Errors
    /// Transport or status errors.
    pub async fn teardown(&self, req: &TeardownRequest) -> Result<TeardownResponse> {
        Ok(self
            .http
            .call(
                Method::POST,
                "/teardown",
                Some(req),
                &[StatusCode::OK],
                Some(DEPLOY_TIMEOUT),
            )
            .await?
            .1)
    }

    /// `POST /self-destruct`; success is a 202.
    ///
    /// # Errors
    /// Transport or status errors.
    pub async fn self_destruct(&self) -> Result<()> {
        self.http
            .call::<serde_json::Value>(
                Method::POST,
                "/self-destruct",
                None,
                &[StatusCode::ACCEPTED],
                None,
            )
            .await?;
        Ok(())
    }
}

/// The operator's client of the controller: plaintext to a loopback URL, or HTTPS with
/// an operator identity pinned to the controller's operator certificate.
#[derive(Debug, Clone)]
pub struct OperatorClient {
    /// The underlying client.
    pub http: HttpClient,
}

impl OperatorClient {
    /// A client for `url`. `https://` URLs need `tls` (identity and pin).
    ///
    /// # Errors
    /// [`Error::Invalid`] for an https URL without TLS material; [`Error::Transport`].
    pub fn new(url: &str, tls: Option<rustls::ClientConfig>) -> Result<Self> {
        let http = if url.starts_with("https://") {
            let Some(tls) = tls else {
                return Err(Error::invalid(format!(
                    "{url}: an https controller needs the operator identity"
                )));
            };
            HttpClient::tls(url, tls)?
        } else if url.starts_with("http://") {
            HttpClient::plain(url)?
        } else {
            return Err(Error::invalid(format!(
                "{url}: expected an http:// or https:// URL"
            )));
        };
        Ok(OperatorClient { http })
    }

    /// A JSON call returning the status (so 200/207 can be told apart).
    ///
    /// # Errors
    /// Transport, status and decoding errors.
    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(dyn erased::Body + Sync)>,
        ok: &[StatusCode],
        timeout: Option<Duration>,
    ) -> Result<(StatusCode, T)> {
        self.http.call(method, path, body, ok, timeout).await
    }
}

/// Serializes `value` into a request body (helper for callers holding a concrete type).
pub fn body<T: Serialize + Sync>(value: &T) -> &(dyn erased::Body + Sync) {
    value
}
