//! Request and response bodies of the agent and controller APIs (format version 1; the
//! routes are the version boundary). Every type round-trips through JSON (tested).

use std::collections::BTreeMap;

use decnet_core::net::NetInfo;
use decnet_core::{DeckyConfig, DecnetConfig, HostUuid, Mode};
use decnet_store::Fingerprint;
use serde::{Deserialize, Serialize};

/// Default agent port.
pub const DEFAULT_AGENT_PORT: u16 = 8765;
/// Default operator port of the controller.
pub const DEFAULT_SWARMCTL_PORT: u16 = 8770;
/// Default worker-facing port of the controller.
pub const DEFAULT_WORKER_PORT: u16 = 8771;
/// Longest error text kept per decky.
pub const MAX_ERROR_LEN: usize = 512;

/// Truncates an error text to [`MAX_ERROR_LEN`] bytes on a character boundary.
pub fn bounded_error(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR_LEN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// `POST /deploy` on the agent and `POST /swarm/deploy` on the controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    /// The fleet (the agent gets its shard only).
    pub config: DecnetConfig,
    /// Plan and validate only.
    #[serde(default)]
    pub dry_run: bool,
    /// Rebuild images without cache.
    #[serde(default)]
    pub no_cache: bool,
}

/// How a deploy ended on one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployStatus {
    /// Every decky runs.
    Deployed,
    /// Some deckies run, some failed.
    Partial,
    /// No decky runs.
    Failed,
    /// Dry run: validated, nothing started.
    DryRun,
}

/// One decky's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeckyResult {
    /// Decky name.
    pub name: String,
    /// True when it runs (or, on a dry run, would be deployed).
    pub ok: bool,
    /// Why not, at most [`MAX_ERROR_LEN`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An address relocalization moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpMove {
    /// Decky.
    pub decky: String,
    /// Before.
    pub from: std::net::Ipv4Addr,
    /// After.
    pub to: std::net::Ipv4Addr,
}

/// What relocalization did before a swarm deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelocalizeReport {
    /// The agent's interface.
    pub interface: String,
    /// The agent's subnet.
    pub subnet: ipnet::Ipv4Net,
    /// Whether addresses were re-allocated.
    pub reallocated: bool,
    /// Each moved address.
    pub moved: Vec<IpMove>,
}

/// The agent's answer to `POST /deploy` (HTTP 200 whenever the deploy ran).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployResponse {
    /// Overall outcome.
    pub status: DeployStatus,
    /// Per decky, in config order.
    pub deckies: Vec<DeckyResult>,
    /// Relocalization, for swarm configs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relocalized: Option<RelocalizeReport>,
    /// The agent's state generation after this deploy (see [`AgentStatus::generation`]).
    #[serde(default)]
    pub generation: u64,
}

impl DeployResponse {
    /// Builds the response from per-decky results.
    pub fn from_results(deckies: Vec<DeckyResult>, dry_run: bool) -> Self {
        let ok = deckies.iter().filter(|d| d.ok).count();
        let status = if dry_run {
            DeployStatus::DryRun
        } else if ok == deckies.len() {
            DeployStatus::Deployed
        } else if ok == 0 {
            DeployStatus::Failed
        } else {
            DeployStatus::Partial
        };
        DeployResponse {
            status,
            deckies,
            relocalized: None,
            generation: 0,
        }
    }
}

/// `POST /teardown` on the agent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeardownRequest {
    /// One decky, or everything.
    #[serde(default)]
    pub decky_id: Option<String>,
}

/// The agent's answer to `POST /teardown`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeardownResponse {
    /// `torn_down`.
    pub status: String,
    /// The decky, when one was named.
    pub decky_id: Option<String>,
    /// The agent's state generation after the teardown.
    #[serde(default)]
    pub generation: u64,
}

/// `POST /mutate` on the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MutateRequest {
    /// The decky.
    pub decky_id: String,
    /// Its new service list.
    pub services: Vec<String>,
    /// Validate only.
    #[serde(default)]
    pub dry_run: bool,
}

/// The agent's answer to `POST /mutate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MutateResponse {
    /// `dry_run` or `mutated`.
    pub status: String,
    /// The decky.
    pub decky_id: String,
    /// Its services now (or after the change, for a dry run).
    pub services: Vec<String>,
}

/// One decky as observed by the agent's runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeckyRuntimeView {
    /// Every expected container runs.
    pub running: bool,
    /// Aggregate state (`running`, `degraded`, `failed`, `torn_down`).
    #[serde(default)]
    pub state: Option<String>,
    /// Container status per service.
    #[serde(default)]
    pub services: BTreeMap<String, String>,
}

