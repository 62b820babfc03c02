//! `ftp`: a read-only FTP server persona (vsftpd by default, ProFTPD or Pure-FTPd):
//! login capture, a seeded bait tree, real passive data connections, and downloads
//! recorded as `download_attempt` events.
//!
//! Bounded: command lines by [`decnet_wire::ftp::MAX_LINE_LEN`], commands per connection
//! by [`MAX_COMMANDS`], every read by the idle timeout, passive accepts by
//! [`DATA_ACCEPT_TIMEOUT`], data writes by the idle timeout, bait files by
//! [`bait::MAX_BAIT_BYTES`]. Nothing is ever written, and no path a client sends reaches
//! the host file system: paths are normalised and looked up in the generated tree.

pub mod bait;
mod product;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use decnet_wire::ftp::{self as wire, Decoded};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use self::bait::{Entry, Generator, Tree};
pub use self::product::Product;
use crate::Error;
use crate::event::{Credential, Event, Outcome, kind};
use crate::server::{BoxFuture, Conn, Emulator, ServiceCtx, Stream};

/// Commands served on one connection before it is closed.
pub const MAX_COMMANDS: usize = 2000;
/// Longest wait for the client to open a passive data connection.
pub const DATA_ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);
/// Failed logins before the connection is closed (vsftpd's `max_login_fails`).
pub const MAX_LOGIN_FAILS: u32 = 3;
/// Pause before answering a failed login (vsftpd's `delay_failed_login`).
pub const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);
/// Bytes written to a data connection at once.
const DATA_CHUNK: usize = 32 * 1024;

/// Whether logins succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// About 90% of credential pairs, decided per pair by the decky seed (a retried pair
    /// gets the same answer).
    Random,
    /// Every login.
    Always,
    /// None.
    Never,
}

/// The `ftp` emulator.
pub struct Ftp {
    product: Product,
    banner: Option<String>,
    accept: Accept,
    login_key: [u8; 32],
    tree: Tree,
}

/// Registry constructor.
///
/// # Errors
/// Never fails today; the signature is the registry's.
pub fn build(ctx: &ServiceCtx) -> Result<Arc<dyn Emulator>, Error> {
    let persona = &ctx.persona;
    let product = Product::from_persona(persona);
    let accept = match persona.get("accept_logins") {
        Some("always") => Accept::Always,
        Some("never") => Accept::Never,
        _ => Accept::Random,
    };
    Ok(Arc::new(Ftp {
        product,
        banner: persona.get("ftp_banner").map(str::to_owned),
        accept,
        login_key: persona.derive("ftp-logins"),
        tree: Tree::for_persona(persona),
    }))
}

impl Ftp {
    fn accepts(&self, user: &str, pass: &[u8]) -> bool {
        match self.accept {
            Accept::Always => true,
            Accept::Never => false,
            Accept::Random => {
                let mut h = Sha256::new();
                h.update(self.login_key);
                h.update(user.as_bytes());
                h.update([0]);
                h.update(pass);
                h.finalize()[0] < 230
            }
        }
    }
}

enum DataMode {
    None,
    Passive(TcpListener),
    Active,
}

struct Session {
    stream: Box<dyn Stream>,
    peer: SocketAddr,
    local: SocketAddr,
    ctx: Arc<ServiceCtx>,
    buf: Vec<u8>,
    user: Option<String>,
    logged_in: bool,
    cwd: String,
    binary: bool,
    data: DataMode,
    fails: u32,
    out: Vec<u8>,
}

enum ReadError {
    Closed,
    Timeout,
    TooLong,
}

impl Session {
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

    fn reply(&mut self, code: u16, text: &str) {
        wire::reply(code, text, &mut self.out);
    }

    fn raw(&mut self, text: &str) {
        self.out.extend_from_slice(text.as_bytes());
    }

