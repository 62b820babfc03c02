//! The controller's log listener (TCP 6514): RFC 5425 frames over mTLS from enrolled workers, committed to an [`EventSink`] and acknowledged with `ack <n>`.
//!
//! Per connection (SW-34, SW-37, SW-38):
//! 1. TLS handshake presenting the controller's worker-facing (`swarmctl`) identity; a
//!    client certificate chained to the DECNET CA is required.
//! 2. Before any frame is read, [`authorize`]: the certificate carries the agent role,
//!    is not revoked, is the one pinned in a host row, and that host is not being
//!    decommissioned — the checks the heartbeat route makes. Otherwise the connection is
//!    closed and nothing is stored.
//! 3. Frames are decoded ([`decnet_wire::rfc5425`]), each payload unwrapped into a
//!    [`CollectedEvent`] and batched (≤ [`MAX_BATCH`] events, ≤ [`MAX_BATCH_BYTES`],
//!    ≤ [`BATCH_WINDOW`] after the first); a batch is committed with
//!    [`Origin::Worker`] (the host row's name: never the line's HOSTNAME) and then
//!    acknowledged with the cumulative count of committed frames.
//! 4. Each event's decky must be one of that worker's shards, and its service one the
//!    shard runs; otherwise the event is stored attributed to `-`, with the worker's
//!    claim kept ([`CollectedEvent::disown`]): a stolen worker certificate cannot write
//!    into another decky's history. Deckies of a deploy to that worker still in flight
//!    ([`Assigning`]) count as its own. The shard list is read at accept, again with every
//!    re-check, and on a miss: at once when a deploy ended since the last read, else at
//!    most once per [`SHARD_REFRESH`]. A decky removed from the list stays accepted on
//!    the connection for [`SHARD_RETAIN`].
//! 5. A frame above 64 KiB, a payload that is not an envelope, a sink error, an idle
//!    period of [`IDLE_TIMEOUT`] or a revocation seen on a later re-check closes the
//!    connection; frames before a bad one are committed and acknowledged first.
//!
//! The accept loop never waits on a connection: each runs in its own task, at most
//! [`MAX_CONNECTIONS`] at once.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use decnet_core::HostUuid;
use decnet_fleet::logs::{CollectedEvent, CommitOutcome, EventSink, Origin, SinkError};
use decnet_store::{HostScope, HostStatus, Repository, ShardFilter, SwarmHost};
use decnet_wire::rfc5425;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::pki::{CertInfo, Identity, Role};
use crate::serve::{accept_each, handshake};
use crate::tls::{ClientAuth, Peer, server_config};
use crate::{Error, Result};

/// The default listen port (RFC 5425).
pub const DEFAULT_PORT: u16 = 6514;
/// Most events committed in one batch.
pub const MAX_BATCH: usize = 4096;
/// Most payload bytes held in one batch.
pub const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Longest wait between a batch's first event and its commit.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Most worker connections at once; further ones are closed at accept.
pub const MAX_CONNECTIONS: usize = 128;
/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How often a long-lived connection's certificate is checked again (revocation).
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(10);
/// Least time between two reads of a worker's shard list caused by events for deckies
/// it was not assigned.
pub const SHARD_REFRESH: Duration = Duration::from_secs(1);
/// Most distinct unassigned deckies warned about per connection.
const MAX_WARNED: usize = 64;
/// Bytes read from the socket at once.
const READ_CHUNK: usize = 64 * 1024;

/// Turns a frame payload (an envelope line) into the event it carries.
pub type Decode = Arc<dyn Fn(&str) -> std::result::Result<CollectedEvent, String> + Send + Sync>;

/// The production decoder: the forwarding envelope
/// ([`decnet_fleet::logs::spool::event_from_envelope`]).
pub fn envelope_decoder() -> Decode {
    Arc::new(|payload: &str| {
        decnet_fleet::logs::spool::event_from_envelope(payload).map_err(|e| e.to_string())
    })
}

/// Why a worker's connection is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No client certificate.
    #[error("no client certificate")]
    NoCertificate,
    /// The certificate lacks the agent role.
    #[error("certificate lacks the agent role")]
    NotAgent,
    /// The certificate was revoked.
    #[error("certificate revoked")]
    Revoked,
    /// No host row pins this certificate.
    #[error("certificate not pinned to any enrolled host")]
    Unknown,
    /// The host is being decommissioned.
    #[error("host {0} is being decommissioned")]
    Decommissioning(String),
}

