//! `decnet collect`: follows the logs of this host's deckies through the Docker API.
//! On a master the events go to the database (then the bus and an optional SIEM copy);
//! on an enrolled worker into the local spool, which the agent ships to the master.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use clap::Args;
use decnet_bus::cli::systemd_notify_requested;
use decnet_bus::worker::DEFAULT_HEALTH_INTERVAL;
use decnet_fleet::logs::EventSink;
use decnet_fleet::logs::collector::{self, Collector, CollectorOptions, Reporting};
use decnet_fleet::logs::ingest::Ingester;
use decnet_fleet::logs::siem::{SiemOutput, SiemTarget};
use decnet_fleet::logs::spool::{Spool, SpoolOptions};
use decnet_runtime::docker::DockerEngine;
use decnet_runtime::engine::Engine;
use rustls_pki_types::ServerName;
use rustls_pki_types::pem::PemObject as _;
use tokio_util::sync::CancellationToken;

use super::live;
use super::reconcile::{close_bus, docker_socket, open_bus};
use super::swarmctl::shutdown_signal;
use crate::context::Ctx;
use crate::exit::{Status, invalid};

/// `decnet collect`.
#[derive(Args)]
pub struct CollectArgs {
    /// Where collected events go: `master` (the database), `worker` (the spool the agent
    /// forwards), or `auto` (worker when this host is enrolled, else master).
    #[arg(long, default_value = "auto", value_parser = ["auto", "master", "worker"])]
    pub mode: String,
    #[command(flatten)]
    pub siem: SiemArgs,
}

/// The optional copy of every stored event to an external SIEM.
#[derive(Args, Clone)]
pub struct SiemArgs {
    /// Also send every stored event to this syslog receiver as RFC 5424 lines with
    /// octet-counted framing: `tcp://HOST:PORT`, `tls://HOST:PORT` or `HOST:PORT`
    /// (TCP). Best effort: up to 65 536 lines wait while it is away, then new lines are
    /// dropped and counted (the database keeps everything).
    #[arg(long, value_name = "URL")]
    pub log_target: Option<String>,
    /// CA certificate(s) (PEM) that sign the TLS receiver's certificate; required with
    /// tls://.
    #[arg(long, value_name = "FILE", requires = "log_target")]
    pub log_target_ca: Option<PathBuf>,
}

impl SiemArgs {
    /// The target, checked (exit status 2 on a bad value); `None` when not asked for.
    pub fn target(&self) -> Result<Option<SiemTarget>> {
        let Some(url) = self.log_target.as_deref() else {
            return Ok(None);
        };
        let (tls, address) = if let Some(a) = url.strip_prefix("tls://") {
            (true, a)
        } else if let Some(a) = url.strip_prefix("tcp://") {
            (false, a)
        } else if url.contains("://") {
            return Err(invalid(format!(
                "--log-target {url:?}: the scheme must be tcp:// or tls://"
            )));
        } else {
            (false, url)
        };
        let (host, _port) = address
            .rsplit_once(':')
            .filter(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
            .ok_or_else(|| invalid(format!("--log-target {url:?}: expected HOST:PORT")))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if !tls {
            if self.log_target_ca.is_some() {
                return Err(invalid("--log-target-ca is only used with tls://"));
            }
            return Ok(Some(SiemTarget {
                address: address.to_owned(),
                tls: None,
            }));
        }
        let ca_path = self
            .log_target_ca
            .as_ref()
            .ok_or_else(|| invalid("--log-target tls://… needs --log-target-ca FILE"))?;
        let pem = std::fs::read(ca_path)
            .map_err(|e| invalid(format!("--log-target-ca {}: {e}", ca_path.display())))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            let cert =
                cert.map_err(|e| invalid(format!("--log-target-ca {}: {e}", ca_path.display())))?;
            roots
                .add(cert)
                .map_err(|e| invalid(format!("--log-target-ca {}: {e}", ca_path.display())))?;
        }
        if roots.is_empty() {
            return Err(invalid(format!(
                "--log-target-ca {}: no certificate in the file",
                ca_path.display()
            )));
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("TLS configuration")?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| invalid(format!("--log-target {url:?}: {e}")))?;
        Ok(Some(SiemTarget {
            address: address.to_owned(),
            tls: Some((Arc::new(config), name)),
        }))
    }
}

/// Whether this host ships its events to a master (it is an enrolled worker).
fn is_worker(ctx: &Ctx, mode: &str) -> bool {
    match mode {
        "worker" => true,
        "master" => false,
        _ => ctx
            .settings
            .agent_dir
            .join(decnet_swarm::agent::META_FILE)
            .is_file(),
    }
}

pub fn run(ctx: &Ctx, args: &CollectArgs) -> Result<Status> {
    let worker = is_worker(ctx, &args.mode);
    let siem = args.siem.target()?;
    if worker && siem.is_some() {
        return Err(invalid(
            "--log-target belongs on the master (`decnet swarmctl --log-target`): a \
             worker's events are copied to the SIEM once the master has stored them",
        ));
    }
    let cursor_path = ctx.settings.collector_dir.join(collector::CURSOR_FILE);
    let spool_dir = ctx.settings.spool_dir.clone();
    for dir in [&ctx.settings.collector_dir, &spool_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    let socket = docker_socket()?;
    let store_config = (!worker).then(|| super::db::config(ctx)).transpose()?;
    live::runtime()?.block_on(async {
        let token = CancellationToken::new();
        let on_signal = token.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            on_signal.cancel();
        });
        let engine: Arc<dyn Engine> = Arc::new(
            DockerEngine::connect(socket.as_deref())
                .await
                .context("connect to Docker")?,
        );
        // The bus carries the master's events, and on both sides the collector's health
        // beats and stop requests; without one the collector still runs.
        let bus = open_bus(ctx, "collector").await?;
        let sink: Arc<dyn EventSink> = match &store_config {
            None => Arc::new(
                Spool::open(
                    &spool_dir,
                    SpoolOptions::default(),
                    decnet_fleet::logs::spool::envelope_encoder(),
                )
                .with_context(|| format!("open the spool {}", spool_dir.display()))?,
            ),
            Some(config) => {
                let store = super::db::open(config).await?;
                let mut ingester = Ingester::new(store, bus.clone());
                if let Some(target) = siem {
                    ingester = ingester.with_siem(SiemOutput::start(target, token.clone()));
                }
                Arc::new(ingester)
            }
        };
        let mode = if worker { "worker" } else { "master" };
        tracing::info!(mode, "Collecting decky logs");
        let collector = Collector::new(engine, sink, &cursor_path, CollectorOptions::default())
            .context("collector")?;
        let mut extra = serde_json::Map::new();
        extra.insert("mode".into(), mode.into());
        extra.insert("pid".into(), std::process::id().into());
        let summary = collector
            .run_reported(
                Reporting {
                    bus: bus.clone(),
                    interval: DEFAULT_HEALTH_INTERVAL,
                    extra,
                    notify_systemd: systemd_notify_requested(),
                },
                token.clone(),
            )
            .await;
        tracing::info!(
            committed = summary.committed,
            left_uncommitted = summary.left_uncommitted,
            "Collector stopped"
        );
        close_bus(bus.as_ref()).await;
        Ok(Status::Ok)
    })
}
