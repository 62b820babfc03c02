//! The fleet model: `DeckyConfig`, `DecnetConfig` and custom services.
//!
//! Raw serde types (`Raw*`) accept exactly the fields of the reference's JSON; the
//! validated types can only hold values that passed [`DecnetConfig::validate`].

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::Error;
use crate::catalog::{self, check_persona_value};
use crate::name::{DeckyName, HostUuid, check_label};

/// Default build base of the reference's service images.
pub const DEFAULT_BUILD_BASE: &str = "debian:bookworm-slim";
/// Default mutation interval, in minutes.
pub const DEFAULT_MUTATE_INTERVAL: u32 = 30;
/// Most deckies one config may hold.
pub const MAX_DECKIES: usize = 4096;
/// Most services one decky may run.
pub const MAX_SERVICES_PER_DECKY: usize = 32;

/// Deployment mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every decky runs on this host.
    #[default]
    Unihost,
    /// Deckies are sharded over enrolled workers.
    Swarm,
}

impl std::str::FromStr for Mode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "unihost" => Ok(Mode::Unihost),
            "swarm" => Ok(Mode::Swarm),
            other => Err(Error::invalid("mode", other, "expected unihost or swarm")),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Unihost => "unihost",
            Mode::Swarm => "swarm",
        })
    }
}

/// Per-service persona settings of one decky: service slug → key → value.
pub type ServiceConfig = BTreeMap<String, BTreeMap<String, Value>>;

/// One decky as stored in `decnet-state.json` (compatible with the reference's JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawDeckyConfig")]
pub struct DeckyConfig {
    /// Unique name (`^[a-z0-9][a-z0-9-]{0,62}$`).
    pub name: DeckyName,
    /// The decky's LAN address.
    pub ip: Ipv4Addr,
    /// Service slugs (catalogue or custom), at least one, no duplicates.
    pub services: Vec<String>,
    /// Distro slug.
    pub distro: String,
    /// Image of the reference's base container (kept for compatibility).
    pub base_image: String,
    /// Build base of the reference's service images (kept for compatibility).
    pub build_base: String,
    /// Hostname the decky shows.
    pub hostname: String,
    /// Archetype it was built from, if any.
    pub archetype: Option<String>,
    /// Persona settings per service.
    pub service_config: ServiceConfig,
    /// OS fingerprint family slug.
    pub nmap_os: String,
    /// Minutes between service mutations (none: the fleet default).
    pub mutate_interval: Option<u32>,
    /// Epoch seconds of the last mutation.
    pub last_mutated: f64,
    /// Epoch seconds of the last login attempt seen.
    pub last_login_attempt: f64,
    /// Swarm host that runs it; absent in unihost mode.
    pub host_uuid: Option<HostUuid>,
}

/// The reference's JSON form of a decky, strictly: unknown fields are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeckyConfig {
    name: String,
    ip: String,
    services: Vec<String>,
    distro: String,
    base_image: String,
    #[serde(default = "default_build_base")]
    build_base: String,
    hostname: String,
    #[serde(default)]
    archetype: Option<String>,
    #[serde(default)]
    service_config: ServiceConfig,
    #[serde(
        default = "default_nmap_os",
        deserialize_with = "null_as_default_nmap_os"
    )]
    nmap_os: String,
    #[serde(default)]
    mutate_interval: Option<u32>,
    #[serde(default, deserialize_with = "null_as_zero")]
    last_mutated: f64,
    #[serde(default, deserialize_with = "null_as_zero")]
    last_login_attempt: f64,
    #[serde(default)]
    host_uuid: Option<String>,
}

fn default_build_base() -> String {
    DEFAULT_BUILD_BASE.to_owned()
}

fn default_nmap_os() -> String {
    "linux".to_owned()
}

fn null_as_zero<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(0.0))
}

fn null_as_default_nmap_os<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_else(default_nmap_os))
}

fn null_as_default_interval<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    Ok(Option::<u32>::deserialize(d)?.unwrap_or(DEFAULT_MUTATE_INTERVAL))
}

