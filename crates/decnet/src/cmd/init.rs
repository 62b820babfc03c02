//! `decnet init`: install the systemd units and what they need, or `--deinit` them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use decnet_systemd::{
    DeinitOptions, HostSystem, InitOptions, Mode, Step, System, Vars, any_failed, deinit, init,
};
use serde::Serialize;

use crate::cli::InitArgs;
use crate::context::Ctx;
use crate::exit::{Status, invalid};
use crate::output;

#[derive(Serialize)]
struct Report<'a> {
    mode: Mode,
    deinit: bool,
    purge: bool,
    dry_run: bool,
    prefix: Option<&'a Path>,
    steps: &'a [Step],
}

/// Runs init or deinit and prints each step as it ends (or all of them as JSON).
///
/// # Errors
/// Bad input (exit status 2, nothing changed); a failed init step (exit status 1, the
/// steps before it stay done: a re-run continues from there). A deinit with failed steps
/// returns [`Status::Partial`].
pub fn run(ctx: &Ctx, args: &InitArgs) -> Result<Status> {
    let mode: Mode = args
        .mode
        .parse()
        .map_err(|e: decnet_systemd::Error| invalid(e.to_string()))?;
    let vars = Vars::new(
        &args.user,
        &args.group,
        &args.install_dir,
        args.bin.as_deref(),
        &ctx.settings,
    )
    .map_err(|e| invalid(e.to_string()))?;
    let prefix = match &args.prefix {
        Some(p) => {
            let p = std::path::absolute(p)
                .with_context(|| format!("resolve --prefix {}", p.display()))?;
            if p.parent().is_none() {
                return Err(invalid("--prefix / is the host itself: leave --prefix out"));
            }
            Some(p)
        }
        None => None,
    };
    let root = prefix.clone().unwrap_or_else(|| PathBuf::from("/"));
    let mut host = HostSystem;
    // Under --prefix nothing touches the host: no command, no account lookup.
    let sys: Option<&mut dyn System> = if prefix.is_some() {
        None
    } else {
        Some(&mut host)
    };
    let json = args.json;
    let mut print = |step: &Step| {
        // A closed stdout (`| head`) must not stop init half-way: the steps go on.
        if !json {
            let _ = writeln!(std::io::stdout(), "{step}");
        }
    };
    let steps = if args.deinit {
        let opts = DeinitOptions {
            vars,
            root,
            dry_run: args.dry_run,
            purge: args.purge,
        };
        deinit(&opts, sys, &mut print)?
    } else {
        let opts = InitOptions {
            mode,
            vars,
            root,
            dry_run: args.dry_run,
            no_start: args.no_start,
            force: args.force,
            exe: std::env::current_exe().ok(),
        };
        init(&opts, sys, &mut print)?
    };
    if json {
        output::json(&Report {
            mode,
            deinit: args.deinit,
            purge: args.purge,
            dry_run: args.dry_run,
            prefix: prefix.as_deref(),
            steps: &steps,
        })?;
    }
    if !any_failed(&steps) {
        return Ok(Status::Ok);
    }
    if args.deinit {
        return Ok(Status::Partial);
    }
    match steps
        .iter()
        .find(|s| s.outcome == decnet_systemd::Outcome::Fail)
    {
        Some(step) => bail!("init stopped at: {}: {}", step.action, step.detail),
        None => bail!("init failed"),
    }
}
