//! `decnet logs`, `decnet logs import` and `decnet attackers` on a SQLite database.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Env, fixture, stderr, stdout};

fn json_lines(o: &std::process::Output) -> Vec<Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn import(env: &Env, file: &std::path::Path) -> Value {
    let o = env.run(&["logs", "import", file.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&stdout(&o)).unwrap()
}

#[test]
fn a_reference_log_is_imported_once_with_every_field() {
    let env = Env::new();
    let file = fixture("reference-decnet.log");
    let s = import(&env, &file);
    assert_eq!(s["lines"], 8);
    assert_eq!(s["inserted"], 8);
    assert_eq!(s["unparsed"], 0);

    let rows = json_lines(&env.run(&["logs", "--json", "-n", "100"]));
    assert_eq!(rows.len(), 8);
    assert!(rows.iter().all(|r| r["origin"] == "imported"));
    // Oldest first, as a log reads.
    assert_eq!(rows[0]["event_type"], "http_request_fingerprint");
    // SV-1: values holding `]` keep every later field.
    assert_eq!(
        rows[0]["fields"]["ja4h"],
        "ge11nn050000_4740ae6347b0_000000000000_000000000000"
    );
    assert_eq!(rows[0]["fields"]["path"], "/admin/login");
    assert_eq!(rows[1]["fields"]["password"], "hunter2");
    for k in [
        "urls_json",
        "body_simhash",
        "body_base64_bytes",
        "html_smuggling",
    ] {
        assert!(rows[2]["fields"].get(k).is_some(), "{k} lost");
    }
    // The reference's conventions: double-wrapped bash lines and bare CMD bodies.
    assert_eq!(rows[5]["event_type"], "command");
    assert_eq!(rows[5]["fields"]["cmd"], "cat /etc/passwd");
    assert_eq!(rows[6]["event_type"], "command");
    assert_eq!(rows[7]["severity"], 4);
    assert_eq!(rows[3]["timestamp"], "2026-04-20T10:17:11Z");

    // Filters.
    let ssh = json_lines(&env.run(&[
        "logs",
        "--json",
        "--service",
        "ssh",
        "--event-type",
        "auth_attempt",
    ]));
    assert_eq!(ssh.len(), 2);
    assert!(ssh.iter().all(|r| r["decky"] == "decky-ssh1"));
    let o = env.run(&["logs", "--json", "--origin", "local"]);
    assert!(o.status.success());
    assert_eq!(json_lines(&o).len(), 0);

    // Attackers, aggregated per address.
    let o = env.run(&["attackers", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let attackers: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    let a = attackers
        .iter()
        .find(|a| a["ip"] == "198.51.100.23")
        .unwrap();
    assert_eq!(a["event_count"], 4);
    let mut deckies: Vec<&str> = a["deckies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    deckies.sort_unstable();
    assert_eq!(deckies, ["decky-mail", "decky-ssh1"]);

    // The same file again: nothing new, counts unchanged.
    let again = import(&env, &file);
    assert_eq!(
        (again["inserted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(8))
    );
    let o = env.run(&["attackers", "--json", "--ip", "198.51.100.23"]);
    let attackers: Vec<Value> = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(attackers[0]["event_count"], 4);
    // The table names the credential.
    let table = stdout(&env.run(&["logs", "--event-type", "auth_attempt"]));
    assert!(table.contains("root / toor"), "{table}");
}

#[test]
fn a_bad_file_changes_nothing_and_names_its_lines() {
    let env = Env::new();
    let text = std::fs::read_to_string(fixture("reference-decnet.log")).unwrap();
    let bad = env.path("bad.log");
    std::fs::write(&bad, format!("{text}this is not syslog\n")).unwrap();
    let o = env.run(&["logs", "import", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("line 9"), "{}", stderr(&o));
    let rows = json_lines(&env.run(&["logs", "--json"]));
    assert!(rows.is_empty());
    // With --keep-unparsed the odd line is kept, as `unparsed`.
    let o = env.run(&[
        "logs",
        "import",
        bad.to_str().unwrap(),
        "--keep-unparsed",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = json_lines(&env.run(&["logs", "--json", "--event-type", "unparsed"]));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["raw_line"], "this is not syslog");
    for args in [
        &["logs", "--since", "yesterday"][..],
        &["logs", "-n", "5000"],
        &["logs", "--origin", "elsewhere"],
    ] {
        let o = env.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn follow_prints_new_events_as_they_are_stored() {
    let env = Env::new();
    let first = env.path("first.log");
    let text = std::fs::read_to_string(fixture("reference-decnet.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    std::fs::write(&first, format!("{}\n", lines[..2].join("\n"))).unwrap();
    import(&env, &first);
    let mut child = Command::new(env!("CARGO_BIN_EXE_decnet"))
        .arg("--data-dir")
        .arg(env.home())
        .args(["logs", "--follow", "--json", "-n", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["event_type"], "request", "the newest stored event first");
    let rest = env.path("rest.log");
    std::fs::write(&rest, format!("{}\n", lines[2..5].join("\n"))).unwrap();
    import(&env, &rest);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while seen.len() < 3 && Instant::now() < deadline {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        seen.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[0]["event_type"], "message_stored");
    assert_eq!(seen[2]["event_type"], "auth_attempt");
}

#[test]
fn attackers_follow_prints_new_and_changed_attackers() {
    let env = Env::new();
    let text = std::fs::read_to_string(fixture("reference-decnet.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let first = env.path("first.log");
    std::fs::write(&first, format!("{}\n", lines[..2].join("\n"))).unwrap();
    import(&env, &first);
    let mut child = Command::new(env!("CARGO_BIN_EXE_decnet"))
        .arg("--data-dir")
        .arg(env.home())
        .args(["attackers", "--follow", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["ip"], "203.0.113.50");
    assert_eq!(v["event_count"], 2);
    let rest = env.path("rest.log");
    std::fs::write(&rest, format!("{}\n", lines[2..5].join("\n"))).unwrap();
    import(&env, &rest);
    line.clear();
    out.read_line(&mut line).unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["ip"], "198.51.100.23");
    assert_eq!(v["event_count"], 3);
}

#[test]
fn siem_targets_are_checked_before_anything_starts() {
    let env = Env::new();
    for (args, needle) in [
        (
            &[
                "collect",
                "--mode",
                "master",
                "--log-target",
                "udp://127.0.0.1:514",
            ][..],
            "tcp:// or tls://",
        ),
        (
            &["collect", "--mode", "master", "--log-target", "127.0.0.1"],
            "HOST:PORT",
        ),
        (
            &[
                "collect",
                "--mode",
                "master",
                "--log-target",
                "tls://127.0.0.1:6514",
            ],
            "--log-target-ca",
        ),
        (
            &[
                "collect",
                "--mode",
                "master",
                "--log-target",
                "tls://127.0.0.1:6514",
                "--log-target-ca",
                "/nonexistent.pem",
            ],
            "/nonexistent.pem",
        ),
        (
            &[
                "collect",
                "--mode",
                "worker",
                "--log-target",
                "127.0.0.1:514",
            ],
            "decnet swarmctl --log-target",
        ),
        (
            &[
                "swarmctl",
                "--syslog-listen",
                "off",
                "--log-target",
                "127.0.0.1:514",
            ],
            "--syslog-listen",
        ),
    ] {
        let o = env.run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}
