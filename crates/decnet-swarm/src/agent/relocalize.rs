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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn config(mode: &str, subnet: &str, ips: &[&str]) -> DecnetConfig {
        let deckies: Vec<_> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                serde_json::json!({
                    "name": format!("d{i}"), "ip": ip, "services": ["ssh"], "distro": "debian",
                    "base_image": "debian:bookworm-slim", "hostname": format!("d{i}"),
                })
            })
            .collect();
        let gateway = subnet.replace(".0/24", ".1");
        serde_json::from_value(serde_json::json!({
            "mode": mode, "interface": "eth0", "subnet": subnet, "gateway": gateway, "deckies": deckies,
        }))
        .unwrap()
    }

    struct Counting(AtomicUsize, NetInfo);
    impl LanDetector for Counting {
        fn detect(&self) -> Result<NetInfo> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(self.1.clone())
        }
    }

    fn local(subnet: &str, gw: &str, host: &str) -> Counting {
        Counting(
            AtomicUsize::new(0),
            NetInfo {
                interface: "ens7".into(),
                subnet: subnet.parse().unwrap(),
                gateway: gw.parse().unwrap(),
                host_ip: host.parse().unwrap(),
            },
        )
    }

    #[test]
    fn unihost_is_untouched_and_not_detected() {
        let mut c = config("unihost", "192.168.1.0/24", &["192.168.1.10"]);
        let before = c.clone();
        let d = local("10.0.0.0/24", "10.0.0.1", "10.0.0.2");
        assert_eq!(relocalize_for_deploy(&mut c, &d).unwrap(), None);
        assert_eq!(c, before);
        assert_eq!(d.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn matching_subnet_keeps_addresses_and_takes_the_local_interface() {
        let mut c = config("swarm", "10.0.0.0/24", &["10.0.0.10", "10.0.0.11"]);
        let d = local("10.0.0.0/24", "10.0.0.254", "10.0.0.5");
        let r = relocalize_for_deploy(&mut c, &d).unwrap().unwrap();
        assert!(!r.reallocated && r.moved.is_empty());
        assert_eq!(c.interface, "ens7");
        assert_eq!(c.gateway.to_string(), "10.0.0.254");
        assert_eq!(c.deckies[1].ip.to_string(), "10.0.0.11");
        assert_eq!(d.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn other_subnet_reallocates_and_reports_each_move() {
        let mut c = config("swarm", "192.168.1.0/24", &["192.168.1.10", "192.168.1.11"]);
        let d = local("10.7.0.0/24", "10.7.0.1", "10.7.0.2");
        let r = relocalize_for_deploy(&mut c, &d).unwrap().unwrap();
        assert!(r.reallocated);
        assert_eq!(r.interface, "ens7");
        let got: Vec<String> = c.deckies.iter().map(|x| x.ip.to_string()).collect();
        assert_eq!(got, ["10.7.0.3", "10.7.0.4"]);
        assert_eq!(r.moved.len(), 2);
        assert_eq!(r.moved[0].from.to_string(), "192.168.1.10");
        assert_eq!(c.deckies[0].name.as_str(), "d0");
        assert_eq!(c.deckies[0].services, ["ssh"]);
    }

    #[test]
    fn detection_failure_propagates() {
        let mut c = config("swarm", "10.0.0.0/24", &["10.0.0.10"]);
        let failing = || -> Result<NetInfo> { Err(Error::Runtime("no default route".into())) };
        assert!(relocalize_for_deploy(&mut c, &failing).is_err());
    }
}
