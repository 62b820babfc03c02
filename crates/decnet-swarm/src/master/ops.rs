//! Controller operations behind the operator routes: enrollment and signing, host views,
//! health checks, teardown and decommission.

use std::time::Duration;

use base64::Engine as _;
use decnet_core::{DeckyName, HostUuid};
use decnet_store::{
    HostStatus, NewSwarmHost, RevokedFingerprint, ShardFilter, SwarmHost, SwarmHostPatch, Timestamp,
};

use super::Controller;
use crate::client::AgentClient;
use crate::names::{MAX_SANS, check_address, check_worker_name};
use crate::pki::{LeafSpec, Role, cert_info, pem_to_der, read_small, write_public};
use crate::proto::{
    DecommissionResponse, DispatchResponse, EnrollRequest, EnrollResponse, EnrolledBundle,
    HostHealth, HostResult, HostView, SwarmTeardownRequest, TeardownRequest,
};
use crate::serve::ApiError;

/// Longest operator note.
pub const MAX_NOTES_LEN: usize = 1024;
/// Self-destruct attempts during decommission.
pub const SELF_DESTRUCT_ATTEMPTS: u32 = 3;

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(&e)
}

fn rfc3339(t: Timestamp) -> Option<String> {
    t.to_rfc3339()
}

/// Checks an enrollment request (SW-2, SW-12).
fn check_enroll(req: &EnrollRequest) -> Result<(), ApiError> {
    check_worker_name(&req.name).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    check_address("address", &req.address).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    if req.sans.len() > MAX_SANS {
        return Err(ApiError::unprocessable(format!("at most {MAX_SANS} SANs")));
    }
    for san in &req.sans {
        check_address("SAN", san).map_err(|e| ApiError::unprocessable(e.to_string()))?;
    }
    if req.agent_port == 0 {
        return Err(ApiError::unprocessable("agent_port must be 1-65535"));
    }
    if req
        .notes
        .as_ref()
        .is_some_and(|n| n.len() > MAX_NOTES_LEN || n.chars().any(char::is_control))
    {
        return Err(ApiError::unprocessable(format!(
            "notes: at most {MAX_NOTES_LEN} characters, no control characters"
        )));
    }
    Ok(())
}

/// `POST /swarm/enroll`: records the host (or, with `renew`, finds it) and issues a
/// one-time token, or signs the offline CSR at once.
pub async fn enroll(ctrl: &Controller, req: EnrollRequest) -> Result<EnrollResponse, ApiError> {
    check_enroll(&req)?;
    let existing = ctrl
        .repo
        .get_swarm_host_by_name(&req.name)
        .await
        .map_err(internal)?;
    let host = match (existing, req.renew) {
        (Some(_), false) => {
            return Err(ApiError::conflict(format!(
                "worker '{}' is already enrolled (pass renew to re-issue its certificate)",
                req.name
            )));
        }
        (None, true) => {
            return Err(ApiError::not_found(format!(
                "no worker named '{}'",
                req.name
            )));
        }
        (Some(h), true) => h,
        (None, false) => {
            let dir = ctrl.worker_dir(&req.name);
            crate::pki::ensure_private_dir(&dir).map_err(internal)?;
            let sans = serde_json::to_string(&req.sans).map_err(internal)?;
            write_public(&dir.join("sans.json"), &sans).map_err(internal)?;
            ctrl.repo
                .create_swarm_host(&NewSwarmHost {
                    uuid: HostUuid::new(uuid::Uuid::new_v4().to_string()).map_err(internal)?,
                    name: req.name.clone(),
                    address: req.address.clone(),
                    agent_port: req.agent_port,
                    client_cert_fingerprint: None,
                    updater_cert_fingerprint: None,
                    cert_bundle_path: dir.display().to_string(),
                    enrolled_at: Timestamp::now(),
                    notes: req.notes.clone(),
                    use_ipvlan: req.use_ipvlan,
                })
                .await?
        }
    };
    let mut resp = EnrollResponse {
        host_uuid: host.uuid.clone(),
        name: host.name.clone(),
        token: None,
        token_expires_at: None,
        controller_fingerprint: ctrl.swarmctl.fingerprint.clone(),
        controller_url: ctrl.opts.advertise_url.clone(),
        bundle: None,
    };
    if let Some(csr) = &req.csr_pem {
        resp.bundle = Some(sign_for_host(ctrl, &host, csr).await?);
        return Ok(resp);
    }
    let bytes: [u8; 32] = rand::random();
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let now = Timestamp::now();
    let expires = now.plus(ctrl.opts.token_ttl);
    ctrl.repo
        .create_enrollment_token(&token, &host.uuid, now, expires)
        .await?;
    resp.token = Some(token);
    resp.token_expires_at = rfc3339(expires);
    tracing::info!(host = %host.name, renew = req.renew, "Enrollment token issued");
    Ok(resp)
}

