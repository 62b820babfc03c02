//! The bus contract: one suite, run unchanged against the socket broker + client, the
//! in-process bus and NATS.

use std::sync::Arc;

use decnet_bus::{
    Bus, ClientOptions, Envelope, Error, MemoryHub, NatsBus, SocketClient, Subscription,
};
use futures::future::BoxFuture;
use serde_json::json;

use crate::support::*;

/// Default subscription capacity used by the suite.
const CAP: usize = 1024;

/// A way to open bus handles ("connections") of one backend.
pub trait Backend: Send + Sync {
    /// Opens a handle whose subscriptions queue `capacity` events.
    fn connect<'a>(&'a self, name: &'a str, capacity: usize) -> BoxFuture<'a, Arc<dyn Bus>>;
    /// First topic token of every topic the suite uses (isolates parallel tests).
    fn prefix(&self) -> &str;
}

pub struct SocketBackend {
    broker: TestBroker,
    prefix: String,
}

impl SocketBackend {
    pub async fn new() -> Self {
        Self {
            broker: TestBroker::start().await,
            prefix: "c".into(),
        }
    }
}

impl Backend for SocketBackend {
    fn connect<'a>(&'a self, name: &'a str, capacity: usize) -> BoxFuture<'a, Arc<dyn Bus>> {
        Box::pin(async move {
            let mut opts = ClientOptions::new(name);
            opts.queue_capacity = capacity;
            let client = SocketClient::new(&self.broker.path, opts);
            client.connect().await.unwrap();
            Arc::new(client) as Arc<dyn Bus>
        })
    }
    fn prefix(&self) -> &str {
        &self.prefix
    }
}

pub struct MemoryBackend {
    hub: MemoryHub,
    prefix: String,
}

impl MemoryBackend {
    pub async fn new() -> Self {
        Self {
            hub: MemoryHub::default(),
            prefix: "c".into(),
        }
    }
}

impl Backend for MemoryBackend {
    fn connect<'a>(&'a self, name: &'a str, capacity: usize) -> BoxFuture<'a, Arc<dyn Bus>> {
        Box::pin(
            async move { Arc::new(self.hub.connect_with_capacity(name, capacity)) as Arc<dyn Bus> },
        )
    }
    fn prefix(&self) -> &str {
        &self.prefix
    }
}

pub struct NatsBackend {
    url: String,
    prefix: String,
}

impl NatsBackend {
    pub async fn new() -> Option<Self> {
        Some(Self {
            url: nats_url()?,
            prefix: unique_prefix(),
        })
    }
}

impl Backend for NatsBackend {
    fn connect<'a>(&'a self, name: &'a str, capacity: usize) -> BoxFuture<'a, Arc<dyn Bus>> {
        Box::pin(async move {
            Arc::new(NatsBus::connect(&self.url, name, capacity).await.unwrap()) as Arc<dyn Bus>
        })
    }
    fn prefix(&self) -> &str {
        &self.prefix
    }
}

fn t(b: &dyn Backend, s: &str) -> String {
    format!("{}.{s}", b.prefix())
}

async fn sub(bus: &Arc<dyn Bus>, b: &dyn Backend, p: &str) -> Subscription {
    bus.subscribe(pattern(&t(b, p))).await.unwrap()
}

async fn publish(bus: &Arc<dyn Bus>, b: &dyn Backend, topic: &str, n: u64) -> Envelope {
    let e = event(&t(b, topic), n);
    bus.publish(e.clone()).await.unwrap();
    e
}

/// The subscriber gets the publisher's envelope: same id, ts, type, payload and topic.
pub async fn delivers_the_publishers_envelope(b: &dyn Backend) {
    let subscriber = b.connect("sub", CAP).await;
    let publisher = b.connect("pub", CAP).await;
    let mut s = sub(&subscriber, b, "a.b").await;
    let mut sent = Envelope::new(
        topic(&t(b, "a.b")),
        "thing_happened",
        obj(json!({"k": "v", "nested": {"list": [1, 2.5, null, true]}})),
    );
    sent.ts = 1_700_000_000.25;
    publisher.publish(sent.clone()).await.unwrap();
    let got = recv(&mut s).await;
    assert_eq!(got.v, 1);
    assert_eq!(got.id, sent.id);
    assert_eq!(got.ts, sent.ts);
    assert_eq!(got.topic, sent.topic);
    assert_eq!(got.event_type, "thing_happened");
    assert_eq!(got.payload, sent.payload);
    if let Some(rts) = got.rts {
        assert!(rts > 1.6e9, "receive time {rts} is a real clock");
    }
    assert_eq!(publisher.stats().published, 1);
}