    async fn read_command(&mut self) -> Result<(String, Vec<u8>), ReadError> {
        loop {
            match wire::decode(&self.buf) {
                Ok(Decoded::Command { command, consumed }) => {
                    let out = (command.verb, command.arg.to_vec());
                    self.buf.drain(..consumed);
                    return Ok(out);
                }
                Ok(Decoded::NeedMore) => {}
                Err(_) => return Err(ReadError::TooLong),
            }
            let mut chunk = [0u8; 2048];
            match tokio::time::timeout(self.ctx.limits.idle_timeout, self.stream.read(&mut chunk))
                .await
            {
                Err(_) => return Err(ReadError::Timeout),
                Ok(Ok(0)) | Ok(Err(_)) => return Err(ReadError::Closed),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Opens the data connection prepared by PASV/EPSV (the only kind this server makes).
    async fn open_data(&mut self) -> Option<TcpStream> {
        let DataMode::Passive(listener) = std::mem::replace(&mut self.data, DataMode::None) else {
            return None;
        };
        let (stream, from) = tokio::time::timeout(DATA_ACCEPT_TIMEOUT, listener.accept())
            .await
            .ok()?
            .ok()?;
        if canonical(from.ip()) != canonical(self.peer.ip()) {
            self.ctx.emit(
                Event::from_peer(kind::PROTOCOL_ERROR, self.peer)
                    .field("reason", "data_connection_from_other_ip")
                    .field("data_ip", from.ip().to_string()),
            );
            return None;
        }
        Some(stream)
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

async fn send_data(data: &mut TcpStream, bytes: &[u8], limit: Duration) -> bool {
    matches!(
        tokio::time::timeout(limit, data.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

impl Emulator for Ftp {
    fn handle(self: Arc<Self>, conn: Conn, ctx: Arc<ServiceCtx>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut s = Session {
                stream: conn.stream,
                peer: conn.peer,
                local: conn.local,
                ctx,
                buf: Vec::new(),
                user: None,
                logged_in: false,
                cwd: "/".into(),
                binary: false,
                data: DataMode::None,
                fails: 0,
                out: Vec::new(),
            };
            self.run(&mut s).await;
        })
    }
}

impl Ftp {
    async fn run(&self, s: &mut Session) {
        let banner = match &self.banner {
            Some(text) => format!("220 {text}\r\n"),
            None => self.product.banner(s.local),
        };
        s.raw(&banner);
        if !s.flush().await {
            return;
        }
        for _ in 0..MAX_COMMANDS {
            let (verb, arg) = match s.read_command().await {
                Ok(c) => c,
                Err(ReadError::Closed) => return,
                Err(ReadError::Timeout) => {
                    s.reply(421, self.product.timeout_text());
                    let _ = s.flush().await;
                    return;
                }
                Err(ReadError::TooLong) => {
                    s.ctx.emit(
                        Event::from_peer(kind::PROTOCOL_ERROR, s.peer)
                            .field("reason", "line_too_long"),
                    );
                    return;
                }
            };
            let mut event = Event::from_peer(kind::COMMAND, s.peer).field("cmd", verb.clone());
            if verb != "PASS" {
                event = event.field_bytes("arg", &arg);
            }
            s.ctx.emit(event);
            let keep = self.dispatch(s, &verb, &arg).await;
            if !s.flush().await || !keep {
                return;
            }
        }
    }

    /// Handles one command; false ends the session.
    async fn dispatch(&self, s: &mut Session, verb: &str, arg: &[u8]) -> bool {
        let p = self.product;
        let arg_text = String::from_utf8_lossy(arg).into_owned();
        match verb {
            "USER" => {
                if s.logged_in {
                    let (c, t) = p.user_when_logged_in();
                    s.reply(c, t);
                } else {
                    s.user = Some(arg_text.clone());
                    s.reply(331, &p.need_password(&arg_text));
                }
                return true;
            }
            "PASS" => return self.pass(s, arg).await,
            "QUIT" => {
                s.raw(p.goodbye());
                return false;
            }
            "FEAT" => {
                s.raw(p.feat());
                return true;
            }
            "OPTS" => {
                if arg_text.eq_ignore_ascii_case("UTF8 ON") {
                    s.reply(200, p.utf8_on());
                } else {
                    s.reply(501, p.opts_bad());
                }
                return true;
            }
            "NOOP" => {
                s.reply(200, p.noop());
                return true;
            }
            "" => {
                let (c, t) = p.unknown("");
                s.reply(c, &t);
                return true;
            }
            _ => {}
        }
        if !s.logged_in {
            s.reply(530, p.login_first());
            return true;
        }
        match verb {
            "SYST" => s.reply(215, "UNIX Type: L8"),
            "PWD" | "XPWD" => {
                let cwd = s.cwd.clone();
                s.reply(257, &p.pwd(&cwd));
            }
            "CWD" | "XCWD" | "CDUP" | "XCUP" => {
                let target = if verb.ends_with("UP") {
                    b"..".as_slice()
                } else {
                    arg
                };
                match wire::normalize_path(&s.cwd, target) {
                    Ok(path) if self.tree.is_dir(&path) => {
                        s.cwd = path.clone();
                        s.reply(250, &p.cwd_ok(&path));
                    }
                    _ => s.reply(550, &p.cwd_fail(&arg_text)),
                }
            }
            "TYPE" => match arg_text.trim().to_ascii_uppercase().as_str() {
                "I" | "L 8" | "L8" => {
                    s.binary = true;
                    s.reply(200, p.type_binary());
                }
                "A" | "A N" => {
                    s.binary = false;
                    s.reply(200, p.type_ascii());
                }
                _ => s.reply(500, p.type_bad()),
            },
            "MODE" => match arg_text.trim() {
                "S" | "s" => s.reply(200, "Mode set to S."),
                _ => s.reply(504, "Bad MODE command."),
            },
            "STRU" => match arg_text.trim() {
                "F" | "f" => s.reply(200, "Structure set to F."),
                _ => s.reply(504, "Bad STRU command."),
            },
            "PASV" | "EPSV" => self.passive(s, verb == "EPSV", &arg_text).await,
            "PORT" => {
                s.data = DataMode::None;
                if wire::parse_port(arg).is_some() {
                    s.data = DataMode::Active;
                    s.reply(200, p.port_ok());
                } else {
                    s.reply(500, "Illegal PORT command.");
                }
            }
            "EPRT" => {
                s.data = DataMode::None;
                if wire::parse_eprt(arg).is_some() {
                    s.data = DataMode::Active;
                    s.reply(200, p.eprt_ok());
                } else {
                    s.reply(500, "Bad EPRT command.");
                }
            }
            "LIST" | "NLST" => return self.list(s, verb == "NLST", &arg_text).await,
            "RETR" => return self.retr(s, arg, &arg_text).await,
            "SIZE" => match self.file(s, arg) {
                Some(e) => {
                    let size = e.size;
                    s.reply(213, &size.to_string());
                }
                None => s.reply(550, p.size_fail()),
            },
            "MDTM" => match self.file(s, arg) {
                Some(e) => {
                    let t = e.mtime;
                    s.reply(
                        213,
                        &format!(
                            "{:04}{:02}{:02}{:02}{:02}{:02}",
                            t.year(),
                            u8::from(t.month()),
                            t.day(),
                            t.hour(),
                            t.minute(),
                            t.second()
                        ),
                    );
                }
                None => s.reply(550, p.mdtm_fail()),
            },
            "REST" => {
                let n: u64 = arg_text.trim().parse().unwrap_or(0);
                s.reply(350, &p.rest(n));
            }
            "ABOR" => s.reply(225, "No transfer to ABOR."),
            "ALLO" => s.reply(202, "ALLO command ignored."),
            "STAT" => {
                let user = s.user.clone().unwrap_or_default();
                s.raw(&p.stat(s.peer.ip(), &user, s.binary));
            }
            "HELP" => s.raw(p.help()),
            "STOR" | "STOU" | "APPE" | "DELE" | "MKD" | "XMKD" | "RMD" | "XRMD" | "RNFR"
            | "RNTO" | "SITE" => {
                let (c, t) = p.refused(verb, &arg_text);
                s.ctx.emit(
                    Event::from_peer("upload_attempt", s.peer)
                        .field("cmd", verb)
                        .field_bytes("path", arg),
                );
                s.reply(c, &t);
            }
            other => {
                let (c, t) = p.unknown(other);
                s.reply(c, &t);
            }
        }
        true
    }

    fn file(&self, s: &Session, arg: &[u8]) -> Option<&Entry> {
        let path = wire::normalize_path(&s.cwd, arg).ok()?;
        self.tree.get(&path).filter(|e| !e.dir)
    }

    async fn pass(&self, s: &mut Session, arg: &[u8]) -> bool {
        let p = self.product;
        if s.logged_in {
            s.reply(230, p.already_logged_in());
            return true;
        }
        let Some(user) = s.user.take() else {
            s.reply(503, p.user_first());
            return true;
        };
        let ok = self.accepts(&user, arg);
        let outcome = if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        s.ctx.emit(
            Event::from_peer(kind::AUTH_ATTEMPT, s.peer)
                .credential(&Credential::password(&user, arg, outcome).mechanism("password")),
        );
        if ok {
            s.logged_in = true;
            s.reply(230, &p.logged_in(&user));
            return true;
        }
        s.fails += 1;
        if !s.flush().await {
            return false;
        }
        tokio::time::sleep(FAILED_LOGIN_DELAY).await;
        s.reply(530, p.login_incorrect());
        s.fails < MAX_LOGIN_FAILS
    }

    async fn passive(&self, s: &mut Session, extended: bool, arg: &str) {
        let p = self.product;
        if extended && arg.trim().eq_ignore_ascii_case("ALL") {
            s.reply(200, "EPSV ALL ok.");
            return;
        }
        s.data = DataMode::None;
        let ip = canonical(s.local.ip());
        let listener = match TcpListener::bind(SocketAddr::new(s.local.ip(), 0)).await {
            Ok(l) => l,
            Err(_) => {
                s.reply(425, p.no_data());
                return;
            }
        };
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        s.data = DataMode::Passive(listener);
        if extended {
            s.reply(229, &p.epsv(port));
        } else {
            match ip {
                IpAddr::V4(v4) => s.reply(227, &wire::pasv_text(v4.octets(), port)),
                IpAddr::V6(_) => {
                    s.data = DataMode::None;
                    s.reply(425, p.no_data());
                }
            }
        }
    }

    async fn list(&self, s: &mut Session, names_only: bool, arg: &str) -> bool {
        let p = self.product;
        // Options (`-la`) come first and are not paths.
        let mut show_dots = false;
        let mut target = "";
        for word in arg.split_whitespace() {
            if let Some(opts) = word.strip_prefix('-') {
                show_dots |= opts.contains('a');
            } else if target.is_empty() {
                target = word;
            }
        }
        if matches!(s.data, DataMode::None | DataMode::Active) {
            let active = matches!(s.data, DataMode::Active);
            s.data = DataMode::None;
            s.reply(425, if active { p.no_data() } else { p.use_pasv() });
            return true;
        }
        let Some(mut data) = s.open_data().await else {
            s.reply(425, p.no_data());
            return true;
        };
        s.reply(150, p.list_start());
        if !s.flush().await {
            return false;
        }
        let path = wire::normalize_path(&s.cwd, target.as_bytes()).unwrap_or_else(|_| "/".into());
        let now = OffsetDateTime::now_utc();
        let mut listing = String::new();
        let entries: Vec<&Entry> = if self.tree.is_dir(&path) {
            self.tree.list(&path)
        } else {
            self.tree.get(&path).into_iter().collect()
        };
        if show_dots && !names_only && self.tree.is_dir(&path) {
            let t = entries.first().map_or(now, |e| e.mtime);
            listing.push_str(&p.list_line(true, 4096, t, ".", now));
            listing.push_str(&p.list_line(true, 4096, t, "..", now));
        }
        for e in &entries {
            if names_only {
                listing.push_str(e.name());
                listing.push_str("\r\n");
            } else {
                listing.push_str(&p.list_line(e.dir, e.size, e.mtime, e.name(), now));
            }
        }
        let ok = send_data(&mut data, listing.as_bytes(), s.ctx.limits.idle_timeout).await;
        let _ = data.shutdown().await;
        drop(data);
        if ok {
            s.raw(&p.list_done(entries.len()));
        } else {
            s.reply(426, "Failure writing network stream.");
        }
        true
    }

    async fn retr(&self, s: &mut Session, arg: &[u8], arg_text: &str) -> bool {
        let p = self.product;
        let path = wire::normalize_path(&s.cwd, arg).unwrap_or_else(|_| "/".into());
        let entry = self.tree.get(&path).filter(|e| !e.dir);
        let mut event = Event::from_peer(kind::DOWNLOAD_ATTEMPT, s.peer)
            .field("path", path.clone())
            .field("found", entry.is_some().to_string());
        let Some(entry) = entry else {
            s.ctx.emit(event);
            s.reply(550, &p.retr_fail(arg_text));
            return true;
        };
        event = event.field("size", entry.size.to_string());
        if matches!(s.data, DataMode::None | DataMode::Active) {
            let active = matches!(s.data, DataMode::Active);
            s.data = DataMode::None;
            s.ctx.emit(event.field("bytes_sent", "0"));
            s.reply(425, if active { p.no_data() } else { p.use_pasv() });
            return true;
        }
        let Some(mut data) = s.open_data().await else {
            s.ctx.emit(event.field("bytes_sent", "0"));
            s.reply(425, p.no_data());
            return true;
        };
        s.raw(&p.retr_start(s.binary, arg_text, entry.size));
        if !s.flush().await {
            return false;
        }
        let mut generator = Generator::new(entry);
        let mut sent = 0u64;
        let mut ok = true;
        while let Some(chunk) = generator.next_chunk(DATA_CHUNK) {
            if !send_data(&mut data, &chunk, s.ctx.limits.idle_timeout).await {
                ok = false;
                break;
            }
            sent += chunk.len() as u64;
        }
        let _ = data.shutdown().await;
        drop(data);
        s.ctx.emit(event.field("bytes_sent", sent.to_string()));
        if ok {
            s.raw(p.transfer_done());
        } else {
            s.reply(426, "Failure writing network stream.");
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_acceptance_is_stable_and_mostly_yes() {
        let ftp = Ftp {
            product: Product::Vsftpd("3.0.3"),
            banner: None,
            accept: Accept::Random,
            login_key: [7; 32],
            tree: Tree::for_persona(
                &crate::persona::Persona::from_lookup(
                    decnet_core::catalog::service("ftp").unwrap(),
                    |_| None,
                )
                .unwrap(),
            ),
        };
        let yes = (0..1000)
            .filter(|i| ftp.accepts("admin", format!("pw{i}").as_bytes()))
            .count();
        assert!((850..950).contains(&yes), "{yes}");
        assert_eq!(ftp.accepts("root", b"x"), ftp.accepts("root", b"x"));
    }
}
