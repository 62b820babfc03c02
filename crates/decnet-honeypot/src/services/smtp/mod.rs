//! `smtp`: an ESMTP server persona (Postfix by default, Exim or Sendmail) that captures
//! AUTH PLAIN/LOGIN credentials (always refused), accepts mail and keeps every message
//! as a size-capped `.eml` artifact.
//!
//! Bounded: command lines by [`decnet_wire::smtp::MAX_LINE_LEN`], commands per connection
//! by [`MAX_COMMANDS`], recipients by [`MAX_RCPTS`], messages per connection by
//! [`MAX_MESSAGES`], message bodies by [`MAX_MESSAGE_BYTES`] (more is read but not kept,
//! and refused with 552), errors by [`MAX_ERRORS`], every read by the idle timeout.

mod mta;

use std::net::SocketAddr;
use std::sync::Arc;

use decnet_wire::smtp::{self as wire, Command, DataDecoder, Decoded, PathError};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use self::mta::Mta;
use self::mta::Texts;
use crate::Error;
use crate::artifacts::{ArtifactWriter, PendingArtifact};
use crate::event::{Credential, Event, Outcome, kind};
use crate::server::{BoxFuture, Conn, Emulator, ServiceCtx, Stream};

/// Commands served on one connection.
pub const MAX_COMMANDS: usize = 1000;
/// Recipients per message (Postfix's `smtpd_recipient_limit`).
pub const MAX_RCPTS: usize = 1000;
/// Recipients listed in a `message_accepted` event.
pub const LOGGED_RCPTS: usize = 100;
/// Messages per connection.
pub const MAX_MESSAGES: usize = 100;
/// Largest message kept (Postfix's default `message_size_limit`).
pub const MAX_MESSAGE_BYTES: u64 = 10_240_000;
/// Errors before the connection is closed (Postfix's `smtpd_hard_error_limit`).
pub const MAX_ERRORS: u32 = 20;
/// Decoded body bytes buffered before they are written out.
const BODY_CHUNK: usize = 64 * 1024;

/// The `smtp` emulator.
pub struct Smtp {
    mta: Mta,
    banner: Option<String>,
    host: String,
    artifacts: Option<ArtifactWriter>,
}

/// Registry constructor.
///
/// # Errors
/// [`Error::Io`] when the artifacts directory cannot be created.
pub fn build(ctx: &ServiceCtx) -> Result<Arc<dyn Emulator>, Error> {
    let persona = &ctx.persona;
    let artifacts = match &persona.artifacts_dir {
        Some(dir) => Some(ArtifactWriter::new(
            dir,
            ctx.service.slug,
            MAX_MESSAGE_BYTES,
        )?),
        None => None,
    };
    Ok(Arc::new(Smtp {
        mta: Mta::from_persona(persona),
        banner: persona
            .get("smtp_banner")
            .or_else(|| persona.get("banner"))
            .map(str::to_owned),
        host: persona.hostname.clone(),
        artifacts,
    }))
}

struct Session {
    stream: Box<dyn Stream>,
    peer: SocketAddr,
    ctx: Arc<ServiceCtx>,
    buf: Vec<u8>,
    out: Vec<u8>,
    helo: Option<String>,
    from: Option<String>,
    rcpts: Vec<String>,
    errors: u32,
    messages: usize,
    timed_out: bool,
}

enum Read {
    Line(Vec<u8>),
    Closed,
    Timeout,
    TooLong,
}

