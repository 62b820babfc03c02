//! `http`: a web server persona on hyper (nginx or Apache headers and error pages, fake
//! application skins), recording every request and every credential it carries.
//!
//! Bounded: at most [`MAX_HEADERS`] headers of [`MAX_HEADER_BYTES`] in total, read within
//! [`HEADER_TIMEOUT`] (or the idle timeout, if shorter; this also closes idle keep-alive
//! connections); a body announced larger than [`MAX_BODY_ACCEPT`] is refused with 413
//! before it is read, and of any body only the first [`MAX_BODY_KEEP`] bytes are kept.
//! At most [`MAX_REQUESTS_PER_CONN`] requests are served per connection (nginx's
//! `keepalive_requests`).

pub mod apps;
pub mod creds;
pub mod fixup;
pub mod pages;

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::ext::ReasonPhrase;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use self::apps::{App, AppRequest, Page};
use self::pages::Flavour;
use crate::Error;
use crate::event::{Event, kind, printable};
use crate::persona::Persona;
use crate::server::{BoxFuture, Conn, Emulator, ServiceCtx};

/// Most request headers (nginx accepts about this many in its default buffers).
pub const MAX_HEADERS: usize = 64;
/// Largest request head (request line and headers), in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Longest wait for a complete request head (nginx's `client_header_timeout`).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest body accepted (nginx's default `client_max_body_size`); larger gets 413.
pub const MAX_BODY_ACCEPT: u64 = 1024 * 1024;
/// Body bytes kept for credential extraction.
pub const MAX_BODY_KEEP: usize = 64 * 1024;
/// Body bytes copied into the `request` event.
pub const LOGGED_BODY: usize = 512;
/// Requests served on one connection before it is closed.
pub const MAX_REQUESTS_PER_CONN: u32 = 1000;
/// Concurrent HTTP/2 streams per connection (each may hold [`MAX_BODY_KEEP`] bytes).
pub const MAX_H2_STREAMS: u32 = 16;

/// Everything the persona decides about the web server, computed once.
#[derive(Debug)]
pub struct Site {
    /// `Server` header value.
    pub server: String,
    /// Whose templates and header order are used.
    pub flavour: Flavour,
    /// Status of the default page.
    pub status: u16,
    /// Body of the default page, when configured.
    pub custom_body: Option<String>,
    /// Extra response headers, in order.
    pub extra_headers: Vec<(HeaderName, HeaderValue)>,
    /// The fake application, if any.
    pub app: Option<App>,
    /// Whether HTTP/2 is offered.
    pub h2: bool,
    /// `server` as a header value (validated once).
    server_value: HeaderValue,
    /// nginx's page for the default status, rendered once (the hot path of scans).
    default_page: Option<Bytes>,
}

impl Site {
    /// Builds the site from the persona.
    ///
    /// # Errors
    /// [`Error::Config`] for a malformed `extra_headers` line or `server_header`.
    pub fn from_persona(persona: &Persona) -> Result<Site, Error> {
        let server = persona
            .get("server_header")
            .map(str::to_owned)
            .unwrap_or_else(|| pages::default_server(persona));
        let server_value = HeaderValue::from_str(&server).map_err(|_| {
            Error::Config(format!("server_header {server:?} is not a header value"))
        })?;
        let status = persona
            .get("response_code")
            .and_then(|s| s.trim().parse::<u16>().ok())
            .filter(|s| (100..=599).contains(s))
            .unwrap_or(403);
        let mut extra_headers = Vec::new();
        for line in persona.get("extra_headers").unwrap_or("").lines() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| {
                Error::Config(format!(
                    "extra_headers: expected 'Name: value', got {line:?}"
                ))
            })?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| Error::Config(format!("extra_headers: bad header name {name:?}")))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| Error::Config(format!("extra_headers: bad value for {name}")))?;
            extra_headers.push((name, value));
        }
        let h2 = persona
            .get("http_versions")
            .is_some_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("h2")));
        let flavour = Flavour::of(&server);
        let default_page = (flavour == Flavour::Nginx)
            .then(|| pages::nginx_error_page(status, &server, false))
            .flatten()
            .map(Bytes::from);
        Ok(Site {
            flavour,
            server_value,
            default_page,
            server,
            status,
            custom_body: persona.get("custom_body").map(str::to_owned),
            extra_headers,
            app: App::from_persona(persona),
            h2,
        })
    }
}

