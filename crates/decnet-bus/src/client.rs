//! The socket client: one lazily opened connection to the broker that reconnects with backoff.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use decnet_wire::bus::{self as wire, Decoded, Frame, Verb};
use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, oneshot, watch};
use tracing::{debug, info, warn};

use crate::Error;
use crate::bus::{Bus, BusStats};
use crate::envelope::{Envelope, now_ts};
use crate::queue::{DEFAULT_QUEUE_CAPACITY, Queue, Subscription};
use crate::topic::{Pattern, TopicCache, matches};

/// Largest amount of published frames waiting for the socket before new ones are dropped.
pub const MAX_PENDING_BYTES: usize = 8 * 1024 * 1024;
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 * 1024;
/// Most received events handed to the subscriptions at once.
const MAX_DELIVERY_BATCH: usize = 256;
/// A batch of published frames smaller than this waits a few scheduler turns for more.
const COALESCE_BYTES: usize = 64 * 1024;
/// Scheduler turns a small batch waits at most.
const MAX_COALESCE_TURNS: usize = 16;
/// How long a started frame from the broker may take to arrive completely.
const FRAME_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How a [`SocketClient`] behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Name sent in HELLO (shown in broker statistics).
    pub name: String,
    /// Capacity of each subscription queue (drop-oldest beyond).
    pub queue_capacity: usize,
    /// Limit on one connection attempt.
    pub connect_timeout: Duration,
    /// How long `subscribe` waits for the broker's `OK`.
    pub ack_timeout: Duration,
    /// First delay between reconnection attempts; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest delay between reconnection attempts.
    pub backoff_max: Duration,
    /// How long `close` waits to flush what was published.
    pub close_timeout: Duration,
}

impl ClientOptions {
    /// Defaults for a client called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            connect_timeout: Duration::from_secs(2),
            ack_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_secs(5),
            close_timeout: Duration::from_secs(2),
        }
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self::new(format!("decnet-bus-client[{}]", std::process::id()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing tried yet.
    Idle,
    /// The first connection attempt is running.
    Starting,
    /// Connected.
    Up,
    /// Not connected; the manager retries with backoff.
    Down,
    /// Closed for good.
    Closed,
}

type SubQueue = Arc<Queue<Envelope>>;
type Subs = HashMap<Pattern, Vec<(u64, SubQueue)>>;

/// Outbound state of the current connection.
struct Outbox {
    /// Frames waiting for the writer.
    out: Vec<u8>,
    /// True while a connection is up (frames appended now will be written on it).
    connected: bool,
    /// True once close() queued the final BYE.
    closing: bool,
    /// Waiting `subscribe` calls by ack number.
    acks: HashMap<u64, oneshot::Sender<()>>,
    next_id: u64,
}

struct Inner {
    path: PathBuf,
    opts: ClientOptions,
    /// Local subscriptions. Lock order: `subs` before `outbox`.
    subs: RwLock<Subs>,
    outbox: Mutex<Outbox>,
    writer_wake: Notify,
    manager_wake: Notify,
    phase: watch::Sender<Phase>,
    started: AtomicBool,
    closed: AtomicBool,
    warned: AtomicBool,
    published: AtomicU64,
    dropped: AtomicU64,
    reconnects: AtomicU64,
}

impl Inner {
    fn subs_read(&self) -> RwLockReadGuard<'_, Subs> {
        // Mutations are single map operations; a poisoned lock still holds a valid map.
        self.subs.read().unwrap_or_else(|e| e.into_inner())
    }
    fn subs_write(&self) -> RwLockWriteGuard<'_, Subs> {
        self.subs.write().unwrap_or_else(|e| e.into_inner())
    }
    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_phase(&self, phase: Phase) {
        self.phase.send_replace(phase);
    }

    fn drop_publish(&self, why: &str) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if self.warned.swap(true, Ordering::Relaxed) {
            debug!(socket = %self.path.display(), why, "Bus publish dropped");
        } else {
            warn!(socket = %self.path.display(), why, "Bus publish dropped");
        }
    }

    /// Appends a frame to the outbox if connected; returns whether it was queued.
    fn queue_frame(out: &mut Outbox, verb: Verb, args: &str, body: &[u8]) -> Result<bool, Error> {
        if !out.connected || out.closing {
            return Ok(false);
        }
        wire::encode(verb, args, body, &mut out.out)?;
        Ok(true)
    }

    /// Ends every local subscription (bus closed).
    fn close_subscriptions(&self) {
        for queues in self.subs_read().values() {
            for (_, q) in queues {
                q.close();
            }
        }
    }
}

