//! Plan building: CLI flags or a deployment INI, plus what is known about the LAN, become
//! a validated [`DecnetConfig`]. Randomness comes from a seed, so a plan is reproducible.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha12Rng;
use serde::Serialize;

use crate::Error;
use crate::catalog::{self, Archetype, DISTROS};
use crate::deploy_ini::IniConfig;
use crate::model::{DEFAULT_MUTATE_INTERVAL, DeckyConfig, DecnetConfig, Mode, ServiceConfig};
use crate::name::DeckyName;
use crate::net::{NetInfo, allocate_ips};

/// Most deckies a flag-built plan may ask for.
pub const MAX_FLAG_DECKIES: u32 = 1024;

/// Subnet shown when nothing is known about the LAN and the plan is only displayed.
/// TEST-NET-2 (RFC 5737): documentation space that is never routed.
pub const PLACEHOLDER_SUBNET: &str = "198.51.100.0/24";
/// Interface name shown when none was given or detected.
pub const PLACEHOLDER_INTERFACE: &str = "<none>";

/// How the fleet is described.
#[derive(Debug, Clone, PartialEq)]
pub enum PlanSource {
    /// `decnet deploy -n N ...`.
    Flags(FlagSpec),
    /// `decnet deploy --config deploy.ini`.
    Ini(IniConfig),
}

/// The flag-path options of `decnet deploy`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlagSpec {
    /// `--deckies/-n`.
    pub count: u32,
    /// `--services` (comma list already split).
    pub services: Option<Vec<String>>,
    /// `--randomize-services`.
    pub randomize_services: bool,
    /// `--distro` (comma list already split).
    pub distros: Option<Vec<String>>,
    /// `--randomize-distros`.
    pub randomize_distros: bool,
    /// `--archetype/-a`.
    pub archetype: Option<String>,
    /// `--ip-start`.
    pub ip_start: Option<Ipv4Addr>,
}

/// Everything a plan is built from.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanRequest {
    /// `--mode`.
    pub mode: Mode,
    /// Flags or INI.
    pub source: PlanSource,
    /// `--interface/-i`.
    pub interface: Option<String>,
    /// `--subnet`.
    pub subnet: Option<Ipv4Net>,
    /// `--log-file`.
    pub log_file: Option<String>,
    /// `--ipvlan`.
    pub ipvlan: bool,
    /// `--mutate-interval` (unset stays unset: INI values then win).
    pub mutate_interval: Option<u32>,
    /// Seed of every random choice.
    pub seed: u64,
    /// Epoch seconds stamped as `last_mutated` on INI-built deckies.
    pub now: f64,
    /// What detection found on this host (none when it failed or was not attempted).
    pub detected: Option<NetInfo>,
    /// When nothing is known about the LAN, plan against [`PLACEHOLDER_SUBNET`] instead of
    /// failing (dry runs only).
    pub allow_placeholder: bool,
}

/// Where the plan's network facts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkOrigin {
    /// Given on the command line or in the INI.
    Given,
    /// Detected on this host.
    Detected,
    /// Placeholders: nothing was known (dry run on a host without a usable NIC).
    Placeholder,
}

/// A built plan: the config plus how its network was resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// The validated configuration.
    pub config: DecnetConfig,
    /// This host's address on the LAN, when known.
    pub host_ip: Option<Ipv4Addr>,
    /// Origin of interface/subnet.
    pub network: NetworkOrigin,
    /// Seed used for random choices.
    pub seed: u64,
}

struct Lan {
    interface: String,
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    host_ip: Option<Ipv4Addr>,
    origin: NetworkOrigin,
}

