//! Live tests of the `ftp` emulator with Python's ftplib and nmap, plus a recorded
//! transcript over an in-memory stream.

use std::process::Command;
use std::time::Duration;

use decnet_honeypot::event::MemorySink;

use crate::http::{memory_ctx, transcript};
use crate::support::{Decky, assert_has_source, require_tool};

const T: Duration = Duration::from_secs(10);

/// Runs a Python ftplib session against `port` and returns its printed lines.
fn ftplib(port: u16, body: &str) -> String {
    let script = format!(
        "import ftplib, io\nf = ftplib.FTP()\nprint(f.connect('127.0.0.1', {port}, timeout=10).strip())\n{body}\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
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
fn login_listing_download_and_refused_upload() {
    if require_tool("python3") {
        return;
    }
    let mut d = Decky::start("ftp", &[("ACCEPT_LOGINS", "always")], 1);
    let out = ftplib(
        d.ports[0],
        "print(f.login('backup', 'Backup#2024'))\n\
         print(f.pwd())\n\
         lines = []\n\
         f.retrlines('LIST', lines.append)\n\
         print('\\n'.join(lines))\n\
         f.cwd('backups')\n\
         names = f.nlst()\n\
         print(names)\n\
         buf = io.BytesIO()\n\
         print(f.retrbinary('RETR ' + names[-1], buf.write))\n\
         print('got', len(buf.getvalue()), 'size', f.size(names[-1]))\n\
         try:\n    f.storbinary('STOR shell.php', io.BytesIO(b'<?php'))\nexcept ftplib.error_perm as e:\n    print('stor', e)\n\
         try:\n    f.sendcmd('SITE EXEC id')\nexcept ftplib.error_perm as e:\n    print('site', e)\n\
         try:\n    f.sendcmd('XYZZY')\nexcept ftplib.error_perm as e:\n    print('xyzzy', e)\n\
         print(f.quit())",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "220 (vsFTPd 3.0.3)");
    assert_eq!(lines[1], "230 Login successful.");
    assert_eq!(lines[2], "/");
    assert!(
        lines[3].starts_with("-rw-r--r--    1 1000     1000  "),
        "{out}"
    );
    assert!(lines[3].ends_with(" README.txt"), "{out}");
    assert!(
        lines[4].starts_with("drwxr-xr-x    2 1000     1000         4096 "),
        "{out}"
    );
    assert!(out.contains("226 Transfer complete."), "{out}");
    let got = lines.iter().find(|l| l.starts_with("got ")).unwrap();
    let parts: Vec<&str> = got.split_whitespace().collect();
    assert_eq!(parts[1], parts[3], "downloaded bytes = SIZE: {got}");
    assert!(out.contains("stor 550 Permission denied."), "{out}");
    assert!(out.contains("site 550 Permission denied."), "{out}");
    assert!(out.contains("xyzzy 500 Unknown command."), "{out}");
    assert!(out.contains("221 Goodbye."), "{out}");

    let auth = d.wait_for("auth_attempt", T);
    assert_has_source(&auth);
    assert_eq!(auth.param("principal"), Some("backup"));
    assert_eq!(auth.param("secret_printable"), Some("Backup#2024"));
    assert_eq!(auth.param("secret_b64"), Some("QmFja3VwIzIwMjQ="));
    assert_eq!(auth.param("secret_kind"), Some("plaintext"));
    assert_eq!(auth.param("outcome"), Some("success"));
    let download = d.wait_for("download_attempt", T);
    assert_has_source(&download);
    assert!(download.param("path").unwrap().starts_with("/backups/"));
    assert_eq!(download.param("found"), Some("true"));
    assert_eq!(download.param("bytes_sent"), download.param("size"));
    let upload = d.wait_for("upload_attempt", T);
    assert_eq!(upload.param("path"), Some("shell.php"));
    // Every command is an event, the password never is.
    let commands: Vec<String> = d
        .seen
        .iter()
        .filter(|l| l.msgid == "command")
        .map(|l| l.param("cmd").unwrap().to_owned())
        .collect();
    assert!(
        commands.starts_with(&["USER".to_owned(), "PASS".to_owned()]),
        "{commands:?}"
    );
    assert!(d.seen.iter().all(|l| l.param("arg") != Some("Backup#2024")));
}

#[test]
fn refused_logins_and_traversal() {
    if require_tool("python3") {
        return;
    }
    let mut d = Decky::start("ftp", &[("ACCEPT_LOGINS", "never")], 1);
    let out = ftplib(
        d.ports[0],
        "try:\n    f.login('root', 'toor')\nexcept ftplib.error_perm as e:\n    print('login', e)\n",
    );
    assert!(out.contains("login 530 Login incorrect."), "{out}");
    let auth = d.wait_for("auth_attempt", T);
    assert_eq!(auth.param("outcome"), Some("failure"));

    let mut d = Decky::start("ftp", &[("ACCEPT_LOGINS", "always")], 1);
    let out = ftplib(
        d.ports[0],
        "f.login('anonymous', 'a@b')\n\
         try:\n    f.retrbinary('RETR ../../../etc/passwd', print)\nexcept ftplib.error_perm as e:\n    print('retr', e)\n\
         try:\n    f.cwd('/nowhere')\nexcept ftplib.error_perm as e:\n    print('cwd', e)",
    );
    assert!(out.contains("retr 550 Failed to open file."), "{out}");
    assert!(out.contains("cwd 550 Failed to change directory."), "{out}");
    let download = d.wait_for("download_attempt", T);
    assert_eq!(download.param("path"), Some("/etc/passwd"));
    assert_eq!(download.param("found"), Some("false"));
}

#[test]
fn nmap_identifies_vsftpd() {
    if require_tool("nmap") {
        return;
    }
    let d = Decky::start("ftp", &[], 1);
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
    assert!(text.contains("vsftpd 3.0.3"), "{text}");
    assert!(!text.to_lowercase().contains("honeypot"), "{text}");
}

#[tokio::test]
async fn vsftpd_transcript() {
    let sink = MemorySink::new();
    let ctx = memory_ctx("ftp", &[("ACCEPT_LOGINS", "always")], &sink);
    let out = transcript(
        ctx,
        b"SYST\r\nUSER admin\r\nPASS admin\r\nSYST\r\nFEAT\r\nPWD\r\nTYPE I\r\nTYPE X\r\nCWD backups\r\nCDUP\r\nCWD /nope\r\nLIST\r\nPORT 1,2,3,4,5,6\r\nRETR README.txt\r\nSIZE /README.txt\r\nMKD x\r\nDELE README.txt\r\nOPTS UTF8 ON\r\nNOOP\r\nHELP\r\nFOO\r\nQUIT\r\n",
    )
    .await;
    insta::assert_snapshot!(String::from_utf8_lossy(&out));
    assert_eq!(sink.of_kind("command").len(), 22);
    assert_eq!(
        sink.of_kind("auth_attempt")[0].get("outcome"),
        Some("success")
    );
}

#[tokio::test]
async fn proftpd_banner_and_replies() {
    let sink = MemorySink::new();
    let ctx = memory_ctx(
        "ftp",
        &[("FTP_SERVER", "proftpd"), ("ACCEPT_LOGINS", "never")],
        &sink,
    );
    let out = transcript(ctx, b"USER bob\r\nPASS x\r\nPWD\r\nXYZ\r\nQUIT\r\n").await;
    insta::assert_snapshot!(String::from_utf8_lossy(&out));
}
