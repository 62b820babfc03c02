//! The one swarm deploy path (SW-27): shard check, per-host address pools (SW-18),
//! parallel dispatch, and partial-success bookkeeping from what actually runs.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use decnet_core::net::{NetInfo, allocate_ips};
use decnet_core::{DeckyConfig, DecnetConfig, HostUuid, Mode};
use decnet_store::{
    ErrorUpdate, FleetState, HostStatus, ShardFilter, ShardUpsert, SwarmHost, SwarmHostPatch,
};

use super::Controller;
use crate::client::AgentClient;
use crate::proto::{
    DeployRequest, DeployResponse, DeployStatus, DispatchResponse, HostResult, ShardResult,
};
use crate::serve::ApiError;
use crate::{Error, Result};

/// Gives every decky without a `host_uuid` one of `hosts`, round-robin in decky order.
/// Deckies that already name a host keep it.
///
/// # Errors
/// [`Error::Invalid`] when there is no host.
pub fn shard_round_robin(config: &mut DecnetConfig, hosts: &[HostUuid]) -> Result<()> {
    if hosts.is_empty() {
        return Err(Error::invalid(
            "no enrolled or active swarm workers: enroll one with `decnet swarm enroll`",
        ));
    }
    let mut next = 0usize;
    for decky in &mut config.deckies {
        if decky.host_uuid.is_none() {
            decky.host_uuid = hosts.get(next % hosts.len()).cloned();
            next += 1;
        }
    }
    Ok(())
}

/// Chooses decky addresses so that workers sharing a subnet never get the same one
/// (SW-18). For each subnet that some worker in `buckets` reports (`lans`), the pool
/// excludes every reporting worker's own address and gateway and every address used by
/// deckies of workers outside this deploy (`in_use`). Within the pool each decky keeps,
/// in order of preference, its current shard address (`current`), its planned address,
/// or gets the next free one. Workers whose LAN is unknown keep the planned addresses.
///
/// # Errors
/// [`Error::Core`] when a subnet has too few free addresses.
pub fn assign_ips(
    buckets: &mut BTreeMap<HostUuid, Vec<DeckyConfig>>,
    lans: &HashMap<HostUuid, NetInfo>,
    in_use: &[Ipv4Addr],
    current: &HashMap<(HostUuid, String), Ipv4Addr>,
) -> Result<()> {
    let mut groups: BTreeMap<ipnet::Ipv4Net, Vec<HostUuid>> = BTreeMap::new();
    for host in buckets.keys() {
        if let Some(lan) = lans.get(host) {
            groups
                .entry(lan.subnet.trunc())
                .or_default()
                .push(host.clone());
        }
    }
    for (subnet, members) in groups {
        let mut taken: BTreeSet<Ipv4Addr> = in_use
            .iter()
            .copied()
            .filter(|ip| subnet.contains(ip))
            .collect();
        for lan in lans.values().filter(|l| l.subnet.trunc() == subnet) {
            taken.insert(lan.host_ip);
            taken.insert(lan.gateway);
        }
        let mut chosen: BTreeMap<(HostUuid, String), Ipv4Addr> = BTreeMap::new();
        let usable = |ip: &Ipv4Addr, taken: &BTreeSet<Ipv4Addr>| {
            subnet.contains(ip)
                && *ip != subnet.network()
                && *ip != subnet.broadcast()
                && !taken.contains(ip)
        };
        // Pass 1: addresses deckies already have on this worker.
        for host in &members {
            for d in buckets.get(host).into_iter().flatten() {
                let key = (host.clone(), d.name.to_string());
                if let Some(ip) = current.get(&key)
                    && usable(ip, &taken)
                {
                    taken.insert(*ip);
                    chosen.insert(key, *ip);
                }
            }
        }
        // Pass 2: planned addresses.
        for host in &members {
            for d in buckets.get(host).into_iter().flatten() {
                let key = (host.clone(), d.name.to_string());
                if !chosen.contains_key(&key) && usable(&d.ip, &taken) {
                    taken.insert(d.ip);
                    chosen.insert(key, d.ip);
                }
            }
        }
        // Pass 3: fresh addresses for the rest.
        let missing: Vec<(HostUuid, String)> = members
            .iter()
            .flat_map(|h| {
                buckets
                    .get(h)
                    .into_iter()
                    .flatten()
                    .map(|d| (h.clone(), d.name.to_string()))
            })
            .filter(|k| !chosen.contains_key(k))
            .collect();
        if !missing.is_empty() {
            let fresh = allocate_ips(subnet, None, None, missing.len(), None, &taken)?;
            chosen.extend(missing.into_iter().zip(fresh));
        }
        for host in &members {
            for d in buckets.get_mut(host).into_iter().flatten() {
                if let Some(ip) = chosen.get(&(host.clone(), d.name.to_string())) {
                    d.ip = *ip;
                }
            }
        }
    }
    Ok(())
}

