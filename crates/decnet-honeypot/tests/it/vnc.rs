//! Live tests of the `vnc` emulator: a raw RFB 3.8 client and `nmap -sV`, over loopback.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::support::{Decky, assert_has_source, require_tool};

#[test]
fn rfb_client_response_is_captured() {
    let mut d = Decky::start("vnc", &[], 1);
    let mut s = TcpStream::connect(d.addr(0)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut version = [0u8; 12];
    s.read_exact(&mut version).unwrap();
    assert_eq!(&version, b"RFB 003.008\n");
    s.write_all(b"RFB 003.008\n").unwrap();
    let mut types = [0u8; 2];
    s.read_exact(&mut types).unwrap();
    assert_eq!(types, [1, 2]);
    s.write_all(&[2]).unwrap();
    let mut challenge = [0u8; 16];
    s.read_exact(&mut challenge).unwrap();
    s.write_all(&[0x5a; 16]).unwrap();
    let mut result = Vec::new();
    s.read_to_end(&mut result).unwrap();
    assert_eq!(
        result,
        b"\x00\x00\x00\x01\x00\x00\x00\x15Authentication failed"
    );
    let v = d.wait_for("version", Duration::from_secs(5));
    assert_eq!(v.param("client_version"), Some("RFB 003.008"));
    let e = d.wait_for("auth_attempt", Duration::from_secs(5));
    assert_has_source(&e);
    assert_eq!(e.param("secret_kind"), Some("vnc_des_response"));
    assert_eq!(e.param("secret_b64"), Some("WlpaWlpaWlpaWlpaWlpaWg=="));
    assert_eq!(e.param("challenge"), Some(hex::encode(challenge).as_str()));
    assert_eq!(e.param("outcome"), Some("failure"));
}

#[test]
fn nmap_sees_a_vnc_server() {
    if require_tool("nmap") {
        return;
    }
    let d = Decky::start("vnc", &[], 1);
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
    assert!(text.contains("VNC (protocol 3.8)"), "{text}");
    assert!(!text.to_lowercase().contains("honeypot"), "{text}");
}
