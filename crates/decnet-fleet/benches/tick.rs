//! Reconciler tick over 10 000 deckies with SQLite and a fake Docker observation.
//!
//! `cargo bench -p decnet-fleet --bench tick` (env `TICK_DECKIES`, `TICK_ROUNDS`).
//! Prints, per measure, the median and best of the rounds:
//! - `quiet tick`: the worker's tick on a converged fleet: its [`RowCache`] reads the rows
//!   with one light query (`list_fleet_summary`), then a hash join in memory, no write
//!   (checked by a counting wrapper, which aborts the run on a write);
//! - `stateless quiet tick`: `reconcile_once`, which reads the rows in full (one
//!   `list_fleet`, decoding every stored config) every time;
//! - `naive tick` (reference): the same comparison with one `get_fleet_decky` query per
//!   decky instead of one list;
//! - `full pass`: what the worker does every interval: list, read the state file, observe
//!   the engine (`runtime_map` over every container) and reconcile;
//! - `state file` and `observe`: those two inputs alone;
//! - `first pass`: inserting the whole fleet (10 000 upserts).

// Fixtures are built from known-good values; a panic is the right failure in a benchmark.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use decnet_core::model::MAX_DECKIES;
use decnet_core::state::{State, StateLock};
use decnet_core::{DeckyConfig, DeckyName, DecnetConfig, HostUuid};
use decnet_fleet::{Inputs, LiveInputs, Reconciler, RowCache, reconcile_once, reconcile_rows};
use decnet_runtime::engine::{
    Engine, EngineError, ErrorKind, ImageInfo, NetworkInfo, NetworkSpec, ObservedContainer,
};
use decnet_runtime::spec::{ContainerSpec, Project, container_name, labels};
use decnet_runtime::status::{DeckyState, RuntimeMap, runtime_map};
use decnet_store::{
    FleetDecky, FleetRepo, FleetState, FleetSummary, FleetUpsert, HostScope, SqliteStore, Timestamp,
};
use serde_json::json;

type Res<T> = decnet_store::Result<T>;

/// Counts writes; the quiet tick must issue none.
struct Counting {
    inner: Arc<dyn FleetRepo>,
    writes: AtomicU64,
}

#[async_trait]
impl FleetRepo for Counting {
    async fn list_fleet(&self, scope: &HostScope) -> Res<Vec<FleetDecky>> {
        self.inner.list_fleet(scope).await
    }
    async fn list_fleet_summary(&self, scope: &HostScope) -> Res<Vec<FleetSummary>> {
        self.inner.list_fleet_summary(scope).await
    }
    async fn get_fleet_decky(&self, host: &HostUuid, name: &DeckyName) -> Res<Option<FleetDecky>> {
        self.inner.get_fleet_decky(host, name).await
    }
    async fn upsert_fleet_decky(&self, decky: &FleetUpsert) -> Res<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.upsert_fleet_decky(decky).await
    }
    async fn update_fleet_state(
        &self,
        host: &HostUuid,
        name: &DeckyName,
        state: FleetState,
        last_error: Option<&str>,
    ) -> Res<Option<FleetState>> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner
            .update_fleet_state(host, name, state, last_error)
            .await
    }
    async fn delete_fleet_decky(&self, host: &HostUuid, name: &DeckyName) -> Res<bool> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.delete_fleet_decky(host, name).await
    }
    async fn stamp_fleet_observed(&self, host: &HostUuid, at: Timestamp) -> Res<u64> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.inner.stamp_fleet_observed(host, at).await
    }
}

/// An engine that only lists a fixed set of containers (the observation under test).
struct Listed(Vec<ObservedContainer>);

fn nope<T>() -> Result<T, EngineError> {
    Err(EngineError::new(
        ErrorKind::Invalid,
        "bench",
        "not part of the benchmark",
    ))
}

#[async_trait]
impl Engine for Listed {
    async fn ping(&self) -> Result<(), EngineError> {
        Ok(())
    }
    async fn image(&self, _: &str) -> Result<Option<ImageInfo>, EngineError> {
        nope()
    }
    async fn build_image(&self, _: &str, _: Vec<u8>, _: bool) -> Result<String, EngineError> {
        nope()
    }
    async fn network(&self, _: &str) -> Result<Option<NetworkInfo>, EngineError> {
        nope()
    }
    async fn create_network(&self, _: &NetworkSpec) -> Result<(), EngineError> {
        nope()
    }
    async fn remove_network(&self, _: &str) -> Result<(), EngineError> {
        nope()
    }
    async fn list_managed(&self, _: &str) -> Result<Vec<ObservedContainer>, EngineError> {
        Ok(self.0.clone())
    }
    async fn create_container(&self, _: &ContainerSpec) -> Result<String, EngineError> {
        nope()
    }
    async fn start_container(&self, _: &str) -> Result<(), EngineError> {
        nope()
    }
    async fn stop_container(&self, _: &str) -> Result<(), EngineError> {
        nope()
    }
    async fn remove_container(&self, _: &str) -> Result<(), EngineError> {
        nope()
    }
}

