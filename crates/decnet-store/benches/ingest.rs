//! `IngestRepo::ingest` throughput on SQLite against a plain `insert_logs` of the same
//! events (the reference: logs only, no attacker or credential work).
//!
//! `cargo bench -p decnet-store --bench ingest` (env `INGEST_BATCHES` (default 100),
//! `INGEST_BATCH` (default 2048), `INGEST_ROUNDS` (default 3), `INGEST_DIR` (default a
//! temporary directory under the current directory), `INGEST_MEASURES` (comma list of
//! `ingest`, `insert`, `replay`), and for experiments `INGEST_SEQ_KEYS=1` (plain
//! increasing dedup keys), `INGEST_RANDOM_KEYS=1` (whole SHA-256 digests, the key layout
//! before keys were time-ordered) and `INGEST_DROP_INDEXES=a,b` (indexes to drop after
//! opening)). By default keys have the layout of the collector's keys: the event's time,
//! then a digest.
//! Every round writes the same batches into fresh databases, alternating between the
//! measures; each prints the median and best of the rounds in events per second.
//! Events are realistic: a ~300 B RFC 5424 line, ~200 B of fields JSON, a 64-hex
//! time-ordered dedup key, ~50 distinct attacker addresses per batch out of 2000, one event in ten
//! carrying a credential attempt (most of them repeats of a few hundred secrets).
//! `insert_logs` takes at most `MAX_BATCH` rows, so the reference writes each batch
//! as consecutive calls of that size (one more commit per batch of 2048).

// Fixtures are built from known-good values; a panic is the right failure in a benchmark.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use decnet_store::limits::MAX_BATCH;
use decnet_store::{
    IngestEvent, IngestRepo, LogOrigin, LogRepo, NewCredential, NewLog, SqliteStore, Timestamp,
};
use serde_json::json;
use sha2::{Digest, Sha256};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small deterministic generator (xorshift64*), so every run writes the same events.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SERVICES: [(&str, &str); 6] = [
    ("ssh", "auth_attempt"),
    ("http", "request"),
    ("ftp", "auth_attempt"),
    ("smtp", "command"),
    ("mysql", "auth_attempt"),
    ("rdp", "connect"),
];
const USERS: [&str; 6] = ["root", "admin", "ubuntu", "oracle", "test", "postgres"];