/// `POST /swarm/deploy`: everything is checked before anything is sent; then every host
/// is dispatched in parallel.
pub async fn deploy(ctrl: &Controller, req: DeployRequest) -> Result<DispatchResponse, ApiError> {
    let DeployRequest {
        config,
        dry_run,
        no_cache,
    } = req;
    if config.mode != Mode::Swarm {
        return Err(ApiError::bad_request("mode must be 'swarm'"));
    }
    let mut buckets: BTreeMap<HostUuid, Vec<DeckyConfig>> = BTreeMap::new();
    for d in &config.deckies {
        let Some(host) = &d.host_uuid else {
            return Err(ApiError::bad_request(format!(
                "decky '{}' has no host_uuid: shard the config before dispatch",
                d.name
            )));
        };
        buckets.entry(host.clone()).or_default().push(d.clone());
    }
    let mut hosts: BTreeMap<HostUuid, SwarmHost> = BTreeMap::new();
    for uuid in buckets.keys() {
        let host = ctrl
            .repo
            .get_swarm_host(uuid)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .ok_or_else(|| ApiError::not_found(format!("unknown host_uuid: {uuid}")))?;
        if matches!(
            host.status,
            HostStatus::Decommissioning | HostStatus::Decommissioned
        ) {
            return Err(ApiError::conflict(format!(
                "host {} is being decommissioned",
                host.name
            )));
        }
        if host.client_cert_fingerprint.is_none() {
            return Err(ApiError::conflict(format!(
                "host {} has not completed enrollment (run `decnet agent enroll` on it)",
                host.name
            )));
        }
        hosts.insert(uuid.clone(), host);
    }
    // LANs: from heartbeats, else asked of the agent now.
    let probes = hosts.values().map(|h| async move {
        if let Some(lan) = ctrl.lan_of(&h.uuid) {
            return (h.uuid.clone(), Some(lan));
        }
        let lan = match AgentClient::for_host(h, &ctrl.master) {
            Ok(c) => c.status().await.ok().and_then(|s| s.lan),
            Err(_) => None,
        };
        if let Some(l) = &lan {
            ctrl.set_lan(&h.uuid, Some(l.clone()));
        }
        (h.uuid.clone(), lan)
    });
    let lans: HashMap<HostUuid, NetInfo> = futures::future::join_all(probes)
        .await
        .into_iter()
        .filter_map(|(u, l)| l.map(|l| (u, l)))
        .collect();
    let shards = ctrl
        .repo
        .list_shards(&ShardFilter::all())
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let mut in_use = Vec::new();
    let mut current = HashMap::new();
    for s in shards {
        let Some(IpAddr::V4(ip)) = s.decky_ip else {
            continue;
        };
        if buckets.contains_key(&s.host_uuid) {
            current.insert((s.host_uuid, s.decky_name.to_string()), ip);
        } else {
            in_use.push(ip);
        }
    }
    assign_ips(&mut buckets, &lans, &in_use, &current)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let mut plans = Vec::new();
    for (uuid, shard) in buckets {
        let Some(host) = hosts.remove(&uuid) else {
            continue;
        };
        let mut cfg = config.clone();
        cfg.deckies = shard;
        cfg.ipvlan = cfg.ipvlan || host.use_ipvlan;
        if let Some(lan) = lans.get(&uuid) {
            cfg.interface.clone_from(&lan.interface);
            cfg.subnet = lan.subnet.trunc();
            cfg.gateway = lan.gateway;
        }
        cfg.validate()
            .map_err(|e| ApiError::unprocessable(e.to_string()))?;
        plans.push((host, cfg));
    }
    let calls = plans
        .into_iter()
        .map(|(host, cfg)| dispatch_host(ctrl, host, cfg, dry_run, no_cache));
    let results = futures::future::join_all(calls).await;
    Ok(DispatchResponse {
        ok: results.iter().all(|r| r.ok),
        results,
    })
}

