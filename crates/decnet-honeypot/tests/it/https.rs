//! Live tests of the `https` emulator with curl, openssl s_client and nmap.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::{Decky, require_tool};

const T: Duration = Duration::from_secs(10);

#[test]
fn certificate_subject_is_the_decky_hostname() {
    if require_tool("curl") || require_tool("openssl") {
        return;
    }
    let mut d = Decky::start(
        "https",
        &[
            ("DECNET_HOSTNAME", "www.acme-corp.example"),
            ("SERVER_HEADER", "nginx/1.22.1"),
        ],
        1,
    );
    let url = format!("https://127.0.0.1:{}/", d.ports[0]);
    let out = Command::new("curl")
        .args([
            "-s",
            "-k",
            "-v",
            "--max-time",
            "10",
            "-u",
            "admin:tls-pass",
            &url,
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("subject: CN=www.acme-corp.example"), "{err}");
    assert!(err.contains("issuer: CN=www.acme-corp.example"), "{err}");
    assert!(
        !err.contains("decky-test"),
        "the internal name leaked: {err}"
    );
    assert!(err.contains("< Server: nginx/1.22.1"), "{err}");
    assert!(err.contains("< HTTP/1.1 403 Forbidden"), "{err}");
    let req = d.wait_for("request", T);
    assert_eq!(req.param("tls"), Some("true"));
    let auth = d.wait_for("auth_attempt", T);
    assert_eq!(auth.param("secret_printable"), Some("tls-pass"));

    let mut s_client = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{}", d.ports[0])])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    s_client.stdin.take().unwrap().write_all(b"").unwrap();
    let out = s_client.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("subject=CN = www.acme-corp.example"),
        "{text}"
    );
    assert!(
        text.contains("Protocol  : TLSv1.3") || text.contains("TLSv1.3"),
        "{text}"
    );
}

#[test]
fn certificate_is_stable_across_restarts_and_cn_is_configurable() {
    if require_tool("openssl") {
        return;
    }
    let fingerprint = |env: &[(&str, &str)]| {
        let d = Decky::start("https", env, 1);
        let pem = Command::new("sh")
            .args([
                "-c",
                &format!(
                    "openssl s_client -connect 127.0.0.1:{} </dev/null 2>/dev/null | openssl x509 -noout -pubkey -subject",
                    d.ports[0]
                ),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&pem.stdout).into_owned()
    };
    let a = fingerprint(&[("TLS_CN", "intranet.example")]);
    let b = fingerprint(&[("TLS_CN", "intranet.example")]);
    assert!(a.contains("subject=CN = intranet.example"), "{a}");
    assert!(a.contains("BEGIN PUBLIC KEY"), "{a}");
    assert_eq!(a, b, "the key must derive from the decky seed");
}

#[test]
fn alpn_offers_h2_only_when_asked() {
    if require_tool("curl") {
        return;
    }
    let version = |env: &[(&str, &str)]| {
        let d = Decky::start("https", env, 1);
        let out = Command::new("curl")
            .args([
                "-s",
                "-k",
                "-o",
                "/dev/null",
                "--http2",
                "-w",
                "%{http_version}",
            ])
            .arg(format!("https://127.0.0.1:{}/", d.ports[0]))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(version(&[]), "1.1");
    assert_eq!(version(&[("HTTP_VERSIONS", "h1,h2")]), "2");
}

#[test]
fn nmap_identifies_ssl_http_as_the_persona() {
    if require_tool("nmap") {
        return;
    }
    let d = Decky::start("https", &[("SERVER_HEADER", "nginx/1.22.1")], 1);
    let out = Command::new("nmap")
        .args([
            "-sV",
            "-Pn",
            "-n",
            "-p",
            &d.ports[0].to_string(),
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ssl/http") && text.contains("nginx 1.22.1"),
        "{text}"
    );
    assert!(!text.to_lowercase().contains("honeypot"), "{text}");
}
