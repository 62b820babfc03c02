//! `decnet deploy --dry-run`, `decnet status` and the bad-input contract.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{Env, fixture, stderr, stdout};

fn dry_run_json(env: &Env, extra: &[&str]) -> (Value, Value) {
    let out_path = env.path("compose.yml");
    let mut args = vec![
        "deploy",
        "--dry-run",
        "--json",
        "--seed",
        "1",
        "--out",
        out_path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = env.run(&args);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let compose: Value =
        serde_norway::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    (report, compose)
}

#[test]
fn twenty_decky_ini_plans_and_exports() {
    let env = Env::new();
    let ini = fixture("fleet20.ini");
    let (report, compose) = dry_run_json(&env, &["--config", ini.to_str().unwrap()]);
    let config = &report["config"];
    let deckies = config["deckies"].as_array().unwrap();
    assert_eq!(deckies.len(), 20);
    assert_eq!(report["network"], "given");
    assert_eq!(config["interface"], "lab0");
    assert_eq!(config["subnet"], "10.40.0.0/24");

    let by_name = |n: &str| {
        deckies
            .iter()
            .find(|d| d["name"] == n)
            .unwrap_or_else(|| panic!("no {n}"))
    };
    let names: Vec<&str> = deckies
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        &names[..6],
        [
            "corp-ws-01",
            "corp-ws-02",
            "corp-ws-03",
            "corp-ws-04",
            "corp-ws-05",
            "dc-01"
        ]
    );

    // Explicit addresses are kept and never handed out twice; the gateway is skipped.
    assert_eq!(by_name("dc-01")["ip"], "10.40.0.10");
    assert_eq!(by_name("db-01")["ip"], "10.40.0.20");
    assert_eq!(by_name("corp-ws-01")["ip"], "10.40.0.2");
    let ips: BTreeSet<&str> = deckies.iter().map(|d| d["ip"].as_str().unwrap()).collect();
    assert_eq!(ips.len(), 20);
    assert!(!ips.contains("10.40.0.1"));

    // Archetypes drive services and OS families; every family appears.
    assert_eq!(
        by_name("corp-ws-03")["services"],
        serde_json::json!(["smb", "rdp"])
    );
    assert_eq!(by_name("corp-ws-03")["nmap_os"], "windows");
    assert_eq!(by_name("web-02")["nmap_os"], "bsd");
    assert_eq!(by_name("printer-01")["nmap_os"], "embedded");
    assert_eq!(by_name("core-sw")["nmap_os"], "cisco");
    assert_eq!(by_name("core-sw")["distro"], "alpine");
    assert_eq!(by_name("ops")["nmap_os"], "linux");
    let families: BTreeSet<&str> = deckies
        .iter()
        .map(|d| d["nmap_os"].as_str().unwrap())
        .collect();
    assert_eq!(
        families,
        BTreeSet::from(["bsd", "cisco", "embedded", "linux", "windows"])
    );

    // Persona sections reach every member of a group, typed.
    for i in 1..=4 {
        let web = by_name(&format!("web-0{i}"));
        assert_eq!(
            web["service_config"]["http"]["server_header"],
            "Apache/2.4.57 (Debian)"
        );
        assert_eq!(web["service_config"]["http"]["response_code"], 200);
    }
    assert_eq!(
        by_name("corp-ws-05")["service_config"]["smb"],
        serde_json::json!({})
    );
    assert_eq!(
        by_name("db-01")["service_config"]["redis"]["redis_version"],
        "7.0.15"
    );
    assert_eq!(by_name("jump-02")["mutate_interval"], 15);
    assert_eq!(
        by_name("jump-01")["service_config"]["ssh"]["users"],
        "root:toor,admin:admin123"
    );
    assert_eq!(by_name("mail-01")["hostname"], "mail.corp.local");
    assert_eq!(config["custom_services"][0]["name"], "scanner-sink");

    // The compose export holds exactly the same containers.
    let services = compose["services"].as_object().unwrap();
    let expected: usize = deckies
        .iter()
        .map(|d| 1 + d["services"].as_array().unwrap().len())
        .sum();
    assert_eq!(services.len(), expected);
    for d in deckies {
        let name = d["name"].as_str().unwrap();
        let base = &services[name];
        assert_eq!(base["networks"]["decnet_lan"]["ipv4_address"], d["ip"]);
        assert_eq!(base["hostname"], d["hostname"]);
        for s in d["services"].as_array().unwrap() {
            let cname = format!("{name}-{}", s.as_str().unwrap().replace('_', "-"));
            assert_eq!(
                services[&cname]["network_mode"],
                format!("service:{name}"),
                "{cname}"
            );
        }
    }
    assert_eq!(
        services["corp-ws-01"]["sysctls"]["net.ipv4.ip_default_ttl"],
        "128"
    );
    assert_eq!(
        services["printer-02"]["sysctls"]["net.ipv4.ip_default_ttl"],
        "255"
    );
    assert_eq!(
        services["web-03-http"]["environment"]["SERVER_HEADER"],
        "Apache/2.4.57 (Debian)"
    );
    assert_eq!(
        services["web-03-http"]["environment"]["FAKE_APP"],
        "wordpress"
    );
    assert!(
        services["web-03-ftp"]["environment"]
            .get("SERVER_HEADER")
            .is_none()
    );
    assert_eq!(services["tool-host-scanner-sink"]["image"], "local/sink:1");
    assert_eq!(
        services["tool-host-scanner-sink"]["command"],
        serde_json::json!(["/sink", "--listen", "9000"])
    );

    // The same seed gives the same plan.
    // (`last_mutated` is the deploy time, so it is left out of the comparison.)
    let strip = |mut v: Value| {
        for d in v["deckies"].as_array_mut().unwrap() {
            d.as_object_mut().unwrap().remove("last_mutated");
        }
        v
    };
    let (again, _) = dry_run_json(&env, &["--config", ini.to_str().unwrap()]);
    assert_eq!(
        strip(again["config"].clone()),
        strip(report["config"].clone())
    );
}

