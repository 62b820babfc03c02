//! Container specifications: the one place that decides what runs for a fleet. The live
//! deploy creates exactly these containers and the compose export renders exactly these,
//! so the two cannot drift.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use decnet_core::catalog::{self, persona_env_value};
use decnet_core::plan::{decky_mac, format_mac};
use decnet_core::{DeckyConfig, DecnetConfig};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Repository of the decky image.
pub const IMAGE_REPO: &str = "decnet/decky";
/// Name of the decky LAN network of the default project.
pub const NETWORK_NAME: &str = "decnet_lan";
/// The default project name, also the compose project on labels (the reference's).
pub const PROJECT: &str = "decnet";

/// A project: the namespace of everything one deployment creates in Docker (the
/// `com.docker.compose.project` label, the network name) and on the host (the hairpin
/// name). Always `decnet` for the real fleet; labs and tests use their own so they never
/// touch it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Project(String);

impl Project {
    /// Longest project name.
    pub const MAX_LEN: usize = 24;

    /// Validates a project name: lowercase letters, digits and `-`, starting with a
    /// letter, at most [`Project::MAX_LEN`] bytes.
    ///
    /// # Errors
    /// [`crate::Error::Invalid`] saying why.
    pub fn new(name: &str) -> Result<Self, crate::Error> {
        let ok = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Project(name.to_owned()))
        } else {
            Err(crate::Error::Invalid(format!(
                "project name '{name}': use 1-{} lowercase letters, digits and '-', starting with a letter",
                Self::MAX_LEN
            )))
        }
    }

    /// The project of a relocated installation (`--data-dir DIR`): `decnet-` and 8 hex
    /// digits of the directory's hash, so every data directory (a demo, a test) is its own
    /// fleet in Docker and on the host, and never touches the system one (`decnet`).
    pub fn for_home(home: &std::path::Path) -> Self {
        let digest = Sha256::digest(home.as_os_str().as_encoded_bytes());
        Project(format!("{PROJECT}-{}", hex::encode(&digest[..4])))
    }

    /// The project name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Name of the project's decky network (`decnet_lan` for the default project).
    pub fn network(&self) -> String {
        format!("{}_lan", self.0.replace('-', "_"))
    }
}

impl Default for Project {
    fn default() -> Self {
        Project(PROJECT.to_owned())
    }
}

impl std::fmt::Display for Project {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
/// User every decky process runs as (no account needed in a scratch image).
pub const DECKY_UID: u32 = 65532;
/// Mount point of the artifacts directory inside service containers.
pub const ARTIFACTS_MOUNT: &str = "/artifacts";
/// Default memory cap of one service container.
pub const DEFAULT_MEMORY_BYTES: i64 = 64 * 1024 * 1024;
/// Default process cap of one service container.
pub const DEFAULT_PIDS: i64 = 64;
/// Restart policy of every container.
pub const RESTART_POLICY: &str = "unless-stopped";
/// Log driver of every container: the collector reads the JSON files.
pub const LOG_DRIVER: &str = "json-file";
/// Size at which a container log file is rotated.
pub const LOG_MAX_SIZE: &str = "10m";
/// Rotated log files kept per container.
pub const LOG_MAX_FILE: &str = "5";
/// Scratch space of service containers (their root filesystem is read-only).
pub const SERVICE_TMPFS: (&str, &str) = ("/tmp", "rw,noexec,nosuid,nodev,size=4m,mode=1777");

/// The image tag this build deploys.
pub fn image_tag() -> String {
    format!("{IMAGE_REPO}:{}", env!("CARGO_PKG_VERSION"))
}

/// Label keys on every container and network DECNET creates.
pub mod labels {
    /// `true` on everything DECNET manages.
    pub const MANAGED: &str = "decnet.managed";
    /// Decky name.
    pub const DECKY: &str = "decnet.decky";
    /// Service slug (empty on the base container).
    pub const SERVICE: &str = "decnet.service";
    /// Host uuid (`local` in unihost mode).
    pub const HOST_UUID: &str = "decnet.host_uuid";
    /// Hash of the container's specification, to detect changes on redeploy.
    pub const SPEC_HASH: &str = "decnet.spec_hash";
    /// Compose project, for compatibility.
    pub const COMPOSE_PROJECT: &str = "com.docker.compose.project";
    /// Reference label: `true` on service containers.
    pub const FLEET_SERVICE: &str = "decnet.fleet.service";
    /// Reference label: decky name.
    pub const FLEET_DECKY: &str = "decnet.fleet.decky";
    /// Reference label: service slug.
    pub const FLEET_SERVICE_NAME: &str = "decnet.fleet.service_name";
}

/// Environment variables the decky binary reads.
pub mod env {
    /// Decky name.
    pub const NODE_NAME: &str = "NODE_NAME";
    /// Cosmetic hostname.
    pub const HOSTNAME: &str = "DECNET_HOSTNAME";
    /// Distro slug.
    pub const DISTRO: &str = "DECNET_DISTRO";
    /// OS family slug.
    pub const OS_FAMILY: &str = "DECNET_OS_FAMILY";
    /// Per-decky seed (hex).
    pub const SEED: &str = "DECNET_SEED";
    /// Artifacts directory.
    pub const ARTIFACTS_DIR: &str = "DECNET_ARTIFACTS_DIR";
}

/// The single naming function of service containers: `<decky>-<service>` with `_`
/// replaced by `-` (FL-5).
pub fn container_name(decky: &str, service: &str) -> String {
    format!("{decky}-{}", service.replace('_', "-"))
}

/// How a container is networked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Networking {
    /// Attached to the decky LAN with its own MAC and address.
    Lan {
        /// Network name.
        network: String,
        /// Address on the LAN.
        ip: Ipv4Addr,
        /// MAC address.
        mac: String,
    },
    /// Shares the network namespace of another container (the decky's base).
    Container(String),
}