/// The host a worker certificate belongs to, with the heartbeat route's checks: agent
/// role, not revoked, pinned in a host row, host not being decommissioned.
///
/// # Errors
/// `Ok(Err(refusal))` when refused; `Err` for store errors.
pub async fn authorize(
    repo: &dyn Repository,
    cert: Option<&CertInfo>,
) -> Result<std::result::Result<SwarmHost, Refusal>> {
    let Some(cert) = cert else {
        return Ok(Err(Refusal::NoCertificate));
    };
    if cert.role != Some(Role::Agent) {
        return Ok(Err(Refusal::NotAgent));
    }
    if repo.is_fingerprint_revoked(&cert.fingerprint).await? {
        return Ok(Err(Refusal::Revoked));
    }
    let Some(host) = repo
        .get_swarm_host_by_fingerprint(&cert.fingerprint)
        .await?
    else {
        return Ok(Err(Refusal::Unknown));
    };
    if host.client_cert_fingerprint.as_ref() != Some(&cert.fingerprint) {
        return Ok(Err(Refusal::Unknown));
    }
    if matches!(
        host.status,
        HostStatus::Decommissioning | HostStatus::Decommissioned
    ) {
        return Ok(Err(Refusal::Decommissioning(host.name)));
    }
    Ok(Ok(host))
}

/// An error with its sources, `: `-joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Deckies being deployed: a dispatch registers a host's new assignment here before it
/// calls the agent and withdraws it once the outcome is in the store's shard rows, so the
/// listener recognises a new decky's first lines, which can arrive before those rows.
#[derive(Debug, Default)]
pub struct Assigning {
    inner: std::sync::Mutex<AssigningInner>,
    /// Bumped on every withdrawal: a listener whose shard list predates it reads the list
    /// again on its next miss.
    epoch: std::sync::atomic::AtomicU64,
}

/// Decky name → the services it runs (empty: not known).
type DeckyServices = HashMap<String, HashSet<String>>;

#[derive(Debug, Default)]
struct AssigningInner {
    next: u64,
    /// Host → (registration, decky → services).
    hosts: HashMap<HostUuid, Vec<(u64, DeckyServices)>>,
}

/// A registration in [`Assigning`], withdrawn when dropped.
#[derive(Debug)]
pub struct AssigningGuard {
    owner: Arc<Assigning>,
    host: HostUuid,
    id: u64,
}

