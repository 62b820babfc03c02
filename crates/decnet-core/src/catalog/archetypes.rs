//! Archetypes: named machine roles with their services, preferred distros and OS family.

use serde::Serialize;

use crate::Error;

/// One archetype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Archetype {
    /// Slug used in `--archetype` and INI `archetype=`.
    pub slug: &'static str,
    /// Human description.
    pub display: &'static str,
    /// Services a decky of this archetype runs.
    pub services: &'static [&'static str],
    /// Distros cycled for deckies of this archetype.
    pub distros: &'static [&'static str],
    /// OS fingerprint family (`nmap_os`).
    pub os_family: &'static str,
}

const fn arch(
    slug: &'static str,
    display: &'static str,
    services: &'static [&'static str],
    distros: &'static [&'static str],
    os_family: &'static str,
) -> Archetype {
    Archetype {
        slug,
        display,
        services,
        distros,
        os_family,
    }
}

/// The fifteen archetypes of the reference.
pub static ARCHETYPES: &[Archetype] = &[
    arch(
        "windows-workstation",
        "Windows 10/11 desktop",
        &["smb", "rdp"],
        &["debian", "ubuntu22"],
        "windows",
    ),
    arch(
        "windows-server",
        "Windows Server member",
        &["smb", "rdp", "ldap"],
        &["debian", "ubuntu22"],
        "windows",
    ),
    arch(
        "domain-controller",
        "Active Directory domain controller",
        &["ldap", "smb", "rdp", "llmnr"],
        &["debian", "ubuntu22"],
        "windows",
    ),
    arch(
        "linux-server",
        "General-purpose Linux server",
        &["ssh", "http"],
        &["debian", "ubuntu22", "rocky9"],
        "linux",
    ),
    arch(
        "web-server",
        "Web and FTP front end",
        &["http", "ftp"],
        &["ubuntu22", "debian", "ubuntu20"],
        "linux",
    ),
    arch(
        "database-server",
        "SQL and cache back end",
        &["mysql", "postgres", "redis"],
        &["debian", "rocky9", "ubuntu22"],
        "linux",
    ),
    arch(
        "mail-server",
        "Mail transfer and mailbox host",
        &["smtp", "pop3", "imap"],
        &["debian", "centos7"],
        "linux",
    ),
    arch(
        "file-server",
        "File share",
        &["smb", "ftp", "ssh"],
        &["debian", "ubuntu20"],
        "linux",
    ),
    arch(
        "printer",
        "Network printer",
        &["snmp", "ftp"],
        &["alpine"],
        "embedded",
    ),
    arch(
        "iot-device",
        "IoT gateway or camera",
        &["mqtt", "snmp", "telnet"],
        &["alpine"],
        "embedded",
    ),
    arch(
        "industrial-control",
        "PLC / SCADA endpoint",
        &["conpot", "snmp"],
        &["alpine"],
        "embedded",
    ),
    arch(
        "voip-server",
        "SIP PBX",
        &["sip"],
        &["debian", "centos7"],
        "linux",
    ),
    arch(
        "monitoring-node",
        "Monitoring collector",
        &["snmp", "ssh"],
        &["ubuntu22", "debian"],
        "linux",
    ),
    arch(
        "devops-host",
        "Container and cluster host",
        &["docker_api", "ssh", "k8s"],
        &["ubuntu22", "fedora"],
        "linux",
    ),
    arch(
        "deaddeck",
        "Forgotten jump box",
        &["ssh"],
        &["kali", "arch", "debian"],
        "linux",
    ),
];

/// Looks up an archetype by slug.
///
/// # Errors
/// [`Error::Unknown`] listing every archetype.
pub fn archetype(slug: &str) -> Result<&'static Archetype, Error> {
    ARCHETYPES
        .iter()
        .find(|a| a.slug == slug)
        .ok_or_else(|| Error::Unknown {
            what: "archetype",
            name: slug.to_owned(),
            known: ARCHETYPES
                .iter()
                .map(|a| a.slug)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{distro, os_family, service};

    #[test]
    fn fifteen_archetypes_referencing_real_entries() {
        assert_eq!(ARCHETYPES.len(), 15);
        for a in ARCHETYPES {
            for s in a.services {
                let spec = service(s).unwrap();
                assert!(!spec.fleet_singleton, "{}", a.slug);
            }
            for d in a.distros {
                distro(d).unwrap();
            }
            os_family(a.os_family).unwrap();
        }
        assert!(
            archetype("mainframe")
                .unwrap_err()
                .to_string()
                .contains("deaddeck")
        );
    }
}
