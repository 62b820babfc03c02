//! Relocalization before a swarm deploy: the agent re-detects its own LAN and puts it into
//! the config (`decnet_core::net::relocalize`). Detection is injected so tests can count it.

use decnet_core::net::{NetInfo, relocalize};
use decnet_core::{DecnetConfig, Mode};

use crate::proto::{IpMove, RelocalizeReport};
use crate::{Error, Result};

/// Finds this host's LAN (interface with the default route, its subnet, gateway and
/// address).
pub trait LanDetector: Send + Sync {
    /// Detects the LAN.
    ///
    /// # Errors
    /// [`Error::Runtime`] when no usable interface is found.
    fn detect(&self) -> Result<NetInfo>;
}

/// A fixed answer (tests, and hosts whose LAN is given in the host config).
#[derive(Debug, Clone)]
pub struct FixedLan(pub NetInfo);

impl LanDetector for FixedLan {
    fn detect(&self) -> Result<NetInfo> {
        Ok(self.0.clone())
    }
}

impl<F: Fn() -> Result<NetInfo> + Send + Sync> LanDetector for F {
    fn detect(&self) -> Result<NetInfo> {
        self()
    }
}

/// Relocalizes `config` in place when it is a swarm config; unihost configs are returned
/// untouched and `detector` is not called. Logs `relocalized interface=… subnet=…` and
/// every re-allocated address.
///
/// # Errors
/// Detection failures, or a local subnet too small for the shard.
pub fn relocalize_for_deploy(
    config: &mut DecnetConfig,
    detector: &dyn LanDetector,
) -> Result<Option<RelocalizeReport>> {
    if config.mode != Mode::Swarm {
        return Ok(None);
    }
    let local = detector.detect()?;
    let report = relocalize(config, &local).map_err(Error::from)?;
    tracing::info!(
        interface = %local.interface,
        subnet = %local.subnet,
        gateway = %local.gateway,
        reallocated = report.reallocated,
        "relocalized interface={} subnet={}",
        local.interface,
        local.subnet
    );
    for change in &report.ip_changes {
        tracing::info!(
            decky = %change.decky,
            from = %change.from,
            to = %change.to,
            "Re-allocated decky address"
        );
    }
    Ok(Some(RelocalizeReport {
        interface: local.interface,
        subnet: local.subnet,
        reallocated: report.reallocated,
        moved: report
            .ip_changes
            .into_iter()
            .map(|c| IpMove {
                decky: c.decky,
                from: c.from,
                to: c.to,
            })
            .collect(),
    }))
}