impl Assigning {
    /// Registers `deckies` (name, services) as being deployed to `host` until the guard
    /// is dropped.
    pub fn begin<'a>(
        self: &Arc<Self>,
        host: &HostUuid,
        deckies: impl IntoIterator<Item = (&'a str, &'a [String])>,
    ) -> AssigningGuard {
        let set = deckies
            .into_iter()
            .map(|(n, s)| (n.to_owned(), s.iter().cloned().collect()))
            .collect();
        let mut g = self.lock();
        g.next += 1;
        let id = g.next;
        g.hosts.entry(host.clone()).or_default().push((id, set));
        AssigningGuard {
            owner: self.clone(),
            host: host.clone(),
            id,
        }
    }

    /// `(decky assigned, service run)` per the deploys in flight to `host`.
    fn owns(&self, host: &HostUuid, decky: &str, service: &str) -> (bool, bool) {
        let g = self.lock();
        let mut out = (false, false);
        for (_, set) in g.hosts.get(host).into_iter().flatten() {
            if let Some(services) = set.get(decky) {
                out.0 = true;
                out.1 |= services.is_empty() || services.contains(service);
            }
        }
        out
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, AssigningInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for AssigningGuard {
    fn drop(&mut self) {
        let mut g = self.owner.lock();
        if let Some(list) = g.hosts.get_mut(&self.host) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                g.hosts.remove(&self.host);
            }
        }
        drop(g);
        self.owner
            .epoch
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// How long a decky removed from a worker's shards stays accepted on a connection that
/// saw it assigned: lines spooled just before a teardown keep their decky.
pub const SHARD_RETAIN: Duration = Duration::from_secs(600);

/// The deckies a worker is assigned and the services each runs, to vet the attribution
/// of its events against.
struct Shards {
    host: HostUuid,
    worker: String,
    /// Decky name → (its services, empty when not known; when the store last listed it).
    deckies: HashMap<String, (HashSet<String>, Instant)>,
    loaded: Instant,
    /// [`Assigning::epoch`] when the list was last read.
    epoch: u64,
    assigning: Option<Arc<Assigning>>,
    warned: HashSet<String>,
}

impl Shards {
    async fn load(
        repo: &dyn Repository,
        host: &SwarmHost,
        assigning: Option<Arc<Assigning>>,
    ) -> Result<Shards> {
        let mut s = Shards {
            host: host.uuid.clone(),
            worker: host.name.clone(),
            deckies: HashMap::new(),
            loaded: Instant::now(),
            epoch: 0,
            assigning,
            warned: HashSet::new(),
        };
        s.reload(repo).await?;
        Ok(s)
    }

    async fn reload(&mut self, repo: &dyn Repository) -> Result<()> {
        // The epoch before the read: a withdrawal during it forces another read.
        let epoch = self.assigning.as_ref().map_or(0, |a| a.epoch());
        let filter = ShardFilter {
            host: HostScope::Host(self.host.clone()),
            state: None,
        };
        let now = Instant::now();
        for shard in repo.list_shards(&filter).await? {
            self.deckies.insert(
                shard.decky_name.as_str().to_owned(),
                (shard.services.into_iter().collect(), now),
            );
        }
        self.deckies
            .retain(|_, (_, listed)| now.duration_since(*listed) < SHARD_RETAIN);
        self.loaded = now;
        self.epoch = epoch;
        Ok(())
    }

    /// `(decky assigned, service run)` for `event`.
    fn owns(&self, event: &CollectedEvent) -> (bool, bool) {
        let mut out = match self.deckies.get(&event.decky) {
            None => (false, false),
            Some((services, _)) => (
                true,
                services.is_empty() || services.contains(&event.service),
            ),
        };
        if out != (true, true)
            && let Some(a) = &self.assigning
        {
            let (d, s) = a.owns(&self.host, &event.decky, &event.service);
            out = (out.0 | d, out.1 | s);
        }
        out
    }

    /// Disowns `event` when it names a decky this worker was not assigned or a service
    /// that decky does not run. Before that the list is read again when a deploy ended
    /// since the last read, or at most once per [`SHARD_REFRESH`].
    async fn vet(&mut self, repo: &dyn Repository, event: &mut CollectedEvent) -> Result<()> {
        let mut owns = self.owns(event);
        if owns == (true, true) {
            return Ok(());
        }
        let changed = self
            .assigning
            .as_ref()
            .is_some_and(|a| a.epoch() != self.epoch);
        if changed || self.loaded.elapsed() >= SHARD_REFRESH {
            self.reload(repo).await?;
            owns = self.owns(event);
            if owns == (true, true) {
                return Ok(());
            }
        }
        let claim = format!("{}/{}", event.decky, event.service);
        if self.warned.len() < MAX_WARNED && self.warned.insert(claim.clone()) {
            tracing::warn!(
                worker = %self.worker,
                claim = %claim,
                "Worker sent events for a decky or service it was not assigned; stored unattributed"
            );
        }
        event.disown(!owns.0, !owns.1);
        Ok(())
    }
}

/// What the listener needs.
#[derive(Clone)]
pub struct LogListener {
    tls: Arc<rustls::ServerConfig>,
    repo: Arc<dyn Repository>,
    sink: Arc<dyn EventSink>,
    decode: Decode,
    assigning: Option<Arc<Assigning>>,
    /// Idle timeout per connection ([`IDLE_TIMEOUT`]).
    pub idle_timeout: Duration,
    /// How often a connection's worker is checked again ([`RECHECK_INTERVAL`]).
    pub recheck_interval: Duration,
}

impl std::fmt::Debug for LogListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogListener")
            .field("idle_timeout", &self.idle_timeout)
            .finish_non_exhaustive()
    }
}

impl LogListener {
    /// A listener presenting `identity` (the controller's `swarmctl` identity), checking
    /// workers against `repo`, committing to `sink`, reading payloads with `decode`.
    ///
    /// # Errors
    /// [`Error::Tls`].
    pub fn new(
        identity: &Identity,
        repo: Arc<dyn Repository>,
        sink: Arc<dyn EventSink>,
        decode: Decode,
    ) -> Result<LogListener> {
        let mut tls = (*server_config(identity, ClientAuth::Required)?).clone();
        tls.alpn_protocols.clear();
        Ok(LogListener {
            tls: Arc::new(tls),
            repo,
            sink,
            decode,
            assigning: None,
            idle_timeout: IDLE_TIMEOUT,
            recheck_interval: RECHECK_INTERVAL,
        })
    }

    /// Also accepts the deckies of deploys in flight ([`Assigning`], the controller's),
    /// whose shard rows are written only once the deploy's outcome is known.
    #[must_use]
    pub fn with_assigning(mut self, assigning: Arc<Assigning>) -> LogListener {
        self.assigning = Some(assigning);
        self
    }