/// A [`Bus`] over the broker's UNIX socket.
///
/// One socket and one reader per client, opened lazily by the first `connect`, `publish`
/// or `subscribe` (concurrent first calls share it). After the broker goes away the client
/// reconnects with exponential backoff and re-subscribes every pattern; events published
/// while it is down are lost (the bus is at-most-once). Its own publishes that cannot be
/// sent are dropped and counted (one WARNING per outage, then DEBUG).
pub struct SocketClient {
    inner: Arc<Inner>,
}

impl SocketClient {
    /// A client for the broker at `path`; nothing is opened yet.
    pub fn new(path: impl Into<PathBuf>, opts: ClientOptions) -> Self {
        let (phase, _) = watch::channel(Phase::Idle);
        Self {
            inner: Arc::new(Inner {
                path: path.into(),
                opts,
                subs: RwLock::new(HashMap::new()),
                outbox: Mutex::new(Outbox {
                    out: Vec::new(),
                    connected: false,
                    closing: false,
                    acks: HashMap::new(),
                    next_id: 1,
                }),
                writer_wake: Notify::new(),
                manager_wake: Notify::new(),
                phase,
                started: AtomicBool::new(false),
                closed: AtomicBool::new(false),
                warned: AtomicBool::new(false),
                published: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                reconnects: AtomicU64::new(0),
            }),
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// True while connected to the broker.
    pub fn is_connected(&self) -> bool {
        *self.inner.phase.borrow() == Phase::Up
    }

    /// Starts the connection manager (once) and waits for the first attempt's outcome.
    async fn ensure_started(&self) {
        if matches!(
            *self.inner.phase.borrow(),
            Phase::Up | Phase::Down | Phase::Closed
        ) {
            return;
        }
        if !self.inner.started.swap(true, Ordering::AcqRel) {
            self.inner.set_phase(Phase::Starting);
            tokio::spawn(manage(self.inner.clone()));
        }
        let mut rx = self.inner.phase.subscribe();
        let wait = rx.wait_for(|p| !matches!(p, Phase::Idle | Phase::Starting));
        let _ = tokio::time::timeout(self.inner.opts.connect_timeout * 2, wait).await;
    }

    /// Connects now (if not yet connected) and waits for the connection.
    ///
    /// # Errors
    /// [`Error::Closed`] after close; [`Error::NotConnected`] when the broker cannot be
    /// reached within the connect timeout.
    pub async fn connect(&self) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.ensure_started().await;
        let mut rx = self.inner.phase.subscribe();
        let mut phase = *rx.borrow_and_update();
        if phase == Phase::Down {
            // Skip the backoff: try once more now and report that attempt's outcome.
            self.inner.manager_wake.notify_one();
            let next = async {
                loop {
                    if rx.changed().await.is_err() {
                        return Phase::Closed;
                    }
                    let p = *rx.borrow_and_update();
                    if p != Phase::Starting {
                        return p;
                    }
                }
            };
            phase = tokio::time::timeout(self.inner.opts.connect_timeout * 2, next)
                .await
                .unwrap_or(Phase::Down);
        }
        match phase {
            Phase::Up => Ok(()),
            Phase::Closed => Err(Error::Closed),
            _ => Err(self.not_connected()),
        }
    }

    fn not_connected(&self) -> Error {
        Error::NotConnected(self.inner.path.display().to_string())
    }

    /// Marks the client closed and queues BYE; the manager finishes the rest.
    fn begin_close(&self) -> bool {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return false;
        }
        {
            let mut out = self.inner.outbox();
            if out.connected && !out.closing {
                let _ = Inner::queue_frame(&mut out, Verb::Bye, "", b"");
            }
            out.closing = true;
        }
        self.inner.writer_wake.notify_one();
        self.inner.manager_wake.notify_one();
        true
    }

