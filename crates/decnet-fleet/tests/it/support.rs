//! Test helpers: stores (memory and SQLite), a counting and misbehaving store wrapper,
//! configs, observations and a bus tap.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use decnet_bus::{Bus, Envelope, MemoryBus, MemoryHub, Pattern, Subscription};
use decnet_core::{DeckyConfig, DeckyName, DecnetConfig, HostUuid};
use decnet_runtime::status::{DeckyRuntime, DeckyState, RuntimeMap};
use decnet_store::memory::MemoryStore;
use decnet_store::{
    FleetDecky, FleetRepo, FleetState, FleetSummary, FleetUpsert, HostScope, SqliteStore, Timestamp,
};
use serde_json::{Value, json};

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Sqlite,
}

/// A fresh store of `backend`, with what must outlive it.
pub struct Store {
    pub backend: Backend,
    pub repo: Arc<dyn FleetRepo>,
    pub path: Option<std::path::PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

impl Store {
    pub async fn new(backend: Backend) -> Store {
        match backend {
            Backend::Memory => Store {
                backend,
                repo: Arc::new(MemoryStore::new()),
                path: None,
                _dir: None,
            },
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("db").join("decnet.db");
                let store = Arc::new(SqliteStore::open_path(&path).await.unwrap());
                Store {
                    backend,
                    repo: store,
                    path: Some(path),
                    _dir: Some(dir),
                }
            }
        }
    }
}

/// Both backends the contract runs against.
pub const BACKENDS: [Backend; 2] = [Backend::Memory, Backend::Sqlite];

/// A [`FleetRepo`] wrapper that counts calls, logs writes, and misbehaves on request.
pub struct Counting {
    pub inner: Arc<dyn FleetRepo>,
    pub lists: AtomicU64,
    pub summaries: AtomicU64,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub log: Mutex<Vec<String>>,
    /// The next N `list_fleet` calls fail as a corrupt row.
    pub fail_lists: AtomicU32,
    /// Writes on these decky names fail.
    pub fail_names: Mutex<Vec<String>>,
    /// Before an update returns: set the stored row to this state first (another
    /// writer between the pass's list and its update).
    pub race_state: Mutex<Option<FleetState>>,
    /// `list_fleet` blocks forever.
    pub hang: std::sync::atomic::AtomicBool,
}

