//! The broker: a UNIX-socket server that fans published events out to matching connections.

use std::future::Future;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use decnet_wire::bus::{self as wire, Decoded, Frame, Verb};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::Error;
use crate::envelope::{Envelope, Stamp, now_ts, restamp_at};
use crate::queue::{DEFAULT_QUEUE_CAPACITY, Queue, QueueItem};
use crate::router::{ConnId, Router};
use crate::topic::{Pattern, TopicCache};
use crate::topics::{SYSTEM_BUS_HEALTH, TYPE_BUS_HEALTH};

/// Default heartbeat period of `system.bus.health`.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
/// Default group that may use the socket.
pub const DEFAULT_GROUP: &str = "decnet";
/// Most simultaneous connections; later ones are closed at once.
pub const MAX_CONNECTIONS: usize = 1024;
/// Most patterns one connection may hold.
pub const MAX_PATTERNS_PER_CONN: usize = 1024;
/// Longest peer name kept from HELLO, in bytes.
pub const MAX_PEER_NAME: usize = 128;
/// Most per-connection entries in a health payload.
pub const MAX_HEALTH_SUBSCRIBERS: usize = 64;
/// How long a started frame may take to arrive completely.
pub const FRAME_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for connections to flush.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;

/// How to run a broker.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    /// Socket path; its parent directory must exist.
    pub socket: PathBuf,
    /// Group given to the socket when it exists (best-effort); `None` leaves it.
    pub group: Option<String>,
    /// Period of `system.bus.health`; `None` disables it.
    pub heartbeat: Option<Duration>,
    /// Outbound queue of each connection, in frames (drop-oldest beyond).
    pub queue_capacity: usize,
    /// When set, only peers whose SO_PEERCRED uid is listed may connect (FL-9).
    pub allowed_uids: Option<Vec<u32>>,
    /// Tell systemd `READY=1` once listening (`Type=notify`); harmless without `NOTIFY_SOCKET`.
    pub notify_systemd: bool,
}

impl BrokerOptions {
    /// Defaults for `socket`: group `decnet`, 10 s heartbeat, 1024-frame queues, no uid
    /// check, no systemd notification.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Self {
            socket: socket.into(),
            group: Some(DEFAULT_GROUP.to_owned()),
            heartbeat: Some(DEFAULT_HEARTBEAT),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            allowed_uids: None,
            notify_systemd: false,
        }
    }
}

/// Counters of one connection: its sequence number is the count of events queued for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnStats {
    /// Connection id (order of arrival).
    pub id: u64,
    /// Name from HELLO.
    pub name: String,
    /// Peer uid (SO_PEERCRED), when known.
    pub uid: Option<u32>,
    /// Subscribed patterns.
    pub patterns: Vec<String>,
    /// Events queued for this connection so far (the last sequence number).
    pub seq: u64,
    /// Events dropped from its full queue.
    pub drops: u64,
    /// Frames waiting to be written.
    pub queued: usize,
}

/// A snapshot of the broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerStats {
    /// Process id.
    pub pid: u32,
    /// Seconds since the broker started.
    pub uptime_sec: f64,
    /// Open connections.
    pub connections: usize,
    /// PUB frames accepted.
    pub published: u64,
    /// Events queued for delivery (one per receiving connection).
    pub delivered: u64,
    /// Events dropped from full queues, closed connections included.
    pub drops: u64,
    /// Per-connection counters, ordered by id.
    pub subscribers: Vec<ConnStats>,
}

/// One outbound frame; control frames (`OK`, `BYE`) are never dropped to make room.
struct Outbound {
    frame: Bytes,
    control: bool,
}

impl QueueItem for Outbound {
    fn protected(&self) -> bool {
        self.control
    }
    fn size(&self) -> usize {
        self.frame.len()
    }
}

struct Conn {
    id: ConnId,
    name: Mutex<String>,
    uid: Option<u32>,
    queue: Queue<Outbound>,
    seq: AtomicU64,
    cancel: CancellationToken,
}