/// Signs a worker's CSR for `host`: the names come from the host record, the role is
/// agent. The new fingerprint is pinned; a previous one is revoked (renewal).
pub async fn sign_for_host(
    ctrl: &Controller,
    host: &SwarmHost,
    csr_pem: &str,
) -> Result<EnrolledBundle, ApiError> {
    let dir = ctrl.worker_dir(&host.name);
    let mut sans: Vec<String> = read_small(&dir.join("sans.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    if !host.address.is_empty() {
        sans.insert(0, host.address.clone());
    }
    let spec = LeafSpec {
        name: host.name.clone(),
        role: Role::Agent,
        sans,
    };
    let issued = ctrl.ca().sign_csr(csr_pem, &spec).map_err(|e| match e {
        crate::Error::Invalid(m) => ApiError::unprocessable(m),
        other => ApiError::internal(&other),
    })?;
    crate::pki::ensure_private_dir(&dir).map_err(internal)?;
    write_public(&dir.join("worker.crt"), &issued.pem).map_err(internal)?;
    if let Some(old) = &host.client_cert_fingerprint
        && old != &issued.fingerprint
    {
        ctrl.repo
            .revoke_fingerprint(&RevokedFingerprint {
                fingerprint: old.clone(),
                host_uuid: Some(host.uuid.clone()),
                revoked_at: Timestamp::now(),
                reason: Some("certificate renewed".into()),
            })
            .await
            .map_err(internal)?;
    }
    ctrl.repo
        .update_swarm_host(
            &host.uuid,
            &SwarmHostPatch {
                client_cert_fingerprint: Some(issued.fingerprint.clone()),
                ..SwarmHostPatch::default()
            },
        )
        .await?;
    Ok(EnrolledBundle {
        host_uuid: host.uuid.clone(),
        name: host.name.clone(),
        certificate_pem: issued.pem,
        ca_pem: ctrl.ca().cert_pem().to_owned(),
        fingerprint: issued.fingerprint,
        master_fingerprint: ctrl.master.fingerprint.clone(),
        controller_fingerprint: ctrl.swarmctl.fingerprint.clone(),
        controller_url: ctrl.opts.advertise_url.clone(),
    })
}

/// The operator view of a host.
pub fn view(ctrl: &Controller, host: &SwarmHost) -> HostView {
    let cert_not_after = read_small(&ctrl.worker_dir(&host.name).join("worker.crt"))
        .ok()
        .and_then(|pem| pem_to_der(&pem).ok())
        .and_then(|der| cert_info(&der).ok())
        .and_then(|info| rfc3339(Timestamp::from_unix_seconds(info.not_after)));
    HostView {
        uuid: host.uuid.clone(),
        name: host.name.clone(),
        address: host.address.clone(),
        agent_port: host.agent_port,
        status: host.status.to_string(),
        last_heartbeat: host.last_heartbeat.and_then(rfc3339),
        client_cert_fingerprint: host.client_cert_fingerprint.clone(),
        cert_not_after,
        enrolled_at: rfc3339(host.enrolled_at),
        notes: host.notes.clone(),
        use_ipvlan: host.use_ipvlan,
        agent_version: host.agent_version.clone(),
        lan: ctrl.lan_of(&host.uuid),
    }
}

/// `POST /swarm/check`: probes every host's `/health` in parallel; success marks it
/// active, failure unreachable. Details are fixed phrases (SW-46).
pub async fn check(ctrl: &Controller) -> Result<Vec<HostHealth>, ApiError> {
    let hosts = ctrl.repo.list_swarm_hosts(None).await.map_err(internal)?;
    let probes = hosts
        .into_iter()
        .filter(|h| {
            !matches!(
                h.status,
                HostStatus::Decommissioning | HostStatus::Decommissioned
            )
        })
        .map(|h| async move {
            let reachable = match AgentClient::for_host(&h, &ctrl.master) {
                Ok(c) => c.health().await.is_ok(),
                Err(_) => false,
            };
            let patch = if reachable {
                SwarmHostPatch {
                    status: Some(HostStatus::Active),
                    last_heartbeat: Some(Timestamp::now()),
                    ..SwarmHostPatch::default()
                }
            } else {
                SwarmHostPatch {
                    status: Some(HostStatus::Unreachable),
                    ..SwarmHostPatch::default()
                }
            };
            if let Err(e) = ctrl.repo.update_swarm_host(&h.uuid, &patch).await {
                tracing::warn!(host = %h.name, error = %e, "Could not record a probe result");
            }
            HostHealth {
                host_uuid: h.uuid.clone(),
                name: h.name.clone(),
                address: h.address.clone(),
                reachable,
                detail: if reachable { "ok" } else { "probe failed" }.into(),
            }
        });
    Ok(futures::future::join_all(probes).await)
}

/// `POST /swarm/teardown`: one host or all, one decky or all, in parallel. On success a
/// whole-host teardown deletes the host's shards and a single-decky one deletes that
/// shard (SW-22).
pub async fn teardown(
    ctrl: &Controller,
    req: SwarmTeardownRequest,
) -> Result<DispatchResponse, ApiError> {
    let decky = req
        .decky_id
        .as_deref()
        .map(DeckyName::new)
        .transpose()
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    let hosts = match &req.host_uuid {
        Some(uuid) => vec![
            ctrl.repo
                .get_swarm_host(uuid)
                .await
                .map_err(internal)?
                .ok_or_else(|| ApiError::not_found(format!("unknown host_uuid: {uuid}")))?,
        ],
        None => ctrl
            .repo
            .list_swarm_hosts(None)
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|h| h.client_cert_fingerprint.is_some())
            .collect(),
    };
    let calls = hosts.into_iter().map(|h| {
        let decky = decky.clone();
        async move {
            let result = match AgentClient::for_host(&h, &ctrl.master) {
                Ok(c) => c
                    .teardown(&TeardownRequest {
                        decky_id: decky.as_ref().map(ToString::to_string),
                    })
                    .await
                    .map(|r| r.generation),
                Err(e) => Err(e),
            };
            let ok = match result {
                Ok(generation) => {
                    // Under the host's shard lock, like a dispatch result: a heartbeat
                    // batch being recorded finishes first, and any later snapshot taken
                    // before this teardown is stale, so no old row comes back.
                    let guard = ctrl.lock_shards(&h.uuid).await;
                    ctrl.note_generation(&h.uuid, generation);
                    ctrl.snapshot_written(&h.uuid, None);
                    let cleaned = match &decky {
                        Some(d) => ctrl.repo.delete_shard(&h.uuid, d).await.map(|_| ()),
                        None => ctrl.repo.delete_shards_for_host(&h.uuid).await.map(|_| ()),
                    };
                    drop(guard);
                    if let Err(e) = cleaned {
                        tracing::warn!(host = %h.name, error = %e, "Teardown done but shards not cleaned");
                    }
                    true
                }
                Err(crate::Error::Status { status: 404, .. }) => true,
                Err(e) => {
                    tracing::warn!(host = %h.name, error = %e, "Teardown failed");
                    false
                }
            };
            HostResult {
                host_uuid: h.uuid.clone(),
                host_name: h.name.clone(),
                ok,
                detail: if ok { "torn down" } else { "teardown failed" }.into(),
                deckies: Vec::new(),
            }
        }
    });
    let results = futures::future::join_all(calls).await;
    Ok(DispatchResponse {
        ok: results.iter().all(|r| r.ok),
        results,
    })
}