    async fn do_publish(&self, envelope: Envelope) -> Result<(), Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.ensure_started().await;
        let mut out = self.inner.outbox();
        if !out.connected || out.closing {
            drop(out);
            self.inner.drop_publish("not connected");
            return Ok(());
        }
        if out.out.len() > MAX_PENDING_BYTES {
            drop(out);
            self.inner.drop_publish("outbound buffer full");
            return Ok(());
        }
        // Serialised straight into the outbound buffer: no intermediate body copy. Only
        // publishers take this lock, so holding it while serialising stalls no reader.
        // The writer takes the whole buffer each time it wakes, so it needs waking only
        // when this frame is the first one since: one wake-up per batch, not per event.
        let first = out.out.is_empty();
        let frame = wire::begin(Verb::Pub, envelope.topic.as_str(), &mut out.out)?;
        envelope.write_json(&mut out.out);
        wire::finish(frame, &mut out.out)?;
        drop(out);
        self.inner.published.fetch_add(1, Ordering::Relaxed);
        if first {
            self.inner.writer_wake.notify_one();
        }
        Ok(())
    }

    async fn do_subscribe(&self, pattern: Pattern) -> Result<Subscription, Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.ensure_started().await;
        let queue: SubQueue = Arc::new(Queue::new(self.inner.opts.queue_capacity));
        let (tx, rx) = oneshot::channel();
        let (sub_id, ack) = {
            let mut subs = self.inner.subs_write();
            let mut out = self.inner.outbox();
            if !out.connected || out.closing {
                return Err(if out.closing {
                    Error::Closed
                } else {
                    self.not_connected()
                });
            }
            let sub_id = out.next_id;
            let ack = sub_id + 1;
            out.next_id += 2;
            let body = format!("{{\"ack\":{ack}}}");
            Inner::queue_frame(&mut out, Verb::Sub, pattern.as_str(), body.as_bytes())?;
            out.acks.insert(ack, tx);
            subs.entry(pattern.clone())
                .or_default()
                .push((sub_id, queue.clone()));
            (sub_id, ack)
        };
        self.inner.writer_wake.notify_one();
        let weak = Arc::downgrade(&self.inner);
        let unsub_pattern = pattern.clone();
        let subscription = Subscription::new(
            pattern.clone(),
            queue,
            Some(Box::new(move || unsubscribe(&weak, &unsub_pattern, sub_id))),
        );
        match tokio::time::timeout(self.inner.opts.ack_timeout, rx).await {
            Ok(Ok(())) => Ok(subscription),
            Ok(Err(_)) => Err(self.not_connected()),
            Err(_) => {
                self.inner.outbox().acks.remove(&ack);
                Err(Error::AckTimeout {
                    pattern: pattern.to_string(),
                    timeout: self.inner.opts.ack_timeout,
                })
            }
        }
    }

    async fn do_close(&self) {
        self.begin_close();
        let mut rx = self.inner.phase.subscribe();
        if self.inner.started.load(Ordering::Acquire) {
            let wait = rx.wait_for(|p| *p == Phase::Closed);
            let _ = tokio::time::timeout(self.inner.opts.close_timeout, wait).await;
        }
        self.inner.set_phase(Phase::Closed);
        self.inner.close_subscriptions();
    }
}

/// Drops one local subscription; sends UNSUB when it was the last one on its pattern.
fn unsubscribe(weak: &Weak<Inner>, pattern: &Pattern, sub_id: u64) {
    let Some(inner) = weak.upgrade() else {
        return;
    };
    let mut subs = inner.subs_write();
    let Some(list) = subs.get_mut(pattern) else {
        return;
    };
    list.retain(|(id, _)| *id != sub_id);
    if list.is_empty() {
        subs.remove(pattern);
        let mut out = inner.outbox();
        let _ = Inner::queue_frame(&mut out, Verb::Unsub, pattern.as_str(), b"");
        drop(out);
        inner.writer_wake.notify_one();
    }
}

impl Bus for SocketClient {
    fn name(&self) -> &str {
        &self.inner.opts.name
    }

    fn publish(&self, envelope: Envelope) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(self.do_publish(envelope))
    }

    fn subscribe(&self, pattern: Pattern) -> BoxFuture<'_, Result<Subscription, Error>> {
        Box::pin(self.do_subscribe(pattern))
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.do_close())
    }

    fn stats(&self) -> BusStats {
        BusStats {
            published: self.inner.published.load(Ordering::Relaxed),
            dropped: self.inner.dropped.load(Ordering::Relaxed),
            reconnects: self.inner.reconnects.load(Ordering::Relaxed),
        }
    }
}

impl Drop for SocketClient {
    fn drop(&mut self) {
        if self.begin_close() && !self.inner.started.load(Ordering::Acquire) {
            self.inner.set_phase(Phase::Closed);
        }
        self.inner.close_subscriptions();
    }
}