impl Counting {
    pub fn new(inner: Arc<dyn FleetRepo>) -> Arc<Counting> {
        Arc::new(Counting {
            inner,
            lists: AtomicU64::new(0),
            summaries: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            fail_lists: AtomicU32::new(0),
            fail_names: Mutex::new(Vec::new()),
            race_state: Mutex::new(None),
            hang: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    pub fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    fn write(&self, what: String) -> decnet_store::Result<()> {
        self.writes.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .fail_names
            .lock()
            .unwrap()
            .iter()
            .any(|n| what.ends_with(&format!(" {n}")));
        self.log.lock().unwrap().push(what.clone());
        if failing {
            return Err(decnet_store::Error::Invalid {
                what: "test",
                reason: format!("injected failure on {what}"),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl FleetRepo for Counting {
    async fn list_fleet(&self, scope: &HostScope) -> decnet_store::Result<Vec<FleetDecky>> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        if self.hang.load(Ordering::SeqCst) {
            futures::future::pending::<()>().await;
        }
        if self
            .fail_lists
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(decnet_store::Error::Corrupt {
                what: "decky config",
                detail: "injected".into(),
            });
        }
        self.inner.list_fleet(scope).await
    }

    async fn list_fleet_summary(
        &self,
        scope: &HostScope,
    ) -> decnet_store::Result<Vec<FleetSummary>> {
        self.summaries.fetch_add(1, Ordering::SeqCst);
        if self.hang.load(Ordering::SeqCst) {
            futures::future::pending::<()>().await;
        }
        self.inner.list_fleet_summary(scope).await
    }

    async fn get_fleet_decky(
        &self,
        host: &HostUuid,
        name: &DeckyName,
    ) -> decnet_store::Result<Option<FleetDecky>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_fleet_decky(host, name).await
    }

    async fn upsert_fleet_decky(&self, decky: &FleetUpsert) -> decnet_store::Result<()> {
        self.write(format!("upsert {}", decky.name))?;
        self.inner.upsert_fleet_decky(decky).await
    }

    async fn update_fleet_state(
        &self,
        host: &HostUuid,
        name: &DeckyName,
        state: FleetState,
        last_error: Option<&str>,
    ) -> decnet_store::Result<Option<FleetState>> {
        self.write(format!("update {name}"))?;
        let race = *self.race_state.lock().unwrap();
        if let Some(other) = race {
            // Another writer gets there between the pass's list and its update.
            self.inner
                .update_fleet_state(host, name, other, None)
                .await?;
        }
        self.inner
            .update_fleet_state(host, name, state, last_error)
            .await
    }

    async fn delete_fleet_decky(
        &self,
        host: &HostUuid,
        name: &DeckyName,
    ) -> decnet_store::Result<bool> {
        self.write(format!("delete {name}"))?;
        self.inner.delete_fleet_decky(host, name).await
    }

    async fn stamp_fleet_observed(
        &self,
        host: &HostUuid,
        at: Timestamp,
    ) -> decnet_store::Result<u64> {
        self.write(format!("stamp {host}"))?;
        self.inner.stamp_fleet_observed(host, at).await
    }
}

/// A store whose rows are objects shared with its callers and mutated in place, like an
/// ORM identity map: `update_fleet_state` changes the row object first and then reports
/// the previous state the way such a store naturally would, by reading it back from a
/// snapshot it took *before* mutating. Its `list_fleet` hands out the same objects'
/// current values, so anything that reads a row again after the write sees the new state.
/// Row objects shared by reference, keyed like the table.
type Objects = BTreeMap<(HostUuid, DeckyName), Arc<Mutex<FleetDecky>>>;

pub struct InPlace {
    pub rows: Mutex<Objects>,
    pub inner: MemoryStore,
}

impl InPlace {
    pub fn new() -> Arc<InPlace> {
        Arc::new(InPlace {
            rows: Mutex::new(BTreeMap::new()),
            inner: MemoryStore::new(),
        })
    }

    /// The current state of the local row object `n`.
    pub fn object_state(&self, n: &str) -> FleetState {
        self.object(&HostUuid::local(), &name(n))
            .map(|r| r.lock().unwrap().state)
            .unwrap()
    }

    fn object(&self, host: &HostUuid, name: &DeckyName) -> Option<Arc<Mutex<FleetDecky>>> {
        self.rows
            .lock()
            .unwrap()
            .get(&(host.clone(), name.clone()))
            .cloned()
    }
}

#[async_trait]
impl FleetRepo for InPlace {
    async fn list_fleet(&self, scope: &HostScope) -> decnet_store::Result<Vec<FleetDecky>> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .values()
            .map(|r| r.lock().unwrap().clone())
            .filter(|r| scope.contains(&r.host_uuid))
            .collect())
    }

    async fn get_fleet_decky(
        &self,
        host: &HostUuid,
        name: &DeckyName,
    ) -> decnet_store::Result<Option<FleetDecky>> {
        Ok(self.object(host, name).map(|r| r.lock().unwrap().clone()))
    }

    async fn upsert_fleet_decky(&self, decky: &FleetUpsert) -> decnet_store::Result<()> {
        self.inner.upsert_fleet_decky(decky).await?;
        let row = self
            .inner
            .get_fleet_decky(&decky.host_uuid, &decky.name)
            .await?
            .unwrap();
        let mut rows = self.rows.lock().unwrap();
        match rows.get(&(decky.host_uuid.clone(), decky.name.clone())) {
            // Mutate the existing object, as an identity map does.
            Some(obj) => *obj.lock().unwrap() = row,
            None => {
                rows.insert(
                    (decky.host_uuid.clone(), decky.name.clone()),
                    Arc::new(Mutex::new(row)),
                );
            }
        }
        Ok(())
    }

    async fn update_fleet_state(
        &self,
        host: &HostUuid,
        name: &DeckyName,
        state: FleetState,
        _last_error: Option<&str>,
    ) -> decnet_store::Result<Option<FleetState>> {
        let Some(obj) = self.object(host, name) else {
            return Ok(None);
        };
        let mut row = obj.lock().unwrap();
        let previous = row.state;
        // The object is mutated in place before the call returns.
        row.state = state;
        row.last_seen = Some(Timestamp::now());
        Ok(Some(previous))
    }

    async fn delete_fleet_decky(
        &self,
        host: &HostUuid,
        name: &DeckyName,
    ) -> decnet_store::Result<bool> {
        self.inner.delete_fleet_decky(host, name).await?;
        Ok(self
            .rows
            .lock()
            .unwrap()
            .remove(&(host.clone(), name.clone()))
            .is_some())
    }

    async fn stamp_fleet_observed(
        &self,
        host: &HostUuid,
        at: Timestamp,
    ) -> decnet_store::Result<u64> {
        let rows = self.rows.lock().unwrap();
        let mut n = 0;
        for r in rows.values() {
            let mut r = r.lock().unwrap();
            if &r.host_uuid == host {
                r.last_observed = Some(at);
                n += 1;
            }
        }
        Ok(n)
    }
}

pub fn host(id: &str) -> HostUuid {
    HostUuid::new(id).unwrap()
}

pub fn name(n: &str) -> DeckyName {
    DeckyName::new(n).unwrap()
}

/// A decky called `name` at `10.9.0.<octet>` with `services`.
pub fn decky(name: &str, octet: u8, services: &[&str]) -> DeckyConfig {
    serde_json::from_value(json!({
        "name": name, "ip": format!("10.9.0.{octet}"), "services": services,
        "distro": "debian", "base_image": "debian:bookworm-slim", "hostname": format!("SRV-{octet}"),
        "nmap_os": "linux", "last_mutated": 1714000000.123_456_7
    }))
    .unwrap()
}

/// A fleet of `deckies` on the test LAN.
pub fn fleet(deckies: Vec<DeckyConfig>) -> DecnetConfig {
    let deckies: Vec<Value> = deckies
        .iter()
        .map(|d| serde_json::to_value(d).unwrap())
        .collect();
    serde_json::from_value(json!({
        "mode": "unihost", "interface": "lab0", "subnet": "10.9.0.0/24", "gateway": "10.9.0.1",
        "deckies": deckies
    }))
    .unwrap()
}

/// A runtime map with the given aggregates.
pub fn observed(states: &[(&str, DeckyState)]) -> RuntimeMap {
    states
        .iter()
        .map(|(n, s)| {
            (
                (*n).to_owned(),
                DeckyRuntime {
                    running: *s == DeckyState::Running,
                    state: *s,
                    base: "running".into(),
                    services: BTreeMap::new(),
                },
            )
        })
        .collect()
}

/// An in-process bus for the reconciler and a tap subscribed to `decky.>`.
pub struct Tap {
    pub hub: MemoryHub,
    pub bus: MemoryBus,
    pub sub: Subscription,
    _listener: MemoryBus,
}

impl Tap {
    pub async fn new() -> Tap {
        let hub = MemoryHub::new(4096);
        let bus = hub.connect("reconciler");
        let listener = hub.connect("tap");
        let sub = listener
            .subscribe(Pattern::new("decky.>").unwrap())
            .await
            .unwrap();
        Tap {
            hub,
            bus,
            sub,
            _listener: listener,
        }
    }

    pub fn bus(&self) -> Option<&dyn Bus> {
        Some(&self.bus)
    }

    /// Every event delivered so far.
    pub fn drain(&mut self) -> Vec<Envelope> {
        let mut out = Vec::new();
        while let Some(e) = self.sub.try_recv() {
            out.push(e);
        }
        out
    }
}

/// The rows of `host`, as `(name, state)`.
pub async fn states(repo: &dyn FleetRepo, host: &HostUuid) -> Vec<(String, FleetState)> {
    repo.list_fleet(&HostScope::Host(host.clone()))
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.name.to_string(), r.state))
        .collect()
}

/// Waits until `cond` holds (polling), or fails after 5 s.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
