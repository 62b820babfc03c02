//! End-to-end log forwarding throughput: a prefilled worker spool → forwarder → mTLS loopback → listener → the ingester → SQLite, against the same events committed by the ingester directly, and the transport alone into a counting sink.
//!
//! `cargo bench -p decnet-swarm --bench log_forward` (events: `DECNET_BENCH_EVENTS`, default
//! 200 000; rounds: `DECNET_BENCH_ROUNDS`, default 2). Each round uses fresh databases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The allocator of the `decnet` binary, so the figure is the product's.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../tests/it/logs_support.rs"]
mod logs_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use decnet_fleet::logs::{CollectedEvent, CommitOutcome, EventSink, Origin, SinkError};
use decnet_store::LogFilter;
use logs_support::*;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn wait_rows(ctrl: &decnet_swarm::master::Controller, n: u64) {
    loop {
        if ctrl.repo.count_logs(&LogFilter::default()).await.unwrap() >= n {
            return;
        }
        // Polled every 50 ms: COUNT(*) competes with the writer.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Events/s committing `n` events through the ingester directly, 2048 per batch.
async fn direct(n: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let ctrl = controller(dir.path()).await;
    let sink = ingester(&ctrl);
    let origin = Origin::Worker("worker-1".into());
    let events: Vec<_> = (0..n).map(event).collect();
    let start = Instant::now();
    for batch in events.chunks(decnet_swarm::listen::MAX_BATCH) {
        sink.commit(&origin, batch).await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        ctrl.repo.count_logs(&LogFilter::default()).await.unwrap(),
        n
    );
    n as f64 / secs
}

/// Events/s from starting the forwarder on a spool of `n` events to `n` committed rows.
async fn end_to_end(n: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let ctrl = controller(dir.path()).await;
    let id = worker(&ctrl, dir.path(), "worker-1", true).await;
    let spool_dir = dir.path().join("worker/spool");
    fill_spool(&spool_dir, 0, n).await;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listen = tokio::spawn(listener(&ctrl, ingester(&ctrl)).run_on(tcp, std::future::pending()));
    let fwd = forwarder(&ctrl, &id, addr.to_string(), &spool_dir);
    let start = Instant::now();
    let forward = tokio::spawn(decnet_swarm::forward::run(fwd, std::future::pending()));
    wait_rows(&ctrl, n).await;
    let secs = start.elapsed().as_secs_f64();
    forward.abort();
    listen.abort();
    n as f64 / secs
}

/// Counts committed events without storing them (the transport's own ceiling).
struct CountingSink(AtomicU64);

#[async_trait::async_trait]
impl EventSink for CountingSink {
    async fn commit(
        &self,
        _origin: &Origin,
        batch: &[CollectedEvent],
    ) -> Result<CommitOutcome, SinkError> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(CommitOutcome {
            inserted: batch.len() as u64,
            duplicates: 0,
        })
    }
}

/// Events/s from starting the forwarder to `n` events committed to a sink that only
/// counts them (spool, TLS, framing, envelope parsing; no database).
async fn transport(n: u64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let ctrl = controller(dir.path()).await;
    let id = worker(&ctrl, dir.path(), "worker-1", true).await;
    let spool_dir = dir.path().join("worker/spool");
    fill_spool(&spool_dir, 0, n).await;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let sink = Arc::new(CountingSink(AtomicU64::new(0)));
    let listen = tokio::spawn(listener(&ctrl, sink.clone()).run_on(tcp, std::future::pending()));
    let fwd = forwarder(&ctrl, &id, addr.to_string(), &spool_dir);
    let start = Instant::now();
    let forward = tokio::spawn(decnet_swarm::forward::run(fwd, std::future::pending()));
    while sink.0.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    forward.abort();
    listen.abort();
    n as f64 / secs
}

fn main() {
    let n = env_u64("DECNET_BENCH_EVENTS", 200_000);
    let rounds = env_u64("DECNET_BENCH_ROUNDS", 2);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("log forwarding, {n} events per run, SQLite, loopback mTLS");
    for round in 1..=rounds {
        let reference = rt.block_on(direct(n));
        let e2e = rt.block_on(end_to_end(n));
        let bare = rt.block_on(transport(n));
        println!(
            "round {round}: end-to-end {e2e:.0} events/s, ingester direct {reference:.0} events/s, ratio {:.2}; transport alone (counting sink) {bare:.0} events/s",
            e2e / reference
        );
    }
}
