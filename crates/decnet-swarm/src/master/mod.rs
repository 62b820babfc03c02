//! The swarm controller (`decnet swarmctl`): the CA and the master identities, two
//! listeners (operators; workers), enrollment, dispatch, heartbeats, the liveness sweeper
//! and decommission.
//!
//! Listeners (SW-8):
//! - **operator** (`127.0.0.1:8770`): every `/swarm/*` route but the heartbeat.
//!   Plaintext is allowed only on a loopback address, where certless callers are
//!   accepted; with `operator_tls` it is mTLS and callers need an operator or master
//!   certificate that is not revoked. A non-loopback plaintext bind is refused.
//! - **worker** (`0.0.0.0:8771`): mTLS presenting the `swarmctl` identity; serves only
//!   `POST /swarm/heartbeat` (agent certificate pinned to its host row, revocation
//!   checked) and `POST /swarm/enroll/csr` (one-time token, no certificate yet).

mod dispatch;
mod intake;
mod operator;
mod ops;
mod worker;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use decnet_core::HostUuid;
use decnet_core::net::NetInfo;
use decnet_store::{Repository, Timestamp};
pub use dispatch::{assign_ips, shard_round_robin};
pub use intake::{MAX_HEARTBEAT_BATCH, MAX_PENDING_HEARTBEATS, observed_snapshot};
pub use operator::operator_router;
pub use worker::worker_router;

use crate::pki::{Ca, Identity, LeafSpec, Role};
use crate::tls::{ClientAuth, server_config};
use crate::{Error, Result};

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Operator listener.
    pub operator_listen: SocketAddr,
    /// mTLS on the operator listener (required off loopback).
    pub operator_tls: bool,
    /// Worker listener.
    pub worker_listen: SocketAddr,
    /// The worker-facing URL agents should use (printed with tokens, put in bundles).
    pub advertise_url: Option<String>,
    /// Extra SANs of the controller's server certificate.
    pub extra_sans: Vec<String>,
    /// Heartbeat interval agents use; a host is unreachable after three missed.
    pub heartbeat_interval: Duration,
    /// Lifetime of an enrollment token.
    pub token_ttl: Duration,
    /// CA directory.
    pub ca_dir: PathBuf,
    /// Master identities directory.
    pub master_dir: PathBuf,
}

/// Default token lifetime.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);

/// The controller's shared state.
pub struct Controller {
    /// The store.
    pub repo: Arc<dyn Repository>,
    ca: Ca,
    /// Client identity used towards agents (role master).
    pub master: Identity,
    /// Server identity of both listeners (role swarmctl).
    pub swarmctl: Identity,
    /// Operator identity for TLS operator clients on this host (role operator).
    pub operator: Identity,
    /// Options.
    pub opts: ControllerOptions,
    lans: RwLock<HashMap<HostUuid, NetInfo>>,
    generations: std::sync::Mutex<HashMap<HostUuid, u64>>,
    stripes: Vec<tokio::sync::Mutex<()>>,
    snapshots: std::sync::Mutex<HashMap<HostUuid, (u64, std::time::Instant)>>,
    intake: OnceLock<intake::Intake>,
    /// Deckies being deployed, for the log listener
    /// ([`crate::listen::LogListener::with_assigning`]).
    pub assigning: Arc<crate::listen::Assigning>,
}

/// How long an unchanged heartbeat snapshot may go without being written again (the
/// resolution of a shard's `last_seen`; the host's `last_heartbeat` is written on every
/// heartbeat).
pub const SNAPSHOT_REFRESH: Duration = Duration::from_secs(60);

