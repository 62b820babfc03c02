//! `init` and `deinit` over temporary roots: under `--prefix` (no host access) and against
//! a fake host (commands recorded, accounts simulated).

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use decnet_systemd::{
    DeinitOptions, InitOptions, Mode, Outcome, Step, System, deinit, init, render,
};

use crate::support::{FakeHost, fake_exe, skeleton, snapshot, vars};

fn init_opts(root: &Path, mode: Mode, exe: &Path) -> InitOptions {
    InitOptions {
        mode,
        vars: vars(),
        root: root.to_path_buf(),
        dry_run: false,
        no_start: false,
        force: false,
        exe: Some(exe.to_path_buf()),
    }
}

fn deinit_opts(root: &Path, purge: bool) -> DeinitOptions {
    DeinitOptions {
        vars: vars(),
        root: root.to_path_buf(),
        dry_run: false,
        purge,
    }
}

fn run_init(opts: &InitOptions, sys: Option<&mut dyn System>) -> Vec<Step> {
    init(opts, sys, &mut |_| {}).unwrap()
}

fn run_deinit(opts: &DeinitOptions, sys: Option<&mut dyn System>) -> Vec<Step> {
    deinit(opts, sys, &mut |_| {}).unwrap()
}

fn not_skipped(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .filter(|s| s.outcome != Outcome::Skip)
        .map(ToString::to_string)
        .collect()
}

fn failed(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .filter(|s| s.outcome == Outcome::Fail)
        .map(ToString::to_string)
        .collect()
}