/// `DELETE /swarm/hosts/{uuid}` (SW-24): `decommissioning`; self-destruct with retries,
/// best effort; the certificate revoked *before* the rows go; rows deleted; master-side
/// files removed recursively.
pub async fn decommission(
    ctrl: &Controller,
    uuid: &HostUuid,
) -> Result<DecommissionResponse, ApiError> {
    let Some(host) = ctrl.repo.get_swarm_host(uuid).await.map_err(internal)? else {
        return Err(ApiError::not_found("host not found"));
    };
    ctrl.repo
        .update_swarm_host(
            uuid,
            &SwarmHostPatch {
                status: Some(HostStatus::Decommissioning),
                ..SwarmHostPatch::default()
            },
        )
        .await
        .map_err(internal)?;
    let mut acknowledged = false;
    if let Ok(client) = AgentClient::for_host(&host, &ctrl.master) {
        for attempt in 1..=SELF_DESTRUCT_ATTEMPTS {
            match client.self_destruct().await {
                Ok(()) => {
                    acknowledged = true;
                    break;
                }
                Err(e) => {
                    tracing::warn!(host = %host.name, attempt, error = %e, "Self-destruct not acknowledged");
                    if attempt < SELF_DESTRUCT_ATTEMPTS {
                        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                    }
                }
            }
        }
    }
    let mut revoked = false;
    for fp in [
        &host.client_cert_fingerprint,
        &host.updater_cert_fingerprint,
    ]
    .into_iter()
    .flatten()
    {
        ctrl.repo
            .revoke_fingerprint(&RevokedFingerprint {
                fingerprint: fp.clone(),
                host_uuid: Some(host.uuid.clone()),
                revoked_at: Timestamp::now(),
                reason: Some("decommissioned".into()),
            })
            .await
            .map_err(internal)?;
        revoked = true;
    }
    ctrl.repo
        .delete_shards_for_host(uuid)
        .await
        .map_err(internal)?;
    ctrl.repo.delete_swarm_host(uuid).await.map_err(internal)?;
    ctrl.set_lan(uuid, None);
    ctrl.snapshot_written(uuid, None);
    let dir = ctrl.worker_dir(&host.name);
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "Could not remove the worker's files");
        }
    }
    tracing::warn!(host = %host.name, acknowledged, "Host decommissioned");
    Ok(DecommissionResponse {
        host_uuid: host.uuid,
        name: host.name,
        self_destruct_acknowledged: acknowledged,
        revoked,
    })
}

/// Shards listing with host fields filled in.
pub async fn deckies(
    ctrl: &Controller,
    filter: &ShardFilter,
) -> Result<Vec<crate::proto::ShardView>, ApiError> {
    let shards = ctrl.repo.list_shards(filter).await.map_err(internal)?;
    let hosts: std::collections::HashMap<HostUuid, SwarmHost> = ctrl
        .repo
        .list_swarm_hosts(None)
        .await
        .map_err(internal)?
        .into_iter()
        .map(|h| (h.uuid.clone(), h))
        .collect();
    Ok(shards
        .into_iter()
        .map(|s| {
            let host = hosts.get(&s.host_uuid);
            crate::proto::ShardView {
                host_name: host.map_or_else(|| "<unknown>".to_owned(), |h| h.name.clone()),
                host_address: host.map(|h| h.address.clone()).unwrap_or_default(),
                host_status: host.map_or_else(|| "unknown".to_owned(), |h| h.status.to_string()),
                host_uuid: s.host_uuid,
                decky_name: s.decky_name.to_string(),
                services: s.services,
                decky_ip: s.decky_ip,
                state: s.state.to_string(),
                last_error: s.last_error,
                last_seen: s.last_seen.and_then(rfc3339),
            }
        })
        .collect())
}
