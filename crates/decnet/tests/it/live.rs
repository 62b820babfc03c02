//! The live fleet, end to end through the `decnet` binary: a real Docker daemon, the
//! offline image, MACVLAN (and IPvlan where the kernel allows) on a lab veth, traffic to
//! the deckies from the host (through the hairpin) and from the lab namespace.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use decnet_runtime::Engine as _;
use decnet_runtime::docker::DockerEngine;
use decnet_runtime::engine::Driver;
use decnet_runtime::hairpin::link_name;
use decnet_runtime::spec::Project;
use serde_json::Value;

use crate::lab::{LIVE, Lab, interfaces, live_env};
use crate::support::{Env, stderr, stdout};

/// Tears the test's fleet down if the test fails half-way.
struct FleetGuard<'a> {
    env: &'a Env,
    vars: Vec<(&'static str, String)>,
}

impl FleetGuard<'_> {
    fn run(&self, args: &[&str]) -> std::process::Output {
        let vars: Vec<(&str, &str)> = self.vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.env.run_env(args, &vars)
    }
}

impl Drop for FleetGuard<'_> {
    fn drop(&mut self) {
        let _ = self.run(&["teardown", "--all"]);
    }
}

/// A background `decnet collect`, stopped on drop.
struct Collector(std::process::Child);

impl Collector {
    fn start(env: &Env, vars: &[(&'static str, String)]) -> Collector {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_decnet"));
        cmd.arg("--data-dir")
            .arg(env.home())
            .args(["-v", "collect", "--mode", "master"])
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(env.path("collect.log")).unwrap());
        Collector(cmd.spawn().unwrap())
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        // SIGTERM: a clean stop, like systemd's.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Sends `request` to `ip:port` and returns what came back first, retrying while the
/// service starts.
fn exchange(ip: &str, port: u16, request: &[u8]) -> String {
    let addr: SocketAddr = format!("{ip}:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let attempt = (|| -> std::io::Result<String> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.write_all(request)?;
            let mut buf = vec![0u8; 512];
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Err(std::io::Error::other("closed before answering"));
            }
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        })();
        match attempt {
            Ok(answer) => return answer,
            Err(e) if Instant::now() < deadline => {
                eprintln!("{addr}: {e}, retrying");
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => panic!("{addr} never answered: {e}"),
        }
    }
}

fn json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
    serde_json::from_str(&stdout(out)).unwrap()
}

