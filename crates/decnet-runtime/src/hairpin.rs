//! The host-side hairpin: a MACVLAN (or IPvlan) child of the parent interface so the host
//! itself reaches its deckies (children of one parent cannot talk to the parent). Set up
//! over netlink, so CAP_NET_ADMIN is the only privilege needed.
//!
//! It carries a dedicated /32 address of the decky subnet (never the host's own address,
//! FL-13) and one /32 route per decky: a covering range could capture the gateway or the
//! host's address.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use async_trait::async_trait;
use decnet_core::DecnetConfig;
use futures::TryStreamExt as _;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoKind, IpVlanMode, LinkAttribute, LinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
};
use rtnetlink::{Handle, LinkIpVlan, LinkMacVlan, LinkUnspec, RouteMessageBuilder};
use serde::Serialize;

use crate::Error;
use crate::engine::Driver;
use crate::spec::Project;

/// Name of the MACVLAN hairpin of the default project.
pub const MACVLAN_LINK: &str = "decnet_macvlan0";
/// Name of the IPvlan hairpin of the default project.
pub const IPVLAN_LINK: &str = "decnet_ipvlan0";

/// The hairpin link name of a project and driver: `decnet_macvlan0` / `decnet_ipvlan0`
/// for the default project; for another, `decnet` + 6 hex digits of the project's hash +
/// `mv0`/`iv0` (interface names are at most 15 bytes).
pub fn link_name(project: &Project, driver: Driver) -> String {
    if *project == Project::default() {
        return match driver {
            Driver::Macvlan => MACVLAN_LINK,
            Driver::Ipvlan => IPVLAN_LINK,
        }
        .to_owned();
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(project.as_str().as_bytes());
    let suffix = match driver {
        Driver::Macvlan => "mv0",
        Driver::Ipvlan => "iv0",
    };
    format!("decnet{}{suffix}", &hex::encode(&digest[..3]))
}

/// What the hairpin should look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HairpinPlan {
    /// Project it belongs to.
    pub project: Project,
    /// Link name ([`link_name`]).
    pub name: String,
    /// Driver of the link (the same as the decky network's).
    pub driver: Driver,
    /// Parent interface.
    pub parent: String,
    /// The link's own address (a /32).
    pub address: Ipv4Addr,
    /// One /32 route per decky address.
    pub routes: Vec<Ipv4Addr>,
}

/// The hairpin's dedicated address: the highest host address of the subnet that is not
/// the gateway, the host's address or a decky's. Deterministic, so a redeploy keeps it.
///
/// # Errors
/// [`Error::Invalid`] when the subnet has no free address left.
pub fn choose_address(
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    host_ip: Option<Ipv4Addr>,
    deckies: &[Ipv4Addr],
) -> Result<Ipv4Addr, Error> {
    let taken: BTreeSet<Ipv4Addr> = deckies
        .iter()
        .copied()
        .chain([gateway])
        .chain(host_ip)
        .collect();
    let subnet = subnet.trunc();
    let first = u32::from(subnet.network()).saturating_add(1);
    let last = u32::from(subnet.broadcast()).saturating_sub(1);
    (first..=last)
        .rev()
        .map(Ipv4Addr::from)
        .find(|ip| !taken.contains(ip))
        .ok_or_else(|| {
            Error::Invalid(format!(
                "subnet {subnet} has no free address left for the host's hairpin interface"
            ))
        })
}

impl HairpinPlan {
    /// The hairpin of `config` in `project` on this host (`host_ip`: the parent's own
    /// address, if any).
    ///
    /// # Errors
    /// As [`choose_address`].
    pub fn for_config(
        config: &DecnetConfig,
        host_ip: Option<Ipv4Addr>,
        project: &Project,
    ) -> Result<Self, Error> {
        let driver = if config.ipvlan {
            Driver::Ipvlan
        } else {
            Driver::Macvlan
        };
        let routes: Vec<Ipv4Addr> = config.deckies.iter().map(|d| d.ip).collect();
        let address = choose_address(config.subnet, config.gateway, host_ip, &routes)?;
        Ok(HairpinPlan {
            project: project.clone(),
            name: link_name(project, driver),
            driver,
            parent: config.interface.clone(),
            address,
            routes,
        })
    }
}

/// Host networking DECNET configures besides Docker.
///
/// Guarantees: `ensure_hairpin` is idempotent and converges (a wrong link kind or parent
/// is rebuilt, stale addresses and routes are removed, the other driver's link of the
/// same project is deleted); `remove_hairpin` removes both of a project's hairpin names
/// and succeeds when they are absent.
#[async_trait]
pub trait HostNetwork: Send + Sync {
    /// Makes the hairpin match `plan`.
    async fn ensure_hairpin(&self, plan: &HairpinPlan) -> Result<(), Error>;
    /// Removes the project's hairpin links (their routes go with them); true when one
    /// existed.
    async fn remove_hairpin(&self, project: &Project) -> Result<bool, Error>;
}

