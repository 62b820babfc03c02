//! `cargo xtask demo [--yes] [down]`: the README's main job. A live fleet of three deckies
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
    cmd.arg("--data-dir").arg(data);
    cmd
}

fn down(root: &Path) -> Result<(), String> {
    let data = root.join("demo-data");
    let bin = root.join("target/release/decnet");
    if bin.is_file() && engine_answers() {
        run(
            decnet(&bin, &data).args(["teardown", "--all"]),
            "decnet teardown --all",
        )?;
    }
    lab_down();
    eprintln!(
        "xtask: demo removed: deckies, network, hairpin interface, state, veth pair {PARENT} and namespace {NS}"
    );
    Ok(())
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
    std::fs::create_dir_all(&data).map_err(|e| format!("create {}: {e}", data.display()))?;
    lab_up()?;
    let ini_path = data.join("demo.ini");
    std::fs::write(&ini_path, ini()).map_err(|e| format!("write {}: {e}", ini_path.display()))?;
    let status = decnet(&bin, &data)
        .env("DECNET_DECKY_BIN", &decky_bin)
        .args(["deploy", "--seed", "213", "--config"])
        .arg(&ini_path)
        .status()
        .map_err(|e| format!("run decnet: {e}"))?;
    match status.code() {
        Some(0) => {}
        Some(3) => eprintln!("xtask: some services did not start (see the table above)"),
        _ => return Err(format!("decnet deploy failed ({status})")),
    }
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
    println!("  OS fingerprints:   ip netns exec {NS} nmap -O {PREFIX}.10 {PREFIX}.12");
    println!("  Captured events:   docker logs -f demo-srv-ssh   (one RFC 5424 line per event)");
    println!(
        "  Fleet status:      {} --data-dir {} status",
        bin.display(),
        data.display()
    );
    println!("  Remove every trace: cargo xtask demo down");
    Ok(())
}
