//! Test support: run `decnet-decky serve` on a free loopback port and read its events.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use decnet_wire::rfc5424::{Line, parse_line};

/// A running `decnet-decky serve` process; killed on drop.
pub struct Decky {
    child: Child,
    events: Receiver<Line>,
    /// Lines seen so far.
    pub seen: Vec<Line>,
    /// The loopback ports it listens on, in the order asked.
    pub ports: Vec<u16>,
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Fails the test unless the live-test opt-out is set, in which case it returns true
/// (the caller then returns early).
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if found {
        return false;
    }
    if std::env::var("DECNET_SKIP_LIVE").as_deref() == Ok("1") {
        eprintln!("skipping: {tool} is not installed and DECNET_SKIP_LIVE=1");
        return true;
    }
    panic!(
        "{tool} is not installed: run .ci/run (or the .ci/provision scripts) first, or set DECNET_SKIP_LIVE=1"
    );
}

impl Decky {
    /// Starts `service` with `env` (persona variables) on `n_ports` free loopback ports.
    pub fn start(service: &str, env: &[(&str, &str)], n_ports: usize) -> Decky {
        let ports: Vec<u16> = (0..n_ports).map(|_| free_port()).collect();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_decnet-decky"));
        cmd.args(["serve", service, "--bind", "127.0.0.1"]);
        for p in &ports {
            cmd.args(["--port", &p.to_string()]);
        }
        cmd.env_clear()
            .env("NODE_NAME", "decky-test")
            .env("DECNET_SEED", "5e".repeat(32));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn decnet-decky");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                match parse_line(&line) {
                    Ok(parsed) => {
                        if tx.send(parsed).is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        panic!("decnet-decky wrote a line that is not RFC 5424 ({e}): {line}")
                    }
                }
            }
        });
        let mut decky = Decky {
            child,
            events: rx,
            seen: Vec::new(),
            ports,
        };
        decky.wait_for("startup", Duration::from_secs(10));
        for port in decky.ports.clone() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(Instant::now() < deadline, "port {port} never opened");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        decky
    }

    /// The address of the `i`-th port.
    pub fn addr(&self, i: usize) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports[i]))
    }

    /// Waits for the next event of type `msgid` not seen by an earlier wait.
    pub fn wait_for(&mut self, msgid: &str, timeout: Duration) -> Line {
        self.wait_where(timeout, |l| l.msgid == msgid)
            .unwrap_or_else(|| {
                panic!(
                    "no '{msgid}' event within {timeout:?}; seen: {:#?}",
                    self.seen
                )
            })
    }

    /// Waits for an event matching `pred`; `None` on timeout.
    pub fn wait_where(&mut self, timeout: Duration, pred: impl Fn(&Line) -> bool) -> Option<Line> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return Some(line);
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// The process id (for memory measurements).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Decky {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every event must carry the peer's address.
pub fn assert_has_source(line: &Line) {
    assert_eq!(line.param("src_ip"), Some("127.0.0.1"), "{line:?}");
    assert!(
        line.param("src_port")
            .and_then(|p| p.parse::<u16>().ok())
            .is_some(),
        "{line:?}"
    );
}

/// Path of the pty driver script (`drive_pty.py`).
pub fn drive_pty() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/drive_pty.py").to_owned()
}

/// Runs `args` with `input` on stdin and returns its output.
pub fn run_with_stdin(args: &[String], input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(&args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}
