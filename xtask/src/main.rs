//! Developer automation: `cargo xtask test` (provision, then the whole suite) and
//! `cargo xtask demo` (the README's main job).
//!
//! Only the standard library, so it builds in seconds on a fresh machine.

mod decky;
mod demo;
mod fuzz;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  test [--no-lint] [--no-fuzz] [-- <cargo test args>]
        Provision every dependency the tests need (.ci/provision/*.sh, as root, from
        Debian packages, only when missing), build the static decky binary (the live
        tests get it as DECNET_DECKY_BIN), then run fmt and clippy checks, the whole
        test suite, and every fuzz target for a bounded time (10 s each, 30 s for the
        log-line and log-frame decoders; nightly and cargo-fuzz are installed when
        missing). .ci/run runs exactly this.
  demo [--yes]
        Run the main job, as root: install Docker from Debian if no engine answers
        (asking first; --yes for scripts), build the decky binary, create an isolated lab
        network (a veth pair and the `decnet-lab` namespace), start a master (swarm
        controller on 127.0.0.1:18770/18771) and one worker on this host (enrolled with a
        one-time token; agent over mutual TLS on 127.0.0.1:18765, bus broker,
        reconciler), let the master dispatch three live deckies to the worker, then print
        how to reach them. State, keys and logs live under ./demo-data.
  demo down
        Remove every trace of the demo: daemons, containers, network, hairpin, veth,
        namespace, ./demo-data.
  provision
        Only run the provisioning scripts and print the variables they export.
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&root, &args[1..]),
        Some("demo") => demo::demo(&root, &args[1..]),
        Some("provision") => provision(&root).map(|vars| {
            for (k, v) in vars {
                println!("{k}={v}");
            }
        }),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::from(1)
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs `.ci/provision/*.sh` in name order. Each script installs and starts one
/// dependency and prints `KEY=VALUE` lines (variables for the tests) on stdout.
fn provision(root: &Path) -> Result<BTreeMap<String, String>, String> {
    let dir = root.join(".ci/provision");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| format!("read {}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sh"))
        .collect();
    scripts.sort();
    let mut vars = BTreeMap::new();
    if !is_root() {
        eprintln!(
            "xtask: not root: skipping provisioning ({} scripts); live tests need their \
             dependencies installed, or DECNET_SKIP_LIVE=1",
            scripts.len()
        );
        return Ok(vars);
    }
    for script in scripts {
        eprintln!("xtask: provision {}", script.display());
        let out = Command::new("bash")
            .arg(&script)
            .current_dir(root)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!("{} failed ({})", script.display(), out.status));
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = line.split_once('=')
                && !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            {
                vars.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    Ok(vars)
}

pub(crate) fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    eprintln!("xtask: {what}");
    let status = cmd.status().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn test(root: &Path, args: &[String]) -> Result<(), String> {
    let lint = !args.iter().any(|a| a == "--no-lint");
    let fuzz = !args.iter().any(|a| a == "--no-fuzz");
    let passthrough: Vec<&String> = args.iter().skip_while(|a| *a != "--").skip(1).collect();
    let mut vars = provision(root)?;
    // The live tests build the decky image from this binary.
    let decky_bin = decky::build(root)?;
    vars.insert(
        "DECNET_DECKY_BIN".to_owned(),
        decky_bin.display().to_string(),
    );
    if lint {
        run(
            cargo()
                .current_dir(root)
                .args(["fmt", "--all", "--", "--check"]),
            "cargo fmt --check",
        )?;
        run(
            cargo().current_dir(root).args([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
            "cargo clippy -D warnings",
        )?;
    }
    let mut cmd = cargo();
    cmd.current_dir(root)
        .args(["test", "--workspace"])
        .envs(&vars);
    if !passthrough.is_empty() {
        cmd.arg("--").args(passthrough);
    }
    run(&mut cmd, "cargo test --workspace")?;
    if fuzz {
        fuzz::run_all(root)?;
    }
    Ok(())
}
