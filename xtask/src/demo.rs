//! `cargo xtask demo [--yes] [down]`: the README's main job. A master (swarm controller)
//! and one worker on this host (agent over mutual TLS, bus broker, reconciler), the
//! worker enrolled for real, and a live fleet of three deckies the master dispatches to it
//! on an isolated lab network this demo owns (a veth pair whose peer lives in the
//! `decnet-lab` network namespace), never on the operator's LAN; `down` removes every
//! trace.

use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{cargo, decky, is_root, run};

/// Network namespace of the lab's client side.
const NS: &str = "decnet-lab";
/// Host end of the veth pair: the decky network's parent.
const PARENT: &str = "decnet-lab0";
/// The end inside the namespace.
const PEER: &str = "decnet-lab0p";
/// The lab subnet: 198.18.0.0/15 is reserved for network benchmarks (RFC 2544), so it is
/// never an operator's LAN.
const PREFIX: &str = "198.18.213";
const SOCKET: &str = "/var/run/docker.sock";
/// The worker's own address on the lab LAN (the agent detects its LAN from it).
const WORKER_HOST: u8 = 2;
/// Loopback ports of the demo's control plane (off the defaults 8770/8771/8765, so an
/// installed DECNET on this host is left alone).
const OPERATOR_PORT: u16 = 18770;
const WORKER_LISTENER_PORT: u16 = 18771;
const AGENT_PORT: u16 = 18765;
/// The master's log listener (RFC 5425 over mTLS; 6514 by default).
const SYSLOG_PORT: u16 = 18772;
/// The daemons, in start order: (name, data directory under demo-data).
const DAEMONS: &[(&str, &str)] = &[
    ("swarmctl", "master"),
    ("bus", "worker"),
    ("agent", "worker"),
    ("reconcile", "worker"),
    ("collect", "worker"),
];

/// One decky of the demo fleet.
struct DemoDecky {
    name: &'static str,
    /// Last octet of its address.
    host: u8,
    archetype: &'static str,
    /// Services and their ports.
    services: &'static [(&'static str, u16)],
    /// Windows TCP/IP fingerprint instead of the archetype's Linux one.
    windows: bool,
}

/// The demo fleet: three archetypes, every service emulated, one Windows-family stack.
const DECKIES: &[DemoDecky] = &[
    DemoDecky {
        name: "demo-srv",
        host: 10,
        archetype: "linux-server",
        services: &[("ssh", 22), ("http", 80)],
        windows: false,
    },
    DemoDecky {
        name: "demo-db",
        host: 11,
        archetype: "database-server",
        services: &[("mysql", 3306), ("postgres", 5432), ("redis", 6379)],
        windows: false,
    },
    DemoDecky {
        name: "demo-iis",
        host: 12,
        archetype: "web-server",
        services: &[("http", 80), ("ftp", 21)],
        windows: true,
    },
];

fn engine_answers() -> bool {
    let Ok(mut s) = UnixStream::connect(SOCKET) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(3)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.take(4096).read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ")
}

fn ask(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes" | "YES")
}

