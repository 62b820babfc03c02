//! The collector: follows every DECNET-managed container's output and commits it, in
//! batches, to an [`EventSink`], resuming after a restart from a cursor file.
//!
//! How it works:
//! - **Which containers.** Every container labelled `decnet.managed=true` (any project):
//!   listed at start and every [`CollectorOptions::rescan_interval`], and picked up at
//!   once from the engine's start events. One task follows one container, at most
//!   [`CollectorOptions::max_containers`] at a time (the rest wait for a free slot and
//!   the next rescan). A stopped container is read to its end once, so the lines it
//!   wrote before dying are not lost; a destroyed one's task ends.
//! - **Attribution.** Decky and service come from the container's labels
//!   (`decnet.decky`, `decnet.service`), never from the line: a line claiming another
//!   decky's HOSTNAME or APP-NAME keeps that claim only inside its raw text. Base
//!   containers (the ones holding a decky's network namespace, empty `decnet.service`)
//!   are collected too, under the service [`BASE_SERVICE`]: they print nothing while
//!   healthy, and the one line they do print — why `decnet-decky hold` failed, on
//!   stderr — is worth keeping (SV-7). Containers without a `decnet.decky` label are
//!   skipped.
//! - **Long lines** are cut (and marked) at [`MAX_RAW_LINE`], so that a worker's
//!   forwarding envelope always fits around them: cut, never dropped.
//! - **Batches.** Up to [`CollectorOptions::max_batch`] events or
//!   [`CollectorOptions::batch_window`] after the first, committed with [`Origin::Local`].
//!   A failed commit (spool full, database down, anything) is retried with backoff,
//!   the same batch, forever: nothing is dropped. Followers wait meanwhile (a bounded
//!   queue), and Docker keeps the lines.
//! - **Cursors.** Per container: the newest Docker timestamp handed on and the keys of
//!   the lines of the last [`CURSOR_WINDOW_NANOS`] before it (at most
//!   [`MAX_CURSOR_KEYS`]). Written to the cursor file (temp file, fsync, rename, fsync
//!   of the directory) only after the sink's commit returned `Ok`, by a writer of its
//!   own so commits do not wait for the fsync (writes that fall behind coalesce into
//!   the latest committed state; a crash between commit and write only means lines the
//!   sink already holds are offered again, and it ignores them by key). Docker's `since`
//!   counts whole seconds, so a follower asks from the second of its window's start and
//!   skips what the cursor already covers: a restart neither loses nor repeats lines,
//!   even lines of the same nanosecond, and even when stdout and stderr lines were
//!   stored slightly out of timestamp order.
//! - **Reconnects.** A log stream that ends while the container still runs is reopened
//!   from the in-memory cursor; the event stream is reopened with backoff, followed by a
//!   rescan for whatever happened meanwhile.
//! - **Stop.** On the shutdown token, followers stop, the last batch is committed (one
//!   attempt more; if the sink still fails its lines are read again at the next start,
//!   since the cursor did not move), and [`run`] returns a [`CollectorSummary`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use decnet_runtime::engine::{Engine, ObservedContainer};
use decnet_runtime::logs::{ContainerAction, ContainerEvents, cut_to};
use decnet_store::Timestamp;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{CollectedEvent, EventSink, MAX_RAW_LINE, Origin};

/// The cursor file's name under the data directory.
pub const CURSOR_FILE: &str = "collector-cursors.json";
/// The service name of a base container's lines.
pub const BASE_SERVICE: &str = "base";
/// How far back before a container's newest handed-on line its cursor keeps keys.
pub const CURSOR_WINDOW_NANOS: i128 = 1_000_000_000;
/// Most keys one container's cursor keeps.
pub const MAX_CURSOR_KEYS: usize = 256;
/// Largest cursor file read at start.
pub const MAX_CURSOR_FILE_BYTES: u64 = 64 * 1024 * 1024;
/// Largest number of containers in a cursor file.
pub const MAX_CURSOR_CONTAINERS: usize = 65_536;
/// Default cap on followed containers.
pub const DEFAULT_MAX_CONTAINERS: usize = 1024;
/// Default batch size.
pub const DEFAULT_MAX_BATCH: usize = 1000;
/// Cursor file format version.
const CURSOR_VERSION: u32 = 1;
/// Commit attempts after the shutdown token fired before the last batch is left for
/// the next start.
const SHUTDOWN_ATTEMPTS: u32 = 2;

/// Tunables of [`run`].
#[derive(Debug, Clone)]
pub struct CollectorOptions {
    /// Containers followed at once.
    pub max_containers: usize,
    /// Events per commit.
    pub max_batch: usize,
    /// Longest wait after a batch's first event before it is committed.
    pub batch_window: Duration,
    /// Interval of the full container listing.
    pub rescan_interval: Duration,
    /// First delay after a failed commit, a dropped stream or an engine error; doubled
    /// each time up to [`CollectorOptions::retry_max`].
    pub retry_initial: Duration,
    /// Longest such delay.
    pub retry_max: Duration,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        CollectorOptions {
            max_containers: DEFAULT_MAX_CONTAINERS,
            max_batch: DEFAULT_MAX_BATCH,
            batch_window: Duration::from_millis(100),
            rescan_interval: Duration::from_secs(30),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(5),
        }
    }
}

/// Why the collector could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// The cursor file could not be read.
    #[error("collector cursor file {}", path.display())]
    CursorRead {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The cursor file is not what the collector writes.
    #[error("collector cursor file {}: {reason}", path.display())]
    CursorFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CollectorSummary {
    /// Events committed to the sink.
    pub committed: u64,
    /// Commits that failed (and were retried).
    pub failed_commits: u64,
    /// Follower tasks started.
    pub followers_started: u64,
    /// Events read but not committed at shutdown because the sink kept failing (they
    /// are read again at the next start).
    pub left_uncommitted: u64,
}

/// A live view of a running collector, for health reporting and tests.
#[derive(Debug, Clone, Default)]
pub struct CollectorStats {
    inner: Arc<Mutex<StatsInner>>,
}

#[derive(Debug, Default)]
struct StatsInner {
    followed: BTreeSet<String>,
    summary: CollectorSummary,
    over_cap: u64,
}

impl CollectorStats {
    fn lock(&self) -> MutexGuard<'_, StatsInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ids of the containers followed right now.
    pub fn followed(&self) -> BTreeSet<String> {
        self.lock().followed.clone()
    }

    /// Counters so far.
    pub fn summary(&self) -> CollectorSummary {
        self.lock().summary.clone()
    }

    /// Times a container was not followed because the cap was reached.
    pub fn over_cap(&self) -> u64 {
        self.lock().over_cap
    }

    /// The collector's fields of its health beat: containers followed, events committed,
    /// failed commits, followers started, containers refused at the cap.
    pub fn health_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let g = self.lock();
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("followed", g.followed.len() as u64),
            ("committed", g.summary.committed),
            ("failed_commits", g.summary.failed_commits),
            ("followers_started", g.summary.followers_started),
            ("over_cap", g.over_cap),
        ] {
            m.insert(k.to_owned(), serde_json::Value::from(v));
        }
        m
    }
}