impl Session {
    async fn read_line(&mut self) -> Read {
        loop {
            match wire::decode_line(&self.buf) {
                Ok(Decoded::Line { line, consumed }) => {
                    let line = line.to_vec();
                    self.buf.drain(..consumed);
                    return Read::Line(line);
                }
                Ok(Decoded::NeedMore) => {}
                Err(_) => return Read::TooLong,
            }
            if !self.fill().await {
                return if self.timed_out {
                    Read::Timeout
                } else {
                    Read::Closed
                };
            }
        }
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(self.ctx.limits.idle_timeout, self.stream.read(&mut chunk)).await
        {
            Err(_) => {
                self.timed_out = true;
                false
            }
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let out = std::mem::take(&mut self.out);
        matches!(
            tokio::time::timeout(self.ctx.limits.idle_timeout, self.stream.write_all(&out)).await,
            Ok(Ok(()))
        )
    }
}

/// Fills the placeholders of a reply text.
fn fill(text: &str, host: &str, arg: &str, helo: &str, ip: &str) -> String {
    text.replace("{host}", host)
        .replace("{arg}", arg)
        .replace("{helo}", helo)
        .replace("{ip}", ip)
}

impl Emulator for Smtp {
    fn handle(self: Arc<Self>, conn: Conn, ctx: Arc<ServiceCtx>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut s = Session {
                stream: conn.stream,
                peer: conn.peer,
                ctx,
                buf: Vec::new(),
                out: Vec::new(),
                helo: None,
                from: None,
                rcpts: Vec::new(),
                errors: 0,
                messages: 0,
                timed_out: false,
            };
            self.run(&mut s).await;
        })
    }
}

/// What a command handler wants next.
enum Next {
    Continue,
    Close,
}

