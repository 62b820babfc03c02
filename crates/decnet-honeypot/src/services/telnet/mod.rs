//! The `telnet` emulator: busybox telnetd's negotiation, a `login:`/`Password:` dialogue
//! with credential capture and the real failure delay, then the emulated shell.

use std::sync::Arc;
use std::time::Duration;

use decnet_wire::telnet::{self, Telnet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Error;
use crate::event::{Credential, Event, Outcome, kind};
use crate::server::{BoxFuture, Conn, Emulator, ServiceCtx};
#[cfg(test)]
use crate::server::{Limits, serve_conn};
use crate::shell::host::Family;
use crate::shell::line::{self, LineEditor};
use crate::shell::{Mode, Shell, ShellCache};
use crate::transcript::{Recorder, Stream};

/// Login attempts per connection before `login` gives up (busybox/util-linux: 3).
pub const MAX_LOGIN_TRIES: u32 = 3;
/// `login`'s delay after a wrong password (`FAIL_DELAY` in Debian's login.defs), which
/// Linux-PAM randomizes between half and one and a half times.
pub const FAILURE_DELAY_MS: u64 = 3_000;
/// Longest wait for the user name or password (util-linux `LOGIN_TIMEOUT`).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Read buffer size.
const READ_CHUNK: usize = 2048;

/// The emulator.
pub struct TelnetService {
    shells: ShellCache,
    banner: String,
    failure_delay_ms: u64,
    sessions: std::sync::atomic::AtomicU32,
}

/// Builds the emulator from the persona.
///
/// # Errors
/// Never fails today; the signature matches the registry's.
pub fn build(ctx: &ServiceCtx) -> Result<Arc<dyn Emulator>, Error> {
    let started = time::OffsetDateTime::now_utc().unix_timestamp();
    let shells = ShellCache::new(ctx.persona.clone(), started);
    let banner = match ctx.persona.get("banner") {
        Some(b) => format!("{}\n", b.trim_end()),
        None => issue_net(shells.base()),
    };
    Ok(Arc::new(TelnetService {
        shells,
        banner,
        failure_delay_ms: FAILURE_DELAY_MS,
        sessions: std::sync::atomic::AtomicU32::new(0),
    }))
}

/// `/etc/issue.net` as busybox telnetd prints it (escapes expanded).
fn issue_net(shell: &Shell) -> String {
    let h = &shell.host;
    match h.family {
        Family::Debian if h.distro.slug == "kali" => "Kali GNU/Linux Rolling\n".into(),
        Family::Debian => "Debian GNU/Linux 12\n".into(),
        Family::Ubuntu => format!("{}\n", h.distro.display),
        Family::Rhel | Family::Centos7 => format!(
            "{}\nKernel {} on an x86_64\n",
            h.distro.display, h.kernel.release
        ),
        Family::Alpine => format!(
            "Welcome to Alpine Linux 3.19\nKernel {} on an x86_64 (/dev/pts/0)\n",
            h.kernel.release
        ),
        Family::Arch => format!("Arch Linux {} (pts/0)\n", h.kernel.release),
    }
}

fn crlf(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16);
    let mut prev = 0u8;
    for &b in text.as_bytes() {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    Telnet::escape(&out)
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// One connection: the telnet state, the line editor and the socket.
struct Session<'a> {
    conn: &'a mut Conn,
    telnet: Telnet,
    editor: LineEditor,
    recorder: Option<Recorder>,
    width: u16,
    height: u16,
    term: String,
    buf: Vec<u8>,
}

enum Input {
    Line(String),
    Interrupt,
    Eof,
    Closed,
}

impl Session<'_> {
    async fn write(&mut self, bytes: &[u8]) -> bool {
        if let Some(rec) = self.recorder.as_mut() {
            rec.record(Stream::Output, bytes);
        }
        self.conn.stream.write_all(bytes).await.is_ok()
    }

    /// Reads until the line editor completes something, with `timeout` per read.
    async fn next_input(&mut self, timeout: Duration, pending: &mut Vec<line::Event>) -> Input {
        loop {
            if !pending.is_empty() {
                return match pending.remove(0) {
                    line::Event::Line(l) => Input::Line(l),
                    line::Event::Interrupt => Input::Interrupt,
                    line::Event::Eof => Input::Eof,
                };
            }
            self.buf.resize(READ_CHUNK, 0);
            let n = match tokio::time::timeout(timeout, self.conn.stream.read(&mut self.buf)).await
            {
                Ok(Ok(n)) if n > 0 => n,
                _ => return Input::Closed,
            };
            let feed = self.telnet.feed(&self.buf[..n]);
            if !feed.reply.is_empty() && self.conn.stream.write_all(&feed.reply).await.is_err() {
                return Input::Closed;
            }
            for ev in feed.events {
                match ev {
                    telnet::Event::WindowSize(w, h) => {
                        self.width = w;
                        self.height = h;
                        if let Some(rec) = self.recorder.as_mut() {
                            rec.resize(u32::from(w), u32::from(h));
                        }
                    }
                    telnet::Event::TerminalType(t) => self.term = t,
                    telnet::Event::Interrupt => pending.push(line::Event::Interrupt),
                    telnet::Event::AreYouThere
                        if self.conn.stream.write_all(b"\r\n[Yes]\r\n").await.is_err() =>
                    {
                        return Input::Closed;
                    }
                    _ => {}
                }
            }
            if let Some(rec) = self.recorder.as_mut() {
                rec.record(Stream::Input, &feed.data);
            }
            let edit = self.editor.feed(&feed.data);
            if !edit.echo.is_empty() && !self.write(&Telnet::escape(&edit.echo)).await {
                return Input::Closed;
            }
            pending.extend(edit.lines);
        }
    }
}

