//! The agent backend over the Docker runtime (`decnet-runtime`): deploy as a diff against
//! what runs, teardown, the runtime map, and mutation as a redeploy of the changed config
//! (only the changed decky's containers are recreated, SW-31).

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use decnet_core::state::{self, State};
use decnet_core::{DeckyName, DecnetConfig, Settings};
use decnet_runtime::deploy::{DeployOptions, Silent};
use decnet_runtime::hairpin::HostNetwork;
use decnet_runtime::spec::Project;
use decnet_runtime::status::DeckyState;
use decnet_runtime::teardown::{TeardownOptions, teardown_all, teardown_decky};
use decnet_runtime::{Engine, hostnet};

use super::backend::AgentBackend;
use crate::proto::{AgentStatus, DeckyResult, DeckyRuntimeView, bounded_error};
use crate::{Error, Result};

/// The Docker-backed agent runtime.
pub struct RuntimeBackend {
    engine: Arc<dyn Engine>,
    hostnet: Arc<dyn HostNetwork>,
    settings: Settings,
    project: Project,
    decky_bin: Option<PathBuf>,
    settle: Option<std::time::Duration>,
}

impl RuntimeBackend {
    /// A backend over `engine` and `hostnet`, keeping its state in `settings`' paths.
    pub fn new(
        engine: Arc<dyn Engine>,
        hostnet: Arc<dyn HostNetwork>,
        settings: Settings,
        project: Project,
        decky_bin: Option<PathBuf>,
    ) -> Self {
        RuntimeBackend {
            engine,
            hostnet,
            settings,
            project,
            decky_bin,
            settle: None,
        }
    }

    /// Overrides the runtime's wait before the final observation (tests use zero).
    #[must_use]
    pub fn with_settle(mut self, settle: std::time::Duration) -> Self {
        self.settle = Some(settle);
        self
    }

    fn runtime_err(e: decnet_runtime::Error) -> Error {
        match e {
            decnet_runtime::Error::UnknownDecky { name, .. } => {
                Error::NotFound(format!("decky '{name}' is not deployed here"))
            }
            e if e.is_validation() => Error::Invalid(e.to_string()),
            e => Error::Runtime(e.to_string()),
        }
    }

    fn load_state(&self) -> Result<Option<State>> {
        state::load(&self.settings.state_file).map_err(Error::from)
    }

    async fn converge(
        &self,
        config: &DecnetConfig,
        no_cache: bool,
        seed: Option<u64>,
    ) -> Result<Vec<DeckyResult>> {
        let opts = DeployOptions {
            seed,
            host_ip: hostnet::host_ip_on(&config.interface, config.subnet),
            decky_bin: self.decky_bin.clone(),
            current_exe: std::env::current_exe().ok(),
            no_cache,
            project: self.project.clone(),
            ..DeployOptions::default()
        };
        let opts = match self.settle {
            Some(settle) => DeployOptions { settle, ..opts },
            None => opts,
        };
        // The runtime's deploy future cannot be proven `Send` (a higher-ranked closure
        // inside it), so it runs on a blocking thread driven by this runtime's handle;
        // that also keeps it off the request-serving tasks.
        let (engine, hostnet, settings, config) = (
            self.engine.clone(),
            self.hostnet.clone(),
            self.settings.clone(),
            config.clone(),
        );
        let handle = tokio::runtime::Handle::current();
        let report = tokio::task::spawn_blocking(move || {
            handle.block_on(decnet_runtime::deploy::deploy(
                engine.as_ref(),
                hostnet.as_ref(),
                &settings,
                &config,
                &opts,
                &Silent,
            ))
        })
        .await
        .map_err(|e| Error::Runtime(format!("deploy task: {e}")))?
        .map_err(Self::runtime_err)?;
        Ok(report
            .deckies
            .iter()
            .map(|d| {
                let error = std::iter::once(&d.base)
                    .chain(&d.services)
                    .find_map(|c| c.error.as_ref().map(|e| format!("{}: {e}", c.container)));
                DeckyResult {
                    name: d.name.clone(),
                    ok: d.state == DeckyState::Running,
                    error: match (d.state, error) {
                        (DeckyState::Running, _) => None,
                        (_, Some(e)) => Some(bounded_error(&e)),
                        (s, None) => Some(format!("decky is {}", s.as_str())),
                    },
                }
            })
            .collect())
    }
}