fn at(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn prefix_init_is_idempotent_and_deinit_restores_the_root() {
    for mode in Mode::ALL {
        let root = skeleton();
        let r = root.path();
        let exe_dir = tempfile::tempdir().unwrap();
        let exe = fake_exe(exe_dir.path());
        let before = snapshot(r);
        let opts = init_opts(r, mode, &exe);

        let first = run_init(&opts, None);
        assert!(failed(&first).is_empty(), "{mode}: {:#?}", failed(&first));
        for f in render(mode, &opts.vars).unwrap() {
            let on_disk = at(r, f.path.to_str().unwrap());
            assert_eq!(
                std::fs::read_to_string(&on_disk).unwrap(),
                f.text,
                "{}",
                f.path.display()
            );
            assert_eq!(mode_of(&on_disk), f.mode, "{}", f.path.display());
        }
        assert_eq!(
            std::fs::read(at(r, "/opt/decnet/bin/decnet")).unwrap(),
            std::fs::read(&exe).unwrap()
        );
        assert_eq!(mode_of(&at(r, "/opt/decnet/bin/decnet")), 0o755);
        for (dir, want) in [
            ("/var/lib/decnet", 0o750),
            ("/var/lib/decnet/db", 0o750),
            ("/var/lib/decnet/spool", 0o750),
            ("/var/lib/decnet/collector", 0o750),
            ("/var/log/decnet", 0o750),
            ("/etc/decnet", 0o755),
            ("/opt/decnet", 0o755),
        ] {
            assert_eq!(mode_of(&at(r, dir)), want, "{dir}");
        }
        assert_eq!(
            std::fs::read(at(r, "/var/log/decnet/decnet.bus.log")).unwrap(),
            b""
        );
        assert_eq!(
            mode_of(&at(r, "/var/log/decnet/decnet.reconciler.log")),
            0o640
        );
        // Nothing touches the host under --prefix.
        assert!(
            first
                .iter()
                .any(|s| s.action == "systemctl daemon-reload"
                    && s.detail == "not run under --prefix")
        );

        let second = run_init(&opts, None);
        assert!(
            not_skipped(&second).is_empty(),
            "{mode}: second run changed {:#?}",
            not_skipped(&second)
        );
        assert_eq!(second.len(), first.len());

        let gone = run_deinit(&deinit_opts(r, false), None);
        assert!(failed(&gone).is_empty(), "{:#?}", failed(&gone));
        assert_eq!(snapshot(r), before, "{mode}: deinit left something behind");
    }
}

#[test]
fn dry_runs_change_nothing() {
    let root = skeleton();
    let r = root.path();
    let exe_dir = tempfile::tempdir().unwrap();
    let exe = fake_exe(exe_dir.path());
    let before = snapshot(r);
    let mut opts = init_opts(r, Mode::Master, &exe);
    opts.dry_run = true;
    let steps = run_init(&opts, None);
    assert_eq!(snapshot(r), before);
    assert!(
        steps
            .iter()
            .all(|s| matches!(s.outcome, Outcome::Dry | Outcome::Skip)),
        "{steps:#?}"
    );
    assert!(steps.iter().any(
        |s| s.action == "file /etc/systemd/system/decnet-bus.service" && s.outcome == Outcome::Dry
    ));

    opts.dry_run = false;
    run_init(&opts, None);
    let installed = snapshot(r);
    let mut undo = deinit_opts(r, true);
    undo.dry_run = true;
    let steps = run_deinit(&undo, None);
    assert_eq!(snapshot(r), installed);
    assert!(
        steps
            .iter()
            .any(|s| s.outcome == Outcome::Dry && s.action == "purge /var/lib/decnet")
    );
}

#[test]
fn deinit_keeps_logs_data_and_an_edited_config_unless_purge() {
    let root = skeleton();
    let r = root.path();
    let exe_dir = tempfile::tempdir().unwrap();
    let exe = fake_exe(exe_dir.path());
    let before = snapshot(r);
    run_init(&init_opts(r, Mode::Master, &exe), None);
    std::fs::write(at(r, "/var/log/decnet/decnet.bus.log"), "listening\n").unwrap();
    std::fs::write(at(r, "/var/lib/decnet/db/decnet.db"), "rows").unwrap();
    std::fs::write(
        at(r, "/var/lib/decnet/spool/00000000000000000000.seg"),
        "frames",
    )
    .unwrap();
    // The collector never wrote cursors: its directory is empty, an artifact of init.
    assert!(at(r, "/var/lib/decnet/collector").is_dir());
    let ini = at(r, "/etc/decnet/decnet.ini");
    let edited = format!(
        "{}\n[api]\nport = 9000\n",
        std::fs::read_to_string(&ini).unwrap()
    );
    std::fs::write(&ini, &edited).unwrap();

    let steps = run_deinit(&deinit_opts(r, false), None);
    assert!(failed(&steps).is_empty(), "{:#?}", failed(&steps));
    assert_eq!(
        std::fs::read_to_string(at(r, "/var/log/decnet/decnet.bus.log")).unwrap(),
        "listening\n"
    );
    assert!(
        !at(r, "/var/log/decnet/decnet.reconciler.log").exists(),
        "an empty log init created"
    );
    assert_eq!(std::fs::read_to_string(&ini).unwrap(), edited);
    assert!(at(r, "/var/lib/decnet/db/decnet.db").exists());
    assert_eq!(
        std::fs::read_to_string(at(r, "/var/lib/decnet/spool/00000000000000000000.seg")).unwrap(),
        "frames",
        "unshipped events are data: kept"
    );
    assert!(
        !at(r, "/var/lib/decnet/collector").exists(),
        "empty: removed"
    );
    assert!(!at(r, "/etc/systemd/system/decnet-bus.service").exists());
    assert!(!at(r, "/etc/systemd/system/decnet-collector.service").exists());
    assert!(!at(r, "/etc/systemd/system/decnet.target").exists());
    assert!(!at(r, "/etc/tmpfiles.d/decnet.conf").exists());
    assert!(!at(r, "/opt/decnet").exists());

    let steps = run_deinit(&deinit_opts(r, true), None);
    assert!(failed(&steps).is_empty(), "{:#?}", failed(&steps));
    assert_eq!(snapshot(r), before);
}

#[test]
fn switching_mode_replaces_the_other_sides_units() {
    let root = skeleton();
    let r = root.path();
    let exe_dir = tempfile::tempdir().unwrap();
    let exe = fake_exe(exe_dir.path());
    run_init(&init_opts(r, Mode::Master, &exe), None);
    assert!(at(r, "/etc/systemd/system/decnet-swarmctl.service").exists());
    let steps = run_init(&init_opts(r, Mode::Agent, &exe), None);
    assert!(failed(&steps).is_empty(), "{:#?}", failed(&steps));
    assert!(!at(r, "/etc/systemd/system/decnet-swarmctl.service").exists());
    assert!(at(r, "/etc/systemd/system/decnet-agent.service").exists());
    let changed = not_skipped(&steps);
    assert!(
        changed
            .iter()
            .any(|s| s.contains("remove /etc/systemd/system/decnet-swarmctl.service")),
        "{changed:#?}"
    );
    assert!(
        changed
            .iter()
            .any(|s| s.contains("file /etc/systemd/system/decnet.target")),
        "{changed:#?}"
    );
    // The operator's (placeholder) config is never overwritten.
    assert!(
        !changed.iter().any(|s| s.contains("decnet.ini")),
        "{changed:#?}"
    );
}

#[test]
fn force_rewrites_and_edits_are_repaired() {
    let root = skeleton();
    let r = root.path();
    let exe_dir = tempfile::tempdir().unwrap();
    let exe = fake_exe(exe_dir.path());
    let mut opts = init_opts(r, Mode::Master, &exe);
    run_init(&opts, None);
    let unit = at(r, "/etc/systemd/system/decnet-bus.service");
    let good = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(
        &unit,
        good.replace("NoNewPrivileges=yes", "NoNewPrivileges=no"),
    )
    .unwrap();
    std::fs::set_permissions(
        at(r, "/var/lib/decnet"),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let steps = run_init(&opts, None);
    let changed: Vec<String> = steps
        .iter()
        .filter(|s| s.outcome == Outcome::Ok)
        .map(ToString::to_string)
        .collect();
    assert_eq!(changed.len(), 2, "{changed:#?}");
    assert!(
        changed[0].contains("directory /var/lib/decnet: fixed mode 0777 -> 0750"),
        "{changed:#?}"
    );
    assert!(
        changed[1].contains("decnet-bus.service: update content"),
        "{changed:#?}"
    );
    assert_eq!(std::fs::read_to_string(&unit).unwrap(), good);

    opts.force = true;
    let steps = run_init(&opts, None);
    let rewritten = steps
        .iter()
        .filter(|s| s.detail.starts_with("rewrite (--force)"))
        .count();
    // Every rendered file except the host config (never overwritten), and the binary.
    let files = render(Mode::Master, &opts.vars).unwrap().len();
    assert_eq!(rewritten, files - 1 + 1, "{steps:#?}");
}

#[test]
fn a_fresh_host_gets_accounts_entries_and_a_started_target() {
    let root = skeleton();
    let r = root.path();
    let exe_dir = tempfile::tempdir().unwrap();
    let exe = fake_exe(exe_dir.path());
    let before = snapshot(r);
    let mut host = FakeHost::new(r);
    let opts = init_opts(r, Mode::Master, &exe);

    let steps = run_init(&opts, Some(&mut host));
    assert!(failed(&steps).is_empty(), "{:#?}", failed(&steps));
    assert_eq!(
        host.take(),
        [
            "groupadd --system decnet",
            "useradd --system --gid decnet --home-dir /var/lib/decnet --no-create-home --shell /usr/sbin/nologin decnet",
            "systemd-tmpfiles --create /etc/tmpfiles.d/decnet.conf",
            "systemctl daemon-reload",
            "systemctl enable --now decnet.target",
        ]
    );
    assert_eq!(mode_of(&at(r, "/run/decnet")), 0o750);

    let steps = run_init(&opts, Some(&mut host));
    assert!(not_skipped(&steps).is_empty(), "{:#?}", not_skipped(&steps));
    assert!(host.take().is_empty());

    // An edited unit of a running fleet: rewritten, reloaded, restarted; nothing else.
    let unit = at(r, "/etc/systemd/system/decnet-reconciler.service");
    std::fs::write(&unit, "[Unit]\n").unwrap();
    run_init(&opts, Some(&mut host));
    assert_eq!(
        host.take(),
        [
            "systemctl daemon-reload",
            "systemctl try-restart decnet-reconciler.service"
        ]
    );

    // A unit outside the target (started by hand) is stopped and removed too.
    std::fs::write(
        at(r, "/etc/systemd/system/decnet-extra.service"),
        "[Unit]\n",
    )
    .unwrap();
    let steps = run_deinit(&deinit_opts(r, true), Some(&mut host));
    assert!(failed(&steps).is_empty(), "{:#?}", failed(&steps));
    let mut units: Vec<String> = render(Mode::Master, &opts.vars)
        .unwrap()
        .iter()
        .filter_map(|f| f.unit_name().map(str::to_owned))
        .filter(|u| u != "decnet.target")
        .chain(["decnet-extra.service".to_owned()])
        .collect();
    units.sort();
    assert_eq!(
        host.take(),
        [
            format!("systemctl disable --now decnet.target {}", units.join(" ")),
            "systemctl daemon-reload".to_owned(),
            "userdel decnet".to_owned(),
            "groupdel decnet".to_owned(),
        ]
    );
    assert_eq!(snapshot(r), before);
}

#[test]
fn refusals_happen_before_any_change() {
    let root = skeleton();
    let r = root.path();
    let exe_dir = tempfile::tempdir().unwrap();
    let exe = fake_exe(exe_dir.path());
    let before = snapshot(r);
    let opts = init_opts(r, Mode::Agent, &exe);

    let mut host = FakeHost::new(r);
    host.is_root = false;
    let steps = run_init(&opts, Some(&mut host));
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].outcome, Outcome::Fail);
    assert!(steps[0].detail.contains("must run as root"), "{}", steps[0]);
    assert!(host.take().is_empty());
    assert_eq!(snapshot(r), before);

    // Without Docker the reconciler and agent could not start: stop before writing files.
    let mut host = FakeHost::new(r);
    host.groups.remove("docker");
    let steps = run_init(&opts, Some(&mut host));
    let last = steps.last().unwrap();
    assert_eq!(
        (last.outcome, last.action.as_str()),
        (Outcome::Fail, "group docker")
    );
    assert_eq!(snapshot(r), before);
}

