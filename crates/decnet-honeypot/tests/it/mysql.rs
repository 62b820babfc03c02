//! Live tests of the `mysql` emulator with the `mysql` client (MariaDB's, from Debian)
//! and `nmap -sV`, over loopback.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use sha1::{Digest, Sha1};

use crate::redis::{nmap_sv, serve_on_real_port};
use crate::support::{Decky, assert_has_source, require_tool};

fn mysql(port: u16, user: &str, password: Option<&str>) -> Output {
    let mut cmd = Command::new("mysql");
    cmd.args([
        "-h",
        "127.0.0.1",
        "-P",
        &port.to_string(),
        "-u",
        user,
        "--connect-timeout=10",
    ]);
    if let Some(p) = password {
        cmd.arg(format!("-p{p}"));
    }
    cmd.args(["-e", "select 1"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `mysql_native_password`: SHA1(pw) XOR SHA1(salt + SHA1(SHA1(pw))).
fn native_scramble(password: &[u8], salt: &[u8]) -> Vec<u8> {
    let h1 = Sha1::digest(password);
    let h2 = Sha1::digest(h1);
    let mut h = Sha1::new();
    h.update(salt);
    h.update(h2);
    let h3 = h.finalize();
    h1.iter().zip(h3.iter()).map(|(a, b)| a ^ b).collect()
}

fn check_wrong_password(env: &[(&str, &str)], version: &str, client_plugin: &str) {
    let mut d = Decky::start("mysql", env, 1);
    let out = mysql(d.ports[0], "bob", Some("hunter2"));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ERROR 1045 (28000): Access denied for user 'bob'@'127.0.0.1' (using password: YES)\n"
    );
    let e = d.wait_for("auth_attempt", Duration::from_secs(5));
    assert_has_source(&e);
    assert_eq!(e.app_name, "mysql");
    assert_eq!(e.hostname, "decky-test");
    assert_eq!(e.param("principal"), Some("bob"));
    assert_eq!(e.param("username"), Some("bob"));
    assert_eq!(e.param("secret_kind"), Some("mysql_native_password"));
    assert_eq!(e.param("outcome"), Some("failure"));
    assert_eq!(e.param("mechanism"), Some("mysql_native_password"));
    assert_eq!(e.param("using_password"), Some("YES"));
    assert_eq!(e.param("server_version"), Some(version));
    assert_eq!(e.param("client_plugin"), Some(client_plugin));
    assert!(e.param("connection_id").unwrap().parse::<u32>().is_ok());
    assert!(
        e.param("connect_attrs")
            .unwrap()
            .contains(r#""program_name":"mysql""#),
        "{e:?}"
    );
    // The salt and the scramble are enough to verify (or crack) the password offline.
    use base64::Engine as _;
    let salt = hex::decode(e.param("salt").unwrap()).unwrap();
    assert_eq!(salt.len(), 20);
    let secret = base64::engine::general_purpose::STANDARD
        .decode(e.param("secret_b64").unwrap())
        .unwrap();
    assert_eq!(secret, native_scramble(b"hunter2", &salt));
    assert_eq!(
        e.param("hashcat").unwrap(),
        format!("$mysqlna${}*{}", hex::encode(&salt), hex::encode(&secret))
    );
    assert_eq!(e.param("secret_printable").unwrap().len(), 20);
}

#[test]
fn mariadb_persona_refuses_with_the_real_error() {
    if require_tool("mysql") {
        return;
    }
    check_wrong_password(
        &[],
        "5.5.5-10.11.6-MariaDB-0+deb12u1",
        "mysql_native_password",
    );
}

#[test]
fn mysql8_persona_switches_to_native_and_refuses() {
    if require_tool("mysql") {
        return;
    }
    check_wrong_password(
        &[("MYSQL_VERSION", "8.0.36-0ubuntu0.22.04.1")],
        "8.0.36-0ubuntu0.22.04.1",
        "caching_sha2_password",
    );
}

#[test]
fn no_password_says_so() {
    if require_tool("mysql") {
        return;
    }
    let mut d = Decky::start("mysql", &[], 1);
    let out = mysql(d.ports[0], "root", None);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "ERROR 1045 (28000): Access denied for user 'root'@'127.0.0.1' (using password: NO)\n"
    );
    let e = d.wait_for("auth_attempt", Duration::from_secs(5));
    assert_eq!(e.param("using_password"), Some("NO"));
    assert_eq!(e.param("secret_b64"), Some(""));
}

#[test]
fn nmap_identifies_the_persona_version() {
    if require_tool("nmap") {
        return;
    }
    let (_decky, addr) = serve_on_real_port("mysql", 3306, &[("DECNET_DISTRO", "ubuntu22")]);
    let text = nmap_sv(addr);
    assert!(
        text.contains("3306/tcp open  mysql   MySQL 8.0.36-0ubuntu0.22.04.1"),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("honeypot"), "{text}");
    let (_decky, addr) = serve_on_real_port("mysql", 3306, &[]);
    let text = nmap_sv(addr);
    assert!(
        text.contains("MySQL 5.5.5-10.11.6-MariaDB-0+deb12u1"),
        "{text}"
    );
}