/// Resolves interface, subnet, gateway and host IP: flag → INI → detection → placeholder.
/// The gateway comes from the INI, else from detection when the detected subnet is the
/// chosen one, else the subnet's first host.
fn resolve_lan(req: &PlanRequest, ini: Option<&IniConfig>) -> Result<Lan, Error> {
    let given_iface = req
        .interface
        .clone()
        .or_else(|| ini.and_then(|i| i.interface.clone()));
    let given_subnet = req.subnet.or_else(|| ini.and_then(|i| i.subnet));
    let ini_gateway = ini.and_then(|i| i.gateway);
    let detected = req.detected.as_ref();

    let (subnet, mut origin) = match (given_subnet, detected) {
        (Some(s), _) => (s.trunc(), NetworkOrigin::Given),
        (None, Some(d)) => (d.subnet.trunc(), NetworkOrigin::Detected),
        (None, None) if req.allow_placeholder => (
            PLACEHOLDER_SUBNET
                .parse::<Ipv4Net>()
                .map_err(|_| Error::Invalid("placeholder subnet".into()))?,
            NetworkOrigin::Placeholder,
        ),
        (None, None) => {
            return Err(Error::Invalid(
                "the subnet could not be detected on this host; pass --subnet (and --interface)"
                    .into(),
            ));
        }
    };
    let same_lan = detected.filter(|d| d.subnet.trunc() == subnet);
    let interface = match (given_iface, detected) {
        (Some(i), _) => i,
        (None, Some(d)) => d.interface.clone(),
        (None, None) if req.allow_placeholder => {
            origin = NetworkOrigin::Placeholder;
            PLACEHOLDER_INTERFACE.to_owned()
        }
        (None, None) => {
            return Err(Error::Invalid(
                "the network interface could not be detected on this host; pass --interface".into(),
            ));
        }
    };
    let first_host = Ipv4Addr::from(u32::from(subnet.network()).saturating_add(1));
    let gateway = ini_gateway
        .or_else(|| same_lan.map(|d| d.gateway))
        .unwrap_or(first_host);
    if !subnet.contains(&gateway) {
        return Err(Error::invalid(
            "gateway",
            gateway.to_string(),
            format!("outside the subnet {subnet}"),
        ));
    }
    Ok(Lan {
        interface,
        subnet,
        gateway,
        host_ip: same_lan.map(|d| d.host_ip),
        origin,
    })
}

/// Draws 1-3 random emulated services.
fn random_services(rng: &mut ChaCha12Rng) -> Vec<String> {
    let pool: Vec<&str> = catalog::selectable()
        .filter(|s| s.emulated)
        .map(|s| s.slug)
        .collect();
    let n = rng.gen_range(1..=3);
    let mut picked: Vec<String> = pool
        .choose_multiple(rng, n)
        .map(|s| (*s).to_owned())
        .collect();
    picked.sort();
    picked
}

fn check_service_list(services: &[String], customs: &[String]) -> Result<(), Error> {
    for s in services {
        if customs.contains(s) {
            continue;
        }
        if catalog::service(s)?.fleet_singleton {
            return Err(Error::Invalid(format!(
                "service '{s}' runs once per host and cannot be part of a decky"
            )));
        }
    }
    Ok(())
}

fn new_decky(
    name: DeckyName,
    ip: Ipv4Addr,
    services: Vec<String>,
    distro: &'static catalog::Distro,
    hostname: String,
    archetype: Option<&'static Archetype>,
    nmap_os: String,
) -> DeckyConfig {
    DeckyConfig {
        name,
        ip,
        services,
        distro: distro.slug.to_owned(),
        base_image: distro.base_image.to_owned(),
        build_base: distro.build_base.to_owned(),
        hostname,
        archetype: archetype.map(|a| a.slug.to_owned()),
        service_config: ServiceConfig::new(),
        nmap_os,
        mutate_interval: None,
        last_mutated: 0.0,
        last_login_attempt: 0.0,
        host_uuid: None,
    }
}

