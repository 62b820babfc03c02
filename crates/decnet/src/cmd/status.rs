//! `decnet status`: the fleet recorded in the state file, joined with the runtime.

use anyhow::Result;
use decnet_core::state;
use decnet_runtime::status::{RuntimeMap, runtime_map};
use serde::Serialize;

use super::live;
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
    runtime: Option<RuntimeMap>,
    /// Why the runtime is unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime_error: Option<String>,
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
                runtime_error: None,
            })?;
        } else {
            println!(
                "nothing deployed ({} does not exist)",
                ctx.settings.state_file.display()
            );
        }
        return Ok(Status::Ok);
    };
    let project = live::project(&ctx.settings)?;
    let observed: Result<RuntimeMap> = live::runtime()?.block_on(async {
        let engine = live::engine().await?;
        Ok(runtime_map(&engine, &st.config, &project)
            .await
            .map_err(decnet_runtime::Error::Engine)?)
    });
    let (runtime, runtime_error) = match observed {
        Ok(map) => (Some(map), None),
        Err(e) => (None, Some(crate::exit::one_line(&e))),
    };
    if args.json {
        output::json(&StatusReport {
            deployed: true,
            mode: Some(st.config.mode),
            compose_path: Some(&st.compose_path),
            deckies: &st.config.deckies,
            runtime,
            runtime_error,
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
    let mut t = output::table(&["DECKY", "IP", "HOSTNAME", "STATE", "SERVICES"]);
    for d in &st.config.deckies {
        let (state, services) = match runtime.as_ref().and_then(|m| m.get(d.name.as_str())) {
            Some(rt) => (
                rt.state.as_str().to_owned(),
                std::iter::once(format!("base: {}", rt.base))
                    .chain(rt.services.iter().map(|(s, st)| format!("{s}: {st}")))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            None => ("unknown".to_owned(), d.services.join(", ")),
        };
        t.add_row(vec![
            d.name.to_string(),
            d.ip.to_string(),
            d.hostname.clone(),
            state,
            services,
        ]);
    }
    println!("{t}");
    if let Some(e) = runtime_error {
        println!("runtime unknown (this is not \"nothing runs\"): {e}");
    }
    Ok(Status::Ok)
}