/// Characters a hostname may hold (RFC 1123 labels joined by dots).
fn check_hostname(hostname: &str) -> Result<(), Error> {
    let bad = hostname.is_empty()
        || hostname.len() > 253
        || hostname.split('.').any(|label| {
            label.is_empty()
                || label.len() > 63
                || label.starts_with('-')
                || label.ends_with('-')
                || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if bad {
        return Err(Error::invalid(
            "hostname",
            hostname,
            "use letters, digits and '-' in dot-separated labels of 1-63 characters",
        ));
    }
    Ok(())
}

impl TryFrom<RawDeckyConfig> for DeckyConfig {
    type Error = Error;

    fn try_from(raw: RawDeckyConfig) -> Result<Self, Error> {
        let name = DeckyName::new(raw.name)?;
        let ip = raw.ip.parse::<Ipv4Addr>().map_err(|_| {
            Error::invalid(
                format!("IP of decky '{name}'"),
                &raw.ip,
                "not an IPv4 address",
            )
        })?;
        let decky = DeckyConfig {
            ip,
            services: raw.services,
            distro: raw.distro,
            base_image: raw.base_image,
            build_base: raw.build_base,
            hostname: raw.hostname,
            archetype: raw.archetype,
            service_config: raw.service_config,
            nmap_os: raw.nmap_os,
            mutate_interval: raw.mutate_interval,
            last_mutated: raw.last_mutated,
            last_login_attempt: raw.last_login_attempt,
            host_uuid: raw.host_uuid.map(HostUuid::new).transpose()?,
            name,
        };
        decky.check_intrinsic()?;
        Ok(decky)
    }
}

impl DeckyConfig {
    /// The host this decky belongs to: its `host_uuid`, or the `local` sentinel.
    pub fn host(&self) -> HostUuid {
        self.host_uuid.clone().unwrap_or_else(HostUuid::local)
    }

    /// The OS family entry of `nmap_os` (validated at construction).
    ///
    /// # Errors
    /// Never for a validated config; kept fallible for hand-built values.
    pub fn os_family(&self) -> Result<&'static catalog::OsFamily, Error> {
        catalog::os_family(&self.nmap_os)
    }

    /// Checks what can be checked without the rest of the fleet.
    fn check_intrinsic(&self) -> Result<(), Error> {
        let ctx = |e: Error| Error::Invalid(format!("decky '{}': {e}", self.name));
        if self.services.is_empty() {
            return Err(ctx(Error::Invalid(
                "at least one service is required".into(),
            )));
        }
        if self.services.len() > MAX_SERVICES_PER_DECKY {
            return Err(ctx(Error::Invalid(format!(
                "{} services, at most {MAX_SERVICES_PER_DECKY} are allowed",
                self.services.len()
            ))));
        }
        let mut seen = std::collections::HashSet::new();
        for s in &self.services {
            if !seen.insert(s) {
                return Err(ctx(Error::Invalid(format!(
                    "service '{s}' is listed twice"
                ))));
            }
        }
        catalog::distro(&self.distro).map_err(ctx)?;
        catalog::os_family(&self.nmap_os).map_err(ctx)?;
        if let Some(a) = &self.archetype {
            catalog::archetype(a).map_err(ctx)?;
        }
        check_hostname(&self.hostname).map_err(ctx)?;
        if let Some(interval) = self.mutate_interval
            && interval == 0
        {
            return Err(ctx(Error::invalid(
                "mutate_interval",
                "0",
                "must be at least 1 minute",
            )));
        }
        Ok(())
    }
}

/// A bring-your-own service from an INI `[custom-<name>]` section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomService {
    /// Name deckies list in `services=`.
    pub name: String,
    /// Local image to run (`image:tag`).
    pub binary: String,
    /// Command to run instead of the image's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<String>,
    /// Ports it listens on.
    #[serde(default)]
    pub ports: Vec<u16>,
}

