//! The polkit rule that lets the agent start `decnet-reaper.service`: evaluated by a node
//! harness against fake `action`/`subject` objects, and by polkitd itself (its own
//! JavaScript engine, duktape on Debian 12) through `pkcheck` on a private system bus.

use std::io::{BufRead as _, BufReader, Read as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use decnet_systemd::registry::Kind;
use decnet_systemd::{Mode, Vars, render};

/// How long polkitd and dbus-daemon get to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

const MANAGE_UNITS: &str = "org.freedesktop.systemd1.manage-units";
const MANAGE_UNIT_FILES: &str = "org.freedesktop.systemd1.manage-unit-files";

/// A path from the provisioning script (`.ci/provision/17-polkit.sh`); `None` when live
/// tests are skipped.
fn provisioned(var: &str) -> Option<PathBuf> {
    match std::env::var(var) {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ if std::env::var("DECNET_SKIP_LIVE").as_deref() == Ok("1") => {
            eprintln!("{var} is not set and DECNET_SKIP_LIVE=1: skipping");
            None
        }
        _ => panic!(
            "{var} is not set: run `.ci/provision/17-polkit.sh` (as root) and export the lines \
             it prints, or set DECNET_SKIP_LIVE=1 to skip live tests"
        ),
    }
}

/// The agent side's rendered polkit rule for daemon user `user`.
fn rule(user: &str, group: &str) -> String {
    let vars = Vars::new(
        user,
        group,
        Path::new("/opt/decnet"),
        None,
        &decnet_core::Settings::system(),
    )
    .unwrap();
    let rules: Vec<String> = render(Mode::Agent, &vars)
        .unwrap()
        .into_iter()
        .filter(|r| matches!(r.kind, Kind::Polkit { .. }))
        .map(|r| {
            assert_eq!(
                r.path,
                Path::new("/etc/polkit-1/rules.d/50-decnet-reaper.rules")
            );
            r.text
        })
        .collect();
    assert_eq!(rules.len(), 1);
    rules.into_iter().next().unwrap()
}

/// One authorization question: who asks, for which action, with which details.
struct Case {
    what: &'static str,
    user: &'static str,
    groups: &'static [&'static str],
    action: &'static str,
    details: &'static [(&'static str, &'static str)],
    allowed: bool,
}

const REAPER: &[(&str, &str)] = &[("unit", "decnet-reaper.service"), ("verb", "start")];

/// The questions, for a rule rendered with user `decnet` (group `decnet`).
const CASES: &[Case] = &[
    Case {
        what: "the agent starts the reaper (StartUnit: systemd passes unit and verb)",
        user: "decnet",
        groups: &["decnet", "docker"],
        action: MANAGE_UNITS,
        details: REAPER,
        allowed: true,
    },
    Case {
        what: "a transient unit on systemd 252 (StartTransientUnit passes no details)",
        user: "decnet",
        groups: &["decnet"],
        action: MANAGE_UNITS,
        details: &[],
        allowed: false,
    },
    Case {
        what: "a transient unit named like the reaper (newer systemd passes its name)",
        user: "decnet",
        groups: &["decnet"],
        action: MANAGE_UNITS,
        details: &[("unit", "decnet-reaper-123.service"), ("verb", "start")],
        allowed: false,
    },
    Case {
        what: "another DECNET unit",
        user: "decnet",
        groups: &["decnet"],
        action: MANAGE_UNITS,
        details: &[("unit", "decnet-agent.service"), ("verb", "start")],
        allowed: false,
    },
    Case {
        what: "stopping the reaper",
        user: "decnet",
        groups: &["decnet"],
        action: MANAGE_UNITS,
        details: &[("unit", "decnet-reaper.service"), ("verb", "stop")],
        allowed: false,
    },
    Case {
        what: "restarting the reaper",
        user: "decnet",
        groups: &["decnet"],
        action: MANAGE_UNITS,
        details: &[("unit", "decnet-reaper.service"), ("verb", "restart")],
        allowed: false,
    },
    Case {
        what: "another action with the same details",
        user: "decnet",
        groups: &["decnet"],
        action: MANAGE_UNIT_FILES,
        details: REAPER,
        allowed: false,
    },
    Case {
        what: "a person in the decnet group",
        user: "alice",
        groups: &["alice", "decnet"],
        action: MANAGE_UNITS,
        details: REAPER,
        allowed: false,
    },
    Case {
        what: "another group",
        user: "www-data",
        groups: &["www-data"],
        action: MANAGE_UNITS,
        details: REAPER,
        allowed: false,
    },
];