/// The `http` emulator.
pub struct Http {
    site: Arc<Site>,
}

/// Registry constructor.
///
/// # Errors
/// The errors of [`Site::from_persona`].
pub fn build(ctx: &ServiceCtx) -> Result<Arc<dyn Emulator>, Error> {
    Ok(Arc::new(Http {
        site: Arc::new(Site::from_persona(&ctx.persona)?),
    }))
}

impl Emulator for Http {
    fn handle(self: Arc<Self>, conn: Conn, ctx: Arc<ServiceCtx>) -> BoxFuture<'static, ()> {
        let site = self.site.clone();
        let proto = if site.h2 { Proto::Auto } else { Proto::H1 };
        Box::pin(serve_http(
            site,
            ctx,
            conn.stream,
            ConnInfo {
                peer: conn.peer,
                local: conn.local,
                tls: false,
            },
            proto,
        ))
    }
}

/// Which HTTP versions a connection may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// HTTP/1.x only.
    H1,
    /// HTTP/2 only (negotiated by ALPN).
    H2,
    /// HTTP/1.x or HTTP/2 with prior knowledge.
    Auto,
}

/// The connection a request arrived on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// Attacker address.
    pub peer: SocketAddr,
    /// Local address.
    pub local: SocketAddr,
    /// Whether it is TLS.
    pub tls: bool,
}

/// Serves HTTP on one byte stream until it closes (used by `http` and `https`).
pub async fn serve_http<S>(
    site: Arc<Site>,
    ctx: Arc<ServiceCtx>,
    io: S,
    info: ConnInfo,
    proto: Proto,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let served = Arc::new(AtomicU32::new(0));
    let site_for_errors = site.clone();
    let service = {
        let ctx = ctx.clone();
        hyper::service::service_fn(move |req| {
            let (site, ctx, served) = (site.clone(), ctx.clone(), served.clone());
            async move {
                let n = served.fetch_add(1, Ordering::Relaxed) + 1;
                Ok::<_, Infallible>(respond(&site, &ctx, info, req, n).await)
            }
        })
    };
    let header_timeout = ctx.limits.idle_timeout.min(HEADER_TIMEOUT);
    let page_site = site_for_errors;
    let io = TokioIo::new(fixup::Fixup::new(
        io,
        Box::new(move |status| raw_error(&page_site, status, info.local)),
    ));
    // Errors are the peer's doing (bad requests, resets, timeouts): the connection ends.
    match proto {
        Proto::H1 => {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_headers(MAX_HEADERS)
                .max_buf_size(MAX_HEADER_BYTES.max(8192))
                .title_case_headers(true)
                .auto_date_header(false)
                .keep_alive(true);
            let _ = builder.serve_connection(io, service).await;
        }
        Proto::H2 | Proto::Auto => {
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_headers(MAX_HEADERS)
                .max_buf_size(MAX_HEADER_BYTES.max(8192))
                .title_case_headers(true)
                .auto_date_header(false)
                .keep_alive(true);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_header_list_size(MAX_HEADER_BYTES as u32)
                .max_concurrent_streams(MAX_H2_STREAMS)
                .auto_date_header(false)
                .keep_alive_interval(None);
            let builder = if proto == Proto::H2 {
                builder.http2_only()
            } else {
                builder
            };
            let _ = builder.serve_connection(io, service).await;
        }
    }
}

/// What was learnt from one request.
struct Seen {
    method: String,
    path: String,
    query: String,
    version: Version,
    host: String,
    close: bool,
    msie: bool,
}

