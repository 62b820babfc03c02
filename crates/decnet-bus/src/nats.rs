//! The NATS backend: the same [`Bus`] contract over a `nats-server` (patterns are subjects).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use tracing::{debug, warn};

use crate::Error;
use crate::bus::{Bus, BusStats};
use crate::envelope::{Envelope, now_ts};
use crate::queue::{DEFAULT_QUEUE_CAPACITY, Queue, Subscription};
use crate::topic::{Pattern, Topic};

/// How long `subscribe` waits for the server to confirm the subscription.
pub const BARRIER_TIMEOUT: Duration = Duration::from_secs(5);

/// Default NATS URL when none is configured.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";

fn nats_error(what: &'static str) -> impl FnOnce(String) -> Error {
    move |message| Error::Nats { what, message }
}

/// A [`Bus`] over NATS core pub/sub.
///
/// Our topic and pattern grammar is the NATS subject grammar, so topics and patterns are
/// used unchanged. The connection is opened with `no_echo`, which is the broker's echo
/// policy; `subscribe` makes a round trip through the server so it has registered the
/// interest before it returns; each subscription is pumped into the same drop-oldest queue the
/// other backends use. Envelopes travel as the message payload; the topic is taken from
/// the subject. NATS adds no `rts`.
pub struct NatsBus {
    client: async_nats::Client,
    name: String,
    capacity: usize,
    closed: AtomicBool,
    published: AtomicU64,
    queues: Arc<Mutex<Vec<Weak<Queue<Envelope>>>>>,
}

impl NatsBus {
    /// Connects to `url` as `name` with subscription queues of `capacity` events.
    ///
    /// # Errors
    /// [`Error::Nats`] when the server cannot be reached.
    pub async fn connect(url: &str, name: &str, capacity: usize) -> Result<Self, Error> {
        let client = async_nats::ConnectOptions::new()
            .name(name)
            .no_echo()
            .connect(url)
            .await
            .map_err(|e| nats_error("connect")(e.to_string()))?;
        Ok(Self {
            client,
            name: name.to_owned(),
            capacity: if capacity == 0 {
                DEFAULT_QUEUE_CAPACITY
            } else {
                capacity
            },
            closed: AtomicBool::new(false),
            published: AtomicU64::new(0),
            queues: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Waits for a round trip through the server on this connection, so that everything
    /// sent before (our SUB) has been processed by the server. `flush` only writes the
    /// socket; a request to a subject nobody serves comes back as "no responders" after
    /// the server has handled every earlier command of this connection.
    async fn barrier(&self) -> Result<(), Error> {
        let subject = format!("_DECNET.barrier.{}", crate::envelope::new_event_id());
        let request = async_nats::Request::new().timeout(Some(BARRIER_TIMEOUT));
        match self.client.send_request(subject, request).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
            Err(e) => Err(nats_error("subscribe barrier")(e.to_string())),
        }
    }

    fn queues(&self) -> MutexGuard<'_, Vec<Weak<Queue<Envelope>>>> {
        // Only pushes and retains happen under this lock; poison leaves a valid list.
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Bus for NatsBus {
    fn name(&self) -> &str {
        &self.name
    }

    fn publish(&self, envelope: Envelope) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            self.client
                .publish(envelope.topic.to_string(), envelope.to_json().into())
                .await
                .map_err(|e| nats_error("publish")(e.to_string()))?;
            self.published.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }

    fn subscribe(&self, pattern: Pattern) -> BoxFuture<'_, Result<Subscription, Error>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let mut subscriber = self
                .client
                .subscribe(pattern.to_string())
                .await
                .map_err(|e| nats_error("subscribe")(e.to_string()))?;
            self.barrier().await?;
            let queue = Arc::new(Queue::new(self.capacity));
            let sink = queue.clone();
            let pump = tokio::spawn(async move {
                while let Some(msg) = subscriber.next().await {
                    let envelope = Topic::new(msg.subject.as_str())
                        .and_then(|t| Envelope::from_wire(t, &msg.payload, now_ts()));
                    match envelope {
                        Ok(e) => {
                            if !sink.push(e) {
                                break;
                            }
                        }
                        Err(e) => {
                            debug!(subject = %msg.subject, error = %e, "NATS message ignored");
                        }
                    }
                }
                sink.close();
                let _ = subscriber.unsubscribe().await;
            });
            {
                let mut queues = self.queues();
                queues.retain(|q| q.strong_count() > 0);
                queues.push(Arc::downgrade(&queue));
            }
            let abort = pump.abort_handle();
            Ok(Subscription::new(
                pattern,
                queue,
                Some(Box::new(move || abort.abort())),
            ))
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if self.closed.swap(true, Ordering::AcqRel) {
                return;
            }
            if let Err(e) = self.client.flush().await {
                warn!(error = %e, "NATS flush on close failed");
            }
            for q in self.queues().drain(..) {
                if let Some(q) = q.upgrade() {
                    q.close();
                }
            }
            if let Err(e) = self.client.drain().await {
                debug!(error = %e, "NATS drain on close failed");
            }
        })
    }

    fn stats(&self) -> BusStats {
        BusStats {
            published: self.published.load(Ordering::Relaxed),
            dropped: 0,
            reconnects: 0,
        }
    }
}
