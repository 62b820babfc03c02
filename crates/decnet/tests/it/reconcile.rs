//! `decnet reconcile` and `decnet bus` end to end: a temporary data directory with
//! SQLite, a state file, the broker and its operator commands; and the live fleet's
//! rows through deploy, a crash and teardowns.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use decnet_core::HostUuid;
use decnet_store::{FleetRepo, FleetState, HostScope, SqliteStore};
use serde_json::{Value, json};

use crate::support::{Env, stderr, stdout};

const NO_DOCKER: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/docker.sock");

fn decky(name: &str, octet: u8) -> Value {
    json!({
        "name": name, "ip": format!("192.168.1.{octet}"), "services": ["ssh", "http"],
        "distro": "debian", "base_image": "debian:bookworm-slim", "hostname": format!("SRV-{octet}"),
        "nmap_os": "linux", "last_mutated": 1714000000.5
    })
}

/// Writes a reference-format state file with `deckies` into the env's data directory.
fn write_state(env: &Env, deckies: &[Value]) {
    write_state_mode(env, "unihost", deckies);
}

fn write_state_mode(env: &Env, mode: &str, deckies: &[Value]) {
    let lib = env.home().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let state = json!({
        "config": {
            "mode": mode, "interface": "eth0", "subnet": "192.168.1.0/24",
            "gateway": "192.168.1.1", "deckies": deckies
        },
        "compose_path": "decnet-compose.yml"
    });
    std::fs::write(lib.join("decnet-state.json"), state.to_string()).unwrap();
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn db_path(env: &Env) -> PathBuf {
    env.home().join("lib/db/decnet.db")
}

/// The stored rows of `local`, as `(name, state)`.
fn rows(db: &Path) -> Vec<(String, FleetState)> {
    rt().block_on(async {
        let store = SqliteStore::open_path(db).await.unwrap();
        let rows = store
            .list_fleet(&HostScope::Host(HostUuid::local()))
            .await
            .unwrap();
        store.close().await;
        rows.into_iter()
            .map(|r| (r.name.to_string(), r.state))
            .collect()
    })
}

fn once(env: &Env, vars: &[(&str, &str)]) -> Value {
    let out = env.run_env(&["reconcile", "--once", "--json"], vars);
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_str(&stdout(&out)).unwrap()
}

fn counts(report: &Value) -> [u64; 4] {
    ["inserted", "deleted", "state_updated", "config_updated"].map(|k| {
        report[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {report}"))
    })
}

/// `decnet <args>` in the background, like [`Env::run_env`], stdout piped.
fn spawn(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_decnet"));
    for (k, _) in std::env::vars() {
        if k.starts_with("DECNET_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("--data-dir")
        .arg(env.home())
        .args(args)
        .envs(vars.iter().copied())
        .current_dir(env.dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the child to exit within `limit`; returns its exit code.
fn exits_within(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn once_with_docker_unreachable_inserts_unknown_rows_and_converges() {
    let env = Env::new();
    write_state(&env, &[decky("decky-01", 10), decky("decky-02", 11)]);
    let report = once(&env, &[NO_DOCKER]);
    assert_eq!(counts(&report), [2, 0, 0, 0]);
    assert_eq!(report["observed"], false);
    assert_eq!(report["host_uuid"], "local");
    // FL-7: unknown, never running, when Docker cannot be observed.
    assert_eq!(
        rows(&db_path(&env)),
        [
            ("decky-01".into(), FleetState::Unknown),
            ("decky-02".into(), FleetState::Unknown)
        ]
    );
    // The second pass changes nothing.
    let again = once(&env, &[NO_DOCKER]);
    assert_eq!(counts(&again), [0, 0, 0, 0]);
    assert_eq!(again["stored"], 2);

    // decky-02 leaves the state file: its row goes, decky-01's stays unknown.
    write_state(&env, &[decky("decky-01", 10)]);
    let out = env.run_env(&["reconcile", "--once"], &[NO_DOCKER]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("host local: inserted 0, deleted 1, state changed 0"),
        "{text}"
    );
    assert!(text.contains("docker unknown"), "{text}");
    assert_eq!(
        rows(&db_path(&env)),
        [("decky-01".into(), FleetState::Unknown)]
    );

    // A worker's scope is its own: the local rows are not its rows.
    let report = once_args(&env, &["--host-uuid", "w-1"]);
    assert_eq!(report["host_uuid"], "w-1");
    assert_eq!(counts(&report), [1, 0, 0, 0]);
    assert_eq!(rows(&db_path(&env)).len(), 1, "local rows untouched");

    // Bad input is refused with status 2.
    for bad in [
        vec!["reconcile", "--once", "--host-uuid", "a.b"],
        vec!["reconcile", "--interval", "0"],
        vec!["reconcile", "--json"],
    ] {
        let out = env.run_env(&bad, &[NO_DOCKER]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
}

fn once_args(env: &Env, extra: &[&str]) -> Value {
    let mut args = vec!["reconcile", "--once", "--json"];
    args.extend_from_slice(extra);
    let out = env.run_env(&args, &[NO_DOCKER]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn an_enrolled_worker_reconciles_under_its_own_uuid() {
    let env = Env::new();
    let worker = "6f1c0d2e-4b7a-4e0f-9c1d-2a3b4c5d6e7f";
    // An agent configured but not enrolled has no identity yet: refused, not `local`.
    let out = env.run_env(
        &["reconcile", "--once"],
        &[NO_DOCKER, ("DECNET_MODE", "agent")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not enrolled"), "{}", stderr(&out));

    let agent_dir = env.home().join("etc/agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let fp = "ab".repeat(32);
    std::fs::write(
        agent_dir.join("identity.json"),
        json!({
            "version": 1, "host_uuid": worker, "name": "worker-1",
            "master_fingerprint": fp, "controller_fingerprint": fp,
            "controller_url": "https://master:8771"
        })
        .to_string(),
    )
    .unwrap();
    // The worker's state file pins its deckies to it (the master assigned them).
    let mut d = decky("decky-01", 10);
    d["host_uuid"] = json!(worker);
    write_state_mode(&env, "swarm", &[d]);
    let report = once(&env, &[NO_DOCKER, ("DECNET_MODE", "agent")]);
    assert_eq!(report["host_uuid"], worker);
    assert_eq!(
        (report["inserted"].as_u64(), report["foreign"].as_u64()),
        (Some(1), Some(0))
    );
    // Converged: no churn between `local` and the worker's uuid (FL-3).
    let again = once(&env, &[NO_DOCKER, ("DECNET_MODE", "agent")]);
    assert_eq!(counts(&again), [0, 0, 0, 0]);
    assert!(rows(&db_path(&env)).is_empty(), "nothing under local");
}

#[test]
fn an_unreadable_state_file_fails_the_pass_and_keeps_the_rows() {
    let env = Env::new();
    write_state(&env, &[decky("decky-01", 10)]);
    once(&env, &[NO_DOCKER]);
    std::fs::write(env.home().join("lib/decnet-state.json"), "{ not json").unwrap();
    let out = env.run_env(&["reconcile", "--once"], &[NO_DOCKER]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("state file"), "{}", stderr(&out));
    assert_eq!(rows(&db_path(&env)).len(), 1);
}

#[test]
fn the_loop_runs_a_pass_at_start_and_stops_on_sigterm_within_two_seconds() {
    let env = Env::new();
    write_state(&env, &[decky("decky-01", 10)]);
    // An hour between passes: the row can only come from the pass at start.
    let mut child = spawn(&env, &["reconcile", "--interval", "3600"], &[NO_DOCKER]);
    let db = db_path(&env);
    wait_for("the first pass", || db.exists() && rows(&db).len() == 1);
    let asked = Instant::now();
    signal(&child, "-TERM");
    assert_eq!(exits_within(&mut child, Duration::from_secs(2)), Some(0));
    assert!(asked.elapsed() < Duration::from_secs(2));

    // SIGINT too.
    let mut child = spawn(&env, &["reconcile", "--interval", "3600"], &[NO_DOCKER]);
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "-INT");
    assert_eq!(exits_within(&mut child, Duration::from_secs(2)), Some(0));
}

/// Lines of a child's stdout, read on a thread.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn the_bus_carries_operator_events_and_the_reconcilers_transitions() {
    let env = Env::new();
    let socket = env.home().join("run/bus.sock");
    let mut broker = spawn(&env, &["bus", "--heartbeat", "0"], &[]);
    wait_for("the bus socket", || socket.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o660);
    }

    let mut sub = spawn(&env, &["bus", "subscribe", "decky.>"], &[]);
    let got = lines(&mut sub);
    // Publish a probe until the subscriber shows it: then it is subscribed.
    let probe = loop {
        let out = env.run(&["bus", "publish", "decky.probe.state", r#"{"n": 1}"#]);
        assert!(out.status.success(), "{}", stderr(&out));
        let sent: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(sent["type"], "state");
        if let Ok(line) = got.recv_timeout(Duration::from_millis(300)) {
            break serde_json::from_str::<Value>(&line).unwrap();
        }
    };
    assert_eq!(probe["topic"], "decky.probe.state");
    assert_eq!(probe["payload"], json!({"n": 1}));

    // The reconciler's transitions reach the subscriber.
    write_state(&env, &[decky("decky-01", 10), decky("decky-02", 11)]);
    let report = once(&env, &[NO_DOCKER]);
    assert_eq!(report["published"], 2);
    let mut events: Vec<Value> = Vec::new();
    while events.len() < 2 {
        let line = got
            .recv_timeout(Duration::from_secs(5))
            .expect("reconciler events");
        let e: Value = serde_json::from_str(&line).unwrap();
        if e["topic"] != "decky.probe.state" {
            events.push(e);
        }
    }
    events.sort_by_key(|e| e["topic"].as_str().unwrap().to_owned());
    assert_eq!(events[0]["topic"], "decky.local:decky-01.state");
    assert_eq!(events[1]["topic"], "decky.local:decky-02.state");
    assert_eq!(
        events[0]["payload"],
        json!({"host_uuid": "local", "name": "decky-01", "state": "unknown",
               "transition": "inserted", "source": "fleet"})
    );

    // `--count` stops by itself.
    let mut counted = spawn(&env, &["bus", "subscribe", "ops.*", "--count", "1"], &[]);
    let counted_lines = lines(&mut counted);
    wait_for("the counted subscriber", || {
        env.run(&["bus", "publish", "ops.ping", "{}"]);
        counted.try_wait().unwrap().is_some()
    });
    assert_eq!(counted.wait().unwrap().code(), Some(0));
    let first: Value = serde_json::from_str(&counted_lines.recv().unwrap()).unwrap();
    assert_eq!(first["topic"], "ops.ping");

    // Bad input: status 2; the subscriber ends cleanly when interrupted.
    for bad in [
        vec!["bus", "publish", "a.*", "{}"],
        vec!["bus", "publish", "a.b", "[1]"],
        vec!["bus", "subscribe", "a.>.z"],
    ] {
        let out = env.run(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
    }
    signal(&sub, "-INT");
    assert_eq!(exits_within(&mut sub, Duration::from_secs(2)), Some(0));

    // The broker stops on SIGTERM and removes its socket; publishing then fails.
    signal(&broker, "-TERM");
    assert_eq!(exits_within(&mut broker, Duration::from_secs(3)), Some(0));
    assert!(!socket.exists());
    let out = env.run(&["bus", "publish", "a.b", "{}"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
}

mod live {
    //! The rows of a real fleet through deploy, a crash and teardowns (FL-1, FL-4).

    use decnet_runtime::Engine as _;
    use decnet_runtime::docker::DockerEngine;
    use decnet_runtime::spec::Project;

    use super::*;
    use crate::lab::{LIVE, Lab, live_env};

    #[test]
    fn deploy_and_teardown_keep_the_database_in_step() {
        let Some(decky_bin) = live_env() else { return };
        let _serial = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        let lab = Lab::new();
        let env = Env::new();
        let vars = [("DECNET_DECKY_BIN", decky_bin.as_str())];
        let run = |args: &[&str]| env.run_env(args, &vars);
        struct Down<'a>(&'a dyn Fn(&[&str]) -> std::process::Output);
        impl Drop for Down<'_> {
            fn drop(&mut self) {
                let _ = (self.0)(&["teardown", "--all"]);
            }
        }
        let _down = Down(&run);
        let (a, b) = (format!("{}-a", lab.tag), format!("{}-b", lab.tag));
        let ini = env.path("lab.ini");
        std::fs::write(
            &ini,
            format!(
                "[general]\nnet = {p}.0/24\ngw = {p}.1\ninterface = {parent}\n\n\
                 [{a}]\nservices = ssh\n\n[{b}]\nservices = http\n",
                p = lab.prefix,
                parent = lab.parent
            ),
        )
        .unwrap();
        let out = run(&["image", "build"]);
        assert!(out.status.success(), "{}", stderr(&out));

        // The database exists (its daemons create it), empty.
        let empty = once(&env, &vars);
        assert_eq!(counts(&empty), [0, 0, 0, 0]);
        let db = db_path(&env);

        // Deploy: the mirror writes the rows with Docker's states at once.
        let out = run(&["deploy", "-c", ini.to_str().unwrap(), "--json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let mut want = vec![
            (a.clone(), FleetState::Running),
            (b.clone(), FleetState::Running),
        ];
        want.sort();
        assert_eq!(rows(&db), want);
        // The reconciler observes the same: nothing to do.
        let report = once(&env, &vars);
        assert_eq!(report["observed"], true, "{report}");
        assert_eq!(counts(&report), [0, 0, 0, 0]);

        // b's service stops: degraded on the next pass, then quiet.
        let rt = rt();
        let engine = rt.block_on(DockerEngine::connect(None)).unwrap();
        let project = Project::for_home(&env.home());
        let observed = rt.block_on(engine.list_managed(project.as_str())).unwrap();
        let http = observed
            .iter()
            .find(|c| c.decky() == Some(b.as_str()) && c.service() == Some("http"))
            .unwrap();
        rt.block_on(engine.stop_container(&http.id)).unwrap();
        assert_eq!(counts(&once(&env, &vars)), [0, 0, 1, 0]);
        assert_eq!(counts(&once(&env, &vars)), [0, 0, 0, 0]);
        assert!(rows(&db).contains(&(b.clone(), FleetState::Degraded)));

        // One decky torn down: its row goes with it and is not resurrected.
        let out = run(&["teardown", "--id", &b]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(rows(&db), [(a.clone(), FleetState::Running)]);
        assert_eq!(counts(&once(&env, &vars)), [0, 0, 0, 0]);

        // Everything torn down: no row left, and the next pass agrees.
        let out = run(&["teardown", "--all"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(rows(&db).is_empty());
        assert_eq!(counts(&once(&env, &vars)), [0, 0, 0, 0]);
    }
}
