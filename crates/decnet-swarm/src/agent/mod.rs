//! The worker agent: its enrolled bundle, the mTLS server that obeys only the pinned
//! master, the operation queue, relocalization, the heartbeat loop, worker-side
//! enrollment and self-destruct.

pub mod backend;
pub mod enroll;
pub mod heartbeat;
pub mod reaper;
pub mod relocalize;
pub mod runtime;
mod server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use server::{AgentContext, OpQueue, router};

use crate::pki::{Identity, Role, cert_info, pem_to_der, read_small};
use crate::proto::AgentMeta;
use crate::tls::{ClientAuth, ServerPin, client_config, server_config};
use crate::{Error, Result};

/// File stem of the worker certificate and key in the agent directory.
pub const WORKER_STEM: &str = "worker";
/// The identity file in the agent directory.
pub const META_FILE: &str = "identity.json";

/// An enrolled agent directory: `ca.crt`, `worker.crt`, `worker.key` (0600) and
/// `identity.json`.
#[derive(Debug, Clone)]
pub struct AgentBundle {
    /// The directory.
    pub dir: PathBuf,
    /// Worker certificate, key and CA.
    pub identity: Identity,
    /// Host id, pins and controller URL.
    pub meta: AgentMeta,
}

impl AgentBundle {
    /// Loads the bundle from `dir`.
    ///
    /// # Errors
    /// [`Error::NotEnrolled`] when any file is missing; parse errors otherwise.
    pub fn load(dir: &Path) -> Result<AgentBundle> {
        let needed = ["ca.crt", "worker.crt", "worker.key", META_FILE];
        if needed.iter().any(|f| !dir.join(f).is_file()) {
            return Err(Error::NotEnrolled {
                dir: dir.to_path_buf(),
            });
        }
        let identity = Identity::load(dir, WORKER_STEM)?;
        let info = cert_info(&pem_to_der(&identity.cert_pem)?)?;
        if info.role != Some(Role::Agent) {
            return Err(Error::Pki(format!(
                "{}: worker.crt does not carry the agent role",
                dir.display()
            )));
        }
        let text = read_small(&dir.join(META_FILE))?;
        let meta: AgentMeta = serde_json::from_str(&text).map_err(|source| Error::Json {
            what: dir.join(META_FILE).display().to_string(),
            source,
        })?;
        if meta.version != 1 {
            return Err(Error::invalid(format!(
                "{}: unsupported identity version {}",
                dir.join(META_FILE).display(),
                meta.version
            )));
        }
        Ok(AgentBundle {
            dir: dir.to_path_buf(),
            identity,
            meta,
        })
    }

    /// The TLS client configuration for heartbeats: the worker identity, the controller
    /// pinned (SW-7).
    ///
    /// # Errors
    /// [`Error::Tls`].
    pub fn controller_tls(&self) -> Result<rustls::ClientConfig> {
        client_config(
            Some(&self.identity),
            Some(&self.identity.ca_pem),
            ServerPin {
                fingerprint: self.meta.controller_fingerprint.clone(),
                role: Role::Swarmctl,
            },
        )
    }
}

/// How the agent runs.
#[derive(Clone)]
pub struct AgentOptions {
    /// Listen address (`0.0.0.0:8765`).
    pub listen: SocketAddr,
    /// Heartbeat interval (10 s).
    pub heartbeat_interval: Duration,
    /// Version reported in heartbeats.
    pub agent_version: String,
    /// Self-destruct reaper.
    pub reaper: reaper::Reaper,
}

/// Runs the agent until `shutdown` resolves: the mTLS server and the heartbeat loop.
///
/// # Errors
/// [`Error::Net`] when the port cannot be bound; TLS configuration errors.
pub async fn run(
    bundle: AgentBundle,
    backend: Arc<dyn backend::AgentBackend>,
    detector: Arc<dyn relocalize::LanDetector>,
    opts: AgentOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| Error::Net {
            op: format!("bind {}", opts.listen),
            source,
        })?;
    run_on(listener, bundle, backend, detector, opts, shutdown).await
}

/// Runs the agent on an already-bound listener (tests bind port 0).
///
/// # Errors
/// TLS configuration errors.
pub async fn run_on(
    listener: tokio::net::TcpListener,
    bundle: AgentBundle,
    backend: Arc<dyn backend::AgentBackend>,
    detector: Arc<dyn relocalize::LanDetector>,
    opts: AgentOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let tls = server_config(&bundle.identity, ClientAuth::Required)?;
    let ctx = Arc::new(AgentContext::new(
        backend.clone(),
        detector.clone(),
        bundle.meta.master_fingerprint.clone(),
        bundle.meta.host_uuid.clone(),
        opts.reaper.clone(),
    ));
    let beat = heartbeat::Heartbeater::new(
        &bundle,
        backend,
        detector,
        opts.agent_version.clone(),
        ctx.generation(),
    )?;
    let interval = opts.heartbeat_interval;
    let beat_task = tokio::spawn(async move { beat.run(interval).await });
    tracing::info!(
        listen = ?listener.local_addr().ok(),
        host_uuid = %bundle.meta.host_uuid,
        controller = %bundle.meta.controller_url,
        "Agent listening"
    );
    crate::serve::serve(listener, Some(tls), router(ctx), shutdown).await;
    beat_task.abort();
    Ok(())
}