/// The connection manager: connect, serve, and reconnect with backoff until closed.
async fn manage(inner: Arc<Inner>) {
    let mut backoff = inner.opts.backoff_min;
    let mut ever_connected = false;
    loop {
        if inner.closed.load(Ordering::Acquire) {
            break;
        }
        let attempt =
            tokio::time::timeout(inner.opts.connect_timeout, UnixStream::connect(&inner.path))
                .await;
        match attempt {
            Ok(Ok(stream)) => {
                backoff = inner.opts.backoff_min;
                if ever_connected {
                    inner.reconnects.fetch_add(1, Ordering::Relaxed);
                    info!(socket = %inner.path.display(), "Bus reconnected");
                }
                ever_connected = true;
                serve(&inner, stream).await;
                if inner.closed.load(Ordering::Acquire) {
                    break;
                }
                warn!(socket = %inner.path.display(), "Bus connection lost; reconnecting");
            }
            Ok(Err(e)) => {
                debug!(socket = %inner.path.display(), error = %e, "Bus connect failed");
            }
            Err(_) => debug!(socket = %inner.path.display(), "Bus connect timed out"),
        }
        inner.set_phase(Phase::Down);
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = inner.manager_wake.notified() => {}
        }
        backoff = (backoff * 2).min(inner.opts.backoff_max);
    }
    inner.set_phase(Phase::Closed);
    inner.close_subscriptions();
}

/// Runs one connection: HELLO, re-SUB of every pattern, then reader and writer until
/// either ends.
async fn serve(inner: &Arc<Inner>, stream: UnixStream) {
    let (rd, wr) = stream.into_split();
    {
        let subs = inner.subs_read();
        let mut out = inner.outbox();
        out.out.clear();
        out.connected = true;
        let hello = wire::encode(Verb::Hello, &inner.opts.name, b"", &mut out.out);
        if hello.is_err() {
            // A name with a line break or over the header limit: announce none.
            let _ = wire::encode(Verb::Hello, "", b"", &mut out.out);
        }
        for pattern in subs.keys() {
            let _ = wire::encode(Verb::Sub, pattern.as_str(), b"", &mut out.out);
        }
        if out.closing {
            let _ = wire::encode(Verb::Bye, "", b"", &mut out.out);
        }
    }
    inner.warned.store(false, Ordering::Relaxed);
    inner.set_phase(Phase::Up);
    inner.writer_wake.notify_one();
    tokio::select! {
        r = read_loop(inner, rd) => {
            if let Err(e) = r {
                warn!(socket = %inner.path.display(), error = %e, "Bus connection error");
            }
        }
        () = write_loop(inner, wr) => {}
    }
    let mut out = inner.outbox();
    out.connected = false;
    out.out.clear();
    // Dropping the senders tells waiting subscribe calls the connection is gone.
    out.acks.clear();
}

async fn write_loop(inner: &Inner, mut wr: OwnedWriteHalf) {
    let mut batch = Vec::with_capacity(READ_CHUNK);
    loop {
        let closing = {
            let mut out = inner.outbox();
            std::mem::swap(&mut out.out, &mut batch);
            out.closing
        };
        if batch.is_empty() {
            if closing {
                let _ = wr.shutdown().await;
                return;
            }
            inner.writer_wake.notified().await;
            continue;
        }
        // A busy publisher adds frames while this task waits its turn: let a small batch
        // grow for a few scheduler turns (one system call and one wake-up of the broker
        // per batch), and stop as soon as a turn brought nothing (an idle publisher's
        // event is not held back).
        for _ in 0..MAX_COALESCE_TURNS {
            if batch.len() >= COALESCE_BYTES {
                break;
            }
            tokio::task::yield_now().await;
            let mut out = inner.outbox();
            if out.out.is_empty() {
                break;
            }
            batch.extend_from_slice(&out.out);
            out.out.clear();
        }
        if let Err(e) = wr.write_all(&batch).await {
            debug!(error = %e, "Bus write failed");
            return;
        }
        batch.clear();
    }
}

#[derive(Deserialize)]
struct Ack {
    ack: u64,
}