impl Conn {
    fn name(&self) -> String {
        self.name.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn push_event(&self, frame: Bytes) {
        self.seq.fetch_add(1, Ordering::Relaxed);
        self.queue.push(Outbound {
            frame,
            control: false,
        });
    }

    fn push_control(&self, frame: Vec<u8>) {
        self.queue.push(Outbound {
            frame: Bytes::from(frame),
            control: true,
        });
    }
}

type Table = Router<Arc<Conn>, ()>;

struct Shared {
    router: RwLock<Table>,
    started: Instant,
    next_id: AtomicU64,
    published: AtomicU64,
    delivered: AtomicU64,
    /// Drops of connections that have closed, so the total never goes down.
    past_drops: AtomicU64,
}

impl Shared {
    fn read(&self) -> RwLockReadGuard<'_, Table> {
        // Every mutation of the table is one call; a poisoned lock still holds a valid table.
        self.router.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.router.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an EVT frame for every matching connection but `origin`; the last one takes
    /// the frame itself (a single subscriber costs no reference count).
    fn route(&self, topic: &str, origin: Option<ConnId>, frame: Bytes) {
        let mut n = 0;
        let table = self.read();
        let mut last: Option<&Arc<Conn>> = None;
        table.for_each_conn(topic, origin, |c| {
            if let Some(prev) = last.replace(c) {
                prev.push_event(frame.clone());
            }
            n += 1;
        });
        if let Some(c) = last {
            c.push_event(frame);
        }
        drop(table);
        self.delivered.fetch_add(n, Ordering::Relaxed);
    }

    fn stats(&self) -> BrokerStats {
        let table = self.read();
        let mut subscribers: Vec<ConnStats> = table
            .iter()
            .map(|(id, c, routes)| {
                let q = c.queue.stats();
                ConnStats {
                    id,
                    name: c.name(),
                    uid: c.uid,
                    patterns: routes.iter().map(|(p, _)| p.to_string()).collect(),
                    seq: c.seq.load(Ordering::Relaxed),
                    drops: q.drops,
                    queued: q.queued,
                }
            })
            .collect();
        subscribers.sort_by_key(|s| s.id);
        let live_drops: u64 = subscribers.iter().map(|s| s.drops).sum();
        BrokerStats {
            pid: std::process::id(),
            uptime_sec: self.started.elapsed().as_secs_f64(),
            connections: subscribers.len(),
            published: self.published.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
            drops: live_drops + self.past_drops.load(Ordering::Relaxed),
            subscribers,
        }
    }
}

/// A cheap handle on a running broker: statistics and server-originated events.
#[derive(Clone)]
pub struct BrokerHandle {
    shared: Arc<Shared>,
}

impl BrokerHandle {
    /// A snapshot of connections, sequence numbers and drop counters.
    pub fn stats(&self) -> BrokerStats {
        self.shared.stats()
    }

    /// Delivers an event that originates in the broker itself (to every matching connection).
    ///
    /// # Errors
    /// [`Error::Frame`] when the envelope does not fit in a frame.
    pub fn publish(&self, envelope: &Envelope) -> Result<(), Error> {
        let mut frame = Vec::new();
        wire::encode(
            Verb::Evt,
            envelope.topic.as_str(),
            &envelope.to_json(),
            &mut frame,
        )?;
        self.shared
            .route(envelope.topic.as_str(), None, Bytes::from(frame));
        Ok(())
    }

