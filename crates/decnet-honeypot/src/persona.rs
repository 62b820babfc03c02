//! Who this decky pretends to be: name, hostname, distro, kernel, per-decky seed and the
//! service's persona settings, from environment variables or a JSON file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use decnet_core::catalog::{self, Distro, OsFamily, ServiceSpec};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};

use crate::Error;

/// Environment variables every decky container gets (besides the persona keys).
pub mod env {
    /// Decky name: the syslog HOSTNAME of every event (attribution key).
    pub const NODE_NAME: &str = "NODE_NAME";
    /// Cosmetic hostname shown to attackers.
    pub const HOSTNAME: &str = "DECNET_HOSTNAME";
    /// Distro slug.
    pub const DISTRO: &str = "DECNET_DISTRO";
    /// OS family slug.
    pub const OS_FAMILY: &str = "DECNET_OS_FAMILY";
    /// 64 hex characters: the per-decky secret seed.
    pub const SEED: &str = "DECNET_SEED";
    /// Directory for transcripts, mail and other artifacts.
    pub const ARTIFACTS_DIR: &str = "DECNET_ARTIFACTS_DIR";
}

/// The kernel a decky reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelInfo {
    /// `uname -r`.
    pub release: String,
    /// `uname -v`.
    pub version: String,
}

/// The persona of one decky for one service.
#[derive(Debug, Clone)]
pub struct Persona {
    /// Decky name (syslog HOSTNAME).
    pub node_name: String,
    /// Hostname shown to attackers.
    pub hostname: String,
    /// Distro persona.
    pub distro: &'static Distro,
    /// OS family.
    pub os_family: &'static OsFamily,
    /// Kernel shown by `uname` (picked by the seed unless `kernel` is set).
    pub kernel: KernelInfo,
    /// Per-decky secret seed: host keys, salts and bait content derive from it.
    pub seed: [u8; 32],
    /// Whether the seed was given (false: derived from the name only, for development).
    pub seed_given: bool,
    /// The service's persona settings, by catalogue key.
    pub settings: BTreeMap<String, String>,
    /// Where artifacts go, when configured.
    pub artifacts_dir: Option<PathBuf>,
}

/// Keys of the JSON config that are not persona keys.
const RESERVED: [&str; 6] = [
    "node_name",
    "hostname",
    "distro",
    "nmap_os",
    "seed",
    "artifacts_dir",
];

impl Persona {
    /// Builds the persona of `service` from a lookup function (the environment in
    /// production).
    ///
    /// # Errors
    /// [`Error::Config`] naming the variable for an unknown distro or OS family, a bad seed,
    /// or a persona value of the wrong shape.
    pub fn from_lookup(
        service: &ServiceSpec,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
        let mut settings = BTreeMap::new();
        for key in service.persona {
            if let Some(v) = get(key.env) {
                settings.insert(key.key.to_owned(), v);
            }
        }
        Self::build(
            service,
            get(env::NODE_NAME),
            get(env::HOSTNAME),
            get(env::DISTRO),
            get(env::OS_FAMILY),
            get(env::SEED),
            get(env::ARTIFACTS_DIR),
            settings,
        )
    }