/// Builds and validates a plan.
///
/// # Errors
/// Any validation error, naming the culprit: unknown services, archetypes or distros,
/// `--deckies 0`, a subnet too small, duplicate or unusable addresses.
pub fn build_plan(req: &PlanRequest) -> Result<Plan, Error> {
    let mut rng = ChaCha12Rng::seed_from_u64(req.seed);
    let ini = match &req.source {
        PlanSource::Ini(ini) => Some(ini),
        PlanSource::Flags(_) => None,
    };
    let lan = resolve_lan(req, ini)?;
    let mut custom_services = Vec::new();
    let mut deckies = match &req.source {
        PlanSource::Flags(flags) => build_from_flags(req, flags, &lan, &mut rng)?,
        PlanSource::Ini(ini) => {
            custom_services.clone_from(&ini.custom_services);
            build_from_ini(req, ini, &lan, &mut rng)?
        }
    };
    if req.mode == Mode::Unihost {
        for d in &mut deckies {
            d.host_uuid = None;
        }
    }
    let config = DecnetConfig {
        mode: req.mode,
        interface: lan.interface,
        subnet: lan.subnet,
        gateway: lan.gateway,
        deckies,
        log_file: req.log_file.clone(),
        ipvlan: req.ipvlan,
        mutate_interval: req
            .mutate_interval
            .or_else(|| ini.and_then(|i| i.mutate_interval))
            .unwrap_or(DEFAULT_MUTATE_INTERVAL),
        custom_services,
    };
    config.validate()?;
    config.check_addresses(lan.host_ip)?;
    Ok(Plan {
        config,
        host_ip: lan.host_ip,
        network: lan.origin,
        seed: req.seed,
    })
}