    /// The `system.bus.health` payload: `{pid, uptime_sec, ts, connections, drops,
    /// published, subscribers: [..64 entries]}`.
    pub fn health_payload(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut s = self.stats();
        s.subscribers.truncate(MAX_HEALTH_SUBSCRIBERS);
        let value = json!({
            "pid": s.pid,
            "uptime_sec": s.uptime_sec,
            "ts": now_ts(),
            "connections": s.connections,
            "drops": s.drops,
            "published": s.published,
            "delivered": s.delivered,
            "subscribers": s.subscribers,
        });
        match value {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        }
    }
}

/// A bound broker, ready to [`Broker::run`].
pub struct Broker {
    listener: std::os::unix::net::UnixListener,
    path: PathBuf,
    inode: (u64, u64),
    opts: BrokerOptions,
    shared: Arc<Shared>,
}

impl Broker {
    /// Binds the socket: the parent directory must exist; a stale socket is removed only
    /// if it is a socket nobody listens on; mode 0660; group set when it exists.
    ///
    /// # Errors
    /// [`Error::MissingParent`], [`Error::NotASocket`], [`Error::AlreadyRunning`], or
    /// [`Error::Io`] for bind/chmod failures.
    pub fn bind(opts: BrokerOptions) -> Result<Broker, Error> {
        let path = opts.socket.clone();
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !parent.is_dir() {
            return Err(Error::MissingParent(parent));
        }
        clear_stale(&path)?;
        let listener =
            std::os::unix::net::UnixListener::bind(&path).map_err(|source| Error::Io {
                what: "bind",
                path: path.clone(),
                source,
            })?;
        let io = |what| {
            let path = path.clone();
            move |source| Error::Io { what, path, source }
        };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o660))
            .map_err(io("chmod"))?;
        if let Some(group) = &opts.group {
            set_group(&path, group);
        }
        listener.set_nonblocking(true).map_err(io("configure"))?;
        let meta = std::fs::symlink_metadata(&path).map_err(io("stat"))?;
        Ok(Broker {
            listener,
            inode: (meta.dev(), meta.ino()),
            path,
            shared: Arc::new(Shared {
                router: RwLock::new(Router::new()),
                started: Instant::now(),
                next_id: AtomicU64::new(1),
                published: AtomicU64::new(0),
                delivered: AtomicU64::new(0),
                past_drops: AtomicU64::new(0),
            }),
            opts,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle for statistics and server-originated events.
    pub fn handle(&self) -> BrokerHandle {
        BrokerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `shutdown` completes, then says BYE to every connection, closes them
    /// and removes the socket (never its directory).
    ///
    /// # Errors
    /// [`Error::Io`] when the listener cannot be registered with the runtime.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let Broker {
            listener,
            path,
            inode,
            opts,
            shared,
        } = self;
        let listener =
            tokio::net::UnixListener::from_std(listener).map_err(|source| Error::Io {
                what: "listen on",
                path: path.clone(),
                source,
            })?;
        let stop = CancellationToken::new();
        let handle = BrokerHandle {
            shared: shared.clone(),
        };
        let mut tasks = JoinSet::new();
        if let Some(period) = opts.heartbeat {
            tasks.spawn(heartbeat(handle.clone(), period, stop.clone()));
        }
        info!(socket = %path.display(), pid = std::process::id(), "Bus broker listening");
        if opts.notify_systemd
            && let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready])
        {
            warn!(error = %e, "Could not notify systemd of readiness");
        }
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        if let Some(conn) = admit(&shared, &opts, &stream, &stop) {
                            tasks.spawn(serve(shared.clone(), conn, stream));
                        }
                    }
                    Err(e) => {
                        // Typically EMFILE: back off instead of spinning.
                        warn!(error = %e, "Bus accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        info!(socket = %path.display(), "Bus broker stopping");
        if opts.notify_systemd {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        }
        drop(listener);
        stop.cancel();
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.shutdown().await;
        }
        remove_own_socket(&path, inode);
        Ok(())
    }
}

/// Removes a leftover socket file; refuses anything that is not a socket or still answers.
fn clear_stale(path: &Path) -> Result<(), Error> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(Error::NotASocket(path.to_path_buf()));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(Error::AlreadyRunning(path.to_path_buf()));
    }
    std::fs::remove_file(path).map_err(|source| Error::Io {
        what: "remove stale socket",
        path: path.to_path_buf(),
        source,
    })
}

fn set_group(path: &Path, group: &str) {
    match nix::unistd::Group::from_name(group) {
        Ok(Some(g)) => {
            if let Err(e) = nix::unistd::chown(path, None, Some(g.gid)) {
                warn!(socket = %path.display(), group, error = %e, "Could not set the bus socket group");
            }
        }
        Ok(None) => debug!(group, "Bus socket group does not exist; left unchanged"),
        Err(e) => warn!(group, error = %e, "Could not look up the bus socket group"),
    }
}

/// Unlinks the socket only if it is still the one this broker created.
fn remove_own_socket(path: &Path, inode: (u64, u64)) {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if (meta.dev(), meta.ino()) == inode => {
            if let Err(e) = std::fs::remove_file(path) {
                warn!(socket = %path.display(), error = %e, "Could not remove the bus socket");
            }
        }
        _ => debug!(socket = %path.display(), "Bus socket already replaced or gone"),
    }
}

