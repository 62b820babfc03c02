//! Pure networking helpers: route/address parsing, IP allocation, covering ranges and
//! relocalization of a config onto a host's own LAN.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::model::{DecnetConfig, Mode};

/// What a host knows about its LAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetInfo {
    /// Interface carrying the default route.
    pub interface: String,
    /// The interface's IPv4 network.
    pub subnet: Ipv4Net,
    /// Default gateway reached through that interface.
    pub gateway: Ipv4Addr,
    /// The interface's own IPv4 address.
    pub host_ip: Ipv4Addr,
}

/// The default route's interface and gateway, parsed from `ip route show default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    /// `dev` token.
    pub interface: String,
    /// `via` token, when the route has one.
    pub gateway: Option<Ipv4Addr>,
}

/// Parses `ip route show default` (or `ip route`) output: the first line starting with
/// `default` that names a `dev`. The gateway is taken from that same line, so it always
/// belongs to the chosen interface (the reference took the first `via` of any line).
///
/// # Errors
/// [`Error::Invalid`] when no default route names an interface.
pub fn parse_default_route(output: &str) -> Result<DefaultRoute, Error> {
    for line in output.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.first() != Some(&"default") {
            continue;
        }
        let after = |word: &str| {
            tokens
                .iter()
                .position(|t| *t == word)
                .and_then(|i| tokens.get(i + 1))
                .copied()
        };
        if let Some(dev) = after("dev") {
            let gateway = after("via").and_then(|g| g.parse().ok());
            return Ok(DefaultRoute {
                interface: dev.to_owned(),
                gateway,
            });
        }
    }
    Err(Error::Invalid(
        "could not detect the network interface: no default route names a device \
         (pass --interface and --subnet)"
            .into(),
    ))
}

/// Parses `ip addr show <iface>` output: the first `inet a.b.c.d/nn` (IPv6 ignored).
/// Returns the address and its network.
///
/// # Errors
/// [`Error::Invalid`] when the interface has no IPv4 address.
pub fn parse_interface_address(
    output: &str,
    interface: &str,
) -> Result<(Ipv4Addr, Ipv4Net), Error> {
    for line in output.lines() {
        let mut tokens = line.split_whitespace();
        while let Some(token) = tokens.next() {
            if token != "inet" {
                continue;
            }
            if let Some(Ok(net)) = tokens.next().map(str::parse::<Ipv4Net>) {
                return Ok((net.addr(), net.trunc()));
            }
        }
    }
    Err(Error::Invalid(format!(
        "interface '{interface}' has no IPv4 address (pass --subnet)"
    )))
}

/// Allocates `count` addresses from `subnet`, ascending from `ip_start` (or the first host),
/// skipping the network, broadcast, gateway and host addresses and everything in `taken`.
/// Deterministic: the same inputs give the same addresses.
///
/// # Errors
/// [`Error::InvalidValue`] when `ip_start` is outside the subnet, [`Error::NotEnoughIps`]
/// when the subnet is too small.
pub fn allocate_ips(
    subnet: Ipv4Net,
    gateway: Option<Ipv4Addr>,
    host_ip: Option<Ipv4Addr>,
    count: usize,
    ip_start: Option<Ipv4Addr>,
    taken: &BTreeSet<Ipv4Addr>,
) -> Result<Vec<Ipv4Addr>, Error> {
    let subnet = subnet.trunc();
    if let Some(start) = ip_start
        && !subnet.contains(&start)
    {
        return Err(Error::invalid(
            "--ip-start",
            start.to_string(),
            format!("outside the subnet {subnet}"),
        ));
    }
    let start = ip_start.map_or(u32::from(subnet.network()).saturating_add(1), u32::from);
    let network = u32::from(subnet.network());
    let broadcast = u32::from(subnet.broadcast());
    let mut out = Vec::with_capacity(count.min(1 << 16));
    for raw in start.max(network + 1)..broadcast {
        if out.len() == count {
            break;
        }
        let ip = Ipv4Addr::from(raw);
        if Some(ip) == gateway || Some(ip) == host_ip || taken.contains(&ip) {
            continue;
        }
        out.push(ip);
    }
    if out.len() < count {
        // The walk went through the whole subnet, so what it found is all there is.
        return Err(Error::NotEnoughIps {
            subnet: subnet.to_string(),
            requested: count,
            available: out.len(),
        });
    }
    Ok(out)
}

