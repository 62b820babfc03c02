//! A throw-away lab network for live tests (this crate's and decnet-runtime's): a veth
//! pair whose host end is the decky network's parent and whose other end sits in a network
//! namespace (the "LAN client"), torn down on drop even when the test fails. Traffic stays inside it.

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

/// Live tests of one binary run one at a time: they share the Docker daemon and the
/// decky image tag.
pub static LIVE: Mutex<()> = Mutex::new(());

/// Skips (with a logged reason) when `DECNET_SKIP_LIVE=1`; otherwise fails clearly when
/// the provisioned variables are missing. Returns the decky binary.
pub fn live_env() -> Option<String> {
    if std::env::var("DECNET_SKIP_LIVE").as_deref() == Ok("1") {
        eprintln!("live test skipped: DECNET_SKIP_LIVE=1");
        return None;
    }
    let missing = |v: &str| {
        panic!(
            "{v} is not set: run the tests through `cargo xtask test` (which provisions Docker \
             and builds the static decky binary), or set DECNET_SKIP_LIVE=1"
        )
    };
    if std::env::var("DECNET_TEST_DOCKER").is_err() {
        missing("DECNET_TEST_DOCKER");
    }
    match std::env::var("DECNET_DECKY_BIN") {
        Ok(b) => Some(b),
        Err(_) => missing("DECNET_DECKY_BIN"),
    }
}

fn ip(args: &[&str]) -> std::process::Output {
    Command::new("ip").args(args).output().unwrap()
}

fn ip_ok(args: &[&str]) {
    let out = ip(args);
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The lab: `parent` (host side), `ns` with its peer at `<prefix>.1/24`.
pub struct Lab {
    /// Unique tag of this lab (also used for decky names).
    pub tag: String,
    /// Parent interface of the decky network.
    pub parent: String,
    /// Network namespace of the client side.
    pub ns: String,
    /// First three octets of the /24.
    pub prefix: String,
}

impl Lab {
    pub fn new() -> Lab {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let id = (std::process::id() * 7 + n) & 0xffff;
        let tag = format!("t{id:04x}");
        let lab = Lab {
            parent: format!("dn{tag}a"),
            ns: format!("dn-{tag}"),
            // 198.18.0.0/15 is reserved for network benchmarks: never an operator's LAN.
            // The demo uses 198.18.213.0/24; tests stay below.
            prefix: format!("198.18.{}", 100 + (id % 100)),
            tag,
        };
        let peer = format!("dn{}b", lab.tag);
        lab.cleanup();
        ip_ok(&["netns", "add", &lab.ns]);
        ip_ok(&[
            "link",
            "add",
            &lab.parent,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
        ]);
        ip_ok(&["link", "set", &peer, "netns", &lab.ns]);
        ip_ok(&["link", "set", &lab.parent, "up"]);
        let cidr = format!("{}.1/24", lab.prefix);
        ip_ok(&["-n", &lab.ns, "addr", "add", &cidr, "dev", &peer]);
        ip_ok(&["-n", &lab.ns, "link", "set", &peer, "up"]);
        ip_ok(&["-n", &lab.ns, "link", "set", "lo", "up"]);
        lab
    }

    /// Runs a shell command inside the namespace.
    pub fn exec(&self, script: &str) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns, "bash", "-c", script])
            .output()
            .unwrap()
    }

    /// True when this kernel can put an IPvlan L2 child on the lab's parent.
    pub fn ipvlan_supported(&self) -> Result<(), String> {
        let probe = format!("dn{}i", self.tag);
        let out = ip(&[
            "link",
            "add",
            "link",
            &self.parent,
            "name",
            &probe,
            "type",
            "ipvlan",
            "mode",
            "l2",
        ]);
        if out.status.success() {
            ip(&["link", "del", &probe]);
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
        }
    }

    fn cleanup(&self) {
        let _ = ip(&["link", "del", &self.parent]);
        let _ = ip(&["netns", "del", &self.ns]);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Every network interface of the host.
pub fn interfaces() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}
