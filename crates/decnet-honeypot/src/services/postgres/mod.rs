//! `postgres`: a PostgreSQL server up to password authentication. It answers SSL and GSS
//! encryption requests with `N`, reads the StartupMessage, asks for an MD5 password with
//! a fresh 4-byte salt, records the response (crackable offline with the salt) and fails
//! it with the real server's `ErrorResponse`, field for field.
//!
//! The order is the real server's: PostgreSQL authenticates before it looks the database
//! up (`InitPostgres` runs `PerformAuthentication` first), so an unknown database is only
//! revealed after a correct password, which this emulator never accepts. The persona's
//! database list (`databases`, default `postgres`, `template1` and one seeded application
//! database) is therefore reported in the events (`database_exists`) and never on the
//! wire. The error positions (`F`, `L`, `R` fields) are those of PostgreSQL 15, captured
//! from 15.20.
//!
//! Bounded: startup packets up to `MAX_STARTUP_LEN`, password messages up to
//! `MAX_AUTH_MESSAGE_LEN` (both the real server's limits; longer ones close the
//! connection), and every read waits at most the idle timeout or the server's 60-second
//! `authentication_timeout`, whichever is shorter.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use decnet_wire::pgwire::{self, Decoded, PgError, Startup, codes};
use rand::{Rng, RngCore};

use crate::Error;
use crate::event::{Credential, Event, Outcome, SecretKind, kind, printable};
use crate::persona::Persona;
use crate::server::{BoxFuture, Conn, Emulator, ServiceCtx};
use crate::services::framed::{Framed, Stop};

/// The server's `authentication_timeout`.
pub const AUTHENTICATION_TIMEOUT: Duration = Duration::from_secs(60);
/// Most unconsumed bytes buffered: one whole password message.
pub const MAX_BUFFER: usize = pgwire::MAX_AUTH_MESSAGE_LEN + 5;
/// Most startup parameters copied into the `startup` event.
pub const MAX_LOGGED_PARAMS: usize = 16;
/// Application databases a decky may pick one of.
const APP_DATABASES: [&str; 14] = [
    "app",
    "appdb",
    "app_production",
    "crm",
    "erp",
    "wiki",
    "gitea",
    "nextcloud",
    "keycloak",
    "odoo",
    "billing",
    "inventory",
    "analytics",
    "shop",
];

/// Where the real server raises each error: `(SQLSTATE, file, line, routine)`.
struct Site(&'static str, &'static str, &'static str, &'static str);

const NO_USER: Site = Site("28000", "postmaster.c", "2349", "ProcessStartupPacket");
const UNSUPPORTED_PROTOCOL: Site = Site("0A000", "postmaster.c", "2220", "ProcessStartupPacket");
const BAD_LAYOUT: Site = Site("08P01", "postmaster.c", "2332", "ProcessStartupPacket");
const WRONG_MESSAGE: Site = Site("08P01", "auth.c", "718", "recv_password_packet");
const BAD_PASSWORD_SIZE: Site = Site("08P01", "auth.c", "739", "recv_password_packet");
const EMPTY_PASSWORD: Site = Site("28P01", "auth.c", "757", "recv_password_packet");
const AUTH_FAILED: Site = Site("28P01", "auth.c", "334", "auth_failed");

/// Builds the emulator from the persona's database list.
///
/// # Errors
/// None today; the signature is the registry's.
pub fn build(ctx: &ServiceCtx) -> Result<Arc<dyn Emulator>, Error> {
    Ok(Arc::new(Postgres {
        databases: databases(&ctx.persona),
    }))
}

/// The databases this decky has: the persona's list, or `postgres`, `template1` and one
/// application database picked by the seed.
pub fn databases(persona: &Persona) -> Vec<String> {
    if let Some(list) = persona.get("databases") {
        let list: Vec<String> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if !list.is_empty() {
            return list;
        }
    }
    let mut rng = persona.rng("postgres-databases");
    let app = APP_DATABASES[rng.gen_range(0..APP_DATABASES.len())];
    vec!["postgres".into(), "template1".into(), app.into()]
}