/// [`HostNetwork`] over rtnetlink.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetlinkHostNetwork;

fn nl_err(what: &str, e: rtnetlink::Error) -> Error {
    let hint = match &e {
        rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == nix::libc::EPERM => {
            " (needs CAP_NET_ADMIN)"
        }
        rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == nix::libc::EOPNOTSUPP => {
            " (this kernel cannot create that link type on this parent)"
        }
        _ => "",
    };
    Error::HostNetwork(format!("{what}: {e}{hint}"))
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code().abs() == errno)
}

fn connect() -> Result<Handle, Error> {
    let (connection, handle, _) = rtnetlink::new_connection()
        .map_err(|e| Error::HostNetwork(format!("open a netlink socket: {e}")))?;
    tokio::spawn(connection);
    Ok(handle)
}

async fn link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, Error> {
    let mut links = handle.link().get().match_name(name.to_owned()).execute();
    match links.try_next().await {
        Ok(link) => Ok(link),
        Err(e) if is_errno(&e, nix::libc::ENODEV) => Ok(None),
        Err(e) => Err(nl_err(&format!("look up interface {name}"), e)),
    }
}

fn link_kind(link: &LinkMessage) -> Option<&InfoKind> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
            LinkInfo::Kind(k) => Some(k),
            _ => None,
        }),
        _ => None,
    })
}

fn link_parent(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Link(i) => Some(*i),
        _ => None,
    })
}

/// Deletes a link by name; true when it existed.
async fn delete_link(handle: &Handle, name: &str) -> Result<bool, Error> {
    let Some(link) = link_by_name(handle, name).await? else {
        return Ok(false);
    };
    match handle.link().del(link.header.index).execute().await {
        Ok(()) => Ok(true),
        Err(e) if is_errno(&e, nix::libc::ENODEV) => Ok(false),
        Err(e) => Err(nl_err(&format!("delete interface {name}"), e)),
    }
}

fn address_of(msg: &AddressMessage) -> Option<Ipv4Addr> {
    msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(IpAddr::V4(ip)) | AddressAttribute::Address(IpAddr::V4(ip)) => {
            Some(*ip)
        }
        _ => None,
    })
}

fn host_route_dest(route: &RouteMessage, index: u32) -> Option<Ipv4Addr> {
    if route.header.destination_prefix_length != 32
        || route.header.table != RouteHeader::RT_TABLE_MAIN
    {
        return None;
    }
    let oif = route
        .attributes
        .iter()
        .any(|a| matches!(a, RouteAttribute::Oif(i) if *i == index));
    if !oif {
        return None;
    }
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
        _ => None,
    })
}

fn host_route(dest: Ipv4Addr, index: u32, source: Ipv4Addr) -> RouteMessage {
    RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dest, 32)
        .output_interface(index)
        .pref_source(source)
        .scope(RouteScope::Link)
        .protocol(RouteProtocol::Static)
        .build()
}