/// The collector's worker name on the bus: it beats on `system.collector.health` and
/// stops on `{"action": "stop"}` at `system.collector.control`.
pub const WORKER_NAME: &str = "collector";

/// How [`Collector::run_reported`] reports.
#[derive(Clone)]
pub struct Reporting {
    /// The bus (none: no beats, no control).
    pub bus: Option<Arc<dyn decnet_bus::Bus>>,
    /// Period of the health beat.
    pub interval: Duration,
    /// Fields added to every beat (mode, pid…), under the collector's own.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Tell systemd `READY=1` once running (harmless without `NOTIFY_SOCKET`).
    pub notify_systemd: bool,
}

/// One container's position: what has been handed on (or, in the file, committed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// Newest Docker timestamp handed on (ns).
    ts: i128,
    /// Lines older than this are done even when their key was dropped (raised only when
    /// [`MAX_CURSOR_KEYS`] forced keys out).
    floor: i128,
    /// (timestamp, key) of the lines handed on within the window, oldest first.
    keys: VecDeque<(i128, String)>,
}

impl Cursor {
    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.ts == 0
    }

    /// Everything before this is done.
    fn low(&self) -> i128 {
        if self.is_empty() {
            return i128::MIN;
        }
        self.floor.max(self.ts.saturating_sub(CURSOR_WINDOW_NANOS))
    }

    /// The `since` to ask Docker for (whole seconds, rounded down).
    fn since_secs(&self) -> i64 {
        if self.is_empty() {
            return 0;
        }
        let secs = self.low().div_euclid(1_000_000_000).max(0);
        i64::try_from(secs).unwrap_or(i64::MAX)
    }

    /// True when the line was not handed on yet.
    fn admits(&self, ts: i128, key: &str) -> bool {
        if ts < self.low() {
            return false;
        }
        // Every remembered key is at or before `self.ts`.
        ts > self.ts || !self.keys.iter().any(|(_, k)| k == key)
    }

    /// Records a line handed on. Keys leave from the front (the oldest in arrival order,
    /// which is timestamp order but for the rare stdout/stderr reordering), so this is
    /// O(1) per line.
    fn advance(&mut self, ts: i128, key: String) {
        self.ts = self.ts.max(ts);
        self.keys.push_back((ts, key));
        let horizon = self.ts.saturating_sub(CURSOR_WINDOW_NANOS);
        while self.keys.front().is_some_and(|(t, _)| *t < horizon) {
            self.keys.pop_front();
        }
        while self.keys.len() > MAX_CURSOR_KEYS {
            // Lines before the dropped key count as done from now on (a line at its
            // very timestamp may come once more: a duplicate the sink ignores, never a
            // loss).
            if let Some((t, _)) = self.keys.pop_front() {
                self.floor = self.floor.max(t);
            }
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CursorFile {
    version: u32,
    containers: BTreeMap<String, Cursor>,
}

fn load_cursors(path: &Path) -> Result<BTreeMap<String, Cursor>, CollectorError> {
    use std::io::Read as _;
    let read_err = |source| CollectorError::CursorRead {
        path: path.to_path_buf(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(read_err(e)),
    };
    let mut text = Vec::new();
    file.take(MAX_CURSOR_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(read_err)?;
    let bad = |reason: String| CollectorError::CursorFormat {
        path: path.to_path_buf(),
        reason,
    };
    if text.len() as u64 > MAX_CURSOR_FILE_BYTES {
        return Err(bad(format!("larger than {MAX_CURSOR_FILE_BYTES} bytes")));
    }
    let parsed: CursorFile = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if parsed.version != CURSOR_VERSION {
        return Err(bad(format!("unknown version {}", parsed.version)));
    }
    if parsed.containers.len() > MAX_CURSOR_CONTAINERS {
        return Err(bad(format!("more than {MAX_CURSOR_CONTAINERS} containers")));
    }
    let mut containers = parsed.containers;
    for c in containers.values_mut() {
        // Bounded however the file was edited.
        while c.keys.len() > MAX_CURSOR_KEYS {
            if let Some((t, _)) = c.keys.pop_front() {
                c.floor = c.floor.max(t);
            }
        }
    }
    Ok(containers)
}

/// Writes `text` to `path` atomically (creating its directory when missing): a
/// temporary file next to it, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    std::fs::create_dir_all(dir)?;
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// A container to follow, with its attribution.
#[derive(Debug, Clone)]
struct Target {
    id: String,
    name: String,
    decky: String,
    service: String,
}

impl Target {
    fn of(c: &ObservedContainer) -> Option<Target> {
        let decky = c.decky().filter(|d| !d.is_empty())?;
        Some(Target {
            id: c.id.clone(),
            name: c.name.clone(),
            decky: decky.to_owned(),
            service: c.service().unwrap_or(BASE_SERVICE).to_owned(),
        })
    }
}

/// One line on its way to the batcher.
#[derive(Debug)]
struct Item {
    container: String,
    ts: i128,
    event: CollectedEvent,
}

/// What the tasks share.
struct Shared {
    engine: Arc<dyn Engine>,
    options: CollectorOptions,
    /// Committed positions (what the file holds).
    committed: Mutex<BTreeMap<String, Cursor>>,
    /// Positions handed on to the batcher, kept between one container's follower tasks.
    read: Mutex<HashMap<String, Cursor>>,
    stats: CollectorStats,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn start_cursor(&self, id: &str) -> Cursor {
        if let Some(c) = lock(&self.read).get(id) {
            return c.clone();
        }
        lock(&self.committed).get(id).cloned().unwrap_or_default()
    }

    fn backoff(&self, current: Duration) -> Duration {
        current.saturating_mul(2).min(self.options.retry_max)
    }
}

/// Sleeps `d`; false when the token fired first.
async fn pause(d: Duration, token: &CancellationToken) -> bool {
    tokio::select! {
        () = token.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

/// Why a follower ended.
enum Ended {
    /// The container no longer runs (or is gone): its output was read to the end.
    Stopped,
    /// Shutdown or destroy.
    Cancelled,
}

async fn follow(
    shared: Arc<Shared>,
    target: Target,
    tx: mpsc::Sender<Item>,
    token: CancellationToken,
) -> (String, Ended) {
    let mut cursor = shared.start_cursor(&target.id);
    let ended = follow_loop(&shared, &target, &tx, &token, &mut cursor).await;
    lock(&shared.read).insert(target.id.clone(), cursor);
    (target.id, ended)
}

async fn follow_loop(
    shared: &Shared,
    target: &Target,
    tx: &mpsc::Sender<Item>,
    token: &CancellationToken,
    cursor: &mut Cursor,
) -> Ended {
    let mut delay = shared.options.retry_initial;
    loop {
        let mut lines = shared.engine.follow_logs(&target.id, cursor.since_secs());
        let mut fresh = false;
        loop {
            let item = tokio::select! {
                () = token.cancelled() => return Ended::Cancelled,
                item = lines.next() => item,
            };
            let line = match item {
                Some(Ok(line)) => line,
                Some(Err(e)) => {
                    tracing::warn!(container = %target.name, error = %e, "Log stream failed");
                    break;
                }
                None => break,
            };
            let (text, _) = cut_to(line.line, MAX_RAW_LINE);
            let key = CollectedEvent::container_key(&target.id, line.ts_nanos, &text);
            if !cursor.admits(line.ts_nanos, &key) {
                continue;
            }
            let micros = i64::try_from(line.ts_nanos.div_euclid(1_000)).unwrap_or(i64::MAX);
            let item = Item {
                container: target.id.clone(),
                ts: line.ts_nanos,
                event: CollectedEvent {
                    key: key.clone(),
                    decky: target.decky.clone(),
                    service: target.service.clone(),
                    received: Timestamp::from_unix_micros(micros),
                    raw_line: text,
                    claimed: Default::default(),
                },
            };
            tokio::select! {
                () = token.cancelled() => return Ended::Cancelled,
                sent = tx.send(item) => if sent.is_err() { return Ended::Cancelled },
            }
            cursor.advance(line.ts_nanos, key);
            fresh = true;
        }
        drop(lines);
        if fresh {
            delay = shared.options.retry_initial;
        }
        // The stream ended: reopen it while the container runs.
        loop {
            match shared.engine.labelled(&target.id).await {
                Ok(Some(c)) if c.is_running() || c.state == "restarting" => break,
                Ok(_) => return Ended::Stopped,
                Err(e) => {
                    tracing::warn!(container = %target.name, error = %e, "Cannot inspect a followed container");
                    if !pause(delay, token).await {
                        return Ended::Cancelled;
                    }
                    delay = shared.backoff(delay);
                }
            }
        }
        if !pause(delay, token).await {
            return Ended::Cancelled;
        }
        delay = shared.backoff(delay);
    }
}

/// Commits batches and moves the committed cursors; each move bumps `written`, which
/// the persister turns into a file write.
async fn batcher(
    shared: Arc<Shared>,
    sink: Arc<dyn EventSink>,
    mut rx: mpsc::Receiver<Item>,
    written: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    let opts = shared.options.clone();
    let mut generation = 0_u64;
    while let Some(first) = rx.recv().await {
        let deadline = Instant::now() + opts.batch_window;
        let mut items = vec![first];
        while items.len() < opts.max_batch.max(1) {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(item)) => items.push(item),
                Ok(None) | Err(_) => break,
            }
        }
        let (marks, events): (Vec<(String, i128)>, Vec<CollectedEvent>) = items
            .into_iter()
            .map(|i| ((i.container, i.ts), i.event))
            .unzip();
        if !commit(&shared, sink.as_ref(), &events, &shutdown).await {
            // Later lines of the same containers must not be committed past this gap:
            // all of it is read again at the next start.
            let mut left = events.len() as u64;
            while rx.recv().await.is_some() {
                left += 1;
            }
            shared.stats.lock().summary.left_uncommitted += left;
            return;
        }
        {
            let mut committed = lock(&shared.committed);
            for ((container, ts), event) in marks.into_iter().zip(events) {
                committed
                    .entry(container)
                    .or_default()
                    .advance(ts, event.key);
            }
        }
        generation += 1;
        written.send_replace(generation);
    }
}

/// Writes the committed cursors whenever they moved, one write at a time: writes that
/// fall behind coalesce into the latest state (which only ever holds committed
/// positions). Returns once the batcher is gone and the last state is written.
async fn persister(shared: Arc<Shared>, cursor_path: PathBuf, mut written: watch::Receiver<u64>) {
    let mut saved = 0_u64;
    loop {
        let more = written.changed().await.is_ok();
        let current = *written.borrow_and_update();
        if current != saved {
            let snapshot = CursorFile {
                version: CURSOR_VERSION,
                containers: lock(&shared.committed).clone(),
            };
            persist(&cursor_path, &snapshot).await;
            saved = current;
        }
        if !more {
            return;
        }
    }
}

async fn persist(path: &Path, file: &CursorFile) {
    let text = match serde_json::to_vec(file) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "Cannot encode the collector cursors");
            return;
        }
    };
    let path = path.to_path_buf();
    let shown = path.clone();
    match tokio::task::spawn_blocking(move || write_atomic(&path, &text)).await {
        Ok(Ok(())) => {}
        // Lines committed since the last good write are offered again after a
        // restart; the sink ignores them by key.
        Ok(Err(e)) => {
            tracing::error!(path = %shown.display(), error = %e, "Cannot write the collector cursors");
        }
        Err(e) => tracing::error!(error = %e, "Cursor writer task failed"),
    }
}

/// Commits `events`, retrying until it works; false only when shutdown came and the
/// last attempts failed too.
async fn commit(
    shared: &Shared,
    sink: &dyn EventSink,
    events: &[CollectedEvent],
    shutdown: &CancellationToken,
) -> bool {
    let mut delay = shared.options.retry_initial;
    let mut after_shutdown = 0;
    loop {
        match sink.commit(&Origin::Local, events).await {
            Ok(outcome) => {
                let mut st = shared.stats.lock();
                st.summary.committed += events.len() as u64;
                tracing::debug!(
                    events = events.len(),
                    inserted = outcome.inserted,
                    duplicates = outcome.duplicates,
                    "Committed collected events"
                );
                return true;
            }
            Err(e) => {
                shared.stats.lock().summary.failed_commits += 1;
                tracing::warn!(error = %e, events = events.len(), retry_in = ?delay, "Cannot commit collected events; retrying the same batch");
                if shutdown.is_cancelled() {
                    after_shutdown += 1;
                    if after_shutdown >= SHUTDOWN_ATTEMPTS {
                        return false;
                    }
                }
                // Wake early on shutdown for the last attempts.
                pause(delay, shutdown).await;
                delay = shared.backoff(delay);
            }
        }
    }
}

/// The collector, built then run; [`Collector::stats`] gives a live view.
pub struct Collector {
    shared: Arc<Shared>,
    sink: Arc<dyn EventSink>,
    cursor_path: PathBuf,
}

impl Collector {
    /// A collector reading `engine`, committing to `sink`, keeping cursors in
    /// `cursor_path`.
    ///
    /// # Errors
    /// When the cursor file exists but cannot be read or is not a cursor file.
    pub fn new(
        engine: Arc<dyn Engine>,
        sink: Arc<dyn EventSink>,
        cursor_path: &Path,
        options: CollectorOptions,
    ) -> Result<Collector, CollectorError> {
        let committed = load_cursors(cursor_path)?;
        Ok(Collector {
            shared: Arc::new(Shared {
                engine,
                options,
                committed: Mutex::new(committed),
                read: Mutex::new(HashMap::new()),
                stats: CollectorStats::default(),
            }),
            sink,
            cursor_path: cursor_path.to_path_buf(),
        })
    }

    /// The live view.
    pub fn stats(&self) -> CollectorStats {
        self.shared.stats.clone()
    }

    /// Runs until `shutdown` fires, then commits what was read and returns.
    pub async fn run(self, shutdown: CancellationToken) -> CollectorSummary {
        let shared = self.shared;
        let (tx, rx) = mpsc::channel(shared.options.max_batch.max(1) * 4);
        let (written, watched) = watch::channel(0);
        let persister = tokio::spawn(persister(shared.clone(), self.cursor_path, watched));
        let batcher = tokio::spawn(batcher(
            shared.clone(),
            self.sink,
            rx,
            written,
            shutdown.clone(),
        ));
        let mut sup = Supervisor {
            shared: shared.clone(),
            tx,
            shutdown: shutdown.clone(),
            tasks: HashMap::new(),
            set: JoinSet::new(),
            task_ids: HashMap::new(),
            drained: HashSet::new(),
            restart: HashSet::new(),
        };
        sup.supervise().await;
        // Followers stop on the token; wait for them, then let the batcher drain.
        while sup.set.join_next().await.is_some() {}
        drop(sup);
        if let Err(e) = batcher.await {
            tracing::error!(error = %e, "Collector batcher task failed");
        }
        if let Err(e) = persister.await {
            tracing::error!(error = %e, "Collector cursor writer task failed");
        }
        let mut st = shared.stats.lock();
        st.followed.clear();
        st.summary.clone()
    }
}

struct Supervisor {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Item>,
    shutdown: CancellationToken,
    tasks: HashMap<String, CancellationToken>,
    set: JoinSet<(String, Ended)>,
    /// Container of each follower task.
    task_ids: HashMap<tokio::task::Id, String>,
    /// Stopped containers already read to their end (followed again when they start).
    drained: HashSet<String>,
    /// Containers that started again while their previous follower was ending.
    restart: HashSet<String>,
}

impl Supervisor {
    async fn supervise(&mut self) {
        let opts = self.shared.options.clone();
        // Subscribe before listing, so nothing falls between the two.
        let mut events: Option<ContainerEvents> = Some(self.shared.engine.container_events());
        let mut events_delay = opts.retry_initial;
        let mut events_retry = Instant::now();
        let mut next_scan = Instant::now();
        loop {
            let events_open = events.is_some();
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep_until(next_scan) => {
                    let ok = self.rescan().await;
                    next_scan = Instant::now() + if ok { opts.rescan_interval } else { opts.retry_max };
                }
                () = tokio::time::sleep_until(events_retry), if !events_open => {
                    events = Some(self.shared.engine.container_events());
                    // Whatever happened while the stream was away.
                    next_scan = Instant::now();
                }
                item = async { match events.as_mut() { Some(s) => s.next().await, None => std::future::pending().await } }, if events_open => {
                    match item {
                        Some(Ok(event)) => {
                            events_delay = opts.retry_initial;
                            self.on_event(&event.id, event.action).await;
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, retry_in = ?events_delay, "Container event stream failed");
                            events = None;
                        }
                        None => {
                            tracing::info!(retry_in = ?events_delay, "Container event stream ended");
                            events = None;
                        }
                    }
                    if events.is_none() {
                        events_retry = Instant::now() + events_delay;
                        events_delay = self.shared.backoff(events_delay);
                    }
                }
                Some(done) = self.set.join_next_with_id() => self.on_done(done).await,
            }
        }
    }

    /// Lists every managed container, follows the new ones, forgets the removed ones.
    async fn rescan(&mut self) -> bool {
        let list = match self.shared.engine.list_labelled().await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot list the managed containers");
                return false;
            }
        };
        let present: HashSet<&str> = list.iter().map(|c| c.id.as_str()).collect();
        {
            let keep = |id: &String| present.contains(id.as_str()) || self.tasks.contains_key(id);
            lock(&self.shared.committed).retain(|id, _| keep(id));
            lock(&self.shared.read).retain(|id, _| keep(id));
            self.drained.retain(|id| present.contains(id.as_str()));
        }
        for c in &list {
            self.ensure(c);
        }
        true
    }

    async fn on_event(&mut self, id: &str, action: ContainerAction) {
        match action {
            ContainerAction::Start => {
                self.drained.remove(id);
                if self.tasks.contains_key(id) {
                    self.restart.insert(id.to_owned());
                    return;
                }
                match self.shared.engine.labelled(id).await {
                    Ok(Some(c)) => self.ensure(&c),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(container = %id, error = %e, "Cannot inspect a started container; the next rescan follows it");
                    }
                }
            }
            // Its stream ends by itself and the follower reads it to the end.
            ContainerAction::Die => {}
            ContainerAction::Destroy => {
                if let Some(token) = self.tasks.get(id) {
                    token.cancel();
                }
                self.restart.remove(id);
                self.drained.remove(id);
                lock(&self.shared.read).remove(id);
                lock(&self.shared.committed).remove(id);
            }
        }
    }

    async fn on_done(
        &mut self,
        done: Result<(tokio::task::Id, (String, Ended)), tokio::task::JoinError>,
    ) {
        let (id, ended) = match done {
            Ok((task, (id, ended))) => {
                self.task_ids.remove(&task);
                (id, ended)
            }
            Err(e) => {
                // A panicked follower: forget it; the next rescan follows again.
                tracing::error!(error = %e, "Log follower task failed");
                let Some(id) = self.task_ids.remove(&e.id()) else {
                    return;
                };
                (id, Ended::Cancelled)
            }
        };
        self.tasks.remove(&id);
        self.shared.stats.lock().followed.remove(&id);
        if matches!(ended, Ended::Stopped) {
            self.drained.insert(id.clone());
        }
        if self.restart.remove(&id) && !self.shutdown.is_cancelled() {
            self.drained.remove(&id);
            match self.shared.engine.labelled(&id).await {
                Ok(Some(c)) => self.ensure(&c),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(container = %id, error = %e, "Cannot inspect a restarted container; the next rescan follows it");
                }
            }
        }
    }

    /// Follows `c` when it is not followed yet and either runs or was not read to its
    /// end since it stopped.
    fn ensure(&mut self, c: &ObservedContainer) {
        if self.tasks.contains_key(&c.id) || self.shutdown.is_cancelled() {
            return;
        }
        if !c.is_running() && self.drained.contains(&c.id) {
            return;
        }
        let Some(target) = Target::of(c) else {
            return;
        };
        if self.tasks.len() >= self.shared.options.max_containers {
            self.shared.stats.lock().over_cap += 1;
            tracing::warn!(
                container = %target.name,
                cap = self.shared.options.max_containers,
                "Too many containers to follow; this one waits for a free slot"
            );
            return;
        }
        let token = self.shutdown.child_token();
        self.tasks.insert(c.id.clone(), token.clone());
        {
            let mut st = self.shared.stats.lock();
            st.followed.insert(c.id.clone());
            st.summary.followers_started += 1;
        }
        tracing::debug!(container = %target.name, decky = %target.decky, service = %target.service, "Following container output");
        let handle = self
            .set
            .spawn(follow(self.shared.clone(), target, self.tx.clone(), token));
        self.task_ids.insert(handle.id(), c.id.clone());
    }
}

