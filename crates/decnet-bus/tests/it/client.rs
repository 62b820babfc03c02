//! Socket client specifics: lazy single connection, drops while disconnected, acks.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use decnet_bus::{Bus, ClientOptions, Error, SocketClient};
use tokio::io::AsyncWriteExt;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_use_opens_one_connection() {
    let b = TestBroker::start().await;
    let c = Arc::new(SocketClient::new(&b.path, ClientOptions::new("shared")));
    assert_eq!(
        b.handle.stats().connections,
        0,
        "nothing opened before first use"
    );
    let mut tasks = Vec::new();
    for i in 0..3 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            match i {
                0 => c.connect().await.unwrap(),
                1 => {
                    c.subscribe(pattern("x.y")).await.unwrap();
                }
                _ => c.publish(event("x.z", 0)).await.unwrap(),
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = b.handle.stats();
    assert_eq!(stats.connections, 1);
    assert_eq!(stats.subscribers[0].name, "shared");
}

#[tokio::test]
async fn operations_without_a_broker_fail_or_drop_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ClientOptions::new("lonely");
    opts.connect_timeout = Duration::from_millis(200);
    let c = SocketClient::new(dir.path().join("none.sock"), opts);
    assert!(matches!(c.connect().await, Err(Error::NotConnected(_))));
    assert!(matches!(
        c.subscribe(pattern("a")).await,
        Err(Error::NotConnected(_))
    ));
    c.publish(event("a", 1)).await.unwrap();
    assert_eq!(c.stats().dropped, 1);
    assert_eq!(c.stats().published, 0);
    c.close().await;
    assert!(matches!(c.publish(event("a", 2)).await, Err(Error::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_never_acknowledges_makes_subscribe_fail_not_hang() {
    // A stand-in for a reference broker: accepts, reads, never answers.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut sink = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut sink).await;
        let _ = s.shutdown().await;
    });
    let mut opts = ClientOptions::new("hopeful");
    opts.ack_timeout = Duration::from_millis(300);
    let c = SocketClient::new(&path, opts);
    match c.subscribe(pattern("a.b")).await {
        Err(Error::AckTimeout { pattern, timeout }) => {
            assert_eq!(pattern, "a.b");
            assert_eq!(timeout, Duration::from_millis(300));
        }
        other => panic!("expected an ack timeout, got {other:?}"),
    }
    c.close().await;
    server.abort();
}

/// Collects formatted log lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<String> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn publishes_while_disconnected_warn_once_then_debug_and_are_counted() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut b = TestBroker::start().await;
    let mut opts = ClientOptions::new("chatty");
    opts.backoff_min = Duration::from_secs(30);
    let c = SocketClient::new(&b.path, opts);
    c.connect().await.unwrap();
    b.stop().await;
    eventually("the client to notice", || !c.is_connected()).await;
    for n in 0..50 {
        c.publish(event("gone.x", n)).await.unwrap();
    }
    assert_eq!(c.stats().dropped, 50);
    let dropped: Vec<String> = captured
        .lines()
        .into_iter()
        .filter(|l| l.contains("Bus publish dropped"))
        .collect();
    assert_eq!(dropped.len(), 50);
    assert_eq!(dropped.iter().filter(|l| l.contains(" WARN ")).count(), 1);
    assert_eq!(dropped.iter().filter(|l| l.contains("DEBUG")).count(), 49);
    assert!(dropped[0].contains(" WARN "), "the first one warns");
}
