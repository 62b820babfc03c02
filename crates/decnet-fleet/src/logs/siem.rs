//! A copy of every stored event to an external SIEM: RFC 5424 lines (the forwarding
//! envelope, so the SIEM sees the trusted decky and service) in octet-counted frames
//! (RFC 6587 over TCP, RFC 5425 over TLS).
//!
//! Best effort by design: the database is the record. Lines wait in a bounded queue
//! ([`MAX_QUEUE`]) while the SIEM is unreachable (reconnect with backoff, 1 s doubling to
//! 30 s); when the queue is full new lines are dropped and counted, and the count is
//! logged, so a dead SIEM never slows ingestion or grows memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use decnet_store::NewLog;
use decnet_wire::rfc5424::{Envelope, wrap};
use decnet_wire::rfc5425;
use rustls_pki_types::ServerName;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::CollectedEvent;

/// Lines held while the SIEM is slow or away.
pub const MAX_QUEUE: usize = 65_536;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Connect timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Write timeout of one batch.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the SIEM listens and how to reach it.
#[derive(Clone)]
pub struct SiemTarget {
    /// `host:port`.
    pub address: String,
    /// TLS: the client configuration (server verified against the given roots) and the
    /// name checked in the server's certificate. `None`: plain TCP.
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
}

impl std::fmt::Debug for SiemTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiemTarget")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The ingester's handle on the SIEM task.
#[derive(Clone)]
pub struct SiemOutput {
    tx: mpsc::Sender<String>,
    dropped: Arc<AtomicU64>,
}

impl SiemOutput {
    /// Starts the sending task; it ends when `shutdown` is cancelled.
    pub fn start(target: SiemTarget, shutdown: CancellationToken) -> SiemOutput {
        let (tx, rx) = mpsc::channel(MAX_QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(target, rx, dropped.clone(), shutdown));
        SiemOutput { tx, dropped }
    }

    /// Queues one stored event (never waits).
    pub fn send(&self, event: &CollectedEvent, log: &NewLog) {
        let envelope = Envelope {
            key: event.key.clone(),
            decky: log.decky.clone(),
            service: log.service.clone(),
            received_micros: event.received.as_unix_micros(),
        };
        let line = wrap(&envelope, &event.raw_line);
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

async fn run(
    target: SiemTarget,
    mut rx: mpsc::Receiver<String>,
    dropped: Arc<AtomicU64>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_secs(1);
    let mut pending: Option<Vec<u8>> = None;
    let mut reported = 0u64;
    loop {
        let conn = tokio::select! {
            () = shutdown.cancelled() => return,
            c = connect(&target) => c,
        };
        let mut stream = match conn {
            Ok(s) => {
                info!(target = %target.address, "Connected to the SIEM");
                backoff = Duration::from_secs(1);
                s
            }
            Err(e) => {
                warn!(target = %target.address, error = %e, "SIEM unreachable; retrying in {backoff:?}");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        loop {
            let buf = match pending.take() {
                Some(b) => b,
                None => {
                    let first = tokio::select! {
                        () = shutdown.cancelled() => return,
                        l = rx.recv() => l,
                    };
                    let Some(first) = first else { return };
                    let mut buf = Vec::with_capacity(first.len() + 8);
                    frame(&first, &mut buf);
                    while buf.len() < 256 * 1024 {
                        match rx.try_recv() {
                            Ok(l) => frame(&l, &mut buf),
                            Err(_) => break,
                        }
                    }
                    buf
                }
            };
            let now = dropped.load(Ordering::Relaxed);
            if now > reported {
                warn!(dropped = now - reported, "SIEM queue full: lines dropped");
                reported = now;
            }
            match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&buf)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    warn!(target = %target.address, error = %e, "SIEM write failed; reconnecting");
                    pending = Some(buf);
                    break;
                }
                Err(_) => {
                    warn!(target = %target.address, "SIEM write timed out; reconnecting");
                    pending = Some(buf);
                    break;
                }
            }
        }
    }
}

/// Appends `line` as one octet-counted frame. A line over the frame cap cannot come
/// from the ingester (raw lines are cut at 60 KiB, the envelope adds less than 4 KiB); if
/// one did, it is dropped with a warning rather than sent unframed.
fn frame(line: &str, buf: &mut Vec<u8>) {
    if let Err(e) = rfc5425::encode(line.as_bytes(), buf) {
        warn!(error = %e, "SIEM line not sent");
    }
}

/// A byte stream to the SIEM, plain or TLS.
trait Conn: tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncWrite + Unpin + Send> Conn for T {}

async fn connect(target: &SiemTarget) -> std::io::Result<Box<dyn Conn>> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&target.address))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    tcp.set_nodelay(true)?;
    match &target.tls {
        None => Ok(Box::new(tcp)),
        Some((config, name)) => {
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name.clone(), tcp))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out")
                })??;
            Ok(Box::new(tls))
        }
    }
}
