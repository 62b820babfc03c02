//! Buffered, time-bounded reads and writes shared by the binary-protocol emulators
//! (redis, mysql, postgres, vnc): every read waits at most the idle timeout, and the
//! buffer never grows past the cap its owner sets.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::Stream;

/// Bytes asked for per read call.
const READ_CHUNK: usize = 16 * 1024;

/// Why no more bytes came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The peer closed its side.
    Eof,
    /// Nothing arrived within the idle timeout.
    Idle,
    /// The buffer is full and the owner's decoder still needs more.
    Full,
    /// A socket error.
    Io,
}

impl Stop {
    /// The `reason` field of a disconnect or protocol event.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Stop::Eof => "eof",
            Stop::Idle => "idle_timeout",
            Stop::Full => "buffer_full",
            Stop::Io => "io_error",
        }
    }
}

/// A stream with a read buffer of at most `cap` unconsumed bytes.
pub(crate) struct Framed {
    stream: Box<dyn Stream>,
    buf: Vec<u8>,
    start: usize,
    cap: usize,
    idle: Duration,
}

impl Framed {
    /// Wraps `stream`; reads wait at most `idle`, and at most `cap` bytes are buffered.
    pub(crate) fn new(stream: Box<dyn Stream>, idle: Duration, cap: usize) -> Framed {
        Framed {
            stream,
            buf: Vec::new(),
            start: 0,
            cap,
            idle,
        }
    }

