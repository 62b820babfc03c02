//! The deployment INI of the reference: `[general]`, decky sections (with `amount`),
//! `[<decky>.<service>]` persona sections and `[custom-<name>]` services.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde_json::Value;

use crate::Error;
use crate::catalog::{self, parse_persona_value};
use crate::error::Location;
use crate::ini::{self, Entry, Ini, Section};
use crate::model::{CustomService, ServiceConfig, parse_subnet};
use crate::name::DeckyName;

/// Largest `amount` of one decky section.
pub const MAX_AMOUNT: u32 = 100;

/// One decky (or one member of an `amount` group) as the INI describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeckySpec {
    /// Name (the section name, or `<section>-NN` for groups).
    pub name: DeckyName,
    /// Explicit address.
    pub ip: Option<Ipv4Addr>,
    /// Explicit services.
    pub services: Option<Vec<String>>,
    /// Archetype slug.
    pub archetype: Option<String>,
    /// Explicit OS family.
    pub nmap_os: Option<String>,
    /// Explicit distro (extension over the reference).
    pub distro: Option<String>,
    /// Explicit hostname (extension over the reference).
    pub hostname: Option<String>,
    /// Per-decky mutation interval.
    pub mutate_interval: Option<u32>,
    /// Persona settings from `[<section>.<service>]`.
    pub service_config: ServiceConfig,
    /// Where the decky's section starts, for later errors.
    pub location: Location,
}

/// A parsed deployment INI.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IniConfig {
    /// `[general] net`.
    pub subnet: Option<Ipv4Net>,
    /// `[general] gw`.
    pub gateway: Option<Ipv4Addr>,
    /// `[general] interface`.
    pub interface: Option<String>,
    /// `[general] log_target` (`host:port` of a syslog receiver).
    pub log_target: Option<String>,
    /// `[general] mutate_interval` (parsed, unlike the reference).
    pub mutate_interval: Option<u32>,
    /// Deckies in file order, groups expanded.
    pub deckies: Vec<DeckySpec>,
    /// `[custom-*]` services.
    pub custom_services: Vec<CustomService>,
}

fn entry_err(ini: &Ini, section: &Section, entry: &Entry, err: Error) -> Error {
    err.at(ini.location(section, Some(entry)))
}

fn parse_interval(ini: &Ini, section: &Section, entry: &Entry) -> Result<u32, Error> {
    match entry.value.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(entry_err(
            ini,
            section,
            entry,
            Error::invalid(
                "mutate_interval",
                &entry.value,
                "expected a whole number of minutes >= 1",
            ),
        )),
    }
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Classification of one section.
enum Kind<'a> {
    General,
    Custom(&'a str),
    Persona { decky: &'a str, service: &'a str },
    Decky,
}

fn classify(name: &str) -> Kind<'_> {
    if name == "general" {
        return Kind::General;
    }
    if let Some(custom) = name.strip_prefix("custom-") {
        return Kind::Custom(custom);
    }
    if let Some((decky, service)) = name.rsplit_once('.')
        && catalog::service(service).is_ok()
    {
        return Kind::Persona { decky, service };
    }
    Kind::Decky
}

