//! Broker behaviour: socket set-up and removal, statistics, drops, health, peer checks, restart.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use decnet_bus::{
    Broker, BrokerOptions, Bus, ClientOptions, Envelope, Error, SocketClient, topics,
};
use decnet_wire::bus::{self as wire, Decoded, Verb};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::support::*;

fn client(b: &TestBroker, name: &str) -> SocketClient {
    SocketClient::new(&b.path, ClientOptions::new(name))
}

#[tokio::test]
async fn socket_has_mode_0660_and_is_removed_on_stop_but_not_its_directory() {
    let mut b = TestBroker::start().await;
    let meta = std::fs::metadata(&b.path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o660);
    b.stop().await;
    assert!(!b.path.exists(), "socket left behind");
    assert!(b.dir.path().is_dir(), "directory removed");
}

#[tokio::test]
async fn socket_group_is_set_when_the_group_exists() {
    // `daemon` exists on Debian; as root the chgrp succeeds.
    let Ok(Some(group)) = nix::unistd::Group::from_name("daemon") else {
        panic!("group daemon missing on this machine");
    };
    let b = TestBroker::start_with(|o| o.group = Some("daemon".into())).await;
    let gid = std::fs::metadata(&b.path).unwrap().gid();
    if nix::unistd::geteuid().is_root() {
        assert_eq!(gid, group.gid.as_raw());
    }
    // An unknown group is not an error: the socket keeps its group.
    let b2 = TestBroker::start_with(|o| o.group = Some("no-such-group-decnet".into())).await;
    assert!(b2.path.exists());
}

#[tokio::test]
async fn bind_refuses_a_missing_parent_a_non_socket_and_a_live_broker() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope").join("bus.sock");
    assert!(matches!(
        Broker::bind(BrokerOptions::new(&missing)),
        Err(Error::MissingParent(p)) if p == dir.path().join("nope")
    ));

    let file = dir.path().join("file.sock");
    std::fs::write(&file, b"keep me").unwrap();
    assert!(matches!(
        Broker::bind(BrokerOptions::new(&file)),
        Err(Error::NotASocket(_))
    ));
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

    let live = TestBroker::start().await;
    assert!(matches!(
        Broker::bind(BrokerOptions::new(&live.path)),
        Err(Error::AlreadyRunning(_))
    ));
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bus.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let mut opts = BrokerOptions::new(&path);
    opts.group = None;
    let broker = Broker::bind(opts).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(broker.run(stop.clone().cancelled_owned()));
    let c = SocketClient::new(&path, ClientOptions::new("c"));
    c.connect().await.unwrap();
    c.close().await;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert!(!path.exists());
}

/// Reads frames from a raw connection until `n` EVTs arrived; returns their payload `n`s.
async fn read_events(stream: &mut UnixStream, n: usize) -> Vec<u64> {
    let mut buf = Vec::new();
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while got.len() < n {
        while let Decoded::Frame { frame, consumed } = wire::decode(&buf).unwrap() {
            if frame.verb == Verb::Evt {
                let v: serde_json::Value = serde_json::from_slice(frame.body).unwrap();
                got.push(v["payload"]["n"].as_u64().unwrap());
            }
            buf.drain(..consumed);
        }
        if got.len() >= n {
            break;
        }
        let k = tokio::time::timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("events stopped arriving")
            .unwrap();
        assert!(k > 0, "broker closed the connection");
        buf.extend_from_slice(&chunk[..k]);
    }
    got
}

