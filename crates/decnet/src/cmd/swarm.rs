//! `decnet swarm …` (operator commands against the controller's operator listener) and
//! the swarm path of `decnet deploy --mode swarm`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use decnet_core::HostUuid;
use decnet_core::plan::Plan;
use decnet_swarm::client::OperatorClient;
use decnet_swarm::master::shard_round_robin;
use decnet_swarm::pki::{Identity, Role, fingerprint_of_pem, read_small, write_public};
use decnet_swarm::proto::{
    CheckResponse, DEFAULT_SWARMCTL_PORT, DecommissionResponse, DeployRequest, DispatchResponse,
    EnrollRequest, EnrollResponse, HostView, ShardView, SwarmTeardownRequest,
};
use decnet_swarm::tls::{ServerPin, client_config};
use reqwest::{Method, StatusCode};

use super::swarmctl::{runtime, swarm_err};
use crate::cli::DeployArgs;
use crate::context::Ctx;
use crate::exit::{Status, invalid};
use crate::output;

/// Timeout of a swarm deploy call.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(900);

/// `decnet swarm`.
#[derive(Subcommand)]
pub enum SwarmCommand {
    /// Enroll a worker: record it and print a one-time token (or sign an offline CSR).
    Enroll(EnrollArgs),
    /// List enrolled workers.
    List(ListArgs),
    /// Probe every worker's agent now.
    Check(JsonArgs),
    /// List the deckies each worker runs.
    Deckies(DeckiesArgs),
    /// Tear down deckies on one worker or all.
    Teardown(TeardownArgs),
    /// Remove a worker: self-destruct it, revoke its certificate, forget it.
    Decommission(DecommissionArgs),
}

