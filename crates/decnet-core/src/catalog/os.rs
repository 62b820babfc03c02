//! OS fingerprint families: the TCP/IP sysctls a decky's network namespace carries.

use serde::Serialize;

use crate::Error;

/// One OS fingerprint family (the `nmap_os` value of a decky).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OsFamily {
    /// Slug used in configs (`linux`, `windows`, ...).
    pub slug: &'static str,
    /// Human name.
    pub display: &'static str,
    /// Initial IP TTL.
    pub ttl: u8,
    /// `net.ipv4.tcp_syn_retries`.
    pub tcp_syn_retries: u8,
    /// `net.ipv4.tcp_timestamps`.
    pub tcp_timestamps: u8,
    /// `net.ipv4.tcp_window_scaling`.
    pub tcp_window_scaling: u8,
    /// `net.ipv4.tcp_sack`.
    pub tcp_sack: u8,
    /// `net.ipv4.tcp_ecn`.
    pub tcp_ecn: u8,
    /// `net.ipv4.ip_no_pmtu_disc`.
    pub ip_no_pmtu_disc: u8,
    /// `net.ipv4.tcp_fin_timeout` (seconds).
    pub tcp_fin_timeout: u16,
    /// `net.ipv4.icmp_ratelimit` (milliseconds).
    pub icmp_ratelimit: u16,
    /// `net.ipv4.icmp_ratemask`.
    pub icmp_ratemask: u32,
    /// Vendor MAC prefixes typical of machines of this family on a LAN.
    pub mac_ouis: &'static [[u8; 3]],
}

impl OsFamily {
    /// The namespaced sysctls applied to the decky's base container, in a stable order.
    pub fn sysctls(&self) -> Vec<(&'static str, String)> {
        vec![
            ("net.ipv4.ip_default_ttl", self.ttl.to_string()),
            ("net.ipv4.tcp_syn_retries", self.tcp_syn_retries.to_string()),
            ("net.ipv4.tcp_timestamps", self.tcp_timestamps.to_string()),
            (
                "net.ipv4.tcp_window_scaling",
                self.tcp_window_scaling.to_string(),
            ),
            ("net.ipv4.tcp_sack", self.tcp_sack.to_string()),
            ("net.ipv4.tcp_ecn", self.tcp_ecn.to_string()),
            ("net.ipv4.ip_no_pmtu_disc", self.ip_no_pmtu_disc.to_string()),
            ("net.ipv4.tcp_fin_timeout", self.tcp_fin_timeout.to_string()),
            ("net.ipv4.icmp_ratelimit", self.icmp_ratelimit.to_string()),
            ("net.ipv4.icmp_ratemask", self.icmp_ratemask.to_string()),
        ]
    }
}

/// The five families. TTLs follow the reference (64 / 128 / 64 / 255 / 255); the other
/// values are those of the real stacks' defaults.
pub static OS_FAMILIES: &[OsFamily] = &[
    OsFamily {
        slug: "linux",
        display: "Linux 4.x-6.x",
        ttl: 64,
        tcp_syn_retries: 6,
        tcp_timestamps: 1,
        tcp_window_scaling: 1,
        tcp_sack: 1,
        tcp_ecn: 2,
        ip_no_pmtu_disc: 0,
        tcp_fin_timeout: 60,
        icmp_ratelimit: 1000,
        icmp_ratemask: 6168,
        // Supermicro, Dell, HPE, Intel.
        mac_ouis: &[
            [0x0c, 0xc4, 0x7a],
            [0x14, 0x18, 0x77],
            [0x94, 0x40, 0xc9],
            [0x3c, 0xfd, 0xfe],
        ],
    },
    OsFamily {
        slug: "windows",
        display: "Microsoft Windows 10/11/Server",
        ttl: 128,
        tcp_syn_retries: 2,
        tcp_timestamps: 0,
        tcp_window_scaling: 1,
        tcp_sack: 1,
        tcp_ecn: 0,
        ip_no_pmtu_disc: 0,
        tcp_fin_timeout: 30,
        icmp_ratelimit: 0,
        icmp_ratemask: 0,
        // Dell, Lenovo, HP, Microsoft Surface.
        mac_ouis: &[
            [0xd4, 0x81, 0xd7],
            [0x54, 0xe1, 0xad],
            [0x3c, 0x52, 0x82],
            [0xc4, 0x9d, 0xed],
        ],
    },
    OsFamily {
        slug: "bsd",
        display: "FreeBSD / OpenBSD",
        ttl: 64,
        tcp_syn_retries: 5,
        tcp_timestamps: 1,
        tcp_window_scaling: 1,
        tcp_sack: 1,
        tcp_ecn: 0,
        ip_no_pmtu_disc: 0,
        tcp_fin_timeout: 60,
        icmp_ratelimit: 200,
        icmp_ratemask: 6168,
        // Supermicro, PC Engines, Netgate.
        mac_ouis: &[[0x0c, 0xc4, 0x7a], [0x00, 0x0d, 0xb9], [0x00, 0x08, 0xa2]],
    },
    OsFamily {
        slug: "embedded",
        display: "Embedded device (printer, camera, PLC)",
        ttl: 255,
        tcp_syn_retries: 5,
        tcp_timestamps: 0,
        tcp_window_scaling: 0,
        tcp_sack: 0,
        tcp_ecn: 0,
        ip_no_pmtu_disc: 1,
        tcp_fin_timeout: 60,
        icmp_ratelimit: 0,
        icmp_ratemask: 0,
        // HP printers, Brother, Axis, Siemens.
        mac_ouis: &[
            [0x00, 0x1e, 0x0b],
            [0x00, 0x80, 0x77],
            [0x00, 0x40, 0x8c],
            [0x00, 0x1b, 0x1b],
        ],
    },
    OsFamily {
        slug: "cisco",
        display: "Cisco IOS",
        ttl: 255,
        tcp_syn_retries: 2,
        tcp_timestamps: 0,
        tcp_window_scaling: 0,
        tcp_sack: 0,
        tcp_ecn: 0,
        ip_no_pmtu_disc: 1,
        tcp_fin_timeout: 15,
        icmp_ratelimit: 500,
        icmp_ratemask: 6168,
        // Cisco Systems.
        mac_ouis: &[[0x00, 0x1a, 0xa1], [0x58, 0x97, 0xbd], [0x70, 0x10, 0x5c]],
    },
];

/// Looks up a family by slug. Unlike the reference, an unknown slug is an error, not `linux`.
///
/// # Errors
/// [`Error::Unknown`] listing every family.
pub fn os_family(slug: &str) -> Result<&'static OsFamily, Error> {
    OS_FAMILIES
        .iter()
        .find(|f| f.slug == slug)
        .ok_or_else(|| Error::Unknown {
            what: "OS family",
            name: slug.to_owned(),
            known: OS_FAMILIES
                .iter()
                .map(|f| f.slug)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_ttls() {
        let ttls: Vec<_> = OS_FAMILIES.iter().map(|f| (f.slug, f.ttl)).collect();
        assert_eq!(
            ttls,
            [
                ("linux", 64),
                ("windows", 128),
                ("bsd", 64),
                ("embedded", 255),
                ("cisco", 255)
            ]
        );
        assert!(
            os_family("solaris")
                .unwrap_err()
                .to_string()
                .contains("linux")
        );
        let sysctls = os_family("windows").unwrap().sysctls();
        assert_eq!(sysctls.len(), 10);
        assert!(sysctls.contains(&("net.ipv4.tcp_timestamps", "0".to_string())));
    }
}
