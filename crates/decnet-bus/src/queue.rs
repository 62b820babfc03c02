//! The bounded drop-oldest queue shared by broker connections and subscriptions, and [`Subscription`].

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use futures::Stream;

use crate::envelope::Envelope;
use crate::topic::Pattern;

/// Default capacity of a subscription queue and of a broker connection queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// Largest queue capacity a configuration may ask for.
pub const MAX_QUEUE_CAPACITY: usize = 1 << 20;
/// Most bytes of sized items (broker frames) one queue holds: 1024 frames of up to 1 MiB
/// each would otherwise let one slow subscriber pin a gigabyte.
pub const MAX_QUEUE_BYTES: usize = 32 * 1024 * 1024;

/// Items that must not be dropped to make room (broker control frames such as `OK`).
pub(crate) trait QueueItem {
    /// True for an item the drop-oldest policy skips.
    fn protected(&self) -> bool {
        false
    }
    /// Bytes this item holds, counted against [`MAX_QUEUE_BYTES`] (0: not counted).
    fn size(&self) -> usize {
        0
    }
}

impl QueueItem for Envelope {}

/// Counters of one queue, readable at any time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Items ever pushed (the last sequence number given out).
    pub seq: u64,
    /// Items dropped to make room for newer ones.
    pub drops: u64,
    /// Items waiting now.
    pub queued: usize,
}

struct State<T> {
    items: VecDeque<T>,
    capacity: usize,
    bytes: usize,
    seq: u64,
    drops: u64,
    closed: bool,
    waker: Option<Waker>,
}

/// A single-consumer bounded queue: pushing into a full queue drops the oldest droppable
/// item and counts it; pushing never blocks.
pub(crate) struct Queue<T> {
    state: Mutex<State<T>>,
}

