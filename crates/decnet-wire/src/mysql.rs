//! The MySQL client/server protocol up to authentication: packet framing, the v10
//! greeting, the client's `HandshakeResponse41` (or SSL request), `AuthSwitchRequest` and
//! `ERR` packets, and the server profiles (capabilities, charset, auth plugin, salt
//! alphabet) of MySQL 5.7/8.x and MariaDB.
//!
//! A packet is a 3-byte little-endian payload length, a sequence number, then the payload.
//! [`decode_packet`] is incremental and total and refuses a payload above
//! [`MAX_PACKET_LEN`] from its header alone. [`parse_handshake`] is total over any
//! payload and bounds every string ([`MAX_NAME_LEN`], [`MAX_AUTH_LEN`], [`MAX_ATTRS`]).
//!
//! Randomness is a parameter: [`ServerProfile::salt`] maps bytes the caller drew from a
//! CSPRNG onto the alphabet the real server uses.

use thiserror::Error;

/// Largest packet payload accepted (the reference's 1 MiB cap).
pub const MAX_PACKET_LEN: usize = 1024 * 1024;
/// Longest user name, database name or plugin name kept.
pub const MAX_NAME_LEN: usize = 512;
/// Longest auth response kept.
pub const MAX_AUTH_LEN: usize = 1024;
/// Most connection attributes kept.
pub const MAX_ATTRS: usize = 64;
/// Longest connection attribute key or value kept.
pub const MAX_ATTR_LEN: usize = 1024;
/// Length of the authentication scramble (salt).
pub const SALT_LEN: usize = 20;

/// Capability flags (`CLIENT_*`).
pub mod caps {
    /// New, more secure passwords (MariaDB leaves it clear to mark itself).
    pub const LONG_PASSWORD: u32 = 1;
    /// A database name follows in the handshake response.
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    /// Protocol 4.1.
    pub const PROTOCOL_41: u32 = 1 << 9;
    /// Switch to TLS after the SSL request.
    pub const SSL: u32 = 1 << 11;
    /// Length-prefixed (1 byte) auth response.
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    /// The auth plugin name follows.
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    /// Connection attributes follow.
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    /// Length-encoded auth response.
    pub const PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 1 << 21;
    /// A zstd compression level byte follows.
    pub const ZSTD_COMPRESSION_ALGORITHM: u32 = 1 << 26;
}

/// Server status flag: autocommit is on.
pub const STATUS_AUTOCOMMIT: u16 = 0x0002;

/// Error codes and SQL states the emulator sends.
pub mod errors {
    /// `ER_ACCESS_DENIED_ERROR`.
    pub const ACCESS_DENIED: (u16, &str) = (1045, "28000");
    /// `ER_HANDSHAKE_ERROR` ("Bad handshake").
    pub const HANDSHAKE: (u16, &str) = (1043, "08S01");
    /// `ER_NET_PACKETS_OUT_OF_ORDER`.
    pub const PACKETS_OUT_OF_ORDER: (u16, &str) = (1156, "08S01");
}

/// A framing or handshake error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MysqlError {
    /// A payload longer than [`MAX_PACKET_LEN`].
    #[error("packet of {0} bytes is over the {MAX_PACKET_LEN}-byte limit")]
    TooLarge(usize),
    /// The handshake response is cut short or malformed.
    #[error("malformed handshake response: {0}")]
    BadHandshake(&'static str),
}

/// One packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Sequence number.
    pub seq: u8,
    /// Payload.
    pub payload: &'a [u8],
}

/// One framing step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole packet and the bytes it used.
    Packet {
        /// The packet.
        packet: Packet<'a>,
        /// Bytes used.
        consumed: usize,
    },
    /// Call again with at least `min_len` bytes.
    NeedMore {
        /// Least useful buffer length (> the current one).
        min_len: usize,
    },
}

/// Reads the 4-byte header: `(payload length, sequence)`, once four bytes are present.
pub fn peek_header(buf: &[u8]) -> Option<(usize, u8)> {
    let h = buf.get(..4)?;
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    Some((len, h[3]))
}

