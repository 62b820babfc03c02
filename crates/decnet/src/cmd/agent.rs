//! `decnet agent`: the worker agent, and `decnet agent enroll`.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use decnet_core::net::NetInfo;
use decnet_store::Fingerprint;
use decnet_swarm::agent::backend::{AgentBackend, FakeBackend};
use decnet_swarm::agent::relocalize::{FixedLan, LanDetector};
use decnet_swarm::agent::runtime::RuntimeBackend;
use decnet_swarm::agent::{self, AgentBundle, AgentOptions, enroll, reaper};
use decnet_swarm::forward;
use decnet_swarm::proto::DEFAULT_AGENT_PORT;

use super::swarmctl::{runtime, seconds, shutdown_signal, swarm_err};
use crate::context::Ctx;
use crate::exit::{Status, invalid};

/// `decnet agent`.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AgentArgs {
    #[command(subcommand)]
    pub action: Option<AgentAction>,
    /// Listen address.
    #[arg(long, default_value = "0.0.0.0")]
    pub host: IpAddr,
    /// Listen port.
    #[arg(long, default_value_t = DEFAULT_AGENT_PORT)]
    pub port: u16,
    /// Enrolled bundle directory (default: /etc/decnet/agent, or $DECNET_AGENT_DIR).
    #[arg(long, value_name = "DIR")]
    pub agent_dir: Option<PathBuf>,
    /// Seconds between heartbeats.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub heartbeat_interval: f64,
    /// Where the self-destruct reaper script is written (a directory outside the install
    /// that PID 1 can see; default: the run directory, /run/decnet).
    #[arg(long, value_name = "DIR")]
    pub reaper_dir: Option<PathBuf>,
    /// Parent interface of this worker's deckies (its LAN is detected on it at every
    /// deploy; default: the interface of the default route).
    #[arg(long, value_name = "IFACE")]
    pub interface: Option<String>,
    /// Where the spooled decky events are shipped (the master's log listener; default:
    /// the controller URL's host, port 6514).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "no_log_forward")]
    pub log_forward: Option<String>,
    /// Do not ship spooled events.
    #[arg(long)]
    pub no_log_forward: bool,
    /// Static decky binary the image is built from (default: decnet-decky next to
    /// decnet).
    #[arg(long, env = "DECNET_DECKY_BIN", value_name = "PATH")]
    pub decky_bin: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum AgentAction {
    /// Enroll this worker: online with a token, or offline in two steps (--csr-out, then
    /// --bundle). The private key is generated here and never leaves this host.
    Enroll(EnrollArgs),
}

/// `decnet agent enroll`.
#[derive(Args)]
pub struct EnrollArgs {
    /// The controller's worker-facing URL (https://MASTER:8771).
    #[arg(long, value_name = "URL")]
    pub master: Option<String>,
    /// The one-time token from `decnet swarm enroll`. Tokens are URL-safe base64 and may
    /// begin with `-`, so the value is taken as given.
    #[arg(
        long,
        allow_hyphen_values = true,
        requires_all = ["master", "master_fingerprint"],
        conflicts_with_all = ["csr_out", "bundle"]
    )]
    pub token: Option<String>,
    /// The controller certificate fingerprint printed with the token.
    #[arg(long, value_name = "SHA256")]
    pub master_fingerprint: Option<String>,
    /// Offline step 1: write a certificate request here (take it to the master).
    #[arg(long, value_name = "FILE", conflicts_with = "bundle")]
    pub csr_out: Option<PathBuf>,
    /// Offline step 3: install the bundle directory the master wrote with --out-dir.
    #[arg(long, value_name = "DIR")]
    pub bundle: Option<PathBuf>,
    /// Bundle directory (default: /etc/decnet/agent, or $DECNET_AGENT_DIR).
    #[arg(long, value_name = "DIR")]
    pub agent_dir: Option<PathBuf>,
}

fn agent_dir(ctx: &Ctx, given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| ctx.settings.agent_dir.clone(), Path::to_path_buf)
}

