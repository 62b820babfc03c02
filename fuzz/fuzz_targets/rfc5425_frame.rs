//! Fuzzes the RFC 5425 frame decoder: total, bounded, consistent with the encoder, and the ack parser.
#![no_main]

use decnet_wire::rfc5425::{self, MAX_FRAME};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        match rfc5425::decode(rest) {
            Ok(Some((range, used))) => {
                assert!(used > 0 && used <= rest.len() && range.end == used);
                assert!(!range.is_empty() && range.len() <= MAX_FRAME);
                let payload = &rest[range];
                let mut again = Vec::new();
                rfc5425::encode(payload, &mut again).expect("a decoded payload re-encodes");
                assert_eq!(&again[..], &rest[..used]);
                if let Ok(n) = rfc5425::parse_ack(payload) {
                    assert_eq!(rfc5425::ack_payload(n).as_bytes(), payload);
                }
                rest = &rest[used..];
            }
            Ok(None) => break,
            Err(_) => break,
        }
    }
});
