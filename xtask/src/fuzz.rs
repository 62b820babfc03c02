//! The bounded fuzz run of `cargo xtask test`: every cargo-fuzz target under `fuzz/` for
//! a fixed time (the log-pipeline decoders longer), on the nightly toolchain cargo-fuzz
//! needs. Installs nightly (`rustup toolchain install`) and cargo-fuzz (`cargo install`)
//! when missing, so a clean machine with rustup runs it too.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::run;

/// Seconds per target, and the targets that get longer.
const SECONDS: u32 = 10;
const LONG_SECONDS: u32 = 30;
const LONG: [&str; 2] = ["rfc5424_line", "rfc5425_frame"];

/// A `cargo` run through rustup on nightly, without the variables of the stable cargo
/// that started xtask.
fn nightly_cargo() -> Command {
    let mut c = Command::new("rustup");
    c.args(["run", "nightly", "cargo"]);
    for v in [
        "CARGO",
        "RUSTUP_TOOLCHAIN",
        "RUSTC",
        "RUSTDOC",
        "CARGO_TARGET_DIR",
    ] {
        c.env_remove(v);
    }
    c
}

fn quietly_ok(cmd: &mut Command) -> bool {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The targets named in `fuzz/Cargo.toml`.
fn targets(root: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(root.join("fuzz/Cargo.toml"))
        .map_err(|e| format!("read fuzz/Cargo.toml: {e}"))?;
    let mut out = Vec::new();
    let mut in_bin = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_bin = line == "[[bin]]";
        } else if in_bin
            && let Some(v) = line.strip_prefix("name")
            && let Some(v) = v.trim_start().strip_prefix('=')
        {
            out.push(v.trim().trim_matches('"').to_owned());
        }
    }
    if out.is_empty() {
        return Err("fuzz/Cargo.toml names no target".to_owned());
    }
    Ok(out)
}

/// Runs every target for a bounded time; a crash fails the run (libFuzzer keeps the
/// input under fuzz/artifacts/<target>/).
pub fn run_all(root: &Path) -> Result<(), String> {
    if !quietly_ok(nightly_cargo().arg("--version")) {
        run(
            Command::new("rustup").args([
                "toolchain",
                "install",
                "nightly",
                "--profile",
                "minimal",
            ]),
            "rustup toolchain install nightly (cargo-fuzz needs it)",
        )?;
    }
    if !quietly_ok(nightly_cargo().args(["fuzz", "--version"])) {
        run(
            nightly_cargo().args(["install", "cargo-fuzz", "--locked"]),
            "cargo install cargo-fuzz",
        )?;
    }
    for target in targets(root)? {
        let secs = if LONG.contains(&target.as_str()) {
            LONG_SECONDS
        } else {
            SECONDS
        };
        run(
            nightly_cargo().current_dir(root).args([
                "fuzz",
                "run",
                &target,
                "--",
                &format!("-max_total_time={secs}"),
                "-rss_limit_mb=2048",
                "-print_final_stats=0",
            ]),
            &format!("cargo fuzz run {target} ({secs} s)"),
        )?;
    }
    Ok(())
}