/// Checks the peer and registers a connection, or refuses it.
fn admit(
    shared: &Arc<Shared>,
    opts: &BrokerOptions,
    stream: &UnixStream,
    stop: &CancellationToken,
) -> Option<Arc<Conn>> {
    let uid = stream.peer_cred().ok().map(|c| c.uid());
    if let Some(allowed) = &opts.allowed_uids
        && !uid.is_some_and(|u| allowed.contains(&u))
    {
        warn!(uid = ?uid, "Bus connection refused: peer uid not allowed");
        return None;
    }
    let mut table = shared.write();
    if table.conn_count() >= MAX_CONNECTIONS {
        warn!(
            limit = MAX_CONNECTIONS,
            "Bus connection refused: too many connections"
        );
        return None;
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(Conn {
        id,
        name: Mutex::new(format!("conn-{id}")),
        uid,
        queue: Queue::new(opts.queue_capacity),
        seq: AtomicU64::new(0),
        cancel: stop.child_token(),
    });
    table.add_conn(id, conn.clone());
    debug!(conn = id, uid = ?uid, "Bus connection accepted");
    Some(conn)
}

/// Why a connection's reader stopped.
enum End {
    /// EOF at a frame boundary, or BYE.
    Clean,
    /// Broker shutdown.
    Shutdown,
}

async fn serve(shared: Arc<Shared>, conn: Arc<Conn>, stream: UnixStream) {
    let (rd, wr) = stream.into_split();
    let writer = tokio::spawn(write_loop(conn.clone(), wr));
    let end = read_loop(&shared, &conn, rd).await;
    match &end {
        Ok(End::Clean) => debug!(conn = conn.id, name = %conn.name(), "Bus connection closed"),
        Ok(End::Shutdown) => {
            let mut bye = Vec::new();
            if wire::encode(Verb::Bye, "", b"", &mut bye).is_ok() {
                conn.push_control(bye);
            }
        }
        Err(e) => {
            warn!(conn = conn.id, name = %conn.name(), error = %e, "Bus connection closed on protocol error");
        }
    }
    if shared.write().remove_conn(conn.id).is_some() {
        shared
            .past_drops
            .fetch_add(conn.queue.stats().drops, Ordering::Relaxed);
    }
    conn.queue.close();
    let mut writer = writer;
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
}

async fn read_loop(shared: &Shared, conn: &Conn, mut rd: OwnedReadHalf) -> Result<End, Error> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut topics = TopicCache::new();
    // EVT frames are built here, then copied out at their exact size.
    let mut scratch = Vec::with_capacity(4096);
    // Receive time (`rts`), read and written once per batch of frames rather than per frame.
    let mut now = Stamp::new(now_ts());
    loop {
        loop {
            // PUB bodies are validated by `restamp`, which parses them completely; every
            // other verb's body is checked in `handle_frame`.
            let (consumed, end) = match wire::decode_unchecked(&buf)? {
                Decoded::Frame { frame, consumed } => (
                    consumed,
                    handle_frame(shared, conn, &mut topics, &mut scratch, frame, &now)?,
                ),
                Decoded::NeedMore { min_len } => {
                    buf.reserve(min_len.saturating_sub(buf.len()).max(READ_CHUNK));
                    break;
                }
            };
            buf.advance(consumed);
            if end {
                return Ok(End::Clean);
            }
        }
        // An idle connection may stay silent forever; a started frame must complete.
        let partial = !buf.is_empty();
        let read = rd.read_buf(&mut buf);
        let n = tokio::select! {
            () = conn.cancel.cancelled() => return Ok(End::Shutdown),
            n = async {
                if partial {
                    tokio::time::timeout(FRAME_READ_TIMEOUT, read).await
                } else {
                    Ok(read.await)
                }
            } => n,
        };
        match n {
            Err(_) => return Err(Error::Protocol("frame not completed in time".into())),
            Ok(Err(e)) => return Err(Error::Connection(e)),
            Ok(Ok(0)) => {
                wire::check_eof(&buf)?;
                return Ok(End::Clean);
            }
            Ok(Ok(_)) => now = Stamp::new(now_ts()),
        }
    }
}

#[derive(Deserialize)]
struct AckRequest {
    #[serde(default)]
    ack: Option<u64>,
}

fn ack_of(body: &[u8]) -> Option<u64> {
    if body.is_empty() {
        return None;
    }
    serde_json::from_slice::<AckRequest>(body).ok()?.ack
}