/// Decodes the packet at the start of `buf`.
///
/// # Errors
/// [`MysqlError::TooLarge`] as soon as the header announces more than [`MAX_PACKET_LEN`].
pub fn decode_packet(buf: &[u8]) -> Result<Decoded<'_>, MysqlError> {
    let Some((len, seq)) = peek_header(buf) else {
        return Ok(Decoded::NeedMore { min_len: 4 });
    };
    if len > MAX_PACKET_LEN {
        return Err(MysqlError::TooLarge(len));
    }
    if buf.len() < 4 + len {
        return Ok(Decoded::NeedMore { min_len: 4 + len });
    }
    Ok(Decoded::Packet {
        packet: Packet {
            seq,
            payload: &buf[4..4 + len],
        },
        consumed: 4 + len,
    })
}

/// Appends one packet (the payload must be shorter than 16 MiB; longer ones are cut, the
/// emulator never builds them).
pub fn encode_packet(seq: u8, payload: &[u8], out: &mut Vec<u8>) {
    let len = payload.len().min(0xff_ffff);
    out.extend_from_slice(&[
        (len & 0xff) as u8,
        (len >> 8 & 0xff) as u8,
        (len >> 16 & 0xff) as u8,
        seq,
    ]);
    out.extend_from_slice(&payload[..len]);
}

/// Which server family a version string belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Oracle MySQL 8.x (`caching_sha2_password` by default).
    Mysql8,
    /// Oracle MySQL 5.x.
    Mysql5,
    /// MariaDB 10.x, announced with the `5.5.5-` replication prefix.
    Mariadb10,
    /// MariaDB 5.5 and 11+, announced as is.
    Mariadb,
}

/// What a server announces in its greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerProfile {
    /// Family.
    pub flavor: Flavor,
    /// Version string exactly as sent (MariaDB 10 gets its `5.5.5-` prefix).
    pub wire_version: String,
    /// Capability flags (never [`caps::SSL`]: the emulator offers no TLS).
    pub capabilities: u32,
    /// MariaDB's extended capabilities (the last 4 reserved bytes), 0 for MySQL.
    pub mariadb_capabilities: u32,
    /// Default collation id.
    pub charset: u8,
    /// Default auth plugin.
    pub auth_plugin: &'static str,
}

/// `mysql_native_password`.
pub const NATIVE_PASSWORD: &str = "mysql_native_password";
/// `caching_sha2_password`.
pub const CACHING_SHA2: &str = "caching_sha2_password";

fn leading_number(text: &str) -> u32 {
    text.split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl ServerProfile {
    /// The profile of a server announcing `version` (e.g. `8.0.36-0ubuntu0.22.04.1`,
    /// `10.11.6-MariaDB-0+deb12u1`). `utf8mb4_default` says whether the distro configures
    /// utf8mb4 as the server character set (Debian and Ubuntu do).
    pub fn for_version(version: &str, utf8mb4_default: bool) -> ServerProfile {
        let version = version.trim();
        let bare = version.strip_prefix("5.5.5-").unwrap_or(version);
        let major = leading_number(bare);
        let mariadb = bare.contains("MariaDB");
        let flavor = match (mariadb, major) {
            (true, 10) => Flavor::Mariadb10,
            (true, _) => Flavor::Mariadb,
            (false, m) if m >= 8 => Flavor::Mysql8,
            (false, _) => Flavor::Mysql5,
        };
        let all_low = 0xffff & !caps::SSL;
        match flavor {
            Flavor::Mysql8 => ServerProfile {
                flavor,
                wire_version: bare.to_owned(),
                capabilities: all_low | 0xdfff << 16,
                mariadb_capabilities: 0,
                charset: 255,
                auth_plugin: CACHING_SHA2,
            },
            Flavor::Mysql5 => ServerProfile {
                flavor,
                wire_version: bare.to_owned(),
                capabilities: all_low | 0x81ff << 16,
                mariadb_capabilities: 0,
                charset: if utf8mb4_default { 45 } else { 8 },
                auth_plugin: NATIVE_PASSWORD,
            },
            Flavor::Mariadb10 | Flavor::Mariadb => ServerProfile {
                flavor,
                wire_version: if flavor == Flavor::Mariadb10 {
                    format!("5.5.5-{bare}")
                } else {
                    bare.to_owned()
                },
                // MariaDB clears CLIENT_LONG_PASSWORD ("CLIENT_MYSQL") to mark itself.
                capabilities: (all_low & !caps::LONG_PASSWORD) | 0x81ff << 16,
                mariadb_capabilities: 0x1d,
                charset: if utf8mb4_default { 45 } else { 8 },
                auth_plugin: NATIVE_PASSWORD,
            },
        }
    }

    /// Maps 20 random bytes onto this server's scramble alphabet: MySQL 8 uses bytes
    /// 1..=127 except `$`; MySQL 5 and MariaDB use printable 33..=126.
    pub fn salt(&self, random: [u8; SALT_LEN]) -> [u8; SALT_LEN] {
        random.map(|b| match self.flavor {
            Flavor::Mysql8 => {
                let b = b & 0x7f;
                if b == 0 || b == b'$' { b + 1 } else { b }
            }
            Flavor::Mysql5 | Flavor::Mariadb10 | Flavor::Mariadb => 33 + b % 94,
        })
    }
}

/// Appends the v10 greeting packet (sequence 0).
pub fn encode_greeting(
    profile: &ServerProfile,
    connection_id: u32,
    salt: &[u8; SALT_LEN],
    out: &mut Vec<u8>,
) {
    let mut p = Vec::with_capacity(128);
    p.push(10);
    p.extend_from_slice(profile.wire_version.as_bytes());
    p.push(0);
    p.extend_from_slice(&connection_id.to_le_bytes());
    p.extend_from_slice(&salt[..8]);
    p.push(0);
    p.extend_from_slice(&((profile.capabilities & 0xffff) as u16).to_le_bytes());
    p.push(profile.charset);
    p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&((profile.capabilities >> 16) as u16).to_le_bytes());
    p.push((SALT_LEN + 1) as u8);
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&profile.mariadb_capabilities.to_le_bytes());
    p.extend_from_slice(&salt[8..]);
    p.push(0);
    p.extend_from_slice(profile.auth_plugin.as_bytes());
    p.push(0);
    encode_packet(0, &p, out);
}

