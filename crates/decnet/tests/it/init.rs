//! `decnet init` end to end under `--prefix`: idempotence, deinit, bad input, dry run.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::process::{Command, Output};

use crate::support::{stderr, stdout};

/// A root with the directories a real one has before DECNET is installed
/// (`etc/polkit-1/rules.d` comes with polkitd, which `--mode agent` requires).
fn skeleton() -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for dir in [
        "etc/systemd/system",
        "etc/tmpfiles.d",
        "etc/logrotate.d",
        "etc/polkit-1/rules.d",
        "usr/local/sbin",
        "var/lib",
        "var/log",
        "opt",
        "run",
    ] {
        std::fs::create_dir_all(root.path().join(dir)).unwrap();
    }
    root
}

/// Every path under `root` with its mode and (for files) its length.
fn listing(root: &Path) -> Vec<(String, u32, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path.clone());
            }
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.push((
                rel,
                meta.mode() & 0o7777,
                if meta.is_dir() { 0 } else { meta.len() },
            ));
        }
    }
    out.sort();
    out
}

/// `decnet init --prefix <root> <args>`, with the system layout (no --data-dir) and a
/// clean DECNET_* environment.
fn init(root: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_decnet"));
    for (k, _) in std::env::vars() {
        if k.starts_with("DECNET_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("init").arg("--prefix").arg(root).args(args);
    cmd.output().unwrap()
}

fn outcomes(o: &Output) -> Vec<String> {
    stdout(o)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn init_twice_is_all_skip_and_deinit_restores_the_prefix() {
    for mode in ["master", "agent"] {
        let root = skeleton();
        let before = listing(root.path());

        let first = init(root.path(), &["--mode", mode]);
        assert!(
            first.status.success(),
            "{}{}",
            stdout(&first),
            stderr(&first)
        );
        let seen = outcomes(&first);
        assert!(
            seen.iter().all(|o| o == "OK" || o == "SKIP"),
            "{}",
            stdout(&first)
        );
        assert!(
            seen.iter().filter(|o| *o == "OK").count() >= 10,
            "{}",
            stdout(&first)
        );
        let unit = root.path().join(format!(
            "etc/systemd/system/decnet-{}.service",
            if mode == "master" {
                "swarmctl"
            } else {
                "agent"
            }
        ));
        assert!(unit.is_file(), "{mode}: {}", unit.display());
        // The units run the binary init installed: this very executable.
        let installed = std::fs::read(root.path().join("opt/decnet/bin/decnet")).unwrap();
        assert_eq!(
            installed,
            std::fs::read(env!("CARGO_BIN_EXE_decnet")).unwrap()
        );

        let second = init(root.path(), &["--mode", mode]);
        assert!(second.status.success());
        assert!(
            outcomes(&second).iter().all(|o| o == "SKIP"),
            "{}",
            stdout(&second)
        );
        assert_eq!(outcomes(&second).len(), seen.len());

        let gone = init(root.path(), &["--deinit"]);
        assert!(gone.status.success(), "{}{}", stdout(&gone), stderr(&gone));
        assert_eq!(listing(root.path()), before, "{mode}: {}", stdout(&gone));
    }
}

#[test]
fn bad_input_exits_2_and_changes_nothing() {
    let root = skeleton();
    let before = listing(root.path());
    for args in [
        &["--install-dir", "opt/decnet"][..],
        &["--install-dir", "/opt/dec net"],
        &["--user", "de;cnet"],
        &["--user", "$(reboot)"],
        &["--group", "Decnet"],
        &["--user", "root"],
        &["--bin", "decnet"],
        &["--mode", "worker"],
        &["--purge"],
    ] {
        let out = init(root.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{args:?}: {}", stdout(&out));
        assert_eq!(listing(root.path()), before, "{args:?}");
    }
}

#[test]
fn dry_run_json_lists_every_action_and_writes_nothing() {
    let root = skeleton();
    let before = listing(root.path());
    let out = init(root.path(), &["--dry-run", "--json", "--mode", "agent"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["mode"], "agent");
    assert_eq!(report["dry_run"], true);
    let steps = report["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .all(|s| s["outcome"] == "dry" || s["outcome"] == "skip")
    );
    let actions: Vec<&str> = steps
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    for action in [
        "file /etc/systemd/system/decnet-agent.service",
        "file /etc/systemd/system/decnet-collector.service",
        "file /etc/systemd/system/decnet.target",
        "file /etc/tmpfiles.d/decnet.conf",
        "file /etc/logrotate.d/decnet",
        "file /etc/decnet/decnet.ini",
        "directory /var/lib/decnet/db",
        "directory /var/lib/decnet/spool",
        "directory /var/lib/decnet/collector",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:#?}"
        );
    }
    assert_eq!(listing(root.path()), before);
}
