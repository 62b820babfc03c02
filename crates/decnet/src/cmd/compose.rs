//! `decnet compose export`: the compose file of the deployed fleet, from the state file.

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context as _, Result};
use decnet_core::state;
use decnet_runtime::{compose, spec};

use super::deploy::read_instance_key;
use crate::cli::ComposeExportArgs;
use crate::context::Ctx;
use crate::exit::{Status, invalid};

pub fn export(ctx: &Ctx, args: &ComposeExportArgs) -> Result<Status> {
    let Some(st) = state::load(&ctx.settings.state_file)? else {
        return Err(invalid(format!(
            "nothing is deployed ({} does not exist)",
            ctx.settings.state_file.display()
        )));
    };
    let key = read_instance_key(&ctx.settings)?;
    let specs = spec::fleet_containers(
        &st.config,
        &spec::SpecOptions::new(spec::image_tag(), ctx.settings.artifacts_dir.clone(), key)
            .with_project(super::live::project(&ctx.settings)?),
    );
    let note = key
        .is_none()
        .then_some("no instance key yet: DECNET_SEED is filled in by `decnet deploy`");
    let text = compose::render(&st.config, &specs, note);
    if args.out == Path::new("-") {
        std::io::stdout().write_all(text.as_bytes())?;
    } else {
        std::fs::write(&args.out, &text)
            .with_context(|| format!("write {}", args.out.display()))?;
        eprintln!("compose export written to {}", args.out.display());
    }
    Ok(Status::Ok)
}
