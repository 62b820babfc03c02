//! `decnet reconcile`: the fleet reconciler of this host (a pass at start, then every
//! interval), or one pass with `--once`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use decnet_bus::cli::systemd_notify_requested;
use decnet_bus::{Bus, BusConfig};
use decnet_core::HostUuid;
use decnet_core::hostcfg::HostRole;
use decnet_fleet::{Connector, LiveInputs, LoopOptions, ReconcileReport, Reconciler};
use decnet_runtime::docker::DockerEngine;
use decnet_runtime::engine::Engine;
use decnet_store::FleetRepo;
use tokio_util::sync::CancellationToken;

use super::live;
use super::swarmctl::{seconds, shutdown_signal};
use crate::context::Ctx;
use crate::exit::{Status, invalid};
use crate::output;

/// `decnet reconcile`.
#[derive(Args)]
pub struct ReconcileArgs {
    /// Seconds between passes (each wait is jittered by ±10%).
    #[arg(short, long, default_value_t = 30.0, value_name = "SECONDS")]
    pub interval: f64,
    /// Run one pass, print what it did, and exit.
    #[arg(long)]
    pub once: bool,
    /// With --once: print the pass report as JSON.
    #[arg(long, requires = "once")]
    pub json: bool,
    /// Host whose rows to reconcile (default: this worker's uuid from its enrollment
    /// bundle, else `local`).
    #[arg(long, value_name = "UUID")]
    pub host_uuid: Option<String>,
}

/// Largest identity file read from the agent directory.
const MAX_IDENTITY_BYTES: u64 = 64 * 1024;

/// The host identity every row, key and topic of this host uses (FL-3), resolved once:
/// `given`; else the enrolled worker's uuid (`<agent dir>/identity.json`); else `local`.
/// A host configured as an agent but not enrolled has no identity yet: refused.
///
/// # Errors
/// A bad `given` uuid or an agent without an identity (exit status 2); an unreadable
/// identity file.
pub fn host_identity(ctx: &Ctx, given: Option<&str>) -> Result<HostUuid> {
    if let Some(id) = given {
        return HostUuid::new(id).map_err(|e| invalid(format!("--host-uuid: {e}")));
    }
    let path = ctx.settings.agent_dir.join(decnet_swarm::agent::META_FILE);
    match std::fs::metadata(&path) {
        Ok(meta) => return worker_uuid(&path, meta.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    }
    if ctx.host.role()? == HostRole::Agent {
        return Err(invalid(format!(
            "this host is a swarm agent (DECNET_MODE=agent) but is not enrolled ({} does not \
             exist): enroll it with `decnet agent enroll`, or pass --host-uuid",
            path.display()
        )));
    }
    Ok(HostUuid::local())
}

fn worker_uuid(path: &Path, len: u64) -> Result<HostUuid> {
    if len > MAX_IDENTITY_BYTES {
        anyhow::bail!(
            "{}: {len} bytes, larger than {MAX_IDENTITY_BYTES}",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let meta: decnet_swarm::proto::AgentMeta =
        serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    Ok(meta.host_uuid)
}

/// `DOCKER_HOST`, read once at start-up: `None` for the default socket.
pub(crate) fn docker_socket() -> Result<Option<String>> {
    match std::env::var("DOCKER_HOST") {
        Err(_) => Ok(None),
        Ok(h) if h.is_empty() => Ok(None),
        Ok(h) => match h.strip_prefix("unix://") {
            Some(path) => Ok(Some(path.to_owned())),
            None => Err(invalid(format!(
                "DOCKER_HOST={h}: only local unix sockets (unix:///path) are supported"
            ))),
        },
    }
}

/// The bus of this host, or none (disabled, or NATS unreachable: the reconciler then
/// runs without one, as the database stays the source of truth).
///
/// # Errors
/// An unsupported `DECNET_BUS_TYPE` (exit status 2).
pub async fn open_bus(ctx: &Ctx, name: &str) -> Result<Option<Arc<dyn Bus>>> {
    let config = BusConfig::resolve(
        |k| ctx.host.vars.get(k).cloned(),
        &ctx.settings.bus_socket,
        name,
    )
    .map_err(|e| invalid(e.to_string()))?;
    match config.open().await {
        Ok(bus) => Ok(bus),
        Err(e) => {
            tracing::warn!(error = %e, "Bus unavailable; running without one");
            Ok(None)
        }
    }
}

/// Closes the bus, flushing for at most half a second.
pub async fn close_bus(bus: Option<&Arc<dyn Bus>>) {
    if let Some(bus) = bus {
        let _ = tokio::time::timeout(Duration::from_millis(500), bus.close()).await;
    }
}

fn print_report(r: &ReconcileReport) {
    println!(
        "host {}: inserted {}, deleted {}, state changed {}, config rewritten {} \
         ({} wanted, {} stored; docker {})",
        r.host_uuid,
        r.inserted,
        r.deleted,
        r.state_updated,
        r.config_updated,
        r.desired,
        r.stored,
        if r.observed { "observed" } else { "unknown" }
    );
    if r.foreign > 0 {
        println!("skipped {} decky(ies) pinned to other hosts", r.foreign);
    }
    for e in &r.errors {
        println!("could not {} {}: {}", e.op, e.name, e.message);
    }
    if r.error_count > r.errors.len() as u64 {
        println!("... {} failed writes in all", r.error_count);
    }
}

pub fn run(ctx: &Ctx, args: &ReconcileArgs) -> Result<Status> {
    let interval = seconds("--interval", args.interval)?;
    let host = host_identity(ctx, args.host_uuid.as_deref())?;
    let project = live::project(&ctx.settings)?;
    let socket = docker_socket()?;
    let store_config = super::db::config(ctx)?;
    let rt = live::runtime()?;
    rt.block_on(async {
        let repo: Arc<dyn FleetRepo> = super::db::open(&store_config).await?;
        let bus = open_bus(ctx, "reconciler").await?;
        let connect: Connector = Arc::new(move || {
            let socket = socket.clone();
            Box::pin(async move {
                let engine = DockerEngine::connect(socket.as_deref()).await?;
                Ok(Arc::new(engine) as Arc<dyn Engine>)
            })
        });
        let inputs = Arc::new(LiveInputs::new(&ctx.settings.state_file, project, connect));
        let reconciler = Reconciler::new(repo, host, inputs, bus.clone());
        if args.once {
            let report = reconciler.pass().await;
            close_bus(bus.as_ref()).await;
            let report = report.context("reconcile pass")?;
            if args.json {
                output::json(&report)?;
            } else {
                print_report(&report);
            }
            return Ok(if report.error_count > 0 {
                Status::Partial
            } else {
                Status::Ok
            });
        }
        let token = CancellationToken::new();
        let on_signal = token.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            on_signal.cancel();
        });
        let opts = LoopOptions {
            interval,
            notify_systemd: systemd_notify_requested(),
            ..LoopOptions::default()
        };
        reconciler.run(opts, token).await;
        close_bus(bus.as_ref()).await;
        Ok(Status::Ok)
    })
}