#[test]
fn dry_run_writes_only_the_export() {
    let env = Env::new();
    let out = env.run(&[
        "deploy",
        "--dry-run",
        "-n",
        "5",
        "-a",
        "linux-server",
        "--interface",
        "lab0",
        "--subnet",
        "10.9.0.0/24",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("decky-05") && text.contains("10.9.0.6"),
        "{text}"
    );
    assert_eq!(env.files(), vec![env.path("decnet-compose.yml")]);
    assert!(
        !env.home().exists(),
        "a dry run must not create the data directory"
    );
}

#[test]
fn dry_run_without_a_network_shows_placeholders() {
    // A fresh network namespace has no usable interface; needs root (CI runs as root).
    let probe = std::process::Command::new("unshare")
        .args(["-n", "true"])
        .status();
    if !probe.map(|s| s.success()).unwrap_or(false) {
        assert_eq!(
            std::env::var("DECNET_SKIP_LIVE").as_deref(),
            Ok("1"),
            "unshare -n is needed (run as root) or set DECNET_SKIP_LIVE=1"
        );
        return;
    }
    let env = Env::new();
    let out = std::process::Command::new("unshare")
        .args(["-n", env!("CARGO_BIN_EXE_decnet"), "--data-dir"])
        .arg(env.home())
        .args([
            "deploy",
            "--dry-run",
            "-n",
            "2",
            "--randomize-services",
            "--json",
            "--out",
            "-",
        ])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let compose: Value = serde_norway::from_str(&stdout(&out)).unwrap();
    assert!(
        compose["services"]["decky-01"]["networks"]["decnet_lan"]["ipv4_address"]
            .as_str()
            .unwrap()
            .starts_with("198.51.100.")
    );
    let out = std::process::Command::new("unshare")
        .args(["-n", env!("CARGO_BIN_EXE_decnet"), "--data-dir"])
        .arg(env.home())
        .args([
            "deploy",
            "--dry-run",
            "-n",
            "2",
            "--randomize-services",
            "--out",
            "x.yml",
        ])
        .current_dir(env.dir.path())
        .output()
        .unwrap();
    assert!(stdout(&out).contains("placeholders"), "{}", stdout(&out));
}

/// Runs a bad command line and checks the one-line message, exit status 2 and that
/// nothing was written.
fn refused(env: &Env, args: &[&str], needles: &[&str]) {
    let out = env.run(args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "{args:?}: one line expected, got {err}"
    );
    for n in needles {
        assert!(err.contains(n), "{args:?}: '{n}' not in {err}");
    }
    let written: Vec<_> = env
        .files()
        .into_iter()
        .filter(|p| !p.ends_with("bad.ini"))
        .collect();
    assert!(written.is_empty(), "{args:?} wrote {written:?}");
    assert!(!env.home().exists());
}

fn ini(env: &Env, text: &str) -> String {
    let path = env.path("bad.ini");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn bad_input_is_refused_with_the_culprit() {
    let env = Env::new();
    let net = ["--interface", "lab0", "--subnet", "10.9.0.0/24"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v = vec!["deploy", "--dry-run"];
        v.extend_from_slice(&net);
        v.extend_from_slice(extra);
        v
    };
    refused(
        &env,
        &with(&["-n", "2", "--services", "ssh,smbx"]),
        &["unknown service 'smbx'"],
    );
    refused(
        &env,
        &with(&["-n", "2", "-a", "mainframe"]),
        &["unknown archetype 'mainframe'", "deaddeck"],
    );
    refused(
        &env,
        &with(&["-n", "0", "--randomize-services"]),
        &["--deckies", "'0'"],
    );
    refused(
        &env,
        &with(&["-n", "2", "--randomize-services", "--distro", "gentoo"]),
        &["unknown distro 'gentoo'"],
    );
    refused(
        &env,
        &[
            "deploy",
            "--dry-run",
            "--interface",
            "lab0",
            "--subnet",
            "10.9.0/24",
            "-n",
            "2",
            "--randomize-services",
        ],
        &["subnet '10.9.0/24'"],
    );
    refused(
        &env,
        &[
            "deploy",
            "--dry-run",
            "--interface",
            "lab0",
            "--subnet",
            "10.9.0.0/29",
            "-n",
            "9",
            "--randomize-services",
        ],
        &[
            "not enough free IPs in 10.9.0.0/29",
            "9 requested, 5 available",
        ],
    );

    let path = ini(
        &env,
        "[general]\nnet = 10.9.0.0/24\n[a]\nservices = ssh\nip = 10.9.0.5\n[b]\nservices = http\nip = 10.9.0.5\n",
    );
    refused(
        &env,
        &["deploy", "--dry-run", "--interface", "lab0", "-c", &path],
        &["duplicate IP 10.9.0.5", "'a'", "'b'"],
    );
    let path = ini(
        &env,
        "[general]\nnet = 10.9.0.0/24\n[web]\nservices = ssh\namount = 2\n[web-01]\nservices = http\n",
    );
    refused(
        &env,
        &["deploy", "--dry-run", "--interface", "lab0", "-c", &path],
        &["duplicate decky name 'web-01'"],
    );
    let path = ini(
        &env,
        "[general]\nnet = 10.9.0.0/24\n[a]\nservices = ssh\n[a]\nservices = http\n",
    );
    refused(
        &env,
        &["deploy", "--dry-run", "--interface", "lab0", "-c", &path],
        &["bad.ini:5", "[a]", "twice"],
    );
    let path = ini(
        &env,
        "[general]\nnet = 10.9.0.0/24\n[grp]\nservices = ssh\nip = 10.9.0.7\namount = 3\n",
    );
    refused(
        &env,
        &["deploy", "--dry-run", "--interface", "lab0", "-c", &path],
        &["bad.ini:6", "'amount'", "'ip'"],
    );
    let path = ini(
        &env,
        "[general]\nnet = 10.9.0.0/24\n[a]\nservices = http\n[a.http]\nssh_version = OpenSSH_9\n",
    );
    refused(
        &env,
        &["deploy", "--dry-run", "--interface", "lab0", "-c", &path],
        &["bad.ini:6", "[a.http] key 'ssh_version'", "server_header"],
    );
    let path = ini(
        &env,
        "[general]\nnet = 10.9.0.0/24\n[a]\nservices = ssh, smbx\n",
    );
    refused(
        &env,
        &["deploy", "--dry-run", "--interface", "lab0", "-c", &path],
        &["bad.ini:4", "'smbx'"],
    );
    let path = ini(
        &env,
        "[general]\nnet = 10.9.0.0/24\n[a]\narchetype = mainframe\n",
    );
    refused(
        &env,
        &["deploy", "--dry-run", "--interface", "lab0", "-c", &path],
        &["bad.ini:4", "'mainframe'"],
    );
}

#[test]
fn status_without_state_is_nothing_deployed() {
    let env = Env::new();
    let out = env.run(&["status"]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("nothing deployed"),
        "{}",
        stdout(&out)
    );
    let out = env.run(&["status", "--json"]);
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["deployed"], false);
    assert_eq!(v["deckies"], serde_json::json!([]));
}

#[test]
fn status_reads_a_reference_state_file() {
    let env = Env::new();
    let lib = env.home().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(fixture("legacy-state.json"), lib.join("decnet-state.json")).unwrap();
    // No daemon behind this socket: the runtime is unknown, never "everything is gone".
    let no_docker = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    let out = env.run_env(&["status", "--json"], &no_docker);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["deployed"], true);
    assert_eq!(v["mode"], "unihost");
    assert_eq!(v["deckies"][0]["name"], "decky-01");
    assert_eq!(v["deckies"][0]["host_uuid"], Value::Null);
    assert_eq!(v["runtime"], Value::Null);
    assert!(
        v["runtime_error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/docker.sock"),
        "{v}"
    );
    let table = stdout(&env.run_env(&["status"], &no_docker));
    assert!(table.contains("unknown"), "{table}");
    assert!(table.contains("runtime unknown"), "{table}");
}