/// Handles one frame; returns true when the peer said BYE.
fn handle_frame(
    shared: &Shared,
    conn: &Conn,
    topics: &mut TopicCache,
    scratch: &mut Vec<u8>,
    frame: Frame<'_>,
    now: &Stamp,
) -> Result<bool, Error> {
    if frame.verb != Verb::Pub {
        wire::check_body(frame.body)?;
    }
    match frame.verb {
        Verb::Pub => {
            let topic = topics.get(frame.args)?;
            // The EVT frame is built once and shared by every receiving connection; copied
            // out of the scratch buffer at its exact size, it is one allocation.
            let out = scratch;
            out.clear();
            let open = wire::begin(Verb::Evt, topic.as_str(), out)?;
            restamp_at(&topic, frame.body, now, out)?;
            shared.published.fetch_add(1, Ordering::Relaxed);
            if wire::finish(open, out).is_err() {
                warn!(topic = %topic, "Bus event dropped: body too large after stamping");
                return Ok(false);
            }
            let frame = Bytes::copy_from_slice(out);
            if out.capacity() > 4 * READ_CHUNK {
                *out = Vec::with_capacity(4096);
            }
            shared.route(topic.as_str(), Some(conn.id), frame);
            Ok(false)
        }
        Verb::Sub => {
            let pattern = Pattern::new(frame.args)?;
            {
                let mut table = shared.write();
                let routes = table.routes(conn.id);
                if !routes.iter().any(|(p, _)| *p == pattern) {
                    if routes.len() >= MAX_PATTERNS_PER_CONN {
                        return Err(Error::Protocol(format!(
                            "more than {MAX_PATTERNS_PER_CONN} patterns"
                        )));
                    }
                    table.add_route(conn.id, pattern.clone(), ());
                }
            }
            debug!(conn = conn.id, pattern = %pattern, "Bus subscribe");
            acknowledge(conn, &pattern, frame.body)
        }
        Verb::Unsub => {
            let pattern = Pattern::new(frame.args)?;
            shared.write().remove_routes(conn.id, |p, _| *p == pattern);
            acknowledge(conn, &pattern, frame.body)
        }
        Verb::Hello => {
            let mut name = frame.args.to_owned();
            if name.len() > MAX_PEER_NAME {
                let mut cut = MAX_PEER_NAME;
                while !name.is_char_boundary(cut) {
                    cut -= 1;
                }
                name.truncate(cut);
            }
            if !name.is_empty() {
                debug!(conn = conn.id, name = %name, "Bus hello");
                *conn.name.lock().unwrap_or_else(|e| e.into_inner()) = name;
            }
            Ok(false)
        }
        Verb::Bye => Ok(true),
        Verb::Evt | Verb::Ok => Err(Error::Protocol(format!(
            "{} is sent by the broker only",
            frame.verb
        ))),
    }
}

/// Answers `OK <pattern>` with `{"ack": n}` when the request asked for it.
fn acknowledge(conn: &Conn, pattern: &Pattern, body: &[u8]) -> Result<bool, Error> {
    if let Some(n) = ack_of(body) {
        let mut out = Vec::new();
        let ack_body = json!({ "ack": n }).to_string();
        wire::encode(Verb::Ok, pattern.as_str(), ack_body.as_bytes(), &mut out)?;
        conn.push_control(out);
    }
    Ok(false)
}

async fn write_loop(conn: Arc<Conn>, mut wr: OwnedWriteHalf) {
    let mut batch = Vec::new();
    let mut out = Vec::with_capacity(READ_CHUNK);
    loop {
        let more = std::future::poll_fn(|cx| conn.queue.poll_drain(cx, &mut batch)).await;
        if !more {
            break;
        }
        let result = if let [one] = batch.as_slice() {
            wr.write_all(&one.frame).await
        } else {
            out.clear();
            for item in &batch {
                out.extend_from_slice(&item.frame);
            }
            wr.write_all(&out).await
        };
        batch.clear();
        if let Err(e) = result {
            debug!(conn = conn.id, error = %e, "Bus write failed");
            conn.cancel.cancel();
            break;
        }
    }
    let _ = wr.shutdown().await;
}

async fn heartbeat(handle: BrokerHandle, period: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let mut envelope =
            Envelope::new(SYSTEM_BUS_HEALTH, TYPE_BUS_HEALTH, handle.health_payload());
        envelope.rts = Some(envelope.ts);
        if let Err(e) = handle.publish(&envelope) {
            warn!(error = %e, "Bus health event not sent");
        }
    }
}
