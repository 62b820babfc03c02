//! The agent's view of the container runtime: a small trait, and an in-memory fake for
//! tests (see [`FakeBackend`] for how the `decnet` binary can select it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use decnet_core::{DeckyName, DecnetConfig};

use crate::proto::{AgentStatus, DeckyResult, DeckyRuntimeView};
use crate::{Error, Result};

/// What the agent needs from the runtime. Implementations may assume calls arrive one
/// at a time (the agent's queue serializes them, SW-30), except [`AgentBackend::status`],
/// which may run at any time.
#[async_trait]
pub trait AgentBackend: Send + Sync {
    /// A short name for logs and `/health` (`docker`, `fake`).
    fn name(&self) -> &'static str;

    /// Converges this host to `config` (the whole shard: deckies not listed are
    /// removed). Returns one result per decky, in config order; a decky that fails does
    /// not fail the others.
    ///
    /// # Errors
    /// When nothing could be attempted (validation, engine unreachable).
    async fn deploy(
        &self,
        config: &DecnetConfig,
        dry_run: bool,
        no_cache: bool,
    ) -> Result<Vec<DeckyResult>>;

    /// Removes one decky (and drops it from the saved state, so it does not come back,
    /// SW-22) or, with `None`, everything deployed. Idempotent.
    ///
    /// # Errors
    /// [`Error::NotFound`] for an unknown decky; runtime failures.
    async fn teardown(&self, decky: Option<&DeckyName>) -> Result<()>;

    /// Sets one decky's services. A dry run only validates and returns the services.
    ///
    /// # Errors
    /// [`Error::NotFound`] without a deployment or for an unknown decky; runtime failures.
    async fn mutate(
        &self,
        decky: &DeckyName,
        services: &[String],
        dry_run: bool,
    ) -> Result<Vec<String>>;

    /// The `/status` snapshot. Never fails: an unobservable runtime gives an empty
    /// `runtime` map (the caller adds `lan`).
    async fn status(&self) -> AgentStatus;

    /// Removes every DECNET-labelled container and network, deployed or not (the
    /// pre-reap step of self-destruct). Best effort.
    ///
    /// # Errors
    /// Runtime failures (logged by the caller, never fatal).
    async fn purge(&self) -> Result<()>;
}

/// Test controls and recorded calls of a [`FakeBackend`].
#[derive(Debug, Default)]
pub struct FakeState {
    /// The deployed config.
    pub config: Option<DecnetConfig>,
    /// Deckies that "run".
    pub running: BTreeSet<String>,
    /// Deckies whose deploy fails.
    pub fail: BTreeSet<String>,
    /// How long a deploy takes.
    pub delay: Duration,
    /// Every config deployed, in order.
    pub deployed: Vec<DecnetConfig>,
    /// Every call, as text (`deploy 3`, `teardown d1`, `purge`).
    pub calls: Vec<String>,
    /// Most operations running at once (to check serialization).
    pub max_concurrent: usize,
    concurrent: usize,
}

/// An in-memory runtime: deploy "starts" every decky except those in
/// [`FakeState::fail`], after [`FakeState::delay`].
///
/// The `decnet` binary uses it only when `DECNET_TEST_FAKE_RUNTIME` is exactly
/// [`FakeBackend::ENABLE_PHRASE`] *and* the process is not a systemd service
/// (`INVOCATION_ID` unset); it then logs a warning and `/health` reports `backend: fake`.
/// `DECNET_TEST_FAKE_RUNTIME_FAIL` (comma-separated decky names) and
/// `DECNET_TEST_FAKE_RUNTIME_DELAY_MS` set the failures and delay.
#[derive(Debug, Clone, Default)]
pub struct FakeBackend {
    state: Arc<Mutex<FakeState>>,
}

impl FakeBackend {
    /// The value `DECNET_TEST_FAKE_RUNTIME` must have.
    pub const ENABLE_PHRASE: &'static str = "deploys-nothing";