async fn read_loop(inner: &Inner, mut rd: OwnedReadHalf) -> Result<(), Error> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut topics = TopicCache::new();
    let mut batch = Vec::with_capacity(MAX_DELIVERY_BATCH);
    // Receive time, read once per batch of frames rather than per frame.
    let mut now = now_ts();
    loop {
        let outcome = take_frames(inner, &mut topics, &mut buf, now, &mut batch);
        // What arrived before a BYE, an error or the end of this read is delivered first.
        deliver(inner, &mut batch);
        if outcome? {
            debug!("Bus broker said BYE");
            return Ok(());
        }
        let partial = !buf.is_empty();
        let read = rd.read_buf(&mut buf);
        let n = if partial {
            match tokio::time::timeout(FRAME_READ_TIMEOUT, read).await {
                Ok(n) => n,
                Err(_) => return Err(Error::Protocol("frame not completed in time".into())),
            }
        } else {
            read.await
        };
        match n.map_err(Error::Connection)? {
            0 => {
                wire::check_eof(&buf)?;
                return Ok(());
            }
            _ => now = now_ts(),
        }
    }
}

/// Handles every complete frame at the front of `buf`, collecting events in `batch`
/// (delivered whenever it holds [`MAX_DELIVERY_BATCH`]); leaves a partial frame in `buf`
/// with room reserved for it. Returns true on BYE.
fn take_frames(
    inner: &Inner,
    topics: &mut TopicCache,
    buf: &mut BytesMut,
    now: f64,
    batch: &mut Vec<Envelope>,
) -> Result<bool, Error> {
    loop {
        // EVT bodies are validated by `Envelope::from_wire`; others in `on_frame`.
        let (consumed, bye) = match wire::decode_unchecked(buf)? {
            Decoded::Frame { frame, consumed } => {
                (consumed, on_frame(inner, topics, frame, now, batch)?)
            }
            Decoded::NeedMore { min_len } => {
                buf.reserve(min_len.saturating_sub(buf.len()).max(READ_CHUNK));
                return Ok(false);
            }
        };
        buf.advance(consumed);
        if bye {
            return Ok(true);
        }
        if batch.len() >= MAX_DELIVERY_BATCH {
            deliver(inner, batch);
        }
    }
}

/// Hands the events of `batch` to every matching subscription, in order: one lock and at
/// most one wake-up per subscription per batch rather than per event. Leaves `batch` empty.
fn deliver(inner: &Inner, batch: &mut Vec<Envelope>) {
    if batch.is_empty() {
        return;
    }
    let subs = inner.subs_read();
    let wanted = |p: &Pattern| batch.iter().any(|e| matches(p.as_str(), e.topic.as_str()));
    let mut targets = subs
        .iter()
        .filter(|(p, _)| wanted(p))
        .flat_map(|(p, qs)| qs.iter().map(move |(_, q)| (p, q)))
        .peekable();
    while let Some((pattern, queue)) = targets.next() {
        let mine = |e: &Envelope| matches(pattern.as_str(), e.topic.as_str());
        if targets.peek().is_none() {
            // The last receiver takes the events themselves rather than copies.
            queue.push_all(batch.drain(..).filter(|e| mine(e)));
            break;
        }
        queue.push_all(batch.iter().filter(|e| mine(e)).cloned());
    }
    batch.clear();
}

