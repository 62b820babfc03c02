//! The connection harness every TCP emulator runs under: connection budgets (total and per
//! source), session time caps, and the `connect`/`disconnect` events.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use decnet_core::catalog::ServiceSpec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::event::{Event, EventSink, kind};
use crate::persona::Persona;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Any byte stream an emulator can talk over (a TCP socket, or a duplex pipe in tests).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for T {}

/// Resource caps. Defaults suit a decky serving hostile scanners on a LAN.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once by one service process.
    pub max_connections: usize,
    /// Connections at once from one source address.
    pub max_per_source: usize,
    /// Longest wait for the peer's next bytes before the connection is closed.
    pub idle_timeout: Duration,
    /// Longest lifetime of one connection.
    pub session_timeout: Duration,
    /// Longest line or frame header a line-based parser buffers.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 512,
            max_per_source: 64,
            idle_timeout: Duration::from_secs(120),
            session_timeout: Duration::from_secs(30 * 60),
            max_line: 8 * 1024,
        }
    }
}

/// What every connection of a service shares.
pub struct ServiceCtx {
    /// Catalogue entry of the service.
    pub service: &'static ServiceSpec,
    /// The decky persona.
    pub persona: Arc<Persona>,
    /// Where events go.
    pub events: Arc<dyn EventSink>,
    /// Resource caps.
    pub limits: Limits,
}

impl ServiceCtx {
    /// Emits an event under this service's APP-NAME.
    pub fn emit(&self, event: Event) {
        self.events.emit(self.service.slug, event);
    }
}

/// One accepted connection.
pub struct Conn {
    /// The byte stream.
    pub stream: Box<dyn Stream>,
    /// The attacker's address, from the socket.
    pub peer: SocketAddr,
    /// The local address it connected to.
    pub local: SocketAddr,
}

/// A protocol emulator: handles one connection to its end. It must bound every buffer
/// and every wait with `ctx.limits`, and it only emits events and writes artifacts.
pub trait Emulator: Send + Sync + 'static {
    /// Serves `conn` until the peer leaves, breaks the protocol or a limit is hit.
    fn handle(self: Arc<Self>, conn: Conn, ctx: Arc<ServiceCtx>) -> BoxFuture<'static, ()>;
}

/// Tracks connections per source address.
#[derive(Default)]
struct PerSource {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

struct SourceSlot<'a> {
    owner: &'a PerSource,
    ip: IpAddr,
}

impl PerSource {
    fn try_take(&self, ip: IpAddr, max: usize) -> Option<SourceSlot<'_>> {
        let mut counts = self.counts.lock().ok()?;
        let n = counts.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(SourceSlot { owner: self, ip })
    }
}

impl Drop for SourceSlot<'_> {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.owner.counts.lock()
            && let Some(n) = counts.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Runs `emulator` on one connection with the session cap and the connect/disconnect
/// events. Used by [`serve`] and directly by tests over in-memory streams.
pub async fn serve_conn(emulator: Arc<dyn Emulator>, ctx: Arc<ServiceCtx>, conn: Conn) {
    let peer = conn.peer;
    let started = Instant::now();
    ctx.emit(
        Event::from_peer(kind::CONNECT, peer).field("dst_port", conn.local.port().to_string()),
    );
    let timed_out = tokio::time::timeout(
        ctx.limits.session_timeout,
        emulator.handle(conn, ctx.clone()),
    )
    .await
    .is_err();
    let mut event = Event::from_peer(kind::DISCONNECT, peer)
        .field("duration_ms", started.elapsed().as_millis().to_string());
    if timed_out {
        event = event.field("reason", "session_timeout");
    }
    ctx.emit(event);
}

