//! Live tests of the `http` emulator with curl, nmap and the real nginx, plus recorded
//! transcripts over in-memory streams.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use decnet_honeypot::event::MemorySink;
use decnet_honeypot::persona::Persona;
use decnet_honeypot::server::{Conn, Limits, ServiceCtx, serve_conn};
use decnet_honeypot::services;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Decky, assert_has_source, free_port, require_tool};

const T: Duration = Duration::from_secs(10);

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10"])
        .args(args)
        .output()
        .expect("run curl");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends raw bytes and reads until the server closes or goes quiet.
pub fn raw(port: u16, request: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

fn strip_date(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .split("\r\n")
        .map(|l| {
            if l.starts_with("Date: ") {
                "Date: <date>"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

#[test]
fn basic_credentials_are_captured_with_every_field() {
    if require_tool("curl") {
        return;
    }
    let mut d = Decky::start("http", &[("FAKE_APP", "tomcat")], 1);
    let url = format!("http://127.0.0.1:{}/manager/html", d.ports[0]);
    let (_, err) = curl(&["-v", "-o", "/dev/null", "-u", "tomcat:s3cr3t!", &url]);
    assert!(err.contains("< HTTP/1.1 401"), "{err}");
    assert!(
        err.contains("< WWW-Authenticate: Basic realm=\"Tomcat Manager Application\""),
        "{err}"
    );
    // The request event comes first, then the credential it carried.
    let req = d.wait_for("request", T);
    let auth = d.wait_for("auth_attempt", T);
    assert_has_source(&auth);
    assert_eq!(auth.param("principal"), Some("tomcat"));
    assert_eq!(auth.param("username"), Some("tomcat"));
    assert_eq!(auth.param("secret_kind"), Some("plaintext"));
    assert_eq!(auth.param("secret_printable"), Some("s3cr3t!"));
    assert_eq!(auth.param("secret_b64"), Some("czNjcjN0IQ=="));
    assert_eq!(auth.param("outcome"), Some("failure"));
    assert_eq!(auth.param("mechanism"), Some("basic"));
    assert_eq!(auth.param("path"), Some("/manager/html"));
    assert_has_source(&req);
    assert_eq!(req.param("method"), Some("GET"));
    assert_eq!(req.param("status"), Some("401"));
    assert!(req.param("user_agent").unwrap().starts_with("curl/"));
    let headers: Vec<[String; 2]> = serde_json::from_str(req.param("headers").unwrap()).unwrap();
    assert_eq!(headers[0][0], "host");
    assert!(headers.iter().any(|[k, _]| k == "authorization"));
}

#[test]
fn bearer_tokens_are_captured() {
    if require_tool("curl") {
        return;
    }
    let mut d = Decky::start("http", &[], 1);
    let url = format!("http://127.0.0.1:{}/api/v1/secrets?x=1", d.ports[0]);
    curl(&[
        "-o",
        "/dev/null",
        "-H",
        "Authorization: Bearer eyJ0eXAi.payload.sig",
        &url,
    ]);
    // The request event comes first, then the credential it carried.
    let req = d.wait_for("request", T);
    let auth = d.wait_for("auth_attempt", T);
    assert_eq!(auth.param("secret_kind"), Some("http_bearer"));
    assert_eq!(auth.param("secret_printable"), Some("eyJ0eXAi.payload.sig"));
    assert_eq!(auth.param("principal"), Some(""));
    assert_eq!(auth.param("outcome"), Some("observed"));
    assert_eq!(req.param("path"), Some("/api/v1/secrets"));
    assert_eq!(req.param("query"), Some("x=1"));
    assert_eq!(req.param("status"), Some("403"));
}

#[test]
fn wordpress_login_post_is_captured() {
    if require_tool("curl") {
        return;
    }
    let mut d = Decky::start("http", &[("FAKE_APP", "wordpress")], 1);
    let url = format!("http://127.0.0.1:{}/wp-login.php", d.ports[0]);
    let (body, _) = curl(&[
        "-d",
        "log=admin&pwd=Winter2024%21&wp-submit=Log+In&redirect_to=%2Fwp-admin%2F&testcookie=1",
        &url,
    ]);
    assert!(
        body.contains(
            "The password you entered for the username <strong>admin</strong> is incorrect"
        ),
        "{body}"
    );
    // The request event comes first, then the credential it carried.
    let req = d.wait_for("request", T);
    let auth = d.wait_for("auth_attempt", T);
    assert_eq!(auth.param("principal"), Some("admin"));
    assert_eq!(auth.param("secret_printable"), Some("Winter2024!"));
    assert_eq!(auth.param("mechanism"), Some("form"));
    assert_eq!(auth.param("user_field"), Some("log"));
    assert_eq!(auth.param("password_field"), Some("pwd"));
    assert_eq!(req.param("method"), Some("POST"));
    assert_eq!(req.param("body_len"), Some("84"));
    assert!(req.param("body").unwrap().starts_with("log=admin&pwd="));
    // The admin area redirects to the login form like WordPress does.
    let (_, err) = curl(&[
        "-v",
        "-o",
        "/dev/null",
        &format!("http://127.0.0.1:{}/wp-admin/", d.ports[0]),
    ]);
    assert!(err.contains("< HTTP/1.1 302 "), "{err}");
    assert!(err.contains("/wp-login.php?redirect_to="), "{err}");
}

#[test]
fn server_header_and_pages_follow_the_persona() {
    if require_tool("curl") {
        return;
    }
    let d = Decky::start("http", &[("SERVER_HEADER", "Apache/2.4.57 (Debian)")], 1);
    let url = format!("http://127.0.0.1:{}/admin/", d.ports[0]);
    let (body, err) = curl(&["-v", &url]);
    assert!(err.contains("< HTTP/1.1 403 Forbidden"), "{err}");
    assert!(err.contains("< Server: Apache/2.4.57 (Debian)"), "{err}");
    assert!(
        err.contains("< Content-Type: text/html; charset=iso-8859-1"),
        "{err}"
    );
    assert!(body.contains("<p>You don't have permission to access this resource.</p>"));
    assert!(body.contains(&format!(
        "<address>Apache/2.4.57 (Debian) Server at 127.0.0.1 Port {}</address>",
        d.ports[0]
    )));
}

#[test]
fn keep_alive_connections_are_reused() {
    if require_tool("curl") {
        return;
    }
    let mut d = Decky::start("http", &[], 1);
    let a = format!("http://127.0.0.1:{}/a", d.ports[0]);
    let b = format!("http://127.0.0.1:{}/b", d.ports[0]);
    let (_, err) = curl(&["-v", "-o", "/dev/null", "-o", "/dev/null", &a, &b]);
    assert!(err.contains("Re-using existing connection"), "{err}");
    let first = d.wait_for("request", T);
    let second = d.wait_for("request", T);
    assert_eq!(first.param("src_port"), second.param("src_port"));
    assert_eq!(second.param("path"), Some("/b"));
}

#[test]
fn oversized_bodies_are_refused_before_reading() {
    let mut d = Decky::start("http", &[], 1);
    let reply = raw(
        d.ports[0],
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\npartial",
    );
    let text = String::from_utf8_lossy(&reply);
    assert!(
        text.starts_with("HTTP/1.1 413 Request Entity Too Large\r\n"),
        "{text}"
    );
    assert!(text.contains("Connection: close\r\n"), "{text}");
    let req = d.wait_for("request", T);
    assert_eq!(req.param("body_refused"), Some("too_large"));
    assert_eq!(req.param("body_len"), Some("50000000"));
}

#[test]
fn nmap_identifies_the_persona_product() {
    if require_tool("nmap") {
        return;
    }
    let d = Decky::start("http", &[("SERVER_HEADER", "nginx/1.22.1")], 1);
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
    assert!(text.contains("nginx 1.22.1"), "{text}");
    assert!(!text.to_lowercase().contains("honeypot"), "{text}");
}

/// Runs the packaged nginx with a throwaway configuration; killed on drop (the
/// directory is kept alive with it). `master_process off` keeps it to one process, so
/// killing the child leaves no orphaned worker behind.
struct Nginx {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_nginx(port: u16) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().display().to_string();
    std::fs::write(
        dir.path().join("nginx.conf"),
        format!(
            "daemon off;\nmaster_process off;\npid {p}/nginx.pid;\nerror_log {p}/error.log;\nevents {{ worker_connections 64; }}\nhttp {{\n access_log off;\n client_body_temp_path {p}/b; proxy_temp_path {p}/p; fastcgi_temp_path {p}/f; uwsgi_temp_path {p}/u; scgi_temp_path {p}/s;\n server {{ listen 127.0.0.1:{port}; location / {{ return 403; }} }}\n}}\n"
        ),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/nginx")
        .args(["-c", &format!("{p}/nginx.conf"), "-p", &p])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Nginx { child, _dir: dir }
}

#[test]
fn default_pages_are_byte_identical_to_nginx() {
    if require_tool("/usr/sbin/nginx") {
        return;
    }
    let version = Command::new("/usr/sbin/nginx").arg("-v").output().unwrap();
    let version = String::from_utf8_lossy(&version.stderr);
    let server = version
        .trim()
        .trim_start_matches("nginx version: ")
        .to_owned();
    let d = Decky::start("http", &[("SERVER_HEADER", &server)], 1);
    let port = free_port();
    let _nginx = start_nginx(port);
    let requests: [&[u8]; 7] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /.env HTTP/1.0\r\n\r\n",
        b"HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\na=b",
        b"GARBAGE\r\n\r\n",
    ];
    for request in requests {
        let ours = strip_date(&raw(d.ports[0], request));
        let real = strip_date(&raw(port, request));
        assert_eq!(
            ours,
            real,
            "request {:?} differs",
            String::from_utf8_lossy(request)
        );
    }
}

/// A service context over a memory sink, for transcripts.
pub fn memory_ctx(service: &str, env: &[(&str, &str)], sink: &MemorySink) -> Arc<ServiceCtx> {
    let spec = decnet_core::catalog::service(service).unwrap();
    let mut vars: Vec<(String, String)> = vec![
        ("NODE_NAME".into(), "decky-test".into()),
        ("DECNET_SEED".into(), "5e".repeat(32)),
    ];
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let persona = Persona::from_lookup(spec, |k| {
        vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    })
    .unwrap();
    Arc::new(ServiceCtx {
        service: spec,
        persona: Arc::new(persona),
        events: Arc::new(sink.clone()),
        limits: Limits {
            idle_timeout: Duration::from_secs(2),
            ..Limits::default()
        },
    })
}

/// Writes `input` to the emulator over an in-memory stream (half-closing after it) and
/// returns everything it answered.
pub async fn transcript(ctx: Arc<ServiceCtx>, input: &[u8]) -> Vec<u8> {
    let entry = services::lookup(ctx.service.slug).unwrap();
    let emulator = (entry.build)(&ctx).unwrap();
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let conn = Conn {
        stream: Box::new(server),
        peer: "203.0.113.9:40404".parse().unwrap(),
        local: "127.0.0.1:80".parse().unwrap(),
    };
    let task = tokio::spawn(serve_conn(emulator, ctx, conn));
    client.write_all(input).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut out)).await;
    drop(client);
    let _ = task.await;
    out
}

#[tokio::test]
async fn wordpress_transcript() {
    let sink = MemorySink::new();
    let ctx = memory_ctx(
        "http",
        &[("FAKE_APP", "wordpress"), ("SERVER_HEADER", "nginx/1.22.1")],
        &sink,
    );
    let out = transcript(
        ctx,
        b"GET /wp-admin/ HTTP/1.1\r\nHost: blog.example\r\n\r\nGET /xmlrpc.php HTTP/1.1\r\nHost: blog.example\r\n\r\nPOST /xmlrpc.php HTTP/1.1\r\nHost: blog.example\r\nContent-Type: text/xml\r\nContent-Length: 213\r\nConnection: close\r\n\r\n<?xml version=\"1.0\"?><methodCall><methodName>wp.getUsersBlogs</methodName><params><param><value>admin</value></param><param><value><string>admin</string><string>pass1</string></value></param></params></methodCall>",
    )
    .await;
    insta::assert_snapshot!(strip_date(&out));
    let auth = sink.of_kind("auth_attempt");
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].get("principal"), Some("admin"));
    assert_eq!(auth[0].get("secret_printable"), Some("pass1"));
    assert_eq!(auth[0].get("mechanism"), Some("xmlrpc"));
    assert_eq!(sink.of_kind("request").len(), 3);
}

#[tokio::test]
async fn jenkins_and_phpmyadmin_transcripts() {
    let sink = MemorySink::new();
    let ctx = memory_ctx(
        "http",
        &[("FAKE_APP", "jenkins"), ("SERVER_HEADER", "nginx/1.22.1")],
        &sink,
    );
    let out = transcript(
        ctx,
        b"GET / HTTP/1.1\r\nHost: ci\r\n\r\nPOST /j_spring_security_check HTTP/1.1\r\nHost: ci\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 45\r\nConnection: close\r\n\r\nj_username=admin&j_password=admin&from=%2F&x=",
    )
    .await;
    let text = strip_date(&out);
    assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{text}");
    assert!(text.contains("\r\nX-Jenkins: "), "{text}");
    assert!(
        text.contains("HTTP/1.1 302 Moved Temporarily\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nLocation: /loginError\r\n"), "{text}");
    let auth = sink.of_kind("auth_attempt");
    assert_eq!(auth[0].get("principal"), Some("admin"));
    assert_eq!(auth[0].get("user_field"), Some("j_username"));

    let sink = MemorySink::new();
    let ctx = memory_ctx("http", &[("FAKE_APP", "phpmyadmin")], &sink);
    let out = transcript(
        ctx,
        b"POST /index.php HTTP/1.1\r\nHost: db\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 52\r\nConnection: close\r\n\r\npma_username=root&pma_password=toor&server=1&token=0",
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.contains("Access denied for user &#039;root&#039;@&#039;localhost&#039;"),
        "{text}"
    );
    assert!(text.contains("name=\"token\" value=\""), "{text}");
    assert_eq!(
        sink.of_kind("auth_attempt")[0].get("secret_printable"),
        Some("toor")
    );
}

#[tokio::test]
async fn custom_status_body_and_extra_headers() {
    let sink = MemorySink::new();
    let ctx = memory_ctx(
        "http",
        &[
            ("SERVER_HEADER", "nginx/1.18.0 (Ubuntu)"),
            ("RESPONSE_CODE", "200"),
            ("CUSTOM_BODY", "<h1>Intranet</h1>\n"),
            (
                "EXTRA_HEADERS",
                "X-Powered-By: PHP/8.1.2\nX-Frame-Options: SAMEORIGIN",
            ),
        ],
        &sink,
    );
    let out = transcript(
        ctx,
        b"GET /anything HTTP/1.1\r\nHost: intranet\r\nConnection: close\r\n\r\n",
    )
    .await;
    insta::assert_snapshot!(strip_date(&out));
    let req = &sink.of_kind("request")[0];
    assert_eq!(req.get("status"), Some("200"));
    assert_eq!(req.get("src_ip"), Some("203.0.113.9"));
}