impl Smtp {
    fn texts(&self) -> &'static Texts {
        self.mta.texts()
    }

    fn say(&self, s: &mut Session, (code, text): (u16, &str), arg: &str) {
        let ip = s.peer.ip().to_string();
        let helo = s.helo.clone().unwrap_or_default();
        let line = fill(text, &self.host, arg, &helo, &ip);
        wire::reply(code, &[&line], &mut s.out);
    }

    /// Replies with an error and counts it; false when the error limit is reached.
    fn error(&self, s: &mut Session, reply: (u16, &str), arg: &str) -> Next {
        self.say(s, reply, arg);
        s.errors += 1;
        if s.errors >= MAX_ERRORS {
            self.say(s, self.texts().too_many_errors, "");
            return Next::Close;
        }
        Next::Continue
    }

    async fn run(&self, s: &mut Session) {
        let greeting = match &self.banner {
            Some(b) => b.clone(),
            None => self.mta.banner(&self.host, s.peer.ip()),
        };
        wire::reply(220, &[&greeting], &mut s.out);
        if !s.flush().await {
            return;
        }
        for _ in 0..MAX_COMMANDS {
            let line = match s.read_line().await {
                Read::Line(l) => l,
                Read::Closed => return,
                Read::Timeout => {
                    self.say(s, self.texts().timeout, "");
                    let _ = s.flush().await;
                    return;
                }
                Read::TooLong => {
                    self.say(s, self.texts().line_too_long, "");
                    let _ = s.flush().await;
                    s.ctx.emit(
                        Event::from_peer(kind::PROTOCOL_ERROR, s.peer)
                            .field("reason", "line_too_long"),
                    );
                    return;
                }
            };
            let command = wire::parse_command(&line);
            let mut event =
                Event::from_peer(kind::COMMAND, s.peer).field("cmd", command.verb().to_owned());
            if !matches!(command, Command::Auth { .. }) {
                event = event.field_bytes("line", &line);
            } else if let Command::Auth { mechanism, .. } = &command {
                event = event.field("mechanism", mechanism.clone());
            }
            s.ctx.emit(event);
            let next = self.command(s, command).await;
            if !s.flush().await {
                return;
            }
            if matches!(next, Next::Close) {
                return;
            }
        }
    }

    async fn command(&self, s: &mut Session, command: Command) -> Next {
        let t = self.texts();
        match command {
            Command::Ehlo(domain) if domain.is_empty() => {
                let text = t.helo_syntax.1.replace("{verb}", "EHLO");
                return self.error(s, (t.helo_syntax.0, &text), "");
            }
            Command::Helo(domain) if domain.is_empty() => {
                let text = t.helo_syntax.1.replace("{verb}", "HELO");
                return self.error(s, (t.helo_syntax.0, &text), "");
            }
            Command::Ehlo(domain) => {
                s.helo = Some(domain.clone());
                s.from = None;
                s.rcpts.clear();
                let ip = s.peer.ip().to_string();
                let first = fill(t.ehlo_greeting, &self.host, "", &domain, &ip);
                let mut lines = vec![first.as_str()];
                lines.extend(t.ehlo_extensions.iter().copied());
                wire::reply(250, &lines, &mut s.out);
                s.ctx
                    .emit(Event::from_peer("ehlo", s.peer).field("domain", domain));
            }
            Command::Helo(domain) => {
                s.helo = Some(domain.clone());
                s.from = None;
                s.rcpts.clear();
                self.say(s, (250, t.helo), "");
                s.ctx
                    .emit(Event::from_peer("helo", s.peer).field("domain", domain));
            }
            Command::Mail(path) => {
                if s.from.is_some() {
                    return self.error(s, t.nested_mail, "");
                }
                if s.messages >= MAX_MESSAGES {
                    self.say(s, (452, "4.3.1 Insufficient system storage"), "");
                    return Next::Continue;
                }
                match path {
                    Err(PathError::Syntax) => return self.error(s, t.mail_syntax, ""),
                    Err(PathError::BadAddress) => return self.error(s, t.bad_sender, ""),
                    Ok(p) if p.size().is_some_and(|n| n > MAX_MESSAGE_BYTES) => {
                        return self.error(s, t.size_exceeded, "");
                    }
                    Ok(p) => {
                        let shown = format!("<{}>", p.address);
                        self.say(s, (250, t.mail_ok), &shown);
                        s.ctx.emit(
                            Event::from_peer("mail_from", s.peer).field("from", p.address.clone()),
                        );
                        s.from = Some(p.address);
                    }
                }
            }
            Command::Rcpt(path) => {
                if s.from.is_none() {
                    return self.error(s, t.need_mail, "");
                }
                match path {
                    Err(PathError::Syntax) => return self.error(s, t.rcpt_syntax, ""),
                    Err(PathError::BadAddress) => return self.error(s, t.bad_rcpt, ""),
                    Ok(p) => {
                        if s.rcpts.len() >= MAX_RCPTS {
                            return self.error(s, t.too_many_rcpts, "");
                        }
                        let shown = format!("<{}>", p.address);
                        self.say(s, (250, t.rcpt_ok), &shown);
                        s.ctx.emit(
                            Event::from_peer("rcpt_to", s.peer).field("to", p.address.clone()),
                        );
                        s.rcpts.push(p.address);
                    }
                }
            }
            Command::Data => {
                if s.from.is_none() {
                    return self.error(s, t.need_rcpt_cmd, "");
                }
                if s.rcpts.is_empty() {
                    return self.error(s, t.need_rcpt, "");
                }
                self.say(s, (354, t.data_go), "");
                if !s.flush().await {
                    return Next::Close;
                }
                return self.data(s).await;
            }
            Command::Rset => {
                s.from = None;
                s.rcpts.clear();
                self.say(s, (250, t.rset), "");
            }
            Command::Noop => self.say(s, (250, t.noop), ""),
            Command::Quit => {
                self.say(s, (221, t.bye), "");
                return Next::Close;
            }
            Command::Vrfy(arg) => {
                if arg.is_empty() {
                    return self.error(s, (501, "5.5.4 Syntax: VRFY address"), "");
                }
                s.ctx
                    .emit(Event::from_peer("vrfy", s.peer).field("arg", arg.clone()));
                self.say(s, t.vrfy, &arg);
            }
            Command::Etrn(arg) => {
                if arg.is_empty() {
                    return self.error(s, (500, "Syntax: ETRN domain"), "");
                }
                self.say(s, (250, "Queuing started"), "");
            }
            Command::StartTls => return self.error(s, t.not_implemented, ""),
            Command::Auth { mechanism, initial } => {
                return self.auth(s, &mechanism, initial).await;
            }
            Command::Forbidden(verb) => {
                self.say(s, t.forbidden, "");
                s.ctx.emit(
                    Event::from_peer(kind::PROTOCOL_ERROR, s.peer)
                        .field("reason", "non_smtp_command")
                        .field("cmd", verb),
                );
                return Next::Close;
            }
            Command::Expn(_) | Command::Help | Command::Bdat(_) | Command::Unknown(_) => {
                let verb = command.verb().to_owned();
                s.ctx
                    .emit(Event::from_peer("unknown_command", s.peer).field("cmd", verb.clone()));
                return self.error(s, t.unknown, &verb);
            }
        }
        Next::Continue
    }

    async fn auth(&self, s: &mut Session, mechanism: &str, initial: Option<String>) -> Next {
        let t = self.texts();
        if s.helo.is_none() {
            return self.error(s, t.need_helo, "");
        }
        if s.from.is_some() {
            return self.error(s, t.auth_in_mail, "");
        }
        let (user, pass) = match mechanism {
            "PLAIN" => {
                let response = match initial {
                    Some(r) => r.into_bytes(),
                    None => {
                        wire::reply(334, &[""], &mut s.out);
                        match self.challenge(s).await {
                            Ok(r) => r,
                            Err(next) => return next,
                        }
                    }
                };
                if response.trim_ascii() == b"*" {
                    return self.error(s, t.auth_aborted, "");
                }
                match wire::decode_plain(&response) {
                    Ok(p) => (p.authcid, p.passwd),
                    Err(_) => return self.error(s, t.auth_decode, ""),
                }
            }
            "LOGIN" => {
                let user = match initial {
                    Some(r) => r.into_bytes(),
                    None => {
                        wire::reply(334, &["VXNlcm5hbWU6"], &mut s.out);
                        match self.challenge(s).await {
                            Ok(r) => r,
                            Err(next) => return next,
                        }
                    }
                };
                if user.trim_ascii() == b"*" {
                    return self.error(s, t.auth_aborted, "");
                }
                let Ok(user) = wire::decode_sasl(&user) else {
                    return self.error(s, t.auth_decode, "");
                };
                wire::reply(334, &["UGFzc3dvcmQ6"], &mut s.out);
                let pass = match self.challenge(s).await {
                    Ok(r) => r,
                    Err(next) => return next,
                };
                if pass.trim_ascii() == b"*" {
                    return self.error(s, t.auth_aborted, "");
                }
                let Ok(pass) = wire::decode_sasl(&pass) else {
                    return self.error(s, t.auth_decode, "");
                };
                (user, pass)
            }
            _ => return self.error(s, t.auth_mechanism, ""),
        };
        s.ctx.emit(
            Event::from_peer(kind::AUTH_ATTEMPT, s.peer).credential(
                &Credential::password(&String::from_utf8_lossy(&user), &pass, Outcome::Failure)
                    .mechanism(mechanism),
            ),
        );
        self.error(s, t.auth_failed, "")
    }

    /// Sends the pending challenge and reads the client's response line.
    async fn challenge(&self, s: &mut Session) -> Result<Vec<u8>, Next> {
        if !s.flush().await {
            return Err(Next::Close);
        }
        match s.read_line().await {
            Read::Line(l) => Ok(l),
            Read::Timeout => {
                self.say(s, self.texts().timeout, "");
                Err(Next::Close)
            }
            Read::TooLong => {
                self.say(s, self.texts().line_too_long, "");
                Err(Next::Close)
            }
            Read::Closed => Err(Next::Close),
        }
    }

    async fn data(&self, s: &mut Session) -> Next {
        let t = self.texts();
        let mut decoder = DataDecoder::new();
        let ctx = s.ctx.clone();
        let mut store = Store::new(self.artifacts.as_ref(), &ctx);
        let mut chunk: Vec<u8> = Vec::with_capacity(2 * BODY_CHUNK);
        loop {
            if !s.buf.is_empty() {
                // Each input byte yields at most one output byte (plus one CR held back
                // from an earlier call), so feeding `space - 1` bytes never overflows the
                // chunk: only the message cap drops bytes.
                let space = 2 * BODY_CHUNK - chunk.len();
                let cap_room = usize::try_from(
                    MAX_MESSAGE_BYTES.saturating_sub(store.kept + chunk.len() as u64),
                )
                .unwrap_or(usize::MAX);
                let take = s.buf.len().min(space - 1);
                let used = decoder.feed(&s.buf[..take], &mut chunk, cap_room.min(space));
                s.buf.drain(..used);
            }
            if chunk.len() >= BODY_CHUNK || decoder.is_done() {
                store.write(&chunk);
                chunk.clear();
            }
            if decoder.is_done() {
                break;
            }
            if s.buf.is_empty() && !s.fill().await {
                // The peer left or stalled mid-message: nothing is queued.
                if s.timed_out {
                    self.say(s, t.timeout, "");
                }
                return Next::Close;
            }
        }
        let total = decoder.total();
        let from = s.from.take().unwrap_or_default();
        let rcpts = std::mem::take(&mut s.rcpts);
        s.messages += 1;
        let truncated = total > MAX_MESSAGE_BYTES;
        let (stored, sha256, size) = store.finish();
        let mut event = Event::from_peer(kind::ARTIFACT_STORED, s.peer)
            .field("kind", "eml")
            .field("sha256", sha256.clone())
            .field("size", size.to_string())
            .field("received", total.to_string())
            .field("truncated", truncated.to_string());
        if let Some(name) = &stored {
            event = event.field("stored_as", name.clone());
        }
        s.ctx.emit(event);
        if truncated {
            return self.error(s, t.too_big, "");
        }
        let queue_id = self.mta.queue_id();
        let listed: Vec<&str> = rcpts
            .iter()
            .take(LOGGED_RCPTS)
            .map(String::as_str)
            .collect();
        let mut event = Event::from_peer("message_accepted", s.peer)
            .field("from", from)
            .field("rcpt", listed.join(","))
            .field("rcpt_count", rcpts.len().to_string())
            .field("size", total.to_string())
            .field("sha256", sha256)
            .field("msg_id", queue_id.clone())
            .field("helo", s.helo.clone().unwrap_or_default());
        if let Some(name) = stored {
            event = event.field("stored_as", name);
        }
        s.ctx.emit(event);
        let queued = t.queued.replace("{id}", &queue_id);
        self.say(s, (250, &queued), "");
        Next::Continue
    }
}