/// Each subscription gets exactly the events its pattern matches, in publish order.
pub async fn wildcards_select_exactly_the_matching_events(b: &dyn Backend) {
    let subscriber = b.connect("sub", CAP).await;
    let publisher = b.connect("pub", CAP).await;
    let cases: [(&str, &[&str]); 4] = [
        (
            "system.*.health",
            &["system.agent.health", "system.bus.health"],
        ),
        (
            "topology.t1.>",
            &["topology.t1.status", "topology.t1.mutation.applied"],
        ),
        ("attacker.*", &["attacker.observed"]),
        ("decky.local:web-01.state", &["decky.local:web-01.state"]),
    ];
    let mut subs = Vec::new();
    for (p, _) in cases {
        subs.push(sub(&subscriber, b, p).await);
    }
    let topics = [
        "system.agent.health",
        "system.health",
        "system.bus.health",
        "system.a.b.health",
        "topology.t1",
        "topology.t1.status",
        "topology.t2.status",
        "topology.t1.mutation.applied",
        "attacker.observed",
        "attacker.session.started",
        "decky.local:web-01.state",
        "decky.local:web-02.state",
    ];
    for (n, topic) in topics.iter().enumerate() {
        publish(&publisher, b, topic, n as u64).await;
    }
    // A fence each subscription matches: anything unexpected would arrive before it.
    let fences = [
        "system.fence.health",
        "topology.t1.fence",
        "attacker.fence",
        "decky.local:web-01.state",
    ];
    for fence in fences {
        publish(&publisher, b, fence, 999).await;
    }
    for ((p, expected), s) in cases.iter().zip(subs.iter_mut()) {
        for want in *expected {
            let got = recv(s).await;
            assert_eq!(got.topic.as_str(), t(b, want), "pattern {p}");
        }
        let fence = recv(s).await;
        assert_eq!(n_of(&fence), 999, "pattern {p} got extra {}", fence.topic);
    }
}

/// No echo: a handle never receives its own events; overlapping subscriptions of another
/// handle get one copy each.
pub async fn no_echo_and_one_copy_per_subscription(b: &dyn Backend) {
    let a = b.connect("a", CAP).await;
    let other = b.connect("other", CAP).await;
    let mut star = sub(&a, b, "x.*").await;
    let mut tail = sub(&a, b, "x.>").await;
    publish(&a, b, "x.1", 1).await;
    publish(&other, b, "x.2", 2).await;
    assert_eq!(n_of(&recv(&mut star).await), 2);
    assert_eq!(n_of(&recv(&mut tail).await), 2);
    publish(&other, b, "x.3", 3).await;
    assert_eq!(n_of(&recv(&mut star).await), 3);
    assert_eq!(n_of(&recv(&mut tail).await), 3);
    assert!(star.try_recv().is_none() && tail.try_recv().is_none());
}

/// An event published after `subscribe` returned is always delivered.
pub async fn an_acknowledged_subscription_never_misses_the_next_event(b: &dyn Backend) {
    let subscriber = b.connect("sub", CAP).await;
    let publisher = b.connect("pub", CAP).await;
    for i in 0..50u64 {
        let mut s = sub(&subscriber, b, &format!("race.r{i}")).await;
        publish(&publisher, b, &format!("race.r{i}"), i).await;
        assert_eq!(n_of(&recv(&mut s).await), i);
    }
}

/// Events from one publisher arrive in publish order; several subscribers all get them.
pub async fn order_is_kept_and_every_subscriber_receives(b: &dyn Backend) {
    let s1 = b.connect("s1", CAP).await;
    let s2 = b.connect("s2", CAP).await;
    let publisher = b.connect("pub", CAP).await;
    let mut a = sub(&s1, b, "seq.*").await;
    let mut c = sub(&s2, b, "seq.>").await;
    for n in 0..500 {
        publish(&publisher, b, "seq.x", n).await;
    }
    for n in 0..500 {
        assert_eq!(n_of(&recv(&mut a).await), n);
        assert_eq!(n_of(&recv(&mut c).await), n);
    }
}