/// `GET /status` on the agent (the reference's shape plus `lan` and `backend`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    /// Whether a fleet is deployed.
    pub deployed: bool,
    /// Its mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Compose export path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose_path: Option<String>,
    /// The deployed deckies.
    pub deckies: Vec<DeckyConfig>,
    /// Observed runtime, by decky (empty when the runtime could not be observed).
    #[serde(default)]
    pub runtime: BTreeMap<String, DeckyRuntimeView>,
    /// The agent's LAN (SW-18), when detection works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lan: Option<NetInfo>,
    /// The agent's state generation when this snapshot was taken: it starts at the
    /// agent's start time in microseconds and grows by one with every completed deploy,
    /// teardown or mutation, so the master can drop a heartbeat snapshot older than a
    /// result it already recorded.
    #[serde(default)]
    pub generation: u64,
}

impl AgentStatus {
    /// Nothing deployed.
    pub fn empty() -> Self {
        AgentStatus {
            deployed: false,
            mode: None,
            compose_path: None,
            deckies: Vec::new(),
            runtime: BTreeMap::new(),
            lan: None,
            generation: 0,
        }
    }
}

/// `POST /swarm/heartbeat`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sender's host id.
    pub host_uuid: HostUuid,
    /// Its version.
    #[serde(default)]
    pub agent_version: Option<String>,
    /// Its `/status`.
    pub status: AgentStatus,
}

/// What the worker keeps in its agent directory besides the PEM files
/// (`identity.json`, format version 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentMeta {
    /// Format version (1).
    pub version: u32,
    /// This worker's host id.
    pub host_uuid: HostUuid,
    /// This worker's name.
    pub name: String,
    /// The only client allowed on control routes (SW-1).
    pub master_fingerprint: Fingerprint,
    /// The controller's worker-facing server certificate (SW-7).
    pub controller_fingerprint: Fingerprint,
    /// Where heartbeats go (`https://master:8771`).
    pub controller_url: String,
}

/// A signed enrollment: everything but the worker's key, which never left the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolledBundle {
    /// Host id.
    pub host_uuid: HostUuid,
    /// Worker name.
    pub name: String,
    /// The worker certificate.
    pub certificate_pem: String,
    /// The CA.
    pub ca_pem: String,
    /// Fingerprint of the worker certificate.
    pub fingerprint: Fingerprint,
    /// The master client identity the agent must pin.
    pub master_fingerprint: Fingerprint,
    /// The controller's worker-facing certificate the agent must pin.
    pub controller_fingerprint: Fingerprint,
    /// The controller URL the master advertises, when it knows one.
    #[serde(default)]
    pub controller_url: Option<String>,
}

/// `POST /swarm/enroll` (operator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// Worker name.
    pub name: String,
    /// Address the master dials.
    pub address: String,
    /// Agent port.
    #[serde(default = "default_agent_port")]
    pub agent_port: u16,
    /// Extra SANs.
    #[serde(default)]
    pub sans: Vec<String>,
    /// Notes.
    #[serde(default)]
    pub notes: Option<String>,
    /// Deploy this worker's deckies with IPvlan.
    #[serde(default)]
    pub use_ipvlan: bool,
    /// Issue a new token for an existing host (certificate renewal).
    #[serde(default)]
    pub renew: bool,
    /// Offline enrollment: sign this request now and return the bundle, no token.
    #[serde(default)]
    pub csr_pem: Option<String>,
}

fn default_agent_port() -> u16 {
    DEFAULT_AGENT_PORT
}

/// The controller's answer to `POST /swarm/enroll` (201).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollResponse {
    /// Host id.
    pub host_uuid: HostUuid,
    /// Worker name.
    pub name: String,
    /// One-time token (online flow).
    #[serde(default)]
    pub token: Option<String>,
    /// Its expiry, RFC 3339.
    #[serde(default)]
    pub token_expires_at: Option<String>,
    /// The controller's worker-facing certificate, to pass to `decnet agent enroll`.
    pub controller_fingerprint: Fingerprint,
    /// The worker-facing URL, when the controller knows one.
    #[serde(default)]
    pub controller_url: Option<String>,
    /// The signed bundle (offline flow).
    #[serde(default)]
    pub bundle: Option<EnrolledBundle>,
}

/// `POST /swarm/enroll/csr` (worker-facing, token-authenticated).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsrRequest {
    /// The one-time token.
    pub token: String,
    /// The worker's certificate request.
    pub csr_pem: String,
}

/// A host as the operator API shows it (no master-side paths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    /// Host id.
    pub uuid: HostUuid,
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Agent port.
    pub agent_port: u16,
    /// Status.
    pub status: String,
    /// Last heartbeat, RFC 3339.
    pub last_heartbeat: Option<String>,
    /// Pinned worker certificate.
    pub client_cert_fingerprint: Option<Fingerprint>,
    /// Expiry of the issued worker certificate, RFC 3339.
    pub cert_not_after: Option<String>,
    /// Enrollment time, RFC 3339.
    pub enrolled_at: Option<String>,
    /// Notes.
    pub notes: Option<String>,
    /// IPvlan.
    pub use_ipvlan: bool,
    /// Agent version.
    pub agent_version: Option<String>,
    /// The LAN the worker last reported.
    pub lan: Option<NetInfo>,
}

