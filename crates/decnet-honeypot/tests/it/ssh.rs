//! Live tests of the `ssh` emulator with real OpenSSH clients, sshpass, ssh-keyscan and
//! nmap, over loopback.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use decnet_honeypot::persona::Persona;

use crate::support::{Decky, assert_has_source, require_tool};

const SEED: &str = "5e";

fn ssh_opts(port: u16) -> Vec<String> {
    [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "ConnectTimeout=10",
        "-p",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([port.to_string()])
    .collect()
}

fn sshpass(password: &str, port: u16, extra: &[&str], remote: &[&str]) -> Output {
    let mut cmd = Command::new("sshpass");
    cmd.args(["-p", password, "ssh"])
        .args(ssh_opts(port))
        .args(extra);
    cmd.arg("root@127.0.0.1").args(remote);
    cmd.stdin(Stdio::null()).output().expect("run sshpass")
}

/// The kernel the decky of the test harness (NODE_NAME decky-test, seed 5e…) reports.
fn persona_kernel(distro: &str) -> (String, String) {
    let spec = decnet_core::catalog::service("ssh").unwrap();
    let seed = SEED.repeat(32);
    let p = Persona::from_lookup(spec, |k| match k {
        "NODE_NAME" => Some("decky-test".into()),
        "DECNET_SEED" => Some(seed.clone()),
        "DECNET_DISTRO" => Some(distro.into()),
        _ => None,
    })
    .unwrap();
    (p.kernel.release, p.kernel.version)
}

fn start(distro: &str, artifacts: Option<&std::path::Path>) -> Decky {
    let dir = artifacts.map(|p| p.to_string_lossy().into_owned());
    let mut env = vec![
        ("DECNET_DISTRO", distro),
        ("USERS", "root:toor,admin:admin123"),
        ("FAILURE_DELAY_MS", "300"),
    ];
    if let Some(d) = dir.as_deref() {
        env.push(("DECNET_ARTIFACTS_DIR", d));
    }
    Decky::start("ssh", &env, 1)
}

#[test]
fn exec_answers_with_the_persona_kernel_and_root_id() {
    if require_tool("sshpass") || require_tool("ssh") {
        return;
    }
    let mut decky = start("debian", None);
    let out = sshpass("toor", decky.ports[0], &[], &["uname -a; id"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let (release, version) = persona_kernel("debian");
    assert_eq!(
        stdout,
        format!(
            "Linux decky-test {release} {version} x86_64 GNU/Linux\nuid=0(root) gid=0(root) groups=0(root)\n"
        )
    );
    let auth = decky.wait_for("auth_attempt", Duration::from_secs(10));
    assert_eq!(auth.param("outcome"), Some("success"));
    assert_eq!(auth.param("principal"), Some("root"));
    assert_has_source(&auth);
    let cmd = decky.wait_for("command", Duration::from_secs(10));
    assert_eq!(cmd.param("cmd"), Some("uname -a; id"));
    assert_has_source(&cmd);
    // The exit status of the last command reaches the client.
    let out = sshpass("toor", decky.ports[0], &[], &["foo"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(String::from_utf8_lossy(&out.stderr).trim_end(), "");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "bash: line 1: foo: command not found\n"
    );
}

#[test]
fn interactive_session_shows_prompt_and_bash_errors_and_is_recorded() {
    if require_tool("ssh") || require_tool("python3") {
        return;
    }
    let artifacts = tempfile::tempdir().unwrap();
    let mut decky = start("debian", Some(artifacts.path()));
    let mut args = vec![
        "python3".to_owned(),
        crate::support::drive_pty(),
        "15".into(),
        "--".into(),
        "ssh".into(),
    ];
    args.extend(ssh_opts(decky.ports[0]));
    args.extend(["-tt".into(), "root@127.0.0.1".into()]);
    let steps = r#"[["expect","password: "],["send","toor\r"],["expect","root@decky-test:~# "],
        ["send","foo\r"],["expect","-bash: foo: command not found"],["expect","root@decky-test:~# "],
        ["send","cd /nope\r"],["expect","-bash: cd: /nope: No such file or directory"],
        ["send","exit\r"],["expect","logout"]]"#;
    let out = crate::support::run_with_stdin(&args, steps);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "driver failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("The programs included with the Debian GNU/Linux system are free software;"),
        "{text}"
    );
    let rec = decky.wait_for("session_recorded", Duration::from_secs(10));
    assert_has_source(&rec);
    let sid = rec.param("sid").unwrap().to_owned();
    let file = artifacts
        .path()
        .join("transcripts")
        .join(format!("{sid}.cast"));
    let cast = std::fs::read_to_string(&file).unwrap();
    let header: serde_json::Value = serde_json::from_str(cast.lines().next().unwrap()).unwrap();
    assert_eq!(header["sid"], sid.as_str());
    assert_eq!(header["version"], 2);
    assert!(header["width"].as_u64().unwrap() > 0);
    assert!(cast.contains("command not found"));
    assert_eq!(rec.param("bytes"), Some(cast.len().to_string().as_str()));
    assert_eq!(rec.param("truncated"), Some("false"));
}

#[test]
fn rejected_password_is_an_auth_attempt_with_every_field() {
    if require_tool("sshpass") {
        return;
    }
    let mut decky = start("debian", None);
    let out = sshpass(
        "hunter2\u{e9}",
        decky.ports[0],
        &[
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
        ],
        &["id"],
    );
    assert!(!out.status.success());
    let auth = decky.wait_for("auth_attempt", Duration::from_secs(10));
    assert_eq!(auth.param("principal"), Some("root"));
    assert_eq!(auth.param("username"), Some("root"));
    assert_eq!(auth.param("secret_kind"), Some("plaintext"));
    assert_eq!(auth.param("secret_printable"), Some("hunter2??"));
    assert_eq!(auth.param("secret_b64"), Some("aHVudGVyMsOp"));
    assert_eq!(auth.param("outcome"), Some("failure"));
    assert_eq!(auth.param("mechanism"), Some("password"));
    assert_has_source(&auth);
}

/// Runs OpenSSH's `ssh` as root@127.0.0.1 with an askpass that answers a wrong password to
/// every prompt (up to 10) and gives the number of prompts, the exit code and what `ssh`
/// printed (LogLevel INFO), with the port written as PORT.
fn wrong_passwords_until_disconnect(port: u16) -> (usize, Option<i32>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("prompts");
    let askpass = dir.path().join("askpass.sh");
    std::fs::write(
        &askpass,
        format!(
            "#!/bin/sh\necho prompt >> '{}'\necho wrongpw\n",
            prompts.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = Command::new("ssh")
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=INFO",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=10",
            "-p",
            &port.to_string(),
            "root@127.0.0.1",
            "id",
        ])
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let asked = std::fs::read_to_string(&prompts)
        .unwrap_or_default()
        .lines()
        .count();
    let lines = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("Warning: Permanently added"))
        .map(|l| l.replace(&port.to_string(), "PORT"))
        .collect();
    (asked, out.status.code(), lines)
}

/// What Debian's sshd 9.2 shows an OpenSSH client that keeps typing wrong passwords
/// (MaxAuthTries 6): five "try again", and the sixth answered only by the disconnect.
fn sshd_max_auth_tries_transcript() -> (usize, Option<i32>, Vec<String>) {
    let mut lines = vec!["Permission denied, please try again.".to_owned(); 5];
    lines.push(
        "Received disconnect from 127.0.0.1 port PORT:2: Too many authentication failures"
            .to_owned(),
    );
    lines.push("Disconnected from 127.0.0.1 port PORT".to_owned());
    (6, Some(255), lines)
}

#[test]
fn wrong_passwords_end_like_sshd_at_max_auth_tries() {
    if require_tool("ssh") {
        return;
    }
    let mut decky = start("debian", None);
    let ours = wrong_passwords_until_disconnect(decky.ports[0]);
    assert_eq!(ours, sshd_max_auth_tries_transcript());
    // Five passwords read; the sixth request is answered (unread) with the disconnect.
    for _ in 0..5 {
        let a = decky.wait_for("auth_attempt", Duration::from_secs(10));
        assert_eq!(a.param("secret_printable"), Some("wrongpw"));
        assert_eq!(a.param("outcome"), Some("failure"));
    }
    let last = decky.wait_for("request", Duration::from_secs(10));
    assert_eq!(last.param("request"), Some("userauth"));
    assert_eq!(last.param("username"), Some("root"));
    assert_eq!(last.param("reason"), Some("max_auth_tries"));
    assert_has_source(&last);
    assert!(
        decky
            .wait_where(Duration::from_millis(500), |l| l.msgid == "auth_attempt")
            .is_none()
    );

    // The recorded transcript is the real sshd's, checked against one started here with
    // Debian's authentication settings (KbdInteractiveAuthentication no), but without PAM:
    // PAM only adds its 2 s delay to each answer, not another message.
    let Some(sshd) = RealSshd::start("KbdInteractiveAuthentication no\nUsePAM no\n") else {
        return;
    };
    assert_eq!(
        wrong_passwords_until_disconnect(sshd.port),
        sshd_max_auth_tries_transcript()
    );
}

fn keyscan(port: u16) -> (String, String) {
    let out = Command::new("ssh-keyscan")
        .args([
            "-p",
            &port.to_string(),
            "-t",
            "rsa,ecdsa,ed25519",
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn keyscan_shows_identification_and_seeded_host_keys() {
    if require_tool("ssh-keyscan") {
        return;
    }
    let decky = start("debian", None);
    let (keys, banner) = keyscan(decky.ports[0]);
    assert!(
        banner.contains(&format!(
            "127.0.0.1:{} SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3",
            decky.ports[0]
        )),
        "{banner}"
    );
    for kind in ["ssh-rsa ", "ecdsa-sha2-nistp256 ", "ssh-ed25519 "] {
        assert!(keys.contains(kind), "{kind} missing in {keys}");
    }
    let key_of = |text: &str| -> Vec<String> {
        let mut v: Vec<String> = text
            .lines()
            .filter_map(|l| l.split_once(' ').map(|(_, k)| k.to_owned()))
            .collect();
        v.sort();
        v
    };
    let mine = key_of(&keys);
    drop(decky);
    // The same decky restarted keeps its keys; another seed gets other keys.
    let again = start("debian", None);
    assert_eq!(key_of(&keyscan(again.ports[0]).0), mine);
    drop(again);
    let other = Decky::start("ssh", &[("DECNET_SEED", &"a1".repeat(32))], 1);
    let theirs = key_of(&keyscan(other.ports[0]).0);
    assert_eq!(theirs.len(), 3);
    for k in &theirs {
        assert!(!mine.contains(k));
    }
}

#[test]
fn nmap_identifies_the_persona_openssh() {
    if require_tool("nmap") {
        return;
    }
    let decky = start("debian", None);
    let out = Command::new("nmap")
        .args(["-sV", "-Pn", "-p", &decky.ports[0].to_string(), "127.0.0.1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("OpenSSH 9.2p1 Debian 2+deb12u3"), "{text}");
    assert!(!text.to_lowercase().contains("honeypot"), "{text}");
}

/// The server's KEXINIT lists as `ssh -vvv` prints them ("KEX algorithms: a,b", ...).
fn kexinit(port: u16) -> Vec<String> {
    let out = Command::new("ssh")
        .args(ssh_opts(port))
        .args(["-vvv", "-o", "BatchMode=yes", "nobody@127.0.0.1", "true"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    text.lines()
        .skip_while(|l| !l.contains("peer server KEXINIT proposal"))
        .skip(1)
        .take(8)
        .map(|l| l.trim_start_matches("debug2: ").to_owned())
        .collect()
}

/// The Debian package's sshd, started by a test on a free loopback port with its own host
/// keys and `extra` config lines; killed when dropped.
struct RealSshd {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RealSshd {
    /// `None` when not root (allowed only with DECNET_SKIP_LIVE=1).
    fn start(extra: &str) -> Option<RealSshd> {
        if require_tool("/usr/sbin/sshd") || require_tool("ssh-keygen") {
            return None;
        }
        let uid = Command::new("id").arg("-u").output().unwrap();
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            assert_eq!(
                std::env::var("DECNET_SKIP_LIVE").as_deref(),
                Ok("1"),
                "sshd needs root for this test"
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = crate::support::free_port();
        let mut config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nPidFile {}/sshd.pid\n{extra}",
            dir.path().display()
        );
        for t in ["rsa", "ecdsa", "ed25519"] {
            let key = dir.path().join(format!("ssh_host_{t}_key"));
            let st = Command::new("ssh-keygen")
                .args(["-q", "-t", t, "-N", "", "-f"])
                .arg(&key)
                .status()
                .unwrap();
            assert!(st.success());
            config.push_str(&format!("HostKey {}\n", key.display()));
        }
        let config_path = dir.path().join("sshd_config");
        std::fs::write(&config_path, config).unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let child = Command::new("/usr/sbin/sshd")
            .arg("-D")
            .arg("-f")
            .arg(&config_path)
            .arg("-E")
            .arg(dir.path().join("sshd.log"))
            .spawn()
            .unwrap();
        let sshd = RealSshd {
            child,
            port,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(sshd)
    }
}

impl Drop for RealSshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn kexinit_is_the_real_sshds_minus_what_russh_lacks() {
    if require_tool("ssh") || require_tool("ssh-keygen") || require_tool("/usr/sbin/sshd") {
        return;
    }
    // The persona claims exactly the installed sshd's version.
    let v = Command::new("/usr/sbin/sshd").arg("-V").output().unwrap();
    let version_text = String::from_utf8_lossy(&v.stderr);
    let version = version_text.split(',').next().unwrap().trim().to_owned();
    assert!(version.starts_with("OpenSSH_"), "{version_text}");
    let Some(sshd) = RealSshd::start("") else {
        return;
    };
    let real = kexinit(sshd.port);
    drop(sshd);
    assert_eq!(real.len(), 8, "{real:?}");

    let decky = Decky::start(
        "ssh",
        &[("DECNET_DISTRO", "debian"), ("SSH_VERSION", &version)],
        1,
    );
    let ours = kexinit(decky.ports[0]);
    // Documented gaps: russh has no Streamlined NTRU Prime kex and no UMAC.
    let expected: Vec<String> = real
        .iter()
        .map(|line| {
            let (name, list) = line.split_once(": ").unwrap_or((line, ""));
            let kept: Vec<&str> = list
                .split(',')
                .filter(|a| !a.starts_with("sntrup761") && !a.starts_with("umac-"))
                .collect();
            format!("{name}: {}", kept.join(","))
        })
        .collect();
    assert_eq!(ours, expected);
}

#[test]
fn offered_public_key_is_captured_and_refused() {
    if require_tool("ssh") || require_tool("ssh-keygen") {
        return;
    }
    let mut decky = start("debian", None);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(dir.path().join("id_ed25519.pub")).unwrap();
    let fingerprint = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&key)
        .output()
        .unwrap();
    let fingerprint = String::from_utf8_lossy(&fingerprint.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    let out = Command::new("ssh")
        .args(ssh_opts(decky.ports[0]))
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "IdentitiesOnly=yes",
            "-i",
        ])
        .arg(&key)
        .args(["admin@127.0.0.1", "id"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied (publickey,password)"),
        "{out:?}"
    );
    let auth = decky.wait_for("auth_attempt", Duration::from_secs(10));
    assert_eq!(auth.param("principal"), Some("admin"));
    assert_eq!(auth.param("secret_kind"), Some("ssh_public_key"));
    assert_eq!(auth.param("mechanism"), Some("publickey"));
    assert_eq!(auth.param("outcome"), Some("failure"));
    assert_eq!(auth.param("fingerprint"), Some(fingerprint.as_str()));
    let blob = public.split_whitespace().nth(1).unwrap();
    assert!(
        auth.param("secret_printable").unwrap().contains(blob),
        "{auth:?}"
    );
    assert_has_source(&auth);
}
