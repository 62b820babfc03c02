//! The service catalogue: every honeypot service slug, its ports, role and persona keys.

use serde::Serialize;

use crate::Error;

/// Transport of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One listening port of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Port {
    /// Port number.
    pub number: u16,
    /// Transport.
    pub proto: Proto,
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.proto {
            Proto::Tcp => write!(f, "{}", self.number),
            Proto::Udp => write!(f, "{}/udp", self.number),
        }
    }
}

const fn tcp(number: u16) -> Port {
    Port {
        number,
        proto: Proto::Tcp,
    }
}

const fn udp(number: u16) -> Port {
    Port {
        number,
        proto: Proto::Udp,
    }
}

/// The type of a persona value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PersonaKind {
    /// Free text (one line).
    Text,
    /// A secret (never shown in listings).
    Secret,
    /// A multi-line text; INI carries it as `b64:<base64>` or with continuation lines.
    Textarea,
    /// An integer in `min..=max`.
    Int {
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A boolean (`true/1/yes/on`, `false/0/no/off`).
    Bool,
    /// One of a fixed list.
    Choice {
        /// Accepted values.
        values: &'static [&'static str],
    },
    /// Comma-separated `user:password` pairs.
    Credentials,
    /// Comma-separated list of words.
    List,
}

/// One persona setting a service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PersonaKey {
    /// Key as written in INI subsections and JSON configs.
    pub key: &'static str,
    /// Environment variable that carries it into the decky container.
    pub env: &'static str,
    /// Value type.
    pub kind: PersonaKind,
    /// One-line description.
    pub help: &'static str,
}

/// What a service is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Interactive remote login.
    RemoteShell,
    /// Web server or web application.
    Web,
    /// Mail transfer or mailbox access.
    Mail,
    /// Database or cache.
    Database,
    /// File transfer or sharing.
    FileTransfer,
    /// Directory or name service.
    Directory,
    /// Remote desktop.
    RemoteDesktop,
    /// Management or orchestration API.
    ManagementApi,
    /// Industrial or IoT protocol.
    Industrial,
    /// Voice over IP.
    Voip,
    /// Passive detector (never answers).
    Detector,
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ServiceSpec {
    /// Unique slug; also the syslog APP-NAME of its events.
    pub slug: &'static str,
    /// Ports the emulator binds.
    pub ports: &'static [Port],
    /// Protocol name as users know it.
    pub protocol: &'static str,
    /// What the service is for.
    pub role: Role,
    /// Accepted persona keys.
    pub persona: &'static [PersonaKey],
    /// True for host-wide singletons (only `sniffer`): never part of a decky.
    pub fleet_singleton: bool,
    /// True when this release's `decnet-decky` serves it. Planned services can be
    /// planned and exported, but a live deploy refuses them.
    pub emulated: bool,
}

impl ServiceSpec {
    /// Looks up a persona key.
    pub fn persona_key(&self, key: &str) -> Option<&'static PersonaKey> {
        self.persona.iter().find(|k| k.key == key)
    }

    /// Container-name suffix: the slug with `_` replaced by `-`.
    pub fn container_suffix(&self) -> String {
        self.slug.replace('_', "-")
    }
}

const fn key(
    key: &'static str,
    env: &'static str,
    kind: PersonaKind,
    help: &'static str,
) -> PersonaKey {
    PersonaKey {
        key,
        env,
        kind,
        help,
    }
}

const TEXT: PersonaKind = PersonaKind::Text;
const SECRET: PersonaKind = PersonaKind::Secret;
const CREDS: PersonaKind = PersonaKind::Credentials;
const BOOL: PersonaKind = PersonaKind::Bool;

