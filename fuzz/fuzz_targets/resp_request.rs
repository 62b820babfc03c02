//! Fuzzes the RESP request decoder: total, bounded, progress on every step, and every
//! multibulk command it decodes re-encodes to an equal command.
#![no_main]

use decnet_wire::resp::{self, Decoded, MAX_ARGS, MAX_BULK_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    loop {
        match resp::decode(rest) {
            Ok(Decoded::Command { args, consumed }) => {
                assert!(consumed > 0 && consumed <= rest.len());
                assert!(!args.is_empty() && args.len() <= MAX_ARGS);
                assert!(args.iter().all(|a| a.len() <= MAX_BULK_LEN));
                let mut again = Vec::new();
                resp::encode_command(&args, &mut again);
                match resp::decode(&again) {
                    Ok(Decoded::Command {
                        args: a2,
                        consumed: c2,
                    }) => {
                        assert_eq!(a2, args);
                        assert_eq!(c2, again.len());
                    }
                    other => panic!("re-encoded command did not decode: {other:?}"),
                }
                rest = &rest[consumed..];
            }
            Ok(Decoded::Empty { consumed }) => {
                assert!(consumed > 0 && consumed <= rest.len());
                rest = &rest[consumed..];
            }
            Ok(Decoded::NeedMore { min_len }) => {
                assert!(min_len > rest.len());
                break;
            }
            Err(e) => {
                assert!(e.reply().starts_with("ERR Protocol error: "));
                break;
            }
        }
    }
    // The glob matcher is total too (pattern and text from the same input).
    let (pattern, text) = data.split_at(data.len() / 2);
    let _ = resp::glob_match(pattern, text, data.first().is_some_and(|b| b & 1 == 1));
});
