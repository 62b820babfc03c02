//! Fuzzes MySQL packet framing and the HandshakeResponse41 parser: total, bounded, and a
//! parsed response re-encodes to one that parses equal.
#![no_main]

use decnet_wire::mysql::{
    self, Decoded, Handshake, MAX_ATTRS, MAX_AUTH_LEN, MAX_NAME_LEN, MAX_PACKET_LEN,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match mysql::decode_packet(data) {
        Ok(Decoded::Packet { packet, consumed }) => {
            assert_eq!(consumed, packet.payload.len() + 4);
            assert!(packet.payload.len() <= MAX_PACKET_LEN);
        }
        Ok(Decoded::NeedMore { min_len }) => assert!(min_len > data.len()),
        Err(_) => {}
    }
    if let Ok(Handshake::Response(r)) = mysql::parse_handshake(data) {
        assert!(r.username.len() <= MAX_NAME_LEN);
        assert!(r.auth_response.len() <= MAX_AUTH_LEN);
        assert!(r.attrs.len() <= MAX_ATTRS);
        let mut again = Vec::new();
        mysql::encode_handshake_response(&r, &mut again);
        if let Ok(Handshake::Response(r2)) = mysql::parse_handshake(&again) {
            // Names and attributes survive; a field the flags promise but an old client
            // left out comes back empty rather than absent.
            assert_eq!(r2.username, r.username);
            assert_eq!(
                r2.database.unwrap_or_default(),
                r.database.unwrap_or_default()
            );
            assert_eq!(r2.plugin.unwrap_or_default(), r.plugin.unwrap_or_default());
            assert_eq!(r2.attrs, r.attrs);
        }
    }
});