/// The PostgreSQL emulator.
pub struct Postgres {
    databases: Vec<String>,
}

impl Emulator for Postgres {
    fn handle(self: Arc<Self>, conn: Conn, ctx: Arc<ServiceCtx>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let peer = conn.peer;
            let idle = ctx.limits.idle_timeout.min(AUTHENTICATION_TIMEOUT);
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

/// Appends a FATAL `ErrorResponse` raised at `site`.
fn fatal(site: &Site, message: &[u8], out: &mut Vec<u8>) {
    pgwire::encode_error(
        &[
            (b'S', b"FATAL"),
            (b'V', b"FATAL"),
            (b'C', site.0.as_bytes()),
            (b'M', message),
            (b'F', site.1.as_bytes()),
            (b'L', site.2.as_bytes()),
            (b'R', site.3.as_bytes()),
        ],
        out,
    );
}

fn param<'a>(params: &'a [(Vec<u8>, Vec<u8>)], name: &[u8]) -> Option<&'a [u8]> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

impl Postgres {
    async fn session(
        &self,
        io: &mut Framed,
        ctx: &ServiceCtx,
        peer: SocketAddr,
    ) -> Result<(), Stop> {
        let mut out = Vec::with_capacity(256);
        let (mut ssl_done, mut gss_done) = (false, false);
        let (version, params, layout_ok) = loop {
            let step = pgwire::decode_startup(io.buffer());
            let (value, consumed) = match step {
                Ok(Decoded::NeedMore { min_len }) => {
                    io.fill(min_len).await?;
                    continue;
                }
                Err(e) => {
                    // The real server logs "invalid length of startup packet" and hangs up.
                    let length = match e {
                        PgError::BadLength(n) => n.to_string(),
                        PgError::MessageTooLarge(n) => n.to_string(),
                    };
                    ctx.emit(
                        Event::from_peer(kind::PROTOCOL_ERROR, peer)
                            .field("reason", "invalid_startup_length")
                            .field("length", length),
                    );
                    return Ok(());
                }
                Ok(Decoded::Done { value, consumed }) => (value, consumed),
            };
            io.consume(consumed);
            match value {
                Startup::SslRequest if !ssl_done => {
                    ssl_done = true;
                    io.write_all(b"N").await?;
                }
                Startup::GssEncRequest if !gss_done => {
                    gss_done = true;
                    io.write_all(b"N").await?;
                }
                // A second request is read as a startup packet with that version number.
                Startup::SslRequest => break (codes::SSL_REQUEST, Vec::new(), false),
                Startup::GssEncRequest => break (codes::GSSENC_REQUEST, Vec::new(), false),
                Startup::Cancel { pid, key } => {
                    ctx.emit(
                        Event::from_peer("cancel_request", peer)
                            .field("pid", pid.to_string())
                            .field("key", key.to_string()),
                    );
                    return Ok(());
                }
                Startup::Message {
                    version,
                    params,
                    layout_ok,
                } => break (version, params, layout_ok),
            }
        };
        let (major, minor) = (version >> 16, version & 0xffff);
        if major != 3 {
            let text = format!(
                "unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0"
            );
            ctx.emit(
                Event::from_peer(kind::PROTOCOL_ERROR, peer)
                    .field("reason", "unsupported_protocol")
                    .field("protocol", format!("{major}.{minor}")),
            );
            if major < 3 {
                pgwire::encode_v2_error(&format!("FATAL:  {text}\n"), &mut out);
            } else {
                fatal(&UNSUPPORTED_PROTOCOL, text.as_bytes(), &mut out);
            }
            return io.write_all(&out).await;
        }
        if !layout_ok {
            ctx.emit(
                Event::from_peer(kind::PROTOCOL_ERROR, peer)
                    .field("reason", "invalid_startup_layout"),
            );
            fatal(
                &BAD_LAYOUT,
                b"invalid startup packet layout: expected terminator as last byte",
                &mut out,
            );
            return io.write_all(&out).await;
        }
        let unrecognised: Vec<&[u8]> = params
            .iter()
            .filter(|(k, _)| k.starts_with(b"_pq_."))
            .map(|(k, _)| k.as_slice())
            .collect();
        if minor > 0 || !unrecognised.is_empty() {
            pgwire::encode_negotiate_version(0, &unrecognised, &mut out);
        }
        let user = param(&params, b"user").unwrap_or_default();
        if user.is_empty() {
            ctx.emit(Event::from_peer(kind::PROTOCOL_ERROR, peer).field("reason", "no_user"));
            fatal(
                &NO_USER,
                b"no PostgreSQL user name specified in startup packet",
                &mut out,
            );
            return io.write_all(&out).await;
        }
        let user = pgwire::clip_name(user);
        let database = pgwire::clip_name(param(&params, b"database").unwrap_or(user));
        let database_text = String::from_utf8_lossy(database).into_owned();
        let exists = self.databases.contains(&database_text);
        let mut startup = Event::from_peer("startup", peer)
            .field_bytes("user", user)
            .field_bytes("database", database)
            .field("database_exists", if exists { "true" } else { "false" })
            .field("protocol", format!("{major}.{minor}"))
            .field("ssl_requested", if ssl_done { "true" } else { "false" });
        if let Some(app) = param(&params, b"application_name") {
            startup = startup.field_bytes("application_name", app);
        }
        let others: Vec<String> = params
            .iter()
            .filter(|(k, _)| !matches!(k.as_slice(), b"user" | b"database" | b"application_name"))
            .take(MAX_LOGGED_PARAMS)
            .map(|(k, v)| format!("{}={}", printable(k), printable(v)))
            .collect();
        if !others.is_empty() {
            startup = startup.field("params", others.join(" "));
        }
        ctx.emit(startup);

        let mut salt = [0u8; 4];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        pgwire::encode_auth_md5(salt, &mut out);
        io.write_all(&out).await?;
        out.clear();

        let (tag, body) = loop {
            match pgwire::decode_message(io.buffer(), pgwire::MAX_AUTH_MESSAGE_LEN) {
                Ok(Decoded::NeedMore { min_len }) => io.fill(min_len).await?,
                Ok(Decoded::Done { value, consumed }) => {
                    let got = (value.tag, value.body.to_vec());
                    io.consume(consumed);
                    break got;
                }
                Err(_) => {
                    ctx.emit(
                        Event::from_peer(kind::PROTOCOL_ERROR, peer)
                            .field("reason", "password_message_too_large"),
                    );
                    return Ok(());
                }
            }
        };
        if tag != b'p' {
            ctx.emit(
                Event::from_peer(kind::PROTOCOL_ERROR, peer)
                    .field("reason", "expected_password")
                    .field("message_type", tag.to_string()),
            );
            let text = format!("expected password response, got message type {tag}");
            fatal(&WRONG_MESSAGE, text.as_bytes(), &mut out);
            return io.write_all(&out).await;
        }
        let (secret, reply): (&[u8], (&Site, &[u8])) = match pgwire::password(&body) {
            pgwire::Password::BadSize => {
                ctx.emit(
                    Event::from_peer(kind::PROTOCOL_ERROR, peer)
                        .field("reason", "invalid_password_packet"),
                );
                fatal(
                    &BAD_PASSWORD_SIZE,
                    b"invalid password packet size",
                    &mut out,
                );
                return io.write_all(&out).await;
            }
            pgwire::Password::Empty => {
                (b"", (&EMPTY_PASSWORD, b"empty password returned by client"))
            }
            pgwire::Password::Text(text) => (text, (&AUTH_FAILED, b"")),
        };
        let md5_form = secret.len() == 35
            && secret.starts_with(b"md5")
            && secret[3..].iter().all(u8::is_ascii_hexdigit);
        let credential = Credential {
            principal: Some(String::from_utf8_lossy(user).into_owned()),
            kind: if md5_form {
                SecretKind::PostgresMd5Challenge
            } else {
                SecretKind::Plaintext
            },
            secret: secret[..secret.len().min(crate::event::MAX_SECRET_BYTES)].to_vec(),
            outcome: Outcome::Failure,
            mechanism: Some("md5".to_owned()),
        };
        let mut event = Event::from_peer(kind::AUTH_ATTEMPT, peer)
            .credential(&credential)
            .field("salt", hex::encode(salt))
            .field_bytes("database", database)
            .field("database_exists", if exists { "true" } else { "false" });
        if md5_form {
            // Hashcat mode 11100, ready for offline cracking.
            let mut line = String::from("$postgres$");
            line.push_str(&printable(user));
            let _ = write!(
                line,
                "*{}*{}",
                hex::encode(salt),
                String::from_utf8_lossy(&secret[3..])
            );
            event = event.field("hashcat", line);
        }
        ctx.emit(event);
        let (site, message) = reply;
        let message = if message.is_empty() {
            let mut m = b"password authentication failed for user \"".to_vec();
            m.extend_from_slice(user);
            m.push(b'"');
            m
        } else {
            message.to_vec()
        };
        fatal(site, &message, &mut out);
        io.write_all(&out).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::server::Limits;
    use crate::services::framed::testkit::{connect, ctx, read_n, read_to_end, render, send};

    fn startup(params: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        pgwire::encode_startup(codes::PROTOCOL_3_0, params, &mut out);
        out
    }

    fn password_message(text: &[u8]) -> Vec<u8> {
        let mut m = vec![b'p'];
        m.extend_from_slice(&u32::try_from(text.len() + 5).unwrap().to_be_bytes());
        m.extend_from_slice(text);
        m.push(0);
        m
    }

    #[tokio::test]
    async fn psql_transcript() {
        let (ctx, sink) = ctx("postgres", &[], Limits::default());
        let (mut client, task) = connect(&ctx);
        // psql first asks for TLS, then starts up.
        send(&mut client, &[0, 0, 0, 8, 4, 210, 22, 47]).await;
        assert_eq!(read_n(&mut client, 1).await, b"N");
        send(
            &mut client,
            &startup(&[
                (b"user", b"bob"),
                (b"database", b"shop"),
                (b"application_name", b"psql"),
                (b"client_encoding", b"UTF8"),
            ]),
        )
        .await;
        let challenge = read_n(&mut client, 13).await;
        assert_eq!(&challenge[..9], b"R\x00\x00\x00\x0c\x00\x00\x00\x05");
        let salt = &challenge[9..];
        let response = format!("md5{}", "0123456789abcdef".repeat(2));
        send(&mut client, &password_message(response.as_bytes())).await;
        assert_eq!(
            read_to_end(&mut client).await,
            &b"E\x00\x00\x00cSFATAL\x00VFATAL\x00C28P01\x00Mpassword authentication failed for user \"bob\"\x00Fauth.c\x00L334\x00Rauth_failed\x00\x00"[..]
        );
        task.await.unwrap();
        let auth = &sink.of_kind(kind::AUTH_ATTEMPT)[0];
        assert_eq!(auth.get("salt"), Some(hex::encode(salt).as_str()));
        assert_eq!(
            auth.get("hashcat").unwrap(),
            format!("$postgres$bob*{}*{}", hex::encode(salt), &response[3..])
        );
        insta::assert_snapshot!(render(&sink, &["salt", "hashcat"]), @r#"
        postgres connect src_ip="203.0.113.9" src_port="51515" dst_port="5432"
        postgres startup src_ip="203.0.113.9" src_port="51515" user="bob" database="shop" database_exists="false" protocol="3.0" ssl_requested="true" application_name="psql" params="client_encoding=UTF8"
        postgres auth_attempt src_ip="203.0.113.9" src_port="51515" principal="bob" secret_kind="postgres_md5_challenge" secret_printable="md50123456789abcdef0123456789abcdef" secret_b64="bWQ1MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" outcome="failure" mechanism="md5" username="bob" salt="[redacted]" database="shop" database_exists="false" hashcat="[redacted]"
        postgres disconnect src_ip="203.0.113.9" src_port="51515" duration_ms="[redacted]"
        "#);
    }

    async fn exchange(first: &[u8], then: Option<&[u8]>) -> (Vec<u8>, crate::event::MemorySink) {
        let (ctx, sink) = ctx(
            "postgres",
            &[("PG_DATABASES", "postgres,shop")],
            Limits::default(),
        );
        let (mut client, task) = connect(&ctx);
        send(&mut client, first).await;
        let mut got = Vec::new();
        if let Some(then) = then {
            got = read_n(&mut client, 13).await;
            send(&mut client, then).await;
        }
        got.extend(read_to_end(&mut client).await);
        task.await.unwrap();
        (got, sink)
    }

    #[tokio::test]
    async fn errors_match_postgresql_15() {
        // Every expected byte string below was captured from PostgreSQL 15.20.
        let (got, _) = exchange(&startup(&[(b"database", b"x")]), None).await;
        assert_eq!(got, &b"E\x00\x00\x00ySFATAL\x00VFATAL\x00C28000\x00Mno PostgreSQL user name specified in startup packet\x00Fpostmaster.c\x00L2349\x00RProcessStartupPacket\x00\x00"[..]);

        let mut v2 = Vec::new();
        pgwire::encode_startup(0x2_0000, &[(b"user", b"bob")], &mut v2);
        let (got, _) = exchange(&v2, None).await;
        assert_eq!(
            got,
            b"EFATAL:  unsupported frontend protocol 2.0: server supports 3.0 to 3.0\n\x00"
        );

        let mut v4 = Vec::new();
        pgwire::encode_startup(0x1234_5678, &[(b"user", b"bob")], &mut v4);
        let (got, _) = exchange(&v4, None).await;
        assert_eq!(got, &b"E\x00\x00\x00\x8aSFATAL\x00VFATAL\x00C0A000\x00Munsupported frontend protocol 4660.22136: server supports 3.0 to 3.0\x00Fpostmaster.c\x00L2220\x00RProcessStartupPacket\x00\x00"[..]);

        let mut layout = 17u32.to_be_bytes().to_vec();
        layout.extend_from_slice(&codes::PROTOCOL_3_0.to_be_bytes());
        layout.extend_from_slice(b"user\0bob\0");
        let (got, _) = exchange(&layout, None).await;
        assert_eq!(got, &b"E\x00\x00\x00\x85SFATAL\x00VFATAL\x00C08P01\x00Minvalid startup packet layout: expected terminator as last byte\x00Fpostmaster.c\x00L2332\x00RProcessStartupPacket\x00\x00"[..]);

        let user = startup(&[(b"user", b"bob")]);
        let (got, _) = exchange(&user, Some(b"Q\x00\x00\x00\x09abcd\x00")).await;
        assert_eq!(&got[13..], &b"E\x00\x00\x00nSFATAL\x00VFATAL\x00C08P01\x00Mexpected password response, got message type 81\x00Fauth.c\x00L718\x00Rrecv_password_packet\x00\x00"[..]);
        let (got, sink) = exchange(&user, Some(b"p\x00\x00\x00\x05\x00")).await;
        assert_eq!(&got[13..], &b"E\x00\x00\x00`SFATAL\x00VFATAL\x00C28P01\x00Mempty password returned by client\x00Fauth.c\x00L757\x00Rrecv_password_packet\x00\x00"[..]);
        assert_eq!(
            sink.of_kind(kind::AUTH_ATTEMPT)[0].get("secret_b64"),
            Some("")
        );
        let (got, _) = exchange(&user, Some(b"p\x00\x00\x00\x04")).await;
        assert_eq!(&got[13..], &b"E\x00\x00\x00[SFATAL\x00VFATAL\x00C08P01\x00Minvalid password packet size\x00Fauth.c\x00L739\x00Rrecv_password_packet\x00\x00"[..]);

        // A plaintext password (clients that ignore the MD5 request) is kept as such.
        let (_, sink) = exchange(&user, Some(&password_message(b"hunter2"))).await;
        let auth = &sink.of_kind(kind::AUTH_ATTEMPT)[0];
        assert_eq!(auth.get("secret_kind"), Some("plaintext"));
        assert_eq!(auth.get("secret_printable"), Some("hunter2"));
        assert_eq!(auth.get("database_exists"), Some("false"));
        assert_eq!(auth.get("hashcat"), None);
    }

    #[tokio::test]
    async fn silent_closes_like_the_real_server() {
        for first in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            &[0, 0, 0, 4],
            &[0, 0, 0x4e, 0x20, 0, 3, 0, 0],
        ] {
            let (got, sink) = exchange(first, None).await;
            assert_eq!(got, b"", "{first:?}");
            assert_eq!(
                sink.of_kind(kind::PROTOCOL_ERROR)[0].get("reason"),
                Some("invalid_startup_length")
            );
        }
        let mut cancel = 16u32.to_be_bytes().to_vec();
        cancel.extend_from_slice(&codes::CANCEL_REQUEST.to_be_bytes());
        cancel.extend_from_slice(&[0, 0, 4, 210, 0, 0, 22, 46]);
        let (got, sink) = exchange(&cancel, None).await;
        assert_eq!(got, b"");
        assert_eq!(sink.of_kind("cancel_request")[0].get("pid"), Some("1234"));
        // A password message over the limit is refused from its length word.
        let user = startup(&[(b"user", b"bob")]);
        let (got, _) = exchange(&user, Some(b"p\x00\x01\x86\xa4")).await;
        assert_eq!(got.len(), 13);
    }

    #[tokio::test]
    async fn second_ssl_request_and_protocol_negotiation() {
        // A second SSLRequest is read as a startup packet of version 1234.5679.
        let ssl = [0, 0, 0, 8, 4, 210, 22, 47];
        let mut twice = ssl.to_vec();
        twice.extend_from_slice(&ssl);
        let (got, _) = exchange(&twice, None).await;
        assert!(got.starts_with(b"NE"));
        assert!(String::from_utf8_lossy(&got).contains("unsupported frontend protocol 1234.5679"));
        // Protocol 3.1 with an unknown option gets NegotiateProtocolVersion, then the MD5 request.
        let mut v31 = Vec::new();
        pgwire::encode_startup(
            0x3_0001,
            &[(b"user", b"bob"), (b"_pq_.foo", b"1")],
            &mut v31,
        );
        let (ctx, _) = ctx("postgres", &[], Limits::default());
        let (mut client, _task) = connect(&ctx);
        send(&mut client, &v31).await;
        assert_eq!(
            read_n(&mut client, 22).await,
            b"v\x00\x00\x00\x15\x00\x00\x00\x00\x00\x00\x00\x01_pq_.foo\x00"
        );
        assert_eq!(read_n(&mut client, 5).await, b"R\x00\x00\x00\x0c");
    }

    #[tokio::test]
    async fn salts_are_fresh_and_databases_follow_the_persona() {
        let user = startup(&[(b"user", b"bob")]);
        let (a, _) = exchange(&user, Some(&password_message(b"x"))).await;
        let (b, _) = exchange(&user, Some(&password_message(b"x"))).await;
        assert_ne!(a[9..13], b[9..13]);
        let (ctx_a, _) = ctx("postgres", &[], Limits::default());
        let dbs = databases(&ctx_a.persona);
        assert_eq!(dbs[..2], ["postgres", "template1"]);
        assert!(APP_DATABASES.contains(&dbs[2].as_str()));
        let (ctx_b, _) = ctx("postgres", &[("PG_DATABASES", "a, b")], Limits::default());
        assert_eq!(databases(&ctx_b.persona), ["a", "b"]);
    }
}
