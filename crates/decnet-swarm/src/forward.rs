//! The worker's log forwarder: ships the spool to the controller's listener over mTLS and advances the acknowledged position only on `ack <n>`.
//!
//! One session: connect (TCP, then TLS presenting the worker identity with the
//! controller's certificate pinned, SW-7), rewind the spool reader to the acknowledged
//! position, then keep at most [`WINDOW`] frames in flight: frames are read from the
//! spool and written; each `ack <n>` (cumulative on the connection) makes the position
//! just past the n-th frame durable ([`SpoolReader::ack`]). Unacknowledged frames are
//! sent again by the next session; the listener's sink ignores keys it already holds, so
//! a crash on either side loses nothing and duplicates nothing (SW-34).
//!
//! Every error — connect, TLS, write, a garbled or out-of-range ack, a missing ack for
//! [`ACK_TIMEOUT`], the peer closing, the spool — ends the session; the loop sleeps
//! (1 s doubling to 30 s, back to 1 s after a session that got an acknowledgement) and
//! starts another. Only `shutdown` ends [`run`] (SW-36).

use std::collections::VecDeque;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use decnet_fleet::logs::spool::{Position, SpoolReader, SpooledFrame};
use decnet_wire::rfc5425;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Most frames sent and not yet acknowledged.
pub const WINDOW: usize = 16_384;
/// Most frames read from the spool and written at once.
pub const SEND_BATCH: usize = 2048;
/// First reconnect delay.
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest reconnect delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Longest TCP connect or TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames in flight with no acknowledgement for this long end the session.
pub const ACK_TIMEOUT: Duration = Duration::from_secs(60);
/// How often an empty spool is looked at again.
pub const POLL: Duration = Duration::from_millis(50);

/// Builds the TLS client configuration for each connection (the forwarder rebuilds it
/// on every reconnect, so a renewed certificate is picked up).
pub type TlsSource = Arc<dyn Fn() -> crate::Result<rustls::ClientConfig> + Send + Sync>;

/// Where and how to forward.
#[derive(Clone)]
pub struct Forwarder {
    /// `host:port` of the controller's log listener.
    pub target: String,
    /// The client TLS configuration (worker identity, controller pinned).
    pub tls: TlsSource,
    /// The spool directory (`<data_dir>/spool`).
    pub spool_dir: PathBuf,
    /// First reconnect delay ([`BACKOFF_MIN`]).
    pub backoff_min: Duration,
    /// Longest reconnect delay ([`BACKOFF_MAX`]).
    pub backoff_max: Duration,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("target", &self.target)
            .field("spool_dir", &self.spool_dir)
            .finish_non_exhaustive()
    }
}

impl Forwarder {
    /// A forwarder for an enrolled agent: its identity, the controller pinned.
    pub fn for_bundle(
        bundle: &crate::agent::AgentBundle,
        target: String,
        spool_dir: PathBuf,
    ) -> Forwarder {
        let bundle = bundle.clone();
        Forwarder {
            target,
            tls: Arc::new(move || bundle.controller_tls()),
            spool_dir,
            backoff_min: BACKOFF_MIN,
            backoff_max: BACKOFF_MAX,
        }
    }
}

/// The default target: the host of the controller URL with port 6514.
pub fn default_target(controller_url: &str) -> Option<String> {
    let rest = controller_url
        .strip_prefix("https://")
        .or_else(|| controller_url.strip_prefix("http://"))
        .unwrap_or(controller_url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']')?;
        format!("[{}]", &v6[..end])
    } else {
        authority
            .rsplit_once(':')
            .map_or(authority, |(h, _)| h)
            .to_owned()
    };
    if host.is_empty() || host == "[]" {
        return None;
    }
    Some(format!("{host}:{}", crate::listen::DEFAULT_PORT))
}