const SHELL_KEYS: [PersonaKey; 6] = [
    key(
        "users",
        "USERS",
        CREDS,
        "accepted logins, e.g. root:toor,admin:admin123",
    ),
    key(
        "password",
        "SSH_ROOT_PASSWORD",
        SECRET,
        "accepted root password (reference key)",
    ),
    key("user", "SSH_USER", TEXT, "extra login user (reference key)"),
    key(
        "user_password",
        "SSH_USER_PASSWORD",
        SECRET,
        "password of the extra user (reference key)",
    ),
    key(
        "hostname",
        "SSH_HOSTNAME",
        TEXT,
        "hostname shown in the shell prompt",
    ),
    key(
        "kernel",
        "KERNEL_VERSION",
        TEXT,
        "kernel release shown by uname, e.g. 6.1.0-18-amd64",
    ),
];

const SSH_KEYS: [PersonaKey; 8] = [
    SHELL_KEYS[0],
    SHELL_KEYS[1],
    SHELL_KEYS[2],
    SHELL_KEYS[3],
    SHELL_KEYS[4],
    SHELL_KEYS[5],
    key(
        "ssh_version",
        "SSH_VERSION",
        TEXT,
        "identification string after SSH-2.0-, e.g. OpenSSH_9.2p1 Debian-2+deb12u3",
    ),
    key(
        "failure_delay_ms",
        "FAILURE_DELAY_MS",
        PersonaKind::Int {
            min: 0,
            max: 10_000,
        },
        "delay before a failed password is answered",
    ),
];

const TELNET_KEYS: [PersonaKey; 7] = [
    SHELL_KEYS[0],
    SHELL_KEYS[1],
    SHELL_KEYS[2],
    SHELL_KEYS[3],
    SHELL_KEYS[4],
    SHELL_KEYS[5],
    key(
        "banner",
        "TELNET_BANNER",
        TEXT,
        "text shown before the login prompt",
    ),
];

const FAKE_APPS: &[&str] = &["none", "wordpress", "phpmyadmin", "tomcat", "jenkins"];

const HTTP_KEYS: [PersonaKey; 6] = [
    key(
        "server_header",
        "SERVER_HEADER",
        TEXT,
        "value of the Server response header, e.g. nginx/1.22.1",
    ),
    key(
        "response_code",
        "RESPONSE_CODE",
        PersonaKind::Int { min: 100, max: 599 },
        "status of the default page",
    ),
    key(
        "fake_app",
        "FAKE_APP",
        PersonaKind::Choice { values: FAKE_APPS },
        "application skin served at /",
    ),
    key(
        "extra_headers",
        "EXTRA_HEADERS",
        PersonaKind::Textarea,
        "additional response headers, one 'Name: value' per line",
    ),
    key(
        "custom_body",
        "CUSTOM_BODY",
        PersonaKind::Textarea,
        "body of the default page",
    ),
    key(
        "http_versions",
        "HTTP_VERSIONS",
        PersonaKind::List,
        "protocol versions offered (h1, h2)",
    ),
];

const HTTPS_KEYS: [PersonaKey; 10] = [
    HTTP_KEYS[0],
    HTTP_KEYS[1],
    HTTP_KEYS[2],
    HTTP_KEYS[3],
    HTTP_KEYS[4],
    HTTP_KEYS[5],
    key(
        "tls_cn",
        "TLS_CN",
        TEXT,
        "subject CN of the self-signed certificate (default: the decky hostname)",
    ),
    key(
        "tls_cert",
        "TLS_CERT",
        PersonaKind::Textarea,
        "PEM certificate to present instead of a self-signed one",
    ),
    key(
        "tls_key",
        "TLS_KEY",
        PersonaKind::Textarea,
        "PEM private key of tls_cert",
    ),
    key(
        "h3",
        "H3",
        BOOL,
        "advertise HTTP/3 (not served by this release)",
    ),
];