async fn raw_sub(b: &TestBroker, name: &str, pattern: &str) -> UnixStream {
    let mut s = UnixStream::connect(&b.path).await.unwrap();
    let mut out = Vec::new();
    wire::encode(Verb::Hello, name, b"", &mut out).unwrap();
    wire::encode(Verb::Sub, pattern, b"", &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    eventually("the raw SUB to register", || b.has_pattern(name, pattern)).await;
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_loses_the_oldest_events_and_it_is_counted() {
    let b = TestBroker::start().await;
    let mut slow = raw_sub(&b, "slow", "flood.>").await;
    let publisher = client(&b, "pub");
    publisher.connect().await.unwrap();
    const N: u64 = 6000;
    let filler = "x".repeat(1000);
    for n in 0..N {
        let e = Envelope::new(topic("flood.x"), "t", obj(json!({"n": n, "f": filler})));
        publisher.publish(e).await.unwrap();
    }
    eventually("every PUB to reach the broker", || {
        b.handle.stats().published == N
    })
    .await;
    let stats = b.handle.stats();
    let slow_stats = stats
        .subscribers
        .iter()
        .find(|s| s.name == "slow")
        .unwrap()
        .clone();
    assert_eq!(slow_stats.seq, N, "one sequence number per event");
    assert!(
        slow_stats.drops > 0,
        "6 MB cannot fit in 1024 frames plus socket buffers"
    );
    assert_eq!(stats.drops, slow_stats.drops);
    // What was not dropped arrives, in order, ending with the newest event.
    let expected = (N - slow_stats.drops) as usize;
    let got = read_events(&mut slow, expected).await;
    assert!(got.windows(2).all(|w| w[0] < w[1]), "order kept");
    assert_eq!(*got.last().unwrap(), N - 1, "the newest event survives");
    assert_eq!(got.len(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_sequence_numbers_per_subscriber() {
    let b = TestBroker::start().await;
    let sub = client(&b, "counted");
    let mut s = sub.subscribe(pattern("s.>")).await.unwrap();
    let publisher = client(&b, "pub");
    for n in 0..3 {
        publisher.publish(event("s.x", n)).await.unwrap();
    }
    for _ in 0..3 {
        recv(&mut s).await;
    }
    let stats = b.handle.stats();
    assert_eq!(stats.connections, 2);
    assert_eq!(stats.published, 3);
    assert_eq!(stats.delivered, 3);
    let c = stats
        .subscribers
        .iter()
        .find(|s| s.name == "counted")
        .unwrap();
    assert_eq!(
        (c.seq, c.drops, c.patterns.clone()),
        (3, 0, vec!["s.>".to_owned()])
    );
    assert_eq!(c.uid, Some(nix::unistd::geteuid().as_raw()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_publishes_its_health_with_pid_and_counters() {
    let b = TestBroker::start_with(|o| o.heartbeat = Some(Duration::from_millis(100))).await;
    let c = client(&b, "watcher");
    let mut s = c.subscribe(pattern("system.*.health")).await.unwrap();
    // The payload is a snapshot taken just before routing: the first beat we get may
    // predate our SUB by a hair, so take the first one that lists it.
    let mut e = recv(&mut s).await;
    while e.payload.to_map().unwrap()["subscribers"][0]["patterns"] == json!([]) {
        e = recv(&mut s).await;
    }
    assert_eq!(e.topic, topics::SYSTEM_BUS_HEALTH);
    assert_eq!(e.event_type, "bus.health");
    let p = &e.payload.to_map().unwrap();
    assert_eq!(p["pid"], std::process::id());
    assert!(p["uptime_sec"].as_f64().unwrap() >= 0.0);
    assert!(p["ts"].as_f64().unwrap() > 1.6e9);
    assert_eq!(p["connections"], 1);
    assert_eq!(p["drops"], 0);
    let subs = p["subscribers"].as_array().unwrap();
    assert_eq!(subs[0]["name"], "watcher");
    assert_eq!(subs[0]["patterns"], json!(["system.*.health"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_uid_check_refuses_other_uids() {
    let me = nix::unistd::geteuid().as_raw();
    let closed =
        TestBroker::start_with(|o| o.allowed_uids = Some(vec![me.wrapping_add(4242)])).await;
    let mut raw = UnixStream::connect(&closed.path).await.unwrap();
    let mut byte = [0u8; 1];
    let n = tokio::time::timeout(WAIT, raw.read(&mut byte))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0, "connection from a refused uid is closed at once");
    assert_eq!(closed.handle.stats().connections, 0);

    let open = TestBroker::start_with(|o| o.allowed_uids = Some(vec![me])).await;
    let c = client(&open, "me");
    let mut s = c.subscribe(pattern("ok.*")).await.unwrap();
    let p = client(&open, "pub");
    p.publish(event("ok.x", 7)).await.unwrap();
    assert_eq!(n_of(&recv(&mut s).await), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_says_bye_to_connections() {
    let mut b = TestBroker::start().await;
    let mut raw = raw_sub(&b, "raw", "a.>").await;
    b.stop().await;
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, raw.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    match wire::decode(&rest).unwrap() {
        Decoded::Frame { frame, consumed } => {
            assert_eq!(frame.verb, Verb::Bye);
            assert_eq!(consumed, rest.len());
        }
        other => panic!("expected BYE, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_client_resumes_receiving_after_a_broker_restart() {
    let mut b = TestBroker::start().await;
    let mut opts = ClientOptions::new("survivor");
    opts.backoff_max = Duration::from_millis(200);
    let sub = SocketClient::new(&b.path, opts.clone());
    opts.name = "pub".into();
    let publisher = SocketClient::new(&b.path, opts);
    let mut s = sub.subscribe(pattern("r.>")).await.unwrap();
    publisher.publish(event("r.before", 1)).await.unwrap();
    assert_eq!(n_of(&recv(&mut s).await), 1);

    b.stop().await;
    eventually("both clients to notice", || {
        !sub.is_connected() && !publisher.is_connected()
    })
    .await;
    // Published while the broker is down: dropped and counted, not queued for later.
    publisher.publish(event("r.during", 2)).await.unwrap();
    assert_eq!(publisher.stats().dropped, 1);

    b.restart();
    eventually("the subscriber to re-subscribe", || {
        b.has_pattern("survivor", "r.>")
    })
    .await;
    eventually("the publisher to reconnect", || publisher.is_connected()).await;
    publisher.publish(event("r.after", 3)).await.unwrap();
    let e = recv(&mut s).await;
    assert_eq!((e.topic.as_str(), n_of(&e)), ("r.after", 3));
    assert!(!s.is_closed());
    assert_eq!(sub.stats().reconnects, 1);
    assert_eq!(publisher.stats().reconnects, 1);
}