#[test]
fn planted_links_and_fifos_are_refused_not_followed() {
    let root = skeleton();
    let r = root.path();
    let exe_dir = tempfile::tempdir().unwrap();
    let exe = fake_exe(exe_dir.path());
    let opts = init_opts(r, Mode::Master, &exe);
    run_init(&opts, None);
    // What a compromised daemon could leave in the directories it owns.
    let secret = exe_dir.path().join("secret");
    std::fs::write(&secret, "x").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let log = at(r, "/var/log/decnet/decnet.bus.log");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&secret, &log).unwrap();
    let fifo = at(r, "/var/log/decnet/decnet.swarmctl.log");
    std::fs::remove_file(&fifo).unwrap();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let elsewhere = exe_dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(
        &elsewhere,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let db = at(r, "/var/lib/decnet/db");
    std::fs::remove_dir(&db).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &db).unwrap();

    // Dry run: it goes on after a FAIL, so every planted entry is reported.
    let mut dry = init_opts(r, Mode::Master, &exe);
    dry.dry_run = true;
    let fails = failed(&run_init(&dry, None));
    assert_eq!(fails.len(), 3, "{fails:#?}");
    assert!(fails[0].contains("directory /var/lib/decnet/db: exists and is not a directory"));
    assert!(fails[1].contains("decnet.bus.log: exists and is not a regular file"));
    assert!(fails[2].contains("decnet.swarmctl.log: exists and is not a regular file"));
    // A real run stops at the first one.
    assert_eq!(failed(&run_init(&opts, None)).len(), 1);
    assert_eq!(mode_of(&secret), 0o600);
    assert_eq!(mode_of(&elsewhere), 0o700);
}