const FTP_KEYS: [PersonaKey; 3] = [
    key(
        "ftp_banner",
        "FTP_BANNER",
        TEXT,
        "greeting after 220, e.g. (vsFTPd 3.0.3)",
    ),
    key(
        "ftp_server",
        "FTP_SERVER",
        PersonaKind::Choice {
            values: &["vsftpd", "proftpd", "pure-ftpd"],
        },
        "server product whose replies are imitated",
    ),
    key(
        "accept_logins",
        "ACCEPT_LOGINS",
        PersonaKind::Choice {
            values: &["random", "always", "never"],
        },
        "whether logins succeed",
    ),
];

const MTAS: &[&str] = &["postfix", "exim", "sendmail"];

const SMTP_KEYS: [PersonaKey; 3] = [
    key(
        "smtp_banner",
        "SMTP_BANNER",
        TEXT,
        "greeting after 220, e.g. mail.corp.local ESMTP Postfix (Debian/GNU)",
    ),
    key(
        "banner",
        "SMTP_BANNER",
        TEXT,
        "same as smtp_banner (reference key)",
    ),
    key(
        "mta",
        "SMTP_MTA",
        PersonaKind::Choice { values: MTAS },
        "mail server product whose replies are imitated",
    ),
];

const SMTP_RELAY_KEYS: [PersonaKey; 9] = [
    SMTP_KEYS[0],
    SMTP_KEYS[1],
    SMTP_KEYS[2],
    key(
        "upstream_host",
        "UPSTREAM_HOST",
        TEXT,
        "relay used for probe deliveries",
    ),
    key(
        "upstream_port",
        "UPSTREAM_PORT",
        PersonaKind::Int { min: 1, max: 65535 },
        "port of the upstream relay",
    ),
    key("upstream_user", "UPSTREAM_USER", TEXT, "upstream login"),
    key(
        "upstream_pass",
        "UPSTREAM_PASS",
        SECRET,
        "upstream password",
    ),
    key(
        "upstream_sender",
        "UPSTREAM_SENDER",
        TEXT,
        "envelope sender for probes",
    ),
    key(
        "probe_limit",
        "PROBE_LIMIT",
        PersonaKind::Int { min: 0, max: 100 },
        "messages really delivered per source IP",
    ),
];

const MAILBOX_KEYS: [PersonaKey; 2] = [
    key("users", "USERS", CREDS, "accepted logins"),
    key("banner", "MAIL_BANNER", TEXT, "greeting text"),
];

const MYSQL_KEYS: [PersonaKey; 2] = [
    key(
        "mysql_version",
        "MYSQL_VERSION",
        TEXT,
        "server version in the greeting, e.g. 8.0.36-0ubuntu0.22.04.1",
    ),
    key(
        "version",
        "MYSQL_VERSION",
        TEXT,
        "same as mysql_version (reference key)",
    ),
];

const POSTGRES_KEYS: [PersonaKey; 2] = [
    key(
        "pg_version",
        "PG_VERSION",
        TEXT,
        "server_version reported, e.g. 15.6",
    ),
    key(
        "databases",
        "PG_DATABASES",
        PersonaKind::List,
        "databases that exist (others are refused before authentication)",
    ),
];

const REDIS_KEYS: [PersonaKey; 4] = [
    key(
        "redis_version",
        "REDIS_VERSION",
        TEXT,
        "redis_version reported by INFO, e.g. 7.0.15",
    ),
    key(
        "version",
        "REDIS_VERSION",
        TEXT,
        "same as redis_version (reference key)",
    ),
    key(
        "os_string",
        "REDIS_OS",
        TEXT,
        "os line of INFO, e.g. Linux 6.1.0-18-amd64 x86_64",
    ),
    key(
        "requirepass",
        "REDIS_REQUIREPASS",
        SECRET,
        "password AUTH accepts (default: none, every command allowed)",
    ),
];

const VNC_KEYS: [PersonaKey; 1] = [key(
    "desktop_name",
    "VNC_DESKTOP",
    TEXT,
    "desktop name (shown only after authentication)",
)];

const RDP_KEYS: [PersonaKey; 1] = [key(
    "nla",
    "RDP_NLA",
    BOOL,
    "require network level authentication",
)];

