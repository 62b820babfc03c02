//! The [`Bus`] trait every backend implements, and the never-failing publish helpers.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde_json::{Map, Value};
use tracing::warn;

use crate::Error;
use crate::envelope::Envelope;
use crate::payload::Payload;
use crate::queue::Subscription;
use crate::topic::{Pattern, Topic};

/// How long [`publish_safely`] waits for a backend to take an event.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// Counters of one bus handle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BusStats {
    /// Events handed to the transport.
    pub published: u64,
    /// Events dropped before reaching the transport (disconnected, or the outbound buffer full).
    pub dropped: u64,
    /// Successful connections after the first one.
    pub reconnects: u64,
}

/// A host-local publish/subscribe bus: at-most-once, fire-and-forget notifications. The
/// database is the source of truth; the bus only says "look again".
///
/// Guarantees every implementation keeps (checked by one contract suite run against the
/// socket broker and client, the in-process bus and NATS):
/// - `subscribe` returns only once the transport has registered the pattern: an event
///   published by another handle after `subscribe` returned is delivered (unless the
///   subscriber's queue overflows, which is counted);
/// - an event goes to every matching subscription of every *other* handle, never back to
///   the handle that published it (no echo), one copy per matching subscription;
/// - events from one publisher arrive in publish order, minus drops;
/// - a full subscription queue drops its oldest event and counts it;
/// - the subscriber sees the publisher's `id`, `ts`, `type` and payload, and the topic
///   the event was published on;
/// - `close` is idempotent; after it `publish` and `subscribe` fail with
///   [`Error::Closed`], and existing subscriptions yield what they hold, then end.
///
/// The trait is object-safe: services hold an `Arc<dyn Bus>` chosen by configuration.
pub trait Bus: Send + Sync {
    /// The name this handle announced (logs, broker statistics).
    fn name(&self) -> &str;

    /// Publishes one event.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Bus::close`]; a backend error when the transport refused
    /// the event outright. A socket client that is disconnected drops the event, counts it
    /// and returns `Ok` (the bus is best-effort).
    fn publish(&self, envelope: Envelope) -> BoxFuture<'_, Result<(), Error>>;

    /// Subscribes to `pattern`.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Bus::close`]; [`Error::NotConnected`] or
    /// [`Error::AckTimeout`] when the transport did not register the pattern.
    fn subscribe(&self, pattern: Pattern) -> BoxFuture<'_, Result<Subscription, Error>>;

    /// Flushes what was published (best-effort, bounded in time), says goodbye, and ends
    /// every subscription. Idempotent.
    fn close(&self) -> BoxFuture<'_, ()>;

    /// Counters of this handle.
    fn stats(&self) -> BusStats;
}

/// Something that names a topic, possibly invalid: lets [`publish_safely`] build the topic
/// inside its non-failing path (FL-6).
pub trait IntoTopic {
    /// The topic, or why there is none.
    ///
    /// # Errors
    /// [`Error::InvalidTopic`] (or the builder's error).
    fn into_topic(self) -> Result<Topic, Error>;
}

impl IntoTopic for Topic {
    fn into_topic(self) -> Result<Topic, Error> {
        Ok(self)
    }
}

impl IntoTopic for &Topic {
    fn into_topic(self) -> Result<Topic, Error> {
        Ok(self.clone())
    }
}

impl IntoTopic for Result<Topic, Error> {
    fn into_topic(self) -> Result<Topic, Error> {
        self
    }
}

impl IntoTopic for &str {
    fn into_topic(self) -> Result<Topic, Error> {
        Topic::new(self)
    }
}

impl IntoTopic for String {
    fn into_topic(self) -> Result<Topic, Error> {
        Topic::new(self)
    }
}

impl<F: FnOnce() -> Result<Topic, Error>> IntoTopic for F {
    fn into_topic(self) -> Result<Topic, Error> {
        self()
    }
}

/// Turns a serialisable payload into the JSON object an envelope carries.
///
/// # Errors
/// [`Error::PayloadNotObject`] when it does not serialise to an object.
pub fn payload_object(payload: impl Serialize) -> Result<Map<String, Value>, Error> {
    match serde_json::to_value(payload) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::PayloadNotObject),
    }
}

/// Best-effort publish: the caller's database write is authoritative and already done.
///
/// Never fails its caller: no bus → no-op; an invalid topic, a payload that is not an
/// object, a transport error or a backend that does not take the event within
/// [`PUBLISH_TIMEOUT`] → one warning. Returns whether the event was handed to the bus.
/// Cancelling the future cancels the publish.
pub async fn publish_safely(
    bus: Option<&dyn Bus>,
    topic: impl IntoTopic,
    event_type: &str,
    payload: impl Serialize,
) -> bool {
    let Some(bus) = bus else {
        return false;
    };
    let topic = match topic.into_topic() {
        Ok(t) => t,
        Err(e) => {
            warn!(error = %e, "Bus event skipped: invalid topic");
            return false;
        }
    };
    // Serialised straight to JSON text: no map of values in between.
    let payload = match Payload::from_serialize(&payload) {
        Ok(p) => p,
        Err(e) => {
            warn!(topic = %topic, error = %e, "Bus event skipped");
            return false;
        }
    };
    let envelope = Envelope::new(topic.clone(), event_type, payload);
    match tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish(envelope)).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            warn!(topic = %topic, error = %e, "Bus publish failed");
            false
        }
        Err(_) => {
            warn!(topic = %topic, timeout = ?PUBLISH_TIMEOUT, "Bus publish timed out");
            false
        }
    }
}

/// A publisher callable from blocking threads: it schedules a [`publish_safely`] on the
/// runtime without waiting. A missing bus makes it a no-op.
#[derive(Clone)]
pub struct SyncPublisher {
    handle: tokio::runtime::Handle,
    bus: Option<Arc<dyn Bus>>,
}

impl SyncPublisher {
    /// A publisher that spawns on `handle`.
    pub fn new(handle: tokio::runtime::Handle, bus: Option<Arc<dyn Bus>>) -> Self {
        Self { handle, bus }
    }

    /// Schedules the publish; returns whether one was scheduled.
    pub fn publish(&self, topic: impl IntoTopic, event_type: &str, payload: Value) -> bool {
        let Some(bus) = self.bus.clone() else {
            return false;
        };
        let topic = topic.into_topic();
        let event_type = event_type.to_owned();
        self.handle.spawn(async move {
            publish_safely(Some(bus.as_ref()), topic, &event_type, payload).await;
        });
        true
    }
}