fn enroll_cmd(ctx: &Ctx, args: &EnrollArgs) -> Result<Status> {
    let dir = agent_dir(ctx, args.agent_dir.as_deref());
    if let Some(out) = &args.csr_out {
        let csr = enroll::offline_request(&dir).map_err(swarm_err)?;
        std::fs::write(out, csr).with_context(|| format!("write {}", out.display()))?;
        println!("certificate request written to {}", out.display());
        println!("the private key stays in {}", dir.display());
        println!(
            "on the master: decnet swarm enroll --name NAME --address ADDRESS --csr {} --out-dir DIR",
            out.display()
        );
        return Ok(Status::Ok);
    }
    if let Some(bundle_dir) = &args.bundle {
        let bundle =
            enroll::offline_install(&dir, bundle_dir, args.master.as_deref()).map_err(swarm_err)?;
        println!(
            "enrolled as {} ({}); bundle in {}",
            bundle.meta.name,
            bundle.meta.host_uuid,
            dir.display()
        );
        return Ok(Status::Ok);
    }
    let (Some(master), Some(token), Some(fp)) =
        (&args.master, &args.token, &args.master_fingerprint)
    else {
        return Err(invalid(
            "say how to enroll: --master URL --token T --master-fingerprint FP, or --csr-out FILE, or --bundle DIR",
        ));
    };
    let fp = Fingerprint::new(fp).map_err(|e| invalid(format!("--master-fingerprint: {e}")))?;
    let bundle = runtime()?
        .block_on(enroll::enroll_online(&dir, master, token, fp))
        .map_err(swarm_err)?;
    println!(
        "enrolled as {} ({}); bundle in {}",
        bundle.meta.name,
        bundle.meta.host_uuid,
        dir.display()
    );
    Ok(Status::Ok)
}

fn decnet_env() -> BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| k.starts_with("DECNET_TEST_") || k == "INVOCATION_ID")
        .collect()
}

/// `DECNET_TEST_FAKE_LAN=iface,subnet,gateway,host_ip`, honoured only with the fake runtime.
fn fake_lan(env: &BTreeMap<String, String>) -> Result<Option<NetInfo>> {
    let Some(text) = env.get("DECNET_TEST_FAKE_LAN") else {
        return Ok(None);
    };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    let [iface, subnet, gw, host] = parts.as_slice() else {
        return Err(invalid(
            "DECNET_TEST_FAKE_LAN: expected iface,subnet,gateway,host_ip",
        ));
    };
    let bad = |what: &str| invalid(format!("DECNET_TEST_FAKE_LAN: bad {what}"));
    Ok(Some(NetInfo {
        interface: (*iface).to_owned(),
        subnet: subnet.parse().map_err(|_| bad("subnet"))?,
        gateway: gw.parse().map_err(|_| bad("gateway"))?,
        host_ip: host.parse().map_err(|_| bad("host_ip"))?,
    }))
}

/// A backend and the LAN detector that goes with it.
type Runtime = (Arc<dyn AgentBackend>, Arc<dyn LanDetector>);

/// The test backend when `DECNET_TEST_FAKE_RUNTIME` enables it (see
/// [`FakeBackend`]), else `None`.
fn fake_backend(
    env: &BTreeMap<String, String>,
    interface: Option<String>,
) -> Result<Option<Runtime>> {
    let Some(fake) = FakeBackend::from_env(env) else {
        return Ok(None);
    };
    tracing::warn!("DECNET_TEST_FAKE_RUNTIME is set: this agent deploys NOTHING (test backend)");
    eprintln!("decnet: warning: test backend in use, nothing will be deployed");
    let detector: Arc<dyn LanDetector> = match fake_lan(env)? {
        Some(lan) => Arc::new(FixedLan(lan)),
        None => Arc::new(move || detect_lan(interface.as_deref())),
    };
    Ok(Some((Arc::new(fake), detector)))
}

/// The Docker backend: `DOCKER_HOST` when it names a unix socket, else the default
/// socket; deckies go to the same project the CLI uses for these settings
/// (`DECNET_PROJECT`, else one per relocated data directory, else `decnet`), so `decnet
/// status` with the agent's `--data-dir` sees what the agent deployed.
async fn docker_backend(ctx: &Ctx, decky_bin: Option<PathBuf>) -> Result<Arc<dyn AgentBackend>> {
    let engine = super::live::engine().await?;
    let project = super::live::project(&ctx.settings)?;
    Ok(Arc::new(RuntimeBackend::new(
        Arc::new(engine),
        Arc::new(decnet_runtime::hairpin::NetlinkHostNetwork),
        ctx.settings.clone(),
        project,
        decky_bin,
    )))
}

