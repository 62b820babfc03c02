//! Wire protocol at the broker: malformed input closes only the offending connection.

use decnet_bus::{Bus, ClientOptions, SocketClient, Subscription};
use decnet_wire::bus::{self as wire, Decoded, MAX_BODY_LEN, MAX_HEADER_LEN, Verb};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::support::*;

/// A broker, a healthy subscriber on `p.>` and a healthy publisher.
struct Setup {
    broker: TestBroker,
    _sub_client: SocketClient,
    sub: Subscription,
    publisher: SocketClient,
}

async fn setup() -> Setup {
    let broker = TestBroker::start().await;
    let sub_client = SocketClient::new(&broker.path, ClientOptions::new("healthy"));
    let sub = sub_client.subscribe(pattern("p.>")).await.unwrap();
    let publisher = SocketClient::new(&broker.path, ClientOptions::new("pub"));
    publisher.connect().await.unwrap();
    Setup {
        broker,
        _sub_client: sub_client,
        sub,
        publisher,
    }
}

impl Setup {
    /// Sends `bytes` on a fresh connection and asserts the broker closes it by itself
    /// (without this side closing first).
    async fn assert_closed_by(&self, bytes: &[u8]) {
        let mut raw = UnixStream::connect(&self.broker.path).await.unwrap();
        raw.write_all(bytes).await.unwrap();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(WAIT, raw.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "broker kept the connection open");
        assert!(rest.is_empty(), "unexpected reply {rest:?}");
    }

    /// The healthy pair still works, and nothing from the bad connection was delivered.
    async fn assert_others_unaffected(&mut self, n: u64) {
        self.publisher.publish(event("p.fence", n)).await.unwrap();
        let e = recv(&mut self.sub).await;
        assert_eq!((e.topic.as_str(), n_of(&e)), ("p.fence", n));
    }
}

fn frame(verb: Verb, args: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    wire::encode(verb, args, body, &mut out).unwrap();
    out
}