/// Where a message body goes: an artifact file when an artifacts directory is
/// configured, else only a running hash.
struct Store<'a> {
    pending: Option<PendingArtifact>,
    hasher: Sha256,
    kept: u64,
    ctx: &'a ServiceCtx,
}

impl<'a> Store<'a> {
    fn new(writer: Option<&ArtifactWriter>, ctx: &'a ServiceCtx) -> Self {
        let pending = writer.and_then(|w| match w.begin("eml") {
            Ok(p) => Some(p),
            Err(e) => {
                ctx.emit(
                    Event::new("artifact_error")
                        .severity(decnet_wire::rfc5424::Severity::Warning)
                        .field("error", e.to_string()),
                );
                None
            }
        });
        Store {
            pending,
            hasher: Sha256::new(),
            kept: 0,
            ctx,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.kept += bytes.len() as u64;
        self.hasher.update(bytes);
        if let Some(p) = self.pending.as_mut()
            && let Err(e) = p.write(bytes)
        {
            self.ctx.emit(
                Event::new("artifact_error")
                    .severity(decnet_wire::rfc5424::Severity::Warning)
                    .field("error", e.to_string()),
            );
            self.pending = None;
        }
    }

    /// (stored file name, sha256 of kept bytes, kept size).
    fn finish(self) -> (Option<String>, String, u64) {
        let sha = hex::encode(self.hasher.finalize());
        let stored = self.pending.and_then(|p| match p.finish() {
            Ok(stored) => Some(stored.name),
            Err(e) => {
                self.ctx.emit(
                    Event::new("artifact_error")
                        .severity(decnet_wire::rfc5424::Severity::Warning)
                        .field("error", e.to_string()),
                );
                None
            }
        });
        (stored, sha, self.kept)
    }
}
