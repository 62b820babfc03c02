//! The swarm control plane as separate processes: one `decnet swarmctl`, two
//! `decnet agent`s on 127.0.0.2 and 127.0.0.3 (fake runtime, real mTLS), driven by the
//! `decnet swarm` and `decnet deploy --mode swarm` commands.

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use decnet_swarm::client::{HttpClient, https_url};
use decnet_swarm::pki::{Ca, Identity, LeafSpec, Role, fingerprint_of_pem};
use decnet_swarm::tls::{ServerPin, client_config};
use reqwest::{Method, StatusCode};

const INTERVAL: &str = "0.3";

fn free_port(ip: &str) -> u16 {
    TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `decnet` process that is killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Swarm {
    dir: tempfile::TempDir,
    op_port: u16,
    worker_port: u16,
    syslog_port: u16,
}

impl Swarm {
    fn home(&self, who: &str) -> PathBuf {
        self.dir.path().join(who)
    }

    fn cmd(&self, who: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_decnet"));
        for (k, _) in std::env::vars() {
            if k.starts_with("DECNET_") {
                cmd.env_remove(k);
            }
        }
        cmd.env_remove("INVOCATION_ID")
            .env(
                "DECNET_SWARMCTL_URL",
                format!("http://127.0.0.1:{}", self.op_port),
            )
            .arg("--data-dir")
            .arg(self.home(who))
            .args(args)
            .current_dir(self.dir.path());
        cmd
    }

    fn run(&self, who: &str, args: &[&str]) -> Output {
        self.cmd(who, args).output().unwrap()
    }

    fn spawn(&self, who: &str, args: &[&str], env: &[(&str, String)]) -> Proc {
        let log = std::fs::File::create(self.dir.path().join(format!("{who}.log"))).unwrap();
        let mut cmd = self.cmd(who, args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc(
            cmd.stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        )
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run("master", args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn status_of(&self, name: &str) -> Option<String> {
        self.json(&["swarm", "list", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == name)
            .map(|h| h["status"].as_str().unwrap().to_owned())
    }

    fn log(&self, who: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{who}.log"))).unwrap_or_default()
    }
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}

/// Spools 300 lines of w1's decky-01 and 10 lines naming w2's decky-02 on worker w1 and
/// waits for them in the master's database.
fn forward_from_spool(s: &Swarm) {
    use decnet_fleet::logs::spool::{Spool, SpoolOptions, envelope_encoder};
    use decnet_fleet::logs::{CollectedEvent, EventSink as _, Origin};
    let spool_dir = s.home("w1").join("lib/spool");
    std::fs::create_dir_all(&spool_dir).unwrap();
    let spool = Spool::open(&spool_dir, SpoolOptions::default(), envelope_encoder()).unwrap();
    let events: Vec<CollectedEvent> = (0..310)
        .map(|i| {
            // Claims decky-99/mysql in the line; the collector attributed it to decky-01
            // (the last ten to w2's decky-02, as a compromised w1 could).
            let line = format!(
                "<134>1 2026-11-27T08:00:00.{i:06}+00:00 decky-99 mysql - auth_attempt \
                 [relay@55555 src_ip=\"198.51.100.{}\" principal=\"root\" \
                 secret_b64=\"cm9vdA==\"]",
                i % 7 + 1
            );
            CollectedEvent {
                key: CollectedEvent::container_key("c-w1", i128::from(i), &line),
                decky: if i < 300 { "decky-01" } else { "decky-02" }.into(),
                service: "ssh".into(),
                received: decnet_store::Timestamp::now(),
                raw_line: line,
                claimed: Default::default(),
            }
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(spool.commit(&Origin::Local, &events)).unwrap();
    let rows = || -> Vec<serde_json::Value> {
        let out = s.run(
            "master",
            &["logs", "--json", "-n", "1000", "--worker", "w1"],
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    wait_for(
        "w1's spooled lines on the master",
        Duration::from_secs(30),
        || rows().len() >= 310,
    );
    let rows = rows();
    assert_eq!(rows.len(), 310);
    assert!(rows.iter().all(|r| r["origin"] == "forwarded"
        && r["source_worker"] == "w1"
        && r["fields"]["claimed_hostname"] == "decky-99"));
    let (own, foreign): (Vec<_>, Vec<_>) = rows.iter().partition(|r| r["decky"] == "decky-01");
    assert_eq!(own.len(), 300, "{:?}", rows[0]);
    assert!(own.iter().all(|r| r["service"] == "ssh"));
    assert_eq!(foreign.len(), 10);
    assert!(
        foreign.iter().all(|r| r["decky"] == "-"
            && r["service"] == "-"
            && r["fields"]["claimed_decky"] == "decky-02"),
        "{foreign:?}"
    );
    let attackers = s.json(&["attackers", "--json"]);
    assert_eq!(attackers.as_array().unwrap().len(), 7);
}

/// Enrolls `name` on the master and on the worker, then starts its agent.
fn start_agent(s: &Swarm, name: &str, ip: &str, lan_host: &str, fail: &str) -> (Proc, u16) {
    let port = free_port(ip);
    let port_s = port.to_string();
    let resp = s.json(&[
        "swarm",
        "enroll",
        "--name",
        name,
        "--address",
        ip,
        "--agent-port",
        &port_s,
        "--json",
    ]);
    let token = resp["token"].as_str().unwrap();
    let fp = resp["controller_fingerprint"].as_str().unwrap();
    let url = resp["controller_url"].as_str().unwrap();
    let out = s.run(
        name,
        &[
            "agent",
            "enroll",
            "--master",
            url,
            "--token",
            token,
            "--master-fingerprint",
            fp,
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let agent = s.spawn(
        name,
        &[
            "-v",
            "agent",
            "--host",
            ip,
            "--port",
            &port_s,
            "--heartbeat-interval",
            INTERVAL,
            "--log-forward",
            &format!("127.0.0.1:{}", s.syslog_port),
        ],
        &[
            ("DECNET_TEST_FAKE_RUNTIME", "deploys-nothing".into()),
            (
                "DECNET_TEST_FAKE_LAN",
                format!("eth9,10.9.0.0/24,10.9.0.1,{lan_host}"),
            ),
            ("DECNET_TEST_FAKE_RUNTIME_FAIL", fail.into()),
            (
                "DECNET_TEST_REAPER_ROOT",
                s.home(name).join("fake-root").display().to_string(),
            ),
        ],
    );
    (agent, port)
}

fn agent_identity(s: &Swarm, name: &str) -> Identity {
    Identity::load(&s.home(name).join("etc/agent"), "worker").unwrap()
}

/// A client presenting `id` to the agent at `ip:port`, pinning that agent's certificate.
fn client_to_agent(s: &Swarm, id: &Identity, agent: &str, ip: &str, port: u16) -> HttpClient {
    let dir = s.home(agent).join("etc/agent");
    let pin =
        fingerprint_of_pem(&std::fs::read_to_string(dir.join("worker.crt")).unwrap()).unwrap();
    let ca = std::fs::read_to_string(dir.join("ca.crt")).unwrap();
    let tls = client_config(
        Some(id),
        Some(&ca),
        ServerPin {
            fingerprint: pin,
            role: Role::Agent,
        },
    )
    .unwrap();
    HttpClient::tls(&https_url(ip, port), tls).unwrap()
}

/// Sends a TLS 1.1 ClientHello (no supported_versions extension) and returns the
/// server's first bytes.
fn tls11_client_hello(addr: &str) -> Vec<u8> {
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend([7u8; 32]); // random
    hello.push(0); // session id
    hello.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]); // two TLS 1.1 suites
    hello.extend([0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00];
    handshake.extend(u16::try_from(hello.len()).unwrap().to_be_bytes());
    handshake.extend(hello);
    let mut record = vec![0x16, 0x03, 0x02];
    record.extend(u16::try_from(handshake.len()).unwrap().to_be_bytes());
    record.extend(handshake);
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(&record).unwrap();
    let mut buf = vec![0u8; 64];
    let n = stream.read(&mut buf).unwrap_or(0);
    buf.truncate(n);
    buf
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn swarm_multi_process() {
    let s = Swarm {
        dir: tempfile::tempdir().unwrap(),
        op_port: free_port("127.0.0.1"),
        worker_port: free_port("127.0.0.1"),
        syslog_port: free_port("127.0.0.1"),
    };
    let (op, wk) = (s.op_port.to_string(), s.worker_port.to_string());
    let syslog = format!("127.0.0.1:{}", s.syslog_port);
    let advertise = format!("https://127.0.0.1:{wk}");
    let _master = s.spawn(
        "master",
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
            INTERVAL,
            "--syslog-listen",
            &syslog,
        ],
        &[],
    );
    wait_for("swarmctl", Duration::from_secs(30), || {
        TcpStream::connect(("127.0.0.1", s.worker_port)).is_ok()
            && TcpStream::connect(("127.0.0.1", s.op_port)).is_ok()
    });

    // A reserved name is refused (exit 2) and nothing is recorded.
    let out = s.run(
        "master",
        &[
            "swarm",
            "enroll",
            "--name",
            "decnet-master",
            "--address",
            "127.0.0.9",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Enroll → heartbeat → active.
    let (mut w1, w1_port) = start_agent(&s, "w1", "127.0.0.2", "10.9.0.2", "");
    let (_w2, w2_port) = start_agent(&s, "w2", "127.0.0.3", "10.9.0.3", "decky-04");
    wait_for("both workers active", Duration::from_secs(20), || {
        s.status_of("w1").as_deref() == Some("active")
            && s.status_of("w2").as_deref() == Some("active")
    });

    // An enrolled agent told to use an interface that does not exist stops at start
    // (exit 2, naming it) instead of failing every deploy later.
    let out = s.run(
        "w1",
        &["agent", "--port", "0", "--interface", "decnet-nosuch0"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--interface decnet-nosuch0"), "{err}");

    let key = s.home("w1").join("etc/agent/worker.key");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Deploy four deckies sharded over both; decky-04 fails on w2: partial success, exit 3.
    let out = s.run(
        "master",
        &[
            "deploy",
            "--mode",
            "swarm",
            "--deckies",
            "4",
            "--interface",
            "eth0",
            "--subnet",
            "10.9.0.0/24",
            "--services",
            "ssh",
            "--seed",
            "7",
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let shards = s.json(&["swarm", "deckies", "--json"]);
    let shards = shards.as_array().unwrap();
    assert_eq!(shards.len(), 4, "{shards:?}");
    for d in shards {
        let name = d["decky_name"].as_str().unwrap();
        let host = d["host_name"].as_str().unwrap();
        let expected_host = if name == "decky-01" || name == "decky-03" {
            "w1"
        } else {
            "w2"
        };
        assert_eq!(host, expected_host, "{d}");
        if name == "decky-04" {
            assert_eq!(d["state"], "failed", "{d}");
            assert!(d["last_error"].as_str().unwrap().contains("exited"), "{d}");
        } else {
            assert_eq!(d["state"], "running", "{d}");
            assert!(d["last_error"].is_null(), "{d}");
        }
    }
    let ips: std::collections::BTreeSet<_> = shards
        .iter()
        .map(|d| d["decky_ip"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ips.len(), 4);
    assert!(!ips.contains("10.9.0.2") && !ips.contains("10.9.0.3") && !ips.contains("10.9.0.1"));
    assert!(
        s.log("w1")
            .contains("relocalized interface=eth9 subnet=10.9.0.0/24"),
        "{}",
        s.log("w1")
    );

    // Logs: lines spooled on w1 (as `decnet collect` would) reach the master's database
    // through w1's agent and the master's listener, stamped with w1 from its certificate
    // and attributed to the decky its collector named, whatever the line claims; lines
    // w1 sends for w2's decky are stored unattributed.
    forward_from_spool(&s);

    let rt = rt();
    // A worker certificate calling another agent: 403 on control routes.
    let w1_id = agent_identity(&s, "w1");
    let as_w1 = client_to_agent(&s, &w1_id, "w2", "127.0.0.3", w2_port);
    let (code, _) = rt
        .block_on(as_w1.send(Method::GET, "/status", None, None))
        .unwrap();
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, _) = rt
        .block_on(as_w1.send(Method::POST, "/self-destruct", None, None))
        .unwrap();
    assert_eq!(code, StatusCode::FORBIDDEN);
    // An impostor CA's "master" is refused at the handshake.
    let evil = tempfile::tempdir().unwrap();
    let evil_ca = Ca::load_or_create(&evil.path().join("ca")).unwrap();
    let evil_id = Identity::ensure(
        &evil_ca,
        &evil.path().join("m"),
        "master",
        &LeafSpec {
            name: "decnet-master".into(),
            role: Role::Master,
            sans: vec![],
        },
    )
    .unwrap();
    let as_evil = client_to_agent(&s, &evil_id, "w2", "127.0.0.3", w2_port);
    assert!(
        rt.block_on(as_evil.send(Method::GET, "/status", None, None))
            .is_err()
    );
    // TLS 1.1 is refused: the answer to a TLS 1.1 ClientHello is a fatal alert record
    // (type 21, level 2; handshake_failure 40 or protocol_version 70), never a ServerHello.
    for addr in [
        format!("127.0.0.3:{w2_port}"),
        format!("127.0.0.1:{}", s.worker_port),
    ] {
        let answer = tls11_client_hello(&addr);
        assert_eq!(answer.first(), Some(&0x15), "{addr}: {answer:?}");
        assert_eq!(answer.get(5), Some(&2), "{addr}: {answer:?}");
        assert!(matches!(answer.get(6), Some(40 | 70)), "{addr}: {answer:?}");
    }
    // The same with Debian's openssl (provisioned by .ci/provision/45-openssl.sh); its
    // security level is lowered so that it really offers TLS 1.1.
    let openssl = match std::env::var("DECNET_TEST_OPENSSL") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ if std::env::var("DECNET_SKIP_LIVE").as_deref() == Ok("1") => None,
        _ if Path::new("/usr/bin/openssl").exists() => Some(PathBuf::from("/usr/bin/openssl")),
        _ => panic!(
            "DECNET_TEST_OPENSSL is not set: run .ci/provision/45-openssl.sh (or DECNET_SKIP_LIVE=1)"
        ),
    };
    if let Some(openssl) = openssl {
        let out = Command::new(openssl)
            .args([
                "s_client",
                "-connect",
                &format!("127.0.0.3:{w2_port}"),
                "-tls1_1",
                "-cipher",
                "DEFAULT:@SECLEVEL=0",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{text}");
        // Wrote a TLS 1.1 hello, read only the server's 7-byte fatal alert.
        assert!(text.contains("Cipher is (NONE)"), "{text}");
        assert!(
            text.contains("alert number 40") || text.contains("alert number 70"),
            "{text}"
        );
    }

    // w1 dies: unreachable after three missed heartbeats, with no operator probe.
    let _ = w1.0.kill();
    let _ = w1.0.wait();
    wait_for("w1 unreachable", Duration::from_secs(20), || {
        s.status_of("w1").as_deref() == Some("unreachable")
    });
    assert_eq!(s.status_of("w2").as_deref(), Some("active"));

    // Decommission of the dead w1 completes; its certificate is revoked.
    let out = s.run(
        "master",
        &["swarm", "decommission", "--name", "w1", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["self_destruct_acknowledged"], false);
    assert_eq!(d["revoked"], true);
    assert_eq!(s.status_of("w1"), None);
    assert!(!s.home("master").join("etc/ca/workers/w1").exists());
    // The revoked certificate is refused by the heartbeat endpoint.
    let controller_pin = fingerprint_of_pem(
        &std::fs::read_to_string(s.home("master").join("etc/master/swarmctl.crt")).unwrap(),
    )
    .unwrap();
    let tls = client_config(
        Some(&w1_id),
        Some(&w1_id.ca_pem),
        ServerPin {
            fingerprint: controller_pin,
            role: Role::Swarmctl,
        },
    )
    .unwrap();
    let to_master = HttpClient::tls(&format!("https://127.0.0.1:{}", s.worker_port), tls).unwrap();
    let uuid = std::fs::read_to_string(s.home("w1").join("etc/agent/identity.json")).unwrap();
    let uuid: serde_json::Value = serde_json::from_str(&uuid).unwrap();
    let beat = serde_json::json!({"host_uuid": uuid["host_uuid"], "status": {"deployed": false, "deckies": []}});
    let (code, body) = rt
        .block_on(to_master.send(Method::POST, "/swarm/heartbeat", Some(&beat), None))
        .unwrap();
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("revoked"));
    let _ = w1_port;

    // Decommission of the live w2: acknowledged; its reaper runs under the fake root.
    let out = s.run(
        "master",
        &["swarm", "decommission", "--name", "w2", "--json"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["self_destruct_acknowledged"], true);
    wait_for("w2 reaper", Duration::from_secs(10), || {
        s.log("w2").contains("Self-destruct reaper started")
    });
    assert!(
        s.json(&["swarm", "list", "--json"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn agent_without_bundle_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_decnet"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["agent", "--port", "0"])
        .env_remove("DECNET_AGENT_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&dir.path().join("etc/agent").display().to_string()),
        "{err}"
    );
    assert!(err.contains("decnet agent enroll"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
