//! The host configuration INI (`/etc/decnet/decnet.ini`), mapped onto `DECNET_*`
//! variables the way the reference does: real environment variables always win.

use std::collections::BTreeMap;

use crate::Error;
use crate::ini;

/// Role of this host, from `[decnet] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostRole {
    /// Runs the master (API, swarm controller, bus, reconciler).
    #[default]
    Master,
    /// Runs an enrolled worker agent.
    Agent,
}

/// Domain sections and the variables their keys set.
const DOMAIN_KEYS: &[(&str, &[(&str, &str)])] = &[
    (
        "api",
        &[("host", "DECNET_API_HOST"), ("port", "DECNET_API_PORT")],
    ),
    (
        "web",
        &[
            ("host", "DECNET_WEB_HOST"),
            ("port", "DECNET_WEB_PORT"),
            ("admin-user", "DECNET_ADMIN_USER"),
            ("cors-origins", "DECNET_CORS_ORIGINS"),
        ],
    ),
    (
        "database",
        &[
            ("type", "DECNET_DB_TYPE"),
            ("url", "DECNET_DB_URL"),
            ("host", "DECNET_DB_HOST"),
            ("port", "DECNET_DB_PORT"),
            ("name", "DECNET_DB_NAME"),
            ("user", "DECNET_DB_USER"),
        ],
    ),
    (
        "bus",
        &[
            ("enabled", "DECNET_BUS_ENABLED"),
            ("type", "DECNET_BUS_TYPE"),
            ("socket", "DECNET_BUS_SOCKET"),
            ("group", "DECNET_BUS_GROUP"),
            ("url", "DECNET_BUS_URL"),
        ],
    ),
    (
        "swarm",
        &[
            ("master-host", "DECNET_SWARM_MASTER_HOST"),
            ("syslog-port", "DECNET_SWARM_SYSLOG_PORT"),
            ("swarmctl-port", "DECNET_SWARMCTL_PORT"),
            ("swarmctl-host", "DECNET_SWARMCTL_HOST"),
        ],
    ),
    (
        "logging",
        &[
            ("system-log", "DECNET_SYSTEM_LOGS"),
            ("ingest-log", "DECNET_INGEST_LOG_FILE"),
            ("agent-log", "DECNET_AGENT_LOG_FILE"),
        ],
    ),
    (
        "ingester",
        &[
            ("batch-size", "DECNET_INGEST_BATCH_SIZE"),
            ("batch-max-wait-ms", "DECNET_INGEST_BATCH_MAX_WAIT_MS"),
        ],
    ),
    (
        "tracing",
        &[
            ("enabled", "DECNET_TRACING"),
            ("otel-endpoint", "DECNET_OTEL_ENDPOINT"),
        ],
    ),
];

/// The host configuration after merging the file with the real environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostConfig {
    /// Effective `DECNET_*` variables (real environment over file values).
    pub vars: BTreeMap<String, String>,
    /// Problems that did not stop loading (unknown keys, secrets in the file).
    pub warnings: Vec<String>,
}

fn kebab_to_env(key: &str) -> String {
    format!("DECNET_{}", key.replace('-', "_").to_uppercase())
}

fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    k.contains("password") || k.contains("secret") || k.contains("token")
}