    /// Builds the persona from a JSON object of catalogue keys plus `node_name`,
    /// `hostname`, `distro`, `nmap_os`, `seed` and `artifacts_dir`.
    ///
    /// # Errors
    /// [`Error::Config`] for a key the service does not accept or a bad value.
    pub fn from_json(service: &ServiceSpec, json: &serde_json::Value) -> Result<Self, Error> {
        let obj = json
            .as_object()
            .ok_or_else(|| Error::Config("persona config must be a JSON object".into()))?;
        let text = |k: &str| obj.get(k).map(decnet_core::catalog::persona_env_value);
        let mut settings = BTreeMap::new();
        for (k, v) in obj {
            if RESERVED.contains(&k.as_str()) {
                continue;
            }
            catalog::check_persona_value(service, k, v)
                .map_err(|e| Error::Config(e.to_string()))?;
            settings.insert(k.clone(), catalog::persona_env_value(v));
        }
        Self::build(
            service,
            text("node_name"),
            text("hostname"),
            text("distro"),
            text("nmap_os"),
            text("seed"),
            text("artifacts_dir"),
            settings,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        service: &ServiceSpec,
        node_name: Option<String>,
        hostname: Option<String>,
        distro: Option<String>,
        os_family: Option<String>,
        seed: Option<String>,
        artifacts_dir: Option<String>,
        settings: BTreeMap<String, String>,
    ) -> Result<Self, Error> {
        for (k, v) in &settings {
            catalog::parse_persona_value(service, k, v)
                .map_err(|e| Error::Config(e.to_string()))?;
        }
        let node_name = node_name.unwrap_or_else(|| "decky".to_owned());
        let distro = catalog::distro(distro.as_deref().unwrap_or("debian"))
            .map_err(|e| Error::Config(format!("{}: {e}", env::DISTRO)))?;
        let os_family = catalog::os_family(os_family.as_deref().unwrap_or("linux"))
            .map_err(|e| Error::Config(format!("{}: {e}", env::OS_FAMILY)))?;
        let (seed, seed_given) = match seed {
            Some(hex_seed) => {
                let bytes = hex::decode(hex_seed.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        Error::Config(format!("{}: expected 64 hex characters", env::SEED))
                    })?;
                (bytes, true)
            }
            None => (
                Sha256::digest(format!("decnet-dev-seed:{node_name}")).into(),
                false,
            ),
        };
        let mut persona = Persona {
            hostname: hostname.unwrap_or_else(|| node_name.clone()),
            node_name,
            distro,
            os_family,
            kernel: KernelInfo {
                release: String::new(),
                version: String::new(),
            },
            seed,
            seed_given,
            settings,
            artifacts_dir: artifacts_dir.map(PathBuf::from),
        };
        let pick = usize::from(persona.derive("kernel")[0]) % distro.kernels.len().max(1);
        let chosen = distro
            .kernels
            .get(pick)
            .copied()
            .unwrap_or(distro.kernels[0]);
        persona.kernel = KernelInfo {
            // An explicit release keeps the distro's build string.
            release: persona.get("kernel").unwrap_or(chosen.release).to_owned(),
            version: chosen.version.to_owned(),
        };
        Ok(persona)
    }

    /// A persona setting.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(String::as_str)
    }

    /// 32 bytes derived from the seed for one purpose (`"ssh-host-ed25519"`, ...): stable
    /// for this decky, different across deckies and purposes.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(b"\x00");
        h.update(purpose.as_bytes());
        h.finalize().into()
    }

    /// A deterministic random generator for one purpose.
    pub fn rng(&self, purpose: &str) -> ChaCha20Rng {
        ChaCha20Rng::from_seed(self.derive(purpose))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn from_environment() {
        let http = catalog::service("http").unwrap();
        let seed = "ab".repeat(32);
        let p = Persona::from_lookup(
            http,
            lookup(&[
                ("NODE_NAME", "web-01"),
                ("DECNET_HOSTNAME", "SRV-ATLAS-12"),
                ("DECNET_DISTRO", "rocky9"),
                ("DECNET_SEED", &seed),
                ("SERVER_HEADER", "Apache/2.4.57"),
                ("SSH_VERSION", "ignored: not an http key"),
            ]),
        )
        .unwrap();
        assert_eq!(p.node_name, "web-01");
        assert_eq!(p.distro.slug, "rocky9");
        assert!(p.seed_given);
        assert_eq!(p.get("server_header"), Some("Apache/2.4.57"));
        assert_eq!(p.settings.len(), 1);
        assert!(
            p.distro
                .kernels
                .iter()
                .any(|k| k.release == p.kernel.release)
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let http = catalog::service("http").unwrap();
        let err = Persona::from_lookup(http, lookup(&[("DECNET_SEED", "xyz")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("DECNET_SEED"), "{err}");
        let err = Persona::from_lookup(http, lookup(&[("RESPONSE_CODE", "abc")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("response_code"), "{err}");
        let err = Persona::from_json(http, &serde_json::json!({"ssh_version": "x"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ssh_version"), "{err}");
    }

    #[test]
    fn derivations_differ_per_decky_and_purpose() {
        let ssh = catalog::service("ssh").unwrap();
        let a = Persona::from_lookup(ssh, lookup(&[("DECNET_SEED", &"01".repeat(32))])).unwrap();
        let b = Persona::from_lookup(ssh, lookup(&[("DECNET_SEED", &"02".repeat(32))])).unwrap();
        assert_ne!(a.derive("host-key"), b.derive("host-key"));
        assert_ne!(a.derive("host-key"), a.derive("salt"));
        assert_eq!(a.derive("host-key"), a.derive("host-key"));
    }
}