    /// Binds `addr` and serves until `shutdown` resolves.
    ///
    /// # Errors
    /// [`Error::Net`] when the address cannot be bound.
    pub async fn run(self, addr: SocketAddr, shutdown: impl Future<Output = ()>) -> Result<()> {
        let listener = TcpListener::bind(addr).await.map_err(|source| Error::Net {
            op: format!("bind {addr}"),
            source,
        })?;
        tracing::info!(listen = %addr, "Log listener up");
        self.run_on(listener, shutdown).await;
        Ok(())
    }

    /// Serves on a bound listener until `shutdown` resolves; open connections are then
    /// dropped (whatever they did not get acknowledged is sent again by the forwarder).
    pub async fn run_on(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.clone());
        let this = Arc::new(self);
        accept_each(listener, MAX_CONNECTIONS, shutdown, move |stream, remote| {
            let this = this.clone();
            let acceptor = acceptor.clone();
            async move {
                let _ = stream.set_nodelay(true);
                let Some(tls) = handshake(&acceptor, stream, remote).await else {
                    return;
                };
                let peer = Peer::from_tls(remote, tls.get_ref().1);
                let host = match authorize(this.repo.as_ref(), peer.cert.as_ref()).await {
                    Ok(Ok(h)) => h,
                    Ok(Err(refusal)) => {
                        tracing::warn!(peer = %remote, reason = %refusal, "Log connection refused");
                        return;
                    }
                    Err(e) => {
                        tracing::error!(peer = %remote, error = %e, "Log connection: store failed while checking the worker");
                        return;
                    }
                };
                let outcome = this.session(tls, &peer, &host).await;
                match outcome {
                    Ok(n) => {
                        tracing::debug!(peer = %remote, worker = %host.name, committed = n, "Log connection closed");
                    }
                    Err(e) => {
                        tracing::warn!(peer = %remote, worker = %host.name, error = %e, "Log connection closed");
                    }
                }
            }
        })
        .await;
    }

    /// Commits `batch` in a task of its own: a connection dropped mid-commit (listener
    /// shutdown, peer gone) never cancels a store transaction half-way (the batch is
    /// then stored and the forwarder's resend is a no-op). The session keeps reading
    /// and decoding the next batch while this one is stored.
    fn spawn_commit(&self, origin: &Origin, batch: Vec<CollectedEvent>) -> InFlight {
        let sink = self.sink.clone();
        let origin = origin.clone();
        let frames = batch.len() as u64;
        let task = tokio::spawn(async move { sink.commit(&origin, &batch).await });
        InFlight { task, frames }
    }

    /// Reads, commits and acknowledges frames until the peer closes or misbehaves;
    /// returns the number of frames committed.
    async fn session<S>(
        &self,
        stream: S,
        peer: &Peer,
        host: &SwarmHost,
    ) -> std::result::Result<u64, String>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let (mut rd, mut wr) = tokio::io::split(stream);
        let origin = Origin::Worker(host.name.clone());
        let mut shards = Shards::load(self.repo.as_ref(), host, self.assigning.clone())
            .await
            .map_err(|e| format!("store: {e}"))?;
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK * 2);
        let mut batch: Vec<CollectedEvent> = Vec::new();
        let mut batch_bytes = 0usize;
        let mut batch_start: Option<Instant> = None;
        let mut committed: u64 = 0;
        let mut last_check = Instant::now();
        let mut ack = Vec::with_capacity(rfc5425::MAX_ACK + 8);
        // At most one commit in flight: acknowledged, in order, before the next starts.
        let mut inflight: Option<InFlight> = None;
        loop {
            // Decode every complete frame buffered.
            let mut at = 0;
            let mut fatal: Option<String> = None;
            while batch.len() < MAX_BATCH && batch_bytes < MAX_BATCH_BYTES {
                match rfc5425::decode(&buf[at..]) {
                    Ok(Some((range, used))) => {
                        let payload = &buf[at + range.start..at + range.end];
                        at += used;
                        let event = std::str::from_utf8(payload)
                            .map_err(|_| "payload is not UTF-8".to_owned())
                            .and_then(|text| (self.decode)(text));
                        match event {
                            Ok(mut e) => {
                                shards
                                    .vet(self.repo.as_ref(), &mut e)
                                    .await
                                    .map_err(|e| format!("store: {e}"))?;
                                batch_bytes += payload.len();
                                batch.push(e);
                                batch_start.get_or_insert_with(Instant::now);
                            }
                            Err(reason) => {
                                fatal = Some(format!("bad envelope: {reason}"));
                                break;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        fatal = Some(format!("bad frame: {e}"));
                        break;
                    }
                }
            }
            buf.drain(..at);
            let full = batch.len() >= MAX_BATCH || batch_bytes >= MAX_BATCH_BYTES;
            let due = batch_start.is_some_and(|t| t.elapsed() >= BATCH_WINDOW);
            if !batch.is_empty() && (full || due || fatal.is_some()) {
                if last_check.elapsed() >= self.recheck_interval {
                    match authorize(self.repo.as_ref(), peer.cert.as_ref()).await {
                        Ok(Ok(_)) => {
                            shards
                                .reload(self.repo.as_ref())
                                .await
                                .map_err(|e| format!("store: {e}"))?;
                            last_check = Instant::now();
                        }
                        Ok(Err(r)) => return Err(format!("worker no longer accepted: {r}")),
                        Err(e) => return Err(format!("store: {e}")),
                    }
                }
                if let Some(prev) = inflight.take() {
                    committed += prev.finish().await?;
                    send_ack(&mut wr, &mut ack, committed).await?;
                }
                inflight = Some(self.spawn_commit(&origin, std::mem::take(&mut batch)));
                batch_bytes = 0;
                batch_start = None;
                if full && fatal.is_none() {
                    // More complete frames may be buffered already.
                    continue;
                }
            }
            if let Some(reason) = fatal {
                if let Some(prev) = inflight.take() {
                    committed += prev.finish().await?;
                    send_ack(&mut wr, &mut ack, committed).await?;
                }
                return Err(reason);
            }
            if batch.len() >= MAX_BATCH || batch_bytes >= MAX_BATCH_BYTES {
                continue;
            }
            let deadline = match batch_start {
                Some(t) => t + BATCH_WINDOW,
                None => Instant::now() + self.idle_timeout,
            };
            buf.reserve(READ_CHUNK);
            let read = match inflight.as_mut() {
                // Read, but acknowledge the commit in flight as soon as it is done (the
                // forwarder may be waiting for that ack to send more).
                Some(prev) => tokio::select! {
                    done = &mut prev.task => {
                        let frames = prev.frames;
                        inflight = None;
                        committed += InFlight::outcome(done, frames)?;
                        send_ack(&mut wr, &mut ack, committed).await?;
                        continue;
                    }
                    r = tokio::time::timeout_at(deadline.into(), rd.read_buf(&mut buf)) => r,
                },
                None => tokio::time::timeout_at(deadline.into(), rd.read_buf(&mut buf)).await,
            };
            match read {
                Ok(Ok(0)) => {
                    if let Some(prev) = inflight.take() {
                        committed += prev.finish().await?;
                        send_ack(&mut wr, &mut ack, committed).await?;
                    }
                    if batch.is_empty() {
                        return Ok(committed);
                    }
                    // Commit what arrived before the close; the ack may not reach the
                    // peer, which then sends these again (idempotent per key).
                    let n = self.spawn_commit(&origin, batch).finish().await?;
                    return Ok(committed + n);
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("read: {e}")),
                Err(_) if batch_start.is_some() => {}
                Err(_) => return Err("idle timeout".into()),
            }
        }
    }
}

