//! Teardown: removes exactly what DECNET created, found by label. A whole fleet (every
//! managed container, the network, the hairpin, the state and its export) or one decky
//! (its containers, base included, and its state entry, FL-4).

use std::net::Ipv4Addr;

use decnet_core::Settings;
use decnet_core::state::{State, StateLock};
use futures::StreamExt as _;
use serde::Serialize;

use crate::Error;
use crate::deploy::{load_or_create_instance_key, render_export, write_atomic};
use crate::engine::{Engine, ObservedContainer, Retry};
use crate::hairpin::{HairpinPlan, HostNetwork};
use crate::network;
use crate::spec::Project;

/// Containers removed at the same time.
const REMOVE_JOBS: usize = 8;

/// Options of a teardown.
#[derive(Debug, Clone, Default)]
pub struct TeardownOptions {
    /// The project to tear down (`decnet`).
    pub project: Project,
    /// The parent interface's own address (the hairpin keeps off it), for single-decky
    /// teardowns that keep the hairpin.
    pub host_ip: Option<Ipv4Addr>,
    /// Retry policy for transient engine errors.
    pub retry: Retry,
}

/// What a teardown removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TeardownReport {
    /// Containers removed.
    pub removed: Vec<String>,
    /// Containers that could not be removed, with the reason.
    pub failed: Vec<(String, String)>,
    /// The decky network was removed.
    pub network_removed: bool,
    /// The hairpin interface was removed.
    pub hairpin_removed: bool,
    /// The state file was removed (nothing is deployed any more).
    pub state_cleared: bool,
    /// Deckies still deployed.
    pub remaining: Vec<String>,
}

/// Removes `containers`: service containers first, then the bases they share a network
/// namespace with.
async fn remove_all(
    engine: &dyn Engine,
    retry: Retry,
    mut containers: Vec<ObservedContainer>,
    report: &mut TeardownReport,
) {
    containers.sort_by_key(|c| c.service().is_none());
    let (services, bases): (Vec<_>, Vec<_>) =
        containers.into_iter().partition(|c| c.service().is_some());
    for batch in [services, bases] {
        let results: Vec<(String, Result<(), String>)> = futures::stream::iter(batch)
            .map(|c| async move {
                let r = retry
                    .run(|| engine.remove_container(&c.id))
                    .await
                    .map_err(|e| e.to_string());
                (c.name, r)
            })
            .buffer_unordered(REMOVE_JOBS)
            .collect()
            .await;
        for (name, r) in results {
            match r {
                Ok(()) => report.removed.push(name),
                Err(e) => report.failed.push((name, e)),
            }
        }
    }
    report.removed.sort();
}

async fn clear_everything(
    engine: &dyn Engine,
    hostnet: &dyn HostNetwork,
    settings: &Settings,
    lock: &StateLock,
    project: &Project,
    report: &mut TeardownReport,
) -> Result<(), Error> {
    report.network_removed = network::remove(engine, project).await?;
    report.hairpin_removed = hostnet.remove_hairpin(project).await?;
    lock.clear()?;
    report.state_cleared = true;
    match std::fs::remove_file(&settings.compose_file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove", &settings.compose_file, e)),
    }
    Ok(())
}

/// Removes every container of the project labelled `decnet.managed=true`, the decky
/// network (when DECNET created it), the hairpin, the state file and the compose export.
/// Works without a state file too, to clean up leftovers.
///
/// # Errors
/// Engine, host network or state errors; containers that could not be removed are in the
/// report (and keep the network and state in place, so a retry can finish the job).
pub async fn teardown_all(
    engine: &dyn Engine,
    hostnet: &dyn HostNetwork,
    settings: &Settings,
    opts: &TeardownOptions,
) -> Result<TeardownReport, Error> {
    let lock = StateLock::acquire(&settings.state_file)?;
    let mut report = TeardownReport::default();
    let project = &opts.project;
    let containers = opts
        .retry
        .run(|| engine.list_managed(project.as_str()))
        .await?;
    remove_all(engine, opts.retry, containers, &mut report).await;
    if report.failed.is_empty() {
        clear_everything(engine, hostnet, settings, &lock, project, &mut report).await?;
    }
    Ok(report)
}

/// Removes one decky: its containers (base included) and its entry in the state file;
/// the compose export and the hairpin routes follow. The last decky takes the network,
/// the hairpin and the state file with it.
///
/// # Errors
/// [`Error::Invalid`] when nothing is deployed, [`Error::UnknownDecky`] for a name not in
/// the state (nothing is changed then); engine, host network or state errors.
pub async fn teardown_decky(
    engine: &dyn Engine,
    hostnet: &dyn HostNetwork,
    settings: &Settings,
    name: &str,
    opts: &TeardownOptions,
) -> Result<TeardownReport, Error> {
    let project = &opts.project;
    let lock = StateLock::acquire(&settings.state_file)?;
    let Some(state) = lock.load()? else {
        return Err(Error::Invalid(format!(
            "nothing is deployed ({} does not exist)",
            settings.state_file.display()
        )));
    };
    if state.config.decky(name).is_none() {
        return Err(Error::UnknownDecky {
            name: name.to_owned(),
            known: state
                .config
                .deckies
                .iter()
                .map(|d| d.name.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    let mut report = TeardownReport::default();
    let containers: Vec<ObservedContainer> = opts
        .retry
        .run(|| engine.list_managed(project.as_str()))
        .await?
        .into_iter()
        .filter(|c| c.decky() == Some(name))
        .collect();
    remove_all(engine, opts.retry, containers, &mut report).await;
    if !report.failed.is_empty() {
        return Ok(report);
    }
    let mut config = state.config.clone();
    config.deckies.retain(|d| d.name.as_str() != name);
    report.remaining = config.deckies.iter().map(|d| d.name.to_string()).collect();
    if config.deckies.is_empty() {
        clear_everything(engine, hostnet, settings, &lock, project, &mut report).await?;
        return Ok(report);
    }
    let key = load_or_create_instance_key(&settings.instance_key)?;
    write_atomic(
        &settings.compose_file,
        &render_export(&config, settings, key, project),
    )?;
    lock.save(&State::new(config.clone(), settings.compose_file.clone()).with_seed(state.seed))?;
    hostnet
        .ensure_hairpin(&HairpinPlan::for_config(&config, opts.host_ip, project)?)
        .await?;
    Ok(report)
}