/// Parses a deployment INI.
///
/// # Errors
/// [`Error::At`] naming the file, line and key of the first problem: unknown keys,
/// unknown services or archetypes, bad CIDRs or addresses, `amount` out of range or
/// combined with `ip`, persona keys the service does not accept, persona sections for
/// deckies or services that do not exist.
pub fn parse_deployment_ini(file: &str, text: &str) -> Result<IniConfig, Error> {
    let ini = ini::parse(file, text)?;
    let mut config = IniConfig::default();
    let mut persona_sections: Vec<(&Section, &str, &str)> = Vec::new();
    // Section name → indices of the deckies it produced (groups produce several).
    let mut produced: BTreeMap<&str, Vec<usize>> = BTreeMap::new();

    // Custom services first: decky sections may reference ones defined further down.
    for section in &ini.sections {
        if let Kind::Custom(name) = classify(&section.name) {
            config
                .custom_services
                .push(parse_custom(&ini, section, name)?);
        }
    }
    let customs: Vec<String> = config
        .custom_services
        .iter()
        .map(|c| c.name.clone())
        .collect();
    for section in &ini.sections {
        match classify(&section.name) {
            Kind::General => parse_general(&ini, section, &mut config)?,
            Kind::Custom(_) => {}
            Kind::Persona { decky, service } => persona_sections.push((section, decky, service)),
            Kind::Decky => {
                let specs = parse_decky_section(&ini, section, &customs)?;
                let start = config.deckies.len();
                config.deckies.extend(specs);
                produced.insert(&section.name, (start..config.deckies.len()).collect());
            }
        }
    }

    for (section, decky, service) in persona_sections {
        let Some(targets) = produced.get(decky) else {
            return Err(Error::Invalid(format!(
                "persona section for decky '{decky}', which no section defines"
            ))
            .at(ini.location(section, None)));
        };
        let spec = catalog::service(service)?;
        let mut settings: BTreeMap<String, Value> = BTreeMap::new();
        for entry in &section.entries {
            let value = parse_persona_value(spec, &entry.key, &entry.value)
                .map_err(|e| entry_err(&ini, section, entry, e))?;
            settings.insert(entry.key.clone(), value);
        }
        for &i in targets {
            let target = &mut config.deckies[i];
            target
                .service_config
                .insert(service.to_owned(), settings.clone());
        }
    }
    Ok(config)
}

fn parse_general(ini: &Ini, section: &Section, config: &mut IniConfig) -> Result<(), Error> {
    for entry in &section.entries {
        let err = |e: Error| entry_err(ini, section, entry, e);
        match entry.key.as_str() {
            "net" => config.subnet = Some(parse_subnet(&entry.value).map_err(err)?),
            "gw" => {
                config.gateway = Some(entry.value.trim().parse().map_err(|_| {
                    err(Error::invalid(
                        "gateway",
                        &entry.value,
                        "not an IPv4 address",
                    ))
                })?);
            }
            "interface" => config.interface = Some(entry.value.trim().to_owned()),
            "log_target" | "log-target" => config.log_target = Some(entry.value.trim().to_owned()),
            "mutate_interval" | "mutate-interval" => {
                config.mutate_interval = Some(parse_interval(ini, section, entry)?);
            }
            other => {
                return Err(err(Error::Invalid(format!(
                    "unknown key '{other}' in [general] (accepted: net, gw, interface, log_target, mutate_interval)"
                ))));
            }
        }
    }
    Ok(())
}

fn parse_custom(ini: &Ini, section: &Section, name: &str) -> Result<CustomService, Error> {
    let mut custom = CustomService {
        name: name.to_owned(),
        binary: String::new(),
        exec: None,
        ports: Vec::new(),
    };
    for entry in &section.entries {
        match entry.key.as_str() {
            "binary" => custom.binary = entry.value.trim().to_owned(),
            "exec" => custom.exec = Some(entry.value.trim().to_owned()).filter(|s| !s.is_empty()),
            "ports" => {
                for item in split_list(&entry.value) {
                    // The reference drops non-digits; a port that is not a number is a
                    // typo worth reporting instead.
                    let port: u16 = item.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                        entry_err(
                            ini,
                            section,
                            entry,
                            Error::invalid("port", &item, "expected 1-65535"),
                        )
                    })?;
                    custom.ports.push(port);
                }
            }
            other => {
                return Err(entry_err(
                    ini,
                    section,
                    entry,
                    Error::Invalid(format!(
                        "unknown key '{other}' in a custom service (accepted: binary, exec, ports)"
                    )),
                ));
            }
        }
    }
    if custom.binary.is_empty() {
        return Err(
            Error::Invalid("custom service needs 'binary = image:tag'".into())
                .at(ini.location(section, None)),
        );
    }
    custom
        .check()
        .map_err(|e| e.at(ini.location(section, None)))?;
    Ok(custom)
}

