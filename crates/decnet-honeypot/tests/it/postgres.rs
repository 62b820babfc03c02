//! Live tests of the `postgres` emulator with `psql` from Debian, over loopback.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use md5::{Digest, Md5};

use crate::support::{Decky, assert_has_source, require_tool};

fn psql(port: u16, user: &str, database: &str, password: Option<&str>, sslmode: &str) -> Output {
    let mut cmd = Command::new("psql");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        user,
        "-d",
        database,
        "-w",
        "-c",
        "select 1",
    ])
    .env_clear()
    .env("PGSSLMODE", sslmode)
    .env("PGCONNECT_TIMEOUT", "10")
    .stdin(Stdio::null());
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    cmd.output().unwrap()
}

#[test]
fn psql_wrong_password_gets_the_real_fatal_error() {
    if require_tool("psql") {
        return;
    }
    let mut d = Decky::start(
        "postgres",
        &[("PG_DATABASES", "postgres,template1,shop")],
        1,
    );
    let port = d.ports[0];
    let out = psql(port, "bob", "shop", Some("hunter2"), "prefer");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "psql: error: connection to server at \"127.0.0.1\", port {port} failed: FATAL:  password authentication failed for user \"bob\"\n"
        )
    );
    let startup = d.wait_for("startup", Duration::from_secs(5));
    assert_eq!(startup.param("user"), Some("bob"));
    assert_eq!(startup.param("database"), Some("shop"));
    assert_eq!(startup.param("database_exists"), Some("true"));
    assert_eq!(startup.param("application_name"), Some("psql"));
    assert_eq!(startup.param("ssl_requested"), Some("true"));
    let e = d.wait_for("auth_attempt", Duration::from_secs(5));
    assert_has_source(&e);
    assert_eq!(e.app_name, "postgres");
    assert_eq!(e.param("principal"), Some("bob"));
    assert_eq!(e.param("secret_kind"), Some("postgres_md5_challenge"));
    assert_eq!(e.param("outcome"), Some("failure"));
    // md5(md5(password + user) + salt), as libpq computes it.
    let salt = hex::decode(e.param("salt").unwrap()).unwrap();
    let inner = hex::encode(Md5::digest(b"hunter2bob"));
    let mut h = Md5::new();
    h.update(inner.as_bytes());
    h.update(&salt);
    let expected = format!("md5{}", hex::encode(h.finalize()));
    assert_eq!(e.param("secret_printable"), Some(expected.as_str()));
    assert_eq!(
        e.param("hashcat").unwrap(),
        format!("$postgres$bob*{}*{}", hex::encode(&salt), &expected[3..])
    );
}

#[test]
fn psql_without_tls_or_password() {
    if require_tool("psql") {
        return;
    }
    let mut d = Decky::start("postgres", &[], 1);
    let port = d.ports[0];
    let out = psql(port, "bob", "bob", None, "require");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "psql: error: connection to server at \"127.0.0.1\", port {port} failed: server does not support SSL, but SSL was required\n"
        )
    );
    // Without a password psql hangs up at the MD5 request: a startup but no attempt.
    let out = psql(port, "postgres", "postgres", None, "disable");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fe_sendauth: no password supplied"),
        "{out:?}"
    );
    let startup = d.wait_where(Duration::from_secs(5), |l| {
        l.msgid == "startup" && l.param("user") == Some("postgres")
    });
    assert_eq!(startup.unwrap().param("database_exists"), Some("true"));
    assert!(
        d.wait_where(Duration::from_millis(300), |l| l.msgid == "auth_attempt")
            .is_none()
    );
}