/// Stripes of the per-host shard-write lock.
const SHARD_LOCK_STRIPES: usize = 64;

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// Loads or creates the CA and the master, swarmctl and operator identities.
    ///
    /// # Errors
    /// PKI and IO errors.
    pub fn new(repo: Arc<dyn Repository>, opts: ControllerOptions) -> Result<Self> {
        let ca = Ca::load_or_create(&opts.ca_dir)?;
        let master = Identity::ensure(
            &ca,
            &opts.master_dir,
            "master",
            &LeafSpec {
                name: "decnet-master".into(),
                role: Role::Master,
                sans: vec!["127.0.0.1".into()],
            },
        )?;
        let mut sans = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
        for addr in [opts.operator_listen, opts.worker_listen] {
            if !addr.ip().is_unspecified() {
                sans.push(addr.ip().to_string());
            }
        }
        sans.extend(opts.extra_sans.iter().cloned());
        for san in &opts.extra_sans {
            crate::names::check_address("--san", san)?;
        }
        let swarmctl = Identity::ensure(
            &ca,
            &opts.master_dir,
            "swarmctl",
            &LeafSpec {
                name: "swarmctl".into(),
                role: Role::Swarmctl,
                sans,
            },
        )?;
        let operator = Identity::ensure(
            &ca,
            &opts.master_dir,
            "operator",
            &LeafSpec {
                name: "decnet-operator".into(),
                role: Role::Operator,
                sans: vec![],
            },
        )?;
        Ok(Controller {
            repo,
            ca,
            master,
            swarmctl,
            operator,
            opts,
            lans: RwLock::new(HashMap::new()),
            generations: std::sync::Mutex::new(HashMap::new()),
            stripes: (0..SHARD_LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            snapshots: std::sync::Mutex::new(HashMap::new()),
            intake: OnceLock::new(),
            assigning: Arc::default(),
        })
    }

    /// Master-side files of a worker (issued certificate, requested SANs).
    pub fn worker_dir(&self, name: &str) -> PathBuf {
        self.opts.ca_dir.join("workers").join(name)
    }

    /// The CA.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The LAN a worker last reported.
    pub fn lan_of(&self, host: &HostUuid) -> Option<NetInfo> {
        self.lans
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(host)
            .cloned()
    }

    fn set_lan(&self, host: &HostUuid, lan: Option<NetInfo>) {
        let mut map = self
            .lans
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match lan {
            Some(l) => {
                if map.get(host) != Some(&l) {
                    map.insert(host.clone(), l);
                }
            }
            None => {
                map.remove(host);
            }
        }
    }

    /// Serializes shard writes of one host (dispatch results and heartbeat snapshots), so
    /// the generation check and the write happen together.
    async fn lock_shards(&self, host: &HostUuid) -> tokio::sync::MutexGuard<'_, ()> {
        self.lock_stripe(self.stripe_of(host)).await
    }

    /// The shard-lock stripe of `host`. Whoever holds several stripes takes them in
    /// ascending order.
    fn stripe_of(&self, host: &HostUuid) -> usize {
        use std::hash::{Hash as _, Hasher as _};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        host.hash(&mut h);
        usize::try_from(h.finish() % SHARD_LOCK_STRIPES as u64).unwrap_or(0)
    }

    async fn lock_stripe(&self, i: usize) -> tokio::sync::MutexGuard<'_, ()> {
        match self.stripes.get(i) {
            Some(m) => m.lock().await,
            None => self.stripes[0].lock().await,
        }
    }

    /// The heartbeat recorder's queue, started on first use (on the caller's runtime).
    fn heartbeat_intake(self: &Arc<Self>) -> &intake::Intake {
        self.intake
            .get_or_init(|| intake::start(Arc::downgrade(self)))
    }

    /// True when `digest` is the snapshot last written for `host` less than
    /// [`SNAPSHOT_REFRESH`] ago (the write can be skipped).
    fn snapshot_unchanged(&self, host: &HostUuid, digest: u64) -> bool {
        self.snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(host)
            .is_some_and(|(d, at)| *d == digest && at.elapsed() < SNAPSHOT_REFRESH)
    }

    /// Records the snapshot written for `host`; `None` forgets it (the next heartbeat
    /// writes), used when a dispatch wrote the host's shards.
    fn snapshot_written(&self, host: &HostUuid, digest: Option<u64>) {
        let mut map = self
            .snapshots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match digest {
            Some(d) => {
                map.insert(host.clone(), (d, std::time::Instant::now()));
            }
            None => {
                map.remove(host);
            }
        }
    }

    /// Remembers the newest agent state generation whose outcome was recorded.
    fn note_generation(&self, host: &HostUuid, generation: u64) {
        let mut map = self
            .generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = map.entry(host.clone()).or_insert(0);
        *slot = (*slot).max(generation);
    }

    /// True when a snapshot of `generation` is older than an outcome already recorded.
    fn is_stale(&self, host: &HostUuid, generation: u64) -> bool {
        self.generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(host)
            .is_some_and(|g| generation < *g)
    }

    /// Marks hosts whose last heartbeat is older than three intervals `unreachable`
    /// (SW-23); returns them.
    ///
    /// # Errors
    /// Store errors.
    pub async fn sweep(&self) -> Result<Vec<HostUuid>> {
        let cutoff = Timestamp::now().minus(self.opts.heartbeat_interval * 3);
        let gone = self.repo.mark_stale_hosts_unreachable(cutoff).await?;
        for host in &gone {
            tracing::warn!(host = %host, "Host missed three heartbeats: unreachable");
        }
        Ok(gone)
    }
}

