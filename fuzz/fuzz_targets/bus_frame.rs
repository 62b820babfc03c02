//! Fuzzes the bus frame decoder: total, bounded, and consistent with the encoder.
#![no_main]

use decnet_wire::bus::{self, Decoded, MAX_BODY_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The unchecked decoder frames exactly like the checked one; only body checks differ.
    match (bus::decode(data), bus::decode_unchecked(data)) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Ok(Decoded::Frame { frame, .. })) => assert!(bus::check_body(frame.body).is_err()),
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("decoders disagree: {a:?} / {b:?}"),
    }
    let mut rest = data;
    loop {
        match bus::decode(rest) {
            Ok(Decoded::Frame { frame, consumed }) => {
                assert!(consumed > 0 && consumed <= rest.len());
                assert!(frame.body.len() <= MAX_BODY_LEN);
                let mut again = Vec::new();
                bus::encode(frame.verb, frame.args, frame.body, &mut again)
                    .expect("a decoded frame re-encodes");
                match bus::decode(&again) {
                    Ok(Decoded::Frame {
                        frame: f2,
                        consumed: c2,
                    }) => {
                        assert_eq!(f2, frame);
                        assert_eq!(c2, again.len());
                    }
                    other => panic!("re-encoded frame did not decode: {other:?}"),
                }
                rest = &rest[consumed..];
            }
            Ok(Decoded::NeedMore { min_len }) => {
                assert!(min_len > rest.len());
                let _ = bus::check_eof(rest);
                break;
            }
            Err(_) => break,
        }
    }
});
