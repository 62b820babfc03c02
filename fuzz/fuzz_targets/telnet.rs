//! Fuzzes the telnet decoder and negotiator: total, bounded, and data never grows.
#![no_main]

use decnet_wire::telnet::{MAX_SUBNEG, Telnet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut t = Telnet::new();
    let _ = t.opening();
    for chunk in data.chunks(7) {
        let f = t.feed(chunk);
        assert!(f.data.len() <= chunk.len());
        assert!(f.reply.len() <= chunk.len() * 3 + MAX_SUBNEG);
    }
});