const SERVICES: [&str; 2] = ["ssh", "http"];

fn decky(i: usize) -> DeckyConfig {
    serde_json::from_value(json!({
        "name": format!("d-{i:05}"),
        "ip": format!("10.9.{}.{}", 1 + i / 250, 1 + i % 250),
        "services": SERVICES, "distro": "debian", "base_image": "debian:bookworm-slim",
        "hostname": format!("SRV-{i}"), "nmap_os": "linux",
        "last_mutated": 1_714_000_000.123_456_7
    }))
    .expect("bench decky is valid")
}

/// A state-file config of `deckies` (at most `MAX_DECKIES` of them).
fn config(deckies: &[DeckyConfig]) -> DecnetConfig {
    serde_json::from_value(json!({
        "mode": "unihost", "interface": "lab0", "subnet": "10.9.0.0/16", "gateway": "10.9.0.254",
        "deckies": deckies
    }))
    .expect("bench fleet is valid")
}

fn containers(deckies: &[DeckyConfig], project: &Project) -> Vec<ObservedContainer> {
    let mut out = Vec::with_capacity(deckies.len() * (1 + SERVICES.len()));
    for d in deckies {
        let name = d.name.as_str();
        for service in std::iter::once("").chain(SERVICES) {
            let cname = if service.is_empty() {
                name.to_owned()
            } else {
                container_name(name, service)
            };
            out.push(ObservedContainer {
                id: format!("id-{cname}"),
                name: cname,
                image_id: "sha256:bench".into(),
                state: "running".into(),
                status: "Up 3 hours".into(),
                labels: BTreeMap::from([
                    (labels::MANAGED.to_owned(), "true".to_owned()),
                    (
                        labels::COMPOSE_PROJECT.to_owned(),
                        project.as_str().to_owned(),
                    ),
                    (labels::DECKY.to_owned(), name.to_owned()),
                    (labels::SERVICE.to_owned(), service.to_owned()),
                ]),
            });
        }
    }
    out
}

/// Runs `f` `rounds` times; returns (median, best) in milliseconds.
async fn time<F, Fut>(rounds: usize, mut f: F) -> (f64, f64)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ms = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        f().await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[0])
}