fn version_text(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn header_text(headers: &HeaderMap, name: HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

fn connection_has(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

async fn respond(
    site: &Site,
    ctx: &ServiceCtx,
    info: ConnInfo,
    req: Request<Incoming>,
    n: u32,
) -> Response<Full<Bytes>> {
    let (parts, mut body) = req.into_parts();
    let headers = &parts.headers;
    let host_header = header_text(headers, header::HOST)
        .or_else(|| parts.uri.authority().map(|a| a.as_str().to_owned()));
    let close = match parts.version {
        Version::HTTP_10 => !connection_has(headers, "keep-alive"),
        Version::HTTP_11 => connection_has(headers, "close"),
        _ => false,
    } || n >= MAX_REQUESTS_PER_CONN;
    let user_agent = header_text(headers, header::USER_AGENT).unwrap_or_default();
    let content_type = header_text(headers, header::CONTENT_TYPE).unwrap_or_default();

    // The body: refused unread when announced too large, else kept up to MAX_BODY_KEEP.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let mut kept: Vec<u8> = Vec::new();
    let mut body_len: u64 = 0;
    let mut too_large = declared.is_some_and(|n| n > MAX_BODY_ACCEPT);
    let mut broken = false;
    // A body-less request (most scans) skips the read loop and its timer.
    if !too_large && !hyper::body::Body::is_end_stream(&body) {
        loop {
            match tokio::time::timeout(ctx.limits.idle_timeout, body.frame()).await {
                Ok(None) => break,
                Ok(Some(Ok(frame))) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    body_len += data.len() as u64;
                    if body_len > MAX_BODY_ACCEPT {
                        too_large = true;
                        break;
                    }
                    let room = MAX_BODY_KEEP.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
                Ok(Some(Err(_))) | Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
    } else if let Some(n) = declared {
        body_len = n;
    }

    let mut found = Vec::new();
    if let Some(auth) = headers.get(header::AUTHORIZATION)
        && let Some(f) = creds::from_authorization(auth.as_bytes())
    {
        found.push(f);
    }
    let has_body_method = matches!(parts.method.as_str(), "POST" | "PUT" | "PATCH");
    if has_body_method
        && !too_large
        && let Some(f) = creds::from_body(&content_type, &kept)
    {
        found.push(f);
    }
    let login = found
        .iter()
        .find(|f| f.credential.mechanism.as_deref() != Some("basic"))
        .and_then(|f| f.credential.principal.clone());

    let seen = Seen {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().unwrap_or("").to_owned(),
        version: parts.version,
        host: host_header
            .clone()
            .unwrap_or_else(|| info.local.ip().to_string()),
        close: close || too_large || broken,
        msie: user_agent.contains("MSIE ") && !user_agent.contains("Opera"),
    };
    let page = if too_large {
        Page::Server(413)
    } else if let Some(app) = &site.app {
        app.route(&AppRequest {
            method: &seen.method,
            path: &seen.path,
            host: &seen.host,
            scheme: if info.tls { "https" } else { "http" },
            login: login.as_deref(),
        })
    } else if let Some(body) = &site.custom_body {
        Page::Doc {
            status: site.status,
            content_type: "text/html",
            headers: Vec::new(),
            body: body.clone(),
        }
    } else if site.status == 200 {
        if seen.path == "/" || seen.path == "/index.html" {
            Page::Doc {
                status: 200,
                content_type: "text/html",
                headers: Vec::new(),
                body: match site.flavour {
                    Flavour::Nginx => pages::NGINX_WELCOME.to_owned(),
                    Flavour::Apache => pages::APACHE_WELCOME.to_owned(),
                },
            }
        } else {
            Page::Server(404)
        }
    } else {
        Page::Server(site.status)
    };
    let response = render(site, &seen, info, page);

    let header_pairs: Vec<[String; 2]> = headers
        .iter()
        .map(|(k, v)| [k.as_str().to_owned(), printable(v.as_bytes())])
        .collect();
    let mut event = Event::from_peer(kind::REQUEST, info.peer)
        .field("method", seen.method.clone())
        .field("path", seen.path.clone())
        .field("query", seen.query.clone())
        .field("version", version_text(seen.version))
        .field("host", host_header.unwrap_or_default())
        .field("user_agent", user_agent)
        .field(
            "headers",
            serde_json::to_string(&header_pairs).unwrap_or_default(),
        )
        .field_bytes("body", &kept[..kept.len().min(LOGGED_BODY)])
        .field("body_len", body_len.to_string())
        .field("status", response.status().as_u16().to_string());
    if info.tls {
        event = event.field("tls", "true");
    }
    if too_large {
        event = event.field("body_refused", "too_large");
    }
    ctx.emit(event);
    for f in found {
        let mut event = Event::from_peer(kind::AUTH_ATTEMPT, info.peer)
            .credential(&f.credential)
            .field("method", seen.method.clone())
            .field("path", seen.path.clone());
        for (k, v) in f.extra {
            event = event.field(k, v);
        }
        ctx.emit(event);
    }
    response
}

/// A complete response with the server's page for an unparsable request (what nginx
/// or Apache send where hyper would send a bare status line).
fn raw_error(site: &Site, status: u16, local: SocketAddr) -> Vec<u8> {
    let date = http_date();
    let date = String::from_utf8_lossy(date.as_bytes()).into_owned();
    match site.flavour {
        Flavour::Nginx => {
            let (status, page) = match status {
                431 => (
                    400,
                    pages::nginx_error_page(400, &site.server, false)
                        .unwrap_or_default()
                        .replace("400 Bad Request", "400 Request Header Or Cookie Too Large"),
                ),
                414 | 505 => (
                    status,
                    pages::nginx_error_page(status, &site.server, false).unwrap_or_default(),
                ),
                _ => (
                    400,
                    pages::nginx_error_page(400, &site.server, false).unwrap_or_default(),
                ),
            };
            let reason = nginx_reason(status).unwrap_or("Bad Request");
            format!(
                "HTTP/1.1 {status} {reason}\r\nServer: {}\r\nDate: {date}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                site.server,
                page.len()
            )
            .into_bytes()
        }
        Flavour::Apache => {
            let status = if status == 414 { 414 } else { 400 };
            let page = pages::apache_error_page(
                status,
                &site.server,
                &local.ip().to_string(),
                local.port(),
                "GET",
                "",
            );
            format!(
                "HTTP/1.1 {status} {}\r\nDate: {date}\r\nServer: {}\r\nContent-Length: {}\r\nConnection: close\r\nContent-Type: text/html; charset=iso-8859-1\r\n\r\n{page}",
                pages::apache_reason(status),
                site.server,
                page.len()
            )
            .into_bytes()
        }
    }
}

thread_local! {
    static DATE: RefCell<(i64, Option<HeaderValue>)> = const { RefCell::new((i64::MIN, None)) };
}

/// The current time as an HTTP date, recomputed at most once a second per thread.
fn http_date() -> HeaderValue {
    let now = time::OffsetDateTime::now_utc();
    let second = now.unix_timestamp();
    DATE.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.0 != second || cell.1.is_none() {
            const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let text = format!(
                "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
                DAYS[usize::from(now.weekday().number_days_from_monday())],
                now.day(),
                MONTHS[usize::from(u8::from(now.month()) - 1)],
                now.year(),
                now.hour(),
                now.minute(),
                now.second()
            );
            *cell = (second, HeaderValue::from_str(&text).ok());
        }
        cell.1
            .clone()
            .unwrap_or_else(|| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
    })
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// nginx's status-line reason (differs from the page title for 302 and 401).
fn nginx_reason(status: u16) -> Option<&'static str> {
    Some(match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        302 => "Moved Temporarily",
        401 => "Unauthorized",
        s => pages::nginx_title(s)?.get(4..)?,
    })
}

fn render(site: &Site, seen: &Seen, info: ConnInfo, page: Page) -> Response<Full<Bytes>> {
    let (status, content_type, app_headers, body) = match page {
        Page::Server(code) => match site.flavour {
            Flavour::Nginx => (
                code,
                "text/html",
                Vec::new(),
                match &site.default_page {
                    Some(page) if code == site.status && !seen.msie => page.clone(),
                    _ => Bytes::from(
                        pages::nginx_error_page(code, &site.server, seen.msie).unwrap_or_default(),
                    ),
                },
            ),
            Flavour::Apache => {
                let host = seen
                    .host
                    .rsplit_once(':')
                    .filter(|(_, p)| p.parse::<u16>().is_ok())
                    .map_or(seen.host.as_str(), |(h, _)| h);
                (
                    code,
                    "text/html; charset=iso-8859-1",
                    Vec::new(),
                    Bytes::from(pages::apache_error_page(
                        code,
                        &site.server,
                        host,
                        info.local.port(),
                        &seen.method,
                        "",
                    )),
                )
            }
        },
        Page::Doc {
            status,
            content_type,
            headers,
            body,
        } => (status, content_type, headers, Bytes::from(body)),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
    let h1 = seen.version != Version::HTTP_2;
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let length = response_len(&response);
    let map = response.headers_mut();
    let server = site.server_value.clone();
    let connection = if seen.close {
        HeaderValue::from_static("close")
    } else {
        match site.flavour {
            Flavour::Nginx => HeaderValue::from_static("keep-alive"),
            Flavour::Apache => HeaderValue::from_static("Keep-Alive"),
        }
    };
    match site.flavour {
        Flavour::Nginx => {
            map.insert(header::SERVER, server);
            map.insert(header::DATE, http_date());
            map.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            map.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            if h1 {
                map.insert(header::CONNECTION, connection);
            }
            for (k, v) in &app_headers {
                if let Ok(k) = HeaderName::from_bytes(k.as_bytes()) {
                    map.append(k, value(v));
                }
            }
            for (k, v) in &site.extra_headers {
                map.append(k.clone(), v.clone());
            }
        }
        Flavour::Apache => {
            map.insert(header::DATE, http_date());
            map.insert(header::SERVER, server);
            for (k, v) in &app_headers {
                if let Ok(k) = HeaderName::from_bytes(k.as_bytes()) {
                    map.append(k, value(v));
                }
            }
            for (k, v) in &site.extra_headers {
                map.append(k.clone(), v.clone());
            }
            map.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            if h1 {
                if !seen.close {
                    map.insert(
                        HeaderName::from_static("keep-alive"),
                        HeaderValue::from_static("timeout=5, max=100"),
                    );
                }
                map.insert(header::CONNECTION, connection);
            }
            map.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
    }
    if h1 {
        let reason = match site.flavour {
            Flavour::Nginx => nginx_reason(status.as_u16()),
            Flavour::Apache => Some(pages::apache_reason(status.as_u16())),
        };
        if let Some(reason) = reason
            && Some(reason) != status.canonical_reason()
        {
            response
                .extensions_mut()
                .insert(ReasonPhrase::from_static(reason.as_bytes()));
        }
    }
    response
}

fn response_len(response: &Response<Full<Bytes>>) -> u64 {
    use hyper::body::Body as _;
    response.body().size_hint().exact().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_header_shape() {
        let d = http_date();
        let text = d.to_str().unwrap();
        assert_eq!(text.len(), 29, "{text}");
        assert!(text.ends_with(" GMT"));
    }

    #[test]
    fn nginx_reasons() {
        assert_eq!(nginx_reason(405), Some("Not Allowed"));
        assert_eq!(nginx_reason(302), Some("Moved Temporarily"));
        assert_eq!(nginx_reason(403), Some("Forbidden"));
    }
}
