//! `vnc`: an RFB 3.8 server (3.3 and 3.7 clients are answered in their own dialect) that
//! offers only VNC authentication, records the client's DES response to a fresh 16-byte
//! challenge, and always fails it with "Authentication failed".
//!
//! Every client message before authentication has a fixed size, so the read buffer is
//! capped at [`MAX_BUFFER`] bytes; every read waits at most the idle timeout.

use std::sync::Arc;

use decnet_wire::rfb::{self, Negotiated};
use rand::RngCore;

use crate::Error;
use crate::event::{Credential, Event, Outcome, SecretKind, kind};
use crate::server::{BoxFuture, Conn, Emulator, ServiceCtx};
use crate::services::framed::{Framed, Stop};

/// Largest number of unconsumed bytes buffered (the longest client message is 16 bytes).
pub const MAX_BUFFER: usize = 64;
/// The reason sent with the failed SecurityResult (3.8 clients).
pub const FAILURE_REASON: &str = "Authentication failed";
/// Event type of the client's ProtocolVersion.
pub const VERSION_EVENT: &str = "version";

/// Builds the emulator (nothing to load: the challenge is fresh per connection).
///
/// # Errors
/// None today; the signature is the registry's.
pub fn build(_ctx: &ServiceCtx) -> Result<Arc<dyn Emulator>, Error> {
    Ok(Arc::new(Vnc))
}

/// The RFB emulator.
pub struct Vnc;