fn hex_digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn batches(count: usize, size: usize) -> Vec<Vec<IngestEvent>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let start = 1_795_000_000_000_000i64;
    let mut seq = 0i64;
    let seq_keys = std::env::var_os("INGEST_SEQ_KEYS").is_some();
    let random_keys = std::env::var_os("INGEST_RANDOM_KEYS").is_some();
    (0..count)
        .map(|_| {
            // ~50 addresses active in this batch, drawn from 2000 overall.
            let active: Vec<String> = (0..50)
                .map(|_| {
                    let n = rng.below(2000);
                    format!("203.0.{}.{}", n / 250, n % 250 + 1)
                })
                .collect();
            (0..size)
                .map(|_| {
                    seq += 1;
                    let at = start + seq * 137;
                    let ip = active[rng.below(50) as usize].clone();
                    let decky = format!("decky-{:02}", rng.below(20));
                    let (service, event_type) = SERVICES[rng.below(6) as usize];
                    let user = USERS[rng.below(6) as usize];
                    let port = 1024 + rng.below(60_000);
                    // `INGEST_SEQ_KEYS=1`: increasing keys instead of digests (to measure
                    // what the random placement of digests in the unique index costs).
                    // Default: the layout of `CollectedEvent::container_key` (the event's
                    // time in nanoseconds, 32 hex digits with the sign bit flipped, then
                    // 128 bits of a digest); `INGEST_RANDOM_KEYS=1`: whole digests, as
                    // the keys were before they were time-ordered.
                    let key = if seq_keys {
                        format!("{seq:064x}")
                    } else if random_keys {
                        hex_digest(&format!("container-{decky}/{seq}"))
                    } else {
                        let nanos = (i128::from(at) * 1000) as u128 ^ (1u128 << 127);
                        let digest = hex_digest(&format!("container-{decky}/{seq}"));
                        format!("{nanos:032x}{}", &digest[..32])
                    };
                    let fields = json!({
                        "src_ip": ip,
                        "src_port": port,
                        "username": user,
                        "client_version": "SSH-2.0-libssh2_1.10.0",
                        "session": format!("{:016x}", rng.next()),
                        "kex": "curve25519-sha256",
                        "attempt": seq % 7,
                    });
                    let time = Timestamp::from_unix_micros(at)
                        .to_rfc3339()
                        .unwrap_or_default();
                    let raw_line = format!(
                        "<38>1 {time} {decky} {service} - {event_type} [decnet@55555 \
                         key=\"{}\" decky=\"{decky}\" service=\"{service}\" rcv=\"{at}\"] \
                         [relay@55555 src_ip=\"{ip}\" src_port=\"{port}\" username=\"{user}\"] \
                         Failed password for {user} from {ip} port {port} ssh2",
                        &key[..16]
                    );
                    let credential = (rng.below(10) == 0).then(|| {
                        let secret = format!("pass{}", rng.below(300));
                        NewCredential {
                            attacker_ip: ip.clone(),
                            decky: decky.clone(),
                            service: service.into(),
                            principal: Some(user.into()),
                            secret_kind: "plaintext".into(),
                            secret_sha256: hex_digest(&secret),
                            secret_b64: Some(secret.clone()),
                            secret_printable: Some(secret),
                            outcome: Some("failure".into()),
                            fields: Default::default(),
                            seen_at: Timestamp::from_unix_micros(at),
                        }
                    });
                    IngestEvent {
                        log: NewLog {
                            dedup_key: key,
                            timestamp: Timestamp::from_unix_micros(at),
                            decky,
                            service: service.into(),
                            event_type: event_type.into(),
                            attacker_ip: ip,
                            severity: Some(4),
                            fields: fields.as_object().cloned().unwrap_or_default(),
                            msg: Some(format!("Failed password for {user}")),
                            raw_line,
                            source_worker: Some("worker-01".into()),
                            trace_id: None,
                            span_id: None,
                            origin: LogOrigin::Forwarded,
                        },
                        credential,
                    }
                })
                .collect()
        })
        .collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Measure {
    Ingest,
    InsertLogs,
    Replay,
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat`.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and
    // 15th fields overall, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Wall and CPU time of one measure.
type Took = (Duration, Duration);

async fn run(dir: &Path, round: usize, measure: Measure, data: &[Vec<IngestEvent>]) -> Took {
    let path = dir.join(format!("r{round}-{}.db", measure as u8));
    let store = SqliteStore::open_path(&path).await.expect("open");
    if let Ok(drop) = std::env::var("INGEST_DROP_INDEXES") {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .expect("connect");
        for name in drop.split(',').filter(|n| !n.is_empty()) {
            sqlx::query(&format!("DROP INDEX {name}"))
                .execute(&mut c)
                .await
                .expect("drop");
        }
        c.close().await.expect("close");
    }
    let logs: Vec<Vec<NewLog>> = data
        .iter()
        .map(|b| b.iter().map(|e| e.log.clone()).collect())
        .collect();
    if measure == Measure::Replay {
        for b in data {
            store.ingest(b).await.expect("ingest");
        }
    }
    let started = Instant::now();
    let cpu = cpu_time();
    for (b, l) in data.iter().zip(&logs) {
        match measure {
            Measure::Ingest | Measure::Replay => {
                let out = store.ingest(b).await.expect("ingest");
                let expect = if measure == Measure::Replay {
                    0
                } else {
                    b.len()
                };
                assert_eq!(out.inserted.len(), expect);
            }
            Measure::InsertLogs => {
                for part in l.chunks(MAX_BATCH) {
                    store.insert_logs(part).await.expect("insert");
                }
            }
        }
    }
    let took = (started.elapsed(), cpu_time().saturating_sub(cpu));
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    took
}

fn summary(name: &str, events: usize, times: &mut [Took]) -> f64 {
    let rate = |d: Duration| events as f64 / d.as_secs_f64().max(1e-9);
    let mut wall: Vec<Duration> = times.iter().map(|t| t.0).collect();
    let mut cpu: Vec<Duration> = times.iter().map(|t| t.1).collect();
    wall.sort();
    cpu.sort();
    let median = rate(wall[wall.len() / 2]);
    println!(
        "{name:<32} median {median:>8.0} events/s  best {:>8.0}  per CPU-second {:>8.0}",
        rate(wall[0]),
        rate(cpu[cpu.len() / 2]),
    );
    median
}

fn main() {
    let count = env("INGEST_BATCHES", 100);
    let size = env("INGEST_BATCH", 2048);
    let rounds = env("INGEST_ROUNDS", 3).max(1);
    let data = batches(count, size);
    let events = count * size;
    let creds: usize = data
        .iter()
        .flatten()
        .filter(|e| e.credential.is_some())
        .count();
    let line: usize = data.iter().flatten().map(|e| e.log.raw_line.len()).sum();
    let fields: usize = data
        .iter()
        .flatten()
        .map(|e| serde_json::to_string(&e.log.fields).map_or(0, |s| s.len()))
        .sum();
    println!(
        "{count} batches of {size} events ({events} events, {creds} with credentials, \
         mean line {} B, mean fields {} B), {rounds} rounds",
        line / events.max(1),
        fields / events.max(1)
    );
    let base = std::env::var_os("INGEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::current_dir().expect("cwd"));
    let dir = tempfile::Builder::new()
        .prefix("decnet-ingest-bench")
        .tempdir_in(base)
        .expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (mut ingest, mut insert, mut replay) = (Vec::new(), Vec::new(), Vec::new());
    // `INGEST_MEASURES`: a comma list of ingest, insert, replay (default all three).
    let wanted = std::env::var("INGEST_MEASURES").unwrap_or_else(|_| "ingest,insert,replay".into());
    let want = |m: &str| wanted.split(',').any(|w| w == m);
    rt.block_on(async {
        for round in 0..rounds {
            if want("ingest") {
                ingest.push(run(dir.path(), round, Measure::Ingest, &data).await);
            }
            if want("insert") {
                insert.push(run(dir.path(), round, Measure::InsertLogs, &data).await);
            }
            if want("replay") {
                replay.push(run(dir.path(), round, Measure::Replay, &data).await);
            }
        }
    });
    let a =
        (!ingest.is_empty()).then(|| summary("ingest (logs+attackers+creds)", events, &mut ingest));
    let b = (!insert.is_empty()).then(|| summary("insert_logs (reference)", events, &mut insert));
    if !replay.is_empty() {
        summary("ingest replay (all duplicates)", events, &mut replay);
    }
    if let (Some(a), Some(b)) = (a, b) {
        println!("ingest / insert_logs = {:.2}", a / b);
    }
}