fn shard_row(
    host: &HostUuid,
    d: &DeckyConfig,
    state: FleetState,
    error: ErrorUpdate,
) -> ShardUpsert {
    ShardUpsert {
        host_uuid: host.clone(),
        decky_name: d.name.clone(),
        services: d.services.clone(),
        decky_config: Some(d.clone()),
        decky_ip: Some(IpAddr::V4(d.ip)),
        state,
        last_error: error,
        last_seen: None,
    }
}

async fn dispatch_host(
    ctrl: &Controller,
    host: SwarmHost,
    mut cfg: DecnetConfig,
    dry_run: bool,
    no_cache: bool,
) -> HostResult {
    let mut result = HostResult {
        host_uuid: host.uuid.clone(),
        host_name: host.name.clone(),
        ok: false,
        detail: String::new(),
        deckies: Vec::new(),
    };
    let client = match AgentClient::for_host(&host, &ctrl.master) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(host = %host.name, error = %e, "No client for the host");
            result.detail = "host not reachable".into();
            return result;
        }
    };
    // The log listener accepts these deckies' lines from now on (their first ones can
    // arrive before the outcome below is written); withdrawn once it is.
    let assigning = (!dry_run).then(|| {
        ctrl.assigning.begin(
            &host.uuid,
            cfg.deckies
                .iter()
                .map(|d| (d.name.as_str(), d.services.as_slice())),
        )
    });
    let answer = client
        .deploy(&DeployRequest {
            config: cfg.clone(),
            dry_run,
            no_cache,
        })
        .await;
    if let Ok(resp) = &answer
        && let Some(r) = &resp.relocalized
    {
        // Record the addresses the worker actually uses.
        for m in &r.moved {
            if let Some(d) = cfg.deckies.iter_mut().find(|d| d.name.as_str() == m.decky) {
                d.ip = m.to;
            }
        }
    }
    if dry_run {
        match answer {
            Ok(resp) => {
                result.ok = resp.deckies.iter().all(|d| d.ok);
                result.detail = "dry run".into();
                result.deckies = resp
                    .deckies
                    .into_iter()
                    .map(|d| ShardResult {
                        name: d.name,
                        state: if d.ok { "pending" } else { "failed" }.into(),
                        error: d.error,
                    })
                    .collect();
            }
            Err(e) => {
                tracing::warn!(host = %host.name, error = %e, "Dry-run dispatch failed");
                result.detail = "deploy call failed".into();
            }
        }
        return result;
    }
    let mut generation = match &answer {
        Ok(resp) => resp.generation,
        Err(_) => 0,
    };
    let rows: Vec<ShardUpsert> = match answer {
        Ok(resp) if resp.status == DeployStatus::Deployed => {
            result.ok = true;
            result.detail = "deployed".into();
            cfg.deckies
                .iter()
                .map(|d| shard_row(&host.uuid, d, FleetState::Running, ErrorUpdate::Clear))
                .collect()
        }
        other => {
            let (detail, errors) = match &other {
                Ok(resp) => (
                    match resp.status {
                        DeployStatus::Partial => "deploy partially failed",
                        _ => "deploy failed",
                    },
                    error_map(resp),
                ),
                Err(e) => {
                    tracing::warn!(host = %host.name, error = %e, "Deploy call failed; probing what runs");
                    ("deploy call failed", HashMap::new())
                }
            };
            result.detail = detail.into();
            // What actually runs decides each decky (partial success).
            match client.status().await {
                Ok(status) => {
                    generation = generation.max(status.generation);
                    cfg.deckies
                        .iter()
                        .map(|d| {
                            let running = status
                                .runtime
                                .get(d.name.as_str())
                                .is_some_and(|r| r.running);
                            if running {
                                shard_row(&host.uuid, d, FleetState::Running, ErrorUpdate::Clear)
                            } else {
                                let error = errors
                                    .get(d.name.as_str())
                                    .cloned()
                                    .unwrap_or_else(|| "deploy failed on the worker".to_owned());
                                shard_row(
                                    &host.uuid,
                                    d,
                                    FleetState::Failed,
                                    ErrorUpdate::Set(error),
                                )
                            }
                        })
                        .collect()
                }
                Err(e) => {
                    tracing::warn!(host = %host.name, error = %e, "Status probe failed: the whole shard is failed");
                    result.detail = format!("{detail}; status probe failed");
                    cfg.deckies
                        .iter()
                        .map(|d| {
                            shard_row(
                                &host.uuid,
                                d,
                                FleetState::Failed,
                                ErrorUpdate::Set("worker unreachable during deploy".into()),
                            )
                        })
                        .collect()
                }
            }
        }
    };
    result.deckies = rows
        .iter()
        .map(|r| ShardResult {
            name: r.decky_name.to_string(),
            state: r.state.to_string(),
            error: match &r.last_error {
                ErrorUpdate::Set(e) => Some(e.clone()),
                _ => None,
            },
        })
        .collect();
    let guard = ctrl.lock_shards(&host.uuid).await;
    ctrl.note_generation(&host.uuid, generation);
    let written = ctrl.repo.replace_host_shards(&host.uuid, &rows).await;
    ctrl.snapshot_written(&host.uuid, None);
    drop(guard);
    drop(assigning);
    if let Err(e) = written {
        tracing::error!(host = %host.name, error = %e, "Could not record the deploy outcome");
        result.ok = false;
        result.detail = "deploy outcome not recorded".into();
    }
    if result.ok
        && let Err(e) = ctrl
            .repo
            .update_swarm_host(
                &host.uuid,
                &SwarmHostPatch {
                    status: Some(HostStatus::Active),
                    ..SwarmHostPatch::default()
                },
            )
            .await
    {
        tracing::warn!(host = %host.name, error = %e, "Could not mark the host active");
    }
    result
}

