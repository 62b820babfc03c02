//! Fuzzes the PostgreSQL startup and message decoders: total, bounded, and a decoded
//! StartupMessage with a valid layout re-encodes to one that decodes to the same
//! parameters (not always the same bytes: like the server, the decoder accepts a trailing
//! name without a value in the terminator's place).
#![no_main]

use decnet_wire::pgwire::{
    self, Decoded, MAX_AUTH_MESSAGE_LEN, MAX_NAME_LEN, MAX_STARTUP_LEN, Startup,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match pgwire::decode_startup(data) {
        Ok(Decoded::Done { value, consumed }) => {
            assert!(consumed <= data.len() && consumed <= MAX_STARTUP_LEN + 4);
            if let Startup::Message {
                version,
                params,
                layout_ok: true,
            } = value
            {
                let refs: Vec<(&[u8], &[u8])> = params
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_slice()))
                    .collect();
                let mut again = Vec::new();
                pgwire::encode_startup(version, &refs, &mut again);
                match pgwire::decode_startup(&again) {
                    Ok(Decoded::Done {
                        value:
                            Startup::Message {
                                params: p2,
                                layout_ok: true,
                                ..
                            },
                        ..
                    }) => {
                        assert_eq!(p2, params);
                    }
                    // Re-encoding may cross the length limit only if the input was at it.
                    other => assert!(again.len() > MAX_STARTUP_LEN + 4, "{other:?}"),
                }
            }
        }
        Ok(Decoded::NeedMore { min_len }) => {
            assert!(min_len > data.len() && min_len <= MAX_STARTUP_LEN + 4);
        }
        Err(_) => {}
    }
    match pgwire::decode_message(data, MAX_AUTH_MESSAGE_LEN) {
        Ok(Decoded::Done { value, consumed }) => {
            assert_eq!(consumed, value.body.len() + 5);
            let _ = pgwire::password(value.body);
        }
        Ok(Decoded::NeedMore { min_len }) => assert!(min_len > data.len()),
        Err(_) => {}
    }
    assert!(pgwire::clip_name(data).len() <= MAX_NAME_LEN);
});
