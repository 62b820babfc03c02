//! A write-side adapter that makes hyper's HTTP/1 output look like the imitated server's
//! where hyper offers no setting: the status line says `HTTP/1.1` to HTTP/1.0 clients
//! (nginx and Apache do), `WWW-Authenticate` keeps its capitals, and hyper's bare
//! responses to unparsable requests are replaced by the server's own error page.
//!
//! It turns vectored writes off, so hyper hands over each response head (with a small
//! body) in one buffer that starts with the status line; only such buffers are touched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Builds the replacement for hyper's bare error response with the given status.
pub type ErrorPage = Box<dyn Fn(u16) -> Vec<u8> + Send + Sync>;

/// The adapter.
pub struct Fixup<S> {
    inner: S,
    pending: Vec<u8>,
    at: usize,
    error_page: ErrorPage,
}

impl<S> Fixup<S> {
    /// Wraps `inner`; `error_page` renders the server's page for a status.
    pub fn new(inner: S, error_page: ErrorPage) -> Self {
        Fixup {
            inner,
            pending: Vec::new(),
            at: 0,
            error_page,
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The rewritten buffer, or `None` when `buf` is left as is.
fn rewrite(buf: &[u8], error_page: &ErrorPage) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.") || buf.len() < 12 {
        return None;
    }
    let head_end = find(buf, b"\r\n\r\n").map_or(buf.len(), |i| i + 4);
    let head = &buf[..head_end];
    // Every response of ours carries Date; hyper's own error responses do not.
    if find(head, b"\r\nDate: ").is_none() {
        let status = std::str::from_utf8(&buf[9..12])
            .ok()
            .and_then(|s| s.parse::<u16>().ok())
            .unwrap_or(400);
        if status >= 400 {
            return Some(error_page(status));
        }
    }
    let fix_version = buf.starts_with(b"HTTP/1.0 ");
    let auth = find(head, b"\r\nWww-Authenticate: ");
    if !fix_version && auth.is_none() {
        return None;
    }
    let mut out = buf.to_vec();
    if fix_version {
        out[7] = b'1';
    }
    if let Some(i) = auth {
        out[i + 2..i + 5].copy_from_slice(b"WWW");
    }
    Some(out)
}

impl<S: AsyncWrite + Unpin> Fixup<S> {
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.at < self.pending.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.at += n;
        }
        self.pending.clear();
        self.at = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Fixup<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        if let Some(fixed) = rewrite(buf, &this.error_page) {
            this.pending = fixed;
            this.at = 0;
            // The caller's bytes are taken; what replaces them goes out now or on flush.
            if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Fixup<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> ErrorPage {
        Box::new(|s| format!("PAGE {s}").into_bytes())
    }

    #[test]
    fn rewrites_only_what_it_must() {
        let ours = b"HTTP/1.0 403 Forbidden\r\nServer: nginx\r\nDate: x\r\nWww-Authenticate: Basic\r\n\r\nbody";
        let fixed = rewrite(ours, &page()).unwrap();
        assert!(fixed.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
        assert!(find(&fixed, b"\r\nWWW-Authenticate: Basic").is_some());
        assert_eq!(fixed.len(), ours.len());
        let plain = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: x\r\n\r\n";
        assert!(rewrite(plain, &page()).is_none());
        assert!(rewrite(b"body bytes", &page()).is_none());
        let hyper_error = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(rewrite(hyper_error, &page()).unwrap(), b"PAGE 400");
    }
}