fn build_from_flags(
    req: &PlanRequest,
    flags: &FlagSpec,
    lan: &Lan,
    rng: &mut ChaCha12Rng,
) -> Result<Vec<DeckyConfig>, Error> {
    if flags.count == 0 {
        return Err(Error::invalid(
            "--deckies",
            "0",
            "at least one decky is required",
        ));
    }
    if flags.count > MAX_FLAG_DECKIES {
        return Err(Error::invalid(
            "--deckies",
            flags.count.to_string(),
            format!("at most {MAX_FLAG_DECKIES} deckies per deploy"),
        ));
    }
    let archetype = flags
        .archetype
        .as_deref()
        .map(catalog::archetype)
        .transpose()?;
    if let Some(services) = &flags.services {
        if services.is_empty() {
            return Err(Error::invalid(
                "--services",
                "",
                "list at least one service",
            ));
        }
        check_service_list(services, &[])?;
    }
    if flags.services.is_none() && archetype.is_none() && !flags.randomize_services {
        return Err(Error::Invalid(
            "say which services the deckies run: --services, --archetype or --randomize-services"
                .into(),
        ));
    }
    let explicit_distros = flags
        .distros
        .as_ref()
        .map(|list| {
            list.iter()
                .map(|d| catalog::distro(d))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    if explicit_distros.as_ref().is_some_and(Vec::is_empty) {
        return Err(Error::invalid("--distro", "", "list at least one distro"));
    }
    let count = flags.count as usize;
    let ips = allocate_ips(
        lan.subnet,
        Some(lan.gateway),
        lan.host_ip,
        count,
        flags.ip_start,
        &BTreeSet::new(),
    )?;
    let mut earlier: Vec<Vec<String>> = Vec::new();
    let mut deckies = Vec::with_capacity(count);
    for (i, ip) in ips.into_iter().enumerate() {
        let distro = if let Some(list) = &explicit_distros {
            list[i % list.len()]
        } else if flags.randomize_distros {
            DISTROS.choose(rng).unwrap_or(&DISTROS[0])
        } else if let Some(a) = archetype {
            catalog::distro(a.distros[i % a.distros.len()])?
        } else {
            &DISTROS[i % DISTROS.len()]
        };
        let services = if let Some(list) = &flags.services {
            list.clone()
        } else if let Some(a) = archetype {
            a.services.iter().map(|s| (*s).to_owned()).collect()
        } else {
            // Redraw a few times so neighbouring deckies do not look cloned.
            let mut pick = random_services(rng);
            for _ in 0..20 {
                if !earlier.contains(&pick) {
                    break;
                }
                pick = random_services(rng);
            }
            earlier.push(pick.clone());
            pick
        };
        let name = DeckyName::new(format!("decky-{:02}", i + 1))?;
        let hostname = distro.hostname_style.generate(rng);
        let nmap_os = archetype.map_or("linux", |a| a.os_family).to_owned();
        let mut decky = new_decky(name, ip, services, distro, hostname, archetype, nmap_os);
        decky.mutate_interval = req.mutate_interval;
        deckies.push(decky);
    }
    Ok(deckies)
}

fn build_from_ini(
    req: &PlanRequest,
    ini: &IniConfig,
    lan: &Lan,
    rng: &mut ChaCha12Rng,
) -> Result<Vec<DeckyConfig>, Error> {
    let explicit: BTreeSet<Ipv4Addr> = ini.deckies.iter().filter_map(|d| d.ip).collect();
    let auto_count = ini.deckies.iter().filter(|d| d.ip.is_none()).count();
    let mut pool = allocate_ips(
        lan.subnet,
        Some(lan.gateway),
        lan.host_ip,
        auto_count,
        None,
        &explicit,
    )?
    .into_iter();
    let mut deckies = Vec::with_capacity(ini.deckies.len());
    for (index, spec) in ini.deckies.iter().enumerate() {
        let at = |e: Error| e.at(spec.location.clone());
        let archetype = spec
            .archetype
            .as_deref()
            .map(catalog::archetype)
            .transpose()
            .map_err(at)?;
        let distro = match (&spec.distro, archetype) {
            (Some(d), _) => catalog::distro(d).map_err(at)?,
            // The reference indexes the preferred list by the global decky count.
            (None, Some(a)) => catalog::distro(a.distros[index % a.distros.len()]).map_err(at)?,
            (None, None) => &DISTROS[index % DISTROS.len()],
        };
        let services = match (&spec.services, archetype) {
            (Some(list), _) => list.clone(),
            (None, Some(a)) => a.services.iter().map(|s| (*s).to_owned()).collect(),
            (None, None) => random_services(rng),
        };
        for slug in spec.service_config.keys() {
            if !services.contains(slug) {
                return Err(at(Error::Invalid(format!(
                    "persona section [{}.{slug}] but decky '{}' does not run '{slug}'",
                    spec.name, spec.name
                ))));
            }
        }
        let ip = match spec.ip {
            Some(ip) => ip,
            None => pool
                .next()
                .ok_or_else(|| at(Error::Invalid("address pool exhausted".into())))?,
        };
        let hostname = spec
            .hostname
            .clone()
            .unwrap_or_else(|| distro.hostname_style.generate(rng));
        let nmap_os = spec
            .nmap_os
            .clone()
            .or_else(|| archetype.map(|a| a.os_family.to_owned()))
            .unwrap_or_else(|| "linux".to_owned());
        let mut decky = new_decky(
            spec.name.clone(),
            ip,
            services,
            distro,
            hostname,
            archetype,
            nmap_os,
        );
        decky.service_config = spec.service_config.clone();
        decky.mutate_interval = req
            .mutate_interval
            .or(spec.mutate_interval)
            .or(ini.mutate_interval);
        decky.last_mutated = req.now;
        deckies.push(decky);
    }
    Ok(deckies)
}

/// A stable, locally-unique MAC for a decky: a vendor prefix typical of its OS family and
/// three bytes hashed from its name and address, so a redeploy keeps the same MAC.
pub fn decky_mac(decky: &DeckyConfig) -> [u8; 6] {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("decnet-mac:{}:{}", decky.name, decky.ip).as_bytes());
    let ouis = decky
        .os_family()
        .map(|f| f.mac_ouis)
        .unwrap_or(&[[0x02, 0x42, 0xac]]);
    let oui = ouis[usize::from(digest[0]) % ouis.len().max(1)];
    [oui[0], oui[1], oui[2], digest[1], digest[2], digest[3]]
}

/// Formats a MAC as `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deploy_ini::parse_deployment_ini;

    fn lan() -> NetInfo {
        NetInfo {
            interface: "eth0".into(),
            subnet: "192.168.1.0/24".parse().unwrap(),
            gateway: "192.168.1.1".parse().unwrap(),
            host_ip: "192.168.1.2".parse().unwrap(),
        }
    }

    fn flags_req(flags: FlagSpec) -> PlanRequest {
        PlanRequest {
            mode: Mode::Unihost,
            source: PlanSource::Flags(flags),
            interface: None,
            subnet: None,
            log_file: None,
            ipvlan: false,
            mutate_interval: None,
            seed: 42,
            now: 1_700_000_000.0,
            detected: Some(lan()),
            allow_placeholder: false,
        }
    }

    #[test]
    fn flag_plan_cycles_distros_and_skips_reserved() {
        let plan = build_plan(&flags_req(FlagSpec {
            count: 10,
            services: Some(vec!["ssh".into(), "http".into()]),
            ..Default::default()
        }))
        .unwrap();
        let c = &plan.config;
        assert_eq!(c.deckies.len(), 10);
        assert_eq!(c.deckies[0].name.as_str(), "decky-01");
        assert_eq!(c.deckies[0].ip.to_string(), "192.168.1.3");
        assert_eq!(c.deckies[0].distro, "debian");
        assert_eq!(c.deckies[8].distro, "arch");
        assert_eq!(c.deckies[9].distro, "debian");
        assert_eq!(plan.network, NetworkOrigin::Detected);
        assert_eq!(plan.host_ip.unwrap().to_string(), "192.168.1.2");
    }

    #[test]
    fn same_seed_same_plan() {
        let flags = FlagSpec {
            count: 6,
            randomize_services: true,
            randomize_distros: true,
            ..Default::default()
        };
        let a = build_plan(&flags_req(flags.clone())).unwrap();
        let b = build_plan(&flags_req(flags.clone())).unwrap();
        assert_eq!(a, b);
        let mut other = flags_req(flags);
        other.seed = 43;
        assert_ne!(build_plan(&other).unwrap().config, a.config);
    }

    #[test]
    fn archetype_drives_services_and_os() {
        let plan = build_plan(&flags_req(FlagSpec {
            count: 2,
            archetype: Some("windows-server".into()),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(plan.config.deckies[0].services, ["smb", "rdp", "ldap"]);
        assert_eq!(plan.config.deckies[0].nmap_os, "windows");
        assert_eq!(
            plan.config.deckies[0].archetype.as_deref(),
            Some("windows-server")
        );
    }

    #[test]
    fn bad_flags() {
        let err = |flags| build_plan(&flags_req(flags)).unwrap_err().to_string();
        assert!(
            err(FlagSpec {
                count: 0,
                randomize_services: true,
                ..Default::default()
            })
            .contains("--deckies")
        );
        assert!(
            err(FlagSpec {
                count: 1,
                ..Default::default()
            })
            .contains("--services")
        );
        let e = err(FlagSpec {
            count: 300,
            services: Some(vec!["ssh".into()]),
            ..Default::default()
        });
        assert!(e.contains("300 requested, 252 available"), "{e}");
        let e = err(FlagSpec {
            count: 1,
            services: Some(vec!["nope".into()]),
            ..Default::default()
        });
        assert!(e.contains("'nope'"), "{e}");
        let e = err(FlagSpec {
            count: 1,
            archetype: Some("nope".into()),
            ..Default::default()
        });
        assert!(e.contains("unknown archetype 'nope'"), "{e}");
        let e = err(FlagSpec {
            count: 1,
            randomize_services: true,
            distros: Some(vec!["gentoo".into()]),
            ..Default::default()
        });
        assert!(e.contains("'gentoo'"), "{e}");
    }

    #[test]
    fn placeholder_only_when_allowed() {
        let mut req = flags_req(FlagSpec {
            count: 2,
            randomize_services: true,
            ..Default::default()
        });
        req.detected = None;
        assert!(
            build_plan(&req)
                .unwrap_err()
                .to_string()
                .contains("--subnet")
        );
        req.allow_placeholder = true;
        let plan = build_plan(&req).unwrap();
        assert_eq!(plan.network, NetworkOrigin::Placeholder);
        assert_eq!(plan.config.interface, PLACEHOLDER_INTERFACE);
        assert_eq!(plan.config.subnet.to_string(), PLACEHOLDER_SUBNET);
    }

    #[test]
    fn given_subnet_on_another_lan_gets_its_own_gateway() {
        let mut req = flags_req(FlagSpec {
            count: 1,
            randomize_services: true,
            ..Default::default()
        });
        req.subnet = Some("10.200.0.0/24".parse().unwrap());
        req.interface = Some("veth-lab".into());
        let plan = build_plan(&req).unwrap();
        assert_eq!(plan.config.gateway.to_string(), "10.200.0.1");
        assert_eq!(plan.config.deckies[0].ip.to_string(), "10.200.0.2");
        assert_eq!(plan.host_ip, None);
    }

    #[test]
    fn ini_plan_explicit_ips_are_reserved_and_checked() {
        let text = "[general]\nnet = 10.0.0.0/24\ngw = 10.0.0.1\ninterface = eth9\n\
                    [a]\nservices = ssh\n[b]\nip = 10.0.0.2\nservices = http\n";
        let ini = parse_deployment_ini("d.ini", text).unwrap();
        let mut req = flags_req(FlagSpec::default());
        req.source = PlanSource::Ini(ini);
        let plan = build_plan(&req).unwrap();
        // `a` skips .2 because `b` asked for it.
        assert_eq!(plan.config.deckies[0].ip.to_string(), "10.0.0.3");
        assert_eq!(plan.config.interface, "eth9");
        assert_eq!(plan.config.deckies[0].last_mutated, 1_700_000_000.0);

        let text = "[general]\nnet = 10.0.0.0/24\ngw = 10.0.0.1\n[a]\nip = 10.0.0.9\nservices = ssh\n[b]\nip = 10.0.0.9\nservices = ssh\n";
        let mut req = flags_req(FlagSpec::default());
        req.source = PlanSource::Ini(parse_deployment_ini("d.ini", text).unwrap());
        let e = build_plan(&req).unwrap_err().to_string();
        assert!(e.contains("duplicate IP 10.0.0.9"), "{e}");

        let text =
            "[general]\nnet = 10.0.0.0/24\ngw = 10.0.0.1\n[a]\nip = 10.0.0.1\nservices = ssh\n";
        let mut req = flags_req(FlagSpec::default());
        req.source = PlanSource::Ini(parse_deployment_ini("d.ini", text).unwrap());
        assert!(
            build_plan(&req)
                .unwrap_err()
                .to_string()
                .contains("gateway")
        );
    }

    #[test]
    fn mac_is_stable_and_vendor_prefixed() {
        let plan = build_plan(&flags_req(FlagSpec {
            count: 2,
            archetype: Some("windows-workstation".into()),
            ..Default::default()
        }))
        .unwrap();
        let d = &plan.config.deckies[0];
        let mac = decky_mac(d);
        assert_eq!(mac, decky_mac(d));
        assert_ne!(mac, decky_mac(&plan.config.deckies[1]));
        let family = catalog::os_family("windows").unwrap();
        assert!(family.mac_ouis.contains(&[mac[0], mac[1], mac[2]]));
        assert_eq!(format_mac([0, 0x1a, 2, 3, 4, 0xff]), "00:1a:02:03:04:ff");
    }
}