/// Accepts connections on every listener until `shutdown` resolves.
///
/// Over-budget connections (total or per source) are closed at once and reported as
/// `connection_refused`; accept errors (e.g. out of file descriptors) back off briefly
/// instead of spinning.
pub async fn serve(
    listeners: Vec<TcpListener>,
    emulator: Arc<dyn Emulator>,
    ctx: Arc<ServiceCtx>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let total = Arc::new(Semaphore::new(ctx.limits.max_connections));
    let sources = Arc::new(PerSource::default());
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        let (emulator, ctx, total, sources) = (
            emulator.clone(),
            ctx.clone(),
            total.clone(),
            sources.clone(),
        );
        tasks.spawn(async move {
            loop {
                let (socket, peer) = match listener.accept().await {
                    Ok(pair) => pair,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = socket.set_nodelay(true);
                let local = socket.local_addr().unwrap_or(peer);
                let Ok(permit) = total.clone().try_acquire_owned() else {
                    ctx.emit(
                        Event::from_peer(kind::CONNECTION_REFUSED, peer)
                            .field("reason", "total_budget"),
                    );
                    continue;
                };
                let (emulator, ctx, sources) = (emulator.clone(), ctx.clone(), sources.clone());
                tokio::spawn(async move {
                    let Some(_slot) = sources.try_take(peer.ip(), ctx.limits.max_per_source) else {
                        ctx.emit(
                            Event::from_peer(kind::CONNECTION_REFUSED, peer)
                                .field("reason", "source_budget"),
                        );
                        return;
                    };
                    let conn = Conn {
                        stream: Box::new(socket),
                        peer,
                        local,
                    };
                    serve_conn(emulator, ctx, conn).await;
                    drop(permit);
                });
            }
        });
    }
    shutdown.await;
    tasks.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::MemorySink;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Echo;
    impl Emulator for Echo {
        fn handle(
            self: Arc<Self>,
            mut conn: Conn,
            _ctx: Arc<ServiceCtx>,
        ) -> BoxFuture<'static, ()> {
            Box::pin(async move {
                let mut buf = [0u8; 16];
                if let Ok(n) = conn.stream.read(&mut buf).await {
                    let _ = conn.stream.write_all(&buf[..n]).await;
                }
            })
        }
    }

    fn ctx(sink: &MemorySink, limits: Limits) -> Arc<ServiceCtx> {
        let service = decnet_core::catalog::service("redis").unwrap();
        Arc::new(ServiceCtx {
            service,
            persona: Arc::new(Persona::from_lookup(service, |_| None).unwrap()),
            events: Arc::new(sink.clone()),
            limits,
        })
    }

    #[tokio::test]
    async fn per_source_budget_refuses_extra_connections() {
        let sink = MemorySink::new();
        let limits = Limits {
            max_per_source: 1,
            ..Limits::default()
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            vec![listener],
            Arc::new(Echo),
            ctx(&sink, limits),
            async {
                let _ = rx.await;
            },
        ));
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut buf = [0u8; 4];
        // The second connection is closed without service.
        assert_eq!(second.read(&mut buf).await.unwrap(), 0);
        first.write_all(b"ping").await.unwrap();
        first.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        drop(first);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tx.send(());
        server.await.unwrap();
        let refused = sink.of_kind(kind::CONNECTION_REFUSED);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].get("reason"), Some("source_budget"));
        let connects = sink.of_kind(kind::CONNECT);
        assert_eq!(connects.len(), 1);
        assert_eq!(connects[0].get("src_ip"), Some("127.0.0.1"));
        assert_eq!(sink.of_kind(kind::DISCONNECT).len(), 1);
    }

    #[tokio::test]
    async fn session_timeout_ends_the_connection() {
        let sink = MemorySink::new();
        let limits = Limits {
            session_timeout: Duration::from_millis(50),
            ..Limits::default()
        };
        let (client, server) = tokio::io::duplex(64);
        let conn = Conn {
            stream: Box::new(server),
            peer: "198.51.100.4:4000".parse().unwrap(),
            local: "10.0.0.2:6379".parse().unwrap(),
        };
        serve_conn(Arc::new(Echo), ctx(&sink, limits), conn).await;
        drop(client);
        let d = sink.of_kind(kind::DISCONNECT);
        assert_eq!(d[0].get("reason"), Some("session_timeout"));
        assert_eq!(sink.of_kind(kind::CONNECT)[0].get("dst_port"), Some("6379"));
    }
}