/// Evaluates every rule the file adds, in order, as polkitd does: the first result that
/// is not NOT_HANDLED wins. The rule runs in a context holding only `polkit`.
const HARNESS: &str = r#""use strict";
var fs = require("fs");
var vm = require("vm");
var rule = fs.readFileSync(process.argv[2], "utf8");
var cases = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));
var rules = [];
var polkit = {
  Result: { NO: "no", YES: "yes", AUTH_SELF: "auth_self", AUTH_SELF_KEEP: "auth_self_keep",
            AUTH_ADMIN: "auth_admin", AUTH_ADMIN_KEEP: "auth_admin_keep", NOT_HANDLED: null },
  addRule: function (f) { rules.push(f); },
  addAdminRule: function () {},
  log: function () {},
  spawn: function () { throw new Error("the rule must not spawn programs"); }
};
vm.runInNewContext(rule, { polkit: polkit }, { filename: "50-decnet-reaper.rules" });
var results = cases.map(function (c) {
  var action = { id: c.action, lookup: function (k) {
    return Object.prototype.hasOwnProperty.call(c.details, k) ? c.details[k] : undefined;
  } };
  var subject = { user: c.user, groups: c.groups, pid: 4242, local: false, active: false,
    isInGroup: function (g) { return c.groups.indexOf(g) >= 0; },
    isInNetGroup: function () { return false; } };
  for (var i = 0; i < rules.length; i++) {
    var r = rules[i](action, subject);
    if (r) { return r; }
  }
  return null;
});
process.stdout.write(JSON.stringify({ rules: rules.length, results: results }));
"#;

fn node_results(node: &Path, rule_text: &str, cases: &serde_json::Value) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let (harness, rule_file, cases_file) = (
        dir.path().join("harness.js"),
        dir.path().join("rule.js"),
        dir.path().join("cases.json"),
    );
    std::fs::write(&harness, HARNESS).unwrap();
    std::fs::write(&rule_file, rule_text).unwrap();
    std::fs::write(&cases_file, cases.to_string()).unwrap();
    let out = Command::new(node)
        .arg(&harness)
        .arg(&rule_file)
        .arg(&cases_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn cases_json(cases: &[Case]) -> serde_json::Value {
    cases
        .iter()
        .map(|c| {
            serde_json::json!({
                "user": c.user,
                "groups": c.groups,
                "action": c.action,
                "details": c.details.iter().map(|(k, v)| (k.to_string(), serde_json::json!(v)))
                    .collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect()
}

#[test]
fn the_rule_is_es5_that_polkit_engines_accept() {
    let text = rule("decnet", "decnet");
    // polkitd's duktape engine is ES5: no let/const, arrow functions or template strings.
    let code: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    for es6 in ["let ", "const ", "=>", "`", "class ", "..."] {
        assert!(!code.contains(es6), "{es6:?} in\n{code}");
    }
    assert!(code.contains("polkit.addRule(function (action, subject) {"));
    assert!(!text.contains("{{") && !text.contains("{%"), "{text}");
}

#[test]
fn node_evaluates_the_rule_as_intended() {
    let Some(node) = provisioned("DECNET_TEST_NODE") else {
        return;
    };
    let report = node_results(&node, &rule("decnet", "decnet"), &cases_json(CASES));
    assert_eq!(report["rules"], 1, "{report}");
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), CASES.len());
    for (case, got) in CASES.iter().zip(results) {
        let want = if case.allowed {
            serde_json::json!("yes")
        } else {
            serde_json::Value::Null
        };
        assert_eq!(got, &want, "{}", case.what);
    }
    // The user comes from --user: a rule rendered for `svc` admits svc, not decnet.
    let svc = node_results(
        &node,
        &rule("svc", "ops"),
        &serde_json::json!([
            {"user": "svc", "groups": ["ops"], "action": MANAGE_UNITS,
             "details": {"unit": "decnet-reaper.service", "verb": "start"}},
            {"user": "decnet", "groups": ["decnet", "ops"], "action": MANAGE_UNITS,
             "details": {"unit": "decnet-reaper.service", "verb": "start"}},
        ]),
    );
    assert_eq!(svc["results"], serde_json::json!(["yes", null]), "{svc}");
}

/// Kills and reaps a child on drop.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Lines a child writes on stdout and stderr, as they come.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let outs: Vec<Box<dyn std::io::Read + Send>> = vec![
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for out in outs {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out.take(1 << 20)).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// Waits for a line containing `needle`; returns everything read so far.
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str, what: &str) -> Vec<String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                seen.push(line);
                if found {
                    return seen;
                }
            }
            Err(_) => panic!("{what} did not print {needle:?}:\n{}", seen.join("\n")),
        }
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A process running as `user` (its primary group, no supplementary groups), to be the
/// subject polkit is asked about.
fn subject(user: &str) -> Reaped {
    let u = nix::unistd::User::from_name(user).unwrap().unwrap();
    Reaped(
        Command::new("setpriv")
            .arg(format!("--reuid={}", u.uid))
            .arg(format!("--regid={}", u.gid))
            .arg("--clear-groups")
            .args(["sleep", "120"])
            .spawn()
            .unwrap(),
    )
}

