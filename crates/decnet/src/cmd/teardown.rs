//! `decnet teardown --all | --id <decky>`: remove exactly what DECNET created.

use anyhow::Result;
use decnet_core::state;
use decnet_runtime::hairpin::NetlinkHostNetwork;
use decnet_runtime::hostnet;
use decnet_runtime::teardown::{TeardownOptions, TeardownReport, teardown_all, teardown_decky};

use super::{live, mirror};
use crate::cli::TeardownArgs;
use crate::context::Ctx;
use crate::exit::Status;
use crate::output;

pub fn run(ctx: &Ctx, args: &TeardownArgs) -> Result<Status> {
    let project = live::project(&ctx.settings)?;
    let rt = live::runtime()?;
    let report: TeardownReport = rt.block_on(async {
        let engine = live::engine().await?;
        let mut opts = TeardownOptions {
            project: project.clone(),
            ..TeardownOptions::default()
        };
        let report = match &args.id {
            None => teardown_all(&engine, &NetlinkHostNetwork, &ctx.settings, &opts).await?,
            Some(name) => {
                // The hairpin keeps off the host's own address; find it as deploy did.
                opts.host_ip = state::load(&ctx.settings.state_file)
                    .ok()
                    .flatten()
                    .and_then(|s| hostnet::host_ip_on(&s.config.interface, s.config.subnet));
                teardown_decky(&engine, &NetlinkHostNetwork, &ctx.settings, name, &opts).await?
            }
        };
        anyhow::Ok(report)
    })?;
    if report.failed.is_empty() {
        mirror::after_teardown(ctx, args.id.as_deref());
    }
    if args.json {
        output::json(&report)?;
    } else {
        if report.removed.is_empty() {
            println!("no container to remove");
        } else {
            println!(
                "removed {} container(s): {}",
                report.removed.len(),
                report.removed.join(", ")
            );
        }
        for (name, why) in &report.failed {
            println!("could not remove {name}: {why}");
        }
        if report.network_removed {
            println!("removed network {}", project.network());
        }
        if report.hairpin_removed {
            println!("removed the host's hairpin interface");
        }
        if report.state_cleared {
            println!("nothing is deployed any more");
        } else if !report.remaining.is_empty() {
            println!("still deployed: {}", report.remaining.join(", "));
        }
    }
    if report.failed.is_empty() {
        Ok(Status::Ok)
    } else {
        Err(anyhow::anyhow!(
            "{} container(s) could not be removed; the network and state were kept, run the teardown again",
            report.failed.len()
        ))
    }
}
