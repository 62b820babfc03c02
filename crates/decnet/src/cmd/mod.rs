//! One module per subcommand; [`run`] dispatches.

pub mod agent;
pub mod bus;
mod catalog;
pub mod collect;
mod compose;
mod db;
mod deploy;
mod image;
mod init;
mod live;
pub mod logs;
mod mirror;
pub mod reconcile;
mod status;
pub mod swarm;
pub mod swarmctl;
mod teardown;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::context::Ctx;
use crate::exit::Status;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<Status> {
    match cli.command {
        Command::Services(a) => catalog::services(a.json),
        Command::Archetypes(a) => catalog::archetypes(a.json),
        Command::Distros(a) => catalog::distros(a.json),
        Command::OsFamilies(a) => catalog::os_families(a.json),
        Command::Deploy(args) => deploy::run(&Ctx::load(cli.global.data_dir)?, &args),
        Command::Status(args) => status::run(&Ctx::load(cli.global.data_dir)?, &args),
        Command::Teardown(args) => teardown::run(&Ctx::load(cli.global.data_dir)?, &args),
        Command::Image(crate::cli::ImageCommand::Build(args)) => image::build(&args),
        Command::Compose(crate::cli::ComposeCommand::Export(args)) => {
            compose::export(&Ctx::load(cli.global.data_dir)?, &args)
        }
        Command::Init(args) => init::run(&Ctx::load(cli.global.data_dir)?, &args),
        Command::Swarmctl(args) => swarmctl::run(&Ctx::load(cli.global.data_dir)?, &args),
        Command::Agent(args) => agent::run(&Ctx::load(cli.global.data_dir)?, &args),
        Command::Swarm(cmd) => swarm::run(&Ctx::load(cli.global.data_dir)?, &cmd),
        Command::Bus(args) => bus::run(&Ctx::load(cli.global.data_dir)?, &args),
        Command::Reconcile(args) => reconcile::run(&Ctx::load(cli.global.data_dir)?, &args),
        Command::Collect(args) => collect::run(&Ctx::load(cli.global.data_dir)?, &args),
        Command::Logs(args) => logs::run(&Ctx::load(cli.global.data_dir)?, &args),
        Command::Attackers(args) => logs::attackers(&Ctx::load(cli.global.data_dir)?, &args),
    }
}
