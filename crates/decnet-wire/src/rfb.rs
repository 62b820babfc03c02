//! RFB (VNC, RFC 6143) up to the security result: the 12-byte version handshake, the
//! security-type negotiation of versions 3.3, 3.7 and 3.8, the VNC-authentication
//! challenge/response, and the SecurityResult with its 3.8 reason string.
//!
//! Every client message before authentication has a fixed size (12-byte version, 1-byte
//! security type, 16-byte response), so the decoders take exactly that many bytes and
//! cannot be asked to buffer more. [`parse_client_version`] is total.

use thiserror::Error;

/// What the server announces: RFB 3.8.
pub const SERVER_VERSION: &[u8; VERSION_LEN] = b"RFB 003.008\n";
/// Length of a ProtocolVersion message.
pub const VERSION_LEN: usize = 12;
/// Length of the VNC-authentication challenge and response.
pub const CHALLENGE_LEN: usize = 16;
/// Security type "VNC Authentication".
pub const SECURITY_VNC_AUTH: u8 = 2;
/// Longest reason string the server sends.
pub const MAX_REASON_LEN: usize = 256;

/// The protocol version both sides settle on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Negotiated {
    /// 3.3: the server picks the security type; no reason on failure.
    V3_3,
    /// 3.7: the client picks from a list; no reason on failure.
    V3_7,
    /// 3.8: like 3.7, with a reason string after a failed SecurityResult.
    V3_8,
}

/// A client's ProtocolVersion message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientVersion {
    /// Major version as sent.
    pub major: u16,
    /// Minor version as sent.
    pub minor: u16,
    /// The version the server speaks with it.
    pub negotiated: Negotiated,
}

impl ClientVersion {
    /// `RFB xxx.yyy` as sent, without the newline.
    pub fn text(&self) -> String {
        format!("RFB {:03}.{:03}", self.major, self.minor)
    }
}

/// A ProtocolVersion message that is not `RFB xxx.yyy\n`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("not an RFB protocol version message")]
pub struct BadVersion;

/// Parses a client's 12-byte ProtocolVersion message.
///
/// Per RFC 6143 a server treats any version other than 3.7 and 3.8 as 3.3; versions
/// above 3.8 (e.g. RealVNC's `004.001`) speak 3.8.
///
/// # Errors
/// [`BadVersion`] when the bytes are not `RFB ddd.ddd\n`.
pub fn parse_client_version(msg: &[u8; VERSION_LEN]) -> Result<ClientVersion, BadVersion> {
    if &msg[..4] != b"RFB " || msg[7] != b'.' || msg[11] != b'\n' {
        return Err(BadVersion);
    }
    let number = |digits: &[u8]| -> Result<u16, BadVersion> {
        digits.iter().try_fold(0u16, |acc, &d| {
            if d.is_ascii_digit() {
                Ok(acc * 10 + u16::from(d - b'0'))
            } else {
                Err(BadVersion)
            }
        })
    };
    let major = number(&msg[4..7])?;
    let minor = number(&msg[8..11])?;
    let negotiated = match (major, minor) {
        (3, 7) => Negotiated::V3_7,
        (3, m) if m >= 8 => Negotiated::V3_8,
        (m, _) if m > 3 => Negotiated::V3_8,
        _ => Negotiated::V3_3,
    };
    Ok(ClientVersion {
        major,
        minor,
        negotiated,
    })
}

/// Appends the security offer: for 3.7/3.8 a count and the list, for 3.3 the single
/// 32-bit type the server chose (the first of `types`).
pub fn encode_security_offer(negotiated: Negotiated, types: &[u8], out: &mut Vec<u8>) {
    match negotiated {
        Negotiated::V3_3 => {
            let t = types.first().copied().unwrap_or(0);
            out.extend_from_slice(&u32::from(t).to_be_bytes());
        }
        Negotiated::V3_7 | Negotiated::V3_8 => {
            let n = types.len().min(255);
            out.push(n as u8);
            out.extend_from_slice(&types[..n]);
        }
    }
}

/// Appends a SecurityResult: 0 on success, 1 on failure followed (3.8 only) by the
/// reason, cut at [`MAX_REASON_LEN`].
pub fn encode_security_result(negotiated: Negotiated, ok: bool, reason: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&u32::from(!ok).to_be_bytes());
    if !ok && negotiated == Negotiated::V3_8 {
        let reason = &reason.as_bytes()[..reason.len().min(MAX_REASON_LEN)];
        out.extend_from_slice(&u32::try_from(reason.len()).unwrap_or(0).to_be_bytes());
        out.extend_from_slice(reason);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn versions() {
        let v = |s: &[u8; 12]| parse_client_version(s).map(|v| v.negotiated);
        assert_eq!(v(b"RFB 003.008\n"), Ok(Negotiated::V3_8));
        assert_eq!(v(b"RFB 003.007\n"), Ok(Negotiated::V3_7));
        assert_eq!(v(b"RFB 003.003\n"), Ok(Negotiated::V3_3));
        assert_eq!(v(b"RFB 003.005\n"), Ok(Negotiated::V3_3));
        assert_eq!(v(b"RFB 003.889\n"), Ok(Negotiated::V3_8));
        assert_eq!(v(b"RFB 004.001\n"), Ok(Negotiated::V3_8));
        assert_eq!(v(b"GET / HTTP/1"), Err(BadVersion));
        assert_eq!(v(b"RFB 00x.008\n"), Err(BadVersion));
        assert_eq!(
            parse_client_version(b"RFB 003.007\n").unwrap().text(),
            "RFB 003.007"
        );
    }

    #[test]
    fn offers_and_results() {
        let mut out = Vec::new();
        encode_security_offer(Negotiated::V3_8, &[SECURITY_VNC_AUTH], &mut out);
        encode_security_offer(Negotiated::V3_3, &[SECURITY_VNC_AUTH], &mut out);
        assert_eq!(out, [1, 2, 0, 0, 0, 2]);
        let mut out = Vec::new();
        encode_security_result(Negotiated::V3_8, false, "Authentication failed", &mut out);
        assert_eq!(
            out,
            b"\x00\x00\x00\x01\x00\x00\x00\x15Authentication failed"
        );
        let mut out = Vec::new();
        encode_security_result(Negotiated::V3_7, false, "Authentication failed", &mut out);
        assert_eq!(out, [0, 0, 0, 1]);
    }

    proptest! {
        #[test]
        fn version_parsing_is_total(bytes in prop::array::uniform12(any::<u8>())) {
            if let Ok(v) = parse_client_version(&bytes) {
                let mut text = v.text().into_bytes();
                text.push(b'\n');
                prop_assert_eq!(&text[..], &bytes[..]);
            }
        }

        #[test]
        fn well_formed_versions_parse(major in 0u16..1000, minor in 0u16..1000) {
            let text = format!("RFB {major:03}.{minor:03}\n");
            let bytes: [u8; 12] = text.as_bytes().try_into().unwrap();
            let v = parse_client_version(&bytes).unwrap();
            prop_assert_eq!((v.major, v.minor), (major, minor));
        }
    }
}
