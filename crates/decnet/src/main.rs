//! `decnet`: the command line of every DECNET control-plane role.
//!
//! Thin by design: parse, resolve [`decnet_core::Settings`] once, call into the library
//! crates, print, and map errors to exit statuses (2 for bad input, 3 for partial success,
//! 1 for anything else, the cause chain on one line).

mod cli;
mod cmd;
mod context;
mod exit;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    context::init_tracing(cli.global.verbose);
    match cmd::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            eprintln!("decnet: {}", exit::one_line(&err));
            ExitCode::from(exit::code_for(&err))
        }
    }
}
