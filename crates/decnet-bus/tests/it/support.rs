//! Shared test helpers: a broker on a temp socket, NATS discovery, bounded receives.

use std::path::{Path, PathBuf};
use std::time::Duration;

use decnet_bus::{
    Broker, BrokerHandle, BrokerOptions, Envelope, Error, Pattern, Subscription, Topic,
};
use serde_json::{Map, Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Upper bound on any wait in these tests (generous: CI shares two cores with builds).
pub const WAIT: Duration = Duration::from_secs(10);

pub fn topic(s: &str) -> Topic {
    Topic::new(s).unwrap()
}

pub fn pattern(s: &str) -> Pattern {
    Pattern::new(s).unwrap()
}

pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

pub fn event(t: &str, n: u64) -> Envelope {
    Envelope::new(topic(t), "test", obj(json!({ "n": n })))
}

pub fn n_of(e: &Envelope) -> u64 {
    e.payload.to_map().unwrap()["n"].as_u64().unwrap()
}

/// The next event, or a panic after [`WAIT`].
pub async fn recv(sub: &mut Subscription) -> Envelope {
    match tokio::time::timeout(WAIT, sub.recv()).await {
        Ok(Some(e)) => e,
        Ok(None) => panic!("subscription {} ended", sub.pattern()),
        Err(_) => panic!("no event on {} within {WAIT:?}", sub.pattern()),
    }
}

/// Polls `cond` every 10 ms until it holds, or panics after [`WAIT`] naming `what`.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A broker on a socket in a fresh temp directory.
pub struct TestBroker {
    pub dir: TempDir,
    pub path: PathBuf,
    pub handle: BrokerHandle,
    stop: CancellationToken,
    task: JoinHandle<Result<(), Error>>,
}

impl TestBroker {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut BrokerOptions)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus.sock");
        let (handle, stop, task) = Self::spawn(&path, configure);
        Self {
            dir,
            path,
            handle,
            stop,
            task,
        }
    }

    fn spawn(
        path: &Path,
        configure: impl FnOnce(&mut BrokerOptions),
    ) -> (
        BrokerHandle,
        CancellationToken,
        JoinHandle<Result<(), Error>>,
    ) {
        let mut opts = BrokerOptions::new(path);
        opts.group = None;
        opts.heartbeat = None;
        configure(&mut opts);
        let broker = Broker::bind(opts).unwrap();
        let handle = broker.handle();
        let stop = CancellationToken::new();
        let s = stop.clone();
        let task = tokio::spawn(async move { broker.run(s.cancelled_owned()).await });
        (handle, stop, task)
    }

    /// Stops the broker and waits for it to finish.
    pub async fn stop(&mut self) {
        self.stop.cancel();
        let task = std::mem::replace(&mut self.task, tokio::spawn(async { Ok(()) }));
        tokio::time::timeout(WAIT, task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }

    /// Starts a new broker on the same path (after [`Self::stop`]).
    pub fn restart(&mut self) {
        let (handle, stop, task) = Self::spawn(&self.path, |_| {});
        self.handle = handle;
        self.stop = stop;
        self.task = task;
    }

    /// True once some connection named `name` holds `pattern`.
    pub fn has_pattern(&self, name: &str, pattern: &str) -> bool {
        self.handle
            .stats()
            .subscribers
            .iter()
            .any(|s| s.name == name && s.patterns.iter().any(|p| p == pattern))
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The NATS server provisioned by `.ci/provision/30-nats.sh`, or None when live tests are
/// skipped (`DECNET_SKIP_LIVE=1`); panics with instructions otherwise.
pub fn nats_url() -> Option<String> {
    if let Ok(url) = std::env::var("DECNET_TEST_NATS_URL")
        && !url.is_empty()
    {
        return Some(url);
    }
    if std::env::var("DECNET_SKIP_LIVE").is_ok_and(|v| v == "1") {
        eprintln!("DECNET_SKIP_LIVE=1: skipping a NATS test");
        return None;
    }
    panic!(
        "DECNET_TEST_NATS_URL is not set: run .ci/provision/30-nats.sh (as root) and export \
         what it prints, or set DECNET_SKIP_LIVE=1"
    );
}

/// A token unique to this test run and call, to keep parallel tests apart on one NATS server.
pub fn unique_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}
