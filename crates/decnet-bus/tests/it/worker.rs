//! publish_safely, the health heartbeat and the control listener (over the in-process bus).

use std::sync::Arc;
use std::time::Duration;

use decnet_bus::worker::{control_listener, health_heartbeat};
use decnet_bus::{Bus, IdToken, MemoryHub, publish_safely, topics};
use serde_json::{Map, json};
use tokio_util::sync::CancellationToken;

use crate::support::*;

#[tokio::test]
async fn publish_safely_never_fails_its_caller() {
    let hub = MemoryHub::default();
    let bus = hub.connect("writer");
    let reader = hub.connect("reader");
    let mut s = reader.subscribe(pattern(">")).await.unwrap();

    assert!(
        !publish_safely(None, "a.b", "t", json!({})).await,
        "no bus: no-op"
    );
    assert!(!publish_safely(Some(&bus), "a.*", "t", json!({})).await);
    // FL-6: a builder error inside the safe path is logged, not raised.
    assert!(!publish_safely(Some(&bus), topics::attacker_observation(""), "t", json!({})).await);
    assert!(!publish_safely(Some(&bus), "a.b", "t", json!([1, 2])).await);
    assert!(publish_safely(Some(&bus), "a.b", "t", json!({"ok": true})).await);
    let e = recv(&mut s).await;
    assert_eq!((e.topic.as_str(), e.event_type.as_str()), ("a.b", "t"));
    assert_eq!(e.payload.to_map().unwrap()["ok"], true);
    assert!(s.try_recv().is_none(), "the refused events were not sent");
    bus.close().await;
    assert!(!publish_safely(Some(&bus), "a.b", "t", json!({})).await);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_beats_at_once_then_every_interval_and_survives_a_failing_extra() {
    let hub = MemoryHub::default();
    let bus: Arc<dyn Bus> = Arc::new(hub.connect("agent"));
    let watcher = hub.connect("registry");
    let mut s = watcher.subscribe(pattern("system.*.health")).await.unwrap();
    let stop = CancellationToken::new();
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = calls.clone();
    let extra = move || {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n == 1 {
            Err("metrics unavailable".to_owned())
        } else {
            let mut m = Map::new();
            m.insert("deckies".into(), json!(n));
            m.insert("worker".into(), json!("spoofed"));
            Ok(m)
        }
    };
    let worker = IdToken::new("worker", "agent").unwrap();
    let task = tokio::spawn(health_heartbeat(
        Some(bus),
        worker,
        Duration::from_secs(1),
        extra,
        stop.clone(),
    ));
    let first = recv(&mut s).await;
    assert_eq!(first.topic.as_str(), "system.agent.health");
    assert_eq!(first.event_type, "health");
    assert_eq!(
        first.payload.to_map().unwrap()["worker"],
        "agent",
        "worker field wins over extra"
    );
    assert!(first.payload.to_map().unwrap()["ts"].as_f64().unwrap() > 1.6e9);
    assert_eq!(first.payload.to_map().unwrap()["deckies"], 0);
    let second = recv(&mut s).await;
    assert!(
        second.payload.to_map().unwrap().get("deckies").is_none(),
        "failed extra: beat without it"
    );
    let third = recv(&mut s).await;
    assert_eq!(third.payload.to_map().unwrap()["deckies"], 2);
    stop.cancel();
    task.await.unwrap();
    assert_eq!(calls.load(std::sync::atomic::Ordering::Relaxed), 3);
}

#[tokio::test]
async fn heartbeat_and_listener_without_a_bus_wait_for_shutdown() {
    let stop = CancellationToken::new();
    let worker = IdToken::new("worker", "w").unwrap();
    let hb = tokio::spawn(health_heartbeat(
        None,
        worker.clone(),
        Duration::from_millis(1),
        || Ok(Map::new()),
        stop.clone(),
    ));
    let cl = tokio::spawn(control_listener(None, worker, stop.clone()));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!hb.is_finished() && !cl.is_finished());
    stop.cancel();
    hb.await.unwrap();
    cl.await.unwrap();
}

#[tokio::test]
async fn control_listener_stops_on_stop_and_ignores_other_actions() {
    let hub = MemoryHub::default();
    let bus: Arc<dyn Bus> = Arc::new(hub.connect("reconciler"));
    let api = hub.connect("api");
    let stop = CancellationToken::new();
    let worker = IdToken::new("worker", "reconciler").unwrap();
    let task = tokio::spawn(control_listener(Some(bus), worker.clone(), stop.clone()));
    let control = topics::system_control(&worker);
    eventually("the listener to subscribe", || hub.subscriptions() == 1).await;
    let send = |action: &str| {
        decnet_bus::Envelope::new(
            control.clone(),
            "control",
            obj(json!({"action": action, "requested_by": "admin"})),
        )
    };
    api.publish(send("restart")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!stop.is_cancelled(), "unknown actions are ignored");
    api.publish(send("stop")).await.unwrap();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    assert!(stop.is_cancelled());
}
