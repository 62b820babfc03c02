//! Live deploy: converge the engine to a config. Validate → image → network (+ hairpin)
//! → save state → create and start containers, bounded and concurrent, as a diff against
//! what runs: unchanged containers are left alone, changed ones recreated, those of
//! deckies no longer wanted removed. A service that fails does not roll back the others:
//! the report says what runs, per decky and per service.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read as _, Write as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use decnet_core::state::{State, StateLock};
use decnet_core::{DecnetConfig, Settings, catalog};
use futures::StreamExt as _;
use serde::Serialize;

use crate::Error;
use crate::compose;
use crate::engine::{Engine, ObservedContainer, Retry};
use crate::hairpin::{HairpinPlan, HostNetwork};
use crate::image::{self, ImageOutcome};
use crate::network::{self, NetworkOutcome};
use crate::spec::{self, ContainerSpec, DECKY_UID, Project, SpecOptions};
use crate::status::{DeckyState, aggregate};

/// Default number of deckies converged at the same time. Starting containers is bound by
/// the daemon's CPU (containerd shims, runc), not by round trips: on a 2-core host 20
/// deckies x 3 services took 13.3 s at 4, 11.5 s at 8 and 11.1 s at 20 deckies at once
/// (docs/benchmarks.md), so the default keeps the daemon busy without queueing a whole
/// large fleet on it at once.
pub const DEFAULT_JOBS: u16 = 16;
/// Largest accepted `jobs`.
pub const MAX_JOBS: u16 = 64;

/// Progress of a deploy, for a progress bar or log lines. Every method has a no-op
/// default.
pub trait Progress: Send + Sync {
    /// A step of the deploy begins (`building the decky image`).
    fn stage(&self, _what: &str) {}
    /// The container phase begins with `total` containers to converge.
    fn begin(&self, _total: u64) {}
    /// One container is done.
    fn container(&self, _outcome: &ContainerOutcome) {}
    /// The container phase is over.
    fn end(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;
impl Progress for Silent {}

/// Options of [`deploy`].
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// The parent interface's own address, kept off the hairpin.
    pub host_ip: Option<Ipv4Addr>,
    /// The decky binary to build the image from (`--decky-bin` / `DECNET_DECKY_BIN`).
    pub decky_bin: Option<PathBuf>,
    /// The running executable (`decnet-decky` is looked for beside it).
    pub current_exe: Option<PathBuf>,
    /// Rebuild the decky image without the build cache even if it exists.
    pub no_cache: bool,
    /// Deckies converged at once.
    pub jobs: usize,
    /// Retry policy for transient engine errors.
    pub retry: Retry,
    /// Wait before the final observation, so services that exit at once are reported.
    pub settle: Duration,
    /// The plan's seed, recorded in the state so the next plan can reuse it.
    pub seed: Option<u64>,
    /// The project everything is created in (`decnet`; labs and tests use their own).
    pub project: Project,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            host_ip: None,
            decky_bin: None,
            current_exe: None,
            no_cache: false,
            jobs: usize::from(DEFAULT_JOBS),
            retry: Retry::default(),
            settle: Duration::from_secs(1),
            seed: None,
            project: Project::default(),
        }
    }
}

/// What was done to one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// It matched its spec and ran: untouched.
    Unchanged,
    /// It did not exist.
    Created,
    /// Its spec or image changed (or its base was rebuilt): removed and created again.
    Recreated,
    /// It matched but was stopped: started.
    Started,
}

/// The outcome of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerOutcome {
    /// Container name.
    pub container: String,
    /// Service slug; `None` for the base container.
    pub service: Option<String>,
    /// What was attempted.
    pub action: Action,
    /// True when it runs (observed after the deploy).
    pub running: bool,
    /// Docker's status text (`Up 2 seconds`, `Exited (2) …`), when observed.
    pub status: String,
    /// Why it does not run.
    pub error: Option<String>,
}

/// The outcome of one decky.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeckyOutcome {
    /// Decky name.
    pub name: String,
    /// Its address.
    pub ip: Ipv4Addr,
    /// Aggregate health after the deploy.
    pub state: DeckyState,
    /// The base container.
    pub base: ContainerOutcome,
    /// One per service, in the decky's order.
    pub services: Vec<ContainerOutcome>,
}

