//! Transcript tests of the redis emulator: client bytes in, exact server bytes and events
//! out, over an in-memory duplex stream.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tokio::io::{AsyncReadExt, DuplexStream};

use super::*;
use crate::event::MemorySink;
use crate::server::Limits;
use crate::services::framed::testkit::{connect, ctx, read_to_end, render, send};

/// Sends `request` and reads exactly `expected.len()` bytes, asserting them.
async fn exchange(client: &mut DuplexStream, request: &[u8], expected: &[u8]) {
    send(client, request).await;
    let mut got = vec![0; expected.len()];
    tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut got))
        .await
        .expect("reply in time")
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected),
        "reply to {:?}",
        String::from_utf8_lossy(request)
    );
}

/// Length of the complete RESP reply at the start of `buf`, if it is all there.
fn reply_len(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = &buf[1..line_end];
    let n = || std::str::from_utf8(head).ok()?.parse::<i64>().ok();
    let after = line_end + 2;
    match buf.first()? {
        b'+' | b'-' | b':' | b'_' => Some(after),
        b'$' => match n()? {
            -1 => Some(after),
            len => {
                let end = after + usize::try_from(len).ok()? + 2;
                (buf.len() >= end).then_some(end)
            }
        },
        b'*' | b'%' => {
            let items = n()?;
            let items = if buf[0] == b'%' { items * 2 } else { items };
            let mut at = after;
            for _ in 0..items.max(0) {
                at += reply_len(&buf[at..])?;
            }
            Some(at)
        }
        _ => None,
    }
}

/// Sends `request` and reads exactly `n` complete replies.
async fn ask_n(client: &mut DuplexStream, request: &[u8], n: usize) -> Vec<u8> {
    send(client, request).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let mut at = 0;
        let mut complete = 0;
        while complete < n {
            match reply_len(&got[at..]) {
                Some(len) => {
                    at += len;
                    complete += 1;
                }
                None => break,
            }
        }
        if complete == n {
            assert_eq!(at, got.len(), "more than {n} replies");
            return got;
        }
        let read = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("reply in time")
            .unwrap();
        assert!(
            read > 0,
            "closed before {n} replies: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..read]);
    }
}

/// Sends `request` and reads one complete reply.
async fn ask(client: &mut DuplexStream, request: &[u8]) -> Vec<u8> {
    ask_n(client, request, 1).await
}

/// Sends `request` and reads one line reply (up to CRLF).
async fn ask_line(client: &mut DuplexStream, request: &[u8]) -> Vec<u8> {
    send(client, request).await;
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n") {
        tokio::time::timeout(Duration::from_secs(5), client.read_exact(&mut byte))
            .await
            .expect("reply in time")
            .unwrap();
        got.push(byte[0]);
    }
    got
}

fn redis(env: &[(&str, &str)]) -> (Arc<ServiceCtx>, MemorySink) {
    ctx("redis", env, Limits::default())
}