#[async_trait]
impl HostNetwork for NetlinkHostNetwork {
    async fn ensure_hairpin(&self, plan: &HairpinPlan) -> Result<(), Error> {
        let handle = connect()?;
        // MACVLAN and IPvlan children cannot share a parent: drop the other driver's.
        let other = match plan.driver {
            Driver::Macvlan => Driver::Ipvlan,
            Driver::Ipvlan => Driver::Macvlan,
        };
        delete_link(&handle, &link_name(&plan.project, other)).await?;
        let parent = link_by_name(&handle, &plan.parent).await?.ok_or_else(|| {
            Error::HostNetwork(format!("parent interface {} does not exist", plan.parent))
        })?;
        let parent_index = parent.header.index;
        let want_kind = match plan.driver {
            Driver::Macvlan => InfoKind::MacVlan,
            Driver::Ipvlan => InfoKind::IpVlan,
        };
        if let Some(link) = link_by_name(&handle, &plan.name).await?
            && (link_kind(&link) != Some(&want_kind) || link_parent(&link) != Some(parent_index))
        {
            tracing::info!(link = %plan.name, "Rebuilding the hairpin interface");
            delete_link(&handle, &plan.name).await?;
        }
        let link = match link_by_name(&handle, &plan.name).await? {
            Some(link) => link,
            None => {
                let message = match plan.driver {
                    Driver::Macvlan => {
                        LinkMacVlan::new(&plan.name, parent_index, MacVlanMode::Bridge).build()
                    }
                    Driver::Ipvlan => {
                        LinkIpVlan::new(&plan.name, parent_index, IpVlanMode::L2).build()
                    }
                };
                handle.link().add(message).execute().await.map_err(|e| {
                    nl_err(
                        &format!("create {} interface {}", plan.driver.as_str(), plan.name),
                        e,
                    )
                })?;
                link_by_name(&handle, &plan.name).await?.ok_or_else(|| {
                    Error::HostNetwork(format!("interface {} vanished after creation", plan.name))
                })?
            }
        };
        let index = link.header.index;

        // Exactly one address: the dedicated one.
        let addresses: Vec<AddressMessage> = handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err(&format!("list addresses of {}", plan.name), e))?;
        let mut present = false;
        for msg in addresses {
            if msg.header.family != AddressFamily::Inet {
                continue;
            }
            if address_of(&msg) == Some(plan.address) && msg.header.prefix_len == 32 {
                present = true;
                continue;
            }
            handle
                .address()
                .del(msg)
                .execute()
                .await
                .map_err(|e| nl_err(&format!("remove a stale address of {}", plan.name), e))?;
        }
        if !present {
            match handle
                .address()
                .add(index, IpAddr::V4(plan.address), 32)
                .execute()
                .await
            {
                Ok(()) => {}
                Err(e) if is_errno(&e, nix::libc::EEXIST) => {}
                Err(e) => {
                    return Err(nl_err(
                        &format!("add {}/32 to {}", plan.address, plan.name),
                        e,
                    ));
                }
            }
        }
        handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| nl_err(&format!("bring {} up", plan.name), e))?;

        // One /32 per decky; anything else through the hairpin is stale.
        let routes: Vec<RouteMessage> = handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(|e| nl_err("list routes", e))?;
        let wanted: BTreeSet<Ipv4Addr> = plan.routes.iter().copied().collect();
        let mut existing = BTreeSet::new();
        for route in routes {
            let Some(dest) = host_route_dest(&route, index) else {
                continue;
            };
            if wanted.contains(&dest) {
                existing.insert(dest);
            } else {
                match handle.route().del(route).execute().await {
                    Ok(()) => {}
                    Err(e) if is_errno(&e, nix::libc::ESRCH) => {}
                    Err(e) => return Err(nl_err(&format!("remove route {dest}/32"), e)),
                }
            }
        }
        for dest in wanted.difference(&existing) {
            handle
                .route()
                .add(host_route(*dest, index, plan.address))
                .replace()
                .execute()
                .await
                .map_err(|e| nl_err(&format!("add route {dest}/32 dev {}", plan.name), e))?;
        }
        Ok(())
    }

    async fn remove_hairpin(&self, project: &Project) -> Result<bool, Error> {
        let handle = connect()?;
        let macvlan = delete_link(&handle, &link_name(project, Driver::Macvlan)).await?;
        let ipvlan = delete_link(&handle, &link_name(project, Driver::Ipvlan)).await?;
        Ok(macvlan || ipvlan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn link_names_fit_the_kernel_limit() {
        let default = Project::default();
        assert_eq!(link_name(&default, Driver::Macvlan), "decnet_macvlan0");
        assert_eq!(link_name(&default, Driver::Ipvlan), "decnet_ipvlan0");
        let long = Project::new("a-rather-long-project-x").unwrap();
        for d in [Driver::Macvlan, Driver::Ipvlan] {
            let n = link_name(&long, d);
            assert!(n.len() <= 15, "{n}");
            assert!(n.starts_with("decnet"));
        }
        assert_ne!(
            link_name(&long, Driver::Macvlan),
            link_name(&Project::new("other").unwrap(), Driver::Macvlan)
        );
        assert!(Project::new("Bad_Name").is_err());
        assert!(Project::new("").is_err());
        assert_eq!(Project::new("lab-7").unwrap().network(), "lab_7_lan");
        let a = Project::for_home(std::path::Path::new("/srv/a"));
        assert!(a.as_str().starts_with("decnet-") && a.as_str().len() == 15);
        assert_eq!(Project::new(a.as_str()).unwrap(), a);
        assert_ne!(a, Project::for_home(std::path::Path::new("/srv/b")));
    }

    #[test]
    fn dedicated_address_avoids_everything_taken() {
        let net: Ipv4Net = "10.0.0.0/24".parse().unwrap();
        assert_eq!(
            choose_address(
                net,
                ip("10.0.0.1"),
                Some(ip("10.0.0.2")),
                &[ip("10.0.0.10")]
            )
            .unwrap(),
            ip("10.0.0.254")
        );
        // The highest addresses taken: the next one down.
        assert_eq!(
            choose_address(
                net,
                ip("10.0.0.254"),
                Some(ip("10.0.0.253")),
                &[ip("10.0.0.252")]
            )
            .unwrap(),
            ip("10.0.0.251")
        );
        let tiny: Ipv4Net = "10.0.0.0/30".parse().unwrap();
        assert!(choose_address(tiny, ip("10.0.0.1"), Some(ip("10.0.0.2")), &[]).is_err());
    }
}