/// The result of a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployReport {
    /// The decky image.
    pub image: ImageOutcome,
    /// The decky network.
    pub network: NetworkOutcome,
    /// The hairpin set up on the host.
    pub hairpin: HairpinPlan,
    /// Containers removed because their decky or service is no longer wanted.
    pub removed: Vec<String>,
    /// Per decky.
    pub deckies: Vec<DeckyOutcome>,
}

impl DeployReport {
    fn outcomes(&self) -> impl Iterator<Item = &ContainerOutcome> {
        self.deckies
            .iter()
            .flat_map(|d| std::iter::once(&d.base).chain(&d.services))
    }

    /// True when every container runs.
    pub fn all_running(&self) -> bool {
        self.outcomes().all(|o| o.running)
    }

    /// True when at least one container runs.
    pub fn any_running(&self) -> bool {
        self.outcomes().any(|o| o.running)
    }

    /// True when nothing was created, recreated, started or removed.
    pub fn unchanged(&self) -> bool {
        self.removed.is_empty() && self.outcomes().all(|o| o.action == Action::Unchanged)
    }
}

/// Refuses services this release's decky binary does not emulate (custom services
/// excepted). Needs no engine, so callers can check before connecting.
///
/// # Errors
/// [`Error::Invalid`] naming each service and its decky.
pub fn check_emulated(config: &DecnetConfig) -> Result<(), Error> {
    let mut not_emulated = BTreeSet::new();
    for decky in &config.deckies {
        for service in &decky.services {
            if config.custom_service(service).is_some() {
                continue;
            }
            match catalog::service(service) {
                Ok(spec) if spec.emulated => {}
                _ => {
                    not_emulated.insert(format!("{service} (decky {})", decky.name));
                }
            }
        }
    }
    if not_emulated.is_empty() {
        return Ok(());
    }
    let emulated: Vec<&str> = catalog::SERVICES
        .iter()
        .filter(|s| s.emulated)
        .map(|s| s.slug)
        .collect();
    Err(Error::Invalid(format!(
        "this release's decky binary does not emulate: {}; emulated services: {}",
        not_emulated.into_iter().collect::<Vec<_>>().join(", "),
        emulated.join(", ")
    )))
}

/// Refuses what cannot be deployed, before anything is changed: services this release's
/// decky binary does not emulate ([`check_emulated`]), and custom images that are not
/// present locally (deploy never pulls). Returns the ids of the custom images.
///
/// # Errors
/// [`Error::Invalid`] naming the service or image; [`Error::Engine`] when the engine fails.
pub async fn validate(
    engine: &dyn Engine,
    config: &DecnetConfig,
) -> Result<BTreeMap<String, String>, Error> {
    check_emulated(config)?;
    let mut ids = BTreeMap::new();
    for custom in &config.custom_services {
        let used = config
            .deckies
            .iter()
            .any(|d| d.services.iter().any(|s| s == &custom.name));
        if !used {
            continue;
        }
        match engine.image(&custom.binary).await? {
            Some(img) => {
                ids.insert(custom.binary.clone(), img.id);
            }
            None => {
                return Err(Error::Invalid(format!(
                    "custom service '{}' uses image '{}', which is not present locally; \
                     build or load it first (deploy never pulls from a registry)",
                    custom.name, custom.binary
                )));
            }
        }
    }
    Ok(ids)
}

/// Reads the per-installation key, creating it (32 random bytes, mode 0600) on first use.
///
/// # Errors
/// [`Error::Io`], or [`Error::Invalid`] when the file is not 32 bytes.
pub fn load_or_create_instance_key(path: &Path) -> Result<[u8; 32], Error> {
    match std::fs::read(path) {
        Ok(bytes) => {
            return <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                Error::Invalid(format!(
                    "{} is not a 32-byte key ({} bytes)",
                    path.display(),
                    bytes.len()
                ))
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("read", path, e)),
    }
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .map_err(|e| Error::io("read", Path::new("/dev/urandom"), e))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    }
    use std::os::unix::fs::OpenOptionsExt as _;
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| {
            f.write_all(&key)?;
            f.sync_all()
        });
    match written {
        Ok(()) => Ok(key),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            load_or_create_instance_key(path)
        }
        Err(e) => Err(Error::io("write", path, e)),
    }
}