/// Binds both listeners and serves until `shutdown` resolves; runs the sweeper.
///
/// # Errors
/// [`Error::Invalid`] for a plaintext operator listener off loopback; bind and TLS errors.
pub async fn run(
    ctrl: Arc<Controller>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let opts = ctrl.opts.clone();
    check_operator_bind(&opts)?;
    let bind = |addr: SocketAddr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Net {
                op: format!("bind {addr}"),
                source,
            })
    };
    let op_listener = bind(opts.operator_listen).await?;
    let worker_listener = bind(opts.worker_listen).await?;
    run_on(ctrl, op_listener, worker_listener, shutdown).await
}

fn check_operator_bind(opts: &ControllerOptions) -> Result<()> {
    if !opts.operator_tls && !opts.operator_listen.ip().is_loopback() {
        return Err(Error::invalid(format!(
            "refusing a plaintext operator listener on {}: bind a loopback address or pass --operator-tls",
            opts.operator_listen
        )));
    }
    Ok(())
}

/// Serves on already-bound listeners (tests bind port 0) until `shutdown` resolves.
///
/// # Errors
/// [`Error::Invalid`] for a plaintext operator listener off loopback; TLS errors.
pub async fn run_on(
    ctrl: Arc<Controller>,
    op_listener: tokio::net::TcpListener,
    worker_listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let opts = ctrl.opts.clone();
    if let Ok(addr) = op_listener.local_addr()
        && !opts.operator_tls
        && !addr.ip().is_loopback()
    {
        return Err(Error::invalid(format!(
            "refusing a plaintext operator listener on {addr}: bind a loopback address or pass --operator-tls"
        )));
    }
    let worker_tls = server_config(&ctrl.swarmctl, ClientAuth::Optional)?;
    let op_tls = if opts.operator_tls {
        Some(server_config(&ctrl.swarmctl, ClientAuth::Required)?)
    } else {
        None
    };
    tracing::info!(
        operator = ?op_listener.local_addr().ok(),
        worker = ?worker_listener.local_addr().ok(),
        controller_fingerprint = %ctrl.swarmctl.fingerprint,
        "Swarm controller listening"
    );
    let sweeper = {
        let ctrl = ctrl.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(ctrl.opts.heartbeat_interval);
            loop {
                tick.tick().await;
                if let Err(e) = ctrl.sweep().await {
                    tracing::warn!(error = %e, "Liveness sweep failed");
                }
            }
        })
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let op = tokio::spawn(crate::serve::serve(
        op_listener,
        op_tls,
        operator_router(ctrl.clone()),
        wait(stop_rx.clone()),
    ));
    let wk = tokio::spawn(crate::serve::serve(
        worker_listener,
        Some(worker_tls),
        worker_router(ctrl.clone()),
        wait(stop_rx),
    ));
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = op.await;
    let _ = wk.await;
    sweeper.abort();
    Ok(())
}