#[test]
fn catalogue_listings() {
    let env = Env::new();
    for (cmd, n) in [
        ("services", 29),
        ("archetypes", 15),
        ("distros", 9),
        ("os-families", 5),
    ] {
        let out = env.run(&[cmd, "--json"]);
        assert!(out.status.success());
        let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v.as_array().unwrap().len(), n, "{cmd}");
        let table = stdout(&env.run(&[cmd]));
        assert_eq!(table.lines().count(), n + 1, "{cmd}: {table}");
    }
}

#[test]
fn live_commands_refuse_bad_input_before_docker() {
    let env = Env::new();
    let no_docker = [("DOCKER_HOST", "unix:///nonexistent/docker.sock")];
    // A planned but not emulated service: refused, nothing written.
    let out = env.run_env(
        &[
            "deploy",
            "--interface",
            "lab0",
            "--subnet",
            "10.9.0.0/24",
            "-n",
            "1",
            "--services",
            "smb",
        ],
        &no_docker,
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("smb (decky decky-01)"),
        "{}",
        stderr(&out)
    );
    assert!(env.files().is_empty(), "{:?}", env.files());
    // Docker unreachable: a failure (1) naming the socket, nothing written.
    let out = env.run_env(
        &[
            "deploy",
            "--interface",
            "lab0",
            "--subnet",
            "10.9.0.0/24",
            "-n",
            "1",
            "--services",
            "ssh",
        ],
        &no_docker,
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("/nonexistent/docker.sock"),
        "{}",
        stderr(&out)
    );
    assert!(env.files().is_empty(), "{:?}", env.files());
    // Teardown needs --all or --id, not both.
    assert_eq!(env.run(&["teardown"]).status.code(), Some(2));
    assert_eq!(
        env.run(&["teardown", "--all", "--id", "x"]).status.code(),
        Some(2)
    );
    // Nothing to export.
    let out = env.run(&["compose", "export"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("nothing is deployed"),
        "{}",
        stderr(&out)
    );
    // A dynamically linked decky binary is refused with the way to build a static one.
    let out = env.run_env(&["image", "build", "--decky-bin", "/bin/sh"], &no_docker);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("crt-static"), "{}", stderr(&out));
}

#[test]
fn compose_export_renders_the_state() {
    let env = Env::new();
    let lib = env.home().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    std::fs::copy(fixture("legacy-state.json"), lib.join("decnet-state.json")).unwrap();
    let out = env.run(&["compose", "export"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_norway::from_str(&stdout(&out)).unwrap();
    // A relocated data directory is its own project, with its own network.
    let network = decnet_runtime::spec::Project::for_home(&env.home()).network();
    assert!(network.starts_with("decnet_") && network.ends_with("_lan"));
    assert_eq!(
        v["services"]["decky-01"]["networks"][&network]["ipv4_address"],
        "192.168.1.10"
    );
    assert_eq!(
        v["services"]["decky-01-ssh"]["network_mode"],
        "service:decky-01"
    );
    let path = env.path("out.yml");
    let out = env.run(&["compose", "export", "--out", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .contains("decky-01-http")
    );
}
