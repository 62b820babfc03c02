//! Live tests of the `redis` emulator: `redis-cli`, a side-by-side comparison with the
//! real `redis-server` from Debian, and `nmap -sV`, all over loopback.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Decky, assert_has_source, free_port, require_tool};

fn cli(port: u16, args: &[&str]) -> Output {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn redis_cli_ping_info_auth_and_unknown_commands() {
    if require_tool("redis-cli") {
        return;
    }
    let mut d = Decky::start("redis", &[("REDIS_VERSION", "7.0.15")], 1);
    let port = d.ports[0];
    assert_eq!(stdout(&cli(port, &["PING"])), "PONG\n");
    let info = stdout(&cli(port, &["INFO", "server"]));
    assert!(
        info.starts_with("# Server\r\nredis_version:7.0.15\r\n"),
        "{info}"
    );
    assert!(info.contains(&format!("tcp_port:{port}\r\n")), "{info}");
    // An unknown command gets Redis' exact error text.
    assert_eq!(
        stdout(&cli(port, &["FLUSHEVERYTHING", "now", "please"])),
        "ERR unknown command 'FLUSHEVERYTHING', with args beginning with: 'now' 'please' \n\n"
    );
    // A user/password login is captured with the universal credential shape.
    let out = cli(
        port,
        &[
            "--user",
            "admin",
            "--pass",
            "hunter2",
            "--no-auth-warning",
            "PING",
        ],
    );
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("AUTH failed: WRONGPASS invalid username-password pair or user is disabled."),
        "{out:?}"
    );
    let auth = d.wait_for("auth_attempt", Duration::from_secs(5));
    assert_has_source(&auth);
    assert_eq!(auth.param("principal"), Some("admin"));
    assert_eq!(auth.param("secret_kind"), Some("plaintext"));
    assert_eq!(auth.param("secret_printable"), Some("hunter2"));
    assert_eq!(auth.param("secret_b64"), Some("aHVudGVyMg=="));
    assert_eq!(auth.param("outcome"), Some("failure"));
    assert_eq!(auth.app_name, "redis");
    let unknown = d
        .seen
        .iter()
        .find(|l| l.msgid == "command" && l.param("cmd") == Some("FLUSHEVERYTHING"))
        .expect("command event");
    assert_eq!(unknown.param("args"), Some(r#"["now","please"]"#));
}

#[test]
fn requirepass_decides_the_outcome() {
    if require_tool("redis-cli") {
        return;
    }
    let mut d = Decky::start("redis", &[("REDIS_REQUIREPASS", "s3cret")], 1);
    let port = d.ports[0];
    assert_eq!(
        stdout(&cli(port, &["PING"])),
        "NOAUTH Authentication required.\n\n"
    );
    assert_eq!(
        stdout(&cli(port, &["-a", "s3cret", "--no-auth-warning", "PING"])),
        "PONG\n"
    );
    let auth = d.wait_for("auth_attempt", Duration::from_secs(5));
    assert_eq!(auth.param("principal"), Some("default"));
    assert_eq!(auth.param("outcome"), Some("success"));
}

/// A `redis-server` from Debian on a free loopback port, stopped on drop.
struct RealRedis {
    child: Child,
    port: u16,
}

impl RealRedis {
    fn start() -> RealRedis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        wait_port(SocketAddr::from(([127, 0, 0, 1], port)));
        RealRedis { child, port }
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_port(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "{addr} never opened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `request` on a fresh connection, half-closes it and collects everything the
/// server answers before it closes in turn (both servers answer what they have read
/// before they notice the end of the input).
fn exchange(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[test]
fn replies_match_the_real_redis_server() {
    if require_tool("redis-server") {
        return;
    }
    let real = RealRedis::start();
    let d = Decky::start("redis", &[], 1);
    // Requests whose replies do not depend on the data set: errors, protocol corner cases,
    // and write-then-read sequences on fresh keys.
    let requests: &[&[u8]] = &[
        b"PING\r\nping hi\r\nping a b\r\n*1\r\n$4\r\nPING\r\necho\r\necho hi\r\n",
        b"foo bar baz\r\n",
        b"foo\r\n",
        b"foo x\"y z\"\r\n",
        b"*3\r\n$3\r\nfoo\r\n$3\r\na\nb\r\n$1\r\nc\r\n",
        b"foo 'a\r\n",
        b"\"a\"b\r\n",
        b"*x\r\n",
        b"*1\r\n$x\r\n",
        b"*1\r\nfoo\r\n",
        b"*-1\r\nping\r\n*0\r\nping\r\nping\nping\n",
        b"$3\r\nfoo\r\n",
        b"GET / HTTP/1.0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"ping\r\nHost: x\r\nping\r\n",
        b"auth x\r\nauth bob x\r\nauth default x\r\nauth\r\nauth a b c\r\n",
        b"select 20\r\nselect x\r\nselect 15\r\ndbsize\r\n",
        b"set dk1 v\r\nget dk1\r\nttl dk1\r\ntype dk1\r\nappend dk1 zz\r\nstrlen dk1\r\ndel dk1 dk1\r\nget dk1\r\n",
        b"set dk2 v ex 100\r\nttl dk2\r\nset dk2 v nx\r\nset dk2 w xx get\r\nset dk2 v ex 0\r\nset dk2 v foo\r\nset dk2 v nx xx\r\ndel dk2\r\n",
        b"incr dc\r\nincrby dc 5\r\ndecr dc\r\ndecrby dc x\r\nset dc abc\r\nincr dc\r\ndel dc\r\n",
        b"lpush dl a b c\r\nlrange dl 0 -1\r\nllen dl\r\nlindex dl -1\r\nget dl\r\nlpop dl\r\nrpop dl 2\r\nlrange dl 0 -1\r\n",
        b"hset dh a 1 b 2\r\nhget dh a\r\nhgetall dh\r\nhlen dh\r\nhdel dh a zz\r\nhexists dh b\r\nhset dh a\r\ndel dh\r\n",
        b"sadd ds a b a\r\nscard ds\r\nsismember ds a\r\nsrem ds a\r\nsmembers ds\r\ndel ds\r\n",
        b"zadd dz 1 a 2 b\r\nzrange dz 0 -1 withscores\r\nzscore dz b\r\nzadd dz x a\r\nzrevrange dz 0 0\r\ndel dz\r\n",
        b"config set dir /tmp\r\nconfig set dbfilename x.rdb\r\nconfig set foo bar\r\nconfig set maxmemory abc\r\nconfig\r\nconfig nosuch\r\nconfig get\r\n",
        b"replicaof\r\nmodule load /tmp/x.so\r\nmodule list\r\ndebug sleep 0\r\n",
        b"client setname \"a b\"\r\nclient\r\nclient nosuch\r\nclient kill 1.2.3.4:5\r\ncommand count\r\ncommand nosuch\r\n",
        b"eval \"return package\" 0\r\neval \"return 1\" 0\r\neval \"return 1\" x\r\n",
        b"info nosuch\r\nhello 4\r\nhello x\r\nscan x\r\nkeys\r\n",
        b"quit\r\nping\r\n",
    ];
    let mut differences = Vec::new();
    for r in requests {
        let (want, got) = (exchange(real.port, r), exchange(d.ports[0], r));
        if want != got {
            differences.push(format!(
                "{:?}\n  redis-server: {:?}\n  decnet-decky: {:?}",
                String::from_utf8_lossy(r),
                String::from_utf8_lossy(&want),
                String::from_utf8_lossy(&got)
            ));
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

/// Starts `service` on its real port on a loopback address of its own (nmap picks its
/// probes by port number), returning the process and the address.
pub fn serve_on_real_port(
    service: &str,
    port: u16,
    env: &[(&str, &str)],
) -> (ChildGuard, SocketAddr) {
    let pid = std::process::id();
    for attempt in 0..20u32 {
        let ip = Ipv4Addr::new(
            127,
            100 + (attempt % 100) as u8,
            (pid >> 8) as u8,
            (pid & 0xff) as u8 | 1,
        );
        let addr = SocketAddr::new(IpAddr::V4(ip), port);
        if std::net::TcpListener::bind(addr).is_err() {
            continue;
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_decnet-decky"));
        cmd.args([
            "serve",
            service,
            "--bind",
            &ip.to_string(),
            "--port",
            &port.to_string(),
        ])
        .env_clear()
        .env("NODE_NAME", "decky-nmap")
        .env("DECNET_SEED", "6d".repeat(32))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let child = ChildGuard(cmd.spawn().expect("spawn decnet-decky"));
        wait_port(addr);
        return (child, addr);
    }
    panic!("no free loopback address for port {port}");
}

/// A child process killed on drop.
pub struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `nmap -sV` of one address and port.
pub fn nmap_sv(addr: SocketAddr) -> String {
    let out = Command::new("nmap")
        .args([
            "-sV",
            "-Pn",
            "-n",
            "-p",
            &addr.port().to_string(),
            &addr.ip().to_string(),
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn nmap_identifies_the_persona_version() {
    if require_tool("nmap") {
        return;
    }
    let (_decky, addr) = serve_on_real_port("redis", 6379, &[("REDIS_VERSION", "7.0.15")]);
    let text = nmap_sv(addr);
    assert!(
        text.contains("6379/tcp open  redis   Redis key-value store 7.0.15"),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("honeypot"), "{text}");
}