/// Forwards until `shutdown` resolves; never returns on errors.
pub async fn run(fwd: Forwarder, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut backoff = fwd.backoff_min;
    let mut reader: Option<Arc<Mutex<SpoolReader>>> = None;
    loop {
        let mut progressed = false;
        let started = tokio::time::Instant::now();
        let outcome = tokio::select! {
            () = &mut shutdown => return,
            r = session(&fwd, &mut reader, &mut progressed) => r,
        };
        // A session that got an acknowledgement, or stayed up longer than the longest
        // delay, was a success: the next delay starts over. (A TLS 1.3 handshake
        // completes on the client before the listener has looked at its certificate, so
        // the handshake alone proves nothing.)
        if progressed || started.elapsed() >= fwd.backoff_max {
            backoff = fwd.backoff_min;
        }
        if let Err(e) = outcome {
            tracing::warn!(target_addr = %fwd.target, error = %e, retry_in = ?backoff, "Log forwarding interrupted");
        }
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(fwd.backoff_max);
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, String> + Send + 'static,
) -> std::result::Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("spool task: {e}"))?
}

fn server_name(target: &str) -> rustls::pki_types::ServerName<'static> {
    let host = target.rsplit_once(':').map_or(target, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    // The verifier checks the pinned fingerprint, not the name; any valid name will do.
    rustls::pki_types::ServerName::try_from(host.to_owned()).unwrap_or_else(|_| {
        rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into())
    })
}