const DNS_KEYS: [PersonaKey; 4] = [
    key("domain", "DNS_DOMAIN", TEXT, "authoritative zone"),
    key(
        "bind_version",
        "DNS_VERSION",
        TEXT,
        "answer to version.bind",
    ),
    key(
        "recursion",
        "DNS_RECURSION",
        BOOL,
        "answer recursive queries",
    ),
    key("nsid", "DNS_NSID", TEXT, "NSID option value"),
];

const fn svc(
    slug: &'static str,
    ports: &'static [Port],
    protocol: &'static str,
    role: Role,
    persona: &'static [PersonaKey],
    emulated: bool,
) -> ServiceSpec {
    ServiceSpec {
        slug,
        ports,
        protocol,
        role,
        persona,
        fleet_singleton: false,
        emulated,
    }
}

/// Every service, in display order. The slugs are those of the reference implementation,
/// so INI files written for it keep working.
pub static SERVICES: &[ServiceSpec] = &[
    svc(
        "ssh",
        &[tcp(22)],
        "SSH-2.0",
        Role::RemoteShell,
        &SSH_KEYS,
        true,
    ),
    svc(
        "telnet",
        &[tcp(23)],
        "Telnet",
        Role::RemoteShell,
        &TELNET_KEYS,
        true,
    ),
    svc("http", &[tcp(80)], "HTTP/1.1", Role::Web, &HTTP_KEYS, true),
    svc(
        "https",
        &[tcp(443)],
        "HTTP over TLS",
        Role::Web,
        &HTTPS_KEYS,
        true,
    ),
    svc(
        "ftp",
        &[tcp(21)],
        "FTP",
        Role::FileTransfer,
        &FTP_KEYS,
        true,
    ),
    svc(
        "smtp",
        &[tcp(25), tcp(587)],
        "ESMTP",
        Role::Mail,
        &SMTP_KEYS,
        true,
    ),
    svc(
        "smtp_relay",
        &[tcp(25), tcp(587)],
        "ESMTP open relay",
        Role::Mail,
        &SMTP_RELAY_KEYS,
        false,
    ),
    svc(
        "imap",
        &[tcp(143), tcp(993)],
        "IMAP4rev1",
        Role::Mail,
        &MAILBOX_KEYS,
        false,
    ),
    svc(
        "pop3",
        &[tcp(110), tcp(995)],
        "POP3",
        Role::Mail,
        &MAILBOX_KEYS,
        false,
    ),
    svc(
        "mysql",
        &[tcp(3306)],
        "MySQL protocol v10",
        Role::Database,
        &MYSQL_KEYS,
        true,
    ),
    svc(
        "postgres",
        &[tcp(5432)],
        "PostgreSQL v3",
        Role::Database,
        &POSTGRES_KEYS,
        true,
    ),
    svc("mssql", &[tcp(1433)], "TDS", Role::Database, &[], false),
    svc(
        "mongodb",
        &[tcp(27017)],
        "MongoDB wire",
        Role::Database,
        &[],
        false,
    ),
    svc(
        "redis",
        &[tcp(6379)],
        "RESP",
        Role::Database,
        &REDIS_KEYS,
        true,
    ),
    svc(
        "elasticsearch",
        &[tcp(9200)],
        "Elasticsearch REST",
        Role::Database,
        &[],
        false,
    ),
    svc(
        "docker_api",
        &[tcp(2375), tcp(2376)],
        "Docker Engine API",
        Role::ManagementApi,
        &[],
        false,
    ),
    svc(
        "k8s",
        &[tcp(6443), tcp(8080)],
        "Kubernetes API",
        Role::ManagementApi,
        &[],
        false,
    ),
    svc(
        "ldap",
        &[tcp(389), tcp(636)],
        "LDAPv3",
        Role::Directory,
        &[],
        false,
    ),
    svc(
        "smb",
        &[tcp(445), tcp(139)],
        "SMB2",
        Role::FileTransfer,
        &[],
        false,
    ),
    svc(
        "rdp",
        &[tcp(3389)],
        "RDP",
        Role::RemoteDesktop,
        &RDP_KEYS,
        false,
    ),
    svc(
        "vnc",
        &[tcp(5900)],
        "RFB 3.8",
        Role::RemoteDesktop,
        &VNC_KEYS,
        true,
    ),
    svc(
        "mqtt",
        &[tcp(1883)],
        "MQTT 3.1.1",
        Role::Industrial,
        &[],
        false,
    ),
    svc(
        "snmp",
        &[udp(161)],
        "SNMPv1/v2c",
        Role::ManagementApi,
        &[],
        false,
    ),
    svc(
        "sip",
        &[udp(5060), tcp(5060)],
        "SIP",
        Role::Voip,
        &[],
        false,
    ),
    svc("tftp", &[udp(69)], "TFTP", Role::FileTransfer, &[], false),
    svc(
        "llmnr",
        &[udp(5355), udp(5353)],
        "LLMNR/mDNS",
        Role::Detector,
        &[],
        false,
    ),
    svc(
        "dns",
        &[udp(53), tcp(53)],
        "DNS",
        Role::Directory,
        &DNS_KEYS,
        false,
    ),
    svc(
        "conpot",
        &[tcp(502), udp(161), tcp(80)],
        "Modbus/ICS",
        Role::Industrial,
        &[],
        false,
    ),
    ServiceSpec {
        slug: "sniffer",
        ports: &[],
        protocol: "passive TLS",
        role: Role::Detector,
        persona: &[],
        fleet_singleton: true,
        emulated: false,
    },
];