/// One host's part of a swarm deploy or teardown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostResult {
    /// Host id.
    pub host_uuid: HostUuid,
    /// Name.
    pub host_name: String,
    /// Everything asked of this host was done.
    pub ok: bool,
    /// A short, fixed description (no raw error text).
    pub detail: String,
    /// Per-decky states recorded for this host.
    #[serde(default)]
    pub deckies: Vec<ShardResult>,
}

/// A decky's recorded state after a dispatch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardResult {
    /// Decky.
    pub name: String,
    /// Recorded state.
    pub state: String,
    /// Recorded error.
    #[serde(default)]
    pub error: Option<String>,
}

/// `POST /swarm/deploy` and `POST /swarm/teardown` answers: 200 when every host
/// succeeded, 207 when some did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DispatchResponse {
    /// Every host succeeded.
    pub ok: bool,
    /// Per host.
    pub results: Vec<HostResult>,
}

/// `POST /swarm/teardown`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmTeardownRequest {
    /// One host, or all.
    #[serde(default)]
    pub host_uuid: Option<HostUuid>,
    /// One decky, or all.
    #[serde(default)]
    pub decky_id: Option<String>,
}

/// One host in a `POST /swarm/check` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHealth {
    /// Host id.
    pub host_uuid: HostUuid,
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// The agent answered `/health`.
    pub reachable: bool,
    /// `ok` or a fixed failure phrase.
    pub detail: String,
}

/// `POST /swarm/check`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResponse {
    /// Per host.
    pub results: Vec<HostHealth>,
}

/// A shard as the operator API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardView {
    /// Host id.
    pub host_uuid: HostUuid,
    /// Host name (`<unknown>` when the host is gone).
    pub host_name: String,
    /// Host address.
    pub host_address: String,
    /// Host status.
    pub host_status: String,
    /// Decky.
    pub decky_name: String,
    /// Services.
    pub services: Vec<String>,
    /// Address.
    pub decky_ip: Option<std::net::IpAddr>,
    /// State.
    pub state: String,
    /// Last error.
    pub last_error: Option<String>,
    /// Last heartbeat that reported it, RFC 3339.
    pub last_seen: Option<String>,
}

/// `DELETE /swarm/hosts/{uuid}` (200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecommissionResponse {
    /// Host id.
    pub host_uuid: HostUuid,
    /// Name.
    pub name: String,
    /// The agent acknowledged the self-destruct (202).
    pub self_destruct_acknowledged: bool,
    /// A fingerprint was revoked.
    pub revoked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
        let text = serde_json::to_string(v).unwrap();
        let back: T = serde_json::from_str(&text).unwrap();
        assert_eq!(&back, v, "{text}");
    }

    #[test]
    fn bodies_round_trip() {
        let fp = Fingerprint::new(&"ab".repeat(32)).unwrap();
        round_trip(&AgentMeta {
            version: 1,
            host_uuid: HostUuid::new("h1").unwrap(),
            name: "w1".into(),
            master_fingerprint: fp.clone(),
            controller_fingerprint: fp.clone(),
            controller_url: "https://127.0.0.1:8771".into(),
        });
        round_trip(&DeployResponse::from_results(
            vec![
                DeckyResult {
                    name: "a".into(),
                    ok: true,
                    error: None,
                },
                DeckyResult {
                    name: "b".into(),
                    ok: false,
                    error: Some("x".into()),
                },
            ],
            false,
        ));
        round_trip(&AgentStatus::empty());
        round_trip(&TeardownRequest {
            decky_id: Some("d".into()),
        });
        round_trip(&SwarmTeardownRequest::default());
        round_trip(&DispatchResponse {
            ok: false,
            results: vec![HostResult {
                host_uuid: HostUuid::new("h").unwrap(),
                host_name: "w".into(),
                ok: false,
                detail: "deploy failed".into(),
                deckies: vec![ShardResult {
                    name: "d".into(),
                    state: "failed".into(),
                    error: None,
                }],
            }],
        });
        let status: AgentStatus =
            serde_json::from_str(r#"{"deployed":false,"deckies":[]}"#).unwrap();
        assert_eq!(status, AgentStatus::empty());
    }

    #[test]
    fn deploy_status_from_results() {
        let r = |ok| DeckyResult {
            name: "a".into(),
            ok,
            error: None,
        };
        assert_eq!(
            DeployResponse::from_results(vec![r(true)], false).status,
            DeployStatus::Deployed
        );
        assert_eq!(
            DeployResponse::from_results(vec![r(true), r(false)], false).status,
            DeployStatus::Partial
        );
        assert_eq!(
            DeployResponse::from_results(vec![r(false)], false).status,
            DeployStatus::Failed
        );
        assert_eq!(
            DeployResponse::from_results(vec![r(true)], true).status,
            DeployStatus::DryRun
        );
        assert_eq!(bounded_error(&"é".repeat(400)).len(), 512);
        assert!(serde_json::from_str::<TeardownRequest>(r#"{"x":1}"#).is_err());
    }
}
