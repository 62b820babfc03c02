//! `mysql`: a MySQL or MariaDB server up to authentication. It sends the v10 greeting of
//! the persona's version (capabilities, collation and default auth plugin of that
//! family, no TLS offered, a fresh 20-byte scramble from the OS CSPRNG), parses the
//! client's `HandshakeResponse41`, and refuses every login with the real
//! `ERROR 1045 (28000): Access denied for user 'x'@'ip' (using password: YES|NO)`.
//!
//! A MySQL 8 greeting names `caching_sha2_password`; a client that answers with that
//! plugin is switched to `mysql_native_password` (what a real server does for an account
//! created with the native plugin), so every captured response is a native scramble that
//! the recorded salt makes crackable offline (hashcat mode 11200). An SSL request is
//! refused with "Bad handshake", as a server without TLS does.
//!
//! Bounded: packets up to `MAX_PACKET_LEN` (larger ones close the connection), strings
//! cut by the codec, every read within the idle timeout or the server's 10-second
//! `connect_timeout`, whichever is shorter.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use decnet_wire::mysql::{self, Decoded, Handshake, HandshakeResponse, ServerProfile, errors};
use rand::{Rng, RngCore};

use crate::Error;
use crate::event::{Credential, Event, MAX_SECRET_BYTES, Outcome, SecretKind, kind, printable};
use crate::persona::Persona;
use crate::server::{BoxFuture, Conn, Emulator, ServiceCtx};
use crate::services::framed::{Framed, Stop};

/// The server's `connect_timeout`: how long it waits for the handshake response.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Most unconsumed bytes buffered: one packet of the largest accepted size.
pub const MAX_BUFFER: usize = mysql::MAX_PACKET_LEN + 4;
/// Most connection attributes copied into the event.
pub const MAX_LOGGED_ATTRS: usize = 16;

/// The version a decky announces when the persona names none: what its distro ships.
pub fn default_version(distro: &str) -> &'static str {
    match distro {
        "ubuntu22" => "8.0.36-0ubuntu0.22.04.1",
        "ubuntu20" => "8.0.36-0ubuntu0.20.04.1",
        "rocky9" => "8.0.36",
        "centos7" => "5.5.68-MariaDB",
        "alpine" => "10.11.6-MariaDB",
        "fedora" => "10.5.22-MariaDB",
        "kali" => "10.11.6-MariaDB-2",
        "arch" => "11.2.3-MariaDB",
        _ => "10.11.6-MariaDB-0+deb12u1",
    }
}

/// Builds the emulator from the persona's `mysql_version` (or `version`).
///
/// # Errors
/// None today; the signature is the registry's.
pub fn build(ctx: &ServiceCtx) -> Result<Arc<dyn Emulator>, Error> {
    Ok(Arc::new(Mysql::from_persona(&ctx.persona)))
}

/// The MySQL emulator.
pub struct Mysql {
    profile: ServerProfile,
    next_connection_id: AtomicU32,
}

impl Mysql {
    /// The server this persona announces; connection ids start at a seeded value (a
    /// server that has been up a while) and grow per connection.
    pub fn from_persona(persona: &Persona) -> Mysql {
        let slug = persona.distro.slug;
        let version = persona
            .get("mysql_version")
            .or_else(|| persona.get("version"))
            .unwrap_or_else(|| default_version(slug));
        // Debian-family packages configure utf8mb4 as the server character set.
        let utf8mb4 = matches!(
            slug,
            "debian" | "ubuntu22" | "ubuntu20" | "kali" | "alpine" | "arch"
        );
        let start = persona.rng("mysql-connection-id").gen_range(40..40_000);
        Mysql {
            profile: ServerProfile::for_version(version, utf8mb4),
            next_connection_id: AtomicU32::new(start),
        }
    }

    /// The announced profile.
    pub fn profile(&self) -> &ServerProfile {
        &self.profile
    }
}

impl Emulator for Mysql {
    fn handle(self: Arc<Self>, conn: Conn, ctx: Arc<ServiceCtx>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let peer = conn.peer;
            let idle = ctx.limits.idle_timeout.min(CONNECT_TIMEOUT);
            let mut io = Framed::new(conn.stream, idle, MAX_BUFFER);
            if let Err(stop) = self.session(&mut io, &ctx, peer).await
                && stop != Stop::Eof
            {
                ctx.emit(
                    Event::from_peer(kind::PROTOCOL_ERROR, peer).field("reason", stop.as_str()),
                );
            }
            io.close().await;
        })
    }
}