    /// The unconsumed bytes.
    pub(crate) fn buffer(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// Drops the first `n` unconsumed bytes.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Reads once (at most [`READ_CHUNK`] bytes, never past the cap).
    pub(crate) async fn read_more(&mut self) -> Result<usize, Stop> {
        let pending = self.buf.len() - self.start;
        if pending >= self.cap {
            return Err(Stop::Full);
        }
        if self.start > 0 && (self.buf.capacity() - self.buf.len() < READ_CHUNK) {
            // Move the unconsumed tail to the front instead of growing.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let want = READ_CHUNK.min(self.cap - pending);
        self.buf.reserve(want);
        let mut limited = (&mut self.stream).take(want as u64);
        match tokio::time::timeout(self.idle, limited.read_buf(&mut self.buf)).await {
            Err(_) => Err(Stop::Idle),
            Ok(Err(_)) => Err(Stop::Io),
            Ok(Ok(0)) => Err(Stop::Eof),
            Ok(Ok(n)) => Ok(n),
        }
    }

    /// Reads until at least `n` bytes are unconsumed.
    pub(crate) async fn fill(&mut self, n: usize) -> Result<(), Stop> {
        if n > self.cap {
            return Err(Stop::Full);
        }
        while self.buffer().len() < n {
            self.read_more().await?;
        }
        Ok(())
    }

    /// Reads exactly `N` bytes.
    pub(crate) async fn read_array<const N: usize>(&mut self) -> Result<[u8; N], Stop> {
        self.fill(N).await?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buffer()[..N]);
        self.consume(N);
        Ok(out)
    }

    /// Writes all of `bytes`, waiting at most the idle timeout for the peer to take them.
    pub(crate) async fn write_all(&mut self, bytes: &[u8]) -> Result<(), Stop> {
        match tokio::time::timeout(self.idle, self.stream.write_all(bytes)).await {
            Err(_) => Err(Stop::Idle),
            Ok(Err(_)) => Err(Stop::Io),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Flushes and shuts the write side down (best effort: the peer may be gone).
    pub(crate) async fn close(&mut self) {
        let _ = tokio::time::timeout(self.idle, self.stream.shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_are_capped_and_timed() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut f = Framed::new(Box::new(server), Duration::from_millis(50), 8);
        client.write_all(b"0123456789").await.unwrap();
        f.fill(4).await.unwrap();
        // Never more than the cap is buffered, however much the peer sent.
        while f.buffer().len() < 8 {
            f.read_more().await.unwrap();
        }
        assert_eq!(f.buffer(), b"01234567");
        assert_eq!(f.read_more().await, Err(Stop::Full));
        assert_eq!(f.fill(9).await, Err(Stop::Full));
        f.consume(6);
        assert_eq!(f.read_array::<4>().await, Ok(*b"6789"));
        assert_eq!(f.read_more().await, Err(Stop::Idle));
        drop(client);
        assert_eq!(f.read_more().await, Err(Stop::Eof));
    }
}

/// Helpers for transcript tests: a service context over a [`MemorySink`], a duplex
/// connection to an emulator, and a stable rendering of the events it emitted.
///
/// [`MemorySink`]: crate::event::MemorySink
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
pub(crate) mod testkit {
    use std::fmt::Write as _;
    use std::sync::Arc;

    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio::task::JoinHandle;

    use crate::event::MemorySink;
    use crate::persona::Persona;
    use crate::server::{Conn, Limits, ServiceCtx, serve_conn};
    use crate::services::lookup;

    /// The attacker address every transcript uses.
    pub(crate) const PEER: &str = "203.0.113.9:51515";

    /// A context for `slug` with persona variables `env` (plus a fixed seed).
    pub(crate) fn ctx(
        slug: &str,
        env: &[(&str, &str)],
        limits: Limits,
    ) -> (Arc<ServiceCtx>, MemorySink) {
        let service = decnet_core::catalog::service(slug).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .chain([
                ("NODE_NAME".to_owned(), "decky-07".to_owned()),
                ("DECNET_SEED".to_owned(), "42".repeat(32)),
            ])
            .collect();
        let persona = Persona::from_lookup(service, |k| {
            env.iter().find(|(ek, _)| ek == k).map(|(_, v)| v.clone())
        })
        .unwrap();
        let sink = MemorySink::new();
        let ctx = Arc::new(ServiceCtx {
            service,
            persona: Arc::new(persona),
            events: Arc::new(sink.clone()),
            limits,
        });
        (ctx, sink)
    }

    /// Starts the registered emulator of the context's service on one duplex connection.
    pub(crate) fn connect(ctx: &Arc<ServiceCtx>) -> (DuplexStream, JoinHandle<()>) {
        let entry = lookup(ctx.service.slug).unwrap();
        let emulator = (entry.build)(ctx).unwrap();
        connect_to(emulator, ctx)
    }

    /// Starts `emulator` on one duplex connection.
    pub(crate) fn connect_to(
        emulator: Arc<dyn crate::server::Emulator>,
        ctx: &Arc<ServiceCtx>,
    ) -> (DuplexStream, JoinHandle<()>) {
        let (client, server) = tokio::io::duplex(256 * 1024);
        let local = format!("10.0.3.7:{}", ctx.service.ports[0].number);
        let conn = Conn {
            stream: Box::new(server),
            peer: PEER.parse().unwrap(),
            local: local.parse().unwrap(),
        };
        let task = tokio::spawn(serve_conn(emulator, ctx.clone(), conn));
        (client, task)
    }

    /// Reads exactly `n` bytes.
    pub(crate) async fn read_n(client: &mut DuplexStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        client.read_exact(&mut buf).await.unwrap();
        buf
    }

    /// Reads until the server closes.
    pub(crate) async fn read_to_end(client: &mut DuplexStream) -> Vec<u8> {
        let mut buf = Vec::new();
        client.read_to_end(&mut buf).await.unwrap();
        buf
    }

    /// Sends bytes.
    pub(crate) async fn send(client: &mut DuplexStream, bytes: &[u8]) {
        client.write_all(bytes).await.unwrap();
    }

    /// One line per event, `kind key="value" …`, with the values of `redact` (and the
    /// timing fields) replaced so the rendering is stable.
    pub(crate) fn render(sink: &MemorySink, redact: &[&str]) -> String {
        let mut out = String::new();
        for (app, e) in sink.events() {
            let _ = write!(out, "{app} {}", e.kind);
            for (k, v) in &e.fields {
                let v = if redact.contains(&k.as_str()) || k == "duration_ms" {
                    "[redacted]"
                } else {
                    v.as_str()
                };
                let _ = write!(out, " {k}={v:?}");
            }
            out.push('\n');
        }
        out
    }
}
