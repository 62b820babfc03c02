//! Command-line grammar.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// DECNET: fill a network with fake machines ("deckies") that capture every credential,
/// command and payload an intruder tries.
///
/// Exit status: 0 success, 1 failure, 2 bad input (nothing was changed), 3 partial success.
#[derive(Parser)]
#[command(
    name = "decnet",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options of every command.
#[derive(Args)]
pub struct Global {
    /// Keep every file (state, database, logs, sockets, certificates) under this directory
    /// instead of /var/lib/decnet, /var/log/decnet, /run/decnet and /etc/decnet.
    #[arg(long, global = true, env = "DECNET_HOME", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Subcommand)]
pub enum Command {
    /// Plan and deploy a fleet of deckies.
    Deploy(Box<DeployArgs>),
    /// Show the deployed fleet.
    Status(StatusArgs),
    /// Remove deployed deckies: all of them, or one.
    Teardown(TeardownArgs),
    /// Manage the decky image.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Export the deployed fleet as a compose file.
    #[command(subcommand)]
    Compose(ComposeCommand),
    /// List the honeypot services.
    Services(ListArgs),
    /// List the archetypes (machine roles).
    Archetypes(ListArgs),
    /// List the distro personas.
    Distros(ListArgs),
    /// List the OS fingerprint families and their TCP/IP settings.
    OsFamilies(ListArgs),
    /// Install the systemd units, user and directories of a DECNET host (or --deinit).
    Init(Box<InitArgs>),
    /// Run the swarm controller (master): operator and worker listeners.
    Swarmctl(Box<crate::cmd::swarmctl::SwarmctlArgs>),
    /// Run the worker agent, or enroll this worker (`decnet agent enroll`).
    Agent(Box<crate::cmd::agent::AgentArgs>),
    /// Operate the swarm: enroll, list, check, deckies, teardown, decommission.
    #[command(subcommand)]
    Swarm(crate::cmd::swarm::SwarmCommand),
    /// Run the host's bus broker, or publish to / subscribe on it.
    Bus(Box<crate::cmd::bus::BusArgs>),
    /// Converge the state file, the database and Docker (a pass now, then every interval).
    Reconcile(Box<crate::cmd::reconcile::ReconcileArgs>),
    /// Collect the events of this host's deckies from Docker: into the database on a
    /// master, into the local spool (shipped by the agent) on a worker.
    Collect(Box<crate::cmd::collect::CollectArgs>),
    /// Show stored events (filters, --follow, --json lines), or import a file of them.
    Logs(Box<crate::cmd::logs::LogsArgs>),
    /// Show attacker addresses: first and last seen, events, deckies and services touched.
    Attackers(Box<crate::cmd::logs::AttackersArgs>),
}

/// `--json` for listings.
#[derive(Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `decnet status`.
#[derive(Args)]
pub struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `decnet deploy`: the reference's flags plus `--seed`, `--out` and `--json`.
#[derive(Args)]
pub struct DeployArgs {
    /// Deployment mode.
    #[arg(short, long, default_value = "unihost", value_parser = ["unihost", "swarm"])]
    pub mode: String,
    /// Number of deckies (required unless --config is given).
    #[arg(short = 'n', long, value_name = "N")]
    pub deckies: Option<u32>,
    /// Parent interface of the decky network (default: the default route's).
    #[arg(short, long)]
    pub interface: Option<String>,
    /// LAN subnet in CIDR form (default: the interface's).
    #[arg(long)]
    pub subnet: Option<String>,
    /// First address to allocate (flag path only).
    #[arg(long, value_name = "IP")]
    pub ip_start: Option<Ipv4Addr>,
    /// Comma-separated services for every decky.
    #[arg(long, value_delimiter = ',')]
    pub services: Option<Vec<String>>,
    /// Give each decky 1-3 random services.
    #[arg(long)]
    pub randomize_services: bool,
    /// Comma-separated distros, cycled over the deckies.
    #[arg(long, value_delimiter = ',')]
    pub distro: Option<Vec<String>>,
    /// Give each decky a random distro.
    #[arg(long)]
    pub randomize_distros: bool,
    /// Archetype of every decky (services, distros and OS family).
    #[arg(short, long)]
    pub archetype: Option<String>,
    /// Syslog receiver `host:port` (accepted for compatibility with the reference).
    #[arg(long, value_name = "HOST:PORT")]
    pub log_target: Option<String>,
    /// Host path of the collector's RFC 5424 log.
    #[arg(long, env = "DECNET_INGEST_LOG_FILE", value_name = "PATH")]
    pub log_file: Option<String>,
    /// Use IPvlan L2 instead of MACVLAN (Wi-Fi parents).
    #[arg(long)]
    pub ipvlan: bool,
    /// Minutes between service mutations (unset: per-decky INI values, else 30).
    #[arg(long, value_name = "MINUTES")]
    pub mutate_interval: Option<u32>,
    /// Deployment INI (the reference's format).
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Seed of every random choice, for a reproducible plan (printed when not given).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Only plan: print the plan and write the compose export; touch nothing else.
    #[arg(long)]
    pub dry_run: bool,
    /// Where a dry run writes the compose export (`-` for stdout).
    #[arg(long, value_name = "FILE", default_value = "decnet-compose.yml")]
    pub out: PathBuf,
    /// Rebuild the decky image even if it exists.
    #[arg(long)]
    pub no_cache: bool,
    /// Static decky binary to build the image from when it is missing (default:
    /// decnet-decky next to decnet).
    #[arg(long, env = "DECNET_DECKY_BIN", value_name = "PATH")]
    pub decky_bin: Option<PathBuf>,
    /// Deckies started at the same time.
    #[arg(long, value_name = "N", default_value_t = decnet_runtime::deploy::DEFAULT_JOBS,
        value_parser = clap::value_parser!(u16).range(1..=i64::from(decnet_runtime::deploy::MAX_JOBS)))]
    pub jobs: u16,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `decnet init`: the systemd deployment of a host, idempotent; every step prints OK,