/// Writes `text` to `path` atomically (temporary file, fsync, rename).
///
/// # Errors
/// [`Error::Io`].
pub fn write_atomic(path: &Path, text: &str) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io("write", path, e)
    })
}

/// Creates each service's artifacts directory, owned by the unprivileged decky user so
/// the container can write there.
fn prepare_artifacts(specs: &[ContainerSpec]) -> Result<(), Error> {
    for spec in specs {
        for (host, _) in &spec.volumes {
            std::fs::create_dir_all(host).map_err(|e| Error::io("create directory", host, e))?;
            let uid = nix::unistd::Uid::from_raw(DECKY_UID);
            let gid = nix::unistd::Gid::from_raw(DECKY_UID);
            match nix::unistd::chown(host, Some(uid), Some(gid)) {
                Ok(()) => {}
                Err(nix::errno::Errno::EPERM) => tracing::warn!(
                    path = %host.display(),
                    "Cannot give the artifacts directory to uid {DECKY_UID} (not root): the service may not be able to store artifacts"
                ),
                Err(e) => {
                    return Err(Error::io("chown", host, std::io::Error::from(e)));
                }
            }
        }
    }
    Ok(())
}

/// The compose export of `config`, as `decnet compose export` writes it.
pub fn render_export(
    config: &DecnetConfig,
    settings: &Settings,
    key: [u8; 32],
    project: &Project,
) -> String {
    let specs = spec::fleet_containers(
        config,
        &SpecOptions::new(spec::image_tag(), settings.artifacts_dir.clone(), Some(key))
            .with_project(project.clone()),
    );
    compose::render(config, &specs, None)
}

type Observed = BTreeMap<(String, Option<String>), ObservedContainer>;

struct Ctx<'a> {
    engine: &'a dyn Engine,
    retry: Retry,
    progress: &'a dyn Progress,
    /// Image reference → id, to recreate containers whose image was rebuilt.
    image_ids: &'a BTreeMap<String, String>,
}

impl Ctx<'_> {
    fn matches(&self, spec: &ContainerSpec, obs: &ObservedContainer) -> bool {
        obs.spec_hash() == spec.labels.get(spec::labels::SPEC_HASH).map(String::as_str)
            && self
                .image_ids
                .get(&spec.image)
                .is_none_or(|id| *id == obs.image_id)
    }

    async fn remove(&self, obs: &ObservedContainer) -> Result<(), String> {
        self.retry
            .run(|| self.engine.remove_container(&obs.id))
            .await
            .map_err(|e| e.to_string())
    }

    /// Creates and starts `spec`.
    async fn launch(&self, spec: &ContainerSpec) -> Result<(), String> {
        let id = self
            .retry
            .run(|| self.engine.create_container(spec))
            .await
            .map_err(|e| e.to_string())?;
        self.retry
            .run(|| self.engine.start_container(&id))
            .await
            .map_err(|e| e.to_string())
    }

    fn outcome(
        &self,
        spec: &ContainerSpec,
        action: Action,
        result: Result<(), String>,
    ) -> ContainerOutcome {
        let outcome = ContainerOutcome {
            container: spec.name.clone(),
            service: spec.service().map(str::to_owned),
            action,
            running: result.is_ok(),
            status: String::new(),
            error: result.err(),
        };
        self.progress.container(&outcome);
        outcome
    }

    /// Converges one decky: `specs` is its base then its services, `observed` what runs.
    async fn decky(&self, specs: &[ContainerSpec], observed: &Observed) -> Vec<ContainerOutcome> {
        let Some((base, services)) = specs.split_first() else {
            return Vec::new();
        };
        let decky = base.decky.clone();
        let base_obs = observed.get(&(decky.clone(), None));
        let base_ok = base_obs.is_some_and(|o| self.matches(base, o) && o.is_running());
        let mut out = Vec::with_capacity(specs.len());
        if !base_ok {
            // A new base means a new network namespace: every service container joined
            // the old one, so all of them are rebuilt with it.
            let mut existed = BTreeSet::new();
            for svc in services {
                if let Some(o) = observed.get(&(decky.clone(), svc.service().map(str::to_owned))) {
                    existed.insert(svc.name.clone());
                    if let Err(e) = self.remove(o).await {
                        tracing::warn!(container = %o.name, error = %e, "Removing a stale service container failed");
                    }
                }
            }
            let action = if base_obs.is_some() {
                Action::Recreated
            } else {
                Action::Created
            };
            let result = match base_obs {
                Some(o) => self.remove(o).await,
                None => Ok(()),
            };
            let result = match result {
                Ok(()) => self.launch(base).await,
                Err(e) => Err(e),
            };
            let base_failed = result.as_ref().err().cloned();
            out.push(self.outcome(base, action, result));
            let launches = services.iter().map(|svc| async {
                let action = if existed.contains(&svc.name) {
                    Action::Recreated
                } else {
                    Action::Created
                };
                let result = match &base_failed {
                    Some(e) => Err(format!("not started: the base container failed ({e})")),
                    None => self.launch(svc).await,
                };
                self.outcome(svc, action, result)
            });
            out.extend(futures::future::join_all(launches).await);
            return out;
        }
        out.push(self.outcome(base, Action::Unchanged, Ok(())));
        let converge = services.iter().map(|svc| async {
            let obs = observed.get(&(decky.clone(), svc.service().map(str::to_owned)));
            let (action, result) = match obs {
                None => (Action::Created, self.launch(svc).await),
                Some(o) if !self.matches(svc, o) => {
                    let r = match self.remove(o).await {
                        Ok(()) => self.launch(svc).await,
                        Err(e) => Err(e),
                    };
                    (Action::Recreated, r)
                }
                Some(o) if !o.is_running() => (
                    Action::Started,
                    self.retry
                        .run(|| self.engine.start_container(&o.id))
                        .await
                        .map_err(|e| e.to_string()),
                ),
                Some(_) => (Action::Unchanged, Ok(())),
            };
            self.outcome(svc, action, result)
        });
        out.extend(futures::future::join_all(converge).await);
        out
    }
}