impl CustomService {
    /// Validates the name and the image reference.
    ///
    /// # Errors
    /// [`Error`] naming the bad field.
    pub fn check(&self) -> Result<(), Error> {
        check_label(&self.name, "custom service name")?;
        if catalog::service(&self.name).is_ok() {
            return Err(Error::Invalid(format!(
                "custom service '{}' shadows the built-in service of the same name",
                self.name
            )));
        }
        let image_ok = !self.binary.is_empty()
            && self.binary.len() <= 255
            && self
                .binary
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
        if !image_ok {
            return Err(Error::invalid(
                format!("image of custom service '{}'", self.name),
                &self.binary,
                "expected an image reference such as registry/name:tag",
            ));
        }
        Ok(())
    }
}

/// A whole fleet configuration, as stored in `decnet-state.json` under `config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawDecnetConfig")]
pub struct DecnetConfig {
    /// Deployment mode.
    pub mode: Mode,
    /// Parent interface of the decky network.
    pub interface: String,
    /// LAN subnet.
    pub subnet: Ipv4Net,
    /// LAN gateway.
    pub gateway: Ipv4Addr,
    /// Deckies (at least one).
    pub deckies: Vec<DeckyConfig>,
    /// Host path of the collector's RFC 5424 log.
    pub log_file: Option<String>,
    /// IPvlan L2 instead of MACVLAN.
    pub ipvlan: bool,
    /// Fleet-wide mutation interval, minutes.
    pub mutate_interval: u32,
    /// Bring-your-own services referenced by deckies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_services: Vec<CustomService>,
}

/// The JSON form of a fleet configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDecnetConfig {
    #[serde(default)]
    mode: Mode,
    interface: String,
    subnet: String,
    gateway: String,
    deckies: Vec<DeckyConfig>,
    #[serde(default)]
    log_file: Option<String>,
    #[serde(default)]
    ipvlan: bool,
    #[serde(
        default = "default_interval",
        deserialize_with = "null_as_default_interval"
    )]
    mutate_interval: u32,
    #[serde(default)]
    custom_services: Vec<CustomService>,
}

fn default_interval() -> u32 {
    DEFAULT_MUTATE_INTERVAL
}