#[async_trait]
impl AgentBackend for RuntimeBackend {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn deploy(
        &self,
        config: &DecnetConfig,
        dry_run: bool,
        no_cache: bool,
    ) -> Result<Vec<DeckyResult>> {
        decnet_runtime::deploy::check_emulated(config).map_err(Self::runtime_err)?;
        if dry_run {
            return Ok(config
                .deckies
                .iter()
                .map(|d| DeckyResult {
                    name: d.name.to_string(),
                    ok: true,
                    error: None,
                })
                .collect());
        }
        // Keep the seed of what is deployed, so unchanged deckies stay unchanged.
        let seed = self.load_state()?.and_then(|s| s.seed);
        self.converge(config, no_cache, seed).await
    }

    async fn teardown(&self, decky: Option<&DeckyName>) -> Result<()> {
        let mut opts = TeardownOptions {
            project: self.project.clone(),
            ..TeardownOptions::default()
        };
        let report = match decky {
            None => {
                teardown_all(
                    self.engine.as_ref(),
                    self.hostnet.as_ref(),
                    &self.settings,
                    &opts,
                )
                .await
            }
            Some(name) => {
                opts.host_ip = self
                    .load_state()?
                    .and_then(|s| hostnet::host_ip_on(&s.config.interface, s.config.subnet));
                teardown_decky(
                    self.engine.as_ref(),
                    self.hostnet.as_ref(),
                    &self.settings,
                    name.as_str(),
                    &opts,
                )
                .await
            }
        }
        .map_err(Self::runtime_err)?;
        if report.failed.is_empty() {
            Ok(())
        } else {
            Err(Error::Runtime(format!(
                "{} container(s) could not be removed",
                report.failed.len()
            )))
        }
    }

    async fn mutate(
        &self,
        decky: &DeckyName,
        services: &[String],
        dry_run: bool,
    ) -> Result<Vec<String>> {
        let Some(st) = self.load_state()? else {
            return Err(Error::NotFound(
                "no active deployment on this worker".into(),
            ));
        };
        let seed = st.seed;
        let mut config = st.config;
        let Some(d) = config.deckies.iter_mut().find(|d| &d.name == decky) else {
            return Err(Error::NotFound(format!(
                "decky '{decky}' is not deployed here"
            )));
        };
        d.services = services.to_vec();
        d.service_config.retain(|slug, _| services.contains(slug));
        config.validate()?;
        decnet_runtime::deploy::check_emulated(&config).map_err(Self::runtime_err)?;
        if !dry_run {
            let results = self.converge(&config, false, seed).await?;
            if let Some(r) = results.iter().find(|r| r.name == decky.as_str() && !r.ok) {
                return Err(Error::Runtime(
                    r.error.clone().unwrap_or_else(|| "mutation failed".into()),
                ));
            }
        }
        Ok(services.to_vec())
    }

    async fn status(&self) -> AgentStatus {
        let st = match self.load_state() {
            Ok(Some(st)) => st,
            Ok(None) => return AgentStatus::empty(),
            Err(e) => {
                tracing::warn!(error = %e, "Could not read the state file");
                return AgentStatus::empty();
            }
        };
        let runtime = match decnet_runtime::status::runtime_map(
            self.engine.as_ref(),
            &st.config,
            &self.project,
        )
        .await
        {
            Ok(map) => map
                .into_iter()
                .map(|(name, r)| {
                    (
                        name,
                        DeckyRuntimeView {
                            running: r.running,
                            state: Some(r.state.as_str().to_owned()),
                            services: r.services,
                        },
                    )
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "Could not observe the runtime");
                Default::default()
            }
        };
        AgentStatus {
            deployed: true,
            mode: Some(st.config.mode),
            compose_path: Some(st.compose_path.display().to_string()),
            deckies: st.config.deckies,
            runtime,
            lan: None,
            generation: 0,
        }
    }