/// What a container is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The decky's base: owns the address, runs `decnet-decky hold`.
    Base,
    /// One honeypot service served by `decnet-decky serve`.
    Service(String),
    /// A bring-your-own service image.
    Custom(String),
}

/// One container to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    /// Container name.
    pub name: String,
    /// Decky it belongs to.
    pub decky: String,
    /// Role.
    pub role: Role,
    /// Image reference.
    pub image: String,
    /// Command (arguments to the image's entrypoint).
    pub command: Vec<String>,
    /// Hostname (base container only; the others share its network, not its UTS).
    pub hostname: Option<String>,
    /// Networking.
    pub networking: Networking,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Namespaced sysctls (base container only).
    pub sysctls: BTreeMap<String, String>,
    /// Capabilities added after dropping `cap_drop`.
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// Read-only root filesystem.
    pub read_only: bool,
    /// `no-new-privileges`.
    pub no_new_privileges: bool,
    /// User (`uid:gid`), when not the image's.
    pub user: Option<String>,
    /// Memory cap in bytes.
    pub memory: Option<i64>,
    /// Process cap.
    pub pids: Option<i64>,
    /// Bind mounts: (host path, container path).
    pub volumes: Vec<(PathBuf, String)>,
    /// tmpfs mounts: (container path, mount options).
    pub tmpfs: Vec<(String, String)>,
}

impl ContainerSpec {
    /// A hash of everything that defines the container (the hash label excluded).
    pub fn spec_hash(&self) -> String {
        let mut copy = self.clone();
        copy.labels.remove(labels::SPEC_HASH);
        let json = serde_json::to_vec(&copy).unwrap_or_default();
        hex::encode(&Sha256::digest(&json)[..12])
    }

    /// The service slug (or custom name) of a service container.
    pub fn service(&self) -> Option<&str> {
        match &self.role {
            Role::Base => None,
            Role::Service(s) | Role::Custom(s) => Some(s),
        }
    }
}

/// Inputs of [`fleet_containers`] beyond the config.
#[derive(Debug, Clone)]
pub struct SpecOptions {
    /// Decky image reference.
    pub image: String,
    /// Host directory under which each service gets `<decky>/<service>/`.
    pub artifacts_root: PathBuf,
    /// Per-installation secret; decky seeds derive from it. `None` (dry runs before the
    /// first deploy) leaves `DECNET_SEED` out.
    pub instance_key: Option<[u8; 32]>,
    /// Memory cap per service container.
    pub memory: i64,
    /// Process cap per service container.
    pub pids: i64,
    /// Project the containers belong to.
    pub project: Project,
}

impl SpecOptions {
    /// Defaults (the `decnet` project) with the given image and artifacts root.
    pub fn new(image: String, artifacts_root: PathBuf, instance_key: Option<[u8; 32]>) -> Self {
        SpecOptions {
            image,
            artifacts_root,
            instance_key,
            memory: DEFAULT_MEMORY_BYTES,
            pids: DEFAULT_PIDS,
            project: Project::default(),
        }
    }

    /// The same options for another project.
    #[must_use]
    pub fn with_project(mut self, project: Project) -> Self {
        self.project = project;
        self
    }
}

/// The seed of one decky: stable for this installation, unrelated across installations.
pub fn decky_seed(instance_key: &[u8; 32], decky: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(instance_key);
    h.update(b"decnet-decky-seed\x00");
    h.update(decky.as_bytes());
    h.finalize().into()
}

