//! What the commands that touch the live runtime share: an async runtime, the Docker
//! connection and deploy progress (a bar on a terminal, plain lines otherwise).

use std::io::IsTerminal as _;

use anyhow::{Context as _, Result};
use decnet_core::Settings;
use decnet_runtime::deploy::{ContainerOutcome, Progress};
use decnet_runtime::docker::DockerEngine;
use decnet_runtime::spec::Project;
use indicatif::{ProgressBar, ProgressStyle};

/// A single-threaded async runtime: every engine call is IO-bound.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

/// The project everything is created in: `DECNET_PROJECT` when set; else one per
/// relocated data directory (`--data-dir`/`DECNET_HOME`, so a demo or a test never touches
/// the system fleet); else `decnet`.
pub fn project(settings: &Settings) -> Result<Project> {
    match std::env::var("DECNET_PROJECT") {
        Ok(p) if !p.is_empty() => Ok(Project::new(&p)?),
        _ => Ok(settings
            .home
            .as_deref()
            .map_or_else(Project::default, Project::for_home)),
    }
}

/// Connects to the local Docker daemon: `DOCKER_HOST` when it names a unix socket
/// (`unix:///path`), else `/var/run/docker.sock`.
pub async fn engine() -> Result<DockerEngine> {
    let host = std::env::var("DOCKER_HOST").ok();
    let socket = match host.as_deref() {
        None | Some("") => None,
        Some(h) => match h.strip_prefix("unix://") {
            Some(path) => Some(path.to_owned()),
            None => {
                return Err(crate::exit::invalid(format!(
                    "DOCKER_HOST={h}: only local unix sockets (unix:///path) are supported"
                )));
            }
        },
    };
    DockerEngine::connect(socket.as_deref())
        .await
        .map_err(decnet_runtime::Error::Engine)
        .context("connect to Docker")
}

/// Deploy progress on stderr.
pub enum Reporter {
    /// A progress bar (stderr is a terminal).
    Bar(ProgressBar),
    /// One line per step and container.
    Lines,
}

impl Reporter {
    /// A bar when stderr is a terminal, lines otherwise.
    pub fn new() -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            Reporter::Bar(bar)
        } else {
            Reporter::Lines
        }
    }
}

impl Progress for Reporter {
    fn stage(&self, what: &str) {
        match self {
            Reporter::Bar(bar) => bar.set_message(what.to_owned()),
            Reporter::Lines => eprintln!("deploy: {what}"),
        }
    }

    fn begin(&self, total: u64) {
        if let Reporter::Bar(bar) = self {
            bar.set_length(total);
            bar.set_position(0);
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {msg} [{bar:30}] {pos}/{len} containers")
            {
                bar.set_style(style.progress_chars("=> "));
            }
        }
    }

    fn container(&self, o: &ContainerOutcome) {
        let result = match &o.error {
            None => "ok".to_owned(),
            Some(e) => format!("FAILED: {e}"),
        };
        match self {
            Reporter::Bar(bar) => {
                bar.inc(1);
                if o.error.is_some() {
                    bar.println(format!("{}: {result}", o.container));
                }
            }
            Reporter::Lines => eprintln!(
                "deploy: {} {} {result}",
                o.container,
                serde_json::to_value(o.action)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            ),
        }
    }

    fn end(&self) {
        if let Reporter::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}