/// Deploys `config` on this host's engine and saves it as the state.
///
/// Holds the state lock for the whole run, so two deploys (or a deploy and a teardown)
/// never interleave. Re-deploying the same config changes nothing.
///
/// # Errors
/// Validation errors before anything is changed; engine, network and state errors of
/// the steps before the containers. Container failures are not errors: they are in the
/// report.
pub async fn deploy(
    engine: &dyn Engine,
    hostnet: &dyn HostNetwork,
    settings: &Settings,
    config: &DecnetConfig,
    opts: &DeployOptions,
    progress: &dyn Progress,
) -> Result<DeployReport, Error> {
    let lock = StateLock::acquire(&settings.state_file)?;
    progress.stage("validating the fleet");
    let mut image_ids = validate(engine, config).await?;
    let project = &opts.project;
    let hairpin = HairpinPlan::for_config(config, opts.host_ip, project)?;
    let key = load_or_create_instance_key(&settings.instance_key)?;

    progress.stage("checking the decky image");
    let image = image::ensure_image(
        engine,
        || image::locate_decky_bin(opts.decky_bin.as_deref(), opts.current_exe.as_deref()),
        opts.no_cache,
        opts.no_cache,
    )
    .await?;
    image_ids.insert(image.tag.clone(), image.id.clone());

    progress.stage("setting up the decky network");
    let observed = opts
        .retry
        .run(|| engine.list_managed(project.as_str()))
        .await?;
    let managed: BTreeSet<String> = observed.iter().map(|c| c.id.clone()).collect();
    let network = network::ensure(engine, &network::desired(config, project), &managed).await?;
    let observed = if network == NetworkOutcome::Rebuilt {
        opts.retry
            .run(|| engine.list_managed(project.as_str()))
            .await?
    } else {
        observed
    };
    if let Err(e) = hostnet.ensure_hairpin(&hairpin).await {
        // A network this run created, with nothing on it yet, is rolled back: a failed
        // deploy leaves nothing new behind.
        if network == NetworkOutcome::Created && observed.is_empty() {
            let _ = engine.remove_network(&project.network()).await;
        }
        return Err(e);
    }

    progress.stage("saving the state");
    let specs = spec::fleet_containers(
        config,
        &SpecOptions::new(image.tag.clone(), settings.artifacts_dir.clone(), Some(key))
            .with_project(project.clone()),
    );
    let export = compose::render(config, &specs, None);
    write_atomic(&settings.compose_file, &export)?;
    lock.save(&State::new(config.clone(), settings.compose_file.clone()).with_seed(opts.seed))?;
    prepare_artifacts(&specs)?;

    // Containers no longer wanted go first: they may hold addresses new deckies need.
    let wanted: BTreeSet<(String, Option<String>)> = specs
        .iter()
        .map(|s| (s.decky.clone(), s.service().map(str::to_owned)))
        .collect();
    let mut stale: Vec<&ObservedContainer> = observed
        .iter()
        .filter(|c| {
            c.decky()
                .is_some_and(|d| !wanted.contains(&(d.to_owned(), c.service().map(str::to_owned))))
        })
        .collect();
    // Services before their base.
    stale.sort_by_key(|c| c.service().is_none());
    let ctx = Ctx {
        engine,
        retry: opts.retry,
        progress,
        image_ids: &image_ids,
    };
    let mut removed = Vec::new();
    for c in stale {
        match ctx.remove(c).await {
            Ok(()) => removed.push(c.name.clone()),
            Err(e) => {
                tracing::warn!(container = %c.name, error = %e, "Removing a container no longer wanted failed");
            }
        }
    }

    let by_key: Observed = observed
        .into_iter()
        .filter_map(|c| {
            let key = (c.decky()?.to_owned(), c.service().map(str::to_owned));
            Some((key, c))
        })
        .collect();
    let mut per_decky: Vec<&[ContainerSpec]> = Vec::new();
    let mut rest = specs.as_slice();
    while let Some(first) = rest.first() {
        let n = rest.iter().take_while(|s| s.decky == first.decky).count();
        let (head, tail) = rest.split_at(n);
        per_decky.push(head);
        rest = tail;
    }
    progress.stage("starting containers");
    progress.begin(specs.len() as u64);
    let jobs = opts.jobs.clamp(1, usize::from(MAX_JOBS));
    let results: Vec<Vec<ContainerOutcome>> = futures::stream::iter(per_decky)
        .map(|d| ctx.decky(d, &by_key))
        .buffered(jobs)
        .collect()
        .await;
    progress.end();

    let changed = !removed.is_empty()
        || results
            .iter()
            .flatten()
            .any(|o| o.action != Action::Unchanged);
    if changed && !opts.settle.is_zero() {
        tokio::time::sleep(opts.settle).await;
    }
    let final_view = match opts
        .retry
        .run(|| engine.list_managed(project.as_str()))
        .await
    {
        Ok(list) => Some(
            crate::status::index(&list)
                .into_iter()
                .map(|(k, v)| (k, v.clone()))
                .collect::<Observed>(),
        ),
        Err(e) => {
            tracing::warn!(error = %e, "Could not observe the containers after the deploy");
            None
        }
    };
    let mut deckies = Vec::with_capacity(config.deckies.len());
    for (decky, mut outcomes) in config.deckies.iter().zip(results) {
        let name = decky.name.to_string();
        if let Some(view) = &final_view {
            for o in &mut outcomes {
                match view.get(&(name.clone(), o.service.clone())) {
                    Some(c) => {
                        o.status.clone_from(&c.status);
                        o.running = c.is_running();
                        if !o.running && o.error.is_none() {
                            o.error = Some(format!("not running: {}", c.status));
                        }
                    }
                    None => {
                        o.running = false;
                        o.status = crate::status::ABSENT.to_owned();
                        if o.error.is_none() {
                            o.error = Some("the container vanished".to_owned());
                        }
                    }
                }
            }
        }
        let state = aggregate(
            outcomes
                .iter()
                .map(|o| Some(if o.running { "running" } else { "down" })),
        );
        let mut it = outcomes.into_iter();
        let Some(base) = it.next() else { continue };
        deckies.push(DeckyOutcome {
            name,
            ip: decky.ip,
            state,
            base,
            services: it.collect(),
        });
    }
    drop(lock);
    Ok(DeployReport {
        image,
        network,
        hairpin,
        removed,
        deckies,
    })
}

#[cfg(test)]
mod tests;