/// Appends an `ERR` packet with a SQL state (the client speaks protocol 4.1).
pub fn encode_err(seq: u8, (code, state): (u16, &str), message: &[u8], out: &mut Vec<u8>) {
    let mut p = Vec::with_capacity(16 + message.len());
    p.push(0xff);
    p.extend_from_slice(&code.to_le_bytes());
    p.push(b'#');
    p.extend_from_slice(state.as_bytes());
    p.extend_from_slice(message);
    encode_packet(seq, &p, out);
}

/// Appends an `AuthSwitchRequest` to `plugin` with `data` (the scramble, NUL-terminated).
pub fn encode_auth_switch(seq: u8, plugin: &str, data: &[u8], out: &mut Vec<u8>) {
    let mut p = Vec::with_capacity(2 + plugin.len() + data.len() + 1);
    p.push(0xfe);
    p.extend_from_slice(plugin.as_bytes());
    p.push(0);
    p.extend_from_slice(data);
    p.push(0);
    encode_packet(seq, &p, out);
}

/// The client's first packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// A 32-byte SSL request: the client wants TLS first.
    SslRequest {
        /// Client capabilities.
        capabilities: u32,
    },
    /// A `HandshakeResponse41`.
    Response(HandshakeResponse),
}

/// A parsed `HandshakeResponse41`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HandshakeResponse {
    /// Client capabilities.
    pub capabilities: u32,
    /// Largest packet the client accepts.
    pub max_packet: u32,
    /// Client collation id.
    pub charset: u8,
    /// User name (cut at [`MAX_NAME_LEN`]).
    pub username: Vec<u8>,
    /// Auth response (cut at [`MAX_AUTH_LEN`]).
    pub auth_response: Vec<u8>,
    /// Database asked for, with `CONNECT_WITH_DB`.
    pub database: Option<Vec<u8>>,
    /// Auth plugin the response was computed with, with `PLUGIN_AUTH`.
    pub plugin: Option<Vec<u8>>,
    /// Connection attributes (at most [`MAX_ATTRS`]).
    pub attrs: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MysqlError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(MysqlError::BadHandshake("truncated"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, MysqlError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, MysqlError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn nul_str(&mut self) -> Result<&'a [u8], MysqlError> {
        let rest = &self.buf[self.at..];
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(MysqlError::BadHandshake("unterminated string"))?;
        self.at += n + 1;
        Ok(&rest[..n])
    }

    /// A length-encoded integer.
    fn lenenc(&mut self) -> Result<u64, MysqlError> {
        Ok(match self.u8()? {
            n @ 0..=0xfa => u64::from(n),
            0xfc => {
                let b = self.take(2)?;
                u64::from(u16::from_le_bytes([b[0], b[1]]))
            }
            0xfd => {
                let b = self.take(3)?;
                u64::from(b[0]) | u64::from(b[1]) << 8 | u64::from(b[2]) << 16
            }
            0xfe => {
                let b = self.take(8)?;
                u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            }
            _ => return Err(MysqlError::BadHandshake("invalid length-encoded integer")),
        })
    }

    fn lenenc_bytes(&mut self) -> Result<&'a [u8], MysqlError> {
        let n = usize::try_from(self.lenenc()?)
            .map_err(|_| MysqlError::BadHandshake("length out of range"))?;
        self.take(n)
    }

    fn rest(&self) -> &'a [u8] {
        &self.buf[self.at..]
    }
}