fn parse_decky_section(
    ini: &Ini,
    section: &Section,
    customs: &[String],
) -> Result<Vec<DeckySpec>, Error> {
    let header = ini.location(section, None);
    let base_name = DeckyName::new(section.name.clone()).map_err(|e| e.at(header.clone()))?;
    let mut spec = DeckySpec {
        name: base_name,
        ip: None,
        services: None,
        archetype: None,
        nmap_os: None,
        distro: None,
        hostname: None,
        mutate_interval: None,
        service_config: ServiceConfig::new(),
        location: header.clone(),
    };
    let mut amount: Option<(u32, &Entry)> = None;
    let mut ip_entry: Option<&Entry> = None;
    for entry in &section.entries {
        let err = |e: Error| entry_err(ini, section, entry, e);
        let value = entry.value.trim();
        match entry.key.as_str() {
            "ip" => {
                spec.ip = Some(
                    value
                        .parse()
                        .map_err(|_| err(Error::invalid("ip", value, "not an IPv4 address")))?,
                );
                ip_entry = Some(entry);
            }
            "services" => {
                let list = split_list(value);
                if list.is_empty() {
                    return Err(err(Error::Invalid("services is empty".into())));
                }
                for service in &list {
                    if customs.contains(service) {
                        continue;
                    }
                    if catalog::service(service).map_err(err)?.fleet_singleton {
                        return Err(err(Error::Invalid(format!(
                            "service '{service}' runs once per host and cannot be part of a decky"
                        ))));
                    }
                }
                spec.services = Some(list);
            }
            "archetype" => {
                catalog::archetype(value).map_err(err)?;
                spec.archetype = Some(value.to_owned());
            }
            "nmap_os" | "nmap-os" => {
                catalog::os_family(value).map_err(err)?;
                spec.nmap_os = Some(value.to_owned());
            }
            "distro" => {
                catalog::distro(value).map_err(err)?;
                spec.distro = Some(value.to_owned());
            }
            "hostname" => spec.hostname = Some(value.to_owned()),
            "mutate_interval" | "mutate-interval" => {
                spec.mutate_interval = Some(parse_interval(ini, section, entry)?);
            }
            "amount" => {
                let n: u32 = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_AMOUNT).contains(n))
                    .ok_or_else(|| {
                        err(Error::invalid(
                            "amount",
                            value,
                            format!("expected a whole number from 1 to {MAX_AMOUNT}"),
                        ))
                    })?;
                amount = Some((n, entry));
            }
            other => {
                return Err(err(Error::Invalid(format!(
                    "unknown key '{other}' in decky section (accepted: ip, services, archetype, nmap_os, \
                     distro, hostname, mutate_interval, amount)"
                ))));
            }
        }
    }
    if let (Some((_, amount_entry)), Some(_)) = (amount, ip_entry) {
        return Err(entry_err(
            ini,
            section,
            amount_entry,
            Error::Invalid(
                "'amount' cannot be combined with 'ip' (each expanded decky needs its own address)"
                    .into(),
            ),
        ));
    }
    match amount {
        Some((n, entry)) if n > 1 => {
            if spec.hostname.is_some() {
                return Err(entry_err(
                    ini,
                    section,
                    entry,
                    Error::Invalid("'amount' cannot be combined with 'hostname'".into()),
                ));
            }
            (1..=n)
                .map(|i| {
                    let name = DeckyName::new(format!("{}-{i:02}", section.name))
                        .map_err(|e| entry_err(ini, section, entry, e))?;
                    Ok(DeckySpec {
                        name,
                        ..spec.clone()
                    })
                })
                .collect()
        }
        _ => Ok(vec![spec]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_shapes_load() {
        let text = "[general]\nnet = 192.168.50.0/24\ngw = 192.168.50.1\ninterface = eth0\n\n\
                    [corp-ws]\narchetype = windows-workstation\namount = 3\n\n\
                    [corp-ws.smb]\n\n\
                    [web-01]\nip = 192.168.50.20\nservices = http, ssh\nnmap-os = linux\n\n\
                    [web-01.http]\nserver_header = Apache/2.4.57 (Debian)\nfake_app = wordpress\n\n\
                    [custom-tool]\nbinary = local/tool:1\nports = 8080, 8443\n";
        let c = parse_deployment_ini("deploy.ini", text).unwrap();
        assert_eq!(c.subnet.unwrap().to_string(), "192.168.50.0/24");
        let names: Vec<_> = c.deckies.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["corp-ws-01", "corp-ws-02", "corp-ws-03", "web-01"]);
        assert_eq!(c.deckies[3].ip, Some("192.168.50.20".parse().unwrap()));
        assert_eq!(c.deckies[3].services.as_deref().unwrap(), ["http", "ssh"]);
        assert_eq!(
            c.deckies[3].service_config["http"]["fake_app"],
            Value::from("wordpress")
        );
        // A group's persona section applies to every member.
        assert!(
            c.deckies[..3]
                .iter()
                .all(|d| d.service_config.contains_key("smb"))
        );
        assert_eq!(c.custom_services[0].ports, [8080, 8443]);
    }

    fn err_of(text: &str) -> String {
        parse_deployment_ini("d.ini", text).unwrap_err().to_string()
    }

    #[test]
    fn bad_input_names_file_line_and_key() {
        let e = err_of("[a]\nservices = ssh, smbx\n");
        assert!(
            e.starts_with("d.ini:2: [a] key 'services'") && e.contains("smbx"),
            "{e}"
        );
        let e = err_of("[a]\narchetype = mainframe\n");
        assert!(
            e.starts_with("d.ini:2: [a] key 'archetype'") && e.contains("mainframe"),
            "{e}"
        );
        let e = err_of("[general]\nnet = 10.0.0/8\n");
        assert!(e.starts_with("d.ini:2: [general] key 'net'"), "{e}");
        let e = err_of("[a]\nip = 10.0.0.5\namount = 3\n");
        assert!(
            e.starts_with("d.ini:3: [a] key 'amount'") && e.contains("'ip'"),
            "{e}"
        );
        let e = err_of("[a]\namount = 0\n");
        assert!(e.contains("key 'amount'") && e.contains("1 to 100"), "{e}");
        let e = err_of("[a]\namount = many\n");
        assert!(e.contains("'many'"), "{e}");
        let e = err_of("[a]\nservices = http\n[a.http]\nssh_version = x\n");
        assert!(e.starts_with("d.ini:4: [a.http] key 'ssh_version'"), "{e}");
        let e = err_of("[ghost.http]\nserver_header = x\n");
        assert!(e.contains("ghost"), "{e}");
        let e = err_of("[Web_01]\nservices = ssh\n");
        assert!(
            e.starts_with("d.ini:1: section [Web_01]") && e.contains("Web_01"),
            "{e}"
        );
        let e = err_of("[a]\ncolour = red\n");
        assert!(e.contains("'colour'"), "{e}");
        let e = err_of("[custom-x]\nports = 80\n");
        assert!(e.contains("binary"), "{e}");
        let e = err_of("[a]\nservices = sniffer\n");
        assert!(e.contains("once per host"), "{e}");
    }

    #[test]
    fn general_mutate_interval_is_parsed() {
        let c = parse_deployment_ini(
            "d.ini",
            "[general]\nmutate_interval = 45\n[a]\nservices=ssh\n",
        )
        .unwrap();
        assert_eq!(c.mutate_interval, Some(45));
    }
}
