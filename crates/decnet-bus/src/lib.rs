//! DECNET's host-local service bus: at-most-once publish/subscribe notifications between
//! the processes of one host. The database stays the source of truth; an event only says
//! "something changed, look again".
//!
//! Main types, in reading order:
//! - [`Topic`], [`Pattern`], [`IdToken`] and [`matches()`]: the topic grammar and the
//!   NATS-style wildcard matcher (`*` one token, `>` one or more trailing tokens, last only);
//!   invalid patterns such as `a.>.z` are refused. [`topics`] builds the catalogue topics.
//! - [`Envelope`]: the v1 event `{v, id, topic, type, ts, payload}` plus the broker's
//!   receive time `rts`. The publisher's `id` and `ts` are kept end to end (FL-8); the
//!   topic always comes from the transport, never the body. Its [`Payload`] stays JSON
//!   text from publisher to subscriber (checked, never rebuilt) until a reader parses it
//!   into its own type ([`Envelope::payload_as`]) or into values ([`Payload::to_map`]).
//! - [`Bus`]: the object-safe trait (publish, subscribe → [`Subscription`] stream, close)
//!   and its contract; [`publish_safely`] never fails its caller (FL-6).
//! - Backends: [`Broker`] + [`SocketClient`] over a UNIX socket (the reference wire
//!   protocol, codec in `decnet_wire::bus`), [`MemoryHub`]/[`MemoryBus`] in-process with
//!   the broker's exact routing code, and [`NatsBus`] over `nats-server`;
//!   [`BusConfig`] picks one from configuration.
//! - [`worker`]: the health heartbeat and the control listener; [`cli`]: the library side
//!   of `decnet bus`, `decnet bus publish` and `decnet bus subscribe`.
//!
//! ## Wire protocol extension: acknowledged SUB
//! A reference client sends `SUB <pattern>` with an empty body and gets no reply. Our
//! client sends `SUB <pattern>` with body `{"ack": n}`; our broker registers the pattern
//! and then answers `OK <pattern>` with body `{"ack": n}`, queued on that connection after
//! the registration, so any event published after the client saw `OK` is delivered. The
//! broker answers only requests that carry `ack`, so a reference client never receives a
//! verb it does not know; a reference broker ignores the SUB body and never answers, so our
//! client's `subscribe` then fails with [`Error::AckTimeout`] (5 s) instead of silently
//! missing events. Nothing else on the wire changed: broker EVT bodies gain the `rts` field,
//! which reference readers ignore.
//!
//! ## Delivery policy (all backends)
//! No echo to the publishing connection; one copy per matching subscription; a full queue
//! drops its oldest event and counts it (broker connection queues: 1024 frames; client
//! subscription queues: 1024 events); the broker exposes per-connection sequence numbers
//! and drop counters in [`BrokerStats`] and in the `system.bus.health` payload.
//!
//! Not here: persistence, replay, acknowledgements of events, federation between hosts,
//! and reading the environment (the binary resolves [`BusConfig`] and passes it in).

mod broker;
mod bus;
pub mod cli;
mod client;
mod config;
mod envelope;
mod error;
mod json;
mod memory;
mod nats;
mod payload;
mod queue;
mod router;
mod ser;
mod topic;
pub mod topics;
pub mod worker;

pub use broker::{
    Broker, BrokerHandle, BrokerOptions, BrokerStats, ConnStats, DEFAULT_GROUP, DEFAULT_HEARTBEAT,
    FRAME_READ_TIMEOUT, MAX_CONNECTIONS, MAX_HEALTH_SUBSCRIBERS, MAX_PATTERNS_PER_CONN,
    MAX_PEER_NAME,
};
pub use bus::{
    Bus, BusStats, IntoTopic, PUBLISH_TIMEOUT, SyncPublisher, payload_object, publish_safely,
};
pub use client::{ClientOptions, MAX_PENDING_BYTES, SocketClient};
pub use config::{BusConfig, BusKind};
pub use envelope::{
    ENVELOPE_VERSION, Envelope, MAX_EVENT_ID_LEN, MAX_EVENT_TYPE_LEN, new_event_id, now_ts, restamp,
};
pub use error::Error;
pub use memory::{MemoryBus, MemoryHub};
pub use nats::{DEFAULT_NATS_URL, NatsBus};
pub use payload::Payload;
pub use queue::{
    DEFAULT_QUEUE_CAPACITY, MAX_QUEUE_BYTES, MAX_QUEUE_CAPACITY, QueueStats, Subscription,
};
pub use topic::{IdToken, MAX_ID_LEN, MAX_TOKENS, MAX_TOPIC_LEN, Pattern, Topic, matches};