#[test]
fn polkitd_itself_admits_only_the_agent_starting_the_reaper() {
    let (Some(polkitd), Some(pkcheck), Some(dbus)) = (
        provisioned("DECNET_TEST_POLKITD"),
        provisioned("DECNET_TEST_PKCHECK"),
        provisioned("DECNET_TEST_DBUS_DAEMON"),
    ) else {
        return;
    };
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test starts polkitd in a mount namespace of its own and subjects as other users: \
         run it as root (CI does), or set DECNET_SKIP_LIVE=1"
    );
    // Two unprivileged accounts every Debian system has: the rule is rendered for the
    // first; the second stands for anyone else.
    let (agent, other) = ("nobody", "daemon");
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let rules = dir.path().join("rules");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&rules).unwrap();
    std::fs::create_dir(&empty).unwrap();
    chmod(&rules, 0o755);
    chmod(&empty, 0o755);
    let rule_file = rules.join("50-decnet-reaper.rules");
    std::fs::write(&rule_file, rule(agent, "nogroup")).unwrap();
    chmod(&rule_file, 0o644);

    // A private system bus: polkitd owns its name there, pkcheck asks there.
    let socket = dir.path().join("bus.sock");
    let conf = dir.path().join("bus.conf");
    std::fs::write(
        &conf,
        format!(
            "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n \
             \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n<busconfig>\n  \
             <type>system</type>\n  <listen>unix:path={}</listen>\n  <auth>EXTERNAL</auth>\n  \
             <policy context=\"default\">\n    <allow user=\"*\"/>\n    <allow own=\"*\"/>\n    \
             <allow send_destination=\"*\"/>\n    <allow receive_sender=\"*\"/>\n  </policy>\n\
             </busconfig>\n",
            socket.display()
        ),
    )
    .unwrap();
    let mut bus = Command::new(&dbus)
        .arg(format!("--config-file={}", conf.display()))
        .args(["--nofork", "--nopidfile", "--print-address"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bus_lines = lines_of(&mut bus);
    let _bus = Reaped(bus);
    wait_for(&bus_lines, "unix:path=", "dbus-daemon");
    let address = format!("unix:path={}", socket.display());

    // polkitd reads rules only from /etc/polkit-1/rules.d and /usr/share/polkit-1/rules.d:
    // in a private mount namespace those are the test's directories (ours and an empty
    // one), so the host's rules neither change nor take part.
    let mut daemon = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            "mount --bind \"$1\" /etc/polkit-1/rules.d && \
             mount --bind \"$2\" /usr/share/polkit-1/rules.d && exec \"$3\"",
        )
        .arg("sh")
        .arg(&rules)
        .arg(&empty)
        .arg(&polkitd)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &address)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let polkit_lines = lines_of(&mut daemon);
    let _daemon = Reaped(daemon);
    let log = wait_for(
        &polkit_lines,
        "Acquired the name org.freedesktop.PolicyKit1",
        "polkitd",
    );
    let log = log.join("\n");
    assert!(
        log.contains("Finished loading, compiling and executing 1 rules"),
        "polkitd did not load exactly our rule:\n{log}"
    );
    assert!(!log.to_lowercase().contains("error"), "{log}");

    let subjects = [(agent, subject(agent)), (other, subject(other))];
    // Both subjects must exist before polkit looks them up.
    std::thread::sleep(Duration::from_millis(200));
    let ask = |pid: u32, action: &str, details: &[(&str, &str)]| -> bool {
        let mut cmd = Command::new(&pkcheck);
        cmd.env("DBUS_SYSTEM_BUS_ADDRESS", &address)
            .args(["--action-id", action, "--process"])
            .arg(pid.to_string());
        for (k, v) in details {
            cmd.args(["--detail", k, v]);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        match out.status.code() {
            Some(0) => true,
            // Not authorized: the default for manage-units is auth_admin, which a
            // non-interactive check cannot satisfy.
            Some(2) if err.contains("requires authentication") => false,
            other => panic!("pkcheck {action} {details:?}: {other:?}: {err}"),
        }
    };
    for case in CASES {
        // Subjects are real accounts here: the rule's user, or anyone else.
        let (name, child) = if case.user == "decnet" {
            &subjects[0]
        } else {
            &subjects[1]
        };
        assert_eq!(
            ask(child.0.id(), case.action, case.details),
            case.allowed,
            "{} (as {name})",
            case.what
        );
    }
}
