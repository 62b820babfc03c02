//! The decky LAN (`decnet_lan`): MACVLAN bridge mode or IPvlan L2 on the configured
//! parent, one IPAM pool (subnet, gateway, the decky range). Created idempotently, rebuilt
//! only when nothing DECNET does not manage is attached.

use std::collections::{BTreeMap, BTreeSet};

use decnet_core::DecnetConfig;
use decnet_core::net::covering_range;

use crate::Error;
use crate::engine::{Driver, Engine, NetworkInfo, NetworkSpec};
use crate::spec::{Project, labels};

/// The network `config` needs in `project`.
pub fn desired(config: &DecnetConfig, project: &Project) -> NetworkSpec {
    let ips: Vec<_> = config.deckies.iter().map(|d| d.ip).collect();
    NetworkSpec {
        name: project.network(),
        driver: if config.ipvlan {
            Driver::Ipvlan
        } else {
            Driver::Macvlan
        },
        parent: config.interface.clone(),
        subnet: config.subnet,
        gateway: config.gateway,
        ip_range: covering_range(&ips),
        labels: BTreeMap::from([(labels::MANAGED.to_owned(), "true".to_owned())]),
    }
}

/// Polls while a network to remove still lists endpoints: 40 × 250 ms.
const ENDPOINT_WAIT_STEPS: u32 = 40;
const ENDPOINT_WAIT_STEP: std::time::Duration = std::time::Duration::from_millis(250);

/// How an existing network compares with the desired one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Identical: reuse.
    Exact,
    /// Same driver, parent, subnet and gateway; only the range differs. Static decky
    /// addresses do not depend on the range, so it is reused while containers are attached.
    RangeDrift,
    /// Driver, parent, subnet or gateway differ: it must be rebuilt.
    Mismatch,
}

/// Compares an observed network with `want`.
pub fn fit(have: &NetworkInfo, want: &NetworkSpec) -> Fit {
    let same_core = have.driver == want.driver.as_str()
        && have.options.get("parent") == Some(&want.parent)
        && have.subnet.as_deref() == Some(want.subnet.to_string().as_str())
        && have.gateway.as_deref() == Some(want.gateway.to_string().as_str())
        && (want.driver != Driver::Ipvlan
            || have.options.get("ipvlan_mode").is_none_or(|m| m == "l2"));
    if !same_core {
        return Fit::Mismatch;
    }
    if have.ip_range.as_deref() == want.ip_range.map(|r| r.to_string()).as_deref() {
        Fit::Exact
    } else {
        Fit::RangeDrift
    }
}

/// What [`ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkOutcome {
    /// The existing network fits.
    Reused,
    /// It did not exist.
    Created,
    /// It existed with other settings and was rebuilt (DECNET's containers on it were
    /// removed first and are recreated by the deploy).
    Rebuilt,
}

/// Makes `decnet_lan` match `want`.
///
/// `managed` are the ids of the containers DECNET manages: any other container attached
/// to a network that must be rebuilt makes this fail rather than cut it off.
///
/// # Errors
/// [`Error::Invalid`] when foreign containers block a rebuild, [`Error::Engine`] otherwise.
pub async fn ensure(
    engine: &dyn Engine,
    want: &NetworkSpec,
    managed: &BTreeSet<String>,
) -> Result<NetworkOutcome, Error> {
    let Some(have) = engine.network(&want.name).await? else {
        engine.create_network(want).await?;
        return Ok(NetworkOutcome::Created);
    };
    let fit = fit(&have, want);
    if fit == Fit::Exact || (fit == Fit::RangeDrift && !have.containers.is_empty()) {
        return Ok(NetworkOutcome::Reused);
    }
    let foreign: Vec<&String> = have
        .containers
        .iter()
        .filter(|id| !managed.contains(*id))
        .collect();
    if !foreign.is_empty() {
        return Err(Error::Invalid(format!(
            "network {} exists with other settings (driver {}, parent {}, subnet {}) and \
             {} container(s) DECNET does not manage are attached to it; detach them or remove \
             the network first",
            want.name,
            have.driver,
            have.options.get("parent").map_or("?", String::as_str),
            have.subnet.as_deref().unwrap_or("?"),
            foreign.len()
        )));
    }
    tracing::info!(network = %want.name, "Rebuilding the decky network");
    for id in &have.containers {
        engine.remove_container(id).await?;
    }
    let attached = engine
        .network(&want.name)
        .await?
        .map(|n| n.containers)
        .unwrap_or_default();
    remove_when_detached(engine, &want.name, attached).await?;
    engine.create_network(want).await?;
    Ok(NetworkOutcome::Rebuilt)
}

/// Removes network `name` once no container is attached. Docker may list the endpoints of
/// containers it has just removed for a moment longer: wait for them (bounded) rather
/// than fail.
async fn remove_when_detached(
    engine: &dyn Engine,
    name: &str,
    mut attached: Vec<String>,
) -> Result<(), Error> {
    for _ in 0..ENDPOINT_WAIT_STEPS {
        if attached.is_empty() {
            break;
        }
        tokio::time::sleep(ENDPOINT_WAIT_STEP).await;
        attached = match engine.network(name).await? {
            Some(n) => n.containers,
            None => return Ok(()),
        };
    }
    if !attached.is_empty() {
        return Err(Error::Invalid(format!(
            "network {name} still has {} container(s) attached ({}); remove them first",
            attached.len(),
            attached.join(", ")
        )));
    }
    engine.remove_network(name).await?;
    Ok(())
}

/// Removes the project's network if DECNET created it (it carries
/// `decnet.managed=true`). Returns whether a network was removed.
///
/// # Errors
/// [`Error::Engine`].
pub async fn remove(engine: &dyn Engine, project: &Project) -> Result<bool, Error> {
    let name = project.network();
    match engine.network(&name).await? {
        Some(net) if net.labels.get(labels::MANAGED).map(String::as_str) == Some("true") => {
            remove_when_detached(engine, &name, net.containers).await?;
            Ok(true)
        }
        Some(_) => {
            tracing::warn!(
                network = %name,
                "Leaving a network DECNET did not create (no decnet.managed label)"
            );
            Ok(false)
        }
        None => Ok(false),
    }
}
