//! Bus throughput: one publisher → one subscriber on a wildcard pattern, 256-byte payloads.
//!
//! Measures, in one run and with the same method, our broker with our socket client, and
//! `nats-server` with a plain async-nats client (the reference), plus our NATS backend.
//! The publisher keeps at most `WINDOW` events in flight (published but not yet received),
//! below every queue capacity, so no queue can overflow and nothing may be lost; the lost
//! count is reported for each run.
//!
//! Run: `cargo bench -p decnet-bus --bench throughput` with `DECNET_TEST_NATS_URL` set
//! (`.ci/provision/30-nats.sh` prints it). `BUS_BENCH_MESSAGES` and `BUS_BENCH_ROUNDS`
//! override the count (300 000) and the rounds (3); `BUS_BENCH_ONLY=decnet` (or `nats`, or
//! `raw`) runs only that case once, for a profiler; `BUS_BENCH_BROKER_THREADS` sets the
//! broker runtime's worker threads (default 2, as `decnet bus` on this 2-core machine).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

/// The allocator of the `decnet` binary, which runs the broker and every client: the bench
/// measures the product. The reference's clients run in this process too, so they get it
/// as well (nats-server is its own Go process).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use decnet_bus::{
    Broker, BrokerOptions, Bus, ClientOptions, Envelope, NatsBus, Pattern, Payload, SocketClient,
    Subscription, Topic,
};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// Events in flight at most (every queue on the path holds 1024).
const WINDOW: u64 = 512;
/// Payload size in bytes (the JSON text of the payload object).
const PAYLOAD: usize = 256;
/// Runs per case by default (`BUS_BENCH_ROUNDS`); the median is reported.
const ROUNDS: usize = 3;

/// Flow control shared by publisher and subscriber.
struct Flow {
    received: AtomicU64,
    wake: Notify,
}

impl Flow {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            received: AtomicU64::new(0),
            wake: Notify::new(),
        })
    }

    fn got_one(&self) {
        let n = self.received.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(WINDOW / 4) {
            self.wake.notify_one();
        }
    }

    async fn wait_window(&self, sent: u64) {
        while sent - self.received.load(Ordering::Relaxed) >= WINDOW {
            self.wake.notified().await;
        }
    }
}

/// Result of one run.
struct Run {
    rate: f64,
    lost: u64,
    misordered: u64,
}

/// The payload object `{"seq":"NNNNNNNNNN","data":"xxx…"}`, exactly PAYLOAD bytes of JSON.
#[derive(Serialize)]
struct BenchPayload {
    seq: String,
    data: String,
}

/// What the subscriber reads of a payload.
#[derive(Deserialize)]
struct SeqOnly<'a> {
    seq: &'a str,
}

/// The payload of event `seq`, built and serialised per message from a struct, as a
/// publisher does through `publish_safely`.
fn payload(seq: u64) -> Payload {
    // The JSON around the two strings, plus the ten digits of seq.
    const HEAD: usize = r#"{"seq":"","data":""}"#.len() + 10;
    let p = BenchPayload {
        seq: format!("{seq:010}"),
        data: "x".repeat(PAYLOAD - HEAD),
    };
    let payload = Payload::from_serialize(&p).unwrap();
    debug_assert_eq!(payload.as_bytes().len(), PAYLOAD);
    payload
}

fn seq_of(e: &Envelope) -> u64 {
    e.payload_as::<SeqOnly<'_>>()
        .ok()
        .and_then(|p| p.seq.parse().ok())
        .unwrap_or(u64::MAX)
}

/// One run through the `Bus` trait (our socket client, or our NATS backend).
async fn run_bus(publisher: &dyn Bus, mut sub: Subscription, topic: &Topic, n: u64) -> Run {
    let flow = Flow::new();
    let f = flow.clone();
    let consumer = tokio::spawn(async move {
        let mut misordered = 0;
        let mut next = 0;
        while next < n {
            let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await else {
                break;
            };
            // The payload is read once, as a real subscriber reads it.
            let seq = seq_of(&e);
            if seq != next {
                misordered += 1;
            }
            next = seq.wrapping_add(1);
            f.got_one();
        }
        misordered
    });
    // The payload is built once per message, as a real publisher would.
    let start = Instant::now();
    for seq in 0..n {
        flow.wait_window(seq).await;
        let e = Envelope::new(topic.clone(), "bench", payload(seq));
        publisher.publish(e).await.unwrap();
    }
    let misordered = consumer.await.unwrap();
    let elapsed = start.elapsed();
    let received = flow.received.load(Ordering::Relaxed);
    Run {
        rate: received as f64 / elapsed.as_secs_f64(),
        lost: n - received,
        misordered,
    }
}