fn detect_lan(interface: Option<&str>) -> decnet_swarm::Result<NetInfo> {
    decnet_runtime::hostnet::detect(interface)
        .map_err(|e| decnet_swarm::Error::Runtime(e.to_string()))
}

pub fn run(ctx: &Ctx, args: &AgentArgs) -> Result<Status> {
    if let Some(AgentAction::Enroll(e)) = &args.action {
        return enroll_cmd(ctx, e);
    }
    let dir = agent_dir(ctx, args.agent_dir.as_deref());
    let bundle = AgentBundle::load(&dir).map_err(swarm_err)?;
    let interval = seconds("--heartbeat-interval", args.heartbeat_interval)?;
    let env = decnet_env();
    let rt = runtime()?;
    if let Some(name) = &args.interface {
        // A named interface is checked now, so a typo stops the agent at start rather
        // than failing every deploy.
        detect_lan(Some(name)).map_err(|e| invalid(format!("--interface {name}: {e}")))?;
    }
    let (backend, detector) = match fake_backend(&env, args.interface.clone())? {
        Some(pair) => pair,
        None => {
            let backend = rt.block_on(docker_backend(ctx, args.decky_bin.clone()))?;
            let interface = args.interface.clone();
            let detector: Arc<dyn LanDetector> = Arc::new(move || detect_lan(interface.as_deref()));
            (backend, detector)
        }
    };
    // The reaper script goes under the run directory of these settings (a `--data-dir`
    // agent keeps it inside its own tree) unless `--reaper-dir` names another.
    let mut reaper = reaper::Reaper {
        temp_dir: args
            .reaper_dir
            .clone()
            .unwrap_or_else(|| ctx.settings.run_dir.clone()),
        ..reaper::Reaper::default()
    };
    if backend.name() == "fake" {
        // A test agent never reaps the real host: the reaper works under
        // DECNET_TEST_REAPER_ROOT (or an empty scratch directory) and calls no systemctl
        // or docker.
        let root = env.get("DECNET_TEST_REAPER_ROOT").map_or_else(
            || std::env::temp_dir().join(format!("decnet-test-root-{}", std::process::id())),
            PathBuf::from,
        );
        reaper.script.root = root;
        reaper.script.systemctl = "true".into();
        reaper.script.docker = "decnet-test-no-docker".into();
        reaper.script.delay_secs = 0;
        reaper.lookup = Arc::new(|_: &str| None);
    }
    let opts = AgentOptions {
        listen: SocketAddr::new(args.host, args.port),
        heartbeat_interval: interval,
        agent_version: decnet_swarm::AGENT_VERSION.to_owned(),
        reaper,
    };
    let forwarder = if args.no_log_forward {
        None
    } else {
        let target = match &args.log_forward {
            Some(t) => t.clone(),
            None => forward::default_target(&bundle.meta.controller_url).ok_or_else(|| {
                invalid(format!(
                    "no log forwarding target: the bundle's controller URL {:?} has no host; pass --log-forward HOST:PORT or --no-log-forward",
                    bundle.meta.controller_url
                ))
            })?,
        };
        let spool_dir = ctx.settings.spool_dir.clone();
        Some(forward::Forwarder::for_bundle(&bundle, target, spool_dir))
    };
    rt.block_on(async move {
        let (stop_fwd, fwd_stopped) = tokio::sync::oneshot::channel::<()>();
        let fwd = forwarder.map(|f| {
            tracing::info!(target_addr = %f.target, spool = %f.spool_dir.display(), "Forwarding spooled logs");
            tokio::spawn(forward::run(f, async {
                let _ = fwd_stopped.await;
            }))
        });
        let result = agent::run(bundle, backend, detector, opts, shutdown_signal()).await;
        let _ = stop_fwd.send(());
        if let Some(task) = fwd {
            let _ = task.await;
        }
        result.map_err(swarm_err)
    })?;
    Ok(Status::Ok)
}