fn has(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure a Docker engine answers: installs Debian's `docker.io` when there is none
/// (asking first on a terminal; `--yes` for scripts) and starts `dockerd` when needed.
fn ensure_docker(yes: bool) -> Result<(), String> {
    if engine_answers() {
        return Ok(());
    }
    if !has("dockerd") {
        if !yes {
            if !std::io::stdin().is_terminal() {
                return Err(
                    "no Docker engine answers and docker.io is not installed; rerun with --yes \
                     to install it from Debian"
                        .into(),
                );
            }
            if !ask("No Docker engine found. Install Debian's docker.io package now?") {
                return Err("Docker is needed for the live demo".into());
            }
        }
        let apt = |args: &[&str]| {
            let mut cmd = Command::new("apt-get");
            cmd.args(args)
                .env("DEBIAN_FRONTEND", "noninteractive")
                .stdout(Stdio::null());
            cmd
        };
        run(&mut apt(&["update"]), "apt-get update")?;
        run(
            &mut apt(&["install", "-y", "--no-install-recommends", "docker.io"]),
            "apt-get install docker.io",
        )?;
    }
    if !engine_answers() {
        let systemd = Path::new("/run/systemd/system").is_dir();
        let started = systemd
            && Command::new("systemctl")
                .args(["start", "docker"])
                .status()
                .is_ok_and(|s| s.success());
        if !started {
            eprintln!("xtask: starting dockerd in the background (log: /var/log/dockerd.log)");
            let log = std::fs::File::create("/var/log/dockerd.log")
                .map_err(|e| format!("create /var/log/dockerd.log: {e}"))?;
            let err = log.try_clone().map_err(|e| e.to_string())?;
            Command::new("setsid")
                .arg("dockerd")
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("start dockerd: {e}"))?;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        while !engine_answers() {
            if Instant::now() > deadline {
                return Err("dockerd did not answer within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(())
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn lab_up() -> Result<(), String> {
    let ns_exists = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .any(|w| w == NS)
        });
    if ns_exists && Path::new("/sys/class/net").join(PARENT).exists() {
        return Ok(());
    }
    lab_down();
    let steps: &[&[&str]] = &[
        &["netns", "add", NS],
        &["link", "add", PARENT, "type", "veth", "peer", "name", PEER],
        &["link", "set", PEER, "netns", NS],
        &["link", "set", PARENT, "up"],
        &[
            "addr",
            "add",
            &format!("{PREFIX}.{WORKER_HOST}/24"),
            "dev",
            PARENT,
        ],
        &[
            "-n",
            NS,
            "addr",
            "add",
            &format!("{PREFIX}.1/24"),
            "dev",
            PEER,
        ],
        &["-n", NS, "link", "set", PEER, "up"],
        &["-n", NS, "link", "set", "lo", "up"],
    ];
    for step in steps {
        if !ip(step) {
            lab_down();
            return Err(format!("ip {} failed", step.join(" ")));
        }
    }
    Ok(())
}

fn lab_down() {
    ip(&["link", "del", PARENT]);
    ip(&["netns", "del", NS]);
}

fn ini() -> String {
    let mut out = format!(
        "; The live demo fleet, written by `cargo xtask demo`.\n\
         [general]\nnet = {PREFIX}.0/24\ngw = {PREFIX}.1\ninterface = {PARENT}\n"
    );
    for d in DECKIES {
        let list: Vec<&str> = d.services.iter().map(|(s, _)| *s).collect();
        out.push_str(&format!(
            "\n[{}]\nip = {PREFIX}.{}\narchetype = {}\nservices = {}\n{}",
            d.name,
            d.host,
            d.archetype,
            list.join(", "),
            if d.windows { "nmap_os = windows\n" } else { "" }
        ));
    }
    out.push_str("\n[demo-iis.http]\nserver_header = Microsoft-IIS/10.0\n");
    out
}

fn client(service: &str, ip: &str) -> String {
    let x = format!("ip netns exec {NS}");
    match service {
        "http" => format!("{x} curl -i http://{ip}/"),
        "ssh" => format!("{x} ssh root@{ip}"),
        "ftp" => format!("{x} curl ftp://{ip}/ --user anonymous:guest"),
        "mysql" => format!("{x} mysql -h {ip} -u root -p"),
        "postgres" => format!("{x} psql -h {ip} -U postgres"),
        "redis" => format!("{x} redis-cli -h {ip} info"),
        _ => format!("{x} nc {ip} <port>"),
    }
}

fn decnet(bin: &Path, data: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("--data-dir").arg(data).env(
        "DECNET_SWARMCTL_URL",
        format!("http://127.0.0.1:{OPERATOR_PORT}"),
    );
    cmd
}

fn pid_file(data: &Path, name: &str) -> PathBuf {
    data.join(format!("{name}.pid"))
}

/// Starts `decnet <args>` in the background in its own process group (so it outlives
/// this command and ignores its Ctrl-C), logging to `<data>/<name>.log`.
fn spawn_daemon(
    bin: &Path,
    data: &Path,
    home: &Path,
    name: &str,
    args: &[&str],
    envs: &[(&str, &Path)],
) -> Result<(), String> {
    use std::os::unix::process::CommandExt as _;
    let log_path = data.join(format!("{name}.log"));
    let log = std::fs::File::create(&log_path)
        .map_err(|e| format!("create {}: {e}", log_path.display()))?;
    let err = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = decnet(bin, home);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd
        .args(args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("start decnet {name}: {e}"))?;
    let pid = pid_file(data, name);
    std::fs::write(&pid, child.id().to_string())
        .map_err(|e| format!("write {}: {e}", pid.display()))?;
    eprintln!(
        "xtask: started decnet {name} (pid {}, log {})",
        child.id(),
        log_path.display()
    );
    Ok(())
}

/// Waits until `ok` holds, or fails naming `what` and the log to read.
fn wait_until(
    what: &str,
    log: &Path,
    timeout: Duration,
    mut ok: impl FnMut() -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() > deadline {
            return Err(format!(
                "{what} not ready after {} s (see {})",
                timeout.as_secs(),
                log.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(300),
    )
    .is_ok()
}

/// Stops the demo's daemons (SIGTERM, then SIGKILL after 15 s).
fn stop_daemons(data: &Path) {
    for (name, _) in DAEMONS.iter().rev() {
        let path = pid_file(data, name);
        let Some(pid) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let alive = || Path::new(&format!("/proc/{pid}")).exists();
        let signal = |sig: &str| {
            Command::new("kill")
                .args([sig, &pid.to_string()])
                .stderr(Stdio::null())
                .status()
        };
        if alive() {
            let _ = signal("-TERM");
            let deadline = Instant::now() + Duration::from_secs(15);
            while alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if alive() {
                let _ = signal("-KILL");
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}

fn down(root: &Path) -> Result<(), String> {
    let data = root.join("demo-data");
    let bin = root.join("target/release/decnet");
    stop_daemons(&data);
    if bin.is_file() && engine_answers() {
        // The worker's state names every container and network of the fleet; the data
        // directory itself is the fleet of an older, single-process demo.
        for home in [data.join("worker"), data.clone()] {
            if home.join("lib/decnet-state.json").is_file()
                || home.join("decnet-state.json").is_file()
            {
                run(
                    decnet(&bin, &home).args(["teardown", "--all"]),
                    "decnet teardown --all",
                )?;
            }
        }
    }
    lab_down();
    if data.is_dir() {
        std::fs::remove_dir_all(&data).map_err(|e| format!("remove {}: {e}", data.display()))?;
    }
    eprintln!(
        "xtask: demo removed: daemons, deckies, network, hairpin interface, keys and state \
         ({}), veth pair {PARENT} and namespace {NS}",
        data.display()
    );
    Ok(())
}

/// Runs `decnet` and returns its stdout parsed as JSON.
fn json_of(cmd: &mut Command, what: &str) -> Result<serde_json::Value, String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{what}: not JSON: {e}"))
}

/// `cargo xtask demo [--yes] [down]`.
pub fn demo(root: &Path, args: &[String]) -> Result<(), String> {
    if !is_root() {
        return Err(
            "the live demo creates a network namespace, a veth pair and containers: run it as root"
                .into(),
        );
    }
    let yes = args.iter().any(|a| a == "--yes" || a == "-y");
    if args.iter().any(|a| a == "down") {
        return down(root);
    }
    ensure_docker(yes)?;
    let decky_bin = decky::build(root)?;
    run(
        cargo()
            .current_dir(root)
            .args(["build", "--release", "-p", "decnet"]),
        "build decnet",
    )?;
    let bin = root.join("target/release/decnet");
    let data: PathBuf = root.join("demo-data");
    // A demo already up is replaced, never doubled.
    if data.is_dir() {
        down(root)?;
    }
    for port in [OPERATOR_PORT, WORKER_LISTENER_PORT, AGENT_PORT] {
        if port_open(port) {
            return Err(format!("127.0.0.1:{port} is in use: the demo needs it"));
        }
    }
    let (master, worker) = (data.join("master"), data.join("worker"));
    for d in [&master, &worker] {
        std::fs::create_dir_all(d).map_err(|e| format!("create {}: {e}", d.display()))?;
    }
    lab_up()?;

    // The master: the swarm controller (operator API and worker listener on loopback).
    let (op, wk, ag) = (
        OPERATOR_PORT.to_string(),
        WORKER_LISTENER_PORT.to_string(),
        AGENT_PORT.to_string(),
    );
    let advertise = format!("https://127.0.0.1:{WORKER_LISTENER_PORT}");
    let syslog = format!("127.0.0.1:{SYSLOG_PORT}");
    spawn_daemon(
        &bin,
        &data,
        &master,
        "swarmctl",
        &[
            "swarmctl",
            "--port",
            &op,
            "--worker-host",
            "127.0.0.1",
            "--worker-port",
            &wk,
            "--advertise",
            &advertise,
            "--heartbeat-interval",
            "5",
            "--syslog-listen",
            &syslog,
        ],
        &[],
    )?;
    wait_until(
        "swarmctl",
        &data.join("swarmctl.log"),
        Duration::from_secs(30),
        || port_open(OPERATOR_PORT) && port_open(WORKER_LISTENER_PORT) && port_open(SYSLOG_PORT),
    )?;

    // The worker: enrolled with a one-time token (its key never leaves it), then its bus,
    // its agent on the lab interface and its reconciler.
    let enrolled = json_of(
        decnet(&bin, &master).args([
            "swarm",
            "enroll",
            "--name",
            "demo-worker",
            "--address",
            "127.0.0.1",
            "--agent-port",
            &ag,
            "--json",
        ]),
        "decnet swarm enroll",
    )?;
    let field = |k: &str| {
        enrolled[k]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("decnet swarm enroll: no {k} in its answer"))
    };
    let (token, fingerprint, url) = (
        field("token")?,
        field("controller_fingerprint")?,
        field("controller_url")?,
    );
    run(
        decnet(&bin, &worker).args([
            "agent",
            "enroll",
            "--master",
            &url,
            "--token",
            &token,
            "--master-fingerprint",
            &fingerprint,
        ]),
        "decnet agent enroll",
    )?;
    spawn_daemon(&bin, &data, &worker, "bus", &["bus"], &[])?;
    wait_until(
        "bus",
        &data.join("bus.log"),
        Duration::from_secs(20),
        || worker.join("run/bus.sock").exists(),
    )?;
    spawn_daemon(
        &bin,
        &data,
        &worker,
        "agent",
        &[
            "agent",
            "--host",
            "127.0.0.1",
            "--port",
            &ag,
            "--interface",
            PARENT,
            "--heartbeat-interval",
            "5",
            "--log-forward",
            &syslog,
        ],
        &[("DECNET_DECKY_BIN", decky_bin.as_path())],
    )?;
    let active = || {
        decnet(&bin, &master)
            .args(["swarm", "list", "--json"])
            .output()
            .ok()
            .and_then(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).ok())
            .is_some_and(|v| {
                v.as_array().is_some_and(|hosts| {
                    hosts
                        .iter()
                        .any(|h| h["name"] == "demo-worker" && h["status"] == "active")
                })
            })
    };
    wait_until(
        "the worker's first heartbeat",
        &data.join("agent.log"),
        Duration::from_secs(60),
        active,
    )?;
    spawn_daemon(
        &bin,
        &data,
        &worker,
        "reconcile",
        &["reconcile", "--interval", "5"],
        &[],
    )?;
    // The worker's collector: the deckies' lines into its spool, which the agent ships to
    // the master's listener.
    spawn_daemon(&bin, &data, &worker, "collect", &["collect"], &[])?;

    // The fleet, dispatched by the master to its worker.
    let ini_path = data.join("demo.ini");
    std::fs::write(&ini_path, ini()).map_err(|e| format!("write {}: {e}", ini_path.display()))?;
    let status = decnet(&bin, &master)
        .args(["deploy", "--mode", "swarm", "--seed", "213", "--config"])
        .arg(&ini_path)
        .status()
        .map_err(|e| format!("run decnet: {e}"))?;
    match status.code() {
        Some(0) => {}
        Some(3) => eprintln!("xtask: some deckies did not start (see the table above)"),
        _ => return Err(format!("decnet deploy --mode swarm failed ({status})")),
    }
    check_events_flow(&bin, &master);
    print_guide(&bin, &data, &master, &worker);
    Ok(())
}

/// Makes one request to the web decky from the lab namespace and waits for it to reach
/// the master's database (worker collector → spool → forwarder → listener → ingester),
/// attributed to that decky (the listener checked it is one of the worker's).
fn check_events_flow(bin: &Path, master: &Path) {
    let target = format!("http://{PREFIX}.10/demo-probe");
    let _ = Command::new("ip")
        .args([
            "netns",
            "exec",
            NS,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
        ])
        .arg(&target)
        .status();
    let arrived = || {
        decnet(bin, master)
            .args([
                "logs",
                "--json",
                "--grep",
                "/demo-probe",
                "--decky",
                DECKIES[0].name,
                "-n",
                "1",
            ])
            .output()
            .is_ok_and(|o| o.status.success() && !o.stdout.is_empty())
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        if arrived() {
            eprintln!(
                "xtask: events flow: a request to {target} reached the master's database, \
                 attributed to {}",
                DECKIES[0].name
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!(
        "xtask: warning: the probe request to {target} has not reached the master's database \
         within 60 s (see collect.log, agent.log and swarmctl.log)"
    );
}

fn print_guide(bin: &Path, data: &Path, master: &Path, worker: &Path) {
    let b = bin.display();
    println!("\nThe deckies live on an isolated lab LAN ({PREFIX}.0/24, parent {PARENT});");
    println!("the namespace `{NS}` is a client on it ({PREFIX}.1). Try:\n");
    for d in DECKIES {
        let ip = format!("{PREFIX}.{}", d.host);
        let family = if d.windows { "windows" } else { "linux" };
        println!(
            "  {}  {ip}  ({}, {family} TCP/IP fingerprint)",
            d.name, d.archetype
        );
        for (service, port) in d.services {
            println!("    {service:<9} :{port:<5} {}", client(service, &ip));
        }
        println!();
    }
    println!("  From this host (through the hairpin interface): curl -i http://{PREFIX}.10/");
    println!("  OS fingerprints:    ip netns exec {NS} nmap -O {PREFIX}.10 {PREFIX}.12");
    println!(
        "  Captured events:    {b} --data-dir {} logs --follow   (shipped by the worker over mTLS)",
        master.display()
    );
    println!(
        "  Attackers:          {b} --data-dir {} attackers       (credentials: logs --event-type auth_attempt)",
        master.display()
    );
    println!("  Raw lines:          docker logs -f demo-srv-ssh   (one RFC 5424 line per event)");
    println!("\nThe control plane (logs in {}):", data.display());
    println!(
        "  Workers:            DECNET_SWARMCTL_URL=http://127.0.0.1:{OPERATOR_PORT} {b} --data-dir {} swarm list",
        master.display()
    );
    println!(
        "  Deckies per worker: DECNET_SWARMCTL_URL=http://127.0.0.1:{OPERATOR_PORT} {b} --data-dir {} swarm deckies",
        master.display()
    );
    println!(
        "  What runs:          {b} --data-dir {} status",
        worker.display()
    );
    println!(
        "  Bus events:         {b} --data-dir {} bus subscribe 'decky.>'",
        worker.display()
    );
    println!(
        "                      (then `docker stop demo-db-redis`: the reconciler announces the change)"
    );
    println!("  Remove every trace: cargo xtask demo down");
}