impl Emulator for Vnc {
    fn handle(self: Arc<Self>, conn: Conn, ctx: Arc<ServiceCtx>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let peer = conn.peer;
            let mut io = Framed::new(conn.stream, ctx.limits.idle_timeout, MAX_BUFFER);
            if let Err(stop) = session(&mut io, &ctx, peer).await
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

async fn session(
    io: &mut Framed,
    ctx: &ServiceCtx,
    peer: std::net::SocketAddr,
) -> Result<(), Stop> {
    io.write_all(rfb::SERVER_VERSION).await?;
    let raw = io.read_array::<{ rfb::VERSION_LEN }>().await?;
    let Ok(version) = rfb::parse_client_version(&raw) else {
        // Real servers drop a peer that does not speak RFB without a word.
        ctx.emit(
            Event::from_peer(kind::PROTOCOL_ERROR, peer)
                .field("reason", "bad_version")
                .field_bytes("data", &raw),
        );
        return Ok(());
    };
    let client_version = version.text();
    ctx.emit(Event::from_peer(VERSION_EVENT, peer).field("client_version", client_version.clone()));

    let mut out = Vec::with_capacity(32);
    rfb::encode_security_offer(version.negotiated, &[rfb::SECURITY_VNC_AUTH], &mut out);
    io.write_all(&out).await?;
    if version.negotiated != Negotiated::V3_3 {
        let [choice] = io.read_array::<1>().await?;
        if choice != rfb::SECURITY_VNC_AUTH {
            ctx.emit(
                Event::from_peer("security_choice", peer)
                    .field("client_version", client_version)
                    .field("security_type", choice.to_string()),
            );
            out.clear();
            rfb::encode_security_result(version.negotiated, false, FAILURE_REASON, &mut out);
            io.write_all(&out).await?;
            return Ok(());
        }
    }

    let mut challenge = [0u8; rfb::CHALLENGE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut challenge);
    io.write_all(&challenge).await?;
    let response = io.read_array::<{ rfb::CHALLENGE_LEN }>().await?;
    let credential = Credential {
        principal: None,
        kind: SecretKind::VncDesResponse,
        secret: response.to_vec(),
        outcome: Outcome::Failure,
        mechanism: Some("vnc_auth".to_owned()),
    };
    ctx.emit(
        Event::from_peer(kind::AUTH_ATTEMPT, peer)
            .credential(&credential)
            .field("challenge", hex::encode(challenge))
            .field("client_version", client_version)
            .field("security_type", rfb::SECURITY_VNC_AUTH.to_string())
            // John the Ripper's VNC format, ready for offline cracking.
            .field(
                "john",
                format!(
                    "$vnc$*{}*{}",
                    hex::encode_upper(challenge),
                    hex::encode_upper(response)
                ),
            ),
    );
    out.clear();
    rfb::encode_security_result(version.negotiated, false, FAILURE_REASON, &mut out);
    io.write_all(&out).await
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::server::Limits;
    use crate::services::framed::testkit::{connect, ctx, read_n, read_to_end, render, send};

    async fn handshake(client_version: &[u8; 12]) -> (Vec<u8>, Vec<u8>, crate::event::MemorySink) {
        let (ctx, sink) = ctx("vnc", &[], Limits::default());
        let (mut client, task) = connect(&ctx);
        assert_eq!(read_n(&mut client, 12).await, b"RFB 003.008\n");
        send(&mut client, client_version).await;
        let negotiated = rfb::parse_client_version(client_version)
            .unwrap()
            .negotiated;
        let offer = if negotiated == Negotiated::V3_3 {
            read_n(&mut client, 4).await
        } else {
            let offer = read_n(&mut client, 2).await;
            send(&mut client, &[2]).await;
            offer
        };
        let challenge = read_n(&mut client, 16).await;
        send(&mut client, &[0xab; 16]).await;
        let result = read_to_end(&mut client).await;
        task.await.unwrap();
        let auth = &sink.of_kind(kind::AUTH_ATTEMPT)[0];
        assert_eq!(
            auth.get("challenge"),
            Some(hex::encode(&challenge).as_str())
        );
        let mut transcript = offer;
        transcript.extend_from_slice(&result);
        (transcript, challenge, sink)
    }

    #[tokio::test]
    async fn rfb_3_8_transcript() {
        let (server, challenge, sink) = handshake(b"RFB 003.008\n").await;
        assert_eq!(
            server,
            b"\x01\x02\x00\x00\x00\x01\x00\x00\x00\x15Authentication failed"
        );
        let auth = &sink.of_kind(kind::AUTH_ATTEMPT)[0];
        assert_eq!(auth.get("secret_b64"), Some("q6urq6urq6urq6urq6urqw=="));
        assert_eq!(
            auth.get("john").unwrap(),
            format!(
                "$vnc$*{}*{}",
                hex::encode_upper(&challenge),
                "AB".repeat(16)
            )
        );
        insta::assert_snapshot!(render(&sink, &["challenge", "john"]), @r#"
        vnc connect src_ip="203.0.113.9" src_port="51515" dst_port="5900"
        vnc version src_ip="203.0.113.9" src_port="51515" client_version="RFB 003.008"
        vnc auth_attempt src_ip="203.0.113.9" src_port="51515" principal="" secret_kind="vnc_des_response" secret_printable="????????????????" secret_b64="q6urq6urq6urq6urq6urqw==" outcome="failure" mechanism="vnc_auth" challenge="[redacted]" client_version="RFB 003.008" security_type="2" john="[redacted]"
        vnc disconnect src_ip="203.0.113.9" src_port="51515" duration_ms="[redacted]"
        "#);
    }

    #[tokio::test]
    async fn older_clients_get_their_dialect() {
        // 3.7: the same offer, but no reason string after the failure.
        let (server, _, _) = handshake(b"RFB 003.007\n").await;
        assert_eq!(server, b"\x01\x02\x00\x00\x00\x01");
        // 3.3 (and unknown 3.x): the server names the type, no reason string.
        let (server, _, sink) = handshake(b"RFB 003.005\n").await;
        assert_eq!(server, b"\x00\x00\x00\x02\x00\x00\x00\x01");
        assert_eq!(
            sink.of_kind(VERSION_EVENT)[0].get("client_version"),
            Some("RFB 003.005")
        );
    }

    #[tokio::test]
    async fn challenges_are_fresh() {
        let (_, a, _) = handshake(b"RFB 003.008\n").await;
        let (_, b, _) = handshake(b"RFB 003.008\n").await;
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn garbage_and_silence_close_the_connection() {
        let (ctx, sink) = ctx("vnc", &[], Limits::default());
        let (mut client, task) = connect(&ctx);
        read_n(&mut client, 12).await;
        send(&mut client, b"GET / HTTP/1.1\r\n").await;
        assert_eq!(read_to_end(&mut client).await, b"");
        task.await.unwrap();
        let err = &sink.of_kind(kind::PROTOCOL_ERROR)[0];
        assert_eq!(err.get("reason"), Some("bad_version"));
        assert_eq!(err.get("data"), Some("GET / HTTP/1"));

        let limits = Limits {
            idle_timeout: std::time::Duration::from_millis(30),
            ..Limits::default()
        };
        let (ctx, sink) = ctx_with("vnc", limits);
        let (mut client, task) = connect(&ctx);
        read_n(&mut client, 12).await;
        send(&mut client, b"RFB 003.008\n").await;
        assert_eq!(read_to_end(&mut client).await, [1, 2]);
        task.await.unwrap();
        assert_eq!(
            sink.of_kind(kind::PROTOCOL_ERROR)[0].get("reason"),
            Some("idle_timeout")
        );

        // A security type other than VNC authentication is refused with the reason.
        let (ctx, sink) = ctx_with("vnc", Limits::default());
        let (mut client, task) = connect(&ctx);
        read_n(&mut client, 12).await;
        send(&mut client, b"RFB 003.008\n\x01").await;
        assert_eq!(
            read_to_end(&mut client).await,
            b"\x01\x02\x00\x00\x00\x01\x00\x00\x00\x15Authentication failed"
        );
        task.await.unwrap();
        assert_eq!(
            sink.of_kind("security_choice")[0].get("security_type"),
            Some("1")
        );
    }

    fn ctx_with(slug: &str, limits: Limits) -> (Arc<ServiceCtx>, crate::event::MemorySink) {
        ctx(slug, &[], limits)
    }
}
