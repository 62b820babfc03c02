//! Fuzzes the RFB ProtocolVersion parser: total, and whatever parses prints back as the
//! same 12 bytes.
#![no_main]

use decnet_wire::rfb::{self, VERSION_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = <[u8; VERSION_LEN]>::try_from(data.get(..VERSION_LEN).unwrap_or_default()) else {
        return;
    };
    if let Ok(v) = rfb::parse_client_version(&msg) {
        let mut text = v.text().into_bytes();
        text.push(b'\n');
        assert_eq!(&text[..], &msg[..]);
    }
});
