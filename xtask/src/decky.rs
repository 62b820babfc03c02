//! Building the static `decnet-decky` binary the decky image is made of.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{cargo, run};

/// The host's target triple (`rustc -vV`).
fn host_triple() -> Result<String, String> {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()))
        .arg("-vV")
        .output()
        .map_err(|e| format!("rustc -vV: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_owned))
        .ok_or_else(|| "rustc -vV printed no host triple".to_owned())
}

/// Builds `decnet-decky` statically linked against glibc (`+crt-static`; the musl
/// target is not installed on a fresh machine) with the `decky` profile, and returns its
/// path. The image is `FROM scratch`, so the binary must need no loader and no library.
pub fn build(root: &Path) -> Result<PathBuf, String> {
    let triple = host_triple()?;
    run(
        cargo()
            .current_dir(root)
            // With --target, RUSTFLAGS reach only the target's crates, not build scripts
            // or proc macros, and the host build's cache is left alone.
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .args([
                "build",
                "--profile",
                "decky",
                "--target",
                &triple,
                "-p",
                "decnet-honeypot",
                "--bin",
                "decnet-decky",
            ]),
        "build the static decnet-decky binary",
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join(&triple).join("decky").join("decnet-decky");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} was not built", bin.display()))
    }
}
