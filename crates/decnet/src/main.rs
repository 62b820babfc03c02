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

/// mimalloc instead of glibc's malloc: the log pipeline allocates a few small objects per
/// event (parsed fields, rows, JSON) across threads, and glibc's allocator was 17 % of
/// the end-to-end profile; with mimalloc the same run went from ~47k to ~54k events/s
/// (docs/benchmarks.md, log forwarding).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
