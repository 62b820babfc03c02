//! The library side of `decnet bus publish` and `decnet bus subscribe`.

use decnet_bus::cli::{publish_once, subscribe_print};
use decnet_bus::{Bus, ClientOptions, Error, SocketClient};
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_once_sends_one_event_with_the_leaf_as_type() {
    let b = TestBroker::start().await;
    let c = SocketClient::new(&b.path, ClientOptions::new("listener"));
    let mut s = c.subscribe(pattern("ops.>")).await.unwrap();
    let sent = publish_once(
        &b.path,
        "ops.reload.requested",
        r#"{"by": "alice", "n": 2}"#,
    )
    .await
    .unwrap();
    let got = recv(&mut s).await;
    assert_eq!(got.id, sent.id);
    assert_eq!(got.topic.as_str(), "ops.reload.requested");
    assert_eq!(got.event_type, "requested");
    assert_eq!(
        Value::Object(got.payload.to_map().unwrap()),
        json!({"by": "alice", "n": 2})
    );
}

#[tokio::test]
async fn publish_once_refuses_bad_input_and_a_missing_broker() {
    let b = TestBroker::start().await;
    for bad in ["[1]", "not json", "3"] {
        assert!(matches!(
            publish_once(&b.path, "a.b", bad).await,
            Err(Error::PayloadNotObject)
        ));
    }
    assert!(matches!(
        publish_once(&b.path, "a.*", "{}").await,
        Err(Error::InvalidTopic { .. })
    ));
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        publish_once(&dir.path().join("none.sock"), "a.b", "{}").await,
        Err(Error::NotConnected(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_print_writes_one_envelope_per_line_and_stops_at_count() {
    let b = TestBroker::start().await;
    let path = b.path.clone();
    let printer = tokio::spawn(async move {
        let mut out = Vec::new();
        let n = subscribe_print(&path, "feed.*", Some(2), &mut out)
            .await
            .unwrap();
        (n, out)
    });
    eventually("the printer to subscribe", || {
        b.handle
            .stats()
            .subscribers
            .iter()
            .any(|s| s.patterns == ["feed.*"])
    })
    .await;
    let p = SocketClient::new(&b.path, ClientOptions::new("pub"));
    for n in 0..3 {
        p.publish(event("feed.item", n)).await.unwrap();
    }
    let (n, out) = tokio::time::timeout(WAIT, printer).await.unwrap().unwrap();
    assert_eq!(n, 2);
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    for (i, line) in lines.iter().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["topic"], "feed.item");
        assert_eq!(v["payload"]["n"], i as u64);
        assert_eq!(v["v"], 1);
    }
    assert!(matches!(
        subscribe_print(&b.path, "a.>.z", None, Vec::new()).await,
        Err(Error::InvalidPattern { .. })
    ));
}
