//! Fuzzes the FTP command decoder and path normaliser: total and bounded.
#![no_main]

use decnet_wire::ftp::{self, Decoded, MAX_LINE_LEN, MAX_VERB_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        match ftp::decode(rest) {
            Ok(Decoded::Command { command, consumed }) => {
                assert!(consumed > 0 && consumed <= rest.len() && consumed <= MAX_LINE_LEN);
                assert!(command.verb.len() <= MAX_VERB_LEN);
                if let Ok(path) = ftp::normalize_path("/pub", command.arg) {
                    assert!(path.starts_with('/'));
                    assert!(!path.split('/').any(|p| p == ".." || p == "."));
                }
                let _ = ftp::parse_port(command.arg);
                let _ = ftp::parse_eprt(command.arg);
                rest = &rest[consumed..];
            }
            Ok(Decoded::NeedMore) => break,
            Err(_) => break,
        }
    }
});