#[test]
fn an_agent_gets_the_reaper_unit_its_root_script_and_the_polkit_rule() {
    let root = skeleton();
    let r = root.path();
    let exe_dir = tempfile::tempdir().unwrap();
    let exe = fake_exe(exe_dir.path());
    let before = snapshot(r);
    let mut host = FakeHost::new(r);
    let opts = init_opts(r, Mode::Agent, &exe);
    let steps = run_init(&opts, Some(&mut host));
    assert!(failed(&steps).is_empty(), "{:#?}", failed(&steps));
    assert!(
        steps
            .iter()
            .any(|s| s.action == "polkit" && s.outcome == Outcome::Skip && s.detail == "present"),
        "{steps:#?}"
    );
    let rule = at(r, "/etc/polkit-1/rules.d/50-decnet-reaper.rules");
    let script = at(r, "/usr/local/sbin/decnet-reaper");
    let unit = at(r, "/etc/systemd/system/decnet-reaper.service");
    assert_eq!(mode_of(&rule), 0o644);
    assert_eq!(mode_of(&script), 0o700);
    assert_eq!(mode_of(&unit), 0o644);
    let text = std::fs::read_to_string(&rule).unwrap();
    assert!(text.contains("action.lookup(\"unit\") === \"decnet-reaper.service\""));
    assert!(text.contains("subject.user === \"decnet\""));
    assert!(
        std::fs::read_to_string(&unit)
            .unwrap()
            .contains("ExecStart=/bin/sh /usr/local/sbin/decnet-reaper\n")
    );
    // The reaper is never enabled, started or restarted by init: only the target is.
    let commands = host.take();
    assert!(
        !commands.iter().any(|c| c.contains("decnet-reaper")),
        "{commands:#?}"
    );
    assert!(commands.contains(&"systemctl enable --now decnet.target".to_owned()));
    // A new binary restarts every running daemon, never the reaper.
    let newer = exe_dir.path().join("decnet-newer");
    std::fs::write(&newer, b"#!/bin/sh\nexit 1\n").unwrap();
    let upgrade = init_opts(r, Mode::Agent, &newer);
    let steps = run_init(&upgrade, Some(&mut host));
    assert!(failed(&steps).is_empty(), "{:#?}", failed(&steps));
    let commands = host.take();
    let restart = commands
        .iter()
        .find(|c| c.starts_with("systemctl try-restart"))
        .unwrap_or_else(|| panic!("{commands:#?}"));
    assert!(restart.contains("decnet-agent.service"), "{restart}");
    assert!(!restart.contains("decnet-reaper"), "{restart}");

    let steps = run_deinit(&deinit_opts(r, true), Some(&mut host));
    assert!(failed(&steps).is_empty(), "{:#?}", failed(&steps));
    assert!(!rule.exists() && !script.exists() && !unit.exists());
    assert_eq!(snapshot(r), before);
}

