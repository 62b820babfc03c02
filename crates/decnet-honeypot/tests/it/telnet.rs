//! Live test of the `telnet` emulator with the real `telnet` client on a pty.

use std::time::Duration;

use crate::support::{Decky, assert_has_source, drive_pty, require_tool, run_with_stdin};

#[test]
fn telnet_client_logs_in_and_gets_the_shell() {
    if require_tool("telnet") || require_tool("python3") {
        return;
    }
    let artifacts = tempfile::tempdir().unwrap();
    let dir = artifacts.path().to_string_lossy().into_owned();
    let mut decky = Decky::start(
        "telnet",
        &[
            ("DECNET_DISTRO", "debian"),
            ("USERS", "root:toor"),
            ("DECNET_ARTIFACTS_DIR", &dir),
        ],
        1,
    );
    let args: Vec<String> = [
        "python3",
        &drive_pty(),
        "15",
        "--",
        "telnet",
        "127.0.0.1",
        &decky.ports[0].to_string(),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let steps = r#"[["expect","Debian GNU/Linux 12"],["expect","decky-test login: "],["send","root\r"],
        ["expect","Password: "],["send","letmein\r"],["expect","Login incorrect"],
        ["expect","decky-test login: "],["send","root\r"],["expect","Password: "],["send","toor\r"],
        ["expect","root@decky-test:~# "],["send","id\r"],["expect","uid=0(root) gid=0(root) groups=0(root)"],
        ["send","foo\r"],["expect","-bash: foo: command not found"],["send","exit\r"],["expect","logout"]]"#;
    let out = run_with_stdin(&args, steps);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "driver failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The password is never echoed.
    assert!(
        !text.contains("letmein") && !text.contains("toor"),
        "{text}"
    );

    let failed = decky.wait_for("auth_attempt", Duration::from_secs(10));
    assert_eq!(failed.param("principal"), Some("root"));
    assert_eq!(failed.param("secret_printable"), Some("letmein"));
    assert_eq!(failed.param("secret_b64"), Some("bGV0bWVpbg=="));
    assert_eq!(failed.param("outcome"), Some("failure"));
    assert_has_source(&failed);
    let ok = decky.wait_for("auth_attempt", Duration::from_secs(10));
    assert_eq!(ok.param("outcome"), Some("success"));
    let cmd = decky.wait_for("command", Duration::from_secs(10));
    assert_eq!(cmd.param("cmd"), Some("id"));
    assert_has_source(&cmd);
    let rec = decky.wait_for("session_recorded", Duration::from_secs(10));
    let sid = rec.param("sid").unwrap();
    let cast = std::fs::read_to_string(
        artifacts
            .path()
            .join("transcripts")
            .join(format!("{sid}.cast")),
    )
    .unwrap();
    assert!(cast.contains("command not found"), "{cast}");
}