fn env_usize(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> anyhow::Result<()> {
    let n = env_usize("TICK_DECKIES", 10_000);
    let rounds = env_usize("TICK_ROUNDS", 15).max(1);
    // The CLI runs the reconciler on a current-thread runtime: measure the same.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(n, rounds))
}

async fn run(n: usize, rounds: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sqlite = Arc::new(SqliteStore::open_path(&dir.path().join("db/decnet.db")).await?);
    let repo = Arc::new(Counting {
        inner: sqlite.clone(),
        writes: AtomicU64::new(0),
    });
    let host = HostUuid::local();
    let project = Project::default();
    let deckies: Vec<DeckyConfig> = (0..n).map(decky).collect();
    let engine = Arc::new(Listed(containers(&deckies, &project)));
    // One state file holds at most MAX_DECKIES; the runtime map of more is built per chunk
    // (each chunk lists and indexes every container, as one pass would).
    let mut seen = RuntimeMap::new();
    for chunk in deckies.chunks(MAX_DECKIES) {
        seen.extend(runtime_map(engine.as_ref(), &config(chunk), &project).await?);
    }
    anyhow::ensure!(
        seen.values().all(|r| r.state == DeckyState::Running),
        "observation is all running"
    );
    println!(
        "deckies: {n}, containers: {}, rounds: {rounds}",
        engine.0.len()
    );

    let t = Instant::now();
    let first = reconcile_once(repo.as_ref(), &host, &deckies, Some(&seen), None).await?;
    let first_ms = t.elapsed().as_secs_f64() * 1000.0;
    anyhow::ensure!(
        first.inserted == n as u64 && first.error_count == 0,
        "{first:?}"
    );
    println!("first pass (insert all): {first_ms:.1} ms");

    let writes = repo.writes.load(Ordering::Relaxed);
    let (quiet_med, quiet_best) = time(rounds, || async {
        let r = reconcile_once(repo.as_ref(), &host, &deckies, Some(&seen), None)
            .await
            .expect("quiet tick");
        assert!(r.is_quiet(), "{r:?}");
    })
    .await;
    anyhow::ensure!(
        repo.writes.load(Ordering::Relaxed) == writes,
        "the quiet tick wrote"
    );
    println!(
        "stateless quiet tick (full rows): median {quiet_med:.1} ms, best {quiet_best:.1} ms, writes 0"
    );

    let mut cache = RowCache::new(host.clone());
    cache.refresh(repo.as_ref()).await?;
    let mut ms = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        let rows = cache.refresh(repo.as_ref()).await?;
        let r = reconcile_rows(repo.as_ref(), &host, rows, &deckies, Some(&seen), None).await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(r.is_quiet(), "{r:?}");
    }
    ms.sort_by(f64::total_cmp);
    let (tick_med, tick_best) = (ms[ms.len() / 2], ms[0]);
    anyhow::ensure!(cache.full_lists() == 1, "the quiet ticks read in full");
    anyhow::ensure!(
        repo.writes.load(Ordering::Relaxed) == writes,
        "the quiet tick wrote"
    );
    println!(
        "quiet tick (worker, light listing): median {tick_med:.1} ms, best {tick_best:.1} ms, writes 0"
    );

    let (naive_med, naive_best) = time(rounds.min(5), || async {
        let mut differing = 0usize;
        for d in &deckies {
            let row = repo
                .get_fleet_decky(&host, &d.name)
                .await
                .expect("naive read");
            let want = seen
                .get(d.name.as_str())
                .map(|r| decnet_fleet::fleet_state(r.state));
            if row.map(|r| Some(r.state)) != Some(want) {
                differing += 1;
            }
        }
        assert_eq!(differing, 0);
    })
    .await;
    println!("naive tick (one query per decky): median {naive_med:.1} ms, best {naive_best:.1} ms");
    println!(
        "ratios (median): worker / naive {:.3}, worker / stateless {:.3}, stateless / naive {:.3}",
        tick_med / naive_med,
        tick_med / quiet_med,
        quiet_med / naive_med
    );

    // The worker's whole pass: rows, state file, engine observation, reconcile. A state
    // file holds at most MAX_DECKIES, so this runs on a fleet of that size.
    let m = n.min(MAX_DECKIES);
    let whole = config(&deckies[..m]);
    let engine = Arc::new(Listed(containers(&whole.deckies, &project)));
    let seen_m: RuntimeMap = runtime_map(engine.as_ref(), &whole, &project).await?;
    let sqlite_m = Arc::new(SqliteStore::open_path(&dir.path().join("db-m/decnet.db")).await?);
    let repo_m = Arc::new(Counting {
        inner: sqlite_m.clone(),
        writes: AtomicU64::new(0),
    });
    reconcile_once(repo_m.as_ref(), &host, &whole.deckies, Some(&seen_m), None).await?;
    let writes_m = repo_m.writes.load(Ordering::Relaxed);
    let state_file = dir.path().join("decnet-state.json");
    StateLock::acquire(&state_file)?.save(&State::new(
        whole.clone(),
        dir.path().join("decnet-compose.yml"),
    ))?;
    let connect_to = engine.clone();
    let inputs = Arc::new(LiveInputs::new(
        &state_file,
        project.clone(),
        Arc::new(move || {
            let e: Arc<dyn Engine> = connect_to.clone();
            Box::pin(async move { Ok(e) })
        }),
    ));
    let (load_med, _) = time(rounds, || async {
        let d = inputs.desired().await.expect("state file");
        assert_eq!(d.map(|c| c.deckies.len()), Some(m));
    })
    .await;
    let (obs_med, _) = time(rounds, || async {
        assert_eq!(inputs.observe(&whole).await.map(|r| r.len()), Some(m));
    })
    .await;
    let reconciler = Reconciler::new(repo_m.clone(), host.clone(), inputs.clone(), None);
    let (pass_med, pass_best) = time(rounds, || async {
        let r = reconciler.pass().await.expect("pass");
        assert!(r.is_quiet(), "{r:?}");
    })
    .await;
    anyhow::ensure!(
        repo_m.writes.load(Ordering::Relaxed) == writes_m,
        "a pass wrote"
    );
    println!("full pass over {m} deckies (one state file's maximum):");
    println!("  state file load: median {load_med:.1} ms");
    println!("  observe (runtime_map over every container): median {obs_med:.1} ms");
    println!("  whole pass: median {pass_med:.1} ms, best {pass_best:.1} ms, writes 0");
    sqlite.close().await;
    sqlite_m.close().await;
    Ok(())
}
