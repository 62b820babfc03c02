//! `decnet swarmctl`: the swarm controller (operator and worker listeners).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Args;
use decnet_fleet::logs::ingest::Ingester;
use decnet_fleet::logs::siem::SiemOutput;
use decnet_swarm::listen::{self, LogListener};
use decnet_swarm::master::{self, Controller, ControllerOptions, DEFAULT_TOKEN_TTL};
use decnet_swarm::proto::{DEFAULT_SWARMCTL_PORT, DEFAULT_WORKER_PORT};

use super::reconcile::{close_bus, open_bus};
use crate::context::Ctx;
use crate::exit::{Status, invalid};

/// `decnet swarmctl`.
#[derive(Args)]
pub struct SwarmctlArgs {
    /// Operator listener address (loopback unless --operator-tls).
    #[arg(long, env = "DECNET_SWARMCTL_HOST", default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// Operator listener port.
    #[arg(long, env = "DECNET_SWARMCTL_PORT", default_value_t = DEFAULT_SWARMCTL_PORT)]
    pub port: u16,
    /// Worker listener address (heartbeats and enrollment, mTLS).
    #[arg(long, default_value = "0.0.0.0")]
    pub worker_host: IpAddr,
    /// Worker listener port.
    #[arg(long, default_value_t = DEFAULT_WORKER_PORT)]
    pub worker_port: u16,
    /// The worker-facing URL agents use (https://MASTER:8771), put in enrollment output.
    #[arg(long, value_name = "URL")]
    pub advertise: Option<String>,
    /// Extra names or addresses for the controller's certificate.
    #[arg(long = "san", value_name = "NAME_OR_IP")]
    pub sans: Vec<String>,
    /// Serve the operator listener over mTLS (operator certificates required); needed to
    /// bind it off loopback.
    #[arg(long)]
    pub operator_tls: bool,
    /// Heartbeat interval agents use, seconds; hosts silent for three are unreachable.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub heartbeat_interval: f64,
    /// Lifetime of enrollment tokens, seconds.
    #[arg(long, default_value_t = DEFAULT_TOKEN_TTL.as_secs(), value_name = "SECONDS")]
    pub token_ttl: u64,
    /// Log listener for workers' forwarded events (RFC 5425 over mTLS), or `off`.
    #[arg(long, default_value = "0.0.0.0:6514", value_name = "ADDR|off")]
    pub syslog_listen: String,
    /// Copy of every stored worker event to a SIEM.
    #[command(flatten)]
    pub siem: super::collect::SiemArgs,
}

/// `--syslog-listen`: an address, or `None` for `off`.
fn syslog_listen(value: &str) -> Result<Option<SocketAddr>> {
    if value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| {
        invalid(format!(
            "--syslog-listen: expected IP:PORT or off, got {value:?}"
        ))
    })
}

/// A positive duration from seconds given on the command line.
pub fn seconds(flag: &str, value: f64) -> Result<Duration> {
    if !(value.is_finite() && (0.05..=86_400.0).contains(&value)) {
        return Err(invalid(format!("{flag}: expected 0.05 to 86400 seconds")));
    }
    Ok(Duration::from_secs_f64(value))
}

/// A multi-threaded Tokio runtime for one command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}

/// Maps a swarm error to the CLI's exit statuses (validation → 2).
pub fn swarm_err(e: decnet_swarm::Error) -> anyhow::Error {
    if e.is_validation() {
        return invalid(e.to_string());
    }
    if let decnet_swarm::Error::Status { status, detail, .. } = &e
        && matches!(status, 400 | 404 | 409 | 422)
    {
        return invalid(format!("the controller refused: {detail} (HTTP {status})"));
    }
    anyhow::Error::new(e)
}

pub fn run(ctx: &Ctx, args: &SwarmctlArgs) -> Result<Status> {
    let interval = seconds("--heartbeat-interval", args.heartbeat_interval)?;
    if args.token_ttl == 0 {
        return Err(invalid("--token-ttl must be at least 1 second"));
    }
    if let Some(url) = &args.advertise
        && !url.starts_with("https://")
    {
        return Err(invalid("--advertise: expected an https:// URL"));
    }
    let opts = ControllerOptions {
        operator_listen: SocketAddr::new(args.host, args.port),
        operator_tls: args.operator_tls,
        worker_listen: SocketAddr::new(args.worker_host, args.worker_port),
        advertise_url: args.advertise.clone(),
        extra_sans: args.sans.clone(),
        heartbeat_interval: interval,
        token_ttl: Duration::from_secs(args.token_ttl),
        ca_dir: ctx.settings.ca_dir.clone(),
        master_dir: ctx.settings.master_dir.clone(),
    };
    let syslog = syslog_listen(&args.syslog_listen)?;
    let siem = args.siem.target()?;
    if syslog.is_none() && siem.is_some() {
        return Err(invalid(
            "--log-target needs the log listener: it copies the workers' stored events (see --syslog-listen)",
        ));
    }
    let store = super::db::config(ctx)?;
    runtime()?.block_on(async move {
        let repo = super::db::open(&store).await?;
        let ctrl = Arc::new(Controller::new(repo, opts).map_err(swarm_err)?);
        // Workers' forwarded events go through the same ingester as local ones.
        let (stop_logs, logs_stopped) = tokio::sync::oneshot::channel::<()>();
        let siem_stop = tokio_util::sync::CancellationToken::new();
        let mut bus = None;
        let logs = match syslog {
            Some(addr) => {
                bus = open_bus(ctx, "swarmctl-logs").await?;
                let mut ingester = Ingester::new(ctrl.repo.clone(), bus.clone());
                if let Some(target) = siem {
                    ingester = ingester.with_siem(SiemOutput::start(target, siem_stop.clone()));
                }
                let sink = Arc::new(ingester);
                let listener = LogListener::new(
                    &ctrl.swarmctl,
                    ctrl.repo.clone(),
                    sink,
                    listen::envelope_decoder(),
                )
                .map_err(swarm_err)?
                .with_assigning(ctrl.assigning.clone());
                // The control plane stays up without its log listener (workers keep
                // spooling until it is back); the operator is told.
                match tokio::net::TcpListener::bind(addr).await {
                    Ok(tcp) => {
                        tracing::info!(listen = %addr, "Log listener up");
                        Some(tokio::spawn(listener.run_on(tcp, async {
                            let _ = logs_stopped.await;
                        })))
                    }
                    Err(e) => {
                        tracing::error!(listen = %addr, error = %e, "Log listener not started: workers' events stay in their spools");
                        eprintln!(
                            "decnet: warning: cannot listen for worker logs on {addr}: {e} (see --syslog-listen)"
                        );
                        None
                    }
                }
            }
            None => None,
        };
        let result = master::run(ctrl, shutdown_signal()).await;
        let _ = stop_logs.send(());
        if let Some(task) = logs {
            let _ = task.await;
        }
        siem_stop.cancel();
        close_bus(bus.as_ref()).await;
        result.map_err(swarm_err)?;
        Ok(Status::Ok)
    })
}