/// One connection's life; returns only with the error that ended it.
async fn session(
    fwd: &Forwarder,
    reader_slot: &mut Option<Arc<Mutex<SpoolReader>>>,
    progressed: &mut bool,
) -> std::result::Result<(), String> {
    let reader = match reader_slot {
        Some(r) => r.clone(),
        None => {
            let dir = fwd.spool_dir.clone();
            let r = blocking(move || SpoolReader::open(&dir).map_err(|e| e.to_string())).await?;
            let r = Arc::new(Mutex::new(r));
            *reader_slot = Some(r.clone());
            r
        }
    };
    let mut tls = (fwd.tls)().map_err(|e| e.to_string())?;
    tls.alpn_protocols.clear();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&fwd.target))
        .await
        .map_err(|_| format!("connect {}: timed out", fwd.target))?
        .map_err(|e| format!("connect {}: {e}", fwd.target))?;
    let _ = tcp.set_nodelay(true);
    let stream = tokio::time::timeout(
        CONNECT_TIMEOUT,
        connector.connect(server_name(&fwd.target), tcp),
    )
    .await
    .map_err(|_| "TLS handshake timed out".to_owned())?
    .map_err(|e| format!("TLS handshake: {e}"))?;
    tracing::info!(target_addr = %fwd.target, "Log forwarder connected");
    {
        let mut r = reader
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.rewind();
    }
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (ack_tx, mut ack_rx) = tokio::sync::mpsc::channel::<std::result::Result<u64, String>>(64);
    let acks = tokio::spawn(async move {
        let res = read_acks(&mut rd, &ack_tx).await;
        let _ = ack_tx.send(Err(res)).await;
    });
    let _abort = AbortOnDrop(acks);
    let mut inflight: VecDeque<Position> = VecDeque::new();
    let mut sent: u64 = 0;
    let mut acked: u64 = 0;
    let mut last_progress = tokio::time::Instant::now();
    let mut wire = Vec::new();
    loop {
        // Acknowledgements first (coalesced: only the newest position is persisted).
        let mut newest: Option<u64> = None;
        while let Ok(msg) = ack_rx.try_recv() {
            newest = Some(msg?);
        }
        if let Some(n) = newest {
            acked = apply_ack(&reader, &mut inflight, acked, sent, n).await?;
            last_progress = tokio::time::Instant::now();
            *progressed = true;
        }
        let room = WINDOW - inflight.len();
        let mut frames = Vec::new();
        if room > 0 {
            let r = reader.clone();
            let want = room.min(SEND_BATCH);
            frames = blocking(move || {
                let mut out: Vec<SpooledFrame> = Vec::with_capacity(want);
                let mut r = r.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                r.read(want, &mut out).map_err(|e| e.to_string())?;
                Ok(out)
            })
            .await?;
        }
        if !frames.is_empty() {
            wire.clear();
            for f in &frames {
                rfc5425::encode(&f.payload, &mut wire)
                    .map_err(|e| format!("spooled frame: {e}"))?;
            }
            if inflight.is_empty() {
                last_progress = tokio::time::Instant::now();
            }
            inflight.extend(frames.iter().map(|f| f.end));
            sent += frames.len() as u64;
            wr.write_all(&wire)
                .await
                .map_err(|e| format!("write: {e}"))?;
            wr.flush().await.map_err(|e| format!("write: {e}"))?;
            continue;
        }
        if !inflight.is_empty() && last_progress.elapsed() >= ACK_TIMEOUT {
            return Err(format!("no acknowledgement for {ACK_TIMEOUT:?}"));
        }
        // Nothing to send (spool empty or window full): wait for an ack or the next poll.
        let wait = if room == 0 { ACK_TIMEOUT } else { POLL };
        tokio::select! {
            msg = ack_rx.recv() => {
                let n = msg.ok_or_else(|| "ack reader ended".to_owned())??;
                let mut newest = n;
                while let Ok(msg) = ack_rx.try_recv() {
                    newest = msg?;
                }
                acked = apply_ack(&reader, &mut inflight, acked, sent, newest).await?;
                last_progress = tokio::time::Instant::now();
                *progressed = true;
            }
            () = tokio::time::sleep(wait) => {}
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Checks `n` against what is in flight and persists the position after the n-th frame.
async fn apply_ack(
    reader: &Arc<Mutex<SpoolReader>>,
    inflight: &mut VecDeque<Position>,
    acked: u64,
    sent: u64,
    n: u64,
) -> std::result::Result<u64, String> {
    if n < acked || n > sent {
        return Err(format!(
            "acknowledgement {n} out of range ({acked}..={sent})"
        ));
    }
    let newly =
        usize::try_from(n - acked).map_err(|_| "acknowledgement out of range".to_owned())?;
    if newly == 0 {
        return Ok(acked);
    }
    let mut pos = None;
    for _ in 0..newly {
        pos = inflight.pop_front();
    }
    let Some(pos) = pos else {
        return Err("acknowledgement beyond the frames in flight".into());
    };
    let r = reader.clone();
    blocking(move || {
        r.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .ack(pos)
            .map_err(|e| e.to_string())
    })
    .await?;
    Ok(n)
}

/// Reads ack frames and sends their counts; returns why it stopped.
async fn read_acks<R: tokio::io::AsyncRead + Unpin>(
    rd: &mut R,
    tx: &tokio::sync::mpsc::Sender<std::result::Result<u64, String>>,
) -> String {
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    loop {
        loop {
            match rfc5425::decode(&buf) {
                Ok(Some((range, used))) => {
                    let n = match rfc5425::parse_ack(&buf[range]) {
                        Ok(n) => n,
                        Err(e) => return format!("from the listener: {e}"),
                    };
                    buf.drain(..used);
                    if tx.send(Ok(n)).await.is_err() {
                        return "session ended".into();
                    }
                }
                Ok(None) => break,
                Err(e) => return format!("from the listener: {e}"),
            }
            if buf.len() > rfc5425::MAX_ACK + rfc5425::MAX_LEN_DIGITS + 1 {
                return "acknowledgement frame too long".into();
            }
        }
        if buf.len() > rfc5425::MAX_ACK + rfc5425::MAX_LEN_DIGITS + 1 {
            return "acknowledgement frame too long".into();
        }
        buf.reserve(256);
        match rd.read_buf(&mut buf).await {
            Ok(0) => return "connection closed by the listener".into(),
            Ok(_) => {}
            Err(e) => return format!("read: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_target_is_the_controller_host_on_6514() {
        for (url, want) in [
            ("https://10.0.0.5:8771", Some("10.0.0.5:6514")),
            ("https://master.lan:8771/", Some("master.lan:6514")),
            ("https://master.lan", Some("master.lan:6514")),
            ("https://[fd00::1]:8771", Some("[fd00::1]:6514")),
            ("https://", None),
            ("https://[]:1", None),
        ] {
            assert_eq!(default_target(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn server_names_accept_hosts_and_addresses() {
        assert_eq!(
            server_name("master.lan:6514"),
            rustls::pki_types::ServerName::try_from("master.lan").unwrap()
        );
        assert!(matches!(
            server_name("[fd00::1]:6514"),
            rustls::pki_types::ServerName::IpAddress(_)
        ));
    }
}
