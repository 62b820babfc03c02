//! The compose export: the same containers the live deploy creates, as a compose file
//! (format 2.4, understood by both `docker-compose` v1 and `docker compose` v2).

use std::collections::BTreeMap;

use decnet_core::DecnetConfig;
use decnet_core::net::covering_range;
use serde::Serialize;

use crate::spec::{
    ContainerSpec, LOG_DRIVER, LOG_MAX_FILE, LOG_MAX_SIZE, NETWORK_NAME, Networking, RESTART_POLICY,
};

#[derive(Serialize)]
struct File<'a> {
    version: &'static str,
    services: BTreeMap<&'a str, Service<'a>>,
    networks: BTreeMap<&'a str, ExternalNetwork>,
}

#[derive(Serialize)]
struct ExternalNetwork {
    external: bool,
}

#[derive(Serialize)]
struct Logging {
    driver: &'static str,
    options: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct LanAttachment {
    ipv4_address: String,
}

#[derive(Serialize)]
struct Service<'a> {
    image: &'a str,
    container_name: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    command: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hostname: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac_address: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    networks: Option<BTreeMap<&'a str, LanAttachment>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_mode: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    depends_on: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    environment: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    sysctls: BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cap_drop: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cap_add: Vec<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    read_only: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    security_opt: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mem_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    volumes: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tmpfs: Vec<String>,
    logging: Logging,
    restart: &'static str,
    labels: BTreeMap<&'a str, &'a str>,
}

/// Renders `specs` (from [`crate::spec::fleet_containers`]) for `config`.
///
/// The decky network is declared external, as in the reference: `decnet deploy` creates
/// it; the header comment says how to create it by hand for `docker compose up`.
pub fn render(config: &DecnetConfig, specs: &[ContainerSpec], note: Option<&str>) -> String {
    let mut services = BTreeMap::new();
    // One fleet, one network: the name the specs carry (the project's).
    let network_name = specs
        .iter()
        .find_map(|s| match &s.networking {
            Networking::Lan { network, .. } => Some(network.as_str()),
            Networking::Container(_) => None,
        })
        .unwrap_or(NETWORK_NAME);
    for spec in specs {
        let (networks, network_mode, mac, depends_on) = match &spec.networking {
            Networking::Lan { ip, mac, .. } => (
                Some(BTreeMap::from([(
                    network_name,
                    LanAttachment {
                        ipv4_address: ip.to_string(),
                    },
                )])),
                None,
                Some(mac.as_str()),
                Vec::new(),
            ),
            Networking::Container(base) => (
                None,
                Some(format!("service:{base}")),
                None,
                vec![base.as_str()],
            ),
        };
        services.insert(
            spec.name.as_str(),
            Service {
                image: &spec.image,
                container_name: &spec.name,
                command: spec.command.iter().map(String::as_str).collect(),
                hostname: spec.hostname.as_deref(),
                mac_address: mac,
                networks,
                network_mode,
                depends_on,
                user: spec.user.as_deref(),
                environment: spec
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
                sysctls: spec
                    .sysctls
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
                cap_drop: spec.cap_drop.iter().map(String::as_str).collect(),
                cap_add: spec.cap_add.iter().map(String::as_str).collect(),
                read_only: spec.read_only,
                security_opt: if spec.no_new_privileges {
                    vec!["no-new-privileges:true"]
                } else {
                    Vec::new()
                },
                mem_limit: spec.memory,
                pids_limit: spec.pids,
                volumes: spec
                    .volumes
                    .iter()
                    .map(|(host, inside)| format!("{}:{inside}", host.display()))
                    .collect(),
                tmpfs: spec
                    .tmpfs
                    .iter()
                    .map(|(path, opts)| format!("{path}:{opts}"))
                    .collect(),
                logging: Logging {
                    driver: LOG_DRIVER,
                    options: BTreeMap::from([
                        ("max-size", LOG_MAX_SIZE),
                        ("max-file", LOG_MAX_FILE),
                    ]),
                },
                restart: RESTART_POLICY,
                labels: spec
                    .labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            },
        );
    }
    let file = File {
        version: "2.4",
        services,
        networks: BTreeMap::from([(network_name, ExternalNetwork { external: true })]),
    };
    let ips: Vec<_> = config.deckies.iter().map(|d| d.ip).collect();
    let range = covering_range(&ips).map_or_else(String::new, |r| format!(" --ip-range {r}"));
    let driver = if config.ipvlan {
        format!("ipvlan -o parent={} -o ipvlan_mode=l2", config.interface)
    } else {
        format!("macvlan -o parent={}", config.interface)
    };
    let mut out = String::from(
        "# DECNET fleet, exported by `decnet`; `decnet deploy` runs the same containers.\n",
    );
    out.push_str(&format!(
        "# The network is external: docker network create -d {driver} --subnet {} --gateway {}{range} {network_name}\n",
        config.subnet, config.gateway
    ));
    if let Some(note) = note {
        out.push_str(&format!("# {note}\n"));
    }
    match serde_norway::to_string(&file) {
        Ok(yaml) => out.push_str(&yaml),
        // Serializing plain maps and strings cannot fail; keep the file valid if it does.
        Err(e) => out.push_str(&format!("# rendering failed: {e}\n")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{SpecOptions, fleet_containers, tests::config};

    #[test]
    fn compose_snapshot() {
        let cfg = config();
        let specs = fleet_containers(
            &cfg,
            &SpecOptions::new(
                "decnet/decky:test".into(),
                "/var/lib/decnet/artifacts".into(),
                Some([7; 32]),
            ),
        );
        insta::assert_snapshot!(render(&cfg, &specs, None));
    }

    #[test]
    fn compose_parses_back_with_the_same_containers() {
        let cfg = config();
        let specs = fleet_containers(&cfg, &SpecOptions::new("i:1".into(), "/a".into(), None));
        let text = render(&cfg, &specs, Some("dry run"));
        let parsed: serde_json::Value = serde_norway::from_str(&text).unwrap();
        let services = parsed["services"].as_object().unwrap();
        assert_eq!(services.len(), specs.len());
        assert_eq!(
            parsed["services"]["web-01"]["networks"]["decnet_lan"]["ipv4_address"],
            "10.0.0.10"
        );
        assert_eq!(
            parsed["services"]["web-01-ssh"]["network_mode"],
            "service:web-01"
        );
        assert_eq!(parsed["services"]["web-01-tool"]["image"], "local/tool:1");
        assert!(
            parsed["services"]["web-01-ssh"]["environment"]
                .get("DECNET_SEED")
                .is_none()
        );
        assert!(text.contains("--ip-range 10.0.0.10/32"));
    }
}
