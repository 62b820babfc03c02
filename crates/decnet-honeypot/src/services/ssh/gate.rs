//! The `MaxAuthTries` gate: a stream wrapper that holds the client's request after the last
//! allowed authentication failure, so the connection can end the way sshd ends it.
//!
//! sshd answers the request that reaches `MaxAuthTries` with no `USERAUTH_FAILURE`, only
//! (after the usual failure delay) `DISCONNECT` reason 2, "Too many authentication
//! failures". russh answers every request its handler sees and only sends a disconnect
//! queued through its `Handle` once it has flushed that answer, so the emulator keeps the
//! request from russh instead: after the failure before the last one the handler
//! [arms](Gate::arm) the gate; the next bytes the client sends are read into a bounded
//! buffer and not passed on, and [`Gate::tripped`] wakes the connection task, which waits
//! the failure delay and has russh disconnect while it is idle. When russh shuts its write
//! side down after the disconnect, the held bytes are handed over (russh reads and drops
//! them while it waits for the client to close). If the client closes first, the held
//! bytes are handed over at once and russh treats them as it would have.
//!
//! What it cannot do: read the held request. It is encrypted and russh never decrypts it,
//! so the password of that last attempt is not captured (tools such as hydra send it again
//! on their next connection, where it is).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Most bytes held back (a password request is a few hundred; more is not kept waiting).
pub const MAX_HELD_BYTES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes pass through.
    Open,
    /// The next bytes from the client are held.
    Armed,
    /// Bytes arrived and are held.
    Holding,
    /// The held bytes go to russh first, then bytes pass through again.
    Released,
}

#[derive(Debug)]
struct Inner {
    state: State,
    delay: Duration,
    user: String,
    held: Vec<u8>,
    reader: Option<Waker>,
}

/// Shared between the handler, the stream and the connection task.
#[derive(Debug)]
pub struct Gate {
    inner: Mutex<Inner>,
    tripped: Notify,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            inner: Mutex::new(Inner {
                state: State::Open,
                delay: Duration::ZERO,
                user: String::new(),
                held: Vec::new(),
                reader: None,
            }),
            tripped: Notify::new(),
        }
    }
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds the client's next request; it will be answered after `delay` with the
    /// disconnect. `user` is the name of the failures so far, for the event.
    pub fn arm(&self, delay: Duration, user: &str) {
        let mut g = self.lock();
        if g.state == State::Open {
            g.state = State::Armed;
            g.delay = delay;
            g.user = user.chars().take(64).collect();
        }
    }

    /// Whether bytes are being held (the disconnect is still due).
    pub fn holding(&self) -> bool {
        self.lock().state == State::Holding
    }

    /// Resolves once the client's request arrived and is held; gives the delay and user
    /// given to [`Gate::arm`].
    pub async fn tripped(&self) -> (Duration, String) {
        self.tripped.notified().await;
        let g = self.lock();
        (g.delay, g.user.clone())
    }

    fn release(g: &mut Inner) {
        g.state = State::Released;
        if let Some(w) = g.reader.take() {
            w.wake();
        }
    }
}

/// `inner` with the gate on its read side.
pub struct Gated<S> {
    inner: S,
    gate: Arc<Gate>,
}

impl<S> Gated<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, gate: Arc<Gate>) -> Self {
        Gated { inner, gate }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gated<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let mut g = this.gate.lock();
        match g.state {
            State::Open => {
                drop(g);
                Pin::new(&mut this.inner).poll_read(cx, buf)
            }
            State::Released => {
                if g.held.is_empty() {
                    drop(g);
                    return Pin::new(&mut this.inner).poll_read(cx, buf);
                }
                let n = g.held.len().min(buf.remaining());
                buf.put_slice(&g.held[..n]);
                g.held.drain(..n);
                Poll::Ready(Ok(()))
            }
            State::Armed | State::Holding => {
                g.reader = Some(cx.waker().clone());
                // Keep reading (bounded) so that a client closing is noticed.
                let mut tmp = [0u8; 1024];
                loop {
                    let room = MAX_HELD_BYTES.saturating_sub(g.held.len()).min(tmp.len());
                    if room == 0 {
                        return Poll::Pending;
                    }
                    let mut rb = ReadBuf::new(&mut tmp[..room]);
                    match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                            // The client left: russh gets what it sent, then the end.
                            g.reader = None;
                            g.state = State::Released;
                            let n = g.held.len().min(buf.remaining());
                            buf.put_slice(&g.held[..n]);
                            g.held.drain(..n);
                            return Poll::Ready(Ok(()));
                        }
                        Poll::Ready(Ok(())) => {
                            g.held.extend_from_slice(rb.filled());
                            if g.state == State::Armed {
                                g.state = State::Holding;
                                this.gate.tripped.notify_one();
                            }
                        }
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gated<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        {
            // russh shuts its write side after its disconnect: nothing is held any more.
            let mut g = this.gate.lock();
            if matches!(g.state, State::Armed | State::Holding) {
                Gate::release(&mut g);
            }
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn holds_the_request_after_arming_until_shutdown() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let gate = Arc::new(Gate::default());
        let mut gated = Gated::new(server, gate.clone());
        let mut buf = [0u8; 16];

        client.write_all(b"first").await.unwrap();
        let n = gated.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"first");

        gate.arm(Duration::from_millis(1500), "root");
        client.write_all(b"sixth request").await.unwrap();
        // Nothing reaches the reader while the bytes are held.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), gated.read(&mut buf))
                .await
                .is_err()
        );
        let (delay, user) = tokio::time::timeout(Duration::from_secs(5), gate.tripped())
            .await
            .unwrap();
        assert_eq!(
            (delay, user.as_str()),
            (Duration::from_millis(1500), "root")
        );
        assert!(gate.holding());
        // The server still writes (the disconnect), then shuts down: the bytes come out.
        gated.write_all(b"bye").await.unwrap();
        gated.shutdown().await.unwrap();
        assert!(!gate.holding());
        let mut got = Vec::new();
        let mut small = [0u8; 4];
        while got.len() < b"sixth request".len() {
            let n = gated.read(&mut small).await.unwrap();
            got.extend_from_slice(&small[..n]);
        }
        assert_eq!(got, b"sixth request");
        let mut echo = [0u8; 3];
        client.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"bye");
        drop(client);
        assert_eq!(gated.read(&mut buf).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_client_closing_releases_what_it_sent() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let gate = Arc::new(Gate::default());
        let mut gated = Gated::new(server, gate.clone());
        gate.arm(Duration::from_secs(2), "admin");
        client.write_all(b"goodbye").await.unwrap();
        drop(client);
        let mut got = Vec::new();
        gated.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"goodbye");
        assert!(!gate.holding());
    }

    #[tokio::test]
    async fn holds_at_most_max_held_bytes() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let gate = Arc::new(Gate::default());
        let mut gated = Gated::new(server, gate.clone());
        gate.arm(Duration::ZERO, "root");
        client
            .write_all(&vec![7u8; 3 * MAX_HELD_BYTES])
            .await
            .unwrap();
        let mut buf = [0u8; 16];
        assert!(
            tokio::time::timeout(Duration::from_millis(100), gated.read(&mut buf))
                .await
                .is_err()
        );
        assert_eq!(gate.lock().held.len(), MAX_HELD_BYTES);
        // The rest stays in the socket and follows the held bytes in order.
        gated.shutdown().await.unwrap();
        drop(client);
        let mut got = Vec::new();
        gated.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 3 * MAX_HELD_BYTES);
    }
}
