//! `decnet image build`: the offline decky image.

use anyhow::Result;
use decnet_runtime::image::{ensure_image, locate_decky_bin, read_decky_bin};
use serde::Serialize;

use super::live;
use crate::cli::ImageBuildArgs;
use crate::exit::Status;
use crate::output;

#[derive(Serialize)]
struct Built<'a> {
    tag: &'a str,
    id: &'a str,
    binary: &'a std::path::Path,
}

pub fn build(args: &ImageBuildArgs) -> Result<Status> {
    let exe = std::env::current_exe().ok();
    let binary = locate_decky_bin(args.decky_bin.as_deref(), exe.as_deref())?;
    // Refused before Docker is contacted when it is not a static executable.
    read_decky_bin(&binary)?;
    let rt = live::runtime()?;
    let image = rt.block_on(async {
        let engine = live::engine().await?;
        let path = binary.clone();
        anyhow::Ok(ensure_image(&engine, move || Ok(path), true, args.no_cache).await?)
    })?;
    if args.json {
        output::json(&Built {
            tag: &image.tag,
            id: &image.id,
            binary: &binary,
        })?;
    } else {
        println!(
            "built {} ({}) from {}",
            image.tag,
            image.id,
            binary.display()
        );
    }
    Ok(Status::Ok)
}