/// `--json`.
#[derive(Args)]
pub struct JsonArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `decnet swarm enroll`.
#[derive(Args)]
pub struct EnrollArgs {
    /// Worker name (lowercase letters, digits, '-', '.').
    #[arg(long)]
    pub name: String,
    /// Address the master dials (IP or DNS name).
    #[arg(long)]
    pub address: String,
    /// Extra certificate names or addresses.
    #[arg(long = "san", value_name = "NAME_OR_IP")]
    pub sans: Vec<String>,
    /// Agent port.
    #[arg(long, default_value_t = decnet_swarm::proto::DEFAULT_AGENT_PORT)]
    pub agent_port: u16,
    /// Notes.
    #[arg(long)]
    pub notes: Option<String>,
    /// Deploy this worker's deckies with IPvlan.
    #[arg(long)]
    pub ipvlan: bool,
    /// Re-issue the certificate of an enrolled worker (rotation).
    #[arg(long)]
    pub renew: bool,
    /// Offline: the worker's certificate request (from `decnet agent enroll --csr-out`).
    #[arg(long, value_name = "FILE", requires = "out_dir")]
    pub csr: Option<PathBuf>,
    /// Offline: write the signed bundle here (no private key is in it).
    #[arg(long, value_name = "DIR", requires = "csr")]
    pub out_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `decnet swarm list`.
#[derive(Args)]
pub struct ListArgs {
    /// Only hosts in this status.
    #[arg(long, value_parser = ["enrolled", "active", "unreachable", "decommissioning", "decommissioned"])]
    pub status: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `decnet swarm deckies`.
#[derive(Args)]
pub struct DeckiesArgs {
    /// Only this worker (name or uuid).
    #[arg(long)]
    pub host: Option<String>,
    /// Only deckies in this state.
    #[arg(long)]
    pub state: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `decnet swarm teardown`.
#[derive(Args)]
pub struct TeardownArgs {
    /// Only this worker (name or uuid).
    #[arg(long)]
    pub host: Option<String>,
    /// Only this decky.
    #[arg(long)]
    pub decky: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `decnet swarm decommission`.
#[derive(Args)]
pub struct DecommissionArgs {
    /// Worker name.
    #[arg(long, conflicts_with = "uuid", required_unless_present = "uuid")]
    pub name: Option<String>,
    /// Worker uuid.
    #[arg(long)]
    pub uuid: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The operator client: `DECNET_SWARMCTL_URL`, else `http://127.0.0.1:$DECNET_SWARMCTL_PORT`.
/// An https URL presents the operator identity from the master directory and pins the
/// controller certificate found there.
fn client(ctx: &Ctx) -> Result<OperatorClient> {
    let url = match ctx.host.get("DECNET_SWARMCTL_URL") {
        Some(u) => u.to_owned(),
        None => {
            let port = ctx
                .host
                .get("DECNET_SWARMCTL_PORT")
                .map(str::parse::<u16>)
                .transpose()
                .map_err(|_| invalid("DECNET_SWARMCTL_PORT: not a port"))?
                .unwrap_or(DEFAULT_SWARMCTL_PORT);
            format!("http://127.0.0.1:{port}")
        }
    };
    let tls = if url.starts_with("https://") {
        let dir = &ctx.settings.master_dir;
        let id = Identity::load(dir, "operator").map_err(swarm_err)?;
        let pin = fingerprint_of_pem(&read_small(&dir.join("swarmctl.crt")).map_err(swarm_err)?)
            .map_err(swarm_err)?;
        Some(
            client_config(
                Some(&id),
                Some(&id.ca_pem),
                ServerPin {
                    fingerprint: pin,
                    role: Role::Swarmctl,
                },
            )
            .map_err(swarm_err)?,
        )
    } else {
        None
    };
    OperatorClient::new(&url, tls).map_err(swarm_err)
}

async fn hosts(c: &OperatorClient, status: Option<&str>) -> Result<Vec<HostView>> {
    let path = match status {
        Some(s) => format!("/swarm/hosts?host_status={s}"),
        None => "/swarm/hosts".to_owned(),
    };
    Ok(c.call(Method::GET, &path, None, &[StatusCode::OK], None)
        .await
        .map_err(swarm_err)?
        .1)
}

async fn resolve_host(c: &OperatorClient, name_or_uuid: &str) -> Result<HostView> {
    hosts(c, None)
        .await?
        .into_iter()
        .find(|h| h.name == name_or_uuid || h.uuid.as_str() == name_or_uuid)
        .ok_or_else(|| invalid(format!("no worker named {name_or_uuid:?}")))
}

fn print_dispatch(resp: &DispatchResponse, json: bool) -> Result<Status> {
    if json {
        output::json(resp)?;
    } else {
        let mut t = output::table(&["HOST", "OK", "DETAIL", "DECKY", "STATE", "ERROR"]);
        for r in &resp.results {
            if r.deckies.is_empty() {
                t.add_row(vec![
                    r.host_name.clone(),
                    r.ok.to_string(),
                    r.detail.clone(),
                    String::new(),
                    String::new(),
                    String::new(),
                ]);
            }
            for d in &r.deckies {
                t.add_row(vec![
                    r.host_name.clone(),
                    r.ok.to_string(),
                    r.detail.clone(),
                    d.name.clone(),
                    d.state.clone(),
                    d.error.clone().unwrap_or_default(),
                ]);
            }
        }
        println!("{t}");
    }
    let ok = resp.results.iter().filter(|r| r.ok).count();
    if ok == resp.results.len() {
        Ok(Status::Ok)
    } else if ok > 0
        || resp
            .results
            .iter()
            .any(|r| r.deckies.iter().any(|d| d.state == "running"))
    {
        Ok(Status::Partial)
    } else {
        Err(anyhow::anyhow!("every worker failed"))
    }
}

fn enroll(c: &OperatorClient, args: &EnrollArgs) -> Result<Status> {
    let csr_pem = args
        .csr
        .as_ref()
        .map(|p| read_small(p).map_err(swarm_err))
        .transpose()?;
    let req = EnrollRequest {
        name: args.name.clone(),
        address: args.address.clone(),
        agent_port: args.agent_port,
        sans: args.sans.clone(),
        notes: args.notes.clone(),
        use_ipvlan: args.ipvlan,
        renew: args.renew,
        csr_pem,
    };
    let (_, resp): (_, EnrollResponse) = runtime()?
        .block_on(c.call(
            Method::POST,
            "/swarm/enroll",
            Some(&req),
            &[StatusCode::CREATED],
            None,
        ))
        .map_err(swarm_err)?;
    if let (Some(out), Some(bundle)) = (&args.out_dir, &resp.bundle) {
        std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
        let text = serde_json::to_string_pretty(bundle)?;
        write_public(&out.join("bundle.json"), &text).map_err(swarm_err)?;
        write_public(&out.join("worker.crt"), &bundle.certificate_pem).map_err(swarm_err)?;
        write_public(&out.join("ca.crt"), &bundle.ca_pem).map_err(swarm_err)?;
    }
    if args.json {
        output::json(&resp)?;
        return Ok(Status::Ok);
    }
    println!("worker {} enrolled as {}", resp.name, resp.host_uuid);
    if let Some(out) = &args.out_dir {
        println!(
            "signed bundle (no private key) written to {}",
            out.display()
        );
        println!(
            "on the worker: decnet agent enroll --bundle {} [--master https://MASTER:8771]",
            out.display()
        );
    }
    if let Some(token) = &resp.token {
        let url = resp
            .controller_url
            .clone()
            .unwrap_or_else(|| "https://MASTER:8771".to_owned());
        println!(
            "one-time token (expires {}):",
            resp.token_expires_at.as_deref().unwrap_or("soon")
        );
        println!("  {token}");
        println!("controller fingerprint: {}", resp.controller_fingerprint);
        println!("on the worker:");
        println!(
            "  decnet agent enroll --master {url} --token {token} --master-fingerprint {}",
            resp.controller_fingerprint
        );
    }
    Ok(Status::Ok)
}

/// `decnet swarm …`.
pub fn run(ctx: &Ctx, cmd: &SwarmCommand) -> Result<Status> {
    let c = client(ctx)?;
    match cmd {
        SwarmCommand::Enroll(args) => enroll(&c, args),
        SwarmCommand::List(args) => {
            let list = runtime()?.block_on(hosts(&c, args.status.as_deref()))?;
            if args.json {
                output::json(&list)?;
            } else {
                let mut t = output::table(&[
                    "NAME",
                    "UUID",
                    "ADDRESS",
                    "STATUS",
                    "LAST HEARTBEAT",
                    "CERT EXPIRES",
                    "VERSION",
                ]);
                for h in &list {
                    t.add_row(vec![
                        h.name.clone(),
                        h.uuid.to_string(),
                        format!("{}:{}", h.address, h.agent_port),
                        h.status.clone(),
                        h.last_heartbeat.clone().unwrap_or_default(),
                        h.cert_not_after.clone().unwrap_or_default(),
                        h.agent_version.clone().unwrap_or_default(),
                    ]);
                }
                println!("{t}");
            }
            Ok(Status::Ok)
        }
        SwarmCommand::Check(args) => {
            let (_, resp): (_, CheckResponse) = runtime()?
                .block_on(c.call(
                    Method::POST,
                    "/swarm/check",
                    None,
                    &[StatusCode::OK],
                    Some(Duration::from_secs(60)),
                ))
                .map_err(swarm_err)?;
            if args.json {
                output::json(&resp)?;
            } else {
                let mut t = output::table(&["NAME", "ADDRESS", "REACHABLE", "DETAIL"]);
                for r in &resp.results {
                    t.add_row(vec![
                        r.name.clone(),
                        r.address.clone(),
                        r.reachable.to_string(),
                        r.detail.clone(),
                    ]);
                }
                println!("{t}");
            }
            Ok(if resp.results.iter().all(|r| r.reachable) {
                Status::Ok
            } else {
                Status::Partial
            })
        }
        SwarmCommand::Deckies(args) => {
            let rt = runtime()?;
            let mut query = Vec::new();
            if let Some(h) = &args.host {
                let host = rt.block_on(resolve_host(&c, h))?;
                query.push(format!("host_uuid={}", host.uuid));
            }
            if let Some(s) = &args.state {
                if !s.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_') {
                    return Err(invalid(format!("--state {s:?}: not a state")));
                }
                query.push(format!("state={s}"));
            }
            let path = if query.is_empty() {
                "/swarm/deckies".to_owned()
            } else {
                format!("/swarm/deckies?{}", query.join("&"))
            };
            let (_, list): (_, Vec<ShardView>) = rt
                .block_on(c.call(Method::GET, &path, None, &[StatusCode::OK], None))
                .map_err(swarm_err)?;
            if args.json {
                output::json(&list)?;
            } else {
                let mut t = output::table(&["HOST", "DECKY", "IP", "STATE", "SERVICES", "ERROR"]);
                for s in &list {
                    t.add_row(vec![
                        s.host_name.clone(),
                        s.decky_name.clone(),
                        s.decky_ip.map(|i| i.to_string()).unwrap_or_default(),
                        s.state.clone(),
                        s.services.join(", "),
                        s.last_error.clone().unwrap_or_default(),
                    ]);
                }
                println!("{t}");
            }
            Ok(Status::Ok)
        }
        SwarmCommand::Teardown(args) => {
            let rt = runtime()?;
            let host_uuid = match &args.host {
                Some(h) => Some(rt.block_on(resolve_host(&c, h))?.uuid),
                None => None,
            };
            let req = SwarmTeardownRequest {
                host_uuid,
                decky_id: args.decky.clone(),
            };
            let (_, resp): (_, DispatchResponse) = rt
                .block_on(c.call(
                    Method::POST,
                    "/swarm/teardown",
                    Some(&req),
                    &[StatusCode::OK, StatusCode::MULTI_STATUS],
                    Some(DEPLOY_TIMEOUT),
                ))
                .map_err(swarm_err)?;
            print_dispatch(&resp, args.json)
        }
        SwarmCommand::Decommission(args) => {
            let rt = runtime()?;
            let uuid: HostUuid = match (&args.uuid, &args.name) {
                (Some(u), _) => HostUuid::new(u.clone()).map_err(|e| invalid(e.to_string()))?,
                (None, Some(n)) => rt.block_on(resolve_host(&c, n))?.uuid,
                (None, None) => return Err(invalid("--name or --uuid is required")),
            };
            let (_, resp): (_, DecommissionResponse) = rt
                .block_on(c.call(
                    Method::DELETE,
                    &format!("/swarm/hosts/{uuid}"),
                    None,
                    &[StatusCode::OK],
                    Some(Duration::from_secs(120)),
                ))
                .map_err(swarm_err)?;
            if args.json {
                output::json(&resp)?;
            } else {
                println!(
                    "worker {} decommissioned (self-destruct {}; certificate {})",
                    resp.name,
                    if resp.self_destruct_acknowledged {
                        "acknowledged"
                    } else {
                        "NOT acknowledged: the worker may still run"
                    },
                    if resp.revoked {
                        "revoked"
                    } else {
                        "never issued"
                    }
                );
            }
            Ok(Status::Ok)
        }
    }
}

/// `decnet deploy --mode swarm`: shard the plan round-robin over `enrolled` and `active`
/// workers (deckies with a `host_uuid` keep it) and dispatch through the controller.
pub fn deploy(ctx: &Ctx, args: &DeployArgs, plan: &Plan) -> Result<Status> {
    let c = client(ctx)?;
    let rt = runtime()?;
    let mut config = plan.config.clone();
    let targets: Vec<HostUuid> = rt
        .block_on(hosts(&c, None))?
        .into_iter()
        .filter(|h| h.status == "enrolled" || h.status == "active")
        .map(|h| h.uuid)
        .collect();
    shard_round_robin(&mut config, &targets).map_err(swarm_err)?;
    let req = DeployRequest {
        config,
        dry_run: args.dry_run,
        no_cache: args.no_cache,
    };
    let (_, resp): (_, DispatchResponse) = rt
        .block_on(c.call(
            Method::POST,
            "/swarm/deploy",
            Some(&req),
            &[StatusCode::OK, StatusCode::MULTI_STATUS],
            Some(DEPLOY_TIMEOUT),
        ))
        .map_err(swarm_err)?;
    print_dispatch(&resp, args.json)
}
