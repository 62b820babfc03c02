//! `decnet-decky`: the one binary inside every decky container.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use decnet_core::catalog::{self, Proto};
use decnet_honeypot::event::{Event, LineSink, kind};
use decnet_honeypot::persona::Persona;
use decnet_honeypot::server::{Limits, ServiceCtx, serve};
use decnet_honeypot::services;

/// Runs DECNET honeypot services inside a decky.
///
/// Events are written to stdout, one RFC 5424 line each; diagnostics go to stderr.
#[derive(Parser)]
#[command(name = "decnet-decky", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one honeypot service on its real port(s).
    ///
    /// Persona settings come from environment variables (NODE_NAME, DECNET_HOSTNAME,
    /// DECNET_DISTRO, DECNET_OS_FAMILY, DECNET_SEED, DECNET_ARTIFACTS_DIR and the service's
    /// catalogue variables such as SERVER_HEADER), or from a JSON file given with --config
    /// whose keys are the catalogue keys (`decnet-decky services --json` lists them).
    Serve {
        /// Service slug (ssh, http, redis, ...).
        service: String,
        /// Address to listen on.
        #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
        bind: IpAddr,
        /// Port(s) to listen on instead of the service's real ones (repeatable).
        #[arg(long = "port")]
        ports: Vec<u16>,
        /// JSON persona file (instead of environment variables).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Runtime worker threads. 1 (the default) runs everything on one thread, the
        /// smallest footprint; more only pays off for a decky under heavy load on a host
        /// with idle cores.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
        threads: u16,
    },
    /// Keep the decky's network namespace alive: reap children, exit on SIGTERM.
    Hold,
    /// List the services this binary serves.
    Services {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One thread by default: a decky serves a handful of connections and must stay small.
    let threads = match &cli.command {
        Command::Serve { threads, .. } => usize::from(*threads),
        _ => 1,
    };
    let mut builder = if threads > 1 {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("decnet-decky: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve {
                service,
                bind,
                ports,
                config,
                threads: _,
            } => run_serve(&service, bind, &ports, config).await,
            Command::Hold => hold().await,
            Command::Services { json } => list_services(json),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("decnet-decky: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn list_services(json: bool) -> Result<()> {
    let served: Vec<_> = services::REGISTRY
        .iter()
        .filter_map(|e| catalog::service(e.slug).ok())
        .collect();
    if json {
        println!("{}", serde_json::to_string_pretty(&served)?);
    } else {
        for s in served {
            let ports: Vec<String> = s.ports.iter().map(ToString::to_string).collect();
            let keys: Vec<&str> = s.persona.iter().map(|k| k.key).collect();
            println!("{:<10} {:<10} {}", s.slug, ports.join(","), keys.join(","));
        }
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the process still ends when the container is killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn run_serve(slug: &str, bind: IpAddr, ports: &[u16], config: Option<PathBuf>) -> Result<()> {
    let served = || {
        services::REGISTRY
            .iter()
            .map(|e| e.slug)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let spec = catalog::service(slug)
        .with_context(|| format!("this decnet-decky serves: {}", served()))?;
    let Some(entry) = services::lookup(slug) else {
        bail!(
            "service '{slug}' is catalogued but not served by this build (served: {})",
            served()
        );
    };
    let persona = match config {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("read {}", path.display()))?;
            let json: serde_json::Value =
                serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
            Persona::from_json(spec, &json)?
        }
        None => Persona::from_lookup(spec, |k| std::env::var(k).ok())?,
    };
    if !persona.seed_given {
        eprintln!(
            "decnet-decky: DECNET_SEED is not set; keys and salts derive from the node name only"
        );
    }
    let sink = Arc::new(LineSink::new(&persona.node_name, std::io::stdout()));
    let ctx = Arc::new(ServiceCtx {
        service: spec,
        persona: Arc::new(persona),
        events: sink,
        limits: Limits::default(),
    });
    let emulator = (entry.build)(&ctx)?;
    let wanted: Vec<u16> = if ports.is_empty() {
        spec.ports
            .iter()
            .filter(|p| p.proto == Proto::Tcp)
            .map(|p| p.number)
            .collect()
    } else {
        ports.to_vec()
    };
    let mut listeners = Vec::new();
    for port in &wanted {
        let addr = SocketAddr::new(bind, *port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listen on {addr}"))?;
        listeners.push(listener);
    }
    let bound: Vec<String> = wanted.iter().map(ToString::to_string).collect();
    ctx.emit(Event::new(kind::STARTUP).field("ports", bound.join(",")));
    serve(listeners, emulator, ctx, shutdown_signal()).await;
    Ok(())
}

async fn hold() -> Result<()> {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    use tokio::signal::unix::{SignalKind, signal};
    let mut child = signal(SignalKind::child()).context("install SIGCHLD handler")?;
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return Ok(()),
            _ = child.recv() => {
                // As PID 1 we inherit orphans: reap every child that has exited.
                while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    if status == WaitStatus::StillAlive {
                        break;
                    }
                }
            }
        }
    }
}