fn cut(bytes: &[u8], max: usize) -> Vec<u8> {
    bytes[..bytes.len().min(max)].to_vec()
}

/// Parses the client's first packet payload.
///
/// # Errors
/// [`MysqlError::BadHandshake`] for a pre-4.1 client, a cut-short packet or a malformed
/// field (the server answers "Bad handshake").
pub fn parse_handshake(payload: &[u8]) -> Result<Handshake, MysqlError> {
    let mut r = Reader {
        buf: payload,
        at: 0,
    };
    let capabilities = r.u32()?;
    if capabilities & caps::PROTOCOL_41 == 0 {
        return Err(MysqlError::BadHandshake("pre-4.1 client"));
    }
    let max_packet = r.u32()?;
    let charset = r.u8()?;
    r.take(23)?;
    if capabilities & caps::SSL != 0 && r.rest().is_empty() {
        return Ok(Handshake::SslRequest { capabilities });
    }
    let username = cut(r.nul_str()?, MAX_NAME_LEN);
    let auth_response = if capabilities & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        r.lenenc_bytes()?
    } else if capabilities & caps::SECURE_CONNECTION != 0 {
        let n = usize::from(r.u8()?);
        r.take(n)?
    } else {
        r.nul_str()?
    };
    let auth_response = cut(auth_response, MAX_AUTH_LEN);
    let mut response = HandshakeResponse {
        capabilities,
        max_packet,
        charset,
        username,
        auth_response,
        ..HandshakeResponse::default()
    };
    // Old clients stop after the auth response even when the flags promise more.
    if capabilities & caps::CONNECT_WITH_DB != 0 && !r.rest().is_empty() {
        response.database = Some(cut(r.nul_str()?, MAX_NAME_LEN));
    }
    if capabilities & caps::PLUGIN_AUTH != 0 && !r.rest().is_empty() {
        response.plugin = Some(cut(r.nul_str()?, MAX_NAME_LEN));
    }
    if capabilities & caps::CONNECT_ATTRS != 0 && !r.rest().is_empty() {
        let block = r.lenenc_bytes()?;
        let mut a = Reader { buf: block, at: 0 };
        while !a.rest().is_empty() {
            let key = a.lenenc_bytes()?;
            let value = a.lenenc_bytes()?;
            if response.attrs.len() < MAX_ATTRS {
                response
                    .attrs
                    .push((cut(key, MAX_ATTR_LEN), cut(value, MAX_ATTR_LEN)));
            }
        }
    }
    Ok(Handshake::Response(response))
}