impl<T: QueueItem> Queue<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                capacity: capacity.clamp(1, MAX_QUEUE_CAPACITY),
                bytes: 0,
                seq: 0,
                drops: 0,
                closed: false,
                waker: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding this lock leaves the queue consistent (every mutation is a
        // single VecDeque call), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `item`; returns false (and drops the item) when the queue is closed.
    pub(crate) fn push(&self, item: T) -> bool {
        self.push_all(std::iter::once(item))
    }

    /// Appends every item of `items` in order under one lock and wakes the consumer once:
    /// the same outcome (order, drops, counters) as pushing them one by one, for one lock
    /// and at most one wake-up per batch. Returns false (and drops the items) when the
    /// queue is closed.
    pub(crate) fn push_all(&self, items: impl IntoIterator<Item = T>) -> bool {
        let waker = {
            let mut s = self.lock();
            if s.closed {
                return false;
            }
            for item in items {
                Self::push_locked(&mut s, item);
            }
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    fn push_locked(s: &mut State<T>, item: T) {
        let size = item.size();
        while !s.items.is_empty()
            && (s.items.len() >= s.capacity || s.bytes + size > MAX_QUEUE_BYTES)
        {
            let victim = s.items.iter().position(|i| !i.protected()).unwrap_or(0);
            if let Some(old) = s.items.remove(victim) {
                s.bytes -= old.size();
            }
            s.drops += 1;
        }
        s.bytes += size;
        s.items.push_back(item);
        s.seq += 1;
    }

    /// Closes the queue: later pushes are refused, the consumer drains what is left and
    /// then sees the end.
    pub(crate) fn close(&self) {
        let waker = {
            let mut s = self.lock();
            s.closed = true;
            s.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) fn stats(&self) -> QueueStats {
        let s = self.lock();
        QueueStats {
            seq: s.seq,
            drops: s.drops,
            queued: s.items.len(),
        }
    }

    /// Next item, `Ready(None)` once closed and empty.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut s = self.lock();
        if let Some(item) = s.items.pop_front() {
            s.bytes -= item.size();
            return Poll::Ready(Some(item));
        }
        if s.closed {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Moves every waiting item into `out`; `Ready(false)` once closed and empty.
    pub(crate) fn poll_drain(&self, cx: &mut Context<'_>, out: &mut Vec<T>) -> Poll<bool> {
        let mut s = self.lock();
        if !s.items.is_empty() {
            out.extend(s.items.drain(..));
            s.bytes = 0;
            return Poll::Ready(true);
        }
        if s.closed {
            return Poll::Ready(false);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    pub(crate) fn try_pop(&self) -> Option<T> {
        let mut s = self.lock();
        let item = s.items.pop_front()?;
        s.bytes -= item.size();
        Some(item)
    }
}

/// Runs a backend's clean-up when a subscription is dropped.
pub(crate) type Unsubscribe = Box<dyn FnOnce() + Send + Sync>;

/// One subscription: an async stream of envelopes whose topic matches [`Self::pattern`].
///
/// Events wait in a bounded queue (capacity from the bus configuration, 1024 by default);
/// when it is full the oldest event is dropped and counted in [`Self::stats`]. Dropping the
/// subscription unregisters it. When the bus is closed the stream yields what was already
/// queued, then ends.
pub struct Subscription {
    pattern: Pattern,
    queue: Arc<Queue<Envelope>>,
    unsubscribe: Option<Unsubscribe>,
}

impl Subscription {
    pub(crate) fn new(
        pattern: Pattern,
        queue: Arc<Queue<Envelope>>,
        unsubscribe: Option<Unsubscribe>,
    ) -> Self {
        Self {
            pattern,
            queue,
            unsubscribe,
        }
    }

    /// The pattern this subscription was made with.
    pub fn pattern(&self) -> &Pattern {
        &self.pattern
    }

    /// The next event, or `None` once the subscription has ended.
    pub async fn recv(&mut self) -> Option<Envelope> {
        std::future::poll_fn(|cx| self.queue.poll_pop(cx)).await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Envelope> {
        self.queue.try_pop()
    }

    /// Sequence number of the last event received into the queue, drops, and queue length.
    pub fn stats(&self) -> QueueStats {
        self.queue.stats()
    }

    /// True once the bus closed this subscription (queued events may still be read).
    pub fn is_closed(&self) -> bool {
        self.queue.is_closed()
    }
}

impl Stream for Subscription {
    type Item = Envelope;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Envelope>> {
        self.queue.poll_pop(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.queue.close();
        if let Some(f) = self.unsubscribe.take() {
            f();
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("pattern", &self.pattern)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Item(u32, bool);
    impl QueueItem for Item {
        fn protected(&self) -> bool {
            self.1
        }
    }

    fn drain(q: &Queue<Item>) -> Vec<u32> {
        std::iter::from_fn(|| q.try_pop()).map(|i| i.0).collect()
    }

    #[test]
    fn full_queue_drops_the_oldest_and_counts() {
        let q = Queue::new(2);
        for i in 1..=5 {
            assert!(q.push(Item(i, false)));
        }
        assert_eq!(
            q.stats(),
            QueueStats {
                seq: 5,
                drops: 3,
                queued: 2
            }
        );
        assert_eq!(drain(&q), vec![4, 5]);
    }

    #[test]
    fn protected_items_survive_overflow() {
        let q = Queue::new(3);
        q.push(Item(1, true));
        for i in 2..=6 {
            q.push(Item(i, false));
        }
        assert_eq!(drain(&q), vec![1, 5, 6]);
        assert_eq!(q.stats().drops, 3);
    }

    struct Big(usize);
    impl QueueItem for Big {
        fn size(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn sized_items_are_also_bounded_in_bytes() {
        let q = Queue::new(1024);
        let mib = 1024 * 1024;
        for _ in 0..40 {
            q.push(Big(mib));
        }
        let stats = q.stats();
        assert_eq!(stats.queued, MAX_QUEUE_BYTES / mib);
        assert_eq!(stats.drops, 40 - (MAX_QUEUE_BYTES / mib) as u64);
        // An item larger than the budget still goes through alone.
        q.push(Big(MAX_QUEUE_BYTES + 1));
        assert_eq!(q.stats().queued, 1);
        assert!(q.try_pop().is_some());
        q.push(Big(mib));
        assert_eq!(
            q.stats().queued,
            1,
            "byte count returned to zero after the pop"
        );
    }

    #[test]
    fn a_batch_push_matches_single_pushes_and_wakes_once() {
        let items = || std::iter::once(Item(0, true)).chain((1..=6).map(|i| Item(i, false)));
        let one_by_one = Queue::new(3);
        for item in items() {
            assert!(one_by_one.push(item));
        }
        let batched = Queue::new(3);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(batched.poll_pop(&mut cx).is_pending());
        assert!(batched.lock().waker.is_some(), "the consumer waits");
        assert!(batched.push_all(items()));
        assert!(batched.lock().waker.is_none(), "the batch woke it");
        assert_eq!(
            batched.stats(),
            QueueStats {
                seq: 7,
                drops: 4,
                queued: 3
            }
        );
        assert_eq!(one_by_one.stats(), batched.stats());
        assert_eq!(drain(&batched), vec![0, 5, 6]);
        assert_eq!(drain(&one_by_one), vec![0, 5, 6]);
        batched.close();
        assert!(!batched.push_all([Item(9, false)]));
        assert_eq!(batched.stats().queued, 0);
    }

    #[test]
    fn closed_queue_refuses_pushes_and_drains() {
        let q = Queue::new(4);
        q.push(Item(1, false));
        q.close();
        assert!(!q.push(Item(2, false)));
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(
            q.poll_pop(&mut cx),
            Poll::Ready(Some(Item(1, false)))
        ));
        assert!(matches!(q.poll_pop(&mut cx), Poll::Ready(None)));
    }
}