impl TryFrom<RawDecnetConfig> for DecnetConfig {
    type Error = Error;
    fn try_from(raw: RawDecnetConfig) -> Result<Self, Error> {
        let subnet = parse_subnet(&raw.subnet)?;
        let gateway = raw
            .gateway
            .parse()
            .map_err(|_| Error::invalid("gateway", &raw.gateway, "not an IPv4 address"))?;
        let config = DecnetConfig {
            mode: raw.mode,
            interface: raw.interface,
            subnet,
            gateway,
            deckies: raw.deckies,
            log_file: raw.log_file,
            ipvlan: raw.ipvlan,
            mutate_interval: raw.mutate_interval,
            custom_services: raw.custom_services,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Parses a CIDR and normalises it to its network (`10.0.0.7/24` → `10.0.0.0/24`).
///
/// # Errors
/// [`Error::InvalidValue`] naming the text.
pub fn parse_subnet(text: &str) -> Result<Ipv4Net, Error> {
    let net: Ipv4Net = text.trim().parse().map_err(|_| {
        Error::invalid(
            "subnet",
            text,
            "expected an IPv4 CIDR such as 192.168.1.0/24",
        )
    })?;
    if net.prefix_len() > 30 {
        return Err(Error::invalid(
            "subnet",
            text,
            "prefix longer than /30 leaves no room for deckies",
        ));
    }
    Ok(net.trunc())
}

impl DecnetConfig {
    /// Checks every rule that involves more than one decky: unique names and IPs, known
    /// services (catalogue or custom, no fleet singleton), persona keys and values, host
    /// assignment in swarm mode.
    ///
    /// # Errors
    /// The first rule broken, naming the decky and the culprit.
    pub fn validate(&self) -> Result<(), Error> {
        if self.deckies.is_empty() {
            return Err(Error::Invalid("a fleet needs at least one decky".into()));
        }
        if self.deckies.len() > MAX_DECKIES {
            return Err(Error::Invalid(format!(
                "{} deckies, at most {MAX_DECKIES} are allowed",
                self.deckies.len()
            )));
        }
        if self.mutate_interval == 0 {
            return Err(Error::invalid(
                "mutate_interval",
                "0",
                "must be at least 1 minute",
            ));
        }
        let mut customs = HashMap::new();
        for custom in &self.custom_services {
            custom.check()?;
            if customs.insert(custom.name.as_str(), custom).is_some() {
                return Err(Error::Invalid(format!(
                    "custom service '{}' is defined twice",
                    custom.name
                )));
            }
        }
        let mut names = HashMap::new();
        let mut ips: HashMap<Ipv4Addr, &DeckyName> = HashMap::new();
        for decky in &self.deckies {
            decky.check_intrinsic()?;
            if names.insert(decky.name.as_str(), ()).is_some() {
                return Err(Error::DuplicateName(decky.name.to_string()));
            }
            if let Some(first) = ips.insert(decky.ip, &decky.name) {
                return Err(Error::DuplicateIp {
                    ip: decky.ip,
                    first: first.to_string(),
                    second: decky.name.to_string(),
                });
            }
            for slug in &decky.services {
                if customs.contains_key(slug.as_str()) {
                    continue;
                }
                let spec = catalog::service(slug)
                    .map_err(|e| Error::Invalid(format!("decky '{}': {e}", decky.name)))?;
                if spec.fleet_singleton {
                    return Err(Error::Invalid(format!(
                        "decky '{}': service '{slug}' runs once per host and cannot be part of a decky",
                        decky.name
                    )));
                }
            }
            for (slug, settings) in &decky.service_config {
                if !decky.services.contains(slug) {
                    return Err(Error::Invalid(format!(
                        "decky '{}': persona settings for service '{slug}', which the decky does not run",
                        decky.name
                    )));
                }
                if customs.contains_key(slug.as_str()) {
                    if !settings.is_empty() {
                        return Err(Error::Invalid(format!(
                            "decky '{}': custom service '{slug}' takes no persona settings",
                            decky.name
                        )));
                    }
                    continue;
                }
                let spec = catalog::service(slug)?;
                for (key, value) in settings {
                    check_persona_value(spec, key, value)
                        .map_err(|e| Error::Invalid(format!("decky '{}': {e}", decky.name)))?;
                }
            }
            if self.mode == Mode::Unihost && decky.host_uuid.is_some() {
                return Err(Error::Invalid(format!(
                    "decky '{}' has a host_uuid but the mode is unihost",
                    decky.name
                )));
            }
        }
        Ok(())
    }

    /// Checks that every decky address is usable on this LAN: inside the subnet and not
    /// its network, broadcast, gateway or the host's own address.
    ///
    /// # Errors
    /// [`Error::BadDeckyIp`] naming the decky.
    pub fn check_addresses(&self, host_ip: Option<Ipv4Addr>) -> Result<(), Error> {
        for decky in &self.deckies {
            let reason = if !self.subnet.contains(&decky.ip) {
                Some(format!("outside the subnet {}", self.subnet))
            } else if decky.ip == self.subnet.network() {
                Some("is the network address".to_owned())
            } else if decky.ip == self.subnet.broadcast() {
                Some("is the broadcast address".to_owned())
            } else if decky.ip == self.gateway {
                Some("is the gateway".to_owned())
            } else if Some(decky.ip) == host_ip {
                Some("is this host's own address".to_owned())
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Error::BadDeckyIp {
                    decky: decky.name.to_string(),
                    ip: decky.ip,
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Finds a decky by name.
    pub fn decky(&self, name: &str) -> Option<&DeckyConfig> {
        self.deckies.iter().find(|d| d.name.as_str() == name)
    }

    /// Finds a custom service by name.
    pub fn custom_service(&self, name: &str) -> Option<&CustomService> {
        self.custom_services.iter().find(|c| c.name == name)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn decky_json(name: &str, ip: &str) -> Value {
        json!({
            "name": name, "ip": ip, "services": ["ssh"], "distro": "debian",
            "base_image": "debian:bookworm-slim", "hostname": "SRV-ATLAS-12"
        })
    }

    pub(crate) fn config_json(deckies: Vec<Value>) -> Value {
        json!({
            "mode": "unihost", "interface": "eth0", "subnet": "192.168.1.0/24",
            "gateway": "192.168.1.1", "deckies": deckies
        })
    }

    #[test]
    fn defaults_follow_the_reference() {
        let d: DeckyConfig = serde_json::from_value(decky_json("d1", "192.168.1.10")).unwrap();
        assert_eq!(d.build_base, DEFAULT_BUILD_BASE);
        assert_eq!(d.nmap_os, "linux");
        assert_eq!(d.host_uuid, None);
        assert_eq!(d.host().as_str(), "local");
        let c: DecnetConfig =
            serde_json::from_value(config_json(vec![decky_json("d1", "192.168.1.10")])).unwrap();
        assert_eq!(c.mutate_interval, 30);
        assert!(!c.ipvlan);
    }

    #[test]
    fn unknown_decky_fields_are_refused() {
        let mut d = decky_json("d1", "192.168.1.10");
        d["colour"] = json!("red");
        let err = serde_json::from_value::<DeckyConfig>(d)
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
    }

    #[test]
    fn bad_names_are_refused_at_construction() {
        let err = serde_json::from_value::<DeckyConfig>(decky_json("bad.name", "192.168.1.10"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.name"), "{err}");
    }

    #[test]
    fn fleet_rules() {
        let dup = config_json(vec![
            decky_json("a", "192.168.1.10"),
            decky_json("b", "192.168.1.10"),
        ]);
        let err = serde_json::from_value::<DecnetConfig>(dup)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("duplicate IP 192.168.1.10") && err.contains("'b'"),
            "{err}"
        );

        let dup = config_json(vec![
            decky_json("a", "192.168.1.10"),
            decky_json("a", "192.168.1.11"),
        ]);
        let err = serde_json::from_value::<DecnetConfig>(dup)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate decky name 'a'"), "{err}");

        let mut d = decky_json("a", "192.168.1.10");
        d["services"] = json!(["sniffer"]);
        let err = serde_json::from_value::<DecnetConfig>(config_json(vec![d]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("once per host"), "{err}");

        let mut d = decky_json("a", "192.168.1.10");
        d["service_config"] = json!({"ssh": {"server_header": "x"}});
        let err = serde_json::from_value::<DecnetConfig>(config_json(vec![d]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server_header"), "{err}");

        let err = serde_json::from_value::<DecnetConfig>(config_json(vec![]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at least one decky"), "{err}");
    }

    #[test]
    fn addresses_are_checked_against_the_lan() {
        let c: DecnetConfig =
            serde_json::from_value(config_json(vec![decky_json("a", "192.168.1.1")])).unwrap();
        let err = c.check_addresses(None).unwrap_err().to_string();
        assert!(err.contains("gateway"), "{err}");
        let c: DecnetConfig =
            serde_json::from_value(config_json(vec![decky_json("a", "10.0.0.5")])).unwrap();
        assert!(
            c.check_addresses(None)
                .unwrap_err()
                .to_string()
                .contains("outside")
        );
        let c: DecnetConfig =
            serde_json::from_value(config_json(vec![decky_json("a", "192.168.1.7")])).unwrap();
        assert!(
            c.check_addresses(Some("192.168.1.7".parse().unwrap()))
                .is_err()
        );
        assert!(
            c.check_addresses(Some("192.168.1.8".parse().unwrap()))
                .is_ok()
        );
    }

    #[test]
    fn subnet_is_normalised() {
        assert_eq!(
            parse_subnet("10.1.2.3/16").unwrap().to_string(),
            "10.1.0.0/16"
        );
        assert!(parse_subnet("10.1.2.3/31").is_err());
        assert!(
            parse_subnet("10.1.2/24")
                .unwrap_err()
                .to_string()
                .contains("10.1.2/24")
        );
    }
}