fn decky_ip(report: &Value, name: &str) -> String {
    report["deckies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap()["ip"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn live_fleet_end_to_end() {
    let Some(decky_bin) = live_env() else { return };
    let _serial = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new();
    let env = Env::new();
    let project = Project::for_home(&env.home());
    let guard = FleetGuard {
        env: &env,
        vars: vec![("DECNET_DECKY_BIN", decky_bin)],
    };
    let (ssh, web, red) = (
        format!("{}-ssh", lab.tag),
        format!("{}-web", lab.tag),
        format!("{}-red", lab.tag),
    );
    let ini = env.path("lab.ini");
    std::fs::write(
        &ini,
        format!(
            "[general]\nnet = {p}.0/24\ngw = {p}.1\ninterface = {parent}\n\n\
             [{ssh}]\nservices = ssh\n\n\
             [{web}]\nservices = http\nnmap_os = windows\n\n\
             [{web}.http]\nserver_header = Microsoft-IIS/10.0\n\n\
             [{red}]\nservices = redis\n",
            p = lab.prefix,
            parent = lab.parent
        ),
    )
    .unwrap();
    let ini = ini.to_str().unwrap();

    // The image, offline.
    let out = guard.run(&["image", "build", "--json"]);
    let built = json(&out);
    assert_eq!(built["tag"], decnet_runtime::spec::image_tag());

    // Deploy: every container runs.
    let report = json(&guard.run(&["deploy", "-c", ini, "--json"]));
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(report["deckies"].as_array().unwrap().len(), 3);
    let hairpin = report["hairpin"]["name"].as_str().unwrap().to_owned();
    assert_eq!(hairpin, link_name(&project, Driver::Macvlan));
    assert!(interfaces().contains(&hairpin));

    // From the host, through the hairpin.
    let ssh_ip = decky_ip(&report, &ssh);
    let banner = exchange(&ssh_ip, 22, b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
    assert!(banner.starts_with("SSH-2.0-"), "{banner}");
    let web_ip = decky_ip(&report, &web);
    let page = exchange(&web_ip, 80, b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    assert!(page.starts_with("HTTP/1."), "{page}");
    assert!(page.contains("Microsoft-IIS/10.0"), "{page}");
    let red_ip = decky_ip(&report, &red);
    let pong = exchange(&red_ip, 6379, b"*1\r\n$4\r\nPING\r\n");
    assert!(pong.starts_with("+PONG"), "{pong}");

    // From the lab namespace, over the veth (the deckies' LAN).
    let out = lab.exec(&format!(
        "exec 3<>/dev/tcp/{web_ip}/80 && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && timeout 5 head -c 16 <&3"
    ));
    assert!(
        stdout(&out).starts_with("HTTP/1."),
        "{} {}",
        stdout(&out),
        stderr(&out)
    );

    // The events are in the containers' logs, with the hairpin as source.
    let hairpin_ip = report["hairpin"]["address"].as_str().unwrap().to_owned();
    let rt = rt();
    let engine = rt.block_on(DockerEngine::connect(None)).unwrap();
    for (container, needle) in [
        (format!("{ssh}-ssh"), "connect"),
        (format!("{web}-http"), "request"),
        (format!("{red}-redis"), "connect"),
    ] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let logs = rt.block_on(engine.logs(&container, 200)).unwrap();
            let hit = logs.lines().any(|l| {
                l.starts_with('<')
                    && l.contains(&format!(" {needle} "))
                    && l.contains(&format!("src_ip=\"{hairpin_ip}\""))
            });
            if hit {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{container}: no {needle} event from {hairpin_ip} in:\n{logs}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    // `decnet collect` (master mode: this data dir's SQLite database) stores the same
    // events, attributed from the containers' labels; a restart repeats none of them.
    let stored = |args: &[&str]| -> Vec<Value> {
        let mut all = vec!["logs", "--json", "-n", "1000"];
        all.extend_from_slice(args);
        stdout(&guard.run(&all))
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let wait_for = |args: &[&str], what: &str| -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let rows = stored(args);
            if !rows.is_empty() {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} stored by decnet collect; its log:\n{}",
                std::fs::read_to_string(env.path("collect.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let collector = Collector::start(&env, &guard.vars);
    let requests = wait_for(
        &["--decky", &web, "--event-type", "request"],
        "http request",
    );
    assert_eq!(requests[0]["service"], "http");
    assert_eq!(requests[0]["attacker_ip"], hairpin_ip);
    assert_eq!(requests[0]["origin"], "local");
    wait_for(&["--decky", &red, "--service", "redis"], "redis event");
    let o = guard.run(&["attackers", "--json", "--ip", &hairpin_ip]);
    let attackers: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        attackers[0]["event_count"].as_u64().unwrap() >= 3,
        "{attackers:#}"
    );
    drop(collector);
    let collector = Collector::start(&env, &guard.vars);
    let _ = exchange(&web_ip, 80, b"GET /after HTTP/1.0\r\nHost: x\r\n\r\n");
    wait_for(
        &["--decky", &web, "--grep", "/after"],
        "request made after the restart",
    );
    std::thread::sleep(Duration::from_secs(1));
    drop(collector);
    // Exactly once: every line each container printed is one row, across the restart.
    for (decky, service) in [(&ssh, "ssh"), (&web, "http"), (&red, "redis")] {
        let container = format!("{decky}-{service}");
        let printed = rt
            .block_on(engine.logs(&container, 10_000))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        let rows = stored(&["--decky", decky, "--service", service]).len();
        assert_eq!(rows, printed, "{container}: {printed} lines, {rows} rows");
    }

    // The same description again: nothing changes.
    let again = json(&guard.run(&["deploy", "-c", ini, "--json"]));
    assert_eq!(again["status"], "ok");
    for d in again["deckies"].as_array().unwrap() {
        assert_eq!(d["base"]["action"], "unchanged", "{d:#}");
        for s in d["services"].as_array().unwrap() {
            assert_eq!(s["action"], "unchanged", "{s:#}");
        }
    }

    // A stopped service: degraded, not gone.
    let observed = rt.block_on(engine.list_managed(project.as_str())).unwrap();
    let http = observed
        .iter()
        .find(|c| c.decky() == Some(web.as_str()) && c.service() == Some("http"))
        .unwrap();
    rt.block_on(engine.stop_container(&http.id)).unwrap();
    let status = json(&guard.run(&["status", "--json"]));
    assert_eq!(status["deployed"], true);
    assert_eq!(status["runtime"][&web]["state"], "degraded", "{status:#}");
    assert_eq!(status["runtime"][&web]["running"], false);
    assert_eq!(status["runtime"][&web]["services"]["http"], "exited");
    assert_eq!(status["runtime"][&ssh]["state"], "running");
    let table = stdout(&guard.run(&["status"]));
    assert!(table.contains("degraded"), "{table}");

    // One decky torn down: its containers (base included) and its state entry.
    let out = guard.run(&["teardown", "--id", &web, "--json"]);
    let td = json(&out);
    assert_eq!(td["removed"].as_array().unwrap().len(), 2, "{td:#}");
    let status = json(&guard.run(&["status", "--json"]));
    let names: Vec<&str> = status["deckies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [ssh.as_str(), red.as_str()]);
    let left = rt.block_on(engine.list_managed(project.as_str())).unwrap();
    assert!(left.iter().all(|c| c.decky() != Some(web.as_str())));
    let out = guard.run(&["teardown", "--id", &web]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // Everything: no container, network or interface of this fleet is left.
    let td = json(&guard.run(&["teardown", "--all", "--json"]));
    assert_eq!(td["state_cleared"], true);
    assert_eq!(td["network_removed"], true);
    let left = rt.block_on(engine.list_managed(project.as_str())).unwrap();
    assert!(left.is_empty(), "{left:?}");
    let net = rt.block_on(engine.network(&project.network())).unwrap();
    assert!(net.is_none());
    let ifaces = interfaces();
    assert!(!ifaces.contains(&hairpin), "{ifaces:?}");
    assert!(
        !ifaces.contains(&link_name(&project, Driver::Ipvlan)),
        "{ifaces:?}"
    );
    let status = json(&guard.run(&["status", "--json"]));
    assert_eq!(status["deployed"], false);
}

#[test]
fn ipvlan_where_the_kernel_allows_it() {
    let Some(decky_bin) = live_env() else { return };
    let _serial = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new();
    let env = Env::new();
    let project = Project::for_home(&env.home());
    let guard = FleetGuard {
        env: &env,
        vars: vec![("DECNET_DECKY_BIN", decky_bin)],
    };
    let name = format!("{}-iv", lab.tag);
    let ini = env.path("lab.ini");
    std::fs::write(
        &ini,
        format!(
            "[general]\nnet = {p}.0/24\ngw = {p}.1\ninterface = {parent}\n\n[{name}]\nservices = http\n",
            p = lab.prefix,
            parent = lab.parent
        ),
    )
    .unwrap();
    if let Err(reason) = lab.ipvlan_supported() {
        eprintln!(
            "IPvlan test skipped: this kernel cannot create an IPvlan L2 port on a veth parent ({reason})"
        );
        // What can still be checked: the deploy fails cleanly and leaves nothing behind.
        let out = guard.run(&["deploy", "--ipvlan", "-c", ini.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains("ipvlan"), "{}", stderr(&out));
        let status = json(&guard.run(&["status", "--json"]));
        assert_eq!(status["deployed"], false);
        let rt = rt();
        let engine = rt.block_on(DockerEngine::connect(None)).unwrap();
        assert!(
            rt.block_on(engine.network(&project.network()))
                .unwrap()
                .is_none(),
            "the failed deploy left its network behind"
        );
        return;
    }
    let report = json(&guard.run(&["deploy", "--ipvlan", "-c", ini.to_str().unwrap(), "--json"]));
    assert_eq!(report["status"], "ok", "{report:#}");
    assert_eq!(
        report["hairpin"]["name"],
        link_name(&project, Driver::Ipvlan).as_str()
    );
    let ip = decky_ip(&report, &name);
    let page = exchange(&ip, 80, b"GET / HTTP/1.0\r\n\r\n");
    assert!(page.starts_with("HTTP/1."), "{page}");
    let td = json(&guard.run(&["teardown", "--all", "--json"]));
    assert_eq!(td["state_cleared"], true);
    assert!(!interfaces().contains(&link_name(&project, Driver::Ipvlan)));
}
