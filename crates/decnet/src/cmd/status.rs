//! `decnet status`: the fleet recorded in the state file, joined with the runtime.

use anyhow::Result;
use decnet_core::state;
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::context::Ctx;
use crate::exit::Status;
use crate::output;

/// The status shape, shared with the swarm agent's `/status`.
#[derive(Serialize)]
struct StatusReport<'a> {
    deployed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<decnet_core::Mode>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compose_path: Option<&'a std::path::Path>,
    deckies: &'a [decnet_core::DeckyConfig],
    /// `null`: the runtime could not be observed (unknown, not "gone").
    runtime: Option<serde_json::Value>,
}

pub fn run(ctx: &Ctx, args: &StatusArgs) -> Result<Status> {
    let loaded = state::load(&ctx.settings.state_file)?;
    let Some(st) = loaded else {
        if args.json {
            output::json(&StatusReport {
                deployed: false,
                mode: None,
                compose_path: None,
                deckies: &[],
                runtime: None,
            })?;
        } else {
            println!(
                "nothing deployed ({} does not exist)",
                ctx.settings.state_file.display()
            );
        }
        return Ok(Status::Ok);
    };
    if args.json {
        output::json(&StatusReport {
            deployed: true,
            mode: Some(st.config.mode),
            compose_path: Some(&st.compose_path),
            deckies: &st.config.deckies,
            runtime: None,
        })?;
        return Ok(Status::Ok);
    }
    println!(
        "{} deckies, mode {}, interface {}, subnet {}",
        st.config.deckies.len(),
        st.config.mode,
        st.config.interface,
        st.config.subnet
    );
    let mut t = output::table(&["DECKY", "IP", "HOSTNAME", "SERVICES", "STATE"]);
    for d in &st.config.deckies {
        t.add_row(vec![
            d.name.to_string(),
            d.ip.to_string(),
            d.hostname.clone(),
            d.services.join(", "),
            "unknown (runtime not observed)".to_owned(),
        ]);
    }
    println!("{t}");
    Ok(Status::Ok)
}