/// Smallest CIDR covering every address in `ips` (used as the Docker network's `ip_range`).
/// `None` for an empty list.
pub fn covering_range(ips: &[Ipv4Addr]) -> Option<Ipv4Net> {
    let min = ips.iter().copied().map(u32::from).min()?;
    let max = ips.iter().copied().map(u32::from).max()?;
    let differing = 32 - (min ^ max).leading_zeros();
    let prefix = u8::try_from(32 - differing).unwrap_or(0);
    Ipv4Net::new(Ipv4Addr::from(min), prefix)
        .ok()
        .map(|n| n.trunc())
}

/// One change relocalization made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpChange {
    /// Decky name.
    pub decky: String,
    /// Address before.
    pub from: Ipv4Addr,
    /// Address after.
    pub to: Ipv4Addr,
}

/// What [`relocalize`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct Relocalized {
    /// Whether anything was changed at all (false for unihost configs).
    pub applied: bool,
    /// Whether the decky addresses were re-allocated (subnets differed).
    pub reallocated: bool,
    /// Every address that moved.
    pub ip_changes: Vec<IpChange>,
}

/// Puts a worker's own LAN facts into a swarm config before it deploys it.
///
/// Unihost configs are returned untouched. Otherwise interface, subnet and gateway are
/// replaced by `local`'s; when the subnets differ every decky gets a new address from the
/// local subnet (in decky order, skipping network, broadcast, gateway and host), and
/// when they match the addresses are kept.
///
/// # Errors
/// [`Error::NotEnoughIps`] when the local subnet is too small for the shard.
pub fn relocalize(config: &mut DecnetConfig, local: &NetInfo) -> Result<Relocalized, Error> {
    if config.mode != Mode::Swarm {
        return Ok(Relocalized::default());
    }
    let same_subnet = config.subnet.trunc() == local.subnet.trunc();
    let mut report = Relocalized {
        applied: true,
        reallocated: !same_subnet,
        ip_changes: Vec::new(),
    };
    if !same_subnet {
        let ips = allocate_ips(
            local.subnet,
            Some(local.gateway),
            Some(local.host_ip),
            config.deckies.len(),
            None,
            &BTreeSet::new(),
        )?;
        for (decky, ip) in config.deckies.iter_mut().zip(ips) {
            if decky.ip != ip {
                report.ip_changes.push(IpChange {
                    decky: decky.name.to_string(),
                    from: decky.ip,
                    to: ip,
                });
            }
            decky.ip = ip;
        }
    }
    config.interface = local.interface.clone();
    config.subnet = local.subnet.trunc();
    config.gateway = local.gateway;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::{config_json, decky_json};

    const ROUTES: &str = "default via 192.168.1.1 dev enp3s0 proto dhcp src 192.168.1.50 metric 100\n\
                          10.8.0.0/24 dev tun0 proto kernel scope link src 10.8.0.2\n";

    #[test]
    fn default_route_parsing() {
        let r = parse_default_route(ROUTES).unwrap();
        assert_eq!(r.interface, "enp3s0");
        assert_eq!(r.gateway, Some("192.168.1.1".parse().unwrap()));
        let r = parse_default_route("default dev wg0 scope link\n").unwrap();
        assert_eq!((r.interface.as_str(), r.gateway), ("wg0", None));
        assert!(parse_default_route("10.0.0.0/8 dev x\n").is_err());
        assert!(
            parse_default_route("")
                .unwrap_err()
                .to_string()
                .contains("--interface")
        );
    }

    #[test]
    fn interface_address_parsing() {
        let out = "2: enp3s0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500\n    link/ether 52:54:00:12:34:56 brd ff:ff:ff:ff:ff:ff\n    inet6 fe80::1/64 scope link\n    inet 192.168.1.50/24 brd 192.168.1.255 scope global dynamic enp3s0\n";
        let (ip, net) = parse_interface_address(out, "enp3s0").unwrap();
        assert_eq!(ip.to_string(), "192.168.1.50");
        assert_eq!(net.to_string(), "192.168.1.0/24");
        assert!(parse_interface_address("inet6 ::1/128\n", "lo").is_err());
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn allocation_skips_reserved_addresses() {
        let got = allocate_ips(
            net("10.0.0.0/29"),
            Some(ip("10.0.0.1")),
            Some(ip("10.0.0.3")),
            4,
            None,
            &BTreeSet::new(),
        )
        .unwrap();
        assert_eq!(
            got,
            [
                ip("10.0.0.2"),
                ip("10.0.0.4"),
                ip("10.0.0.5"),
                ip("10.0.0.6")
            ]
        );
        let err = allocate_ips(
            net("10.0.0.0/29"),
            Some(ip("10.0.0.1")),
            None,
            7,
            None,
            &BTreeSet::new(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("7 requested, 5 available"), "{err}");
        let got = allocate_ips(
            net("10.0.0.0/24"),
            None,
            None,
            2,
            Some(ip("10.0.0.100")),
            &[ip("10.0.0.101")].into(),
        )
        .unwrap();
        assert_eq!(got, [ip("10.0.0.100"), ip("10.0.0.102")]);
        assert!(
            allocate_ips(
                net("10.0.0.0/24"),
                None,
                None,
                1,
                Some(ip("10.0.1.1")),
                &BTreeSet::new()
            )
            .is_err()
        );
    }

    #[test]
    fn covering_range_matches_the_reference() {
        assert_eq!(
            covering_range(&[ip("192.168.1.10"), ip("192.168.1.20")]).unwrap(),
            net("192.168.1.0/27")
        );
        assert_eq!(
            covering_range(&[ip("10.0.0.5")]).unwrap(),
            net("10.0.0.5/32")
        );
        assert_eq!(covering_range(&[]), None);
    }

    fn swarm_config(subnet: &str, ips: &[&str]) -> DecnetConfig {
        let mut v = config_json(
            ips.iter()
                .enumerate()
                .map(|(i, a)| decky_json(&format!("d{i}"), a))
                .collect(),
        );
        v["mode"] = "swarm".into();
        v["subnet"] = subnet.into();
        v["gateway"] = "192.168.1.1".into();
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn relocalize_keeps_ips_on_the_same_subnet() {
        let mut c = swarm_config("192.168.1.0/24", &["192.168.1.10", "192.168.1.11"]);
        let local = NetInfo {
            interface: "ens18".into(),
            subnet: net("192.168.1.0/24"),
            gateway: ip("192.168.1.254"),
            host_ip: ip("192.168.1.5"),
        };
        let r = relocalize(&mut c, &local).unwrap();
        assert!(r.applied && !r.reallocated && r.ip_changes.is_empty());
        assert_eq!(c.interface, "ens18");
        assert_eq!(c.gateway, ip("192.168.1.254"));
        assert_eq!(c.deckies[0].ip, ip("192.168.1.10"));
    }

    #[test]
    fn relocalize_reallocates_on_another_subnet() {
        let mut c = swarm_config("192.168.1.0/24", &["192.168.1.10", "192.168.1.11"]);
        let local = NetInfo {
            interface: "eth1".into(),
            subnet: net("10.9.0.0/24"),
            gateway: ip("10.9.0.1"),
            host_ip: ip("10.9.0.2"),
        };
        let r = relocalize(&mut c, &local).unwrap();
        assert!(r.reallocated);
        assert_eq!(c.deckies[0].ip, ip("10.9.0.3"));
        assert_eq!(c.deckies[1].ip, ip("10.9.0.4"));
        assert_eq!(r.ip_changes.len(), 2);
        assert_eq!(c.subnet, net("10.9.0.0/24"));
    }

    #[test]
    fn relocalize_leaves_unihost_alone() {
        let v = config_json(vec![decky_json("d0", "192.168.1.10")]);
        let mut c: DecnetConfig = serde_json::from_value(v).unwrap();
        let before = c.clone();
        let local = NetInfo {
            interface: "eth1".into(),
            subnet: net("10.9.0.0/24"),
            gateway: ip("10.9.0.1"),
            host_ip: ip("10.9.0.2"),
        };
        assert!(!relocalize(&mut c, &local).unwrap().applied);
        assert_eq!(c, before);
    }

    proptest::proptest! {
        #[test]
        fn allocation_is_sound(prefix in 20u8..=30, count in 0usize..64, gw in 0u32..1024, host in 0u32..1024) {
            let subnet = Ipv4Net::new(Ipv4Addr::new(10, 20, 0, 0), prefix).unwrap().trunc();
            let gateway = Ipv4Addr::from(u32::from(subnet.network()) + gw % 64);
            let host_ip = Ipv4Addr::from(u32::from(subnet.network()) + host % 64);
            match allocate_ips(subnet, Some(gateway), Some(host_ip), count, None, &BTreeSet::new()) {
                Ok(ips) => {
                    proptest::prop_assert_eq!(ips.len(), count);
                    let set: BTreeSet<_> = ips.iter().collect();
                    proptest::prop_assert_eq!(set.len(), count);
                    for a in ips {
                        proptest::prop_assert!(subnet.contains(&a));
                        proptest::prop_assert!(a != subnet.network() && a != subnet.broadcast() && a != gateway && a != host_ip);
                    }
                }
                Err(Error::NotEnoughIps { available, .. }) => proptest::prop_assert!(available < count),
                Err(e) => proptest::prop_assert!(false, "{e}"),
            }
        }
    }
}