    async fn purge(&self) -> Result<()> {
        let opts = TeardownOptions {
            project: self.project.clone(),
            ..TeardownOptions::default()
        };
        teardown_all(
            self.engine.as_ref(),
            self.hostnet.as_ref(),
            &self.settings,
            &opts,
        )
        .await
        .map_err(Self::runtime_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use decnet_runtime::fake::{FakeEngine, FakeHostNetwork};

    use super::*;

    fn config() -> DecnetConfig {
        serde_json::from_value(serde_json::json!({
            "mode": "unihost", "interface": "lab0", "subnet": "10.9.0.0/24", "gateway": "10.9.0.1",
            "deckies": [
                {"name": "web-01", "ip": "10.9.0.10", "services": ["http", "ssh"], "distro": "debian",
                 "base_image": "debian:bookworm-slim", "hostname": "web-01"},
                {"name": "db-01", "ip": "10.9.0.11", "services": ["redis"], "distro": "debian",
                 "base_image": "debian:bookworm-slim", "hostname": "db-01"}
            ]
        }))
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deploy_status_mutate_teardown_purge() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(FakeEngine::new());
        engine.add_image(&decnet_runtime::spec::image_tag());
        let backend = RuntimeBackend::new(
            engine.clone(),
            Arc::new(FakeHostNetwork::default()),
            Settings::under(dir.path()),
            Project::default(),
            None,
        )
        .with_settle(Duration::ZERO);
        assert!(!backend.status().await.deployed);
        let web = DeckyName::new("web-01").unwrap();
        assert!(matches!(
            backend.mutate(&web, &["ssh".into()], true).await,
            Err(Error::NotFound(_))
        ));

        let results = backend.deploy(&config(), false, false).await.unwrap();
        assert_eq!(results.len(), 2);
        assert!(
            results.iter().all(|r| r.ok && r.error.is_none()),
            "{results:?}"
        );
        let status = backend.status().await;
        assert!(status.deployed);
        assert_eq!(status.deckies.len(), 2);
        assert!(status.runtime["web-01"].running);
        assert_eq!(status.runtime["web-01"].state.as_deref(), Some("running"));

        // A dry-run mutation changes nothing; a real one recreates only that decky.
        assert_eq!(
            backend.mutate(&web, &["ssh".into()], true).await.unwrap(),
            ["ssh"]
        );
        let before = backend.status().await;
        let web_before = before.deckies.iter().find(|d| d.name == web).unwrap();
        assert_eq!(web_before.services, ["http", "ssh"]);
        engine.take_calls();
        backend.mutate(&web, &["ssh".into()], false).await.unwrap();
        let calls = engine.take_calls();
        assert!(calls.iter().all(|c| !c.contains("db-01")), "{calls:?}");
        let status = backend.status().await;
        let web_cfg = status.deckies.iter().find(|d| d.name == web).unwrap();
        assert_eq!(web_cfg.services, ["ssh"]);

        // Single-decky teardown drops it from the state (no resurrection by heartbeats).
        backend.teardown(Some(&web)).await.unwrap();
        let status = backend.status().await;
        assert_eq!(status.deckies.len(), 1);
        assert!(!status.runtime.contains_key("web-01"));
        assert!(matches!(
            backend.teardown(Some(&web)).await,
            Err(Error::NotFound(_))
        ));

        backend.purge().await.unwrap();
        assert!(!backend.status().await.deployed);
        assert!(engine.container_states().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_service_fails_only_its_decky() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(FakeEngine::new());
        engine.add_image(&decnet_runtime::spec::image_tag());
        let backend = RuntimeBackend::new(
            engine.clone(),
            Arc::new(FakeHostNetwork::default()),
            Settings::under(dir.path()),
            Project::default(),
            None,
        )
        .with_settle(Duration::ZERO);
        let results = backend.deploy(&config(), true, false).await.unwrap();
        assert!(results.iter().all(|r| r.ok));
        assert!(
            engine.container_states().is_empty(),
            "a dry run starts nothing"
        );
        engine.fail(
            "start",
            "db-01-redis",
            decnet_runtime::ErrorKind::Failed,
            99,
        );
        let results = backend.deploy(&config(), false, false).await.unwrap();
        let db = results.iter().find(|r| r.name == "db-01").unwrap();
        let web = results.iter().find(|r| r.name == "web-01").unwrap();
        assert!(web.ok, "{web:?}");
        assert!(!db.ok && db.error.is_some(), "{db:?}");
    }
}