/// SKIP, DRY or FAIL.
#[derive(Args)]
pub struct InitArgs {
    /// Which side's units to install and enable.
    #[arg(long, default_value = "master", value_parser = ["master", "agent"])]
    pub mode: String,
    /// Print every action; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not enable, start or restart anything.
    #[arg(long)]
    pub no_start: bool,
    /// Rewrite unit files and the binary even when they are unchanged.
    #[arg(long)]
    pub force: bool,
    /// Render into this root instead of / (packaging, tests): no root needed, no command
    /// runs, ownership is not applied.
    #[arg(long, value_name = "DIR")]
    pub prefix: Option<PathBuf>,
    /// User the daemons run as.
    #[arg(long, default_value = "decnet")]
    pub user: String,
    /// Group of the daemons (and of the bus socket).
    #[arg(long, default_value = "decnet")]
    pub group: String,
    /// Install directory (absolute).
    #[arg(long, value_name = "DIR", default_value = "/opt/decnet")]
    pub install_dir: PathBuf,
    /// The decnet binary the units run (default: <install-dir>/bin/decnet, copied from
    /// this one).
    #[arg(long, value_name = "PATH")]
    pub bin: Option<PathBuf>,
    /// Undo init: stop and disable every installed DECNET unit, remove what init wrote.
    #[arg(long)]
    pub deinit: bool,
    /// With --deinit: also remove data, logs, configuration, and the user and group.
    #[arg(long, requires = "deinit")]
    pub purge: bool,
    /// Print the steps as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `decnet teardown`.
#[derive(Args)]
pub struct TeardownArgs {
    /// Remove every decky, the decky network, the host's hairpin interface and the state.
    #[arg(long, required_unless_present = "id", conflicts_with = "id")]
    pub all: bool,
    /// Remove one decky (its containers, base included, and its state entry).
    #[arg(long, value_name = "DECKY")]
    pub id: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `decnet image …`.
#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build the decky image (FROM scratch, the static decnet-decky binary, no registry).
    Build(ImageBuildArgs),
}

/// `decnet image build`.
#[derive(Args)]
pub struct ImageBuildArgs {
    /// Static decky binary (default: decnet-decky next to decnet).
    #[arg(long, env = "DECNET_DECKY_BIN", value_name = "PATH")]
    pub decky_bin: Option<PathBuf>,
    /// Do not use Docker's build cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `decnet compose …`.
#[derive(Subcommand)]
pub enum ComposeCommand {
    /// Write the compose file of the deployed fleet (from the state file).
    Export(ComposeExportArgs),
}

/// `decnet compose export`.
#[derive(Args)]
pub struct ComposeExportArgs {
    /// Where to write it (`-` for stdout).
    #[arg(long, value_name = "FILE", default_value = "-")]
    pub out: PathBuf,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;
    use crate::cmd::agent::AgentAction;

    /// Enrollment tokens are URL-safe base64: one in 64 begins with `-`.
    #[test]
    fn an_enrollment_token_may_begin_with_a_hyphen() {
        let cli = Cli::try_parse_from([
            "decnet",
            "agent",
            "enroll",
            "--master",
            "https://127.0.0.1:8771",
            "--token",
            "-uQ3x_token",
            "--master-fingerprint",
            "ab",
        ])
        .unwrap();
        let Command::Agent(agent) = cli.command else {
            panic!("not the agent command");
        };
        let Some(AgentAction::Enroll(e)) = agent.action else {
            panic!("not enroll");
        };
        assert_eq!(e.token.as_deref(), Some("-uQ3x_token"));
    }
}