/// A full subscription queue keeps the newest events and counts the dropped ones.
pub async fn full_queue_drops_the_oldest_and_counts(b: &dyn Backend) {
    let subscriber = b.connect("slow", 4).await;
    let publisher = b.connect("pub", CAP).await;
    let mut s = sub(&subscriber, b, "burst.>").await;
    for n in 1..=10 {
        publish(&publisher, b, "burst.x", n).await;
    }
    eventually("10 events to reach the subscription", || {
        s.stats().seq == 10
    })
    .await;
    let stats = s.stats();
    assert_eq!((stats.drops, stats.queued), (6, 4));
    let got: Vec<u64> = std::iter::from_fn(|| s.try_recv())
        .map(|e| n_of(&e))
        .collect();
    assert_eq!(got, vec![7, 8, 9, 10]);
}

/// Dropping a subscription stops its delivery; others on the same handle keep theirs.
pub async fn dropped_subscriptions_stop_receiving(b: &dyn Backend) {
    let subscriber = b.connect("sub", CAP).await;
    let publisher = b.connect("pub", CAP).await;
    let gone = sub(&subscriber, b, "u.x").await;
    let mut kept = sub(&subscriber, b, "u.>").await;
    drop(gone);
    let mut again = sub(&subscriber, b, "u.y").await;
    publish(&publisher, b, "u.x", 1).await;
    publish(&publisher, b, "u.y", 2).await;
    assert_eq!(n_of(&recv(&mut kept).await), 1);
    assert_eq!(n_of(&recv(&mut kept).await), 2);
    assert_eq!(n_of(&recv(&mut again).await), 2);
}

/// Close: idempotent; afterwards publish and subscribe fail with `Closed`, existing
/// subscriptions yield what they hold and end; other handles are unaffected.
pub async fn close_ends_subscriptions_and_refuses_use(b: &dyn Backend) {
    let closing = b.connect("closing", CAP).await;
    let other = b.connect("other", CAP).await;
    let publisher = b.connect("pub", CAP).await;
    let mut s = sub(&closing, b, "cl.>").await;
    let mut o = sub(&other, b, "cl.>").await;
    publish(&publisher, b, "cl.1", 1).await;
    assert_eq!(n_of(&recv(&mut o).await), 1);
    // Wait until the closing handle also holds the event, then close it.
    eventually("the event to reach the closing handle", || {
        s.stats().seq == 1
    })
    .await;
    closing.close().await;
    closing.close().await;
    assert_eq!(n_of(&recv(&mut s).await), 1);
    let end = tokio::time::timeout(WAIT, s.recv()).await.unwrap();
    assert!(end.is_none(), "subscription still open after close");
    assert!(s.is_closed());
    assert!(matches!(
        closing.publish(event(&t(b, "cl.2"), 2)).await,
        Err(Error::Closed)
    ));
    assert!(matches!(
        closing.subscribe(pattern(&t(b, "cl.>"))).await,
        Err(Error::Closed)
    ));
    publish(&publisher, b, "cl.3", 3).await;
    assert_eq!(n_of(&recv(&mut o).await), 3);
}

/// Subscriptions work as streams too.
pub async fn subscriptions_are_streams(b: &dyn Backend) {
    use futures::StreamExt;
    let subscriber = b.connect("sub", CAP).await;
    let publisher = b.connect("pub", CAP).await;
    let s = sub(&subscriber, b, "st.*").await;
    for n in 0..3 {
        publish(&publisher, b, "st.x", n).await;
    }
    let got: Vec<u64> = tokio::time::timeout(WAIT, s.take(3).map(|e| n_of(&e)).collect())
        .await
        .unwrap();
    assert_eq!(got, vec![0, 1, 2]);
}

macro_rules! contract_suite {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        #[allow(clippy::redundant_closure_call)]
                        let Some(backend) = ($make)().await else {
                            return;
                        };
                        super::$name(&backend).await;
                    }
                };
            }

            case!(delivers_the_publishers_envelope);
            case!(wildcards_select_exactly_the_matching_events);
            case!(no_echo_and_one_copy_per_subscription);
            case!(an_acknowledged_subscription_never_misses_the_next_event);
            case!(order_is_kept_and_every_subscriber_receives);
            case!(full_queue_drops_the_oldest_and_counts);
            case!(dropped_subscriptions_stop_receiving);
            case!(close_ends_subscriptions_and_refuses_use);
            case!(subscriptions_are_streams);
        }
    };
}

contract_suite!(socket, || async { Some(SocketBackend::new().await) });
contract_suite!(memory, || async { Some(MemoryBackend::new().await) });
contract_suite!(nats, NatsBackend::new);
