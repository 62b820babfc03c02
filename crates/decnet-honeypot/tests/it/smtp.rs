//! Live tests of the `smtp` emulator with Python's smtplib and nmap, plus a recorded
//! transcript over an in-memory stream.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use decnet_honeypot::event::MemorySink;
use sha2::{Digest, Sha256};

use crate::http::{memory_ctx, transcript};
use crate::support::{Decky, assert_has_source, require_tool};

const T: Duration = Duration::from_secs(10);

fn python(script: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn auth_login_and_plain_are_captured_and_mail_is_kept() {
    if require_tool("python3") {
        return;
    }
    let artifacts = tempfile::tempdir().unwrap();
    let dir = artifacts.path().display().to_string();
    let mut d = Decky::start(
        "smtp",
        &[
            ("DECNET_HOSTNAME", "mx1.corp.example"),
            ("DECNET_ARTIFACTS_DIR", &dir),
        ],
        1,
    );
    let out = python(&format!(
        "import smtplib\n\
         s = smtplib.SMTP('127.0.0.1', {port}, timeout=10)\n\
         print(s.ehlo('bot.example')[0])\n\
         s.esmtp_features['auth'] = 'LOGIN'\n\
         try:\n    s.login('postmaster', 'Spring2025!')\nexcept smtplib.SMTPAuthenticationError as e:\n    print('login', e.smtp_code, e.smtp_error.decode())\n\
         s.esmtp_features['auth'] = 'PLAIN'\n\
         try:\n    s.login('info@corp.example', 'pl4in')\nexcept smtplib.SMTPAuthenticationError as e:\n    print('plain', e.smtp_code)\n\
         msg = 'From: a@b.example\\r\\nSubject: invoice\\r\\n\\r\\n.hidden dot\\r\\nPay now.\\r\\n'\n\
         print(s.sendmail('a@b.example', ['ceo@corp.example', 'cfo@corp.example'], msg))\n\
         print(s.quit()[0])",
        port = d.ports[0]
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "250");
    assert_eq!(
        lines[1],
        "login 535 5.7.8 Error: authentication failed: authentication failure"
    );
    assert_eq!(lines[2], "plain 535");
    assert_eq!(lines[3], "{}");
    assert_eq!(lines[4], "221");

    let login = d.wait_for("auth_attempt", T);
    assert_has_source(&login);
    assert_eq!(login.param("principal"), Some("postmaster"));
    assert_eq!(login.param("secret_printable"), Some("Spring2025!"));
    assert_eq!(login.param("secret_kind"), Some("plaintext"));
    assert_eq!(login.param("mechanism"), Some("LOGIN"));
    assert_eq!(login.param("outcome"), Some("failure"));
    let plain = d.wait_for("auth_attempt", T);
    assert_eq!(plain.param("principal"), Some("info@corp.example"));
    assert_eq!(plain.param("secret_b64"), Some("cGw0aW4="));
    assert_eq!(plain.param("mechanism"), Some("PLAIN"));

    let stored = d.wait_for("artifact_stored", T);
    let accepted = d.wait_for("message_accepted", T);
    assert_eq!(accepted.param("from"), Some("a@b.example"));
    assert_eq!(
        accepted.param("rcpt"),
        Some("ceo@corp.example,cfo@corp.example")
    );
    let name = accepted.param("stored_as").unwrap();
    assert_eq!(stored.param("stored_as"), Some(name));
    let body = std::fs::read(artifacts.path().join("smtp").join(name)).unwrap();
    assert_eq!(
        body,
        b"From: a@b.example\r\nSubject: invoice\r\n\r\n.hidden dot\r\nPay now.\r\n"
    );
    assert_eq!(
        accepted.param("size"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(
        accepted.param("sha256"),
        Some(hex::encode(Sha256::digest(&body)).as_str())
    );
    // Named by us: time stamp and hash, nothing the client sent.
    assert!(name.ends_with(&format!(
        "_{}.eml",
        &hex::encode(Sha256::digest(&body))[..12]
    )));
}

#[test]
fn oversized_messages_are_capped_and_refused() {
    let artifacts = tempfile::tempdir().unwrap();
    let dir = artifacts.path().display().to_string();
    let mut d = Decky::start("smtp", &[("DECNET_ARTIFACTS_DIR", &dir)], 1);
    let mut s = TcpStream::connect(("127.0.0.1", d.ports[0])).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    let mut expect = |r: &mut BufReader<TcpStream>, code: &str| loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
        if line.as_bytes()[3] == b' ' {
            break;
        }
    };
    expect(&mut r, "220");
    s.write_all(b"EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n")
        .unwrap();
    expect(&mut r, "250");
    expect(&mut r, "250");
    expect(&mut r, "250");
    expect(&mut r, "354");
    let row = [b'x'; 998];
    for _ in 0..10_500 {
        s.write_all(&row).unwrap();
        s.write_all(b"\r\n").unwrap();
    }
    s.write_all(b".\r\nQUIT\r\n").unwrap();
    expect(&mut r, "552 5.3.4 Error: message file too big");
    expect(&mut r, "221");
    let stored = d.wait_for("artifact_stored", T);
    assert_eq!(stored.param("truncated"), Some("true"));
    assert_eq!(stored.param("size"), Some("10240000"));
    assert_eq!(stored.param("received"), Some("10500000"));
    let file = artifacts
        .path()
        .join("smtp")
        .join(stored.param("stored_as").unwrap());
    assert_eq!(std::fs::metadata(file).unwrap().len(), 10_240_000);
    assert!(
        d.wait_where(Duration::from_millis(300), |l| l.msgid
            == "message_accepted")
            .is_none()
    );
}

#[test]
fn nmap_identifies_postfix() {
    if require_tool("nmap") {
        return;
    }
    let d = Decky::start("smtp", &[("DECNET_HOSTNAME", "mail.corp.example")], 1);
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
    assert!(text.contains("Postfix smtpd"), "{text}");
    assert!(!text.to_lowercase().contains("honeypot"), "{text}");
}

#[tokio::test]
async fn postfix_transcript() {
    let sink = MemorySink::new();
    let ctx = memory_ctx("smtp", &[("DECNET_HOSTNAME", "mx1.corp.example")], &sink);
    let out = transcript(
        ctx,
        b"AUTH PLAIN AGEAYg==\r\nEHLO client.example\r\nAUTH LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\nAUTH LOGIN dXNlcg==\r\n*\r\nAUTH PLAIN\r\n!!!\r\nAUTH CRAM-MD5\r\nRCPT TO:<x@y>\r\nMAIL FROM:<>\r\nMAIL FROM:<a@b>\r\nRCPT TO:bob@corp.example\r\nRCPT <x>\r\nDATA\r\nline\r\n..dot\r\n.\r\nVRFY root\r\nEXPN staff\r\nSTARTTLS\r\nRSET\r\nNOOP\r\nGET / HTTP/1.1\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&out);
    let id_at = text.find("queued as ").unwrap() + "queued as ".len();
    let text = format!("{}<id>{}", &text[..id_at], &text[id_at + 11..]);
    insta::assert_snapshot!(text);
    // Only the complete LOGIN exchange carried a credential (the rest were refused or
    // aborted before a password).
    let auth = sink.of_kind("auth_attempt");
    assert_eq!(auth.len(), 1);
    assert_eq!(auth[0].get("principal"), Some("user"));
    assert_eq!(auth[0].get("secret_printable"), Some("pass"));
    let accepted = sink.of_kind("message_accepted");
    assert_eq!(accepted[0].get("size"), Some("12"));
}
