//! Fuzzes the SMTP line decoder, command parser, SASL decoders and DATA decoder.
#![no_main]

use decnet_wire::smtp::{self, Command, DataDecoder, Decoded, MAX_LINE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Ok(Decoded::Line { line, consumed }) = smtp::decode_line(rest) {
        assert!(consumed > 0 && consumed <= MAX_LINE_LEN);
        rest = &rest[consumed..];
        match smtp::parse_command(line) {
            Command::Data => {
                let mut decoder = DataDecoder::new();
                let mut kept = Vec::new();
                let used = decoder.feed(rest, &mut kept, 64);
                assert!(used <= rest.len() && kept.len() <= 64);
                rest = &rest[used..];
            }
            Command::Auth { initial: Some(text), .. } => {
                let _ = smtp::decode_plain(text.as_bytes());
            }
            _ => {
                let _ = smtp::decode_sasl(line);
            }
        }
    }
});