#[test]
fn an_agent_without_polkitd_is_refused_before_any_change() {
    let root = skeleton();
    let r = root.path();
    let exe_dir = tempfile::tempdir().unwrap();
    let exe = fake_exe(exe_dir.path());
    let before = snapshot(r);
    let mut host = FakeHost::new(r);
    host.missing.insert("pkaction".to_owned());
    let steps = run_init(&init_opts(r, Mode::Agent, &exe), Some(&mut host));
    let last = steps.last().unwrap();
    assert_eq!(
        (last.outcome, last.action.as_str()),
        (Outcome::Fail, "polkit")
    );
    assert!(last.detail.contains("apt-get install polkitd"), "{last}");
    assert!(
        last.detail
            .contains("/etc/polkit-1/rules.d/50-decnet-reaper.rules"),
        "{last}"
    );
    assert_eq!(snapshot(r), before);
    // The master side installs no polkit rule and does not need polkitd.
    let steps = run_init(&init_opts(r, Mode::Master, &exe), Some(&mut host));
    assert!(failed(&steps).is_empty(), "{:#?}", failed(&steps));
    assert!(!steps.iter().any(|s| s.action == "polkit"));
}

#[test]
fn switching_an_agent_to_master_removes_the_reaper_and_its_rule() {
    let root = skeleton();
    let r = root.path();
    let exe_dir = tempfile::tempdir().unwrap();
    let exe = fake_exe(exe_dir.path());
    run_init(&init_opts(r, Mode::Agent, &exe), None);
    let rule = at(r, "/etc/polkit-1/rules.d/50-decnet-reaper.rules");
    let script = at(r, "/usr/local/sbin/decnet-reaper");
    assert!(rule.exists() && script.exists());
    let steps = run_init(&init_opts(r, Mode::Master, &exe), None);
    assert!(failed(&steps).is_empty(), "{:#?}", failed(&steps));
    assert!(!rule.exists() && !script.exists());
    assert!(!at(r, "/etc/systemd/system/decnet-reaper.service").exists());
    let changed = not_skipped(&steps);
    for path in [
        "/etc/polkit-1/rules.d/50-decnet-reaper.rules",
        "/usr/local/sbin/decnet-reaper",
        "/etc/systemd/system/decnet-reaper.service",
    ] {
        assert!(
            changed
                .iter()
                .any(|s| s.contains(&format!("remove {path}: stale"))),
            "{path}: {changed:#?}"
        );
    }
    // On a master, absent agent files are not even mentioned.
    let again = run_init(&init_opts(r, Mode::Master, &exe), None);
    assert!(!again.iter().any(|s| s.action.contains("decnet-reaper")));
}
