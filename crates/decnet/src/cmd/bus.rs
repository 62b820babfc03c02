//! `decnet bus`: the host's bus broker; `decnet bus publish` and `decnet bus subscribe`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use decnet_bus::cli::{publish_once, run_broker, subscribe_print, systemd_notify_requested};
use decnet_bus::{BrokerOptions, DEFAULT_GROUP};

use super::swarmctl::{runtime, shutdown_signal};
use crate::context::Ctx;
use crate::exit::{Status, invalid};

/// `decnet bus [--socket P] [--group G] [--heartbeat S]`, or one of its actions.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BusArgs {
    #[command(subcommand)]
    pub action: Option<BusAction>,
    /// Socket to serve (default: the configured bus socket, /run/decnet/bus.sock).
    #[arg(short, long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Group given to the socket (mode 0660), when it exists.
    #[arg(short, long, default_value = DEFAULT_GROUP)]
    pub group: String,
    /// Seconds between `system.bus.health` beats (0: none).
    #[arg(short = 'H', long, default_value_t = 10, value_name = "SECONDS")]
    pub heartbeat: u64,
}

/// What `decnet bus` does besides serving.
#[derive(Subcommand)]
pub enum BusAction {
    /// Publish one event (its type is the topic's last token).
    Publish(PublishArgs),
    /// Print events matching a pattern, one JSON envelope per line, until interrupted.
    Subscribe(SubscribeArgs),
}

/// `decnet bus publish <topic> <json>`.
#[derive(Args)]
pub struct PublishArgs {
    /// Topic (`ops.reload.requested`).
    pub topic: String,
    /// Payload: one JSON object.
    pub json: String,
    /// Broker socket (default: the configured bus socket).
    #[arg(short, long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// `decnet bus subscribe <pattern> [--count N]`.
#[derive(Args)]
pub struct SubscribeArgs {
    /// Pattern: `*` matches one token, `>` one or more trailing tokens (`decky.>`).
    pub pattern: String,
    /// Stop after this many events.
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,
    /// Broker socket (default: the configured bus socket).
    #[arg(short, long, value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

fn socket(ctx: &Ctx, given: Option<&Path>) -> PathBuf {
    given.map_or_else(|| ctx.settings.bus_socket.clone(), Path::to_path_buf)
}

/// Bad topics, patterns and payloads are the caller's input (exit status 2).
fn bus_err(e: decnet_bus::Error) -> anyhow::Error {
    match e {
        decnet_bus::Error::InvalidTopic { .. }
        | decnet_bus::Error::InvalidPattern { .. }
        | decnet_bus::Error::PayloadNotObject => invalid(e.to_string()),
        other => anyhow::Error::new(other),
    }
}

pub fn run(ctx: &Ctx, args: &BusArgs) -> Result<Status> {
    match &args.action {
        None => serve(ctx, args),
        Some(BusAction::Publish(p)) => {
            let path = socket(ctx, p.socket.as_deref());
            let sent = runtime()?
                .block_on(publish_once(&path, &p.topic, &p.json))
                .map_err(bus_err)?;
            println!("{}", serde_json::to_string(&sent)?);
            Ok(Status::Ok)
        }
        Some(BusAction::Subscribe(s)) => {
            let path = socket(ctx, s.socket.as_deref());
            runtime()?.block_on(async {
                tokio::select! {
                    r = subscribe_print(&path, &s.pattern, s.count, std::io::stdout()) => {
                        r.map_err(bus_err)?;
                    }
                    () = shutdown_signal() => {}
                }
                anyhow::Ok(())
            })?;
            Ok(Status::Ok)
        }
    }
}

fn serve(ctx: &Ctx, args: &BusArgs) -> Result<Status> {
    let path = socket(ctx, args.socket.as_deref());
    // /run/decnet comes from systemd's tmpfiles; a relocated installation (--data-dir)
    // has no such provider, so its run directory is made here.
    if let (Some(home), Some(parent)) = (&ctx.settings.home, path.parent())
        && parent.starts_with(home)
    {
        std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    }
    let mut opts = BrokerOptions::new(&path);
    opts.group = Some(args.group.clone());
    opts.heartbeat = (args.heartbeat > 0).then(|| Duration::from_secs(args.heartbeat));
    opts.notify_systemd = systemd_notify_requested();
    runtime()?
        .block_on(run_broker(opts, shutdown_signal()))
        .with_context(|| format!("bus broker on {}", path.display()))?;
    Ok(Status::Ok)
}