    /// A fake with nothing deployed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the state (a poisoned lock is still usable: the fake's state is plain data).
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The fake the binary builds from its environment, when enabled. `env` maps the
    /// three `DECNET_TEST_FAKE_RUNTIME*` variables and `INVOCATION_ID`.
    pub fn from_env(env: &BTreeMap<String, String>) -> Option<Self> {
        if env.get("DECNET_TEST_FAKE_RUNTIME").map(String::as_str) != Some(Self::ENABLE_PHRASE) {
            return None;
        }
        if env.get("INVOCATION_ID").is_some_and(|v| !v.is_empty()) {
            tracing::error!("DECNET_TEST_FAKE_RUNTIME is ignored under systemd");
            return None;
        }
        let fake = Self::new();
        {
            let mut s = fake.state();
            if let Some(list) = env.get("DECNET_TEST_FAKE_RUNTIME_FAIL") {
                s.fail = list
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            if let Some(ms) = env
                .get("DECNET_TEST_FAKE_RUNTIME_DELAY_MS")
                .and_then(|v| v.parse::<u64>().ok())
            {
                s.delay = Duration::from_millis(ms.min(600_000));
            }
        }
        Some(fake)
    }

    fn enter(&self, call: String) -> Duration {
        let mut s = self.state();
        s.calls.push(call);
        s.concurrent += 1;
        s.max_concurrent = s.max_concurrent.max(s.concurrent);
        s.delay
    }

    fn leave(&self) {
        let mut s = self.state();
        s.concurrent = s.concurrent.saturating_sub(1);
    }
}

#[async_trait]
impl AgentBackend for FakeBackend {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn deploy(
        &self,
        config: &DecnetConfig,
        dry_run: bool,
        _no_cache: bool,
    ) -> Result<Vec<DeckyResult>> {
        let delay = self.enter(format!("deploy {}", config.deckies.len()));
        tokio::time::sleep(delay).await;
        let mut s = self.state();
        s.concurrent = s.concurrent.saturating_sub(1);
        s.deployed.push(config.clone());
        let results: Vec<DeckyResult> = config
            .deckies
            .iter()
            .map(|d| {
                let fails = s.fail.contains(d.name.as_str());
                DeckyResult {
                    name: d.name.to_string(),
                    ok: !fails,
                    error: fails.then(|| format!("service containers of {} exited", d.name)),
                }
            })
            .collect();
        if !dry_run {
            s.running = results
                .iter()
                .filter(|r| r.ok)
                .map(|r| r.name.clone())
                .collect();
            s.config = Some(config.clone());
        }
        Ok(results)
    }

    async fn teardown(&self, decky: Option<&DeckyName>) -> Result<()> {
        let delay = self.enter(format!(
            "teardown {}",
            decky.map_or("all", DeckyName::as_str)
        ));
        tokio::time::sleep(delay).await;
        self.leave();
        let mut s = self.state();
        match decky {
            None => {
                s.config = None;
                s.running.clear();
            }
            Some(name) => {
                let Some(config) = s.config.as_mut() else {
                    return Err(Error::NotFound(
                        "no active deployment on this worker".into(),
                    ));
                };
                let before = config.deckies.len();
                config.deckies.retain(|d| &d.name != name);
                if config.deckies.len() == before {
                    return Err(Error::NotFound(format!(
                        "decky '{name}' is not deployed here"
                    )));
                }
                if config.deckies.is_empty() {
                    s.config = None;
                }
                s.running.remove(name.as_str());
            }
        }
        Ok(())
    }

    async fn mutate(
        &self,
        decky: &DeckyName,
        services: &[String],
        dry_run: bool,
    ) -> Result<Vec<String>> {
        self.enter(format!("mutate {decky}"));
        self.leave();
        let mut s = self.state();
        let Some(config) = s.config.as_mut() else {
            return Err(Error::NotFound(
                "no active deployment on this worker".into(),
            ));
        };
        let Some(d) = config.deckies.iter_mut().find(|d| &d.name == decky) else {
            return Err(Error::NotFound(format!(
                "decky '{decky}' is not deployed here"
            )));
        };
        if !dry_run {
            d.services = services.to_vec();
        }
        Ok(services.to_vec())
    }

    async fn status(&self) -> AgentStatus {
        let s = self.state();
        let Some(config) = &s.config else {
            return AgentStatus::empty();
        };
        let runtime = config
            .deckies
            .iter()
            .map(|d| {
                let running = s.running.contains(d.name.as_str());
                let status = if running { "running" } else { "exited" };
                (
                    d.name.to_string(),
                    DeckyRuntimeView {
                        running,
                        state: Some(if running { "running" } else { "failed" }.to_owned()),
                        services: d
                            .services
                            .iter()
                            .map(|x| (x.clone(), status.to_owned()))
                            .collect(),
                    },
                )
            })
            .collect();
        AgentStatus {
            deployed: true,
            mode: Some(config.mode),
            compose_path: None,
            deckies: config.deckies.clone(),
            runtime,
            lan: None,
            generation: 0,
        }
    }

    async fn purge(&self) -> Result<()> {
        self.enter("purge".into());
        self.leave();
        let mut s = self.state();
        s.config = None;
        s.running.clear();
        Ok(())
    }
}
