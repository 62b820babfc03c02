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

/// The target that yields the smallest idle decky: musl (its static binary touches about
/// 0.9 MiB fewer pages at start than a static glibc one, which keeps every service under
/// 4 MiB RSS).
const MUSL: &str = "x86_64-unknown-linux-musl";

/// Whether the musl build can run here, installing what it needs when allowed: the
/// rust-std of the musl target (`rustup target add`) and `musl-gcc` (Debian's
/// musl-tools, as root) for the C parts of `ring`. `DECNET_DECKY_LIBC=glibc` skips it.
fn musl_ready(host: &str) -> bool {
    if !host.starts_with("x86_64-") || std::env::var("DECNET_DECKY_LIBC").as_deref() == Ok("glibc")
    {
        return false;
    }
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == MUSL)
        });
    if !installed
        && run(
            Command::new("rustup").args(["target", "add", MUSL]),
            "rustup target add x86_64-unknown-linux-musl",
        )
        .is_err()
    {
        return false;
    }
    let has_cc = || {
        Command::new("musl-gcc")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if has_cc() {
        return true;
    }
    if !crate::is_root() {
        return false;
    }
    run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "--no-install-recommends", "musl-tools"]),
        "apt-get install musl-tools",
    )
    .is_ok()
        && has_cc()
}

/// Builds `decnet-decky` as one static binary with the `decky` profile and returns its
/// path: for musl when [`musl_ready`], else statically linked against glibc
/// (`+crt-static`). The image is `FROM scratch`, so the binary must need no loader and
/// no library.
pub fn build(root: &Path) -> Result<PathBuf, String> {
    let host = host_triple()?;
    if musl_ready(&host) {
        match build_for(root, MUSL, &[("CC_x86_64_unknown_linux_musl", "musl-gcc")]) {
            Ok(bin) => return Ok(bin),
            Err(e) => eprintln!("xtask: {e}; falling back to a static glibc build"),
        }
    } else {
        eprintln!("xtask: musl target or musl-gcc unavailable; building a static glibc decky");
    }
    build_for(
        root,
        &host,
        // With --target, RUSTFLAGS reach only the target's crates, not build scripts or
        // proc macros, and the host build's cache is left alone.
        &[("RUSTFLAGS", "-C target-feature=+crt-static")],
    )
}

fn build_for(root: &Path, triple: &str, envs: &[(&str, &str)]) -> Result<PathBuf, String> {
    run(
        cargo().current_dir(root).envs(envs.iter().copied()).args([
            "build",
            "--profile",
            "decky",
            "--target",
            triple,
            "-p",
            "decnet-honeypot",
            "--bin",
            "decnet-decky",
        ]),
        &format!("build the static decnet-decky binary ({triple})"),
    )?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join(triple).join("decky").join("decnet-decky");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("{} was not built", bin.display()))
    }
}