/// One run of the reference: plain async-nats, 256-byte payloads.
async fn run_raw_nats(url: &str, n: u64) -> Run {
    let sub_client = async_nats::connect(url).await.unwrap();
    let pub_client = async_nats::connect(url).await.unwrap();
    let mut sub = sub_client.subscribe("benchraw.>").await.unwrap();
    // Round trip so the server has the SUB before the first publish.
    let _ = sub_client.request("benchraw-barrier", Bytes::new()).await;
    let flow = Flow::new();
    let f = flow.clone();
    let consumer = tokio::spawn(async move {
        let mut misordered = 0;
        let mut next = 0u64;
        while next < n {
            let Ok(Some(m)) = tokio::time::timeout(Duration::from_secs(5), sub.next()).await else {
                break;
            };
            let mut be = [0u8; 8];
            be.copy_from_slice(&m.payload[..8]);
            let seq = u64::from_be_bytes(be);
            if seq != next {
                misordered += 1;
            }
            next = seq + 1;
            f.got_one();
        }
        misordered
    });
    let start = Instant::now();
    for seq in 0..n {
        flow.wait_window(seq).await;
        // A fresh buffer per message, as a real publisher would build its payload.
        let mut data = vec![b'x'; PAYLOAD];
        data[..8].copy_from_slice(&seq.to_be_bytes());
        pub_client
            .publish("benchraw.x", Bytes::from(data))
            .await
            .unwrap();
    }
    pub_client.flush().await.unwrap();
    let misordered = consumer.await.unwrap();
    let elapsed = start.elapsed();
    let received = flow.received.load(Ordering::Relaxed);
    Run {
        rate: received as f64 / elapsed.as_secs_f64(),
        lost: n - received,
        misordered,
    }
}

/// Position of the ten seq digits in a body made by [`raw_body`].
fn seq_digits(body: &[u8]) -> Option<std::ops::Range<usize>> {
    let key = b"\"seq\":\"";
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    Some(at..at + 10)
}

/// A complete v1 envelope body whose payload is PAYLOAD bytes of JSON, seq 0.
fn raw_body() -> Vec<u8> {
    let mut e = Envelope::new(Topic::new("bench.topic.x").unwrap(), "bench", payload(0));
    e.id = "0123456789abcdef0123456789abcdef".into();
    e.to_json()
}

/// One run of our broker with minimal clients speaking frames directly (no envelope
/// building or parsing in the clients): isolates the broker, like the raw NATS case.
async fn run_raw_broker(path: &std::path::Path, n: u64) -> Run {
    use decnet_wire::bus::{self as wire, Decoded, Verb};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
    let mut sub = tokio::net::UnixStream::connect(path).await.unwrap();
    let mut hello = Vec::new();
    wire::encode(Verb::Sub, "bench.>", br#"{"ack":1}"#, &mut hello).unwrap();
    sub.write_all(&hello).await.unwrap();
    let mut buf = Vec::with_capacity(1 << 16);
    // Wait for the OK.
    loop {
        let mut chunk = [0u8; 256];
        let k = sub.read(&mut chunk).await.unwrap();
        buf.extend_from_slice(&chunk[..k]);
        if let Ok(Decoded::Frame { consumed, .. }) = wire::decode(&buf) {
            buf.drain(..consumed);
            break;
        }
    }
    let flow = Flow::new();
    let f = flow.clone();
    let consumer = tokio::spawn(async move {
        let mut misordered = 0;
        let mut next = 0u64;
        let mut chunk = vec![0u8; 1 << 16];
        while next < n {
            let mut at = 0;
            while let Ok(Decoded::Frame { frame, consumed }) = wire::decode_unchecked(&buf[at..]) {
                let seq = seq_digits(frame.body)
                    .and_then(|r| std::str::from_utf8(&frame.body[r]).ok()?.parse().ok())
                    .unwrap_or(u64::MAX);
                if seq != next {
                    misordered += 1;
                }
                next = seq.wrapping_add(1);
                f.got_one();
                at += consumed;
            }
            buf.drain(..at);
            if next >= n {
                break;
            }
            let Ok(Ok(k)) =
                tokio::time::timeout(Duration::from_secs(5), sub.read(&mut chunk)).await
            else {
                break;
            };
            if k == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..k]);
        }
        misordered
    });
    let publisher = tokio::net::UnixStream::connect(path).await.unwrap();
    let mut w = BufWriter::with_capacity(1 << 16, publisher);
    let mut body = raw_body();
    let digits = seq_digits(&body).unwrap();
    let mut frame = Vec::new();
    let start = Instant::now();
    for seq in 0..n {
        if seq - flow.received.load(Ordering::Relaxed) >= WINDOW {
            w.flush().await.unwrap();
            flow.wait_window(seq).await;
        }
        body[digits.clone()].copy_from_slice(format!("{seq:010}").as_bytes());
        frame.clear();
        wire::encode(Verb::Pub, "bench.topic.x", &body, &mut frame).unwrap();
        w.write_all(&frame).await.unwrap();
    }
    w.flush().await.unwrap();
    let misordered = consumer.await.unwrap();
    let elapsed = start.elapsed();
    let received = flow.received.load(Ordering::Relaxed);
    Run {
        rate: received as f64 / elapsed.as_secs_f64(),
        lost: n - received,
        misordered,
    }
}

fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    let lost = runs.iter().map(|r| r.lost).sum();
    let misordered = runs.iter().map(|r| r.misordered).sum();
    let mid = runs.swap_remove(runs.len() / 2);
    Run {
        rate: mid.rate,
        lost,
        misordered,
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn main() {
    let Ok(url) = std::env::var("DECNET_TEST_NATS_URL") else {
        eprintln!("set DECNET_TEST_NATS_URL (run .ci/provision/30-nats.sh as root)");
        std::process::exit(2);
    };
    let n: u64 = std::env::var("BUS_BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let rounds: usize = std::env::var("BUS_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(ROUNDS);

    // Our broker runs on its own runtime (its own threads), like nats-server in its own
    // process; the clients share the bench runtime.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.sock");
    let broker_threads: usize = std::env::var("BUS_BENCH_BROKER_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(2);
    let broker_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(broker_threads)
        .thread_name("broker")
        .enable_all()
        .build()
        .unwrap();
    let mut opts = BrokerOptions::new(&path);
    opts.group = None;
    opts.heartbeat = None;
    let broker = Broker::bind(opts).unwrap();
    let stats = broker.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    broker_rt.spawn(broker.run(async {
        let _ = stop_rx.await;
    }));

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(only) = std::env::var("BUS_BENCH_ONLY") {
        // Profiling aid: one case, once, no reference.
        rt.block_on(async {
            let r = match only.as_str() {
                "decnet" => {
                    let topic = Topic::new("bench.topic.x").unwrap();
                    let s = SocketClient::new(&path, ClientOptions::new("prof-sub"));
                    let p = SocketClient::new(&path, ClientOptions::new("prof-pub"));
                    let sub = s.subscribe(Pattern::new("bench.>").unwrap()).await.unwrap();
                    run_bus(&p, sub, &topic, n).await
                }
                "nats" => run_raw_nats(&url, n).await,
                "raw" => run_raw_broker(&path, n).await,
                other => panic!("BUS_BENCH_ONLY={other}: expected decnet, nats or raw"),
            };
            println!("{only} only: {:.0} msgs/s, lost {}", r.rate, r.lost);
        });
        let _ = stop_tx.send(());
        broker_rt.shutdown_timeout(Duration::from_secs(2));
        return;
    }
    rt.block_on(async {
        let topic = Topic::new("bench.topic.x").unwrap();
        let pattern = Pattern::new("bench.>").unwrap();
        let mut ours = Vec::new();
        let mut reference = Vec::new();
        let mut ours_nats = Vec::new();
        let mut ours_raw = Vec::new();
        // Warm-up of each path (not reported).
        {
            let s = SocketClient::new(&path, ClientOptions::new("warm-sub"));
            let p = SocketClient::new(&path, ClientOptions::new("warm-pub"));
            let sub = s.subscribe(pattern.clone()).await.unwrap();
            run_bus(&p, sub, &topic, n / 10).await;
            run_raw_nats(&url, n / 10).await;
        }
        for _ in 0..rounds {
            let s = SocketClient::new(&path, ClientOptions::new("bench-sub"));
            let p = SocketClient::new(&path, ClientOptions::new("bench-pub"));
            let sub = s.subscribe(pattern.clone()).await.unwrap();
            ours.push(run_bus(&p, sub, &topic, n).await);
            s.close().await;
            p.close().await;

            reference.push(run_raw_nats(&url, n).await);

            ours_raw.push(run_raw_broker(&path, n).await);

            let s = NatsBus::connect(&url, "bench-sub", 1024).await.unwrap();
            let p = NatsBus::connect(&url, "bench-pub", 1024).await.unwrap();
            let sub = s.subscribe(pattern.clone()).await.unwrap();
            ours_nats.push(run_bus(&p, sub, &topic, n).await);
            s.close().await;
            p.close().await;
        }
        let (ours, reference, ours_nats, ours_raw) = (
            median(ours),
            median(reference),
            median(ours_nats),
            median(ours_raw),
        );
        let broker_drops = stats.stats().drops;
        let nproc = std::thread::available_parallelism().map_or(0, usize::from);
        println!(
            "bus throughput: 1 publisher -> 1 subscriber on `bench.>`, {PAYLOAD}-byte payloads"
        );
        println!("machine: {nproc} cpus, {}", cpu_model());
        println!("messages per run: {n}, window {WINDOW}, median of {rounds} runs");
        println!("| case | msgs/s | vs nats-server | lost | out of order |");
        println!("|---|---:|---:|---:|---:|");
        for (name, r) in [
            ("decnet broker + socket client (envelopes)", &ours),
            (
                "nats-server + async-nats (raw 256 B, reference)",
                &reference,
            ),
            ("nats-server + decnet NatsBus (envelopes)", &ours_nats),
            (
                "decnet broker + raw frame clients (broker alone)",
                &ours_raw,
            ),
        ] {
            println!(
                "| {name} | {:.0} | {:.2}x | {} | {} |",
                r.rate,
                r.rate / reference.rate,
                r.lost,
                r.misordered
            );
        }
        println!("broker queue drops: {broker_drops}");
    });
    let _ = stop_tx.send(());
    broker_rt.shutdown_timeout(Duration::from_secs(2));
}