impl Collector {
    /// [`Collector::run`], reporting meanwhile: a health beat on
    /// `system.collector.health` every [`Reporting::interval`] with
    /// [`CollectorStats::health_fields`], a stop request on `system.collector.control`
    /// cancels `shutdown`, and systemd is told when it is ready and when it stops.
    pub async fn run_reported(
        self,
        reporting: Reporting,
        shutdown: CancellationToken,
    ) -> CollectorSummary {
        use decnet_bus::worker::{control_listener, health_heartbeat};
        let Reporting {
            bus,
            interval,
            extra,
            notify_systemd,
        } = reporting;
        // Stops the reporters once the collector returned, whatever ended it.
        let reporters = shutdown.child_token();
        let mut tasks = JoinSet::new();
        if let Ok(name) = decnet_bus::IdToken::new("worker", WORKER_NAME) {
            let stats = self.stats();
            tasks.spawn(health_heartbeat(
                bus.clone(),
                name.clone(),
                interval,
                move || {
                    let mut fields = extra.clone();
                    fields.extend(stats.health_fields());
                    Ok(fields)
                },
                reporters.clone(),
            ));
            tasks.spawn(control_listener(bus, name, shutdown.clone()));
        }
        if notify_systemd && let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready])
        {
            tracing::warn!(error = %e, "Cannot notify systemd of readiness");
        }
        let summary = self.run(shutdown.clone()).await;
        if notify_systemd {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        }
        reporters.cancel();
        tasks.shutdown().await;
        summary
    }
}