/// Appends a `HandshakeResponse41` payload (what clients send; used by tests and fuzzing).
pub fn encode_handshake_response(r: &HandshakeResponse, out: &mut Vec<u8>) {
    fn lenenc(n: usize, out: &mut Vec<u8>) {
        match n {
            0..=0xfa => out.push(n as u8),
            0xfb..=0xffff => {
                out.push(0xfc);
                out.extend_from_slice(&(n as u16).to_le_bytes());
            }
            0x1_0000..=0xff_ffff => {
                out.push(0xfd);
                out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
            }
            _ => {
                out.push(0xfe);
                out.extend_from_slice(&(n as u64).to_le_bytes());
            }
        }
    }
    out.extend_from_slice(&r.capabilities.to_le_bytes());
    out.extend_from_slice(&r.max_packet.to_le_bytes());
    out.push(r.charset);
    out.extend_from_slice(&[0; 23]);
    out.extend_from_slice(&r.username);
    out.push(0);
    if r.capabilities & caps::PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        lenenc(r.auth_response.len(), out);
        out.extend_from_slice(&r.auth_response);
    } else if r.capabilities & caps::SECURE_CONNECTION != 0 {
        out.push(r.auth_response.len().min(255) as u8);
        out.extend_from_slice(&r.auth_response[..r.auth_response.len().min(255)]);
    } else {
        out.extend_from_slice(&r.auth_response);
        out.push(0);
    }
    if r.capabilities & caps::CONNECT_WITH_DB != 0 {
        out.extend_from_slice(r.database.as_deref().unwrap_or_default());
        out.push(0);
    }
    if r.capabilities & caps::PLUGIN_AUTH != 0 {
        out.extend_from_slice(r.plugin.as_deref().unwrap_or_default());
        out.push(0);
    }
    if r.capabilities & caps::CONNECT_ATTRS != 0 {
        let mut block = Vec::new();
        for (k, v) in &r.attrs {
            lenenc(k.len(), &mut block);
            block.extend_from_slice(k);
            lenenc(v.len(), &mut block);
            block.extend_from_slice(v);
        }
        lenenc(block.len(), out);
        out.extend_from_slice(&block);
    }
}

