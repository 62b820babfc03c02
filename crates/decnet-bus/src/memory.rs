//! The in-process bus: a hub shared by handles, with the broker's matcher, echo and queue policy.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use futures::future::BoxFuture;

use crate::Error;
use crate::bus::{Bus, BusStats};
use crate::envelope::{Envelope, now_ts};
use crate::queue::{DEFAULT_QUEUE_CAPACITY, Queue, Subscription};
use crate::router::{ConnId, Router};
use crate::topic::Pattern;

type SubQueue = Arc<Queue<Envelope>>;

struct Hub {
    router: RwLock<Router<(), (u64, SubQueue)>>,
    next_id: AtomicU64,
}

impl Hub {
    fn read(&self) -> RwLockReadGuard<'_, Router<(), (u64, SubQueue)>> {
        // Router mutations are single calls; a poisoned lock still holds a valid table.
        self.router.read().unwrap_or_else(|e| e.into_inner())
    }
    fn write(&self) -> RwLockWriteGuard<'_, Router<(), (u64, SubQueue)>> {
        self.router.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A set of connected in-process handles: what the broker is for socket clients.
///
/// Each [`MemoryBus`] from [`MemoryHub::connect`] plays one connection: it never receives
/// its own events, and, like the broker, it adds the receive time `rts`.
#[derive(Clone)]
pub struct MemoryHub {
    hub: Arc<Hub>,
    capacity: usize,
}

impl Default for MemoryHub {
    fn default() -> Self {
        Self::new(DEFAULT_QUEUE_CAPACITY)
    }
}

impl MemoryHub {
    /// A hub whose subscriptions queue up to `capacity` events (drop-oldest beyond).
    pub fn new(capacity: usize) -> Self {
        Self {
            hub: Arc::new(Hub {
                router: RwLock::new(Router::new()),
                next_id: AtomicU64::new(1),
            }),
            capacity,
        }
    }

    /// A new handle (one "connection") named `name`.
    pub fn connect(&self, name: impl Into<String>) -> MemoryBus {
        self.connect_with_capacity(name, self.capacity)
    }

    /// A new handle whose subscriptions queue up to `capacity` events.
    pub fn connect_with_capacity(&self, name: impl Into<String>, capacity: usize) -> MemoryBus {
        let id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
        self.hub.write().add_conn(id, ());
        MemoryBus {
            hub: self.hub.clone(),
            id,
            name: name.into(),
            capacity,
            closed: AtomicBool::new(false),
            published: AtomicU64::new(0),
        }
    }

    /// Number of open handles.
    pub fn connections(&self) -> usize {
        self.hub.read().conn_count()
    }

    /// Number of live subscriptions over all handles.
    pub fn subscriptions(&self) -> usize {
        self.hub
            .read()
            .iter()
            .map(|(_, _, routes)| routes.len())
            .sum()
    }
}

/// One in-process bus handle; see [`MemoryHub`].
pub struct MemoryBus {
    hub: Arc<Hub>,
    id: ConnId,
    name: String,
    capacity: usize,
    closed: AtomicBool,
    published: AtomicU64,
}

impl MemoryBus {
    fn shut(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        if let Some((_, routes)) = self.hub.write().remove_conn(self.id) {
            for (_, (_, queue)) in routes {
                queue.close();
            }
        }
    }
}

impl Bus for MemoryBus {
    fn name(&self) -> &str {
        &self.name
    }

    fn publish(&self, mut envelope: Envelope) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            envelope.rts = Some(now_ts());
            let topic = envelope.topic.as_str().to_owned();
            self.hub
                .read()
                .for_each_route(&topic, Some(self.id), |(_, queue)| {
                    queue.push(envelope.clone());
                });
            self.published.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }

    fn subscribe(&self, pattern: Pattern) -> BoxFuture<'_, Result<Subscription, Error>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            let queue = Arc::new(Queue::new(self.capacity));
            let sub_id = self.hub.next_id.fetch_add(1, Ordering::Relaxed);
            if self
                .hub
                .write()
                .add_route(self.id, pattern.clone(), (sub_id, queue.clone()))
                .is_none()
            {
                return Err(Error::Closed);
            }
            let hub = Arc::downgrade(&self.hub);
            let conn = self.id;
            let unsubscribe = Box::new(move || {
                if let Some(hub) = hub.upgrade() {
                    hub.write().remove_routes(conn, |_, (id, _)| *id == sub_id);
                }
            });
            Ok(Subscription::new(pattern, queue, Some(unsubscribe)))
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.shut() })
    }

    fn stats(&self) -> BusStats {
        BusStats {
            published: self.published.load(Ordering::Relaxed),
            dropped: 0,
            reconnects: 0,
        }
    }
}

impl Drop for MemoryBus {
    fn drop(&mut self) {
        self.shut();
    }
}