/// Runs the collector until `shutdown` fires: follows every managed container of
/// `engine`, commits their lines to `sink`, keeps cursors in `cursor_path`.
///
/// # Errors
/// Only when the cursor file exists but cannot be read or is not a cursor file; every
/// later error (engine, sink, cursor writes) is logged and retried.
pub async fn run(
    engine: Arc<dyn Engine>,
    sink: Arc<dyn EventSink>,
    cursor_path: &Path,
    options: CollectorOptions,
    shutdown: CancellationToken,
) -> Result<CollectorSummary, CollectorError> {
    let collector = Collector::new(engine, sink, cursor_path, options)?;
    Ok(collector.run(shutdown).await)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use decnet_runtime::fake::FakeEngine;
    use decnet_runtime::logs::LogStream;
    use decnet_runtime::spec::labels;
    use decnet_wire::rfc5424;

    use super::super::{CommitOutcome, SinkError};
    use super::*;

    /// Keeps what it is given; fails the next `fail` commits.
    #[derive(Default)]
    struct MemSink {
        events: Mutex<Vec<CollectedEvent>>,
        fail: AtomicU32,
    }

    impl MemSink {
        fn failing(times: u32) -> Arc<MemSink> {
            let s = MemSink::default();
            s.fail.store(times, Ordering::SeqCst);
            Arc::new(s)
        }

        fn lines(&self) -> Vec<String> {
            lock(&self.events)
                .iter()
                .map(|e| e.raw_line.clone())
                .collect()
        }

        fn len(&self) -> usize {
            lock(&self.events).len()
        }
    }

    #[async_trait]
    impl EventSink for MemSink {
        async fn commit(
            &self,
            origin: &Origin,
            batch: &[CollectedEvent],
        ) -> Result<CommitOutcome, SinkError> {
            assert_eq!(origin, &Origin::Local);
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(SinkError::SpoolFull { bytes: 1 });
            }
            lock(&self.events).extend_from_slice(batch);
            Ok(CommitOutcome {
                inserted: batch.len() as u64,
                duplicates: 0,
            })
        }
    }

    fn managed(decky: &str, service: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (labels::MANAGED.to_owned(), "true".to_owned()),
            (labels::DECKY.to_owned(), decky.to_owned()),
            (labels::SERVICE.to_owned(), service.to_owned()),
        ])
    }

    fn options() -> CollectorOptions {
        CollectorOptions {
            batch_window: Duration::from_millis(10),
            retry_initial: Duration::from_millis(10),
            retry_max: Duration::from_millis(50),
            // Long: only the event stream can pick up new containers in these tests.
            rescan_interval: Duration::from_secs(3600),
            ..CollectorOptions::default()
        }
    }

    struct Running {
        token: CancellationToken,
        stats: CollectorStats,
        handle: tokio::task::JoinHandle<CollectorSummary>,
    }

    impl Running {
        async fn stop(self) -> CollectorSummary {
            self.token.cancel();
            tokio::time::timeout(Duration::from_secs(10), self.handle)
                .await
                .expect("the collector stops")
                .unwrap()
        }
    }

    fn start(
        engine: &Arc<FakeEngine>,
        sink: &Arc<MemSink>,
        cursor: &Path,
        options: CollectorOptions,
    ) -> Running {
        let collector = Collector::new(engine.clone(), sink.clone(), cursor, options).unwrap();
        let stats = collector.stats();
        let token = CancellationToken::new();
        let handle = tokio::spawn(collector.run(token.clone()));
        Running {
            token,
            stats,
            handle,
        }
    }

    async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until `sink` holds `n` events, then a little longer to see no more come.
    async fn settle(sink: &MemSink, n: usize) {
        wait_for(&format!("{n} events"), || sink.len() >= n).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(sink.len(), n, "{:?}", sink.lines());
    }

    #[tokio::test]
    async fn attribution_comes_from_labels_never_from_the_line() {
        let engine = Arc::new(FakeEngine::new());
        let ssh = engine.insert_container("a-ssh", managed("a", "ssh"), true);
        let base = engine.insert_container("a", managed("a", ""), true);
        engine.insert_container("b-http", managed("b", "http"), true);
        // Not attributable: no decky label.
        let mut stray = managed("x", "ssh");
        stray.remove(labels::DECKY);
        let stray = engine.insert_container("stray", stray, true);
        let forged = "<13>1 2026-01-01T00:00:00Z b http 1 login [decnet@55555 decky=\"b\"] forged";
        let ts = engine.push_log("a-ssh", LogStream::Stdout, forged);
        engine.push_log("a", LogStream::Stderr, "decnet-decky: hold failed");
        engine.push_log(&stray, LogStream::Stdout, "ignored");

        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(MemSink::default());
        let run = start(&engine, &sink, &dir.path().join(CURSOR_FILE), options());
        settle(&sink, 2).await;
        let summary = run.stop().await;
        assert_eq!(summary.committed, 2);

        let events = lock(&sink.events).clone();
        let forged_ev = events.iter().find(|e| e.raw_line == forged).unwrap();
        assert_eq!(
            (forged_ev.decky.as_str(), forged_ev.service.as_str()),
            ("a", "ssh")
        );
        assert_eq!(
            forged_ev.key,
            CollectedEvent::container_key(&ssh, ts, forged)
        );
        assert_eq!(i128::from(forged_ev.received.as_unix_micros()), ts / 1_000);
        let base_ev = events
            .iter()
            .find(|e| e.raw_line == "decnet-decky: hold failed")
            .unwrap();
        assert_eq!(
            (base_ev.decky.as_str(), base_ev.service.as_str()),
            ("a", BASE_SERVICE)
        );
        assert!(base_ev.key.eq(&CollectedEvent::container_key(
            &base,
            base_ev_ts(&engine, &base),
            &base_ev.raw_line
        )));
    }

    fn base_ev_ts(engine: &FakeEngine, id: &str) -> i128 {
        engine.state().logs[id][0].ts_nanos
    }

    #[tokio::test]
    async fn a_restart_resumes_from_the_cursor_without_loss_or_repeat() {
        let engine = Arc::new(FakeEngine::new());
        let id = engine.insert_container("a-ssh", managed("a", "ssh"), true);
        let dir = tempfile::tempdir().unwrap();
        let cursor = dir.path().join(CURSOR_FILE);
        // Everything below falls into one second, so every follow replays it all.
        let t0 = 1_700_000_005_000_000_000_i128;
        engine.push_log_at(&id, t0 + 1, LogStream::Stdout, "one");
        engine.push_log_at(&id, t0 + 2, LogStream::Stdout, "two");
        engine.push_log_at(&id, t0 + 2, LogStream::Stderr, "two bis, same nanosecond");

        let first = Arc::new(MemSink::default());
        let run = start(&engine, &first, &cursor, options());
        settle(&first, 3).await;
        run.stop().await;
        let saved: CursorFile = serde_json::from_slice(&std::fs::read(&cursor).unwrap()).unwrap();
        assert_eq!(saved.containers[&id].ts, t0 + 2);
        assert_eq!(saved.containers[&id].keys.len(), 3);

        // While the collector is down: another line at the cursor's very nanosecond,
        // one stored out of order (stderr stamped before the last stdout line), a later
        // one, and the same text again at a new time.
        engine.push_log_at(&id, t0 + 2, LogStream::Stdout, "three, same nanosecond");
        engine.push_log_at(&id, t0 + 1, LogStream::Stderr, "four, stamped earlier");
        engine.push_log_at(&id, t0 + 900_000_000, LogStream::Stdout, "five");
        engine.push_log_at(&id, t0 + 900_000_001, LogStream::Stdout, "one");

        let second = Arc::new(MemSink::default());
        let run = start(&engine, &second, &cursor, options());
        settle(&second, 4).await;
        // And while it runs again.
        engine.push_log("a-ssh", LogStream::Stdout, "six");
        settle(&second, 5).await;
        run.stop().await;
        assert_eq!(
            second.lines(),
            [
                "three, same nanosecond",
                "four, stamped earlier",
                "five",
                "one",
                "six"
            ]
        );
        // Every key once across both runs.
        let mut keys: Vec<String> = lock(&first.events)
            .iter()
            .chain(lock(&second.events).iter())
            .map(|e| e.key.clone())
            .collect();
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n);
        assert_eq!(n, 8);

        // A third start with nothing new delivers nothing.
        let third = Arc::new(MemSink::default());
        let run = start(&engine, &third, &cursor, options());
        wait_for("the follower", || run.stats.followed().contains(&id)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        run.stop().await;
        assert_eq!(third.len(), 0);
    }

    #[tokio::test]
    async fn long_lines_are_cut_to_fit_the_forwarding_envelope() {
        let engine = Arc::new(FakeEngine::new());
        let id = engine.insert_container("a-http", managed("a", "http"), true);
        let long = "<13>1 - a http - request - ".to_owned() + &"é".repeat(40_000);
        engine.push_log(&id, LogStream::Stdout, &long);
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(MemSink::default());
        let run = start(&engine, &sink, &dir.path().join(CURSOR_FILE), options());
        settle(&sink, 1).await;
        run.stop().await;
        let got = lock(&sink.events)[0].clone();
        assert!(got.raw_line.len() <= MAX_RAW_LINE);
        assert!(got.raw_line.len() > MAX_RAW_LINE - 4);
        assert!(got.raw_line.ends_with(decnet_runtime::logs::TRUNCATED_MARK));
        assert!(
            long.starts_with(
                got.raw_line
                    .trim_end_matches(decnet_runtime::logs::TRUNCATED_MARK)
            )
        );
        // The wrapped line fits in one RFC 5424 line and unwraps to the same text.
        let env = rfc5424::Envelope {
            key: got.key.clone(),
            decky: got.decky.clone(),
            service: got.service.clone(),
            received_micros: got.received.as_unix_micros(),
        };
        let wrapped = rfc5424::wrap(&env, &got.raw_line);
        assert!(wrapped.len() <= rfc5424::MAX_LINE);
        assert_eq!(rfc5424::unwrap(&wrapped).unwrap().1, got.raw_line);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_beats_report_the_counters_and_a_stop_request_ends_the_run() {
        use decnet_bus::{Bus as _, Envelope, MemoryHub, Pattern, payload_object};
        let engine = Arc::new(FakeEngine::new());
        let id = engine.insert_container("a-http", managed("a", "http"), true);
        for i in 0..3 {
            engine.push_log(&id, LogStream::Stdout, &format!("line {i}"));
        }
        let dir = tempfile::tempdir().unwrap();
        let sink = MemSink::failing(0);
        let hub = MemoryHub::new(1024);
        let operator = hub.connect("operator");
        let mut beats = operator
            .subscribe(Pattern::new("system.collector.health").unwrap())
            .await
            .unwrap();
        let collector = Collector::new(
            engine.clone(),
            sink.clone(),
            &dir.path().join(CURSOR_FILE),
            options(),
        )
        .unwrap();
        let mut extra = serde_json::Map::new();
        extra.insert("mode".into(), "worker".into());
        let token = CancellationToken::new();
        let run = tokio::spawn(collector.run_reported(
            Reporting {
                bus: Some(Arc::new(hub.connect("collector"))),
                interval: Duration::from_millis(20),
                extra,
                notify_systemd: false,
            },
            token.clone(),
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        let last = loop {
            let beat = tokio::time::timeout_at(deadline, beats.recv())
                .await
                .expect("a beat with the three lines committed")
                .unwrap();
            let p = beat.payload.to_map().unwrap();
            if p["committed"] == 3 {
                break p;
            }
        };
        assert_eq!(last["followed"], 1);
        assert_eq!(last["failed_commits"], 0);
        assert_eq!(last["mode"], "worker");
        assert_eq!(last["worker"], "collector");
        operator
            .publish(Envelope::new(
                decnet_bus::topics::system_control(
                    &decnet_bus::IdToken::new("w", WORKER_NAME).unwrap(),
                ),
                "control",
                payload_object(serde_json::json!({"action": "stop"})).unwrap(),
            ))
            .await
            .unwrap();
        let summary = tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("a stop request ends the run")
            .unwrap();
        assert!(token.is_cancelled());
        assert_eq!(summary.committed, 3);
        assert_eq!(sink.lines().len(), 3);
    }

    #[tokio::test]
    async fn a_failing_sink_is_retried_with_the_same_batch() {
        let engine = Arc::new(FakeEngine::new());
        let id = engine.insert_container("a-http", managed("a", "http"), true);
        for i in 0..5 {
            engine.push_log(&id, LogStream::Stdout, &format!("line {i}"));
        }
        let dir = tempfile::tempdir().unwrap();
        let cursor = dir.path().join(CURSOR_FILE);
        let sink = MemSink::failing(2);
        let run = start(&engine, &sink, &cursor, options());
        settle(&sink, 5).await;
        let summary = run.stop().await;
        assert_eq!(summary.failed_commits, 2);
        assert_eq!(summary.committed, 5);
        let want: Vec<String> = (0..5).map(|i| format!("line {i}")).collect();
        assert_eq!(sink.lines(), want);
    }

    #[tokio::test]
    async fn a_sink_failing_at_shutdown_moves_no_cursor() {
        let engine = Arc::new(FakeEngine::new());
        let id = engine.insert_container("a-http", managed("a", "http"), true);
        engine.push_log(&id, LogStream::Stdout, "kept for later");
        let dir = tempfile::tempdir().unwrap();
        let cursor = dir.path().join(CURSOR_FILE);
        let sink = MemSink::failing(u32::MAX);
        let run = start(&engine, &sink, &cursor, options());
        wait_for("a failed commit", || run.stats.summary().failed_commits > 0).await;
        let summary = run.stop().await;
        assert_eq!(summary.committed, 0);
        assert_eq!(summary.left_uncommitted, 1);
        assert!(!cursor.exists());
        // The next start delivers it.
        let sink = Arc::new(MemSink::default());
        let run = start(&engine, &sink, &cursor, options());
        settle(&sink, 1).await;
        run.stop().await;
        assert_eq!(sink.lines(), ["kept for later"]);
    }

    #[tokio::test]
    async fn new_containers_come_from_events_and_removal_ends_their_task() {
        let engine = Arc::new(FakeEngine::new());
        let dir = tempfile::tempdir().unwrap();
        let cursor = dir.path().join(CURSOR_FILE);
        let sink = Arc::new(MemSink::default());
        let run = start(&engine, &sink, &cursor, options());
        wait_for("the event stream", || engine.event_streams() == 1).await;

        let id = engine.insert_container("c-smtp", managed("c", "smtp"), true);
        wait_for("the follower", || run.stats.followed().contains(&id)).await;
        engine.push_log(&id, LogStream::Stdout, "220 ready");
        settle(&sink, 1).await;
        assert_eq!(lock(&sink.events)[0].decky, "c");
        assert_eq!(engine.log_followers(&id), 1);

        // A dropped connection while the container runs is reopened; nothing repeats.
        engine.end_logs(&id);
        engine.push_log(&id, LogStream::Stdout, "after the reconnect");
        settle(&sink, 2).await;

        // Stopped: read to the end, then the task ends; started again: followed again.
        engine.push_log(&id, LogStream::Stdout, "last words");
        engine.stop_container(&id).await.unwrap();
        wait_for("the follower to end", || run.stats.followed().is_empty()).await;
        settle(&sink, 3).await;
        engine.start_container(&id).await.unwrap();
        wait_for("the follower again", || run.stats.followed().contains(&id)).await;
        engine.push_log(&id, LogStream::Stdout, "back");
        settle(&sink, 4).await;

        engine.remove_container(&id).await.unwrap();
        wait_for("the follower to end", || run.stats.followed().is_empty()).await;
        let summary = run.stop().await;
        assert_eq!(summary.followers_started, 2);
        assert_eq!(
            sink.lines(),
            ["220 ready", "after the reconnect", "last words", "back"]
        );
    }

    #[tokio::test]
    async fn the_follower_cap_holds_and_a_rescan_fills_freed_slots() {
        let engine = Arc::new(FakeEngine::new());
        let a = engine.insert_container("a-ssh", managed("a", "ssh"), true);
        let b = engine.insert_container("b-ssh", managed("b", "ssh"), true);
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(MemSink::default());
        let run = start(
            &engine,
            &sink,
            &dir.path().join(CURSOR_FILE),
            CollectorOptions {
                max_containers: 1,
                rescan_interval: Duration::from_millis(50),
                ..options()
            },
        );
        wait_for("one follower", || run.stats.followed().len() == 1).await;
        assert!(run.stats.over_cap() >= 1);
        let first = run.stats.followed().into_iter().next().unwrap();
        let other = if first == a { b.clone() } else { a.clone() };
        engine.remove_container(&first).await.unwrap();
        wait_for("the other follower", || {
            run.stats.followed().contains(&other)
        })
        .await;
        assert_eq!(run.stats.followed().len(), 1);
        run.stop().await;
    }

    #[tokio::test]
    async fn the_event_stream_is_reopened_and_a_rescan_catches_up() {
        let engine = Arc::new(FakeEngine::new());
        let dir = tempfile::tempdir().unwrap();
        let sink = Arc::new(MemSink::default());
        let run = start(&engine, &sink, &dir.path().join(CURSOR_FILE), options());
        wait_for("the event stream", || engine.event_streams() == 1).await;
        engine.end_events();
        // Started while no event stream was open: only the catch-up rescan sees it.
        let id = engine.insert_container("d-ftp", managed("d", "ftp"), true);
        wait_for("the follower", || run.stats.followed().contains(&id)).await;
        assert_eq!(engine.event_streams(), 1);
        run.stop().await;
    }

    #[test]
    fn cursor_skips_what_it_covers_and_stays_bounded() {
        let mut c = Cursor::default();
        assert_eq!(c.since_secs(), 0);
        assert!(c.admits(5, "a"));
        c.advance(2_500_000_000, "a".into());
        assert_eq!(c.since_secs(), 1);
        assert!(!c.admits(2_500_000_000, "a"));
        assert!(c.admits(2_500_000_000, "b"));
        // Within the window and unseen: a line stored out of order.
        assert!(c.admits(2_000_000_000, "late"));
        // Before the window: done.
        assert!(!c.admits(1_000_000_000, "old"));
        for i in 0..(MAX_CURSOR_KEYS as i128 + 10) {
            c.advance(3_000_000_000 + i, format!("k{i}"));
        }
        assert_eq!(c.keys.len(), MAX_CURSOR_KEYS);
        assert!(c.floor > 2_500_000_000);
        assert!(!c.admits(3_000_000_000, "k0-again"));
        assert!(!c.admits(3_000_000_000 + 200, "k200"));
        assert!(c.admits(3_000_000_000 + 200, "new"));
    }

    #[test]
    fn cursor_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("collector").join(CURSOR_FILE);
        assert!(load_cursors(&path).unwrap().is_empty());
        write_atomic(&path, b"{\"version\":1,\"containers\":{}}").unwrap();
        assert!(load_cursors(&path).unwrap().is_empty());
        std::fs::write(&path, b"{\"version\":9,\"containers\":{}}").unwrap();
        assert!(matches!(
            load_cursors(&path),
            Err(CollectorError::CursorFormat { .. })
        ));
        std::fs::write(&path, b"not json").unwrap();
        assert!(load_cursors(&path).is_err());
        let mut file = CursorFile {
            version: CURSOR_VERSION,
            containers: BTreeMap::new(),
        };
        let mut c = Cursor::default();
        c.advance(7, "k".into());
        file.containers.insert("c1".into(), c.clone());
        write_atomic(&path, &serde_json::to_vec(&file).unwrap()).unwrap();
        assert_eq!(load_cursors(&path).unwrap()["c1"], c);
        assert!(
            !dir.path()
                .join("collector")
                .join(format!("{CURSOR_FILE}.tmp"))
                .exists()
        );
    }
}