/// The "Access denied" message of error 1045.
pub fn access_denied_message(user: &[u8], host: &str, using_password: bool) -> Vec<u8> {
    let mut m = b"Access denied for user '".to_vec();
    m.extend_from_slice(user);
    m.extend_from_slice(b"'@'");
    m.extend_from_slice(host.as_bytes());
    m.extend_from_slice(if using_password {
        b"' (using password: YES)"
    } else {
        b"' (using password: NO)"
    });
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mariadb_greeting_matches_a_real_server_layout() {
        // Layout captured from mariadbd 10.11 (Debian 12), with the salt and id replaced.
        let profile = ServerProfile::for_version("10.11.19-MariaDB-0+deb12u1", false);
        let mut out = Vec::new();
        encode_greeting(&profile, 4, b"V+r|;O\\_I0S2?'BYwl7j", &mut out);
        let real: &[u8] = b"d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x04\x00\x00\x00V+r|;O\\_\x00\xfe\xf7\x08\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00I0S2?'BYwl7j\x00mysql_native_password\x00";
        assert_eq!(out, real);
    }

    #[test]
    fn mysql8_profile() {
        let p = ServerProfile::for_version("8.0.36-0ubuntu0.22.04.1", true);
        assert_eq!(p.flavor, Flavor::Mysql8);
        assert_eq!(p.wire_version, "8.0.36-0ubuntu0.22.04.1");
        assert_eq!(p.auth_plugin, CACHING_SHA2);
        assert_eq!(p.capabilities & caps::SSL, 0);
        assert_eq!(p.charset, 255);
        let salt = p.salt([
            0, b'$', 0x80, 0xff, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
        ]);
        assert!(salt.iter().all(|&b| b != 0 && b != b'$' && b < 0x80));
        let m = ServerProfile::for_version("5.5.5-10.11.6-MariaDB-0+deb12u1", true);
        assert_eq!(m.wire_version, "5.5.5-10.11.6-MariaDB-0+deb12u1");
        assert_eq!(m.charset, 45);
        assert!(m.salt([0xff; 20]).iter().all(|b| (33..=126).contains(b)));
    }

    #[test]
    fn parses_a_mariadb_client_response() {
        let r = HandshakeResponse {
            capabilities: caps::PROTOCOL_41
                | caps::SECURE_CONNECTION
                | caps::PLUGIN_AUTH
                | caps::CONNECT_ATTRS
                | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
                | caps::CONNECT_WITH_DB,
            max_packet: 16 << 20,
            charset: 33,
            username: b"bob".to_vec(),
            auth_response: vec![0xaa; 20],
            database: Some(b"shop".to_vec()),
            plugin: Some(NATIVE_PASSWORD.as_bytes().to_vec()),
            attrs: vec![(b"_client_name".to_vec(), b"libmariadb".to_vec())],
        };
        let mut buf = Vec::new();
        encode_handshake_response(&r, &mut buf);
        assert_eq!(parse_handshake(&buf), Ok(Handshake::Response(r)));
    }

    #[test]
    fn ssl_request_and_errors() {
        let mut ssl = (caps::PROTOCOL_41 | caps::SSL).to_le_bytes().to_vec();
        ssl.extend_from_slice(&[0; 28]);
        assert!(matches!(
            parse_handshake(&ssl),
            Ok(Handshake::SslRequest { .. })
        ));
        assert!(parse_handshake(&[1, 2]).is_err());
        assert!(parse_handshake(&0x0205u32.to_le_bytes()).is_err());
        let mut out = Vec::new();
        encode_err(
            2,
            errors::ACCESS_DENIED,
            &access_denied_message(b"bob", "127.0.0.1", true),
            &mut out,
        );
        assert_eq!(
            out,
            b"G\x00\x00\x02\xff\x15\x04#28000Access denied for user 'bob'@'127.0.0.1' (using password: YES)"
        );
        let mut out = Vec::new();
        encode_err(
            1,
            errors::PACKETS_OUT_OF_ORDER,
            b"Got packets out of order",
            &mut out,
        );
        assert_eq!(
            out,
            b"!\x00\x00\x01\xff\x84\x04#08S01Got packets out of order"
        );
    }

    #[test]
    fn framing_limits() {
        assert_eq!(decode_packet(&[1, 0]), Ok(Decoded::NeedMore { min_len: 4 }));
        assert_eq!(
            decode_packet(&[3, 0, 0, 1, b'a']),
            Ok(Decoded::NeedMore { min_len: 7 })
        );
        assert_eq!(
            decode_packet(&[0xff, 0xff, 0xff, 0]),
            Err(MysqlError::TooLarge(0xff_ffff))
        );
    }

    fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(any::<u8>(), 0..max)
    }

    fn nul_free(max: usize) -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(1u8..=255, 0..max)
    }

    proptest! {
        #[test]
        fn packet_roundtrip(seq in any::<u8>(), payload in bytes(300)) {
            let mut buf = Vec::new();
            encode_packet(seq, &payload, &mut buf);
            for cut in 0..buf.len() {
                let more = matches!(decode_packet(&buf[..cut]), Ok(Decoded::NeedMore { min_len }) if min_len > cut);
                prop_assert!(more);
            }
            prop_assert_eq!(
                decode_packet(&buf),
                Ok(Decoded::Packet { packet: Packet { seq, payload: &payload }, consumed: buf.len() })
            );
        }

        #[test]
        fn handshake_roundtrip(
            user in nul_free(40), auth in bytes(300), db in proptest::option::of(nul_free(20)),
            plugin in nul_free(30), attrs in prop::collection::vec((bytes(20), bytes(300)), 0..5),
            lenenc in any::<bool>(),
        ) {
            let mut capabilities = caps::PROTOCOL_41 | caps::SECURE_CONNECTION | caps::PLUGIN_AUTH | caps::CONNECT_ATTRS;
            if lenenc { capabilities |= caps::PLUGIN_AUTH_LENENC_CLIENT_DATA; }
            if db.is_some() { capabilities |= caps::CONNECT_WITH_DB; }
            let auth = if lenenc { auth } else { auth[..auth.len().min(255)].to_vec() };
            let r = HandshakeResponse { capabilities, max_packet: 1, charset: 8, username: user, auth_response: auth, database: db, plugin: Some(plugin), attrs };
            let mut buf = Vec::new();
            encode_handshake_response(&r, &mut buf);
            prop_assert_eq!(parse_handshake(&buf), Ok(Handshake::Response(r)));
        }

        #[test]
        fn parsing_is_total_and_bounded(payload in bytes(600)) {
            if let Ok(Handshake::Response(r)) = parse_handshake(&payload) {
                prop_assert!(r.username.len() <= MAX_NAME_LEN);
                prop_assert!(r.auth_response.len() <= MAX_AUTH_LEN);
                prop_assert!(r.attrs.len() <= MAX_ATTRS);
            }
            match decode_packet(&payload) {
                Ok(Decoded::Packet { consumed, packet }) => prop_assert_eq!(consumed, packet.payload.len() + 4),
                Ok(Decoded::NeedMore { min_len }) => prop_assert!(min_len > payload.len()),
                Err(MysqlError::TooLarge(n)) => prop_assert!(n > MAX_PACKET_LEN),
                Err(e) => prop_assert!(false, "{e}"),
            }
        }
    }
}