#[tokio::test]
async fn basic_transcript_matches_redis_7() {
    // Every expected reply below is what redis-server 7.0.15 answers.
    let (ctx, sink) = redis(&[]);
    let (mut c, task) = connect(&ctx);
    exchange(&mut c, b"PING\r\n", b"+PONG\r\n").await;
    exchange(&mut c, b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n", b"$2\r\nhi\r\n").await;
    exchange(
        &mut c,
        b"ping a b\r\n",
        b"-ERR wrong number of arguments for 'ping' command\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"foo bar baz\r\n",
        b"-ERR unknown command 'foo', with args beginning with: 'bar' 'baz' \r\n",
    )
    .await;
    exchange(
        &mut c,
        b"GET / HTTP/1.0\r\n",
        b"-ERR wrong number of arguments for 'get' command\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"*3\r\n$3\r\nfoo\r\n$3\r\na\nb\r\n$1\r\nc\r\n",
        b"-ERR unknown command 'foo', with args beginning with: 'a b' 'c' \r\n",
    )
    .await;
    let mut long = b"foo ".to_vec();
    long.extend_from_slice(&[b'a'; 200]);
    long.extend_from_slice(b" b\r\n");
    let mut expected = b"-ERR unknown command 'foo', with args beginning with: '".to_vec();
    expected.extend_from_slice(&[b'a'; 128]);
    expected.extend_from_slice(b"' \r\n");
    exchange(&mut c, &long, &expected).await;
    // Pipelined inline and multibulk requests, blank lines skipped.
    exchange(
        &mut c,
        b"PING\r\n\r\n*0\r\nping x\r\n",
        b"+PONG\r\n$1\r\nx\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"auth x\r\n",
        b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"auth bob s3cret\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"select 20\r\nselect x\r\n",
        b"-ERR DB index is out of range\r\n-ERR value is not an integer or out of range\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"set k1 v\r\nget k1\r\nttl k1\r\ntype k1\r\nappend k1 zz\r\nget k1\r\ndel k1 k1\r\nget k1\r\ntype k1\r\nttl k1\r\n",
        b"+OK\r\n$1\r\nv\r\n:-1\r\n+string\r\n:3\r\n$3\r\nvzz\r\n:1\r\n$-1\r\n+none\r\n:-2\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"set k2 v ex 100\r\nttl k2\r\nset k2 w xx get\r\nset k2 v ex 0\r\nset k2 v nx xx\r\n",
        b"+OK\r\n:100\r\n$1\r\nv\r\n-ERR invalid expire time in 'set' command\r\n-ERR syntax error\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"lpush l1 a b c\r\nlrange l1 0 -1\r\nget l1\r\n",
        b":3\r\n*3\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"config set dir /var/spool/cron\r\nconfig set dbfilename root\r\n",
        b"-ERR CONFIG SET failed (possibly related to argument 'dir') - can't set protected config\r\n-ERR CONFIG SET failed (possibly related to argument 'dbfilename') - can't set protected config\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"config set maxmemory 100mb\r\nconfig get maxmemory\r\nconfig nosuch\r\n",
        b"+OK\r\n*2\r\n$9\r\nmaxmemory\r\n$9\r\n104857600\r\n-ERR unknown subcommand 'nosuch'. Try CONFIG HELP.\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"client setname \"a b\"\r\n",
        b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"eval \"local l = package.loadlib('/usr/lib/x86_64-linux-gnu/liblua5.1.so.0', 'luaopen_io')\" 0\r\n",
        b"-ERR user_script:1: Script attempted to access nonexistent global variable 'package' script: ",
    )
    .await;
    // The rest of the EVAL error line.
    ask_line(&mut c, b"").await;
    exchange(&mut c, b"quit\r\nping\r\n", b"+OK\r\n").await;
    assert_eq!(read_to_end(&mut c).await, b"");
    task.await.unwrap();
    let auth = sink.of_kind(kind::AUTH_ATTEMPT);
    assert_eq!(auth.len(), 2);
    assert_eq!(auth[0].get("principal"), Some("default"));
    assert_eq!(auth[0].get("secret_printable"), Some("x"));
    assert_eq!(auth[0].get("outcome"), Some("failure"));
    assert_eq!(auth[1].get("principal"), Some("bob"));
    assert_eq!(auth[1].get("secret_b64"), Some("czNjcmV0"));
    assert_eq!(auth[1].get("mechanism"), Some("AUTH"));
}

#[tokio::test]
async fn requirepass_gates_commands_and_judges_passwords() {
    let (ctx, sink) = redis(&[("REDIS_REQUIREPASS", "s3cret")]);
    let (mut c, _task) = connect(&ctx);
    exchange(&mut c, b"ping\r\n", b"-NOAUTH Authentication required.\r\n").await;
    // Unknown commands are reported before the authentication check, as in Redis.
    exchange(
        &mut c,
        b"foo\r\n",
        b"-ERR unknown command 'foo', with args beginning with: \r\n",
    )
    .await;
    exchange(
        &mut c,
        b"auth nope\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"auth default s3cret\r\nping\r\n",
        b"+OK\r\n+PONG\r\n",
    )
    .await;
    let auth = sink.of_kind(kind::AUTH_ATTEMPT);
    assert_eq!(
        auth.iter()
            .map(|e| e.get("outcome").unwrap())
            .collect::<Vec<_>>(),
        ["failure", "success"]
    );
    // The password never appears in command events; the user name does.
    let commands: Vec<String> = sink
        .of_kind(kind::COMMAND)
        .iter()
        .map(|e| e.get("args").unwrap().to_owned())
        .collect();
    assert_eq!(
        commands,
        [
            "[]",
            "[]",
            r#"["<redacted>"]"#,
            r#"["default","<redacted>"]"#,
            "[]"
        ]
    );
}

#[tokio::test]
async fn info_reflects_the_persona_and_the_keyspace() {
    let (ctx, _) = redis(&[
        ("REDIS_VERSION", "7.0.11"),
        ("REDIS_OS", "Linux 5.15.0-97-generic x86_64"),
    ]);
    let (mut c, _task) = connect(&ctx);
    let reply = ask(&mut c, b"info\r\n").await;
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with('$'));
    let body = &text[text.find("\r\n").unwrap() + 2..text.len() - 2];
    assert_eq!(
        body.len(),
        text[1..text.find("\r\n").unwrap()]
            .parse::<usize>()
            .unwrap()
    );
    assert!(
        body.starts_with("# Server\r\nredis_version:7.0.11\r\n"),
        "{body}"
    );
    assert!(body.contains("\r\nos:Linux 5.15.0-97-generic x86_64\r\n"));
    assert!(body.contains("\r\ntcp_port:6379\r\n"));
    let headers: Vec<&str> = body.lines().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(
        headers,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace"
        ]
    );
    // The keyspace line agrees with DBSIZE and KEYS.
    let db0: &str = body.lines().find(|l| l.starts_with("db0:keys=")).unwrap();
    let n: usize = db0["db0:keys=".len()..db0.find(',').unwrap()]
        .parse()
        .unwrap();
    assert_eq!(
        ask(&mut c, b"dbsize\r\n").await,
        format!(":{n}\r\n").into_bytes()
    );
    let keys = ask(&mut c, b"keys *\r\n").await;
    assert!(keys.starts_with(format!("*{n}\r\n").as_bytes()));
    assert!(String::from_utf8_lossy(&keys).contains("config:smtp"));
    // Sections on request; unknown ones give an empty bulk.
    assert_eq!(ask(&mut c, b"info nosuch\r\n").await, b"$0\r\n\r\n");
    let clients = ask(&mut c, b"info clients\r\n").await;
    assert!(String::from_utf8_lossy(&clients).contains("# Clients\r\nconnected_clients:"));
}