/// The client address as the server prints it (IPv4-mapped addresses as IPv4).
fn host_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map_or_else(|| v6.to_string(), |v4| v4.to_string()),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// What reading the next packet gave.
enum Next {
    Payload(Vec<u8>),
    /// The header carried the wrong sequence number (answered already).
    OutOfOrder,
    /// Larger than the cap: closed without a word.
    TooLarge(usize),
}

async fn read_packet(io: &mut Framed, expected_seq: u8, out: &mut Vec<u8>) -> Result<Next, Stop> {
    io.fill(4).await?;
    if let Some((_, seq)) = mysql::peek_header(io.buffer())
        && seq != expected_seq
    {
        // The server checks the sequence number on the header alone.
        out.clear();
        mysql::encode_err(
            1,
            errors::PACKETS_OUT_OF_ORDER,
            b"Got packets out of order",
            out,
        );
        io.write_all(out).await?;
        return Ok(Next::OutOfOrder);
    }
    loop {
        match mysql::decode_packet(io.buffer()) {
            Ok(Decoded::NeedMore { min_len }) => io.fill(min_len).await?,
            Ok(Decoded::Packet { packet, consumed }) => {
                let payload = packet.payload.to_vec();
                io.consume(consumed);
                return Ok(Next::Payload(payload));
            }
            Err(mysql::MysqlError::TooLarge(n)) => return Ok(Next::TooLarge(n)),
            Err(mysql::MysqlError::BadHandshake(_)) => return Err(Stop::Io),
        }
    }
}