/// Looks up a service by slug.
///
/// # Errors
/// [`Error::Unknown`] listing every slug.
pub fn service(slug: &str) -> Result<&'static ServiceSpec, Error> {
    SERVICES
        .iter()
        .find(|s| s.slug == slug)
        .ok_or_else(|| Error::Unknown {
            what: "service",
            name: slug.to_owned(),
            known: SERVICES
                .iter()
                .map(|s| s.slug)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Services a decky may carry (every service but fleet singletons).
pub fn selectable() -> impl Iterator<Item = &'static ServiceSpec> {
    SERVICES.iter().filter(|s| !s.fleet_singleton)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn slugs_are_unique_and_lowercase() {
        let mut seen = HashSet::new();
        for s in SERVICES {
            assert!(seen.insert(s.slug), "duplicate {}", s.slug);
            assert!(
                s.slug
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            );
            let mut keys = HashSet::new();
            for k in s.persona {
                assert!(keys.insert(k.key), "{}: duplicate key {}", s.slug, k.key);
                assert!(
                    k.env
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                );
            }
        }
    }

    #[test]
    fn reference_catalogue_is_present() {
        // The 28 services of the 2026-04 reference plus `dns` from later versions.
        assert_eq!(SERVICES.len(), 29);
        let singletons: Vec<_> = SERVICES
            .iter()
            .filter(|s| s.fleet_singleton)
            .map(|s| s.slug)
            .collect();
        assert_eq!(singletons, ["sniffer"]);
        assert_eq!(selectable().count(), 28);
        let emulated: Vec<_> = SERVICES
            .iter()
            .filter(|s| s.emulated)
            .map(|s| s.slug)
            .collect();
        assert_eq!(
            emulated,
            [
                "ssh", "telnet", "http", "https", "ftp", "smtp", "mysql", "postgres", "redis",
                "vnc"
            ]
        );
    }

    #[test]
    fn unknown_service_lists_known_ones() {
        let err = service("smbx").unwrap_err().to_string();
        assert!(
            err.contains("'smbx'") && err.contains("ssh") && err.contains("sniffer"),
            "{err}"
        );
        assert_eq!(
            service("smtp_relay").unwrap().container_suffix(),
            "smtp-relay"
        );
    }
}
