//! Read-only detection of this host's LAN: default route from `/proc/net/route`, the
//! interface's address from `getifaddrs`. Needs neither the `ip` utility nor privileges.

use std::net::Ipv4Addr;

use decnet_core::net::NetInfo;
use ipnet::Ipv4Net;

use crate::Error;

/// One row of `/proc/net/route` that is a default route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcDefaultRoute {
    /// Interface.
    pub interface: String,
    /// Gateway (none for an on-link default).
    pub gateway: Option<Ipv4Addr>,
}

fn hex_ip(field: &str) -> Option<Ipv4Addr> {
    // The kernel prints addresses as host-order hex of the network-order value.
    u32::from_str_radix(field, 16)
        .ok()
        .map(|v| Ipv4Addr::from(v.to_le_bytes()))
}

/// Parses `/proc/net/route`: the first up (`RTF_UP`) route with destination and mask 0.
pub fn parse_proc_route(text: &str) -> Option<ProcDefaultRoute> {
    const RTF_UP: u32 = 0x1;
    const RTF_GATEWAY: u32 = 0x2;
    text.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (iface, dest, gw, flags, mask) =
            (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?, f.get(7)?);
        let flags = u32::from_str_radix(flags, 16).ok()?;
        if *dest != "00000000" || *mask != "00000000" || flags & RTF_UP == 0 {
            return None;
        }
        let gateway = if flags & RTF_GATEWAY != 0 {
            hex_ip(gw)
        } else {
            None
        };
        Some(ProcDefaultRoute {
            interface: (*iface).to_owned(),
            gateway,
        })
    })
}

/// The first IPv4 address and network of `interface`.
///
/// # Errors
/// [`Error::HostNetwork`] when the interface has no IPv4 address.
pub fn interface_ipv4(interface: &str) -> Result<(Ipv4Addr, Ipv4Net), Error> {
    let addrs = nix::ifaddrs::getifaddrs()
        .map_err(|e| Error::HostNetwork(format!("list interfaces: {e}")))?;
    for ifa in addrs {
        if ifa.interface_name != interface {
            continue;
        }
        let (Some(addr), Some(mask)) = (ifa.address, ifa.netmask) else {
            continue;
        };
        let (Some(addr), Some(mask)) = (addr.as_sockaddr_in(), mask.as_sockaddr_in()) else {
            continue;
        };
        let ip = addr.ip();
        let prefix = u8::try_from(u32::from(mask.ip()).count_ones()).unwrap_or(32);
        if let Ok(net) = Ipv4Net::new(ip, prefix) {
            return Ok((ip, net.trunc()));
        }
    }
    Err(Error::HostNetwork(format!(
        "interface '{interface}' has no IPv4 address"
    )))
}

/// This host's own address on `interface` when it lies in `subnet` (the hairpin keeps
/// off it); `None` when the interface has no address there (a lab parent, for instance).
pub fn host_ip_on(interface: &str, subnet: Ipv4Net) -> Option<Ipv4Addr> {
    interface_ipv4(interface)
        .ok()
        .filter(|(_, net)| net.trunc() == subnet.trunc())
        .map(|(ip, _)| ip)
}

/// Detects the LAN of the default route, or of `interface` when given. The gateway is
/// taken from the default route only when it goes through the chosen interface; otherwise
/// the subnet's first host stands in.
///
/// # Errors
/// [`Error::HostNetwork`] naming what could not be found.
pub fn detect(interface: Option<&str>) -> Result<NetInfo, Error> {
    let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let default = parse_proc_route(&routes);
    let iface = match (interface, &default) {
        (Some(i), _) => i.to_owned(),
        (None, Some(d)) => d.interface.clone(),
        (None, None) => {
            return Err(Error::HostNetwork(
                "no default route: pass --interface and --subnet".into(),
            ));
        }
    };
    let (host_ip, subnet) = interface_ipv4(&iface)?;
    let gateway = default
        .filter(|d| d.interface == iface)
        .and_then(|d| d.gateway)
        .filter(|g| subnet.contains(g))
        .unwrap_or_else(|| Ipv4Addr::from(u32::from(subnet.network()).saturating_add(1)));
    Ok(NetInfo {
        interface: iface,
        subnet,
        gateway,
        host_ip,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
        eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
        eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n";

    #[test]
    fn proc_route_default() {
        let r = parse_proc_route(ROUTE).unwrap();
        assert_eq!(r.interface, "eth0");
        assert_eq!(r.gateway, Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(parse_proc_route("Iface\n"), None);
        assert_eq!(parse_proc_route("garbage\nx y\n"), None);
    }

    #[test]
    fn loopback_has_an_address() {
        let (ip, net) = interface_ipv4("lo").unwrap();
        assert_eq!(ip, Ipv4Addr::LOCALHOST);
        assert_eq!(net.to_string(), "127.0.0.0/8");
        assert!(interface_ipv4("no-such-if0").is_err());
    }
}