impl Emulator for TelnetService {
    fn handle(self: Arc<Self>, mut conn: Conn, ctx: Arc<ServiceCtx>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let peer = conn.peer;
            // eth0 shows the address the attacker actually reached.
            let shell = self.shells.for_local(conn.local.ip());
            let mut telnet = Telnet::new();
            let opening = telnet.opening();
            if conn.stream.write_all(&opening).await.is_err() {
                return;
            }
            let mut s = Session {
                conn: &mut conn,
                telnet,
                editor: LineEditor::new(),
                recorder: None,
                width: 80,
                height: 24,
                term: "vt100".into(),
                buf: Vec::new(),
            };
            let mut pending = Vec::new();
            let banner = crlf(&format!("{}\n", self.banner));
            if !s.write(&banner).await {
                return;
            }
            let mut user = None;
            for attempt in 0..MAX_LOGIN_TRIES {
                let prompt = crlf(&format!("{} login: ", shell.host.short));
                if !s.write(&prompt).await {
                    return;
                }
                s.editor.echo = true;
                let name = match s.next_input(LOGIN_TIMEOUT, &mut pending).await {
                    Input::Line(l) => l.trim().to_owned(),
                    Input::Interrupt => continue,
                    Input::Eof | Input::Closed => return,
                };
                if name.is_empty() {
                    continue;
                }
                if !s.write(b"Password: ").await {
                    return;
                }
                s.editor.echo = false;
                let password = match s.next_input(LOGIN_TIMEOUT, &mut pending).await {
                    Input::Line(l) => l,
                    Input::Interrupt => String::new(),
                    Input::Eof | Input::Closed => return,
                };
                s.editor.echo = true;
                let ok = shell.host.accepts(&name, password.as_bytes());
                ctx.emit(
                    Event::from_peer(kind::AUTH_ATTEMPT, peer).credential(
                        &Credential::password(
                            &name,
                            password.as_bytes(),
                            if ok {
                                Outcome::Success
                            } else {
                                Outcome::Failure
                            },
                        )
                        .mechanism("password"),
                    ),
                );
                if ok {
                    user = Some(name);
                    break;
                }
                let delay =
                    crate::services::ssh::pam_delay(self.failure_delay_ms, &mut rand::thread_rng());
                tokio::time::sleep(delay).await;
                if !s.write(b"Login incorrect\r\n\r\n").await {
                    return;
                }
                if attempt + 1 == MAX_LOGIN_TRIES {
                    return;
                }
            }
            let Some(user) = user else {
                return;
            };
            let n = self
                .sessions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut session = shell.session(&user, peer, Mode::Interactive, now_unix(), n % 64);
            session.parent_cmd = "/bin/login -p --".into();
            session.env.insert("TERM".into(), s.term.to_lowercase());
            s.recorder = Some(Recorder::start(
                ctx.persona.artifacts_dir.as_deref(),
                "telnet",
                peer,
                u32::from(s.width),
                u32::from(s.height),
                &s.term,
                now_unix(),
            ));
            let mut text = crlf(&shell.login_banner(&session));
            text.extend_from_slice(&crlf(&shell.prompt(&session)));
            let mut alive = s.write(&text).await;
            while alive {
                let out = match s.next_input(ctx.limits.idle_timeout, &mut pending).await {
                    Input::Line(l) => shell.run_line(&mut session, &l, now_unix()),
                    Input::Interrupt => crate::shell::Output {
                        echo: true,
                        ..Default::default()
                    },
                    Input::Eof => shell.run_line(&mut session, "exit", now_unix()),
                    Input::Closed => break,
                };
                for e in out.events {
                    ctx.emit(e);
                }
                if out.delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(out.delay_ms)).await;
                }
                let mut text = crlf(&out.text);
                if out.exit.is_some() {
                    let _ = s.write(&text).await;
                    break;
                }
                if out.echo {
                    text.extend_from_slice(&crlf(&shell.prompt(&session)));
                }
                s.editor.echo = out.echo;
                alive = s.write(&text).await;
            }
            if let Some(rec) = s.recorder.take() {
                ctx.emit(rec.finish());
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::MemorySink;
    use crate::persona::Persona;
    use decnet_wire::telnet::{DO, IAC, WILL, WONT};

    async fn read_until(client: &mut tokio::io::DuplexStream, seen: &mut Vec<u8>, want: &[u8]) {
        let mut buf = [0u8; 1024];
        while !seen.windows(want.len()).any(|w| w == want) {
            let n = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
                .await
                .expect("timed out")
                .unwrap();
            assert!(
                n > 0,
                "closed while waiting for {:?}: {}",
                String::from_utf8_lossy(want),
                String::from_utf8_lossy(seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    }

    #[tokio::test]
    async fn login_dialogue_and_shell_over_duplex() {
        let spec = decnet_core::catalog::service("telnet").unwrap();
        let persona = Persona::from_json(
            spec,
            &serde_json::json!({"distro": "rocky9", "hostname": "cedar12.localdomain", "users": "root:toor", "seed": "33".repeat(32)}),
        )
        .unwrap();
        let sink = MemorySink::new();
        let ctx = Arc::new(ServiceCtx {
            service: spec,
            persona: Arc::new(persona),
            events: Arc::new(sink.clone()),
            limits: Limits::default(),
        });
        let service = Arc::new(TelnetService {
            shells: ShellCache::new(ctx.persona.clone(), 1_718_000_000),
            banner: "Authorized uses only.\n".into(),
            failure_delay_ms: 0,
            sessions: std::sync::atomic::AtomicU32::new(0),
        });
        let (mut client, server) = tokio::io::duplex(4096);
        let conn = Conn {
            stream: Box::new(server),
            peer: "198.51.100.20:40000".parse().unwrap(),
            local: "127.0.0.1:23".parse().unwrap(),
        };
        let task = tokio::spawn(serve_conn(service, ctx, conn));
        let mut seen = Vec::new();
        read_until(&mut client, &mut seen, b"login: ").await;
        assert!(seen.starts_with(&[IAC, DO, 1, IAC, DO, 31, IAC, WILL, 1, IAC, WILL, 3]));
        assert!(seen.windows(21).any(|w| w == b"Authorized uses only."));
        assert!(
            seen.ends_with(b"\r\ncedar12 login: "),
            "{}",
            String::from_utf8_lossy(&seen)
        );
        client
            .write_all(&[IAC, WONT, 1, IAC, DO, 1, IAC, DO, 3])
            .await
            .unwrap();
        client.write_all(b"root\r\n").await.unwrap();
        read_until(&mut client, &mut seen, b"Password: ").await;
        client.write_all(b"nope\r\n").await.unwrap();
        read_until(
            &mut client,
            &mut seen,
            b"Login incorrect\r\n\r\ncedar12 login: ",
        )
        .await;
        // The password is not echoed.
        assert!(!seen.windows(4).any(|w| w == b"nope"));
        client.write_all(b"root\r\ntoor\r\n").await.unwrap();
        read_until(&mut client, &mut seen, b"[root@cedar12 ~]# ").await;
        client.write_all(b"id\r\n").await.unwrap();
        read_until(
            &mut client,
            &mut seen,
            b"uid=0(root) gid=0(root) groups=0(root) context=",
        )
        .await;
        client.write_all(b"exit\r\n").await.unwrap();
        read_until(&mut client, &mut seen, b"logout\r\n").await;
        task.await.unwrap();
        let auth = sink.of_kind(kind::AUTH_ATTEMPT);
        assert_eq!(auth.len(), 2);
        assert_eq!(auth[0].get("secret_printable"), Some("nope"));
        assert_eq!(auth[0].get("outcome"), Some("failure"));
        assert_eq!(auth[1].get("outcome"), Some("success"));
        assert_eq!(auth[1].get("src_ip"), Some("198.51.100.20"));
        let cmds: Vec<_> = sink
            .of_kind(kind::COMMAND)
            .iter()
            .map(|e| e.get("cmd").unwrap().to_owned())
            .collect();
        assert_eq!(cmds, ["id", "exit"]);
        assert_eq!(sink.of_kind(kind::SESSION_RECORDED).len(), 1);
    }
}