/// A batch being committed by its own task.
struct InFlight {
    task: tokio::task::JoinHandle<std::result::Result<CommitOutcome, SinkError>>,
    frames: u64,
}

impl InFlight {
    /// Waits for the commit; the number of frames it made durable.
    async fn finish(mut self) -> std::result::Result<u64, String> {
        let done = (&mut self.task).await;
        Self::outcome(done, self.frames)
    }

    fn outcome(
        done: std::result::Result<
            std::result::Result<CommitOutcome, SinkError>,
            tokio::task::JoinError,
        >,
        frames: u64,
    ) -> std::result::Result<u64, String> {
        match done {
            Ok(Ok(_)) => Ok(frames),
            Ok(Err(e)) => Err(format!("commit: {}", chain(&e))),
            Err(e) => Err(format!("commit task: {e}")),
        }
    }
}

/// Sends `ack <committed>`.
async fn send_ack<W: tokio::io::AsyncWrite + Unpin>(
    wr: &mut W,
    ack: &mut Vec<u8>,
    committed: u64,
) -> std::result::Result<(), String> {
    ack.clear();
    rfc5425::encode_ack(committed, ack);
    wr.write_all(ack)
        .await
        .map_err(|e| format!("write ack: {e}"))?;
    wr.flush().await.map_err(|e| format!("write ack: {e}"))
}