fn attrs_json(attrs: &[(Vec<u8>, Vec<u8>)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = attrs
        .iter()
        .take(MAX_LOGGED_ATTRS)
        .map(|(k, v)| (printable(k), serde_json::Value::String(printable(v))))
        .collect();
    serde_json::Value::Object(map).to_string()
}

impl Mysql {
    async fn session(
        &self,
        io: &mut Framed,
        ctx: &ServiceCtx,
        peer: SocketAddr,
    ) -> Result<(), Stop> {
        let connection_id = self
            .next_connection_id
            .fetch_add(rand::thread_rng().gen_range(1..=3), Ordering::Relaxed)
            % 0x00ff_ffff;
        let mut random = [0u8; mysql::SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let salt = self.profile.salt(random);
        let mut out = Vec::with_capacity(256);
        mysql::encode_greeting(&self.profile, connection_id, &salt, &mut out);
        io.write_all(&out).await?;

        let bad_handshake = |reason: &str, out: &mut Vec<u8>| {
            ctx.emit(
                Event::from_peer(kind::PROTOCOL_ERROR, peer)
                    .field("reason", reason)
                    .field("connection_id", connection_id.to_string()),
            );
            out.clear();
            mysql::encode_err(2, errors::HANDSHAKE, b"Bad handshake", out);
        };
        let payload = match read_packet(io, 1, &mut out).await? {
            Next::Payload(p) => p,
            Next::OutOfOrder => {
                ctx.emit(
                    Event::from_peer(kind::PROTOCOL_ERROR, peer)
                        .field("reason", "packets_out_of_order"),
                );
                return Ok(());
            }
            Next::TooLarge(n) => {
                ctx.emit(
                    Event::from_peer(kind::PROTOCOL_ERROR, peer)
                        .field("reason", "packet_too_large")
                        .field("length", n.to_string()),
                );
                return Ok(());
            }
        };
        let response = match mysql::parse_handshake(&payload) {
            Ok(Handshake::Response(r)) => r,
            Ok(Handshake::SslRequest { .. }) => {
                bad_handshake("ssl_request", &mut out);
                return io.write_all(&out).await;
            }
            Err(_) => {
                bad_handshake("bad_handshake", &mut out);
                return io.write_all(&out).await;
            }
        };
        let first_plugin = response
            .plugin
            .clone()
            .unwrap_or_else(|| mysql::NATIVE_PASSWORD.as_bytes().to_vec());
        let mut scramble = response.auth_response.clone();
        let mut seq = 2u8;
        let switched = first_plugin != mysql::NATIVE_PASSWORD.as_bytes() && !scramble.is_empty();
        if switched {
            out.clear();
            mysql::encode_auth_switch(seq, mysql::NATIVE_PASSWORD, &salt, &mut out);
            io.write_all(&out).await?;
            scramble = match read_packet(io, seq + 1, &mut out).await {
                Ok(Next::Payload(p)) => p[..p.len().min(mysql::MAX_AUTH_LEN)].to_vec(),
                Ok(Next::OutOfOrder) => return Ok(()),
                Ok(Next::TooLarge(_)) | Err(_) => {
                    // The client would not switch: keep what it offered first.
                    self.emit_attempt(
                        ctx,
                        peer,
                        connection_id,
                        &salt,
                        &response,
                        &first_plugin,
                        true,
                        None,
                    );
                    return Ok(());
                }
            };
            seq += 2;
        }
        self.emit_attempt(
            ctx,
            peer,
            connection_id,
            &salt,
            &response,
            &first_plugin,
            switched,
            Some(&scramble),
        );
        out.clear();
        let message = mysql::access_denied_message(
            &response.username,
            &host_text(peer.ip()),
            !scramble.is_empty(),
        );
        mysql::encode_err(seq, errors::ACCESS_DENIED, &message, &mut out);
        io.write_all(&out).await
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_attempt(
        &self,
        ctx: &ServiceCtx,
        peer: SocketAddr,
        connection_id: u32,
        salt: &[u8; mysql::SALT_LEN],
        response: &HandshakeResponse,
        first_plugin: &[u8],
        switched: bool,
        native: Option<&[u8]>,
    ) {
        let secret = native.unwrap_or(&response.auth_response);
        let credential = Credential {
            principal: Some(String::from_utf8_lossy(&response.username).into_owned()),
            kind: SecretKind::MysqlNativePassword,
            secret: secret[..secret.len().min(MAX_SECRET_BYTES)].to_vec(),
            outcome: Outcome::Failure,
            mechanism: Some(mysql::NATIVE_PASSWORD.to_owned()),
        };
        let mut event = Event::from_peer(kind::AUTH_ATTEMPT, peer)
            .credential(&credential)
            .field("salt", hex::encode(salt))
            .field("connection_id", connection_id.to_string())
            .field("server_version", self.profile.wire_version.clone())
            .field("client_plugin", printable(first_plugin))
            .field("auth_switch", if switched { "true" } else { "false" })
            .field(
                "using_password",
                if secret.is_empty() { "NO" } else { "YES" },
            )
            .field(
                "client_capabilities",
                format!("0x{:08x}", response.capabilities),
            )
            .field("charset", response.charset.to_string());
        if let Some(db) = &response.database {
            event = event.field_bytes("database", db);
        }
        if !response.attrs.is_empty() {
            event = event.field("connect_attrs", attrs_json(&response.attrs));
        }
        if native.is_none() {
            event = event.field(
                "note",
                "client left before the switch to mysql_native_password",
            );
        } else if secret.len() == mysql::SALT_LEN {
            // Hashcat mode 11200, ready for offline cracking.
            event = event.field(
                "hashcat",
                format!("$mysqlna${}*{}", hex::encode(salt), hex::encode(secret)),
            );
        }
        ctx.emit(event);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::server::Limits;
    use crate::services::framed::testkit::{connect, ctx, read_n, read_to_end, render, send};
    use decnet_wire::mysql::caps;
    use tokio::io::DuplexStream;

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        mysql::encode_packet(seq, payload, &mut out);
        out
    }

    fn client_response(plugin: &str, auth: &[u8], db: Option<&[u8]>) -> Vec<u8> {
        let mut capabilities = caps::PROTOCOL_41
            | caps::SECURE_CONNECTION
            | caps::PLUGIN_AUTH
            | caps::CONNECT_ATTRS
            | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA;
        if db.is_some() {
            capabilities |= caps::CONNECT_WITH_DB;
        }
        let r = HandshakeResponse {
            capabilities,
            max_packet: 16 << 20,
            charset: 45,
            username: b"bob".to_vec(),
            auth_response: auth.to_vec(),
            database: db.map(<[u8]>::to_vec),
            plugin: Some(plugin.as_bytes().to_vec()),
            attrs: vec![
                (b"_client_name".to_vec(), b"libmariadb".to_vec()),
                (b"program_name".to_vec(), b"mysql".to_vec()),
            ],
        };
        let mut payload = Vec::new();
        mysql::encode_handshake_response(&r, &mut payload);
        payload
    }

    /// Reads the greeting; returns (version, salt).
    async fn greeting(client: &mut DuplexStream) -> (Vec<u8>, Vec<u8>) {
        let head = read_n(client, 4).await;
        let len = usize::from(head[0]) | usize::from(head[1]) << 8;
        assert_eq!(head[3], 0);
        let body = read_n(client, len).await;
        assert_eq!(body[0], 10);
        let nul = body.iter().position(|&b| b == 0).unwrap();
        let version = body[1..nul].to_vec();
        let at = nul + 1 + 4;
        let mut salt = body[at..at + 8].to_vec();
        let part2 = at + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10;
        salt.extend_from_slice(&body[part2..part2 + 12]);
        (version, salt)
    }

    #[tokio::test]
    async fn mariadb_client_transcript() {
        let (ctx, sink) = ctx("mysql", &[], Limits::default());
        let (mut client, task) = connect(&ctx);
        let (version, salt) = greeting(&mut client).await;
        assert_eq!(version, b"5.5.5-10.11.6-MariaDB-0+deb12u1");
        assert!(salt.iter().all(|b| (33..=126).contains(b)));
        send(
            &mut client,
            &packet(
                1,
                &client_response("mysql_native_password", &[0x11; 20], Some(b"shop")),
            ),
        )
        .await;
        assert_eq!(
            read_to_end(&mut client).await,
            b"I\x00\x00\x02\xff\x15\x04#28000Access denied for user 'bob'@'203.0.113.9' (using password: YES)"
        );
        task.await.unwrap();
        let auth = &sink.of_kind(kind::AUTH_ATTEMPT)[0];
        assert_eq!(auth.get("salt"), Some(hex::encode(&salt).as_str()));
        assert_eq!(
            auth.get("hashcat").unwrap(),
            format!("$mysqlna${}*{}", hex::encode(&salt), "11".repeat(20))
        );
        insta::assert_snapshot!(render(&sink, &["salt", "hashcat", "connection_id"]), @r#"
        mysql connect src_ip="203.0.113.9" src_port="51515" dst_port="3306"
        mysql auth_attempt src_ip="203.0.113.9" src_port="51515" principal="bob" secret_kind="mysql_native_password" secret_printable="????????????????????" secret_b64="ERERERERERERERERERERERERERE=" outcome="failure" mechanism="mysql_native_password" username="bob" salt="[redacted]" connection_id="[redacted]" server_version="5.5.5-10.11.6-MariaDB-0+deb12u1" client_plugin="mysql_native_password" auth_switch="false" using_password="YES" client_capabilities="0x00388208" charset="45" database="shop" connect_attrs="{\"_client_name\":\"libmariadb\",\"program_name\":\"mysql\"}" hashcat="[redacted]"
        mysql disconnect src_ip="203.0.113.9" src_port="51515" duration_ms="[redacted]"
        "#);
    }

    #[tokio::test]
    async fn mysql8_switches_caching_sha2_clients_to_native() {
        let (ctx, sink) = ctx(
            "mysql",
            &[("MYSQL_VERSION", "8.0.36-0ubuntu0.22.04.1")],
            Limits::default(),
        );
        let (mut client, task) = connect(&ctx);
        let (version, salt) = greeting(&mut client).await;
        assert_eq!(version, b"8.0.36-0ubuntu0.22.04.1");
        send(
            &mut client,
            &packet(
                1,
                &client_response("caching_sha2_password", &[0x22; 32], None),
            ),
        )
        .await;
        let switch = read_n(&mut client, 4 + 1 + 22 + 21).await;
        let mut expected = packet(2, b"\xfemysql_native_password\x00");
        expected[0] += 21;
        expected.extend_from_slice(&salt);
        expected.push(0);
        assert_eq!(switch, expected);
        send(&mut client, &packet(3, &[0x33; 20])).await;
        let reply = read_to_end(&mut client).await;
        assert_eq!(reply[3], 4);
        assert!(
            reply.ends_with(b"Access denied for user 'bob'@'203.0.113.9' (using password: YES)")
        );
        task.await.unwrap();
        let auth = &sink.of_kind(kind::AUTH_ATTEMPT)[0];
        assert_eq!(auth.get("auth_switch"), Some("true"));
        assert_eq!(auth.get("client_plugin"), Some("caching_sha2_password"));
        assert_eq!(auth.get("secret_b64"), Some("MzMzMzMzMzMzMzMzMzMzMzMzMzM="));
    }

    #[tokio::test]
    async fn no_password_and_protocol_errors() {
        let (ctx, sink) = ctx("mysql", &[], Limits::default());
        let (mut client, task) = connect(&ctx);
        greeting(&mut client).await;
        send(
            &mut client,
            &packet(1, &client_response("mysql_native_password", b"", None)),
        )
        .await;
        let reply = read_to_end(&mut client).await;
        assert!(reply.ends_with(b"(using password: NO)"));
        task.await.unwrap();
        assert_eq!(
            sink.of_kind(kind::AUTH_ATTEMPT)[0].get("using_password"),
            Some("NO")
        );

        // Captured from MariaDB 10.11: what an HTTP probe and an SSL request get.
        let (mut client, task) = connect(&ctx);
        greeting(&mut client).await;
        send(&mut client, b"GET / HTTP/1.0\r\n\r\n").await;
        assert_eq!(
            read_to_end(&mut client).await,
            b"!\x00\x00\x01\xff\x84\x04#08S01Got packets out of order"
        );
        task.await.unwrap();
        let (mut client, task) = connect(&ctx);
        greeting(&mut client).await;
        let mut ssl = (caps::PROTOCOL_41 | caps::SSL | caps::SECURE_CONNECTION)
            .to_le_bytes()
            .to_vec();
        ssl.extend_from_slice(&[0; 28]);
        send(&mut client, &packet(1, &ssl)).await;
        assert_eq!(
            read_to_end(&mut client).await,
            b"\x16\x00\x00\x02\xff\x13\x04#08S01Bad handshake"
        );
        task.await.unwrap();
        let reasons: Vec<String> = sink
            .of_kind(kind::PROTOCOL_ERROR)
            .iter()
            .map(|e| e.get("reason").unwrap().to_owned())
            .collect();
        assert_eq!(reasons, ["packets_out_of_order", "ssl_request"]);
        // An oversized packet is never buffered.
        let (mut client, task) = connect(&ctx);
        greeting(&mut client).await;
        send(&mut client, &[0xff, 0xff, 0xff, 1]).await;
        assert_eq!(read_to_end(&mut client).await, b"");
        task.await.unwrap();
    }

    #[tokio::test]
    async fn greetings_differ_per_connection_and_per_decky() {
        let (ctx_a, _) = ctx("mysql", &[], Limits::default());
        let (mut c1, _t1) = connect(&ctx_a);
        let (mut c2, _t2) = connect(&ctx_a);
        assert_ne!(greeting(&mut c1).await.1, greeting(&mut c2).await.1);
        let seeded = |seed: &str| {
            let service = decnet_core::catalog::service("mysql").unwrap();
            let p =
                Persona::from_lookup(service, |k| (k == "DECNET_SEED").then(|| seed.repeat(32)))
                    .unwrap();
            Mysql::from_persona(&p)
                .next_connection_id
                .load(Ordering::Relaxed)
        };
        assert_ne!(seeded("01"), seeded("02"));
        assert_eq!(seeded("01"), seeded("01"));
    }

    #[test]
    fn versions_follow_the_distro() {
        let service = decnet_core::catalog::service("mysql").unwrap();
        let p = Persona::from_lookup(service, |k| {
            (k == "DECNET_DISTRO").then(|| "ubuntu22".to_owned())
        })
        .unwrap();
        let m = Mysql::from_persona(&p);
        assert_eq!(m.profile().wire_version, "8.0.36-0ubuntu0.22.04.1");
        assert_eq!(m.profile().auth_plugin, mysql::CACHING_SHA2);
        assert_eq!(host_text("::ffff:10.1.2.3".parse().unwrap()), "10.1.2.3");
    }
}