fn error_map(resp: &DeployResponse) -> HashMap<String, String> {
    resp.deckies
        .iter()
        .filter(|d| !d.ok)
        .map(|d| {
            (
                d.name.clone(),
                d.error
                    .clone()
                    .unwrap_or_else(|| "deploy failed on the worker".into()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lan(subnet: &str, gw: &str, host: &str) -> NetInfo {
        NetInfo {
            interface: "eth0".into(),
            subnet: subnet.parse().unwrap(),
            gateway: gw.parse().unwrap(),
            host_ip: host.parse().unwrap(),
        }
    }

    fn decky(name: &str, ip: &str) -> DeckyConfig {
        let v = serde_json::json!({
            "name": name, "ip": ip, "services": ["ssh"], "distro": "debian",
            "base_image": "debian:bookworm-slim", "hostname": name,
        });
        serde_json::from_value(v).unwrap()
    }

    fn h(s: &str) -> HostUuid {
        HostUuid::new(s).unwrap()
    }

    #[test]
    fn same_subnet_workers_never_share_addresses() {
        let mut buckets = BTreeMap::new();
        // The master planned overlapping addresses (e.g. two separate plans).
        buckets.insert(
            h("a"),
            vec![decky("a1", "10.0.0.2"), decky("a2", "10.0.0.3")],
        );
        buckets.insert(
            h("b"),
            vec![decky("b1", "10.0.0.2"), decky("b2", "10.0.0.5")],
        );
        let lans: HashMap<_, _> = [
            (h("a"), lan("10.0.0.0/24", "10.0.0.1", "10.0.0.3")),
            (h("b"), lan("10.0.0.0/24", "10.0.0.1", "10.0.0.4")),
        ]
        .into();
        assign_ips(&mut buckets, &lans, &[ip("10.0.0.6")], &HashMap::new()).unwrap();
        let all: Vec<Ipv4Addr> = buckets.values().flatten().map(|d| d.ip).collect();
        let set: BTreeSet<_> = all.iter().collect();
        assert_eq!(set.len(), all.len(), "{all:?}");
        for bad in ["10.0.0.1", "10.0.0.3", "10.0.0.4", "10.0.0.6"] {
            assert!(!all.contains(&ip(bad)), "{bad} assigned: {all:?}");
        }
        // Planned addresses that were free are kept.
        assert_eq!(buckets[&h("a")][0].ip, ip("10.0.0.2"));
        assert_eq!(buckets[&h("b")][1].ip, ip("10.0.0.5"));
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn existing_deckies_keep_their_addresses_and_other_subnets_are_independent() {
        let mut buckets = BTreeMap::new();
        buckets.insert(
            h("a"),
            vec![decky("new", "10.0.0.9"), decky("old", "10.0.0.9")],
        );
        buckets.insert(h("c"), vec![decky("c1", "10.0.0.9")]);
        let lans: HashMap<_, _> = [
            (h("a"), lan("10.0.0.0/24", "10.0.0.1", "10.0.0.2")),
            (h("c"), lan("192.168.5.0/24", "192.168.5.1", "192.168.5.2")),
        ]
        .into();
        let current: HashMap<_, _> = [((h("a"), "old".to_owned()), ip("10.0.0.40"))].into();
        assign_ips(&mut buckets, &lans, &[], &current).unwrap();
        assert_eq!(buckets[&h("a")][1].ip, ip("10.0.0.40"));
        assert_eq!(buckets[&h("a")][0].ip, ip("10.0.0.9"));
        // Worker c is on its own subnet: it gets an address there.
        assert_eq!(buckets[&h("c")][0].ip, ip("192.168.5.3"));
    }

    #[test]
    fn unknown_lan_keeps_the_plan_and_round_robin_skips_assigned() {
        let mut buckets = BTreeMap::new();
        buckets.insert(h("x"), vec![decky("x1", "10.0.0.9")]);
        assign_ips(&mut buckets, &HashMap::new(), &[], &HashMap::new()).unwrap();
        assert_eq!(buckets[&h("x")][0].ip, ip("10.0.0.9"));

        let mut v = serde_json::json!({
            "mode": "swarm", "interface": "eth0", "subnet": "10.0.0.0/24", "gateway": "10.0.0.1",
            "deckies": [
                serde_json::to_value(decky("d0", "10.0.0.10")).unwrap(),
                serde_json::to_value(decky("d1", "10.0.0.11")).unwrap(),
                serde_json::to_value(decky("d2", "10.0.0.12")).unwrap(),
            ],
        });
        v["deckies"][1]["host_uuid"] = "pinned".into();
        let mut config: DecnetConfig = serde_json::from_value(v).unwrap();
        shard_round_robin(&mut config, &[h("a"), h("b")]).unwrap();
        let owners: Vec<_> = config
            .deckies
            .iter()
            .map(|d| d.host_uuid.clone().unwrap())
            .collect();
        assert_eq!(owners, [h("a"), h("pinned"), h("b")]);
        assert!(shard_round_robin(&mut config, &[]).is_err());
    }
}