impl HostConfig {
    /// Builds the effective configuration. `file_text` is the INI (none when the file is
    /// absent: not an error), `env` the real `DECNET_*` environment.
    ///
    /// # Errors
    /// [`Error::At`] for a malformed file or a `[decnet] mode` other than master|agent.
    pub fn load(
        file: &str,
        file_text: Option<&str>,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, Error> {
        let mut from_file: BTreeMap<String, String> = BTreeMap::new();
        let mut warnings = Vec::new();
        if let Some(text) = file_text {
            let parsed = ini::parse(file, text)?;
            let mode = match parsed.section("decnet").and_then(|s| s.get("mode")) {
                Some(entry) => {
                    let section = parsed
                        .section("decnet")
                        .ok_or_else(|| Error::Invalid("decnet".into()))?;
                    Some(
                        Self::parse_role(&entry.value)
                            .map_err(|e| e.at(parsed.location(section, Some(entry))))?,
                    )
                }
                None => None,
            };
            let own = match mode {
                Some(HostRole::Agent) => "agent",
                _ => "master",
            };
            for section in &parsed.sections {
                let domain = DOMAIN_KEYS.iter().find(|(name, _)| *name == section.name);
                for entry in &section.entries {
                    if looks_secret(&entry.key) {
                        warnings.push(format!(
                            "{}: secrets do not belong in the host config; '{}' ignored (use the environment)",
                            parsed.location(section, Some(entry)),
                            entry.key
                        ));
                        continue;
                    }
                    let var = if section.name == "decnet" || section.name == own {
                        Some(kebab_to_env(&entry.key))
                    } else if let Some((_, keys)) = domain {
                        match keys.iter().find(|(k, _)| *k == entry.key) {
                            Some((_, var)) => Some((*var).to_owned()),
                            None => {
                                warnings.push(format!(
                                    "{}: unknown key '{}' ignored",
                                    parsed.location(section, Some(entry)),
                                    entry.key
                                ));
                                None
                            }
                        }
                    } else {
                        None
                    };
                    if let Some(var) = var {
                        from_file.insert(var, entry.value.trim().to_owned());
                    }
                }
            }
        }
        let mut vars = from_file;
        for (k, v) in env {
            if k.starts_with("DECNET_") {
                vars.insert(k.clone(), v.clone());
            }
        }
        let config = HostConfig { vars, warnings };
        config.role()?;
        Ok(config)
    }

    fn parse_role(text: &str) -> Result<HostRole, Error> {
        match text.trim() {
            "master" => Ok(HostRole::Master),
            "agent" => Ok(HostRole::Agent),
            other => Err(Error::invalid("mode", other, "expected master or agent")),
        }
    }

    /// A variable's effective value.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.vars
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// This host's role (`DECNET_MODE`, default master).
    ///
    /// # Errors
    /// [`Error::InvalidValue`] when `DECNET_MODE` is neither master nor agent.
    pub fn role(&self) -> Result<HostRole, Error> {
        self.get("DECNET_MODE")
            .map_or(Ok(HostRole::Master), Self::parse_role)
    }

    /// A boolean variable (`true/1/yes/on`), `default` when unset.
    pub fn flag(&self, var: &str, default: bool) -> bool {
        self.get(var).map_or(default, |v| {
            matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn file_maps_to_variables_and_env_wins() {
        let text = "[decnet]\nmode = agent\nlog-directory = /srv/log\n[agent]\nmaster-host = 10.0.0.1\n\
                    [master]\nignored = yes\n[bus]\nsocket = /tmp/b.sock\nbogus = 1\n[web]\nadmin-password = x\n";
        let c = HostConfig::load(
            "decnet.ini",
            Some(text),
            &env(&[("DECNET_BUS_SOCKET", "/run/x.sock")]),
        )
        .unwrap();
        assert_eq!(c.role().unwrap(), HostRole::Agent);
        assert_eq!(c.get("DECNET_LOG_DIRECTORY"), Some("/srv/log"));
        assert_eq!(c.get("DECNET_MASTER_HOST"), Some("10.0.0.1"));
        assert_eq!(c.get("DECNET_IGNORED"), None);
        assert_eq!(c.get("DECNET_BUS_SOCKET"), Some("/run/x.sock"));
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(c.warnings.iter().any(|w| w.contains("'bogus'")));
        assert!(c.warnings.iter().any(|w| w.contains("admin-password")));
    }

    #[test]
    fn bad_mode_is_refused_with_its_line() {
        let err = HostConfig::load("h.ini", Some("[decnet]\nmode = worker\n"), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("h.ini:2: [decnet] key 'mode'") && err.contains("worker"),
            "{err}"
        );
        let err = HostConfig::load("h.ini", None, &env(&[("DECNET_MODE", "x")])).unwrap_err();
        assert!(err.to_string().contains("'x'"));
    }

    #[test]
    fn missing_file_is_fine() {
        let c = HostConfig::load("h.ini", None, &BTreeMap::new()).unwrap();
        assert_eq!(c.role().unwrap(), HostRole::Master);
        assert!(c.flag("DECNET_BUS_ENABLED", true));
    }
}