fn raw_frame(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = header.to_vec();
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_close_only_their_connection() {
    let mut s = setup().await;
    let pub_body = br#"{"payload":{"n":1}}"#;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("unknown verb", raw_frame(b"PING\n", b"")),
        ("lowercase verb", raw_frame(b"pub p.x\n", pub_body)),
        ("empty header", raw_frame(b"\n", b"")),
        (
            "control character in args",
            raw_frame(b"PUB p.x\rq\n", pub_body),
        ),
        ("array body", raw_frame(b"PUB p.x\n", b"[1,2]")),
        ("string body", raw_frame(b"PUB p.x\n", b"\"s\"")),
        ("two objects", raw_frame(b"PUB p.x\n", b"{} {}")),
        (
            "payload not an object",
            raw_frame(b"PUB p.x\n", br#"{"payload":[1]}"#),
        ),
        (
            "unsupported envelope version",
            raw_frame(b"PUB p.x\n", br#"{"v":9}"#),
        ),
        ("wildcard topic", raw_frame(b"PUB p.*\n", pub_body)),
        ("empty topic", raw_frame(b"PUB\n", pub_body)),
        (
            "topic with inner space",
            raw_frame(b"PUB p.x y\n", pub_body),
        ),
        ("invalid pattern a.>.z", frame(Verb::Sub, "p.>.z", b"")),
        ("pattern with inner space", raw_frame(b"SUB p. x\n", b"")),
        ("SUB without pattern", frame(Verb::Sub, "", b"")),
        (
            "invalid utf-8 in an ignored field",
            raw_frame(b"PUB p.x\n", b"{\"x\":\"\xff\"}"),
        ),
        (
            "truncated json object",
            raw_frame(b"PUB p.x\n", b"{\"payload\":{"),
        ),
        ("SUB with an array body", raw_frame(b"SUB p.>\n", b"[]")),
        ("HELLO with a bad body", raw_frame(b"HELLO x\n", b"{,}")),
        ("client EVT", frame(Verb::Evt, "p.x", pub_body)),
        ("client OK", frame(Verb::Ok, "p.x", b"")),
    ];
    for (i, (what, bytes)) in cases.iter().enumerate() {
        eprintln!("case: {what}");
        s.assert_closed_by(bytes).await;
        s.assert_others_unaffected(i as u64).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_limits_are_enforced_before_the_data_arrives() {
    let mut s = setup().await;
    // 4096 bytes and no LF: refused without waiting for more (the connection stays open
    // on our side, so only the broker can end it).
    s.assert_closed_by(&vec![b'A'; MAX_HEADER_LEN]).await;
    s.assert_others_unaffected(1).await;
    // A body length over 1 MiB: refused from the length alone, no body sent.
    let mut over = b"PUB p.x\n".to_vec();
    over.extend_from_slice(&(MAX_BODY_LEN as u32 + 1).to_be_bytes());
    s.assert_closed_by(&over).await;
    s.assert_others_unaffected(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_frame_is_not_delivered() {
    let mut s = setup().await;
    for cut in [3usize, 9, 20] {
        let full = raw_frame(b"PUB p.x\n", br#"{"payload":{"n":77}}"#);
        let mut raw = UnixStream::connect(&s.broker.path).await.unwrap();
        raw.write_all(&full[..cut]).await.unwrap();
        raw.shutdown().await.unwrap();
        let mut rest = Vec::new();
        tokio::time::timeout(WAIT, raw.read_to_end(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert!(rest.is_empty());
        s.assert_others_unaffected(cut as u64).await;
    }
}

/// Reads one frame from a raw connection.
async fn read_frame(raw: &mut UnixStream, buf: &mut Vec<u8>) -> (Verb, String, Vec<u8>) {
    let mut chunk = [0u8; 4096];
    loop {
        if let Decoded::Frame { frame, consumed } = wire::decode(buf).unwrap() {
            let out = (frame.verb, frame.args.to_owned(), frame.body.to_vec());
            buf.drain(..consumed);
            return out;
        }
        let n = tokio::time::timeout(WAIT, raw.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_peers_get_no_ok_and_acked_subs_get_their_ack_number() {
    let s = setup().await;
    // A reference-style client: HELLO, SUB without body, then events only.
    let mut old = UnixStream::connect(&s.broker.path).await.unwrap();
    let mut hello = frame(Verb::Hello, "legacy peer", b"");
    hello.extend(frame(Verb::Sub, "p.>", b""));
    old.write_all(&hello).await.unwrap();
    eventually("legacy SUB", || s.broker.has_pattern("legacy peer", "p.>")).await;
    // An acknowledging client.
    let mut new = UnixStream::connect(&s.broker.path).await.unwrap();
    new.write_all(&frame(Verb::Sub, "p.>", br#"{"ack":41}"#))
        .await
        .unwrap();
    let mut new_buf = Vec::new();
    let (verb, args, body) = read_frame(&mut new, &mut new_buf).await;
    assert_eq!((verb, args.as_str()), (Verb::Ok, "p.>"));
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["ack"], 41);

    // The spoofed body topic is ignored, the publisher's id and ts are kept, rts is added.
    let body =
        br#"{"v":1,"id":"feedface","topic":"spoofed","type":"x","ts":5.5,"payload":{"n":3}}"#;
    let mut p = UnixStream::connect(&s.broker.path).await.unwrap();
    p.write_all(&raw_frame(b"PUB p.real\n", body))
        .await
        .unwrap();
    // An empty PUB body is an event with defaults.
    p.write_all(&raw_frame(b"PUB p.empty\n", b""))
        .await
        .unwrap();
    let mut old_buf = Vec::new();
    for (raw, buf) in [(&mut old, &mut old_buf), (&mut new, &mut new_buf)] {
        let (verb, args, body) = read_frame(raw, buf).await;
        assert_eq!((verb, args.as_str()), (Verb::Evt, "p.real"));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["topic"], "p.real");
        assert_eq!(v["id"], "feedface");
        assert_eq!(v["ts"], 5.5);
        assert_eq!(v["type"], "x");
        assert_eq!(v["payload"]["n"], 3);
        assert!(v["rts"].as_f64().unwrap() > 1.6e9);
        let (verb, args, body) = read_frame(raw, buf).await;
        assert_eq!((verb, args.as_str()), (Verb::Evt, "p.empty"));
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["payload"], serde_json::json!({}));
        assert_eq!(v["type"], "");
        assert_eq!(v["id"].as_str().unwrap().len(), 32);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsub_stops_delivery_and_bye_ends_the_connection() {
    let mut s = setup().await;
    let mut raw = UnixStream::connect(&s.broker.path).await.unwrap();
    let mut out = frame(Verb::Hello, "raw", b"");
    out.extend(frame(Verb::Sub, "p.>", b""));
    out.extend(frame(Verb::Sub, "p.>", b""));
    raw.write_all(&out).await.unwrap();
    eventually("SUB", || s.broker.has_pattern("raw", "p.>")).await;
    let stats = s.broker.handle.stats();
    let mine = stats.subscribers.iter().find(|c| c.name == "raw").unwrap();
    assert_eq!(
        mine.patterns,
        vec!["p.>".to_owned()],
        "a pattern is held once"
    );
    raw.write_all(&frame(Verb::Unsub, "p.>", b""))
        .await
        .unwrap();
    eventually("UNSUB", || !s.broker.has_pattern("raw", "p.>")).await;
    s.assert_others_unaffected(1).await;
    raw.write_all(&frame(Verb::Bye, "", b"")).await.unwrap();
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, raw.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    assert!(rest.is_empty(), "no event after UNSUB: {rest:?}");
}