/// Handles one frame from the broker, adding an event to `batch`; returns true on BYE.
fn on_frame(
    inner: &Inner,
    topics: &mut TopicCache,
    frame: Frame<'_>,
    now: f64,
    batch: &mut Vec<Envelope>,
) -> Result<bool, Error> {
    if frame.verb != Verb::Evt {
        wire::check_body(frame.body)?;
    }
    match frame.verb {
        Verb::Evt => {
            let topic = topics.get(frame.args)?;
            batch.push(Envelope::from_wire(topic, frame.body, now)?);
            Ok(false)
        }
        Verb::Ok => {
            if let Ok(Ack { ack }) = serde_json::from_slice::<Ack>(frame.body)
                && let Some(tx) = inner.outbox().acks.remove(&ack)
            {
                let _ = tx.send(());
            }
            Ok(false)
        }
        Verb::Bye => Ok(true),
        other => {
            warn!(verb = %other, "Bus broker sent an unexpected verb; ignored");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evt(topic: &str, n: u64, out: &mut Vec<u8>) {
        let mut e = Envelope::new(
            crate::Topic::new(topic).unwrap(),
            "t",
            crate::Payload::from_json(&format!("{{\"n\":{n}}}")).unwrap(),
        );
        e.rts = Some(1.5);
        wire::encode(Verb::Evt, topic, &e.to_json(), out).unwrap();
    }

    fn numbers(q: &SubQueue) -> Vec<u64> {
        std::iter::from_fn(|| q.try_pop())
            .map(|e| e.payload.to_map().unwrap()["n"].as_u64().unwrap())
            .collect()
    }

    /// A client with subscriptions on `a.>` and `a.b` (queues returned), never connected.
    fn client_with_subs() -> (SocketClient, SubQueue, SubQueue) {
        let c = SocketClient::new("/nonexistent", ClientOptions::new("t"));
        let wide: SubQueue = Arc::new(Queue::new(64));
        let narrow: SubQueue = Arc::new(Queue::new(64));
        {
            let mut subs = c.inner.subs_write();
            subs.insert(Pattern::new("a.>").unwrap(), vec![(1, wide.clone())]);
            subs.insert(Pattern::new("a.b").unwrap(), vec![(3, narrow.clone())]);
        }
        (c, wide, narrow)
    }

    #[test]
    fn a_batch_of_frames_split_at_every_offset_is_delivered_whole_and_in_order() {
        let mut bytes = Vec::new();
        evt("a.b", 1, &mut bytes);
        evt("a.c", 2, &mut bytes);
        wire::encode(Verb::Ok, "", br#"{"ack":99}"#, &mut bytes).unwrap();
        evt("z.z", 3, &mut bytes);
        evt("a.b", 4, &mut bytes);
        wire::encode(Verb::Bye, "", b"", &mut bytes).unwrap();
        for split in 0..=bytes.len() {
            let (c, wide, narrow) = client_with_subs();
            let (tx, mut rx) = oneshot::channel();
            c.inner.outbox().acks.insert(99, tx);
            let mut topics = TopicCache::new();
            let mut batch = Vec::new();
            let mut buf = BytesMut::from(&bytes[..split]);
            let first = take_frames(&c.inner, &mut topics, &mut buf, 0.0, &mut batch).unwrap();
            deliver(&c.inner, &mut batch);
            // The BYE is seen once its last byte has arrived, not before.
            assert_eq!(first, split == bytes.len(), "split {split}");
            if !first {
                buf.extend_from_slice(&bytes[split..]);
                let second = take_frames(&c.inner, &mut topics, &mut buf, 0.0, &mut batch).unwrap();
                deliver(&c.inner, &mut batch);
                assert!(second, "BYE seen (split {split})");
            }
            assert!(buf.is_empty() && batch.is_empty());
            assert_eq!(numbers(&wide), vec![1, 2, 4], "split {split}");
            assert_eq!(numbers(&narrow), vec![1, 4], "split {split}");
            assert!(rx.try_recv().is_ok(), "ack delivered (split {split})");
        }
    }

    #[test]
    fn a_large_batch_is_delivered_in_bounded_slices_with_drop_oldest_counted() {
        let (c, wide, narrow) = client_with_subs();
        let mut bytes = Vec::new();
        let total = 3 * MAX_DELIVERY_BATCH as u64 + 5;
        for n in 0..total {
            evt("a.b", n, &mut bytes);
        }
        let mut topics = TopicCache::new();
        let mut batch = Vec::new();
        let mut buf = BytesMut::from(&bytes[..]);
        assert!(!take_frames(&c.inner, &mut topics, &mut buf, 0.0, &mut batch).unwrap());
        assert!(batch.len() < MAX_DELIVERY_BATCH, "delivered as it went");
        deliver(&c.inner, &mut batch);
        for q in [&wide, &narrow] {
            let stats = q.stats();
            assert_eq!(stats.seq, total);
            assert_eq!(stats.drops, total - 64);
            assert_eq!(numbers(q), ((total - 64)..total).collect::<Vec<_>>());
        }
    }

    #[test]
    fn events_before_a_bad_frame_are_still_delivered() {
        let (c, wide, _) = client_with_subs();
        let mut bytes = Vec::new();
        evt("a.x", 7, &mut bytes);
        wire::encode(Verb::Evt, "a.x", b"[1]", &mut bytes).unwrap();
        let mut topics = TopicCache::new();
        let mut batch = Vec::new();
        let mut buf = BytesMut::from(&bytes[..]);
        let outcome = take_frames(&c.inner, &mut topics, &mut buf, 0.0, &mut batch);
        deliver(&c.inner, &mut batch);
        assert!(matches!(outcome, Err(Error::Envelope(_))), "{outcome:?}");
        assert_eq!(numbers(&wide), vec![7]);
    }
}