#[tokio::test]
async fn deckies_differ_and_stay_stable() {
    let service = decnet_core::catalog::service("redis").unwrap();
    let facts = |seed: &str| {
        let p = Persona::from_lookup(service, |k| (k == "DECNET_SEED").then(|| seed.repeat(32)))
            .unwrap();
        let r = Redis::from_persona(&p);
        let keys = r.shared().store.keys(0, now_ms());
        (r.facts.run_id.clone(), r.facts.process_id, keys)
    };
    assert_eq!(facts("0a"), facts("0a"));
    let (a, b) = (facts("0a"), facts("0b"));
    assert_ne!(a.0, b.0);
    assert_ne!(a.2, b.2);
}

#[tokio::test]
async fn scan_walks_every_key_once() {
    let (ctx, _) = redis(&[]);
    let (mut c, _task) = connect(&ctx);
    let all = String::from_utf8_lossy(&ask(&mut c, b"keys *\r\n").await).into_owned();
    let n: usize = all[1..all.find("\r\n").unwrap()].parse().unwrap();
    let mut seen = 0;
    let mut cursor = "0".to_owned();
    for _ in 0..100 {
        let reply = String::from_utf8_lossy(
            &ask(&mut c, format!("scan {cursor} count 3\r\n").as_bytes()).await,
        )
        .into_owned();
        let lines: Vec<&str> = reply.split("\r\n").collect();
        cursor = lines[2].to_owned();
        seen += lines[3][1..].parse::<usize>().unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(cursor, "0");
    assert_eq!(seen, n);
    let typed = String::from_utf8_lossy(&ask(&mut c, b"scan 0 count 1000 type hash\r\n").await)
        .into_owned();
    assert!(
        typed.contains("config:smtp") && !typed.contains("stats:signups"),
        "{typed}"
    );
}

#[tokio::test]
async fn command_events_collapse_repeats_and_hide_passwords() {
    let (ctx, sink) = redis(&[]);
    let (mut c, task) = connect(&ctx);
    let mut burst = Vec::new();
    for _ in 0..500 {
        burst.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    }
    let reply = ask_n(&mut c, &burst, 500).await;
    assert_eq!(reply.len(), 500 * 7);
    ask_n(&mut c, b"get foo\r\nget foo\r\nconfig get dir\r\n", 3).await;
    drop(c);
    task.await.unwrap();
    insta::assert_snapshot!(render(&sink, &[]), @r#"
    redis connect src_ip="203.0.113.9" src_port="51515" dst_port="6379"
    redis command src_ip="203.0.113.9" src_port="51515" cmd="PING" args="[]" argc="1" db="0"
    redis command src_ip="203.0.113.9" src_port="51515" cmd="PING" args="[]" argc="1" db="0" repeated="499"
    redis command src_ip="203.0.113.9" src_port="51515" cmd="GET" args="[\"foo\"]" argc="2" db="0"
    redis command src_ip="203.0.113.9" src_port="51515" cmd="GET" args="[\"foo\"]" argc="2" db="0" repeated="1"
    redis command src_ip="203.0.113.9" src_port="51515" cmd="CONFIG" args="[\"get\",\"dir\"]" argc="3" db="0"
    redis disconnect src_ip="203.0.113.9" src_port="51515" duration_ms="[redacted]"
    "#);
}

#[tokio::test]
async fn http_requests_and_protocol_errors_close_the_connection() {
    // Redis drops an HTTP client without a reply, even for commands before it.
    let (ctx, sink) = redis(&[]);
    let (mut c, task) = connect(&ctx);
    send(&mut c, b"ping\r\nPOST / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(read_to_end(&mut c).await, b"");
    task.await.unwrap();
    assert_eq!(
        sink.of_kind(kind::PROTOCOL_ERROR)[0].get("reason"),
        Some("http_request")
    );
    // A malformed multibulk gets Redis' protocol error, then the connection closes.
    let (mut c, task) = connect(&ctx);
    send(&mut c, b"*1\r\nfoo\r\n").await;
    assert_eq!(
        read_to_end(&mut c).await,
        b"-ERR Protocol error: expected '$', got 'f'\r\n"
    );
    task.await.unwrap();
    // An oversized bulk is refused from its header.
    let (mut c, task) = connect(&ctx);
    send(&mut c, b"*1\r\n$999999999\r\n").await;
    assert_eq!(
        read_to_end(&mut c).await,
        b"-ERR Protocol error: invalid bulk length\r\n"
    );
    task.await.unwrap();
}

#[tokio::test]
async fn idle_connections_time_out() {
    let limits = Limits {
        idle_timeout: Duration::from_millis(50),
        ..Limits::default()
    };
    let (ctx, sink) = ctx("redis", &[], limits);
    let (mut c, task) = connect(&ctx);
    send(&mut c, b"PIN").await;
    assert_eq!(read_to_end(&mut c).await, b"");
    task.await.unwrap();
    assert_eq!(
        sink.of_kind(kind::PROTOCOL_ERROR)[0].get("reason"),
        Some("idle_timeout")
    );
}

#[tokio::test]
async fn the_keyspace_is_capped() {
    let (ctx, _) = redis(&[]);
    let (mut c, _task) = connect(&ctx);
    let value = vec![b'x'; 60_000];
    let mut oom = false;
    for i in 0..(keyspace::MAX_BYTES / value.len() + 2) {
        let mut cmd = Vec::new();
        resp::encode_command(
            &[b"SET".as_slice(), format!("big{i}").as_bytes(), &value],
            &mut cmd,
        );
        let reply = ask_line(&mut c, &cmd).await;
        if reply == b"-OOM command not allowed when used memory > 'maxmemory'.\r\n" {
            oom = true;
            break;
        }
        assert_eq!(reply, b"+OK\r\n");
    }
    assert!(oom, "writes past the cap must be refused");
}

#[tokio::test]
async fn hello_client_list_and_slaveof() {
    let (ctx, _) = redis(&[]);
    let (mut c, _task) = connect(&ctx);
    let hello = String::from_utf8_lossy(&ask(&mut c, b"hello\r\n").await).into_owned();
    assert!(hello.starts_with("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:2\r\n"), "{hello}");
    exchange(
        &mut c,
        b"hello 4\r\n",
        b"-NOPROTO unsupported protocol version\r\n",
    )
    .await;
    exchange(
        &mut c,
        b"client setname scanner\r\nclient getname\r\n",
        b"+OK\r\n$7\r\nscanner\r\n",
    )
    .await;
    let list = String::from_utf8_lossy(&ask(&mut c, b"client list\r\n").await).into_owned();
    assert!(
        list.contains("addr=203.0.113.9:51515 laddr=10.0.3.7:6379"),
        "{list}"
    );
    assert!(
        list.contains("name=scanner") && list.contains("cmd=client|list"),
        "{list}"
    );
    exchange(
        &mut c,
        b"slaveof 198.51.100.7 21000\r\nrole\r\n",
        b"+OK\r\n*5\r\n$5\r\nslave\r\n$12\r\n198.51.100.7\r\n:21000\r\n$7\r\nconnect\r\n:-1\r\n",
    )
    .await;
    let info = String::from_utf8_lossy(&ask(&mut c, b"info replication\r\n").await).into_owned();
    assert!(
        info.contains(
            "role:slave\r\nmaster_host:198.51.100.7\r\nmaster_port:21000\r\nmaster_link_status:down"
        ),
        "{info}"
    );
    exchange(&mut c, b"slaveof no one\r\n", b"+OK\r\n").await;
}

#[test]
fn ranges_like_redis() {
    assert_eq!(range(5, 0, -1), 0..5);
    assert_eq!(range(5, -2, -1), 3..5);
    assert_eq!(range(5, 3, 1), 0..0);
    assert_eq!(range(5, 0, 100), 0..5);
    assert_eq!(range(0, 0, -1), 0..0);
    assert_eq!(range(5, -100, 1), 0..2);
}