fn base_labels(decky: &DeckyConfig, service: &str, project: &Project) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    l.insert(labels::MANAGED.to_owned(), "true".to_owned());
    l.insert(labels::DECKY.to_owned(), decky.name.to_string());
    l.insert(labels::SERVICE.to_owned(), service.to_owned());
    l.insert(labels::HOST_UUID.to_owned(), decky.host().to_string());
    l.insert(
        labels::COMPOSE_PROJECT.to_owned(),
        project.as_str().to_owned(),
    );
    if !service.is_empty() {
        l.insert(labels::FLEET_SERVICE.to_owned(), "true".to_owned());
        l.insert(labels::FLEET_DECKY.to_owned(), decky.name.to_string());
        l.insert(labels::FLEET_SERVICE_NAME.to_owned(), service.to_owned());
    }
    l
}

fn finish(mut spec: ContainerSpec) -> ContainerSpec {
    let hash = spec.spec_hash();
    spec.labels.insert(labels::SPEC_HASH.to_owned(), hash);
    spec
}

/// Every container of one decky: its base, then one per service in the decky's order.
pub fn decky_containers(
    config: &DecnetConfig,
    decky: &DeckyConfig,
    opts: &SpecOptions,
) -> Vec<ContainerSpec> {
    let name = decky.name.to_string();
    let user = Some(format!("{DECKY_UID}:{DECKY_UID}"));
    let mut sysctls: BTreeMap<String, String> = decky
        .os_family()
        .map(|f| f.sysctls())
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    // Lets the unprivileged service processes bind their real ports (22, 80, ...) in the
    // decky's own network namespace, so no container needs a capability to do it.
    sysctls.insert(
        "net.ipv4.ip_unprivileged_port_start".to_owned(),
        "0".to_owned(),
    );
    let mut out = vec![finish(ContainerSpec {
        name: name.clone(),
        decky: name.clone(),
        role: Role::Base,
        image: opts.image.clone(),
        command: vec!["hold".to_owned()],
        hostname: Some(decky.hostname.clone()),
        networking: Networking::Lan {
            network: opts.project.network(),
            ip: decky.ip,
            mac: format_mac(decky_mac(decky)),
        },
        env: BTreeMap::new(),
        labels: base_labels(decky, "", &opts.project),
        sysctls,
        cap_add: Vec::new(),
        cap_drop: vec!["ALL".to_owned()],
        read_only: true,
        no_new_privileges: true,
        user: user.clone(),
        memory: Some(16 * 1024 * 1024),
        pids: Some(8),
        volumes: Vec::new(),
        tmpfs: Vec::new(),
    })];
    let mut common_env = BTreeMap::new();
    common_env.insert(env::NODE_NAME.to_owned(), name.clone());
    common_env.insert(env::HOSTNAME.to_owned(), decky.hostname.clone());
    common_env.insert(env::DISTRO.to_owned(), decky.distro.clone());
    common_env.insert(env::OS_FAMILY.to_owned(), decky.nmap_os.clone());
    if let Some(key) = &opts.instance_key {
        common_env.insert(env::SEED.to_owned(), hex::encode(decky_seed(key, &name)));
    }
    for service in &decky.services {
        let cname = container_name(&name, service);
        let labels = base_labels(decky, service, &opts.project);
        if let Some(custom) = config.custom_service(service) {
            out.push(finish(ContainerSpec {
                name: cname,
                decky: name.clone(),
                role: Role::Custom(service.clone()),
                image: custom.binary.clone(),
                // Split on whitespace: the command is not run through a shell, which a
                // custom image may not even contain.
                command: custom
                    .exec
                    .as_deref()
                    .map(|e| e.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default(),
                hostname: None,
                networking: Networking::Container(name.clone()),
                env: common_env
                    .iter()
                    .filter(|(k, _)| k.as_str() != env::SEED)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                labels,
                sysctls: BTreeMap::new(),
                cap_add: Vec::new(),
                cap_drop: Vec::new(),
                read_only: false,
                no_new_privileges: true,
                user: None,
                memory: Some(opts.memory),
                pids: Some(opts.pids),
                volumes: Vec::new(),
                tmpfs: Vec::new(),
            }));
            continue;
        }
        let mut env = common_env.clone();
        env.insert(env::ARTIFACTS_DIR.to_owned(), ARTIFACTS_MOUNT.to_owned());
        if let (Ok(spec), Some(settings)) =
            (catalog::service(service), decky.service_config.get(service))
        {
            for (key, value) in settings {
                if let Some(k) = spec.persona_key(key) {
                    env.insert(k.env.to_owned(), persona_env_value(value));
                }
            }
        }
        out.push(finish(ContainerSpec {
            name: cname,
            decky: name.clone(),
            role: Role::Service(service.clone()),
            image: opts.image.clone(),
            command: vec!["serve".to_owned(), service.clone()],
            hostname: None,
            networking: Networking::Container(name.clone()),
            env,
            labels,
            sysctls: BTreeMap::new(),
            cap_add: vec!["NET_BIND_SERVICE".to_owned()],
            cap_drop: vec!["ALL".to_owned()],
            read_only: true,
            no_new_privileges: true,
            user: user.clone(),
            memory: Some(opts.memory),
            pids: Some(opts.pids),
            volumes: vec![(
                opts.artifacts_root.join(&name).join(service),
                ARTIFACTS_MOUNT.to_owned(),
            )],
            tmpfs: vec![(SERVICE_TMPFS.0.to_owned(), SERVICE_TMPFS.1.to_owned())],
        }));
    }
    out
}

/// Every container of the fleet, decky by decky.
pub fn fleet_containers(config: &DecnetConfig, opts: &SpecOptions) -> Vec<ContainerSpec> {
    config
        .deckies
        .iter()
        .flat_map(|d| decky_containers(config, d, opts))
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn config() -> DecnetConfig {
        serde_json::from_value(serde_json::json!({
            "mode": "unihost", "interface": "eth0", "subnet": "10.0.0.0/24", "gateway": "10.0.0.1",
            "deckies": [{
                "name": "web-01", "ip": "10.0.0.10", "services": ["http", "ssh", "tool"], "distro": "debian",
                "base_image": "debian:bookworm-slim", "hostname": "SRV-ATLAS-12", "nmap_os": "windows",
                "service_config": {"http": {"server_header": "Microsoft-IIS/10.0", "response_code": 404}}
            }],
            "custom_services": [{"name": "tool", "binary": "local/tool:1", "exec": "/tool --port 9", "ports": [9]}]
        }))
        .unwrap()
    }

    #[test]
    fn base_and_service_containers() {
        let cfg = config();
        let specs = fleet_containers(
            &cfg,
            &SpecOptions::new("decnet/decky:t".into(), "/a".into(), Some([7; 32])),
        );
        let names: Vec<_> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["web-01", "web-01-http", "web-01-ssh", "web-01-tool"]
        );
        let base = &specs[0];
        assert_eq!(base.sysctls["net.ipv4.ip_default_ttl"], "128");
        assert_eq!(base.sysctls["net.ipv4.ip_unprivileged_port_start"], "0");
        assert_eq!(base.command, ["hold"]);
        assert!(
            matches!(&base.networking, Networking::Lan { ip, .. } if ip.to_string() == "10.0.0.10")
        );
        let http = &specs[1];
        assert_eq!(http.networking, Networking::Container("web-01".into()));
        assert_eq!(http.env["SERVER_HEADER"], "Microsoft-IIS/10.0");
        assert_eq!(http.env["RESPONSE_CODE"], "404");
        assert_eq!(http.env["DECNET_SEED"].len(), 64);
        assert_eq!(http.labels[labels::SERVICE], "http");
        assert_eq!(http.labels[labels::FLEET_SERVICE_NAME], "http");
        assert_eq!(http.labels[labels::COMPOSE_PROJECT], "decnet");
        assert!(http.read_only && http.no_new_privileges);
        assert_eq!(http.cap_drop, ["ALL"]);
        assert_eq!(http.cap_add, ["NET_BIND_SERVICE"]);
        assert_eq!(http.volumes[0].0, PathBuf::from("/a/web-01/http"));
        // Persona settings of one service do not leak into another.
        assert!(!specs[2].env.contains_key("SERVER_HEADER"));
    }

    #[test]
    fn hashes_change_with_the_spec_only() {
        let cfg = config();
        let opts = SpecOptions::new("i:1".into(), "/a".into(), Some([7; 32]));
        let a = fleet_containers(&cfg, &opts);
        assert_eq!(a, fleet_containers(&cfg, &opts));
        let mut changed = cfg.clone();
        changed.deckies[0].service_config.clear();
        let b = fleet_containers(&changed, &opts);
        assert_eq!(
            a[0].labels[labels::SPEC_HASH],
            b[0].labels[labels::SPEC_HASH]
        );
        assert_ne!(
            a[1].labels[labels::SPEC_HASH],
            b[1].labels[labels::SPEC_HASH]
        );
    }

    #[test]
    fn seeds_depend_on_the_installation() {
        assert_ne!(decky_seed(&[1; 32], "a"), decky_seed(&[2; 32], "a"));
        assert_ne!(decky_seed(&[1; 32], "a"), decky_seed(&[1; 32], "b"));
        assert_eq!(container_name("d", "smtp_relay"), "d-smtp-relay");
    }
}
