//! The `ssh` emulator: russh with the persona's OpenSSH identification and algorithm
//! lists, seeded host keys, password/public-key capture, OpenSSH's failure delay and
//! `MaxAuthTries` (through the [`gate`]), and the emulated shell behind `shell` and `exec`
//! requests.

pub mod algorithms;
pub mod gate;
pub mod keys;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rand::Rng;
use russh::keys::HashAlg;
use russh::server::{Auth, ChannelOpenHandle, Handle, Msg, PublicKeyOffer, Session};
use russh::{Channel, ChannelId, Disconnect, MethodKind, MethodSet, Pty, SshId};

use crate::Error;
use crate::event::{Credential, Event, Outcome, SecretKind, kind};
use crate::server::{BoxFuture, Conn, Emulator, ServiceCtx};
use crate::shell::line::{self, LineEditor};
use crate::shell::{self, Mode, Shell, ShellCache};
use crate::transcript::{Recorder, Stream};
use gate::{Gate, Gated};

/// OpenSSH's `MaxAuthTries` default.
pub const MAX_AUTH_TRIES: u32 = 6;
/// OpenSSH's `MaxSessions` default: channels per connection.
pub const MAX_CHANNELS: usize = 10;
/// Default PAM failure delay (`pam_unix`'s 2 s) before sshd's own rounding (see
/// [`failure_delay`]).
pub const DEFAULT_FAILURE_DELAY_MS: u64 = 2_000;
/// sshd's disconnect text at `MaxAuthTries` (sent with reason 2, protocol error).
pub const TOO_MANY_FAILURES: &str = "Too many authentication failures";
/// sshd's `MIN_FAIL_DELAY_SECONDS`.
const MIN_FAIL_DELAY_S: f64 = 0.005;
/// sshd's `MAX_FAIL_DELAY_SECONDS`: past it, no rounding up.
const MAX_FAIL_DELAY_S: f64 = 5.0;
/// Longest exec command or no-pty input line kept.
pub const MAX_EXEC_BYTES: usize = 16 * 1024;

/// sshd's per-user failure delay (`user_specific_delay`): 5 ms plus 0–4.3 ms from a hash
/// of a per-daemon secret and the user name.
pub fn user_delay(timing_secret: &[u8; 32], user: &str) -> f64 {
    use sha2::{Digest, Sha512};
    let h = Sha512::new()
        .chain_update(timing_secret)
        .chain_update(user.as_bytes())
        .finalize();
    MIN_FAIL_DELAY_S + f64::from(u32::from_be_bytes([h[0], h[1], h[2], h[3]])) / 1e12
}

/// Linux-PAM's randomized failure delay (`_pam_compute_delay`): base × (1 + the mean of
/// three uniform draws − ½), i.e. 50 %–150 % of the base, centred on it.
pub fn pam_delay(base_ms: u64, rng: &mut impl Rng) -> Duration {
    let spread: f64 = (0..3).map(|_| rng.r#gen::<f64>()).sum::<f64>() / 3.0 - 0.5;
    Duration::from_secs_f64(base_ms as f64 / 1000.0 * (1.0 + spread))
}

/// How long a failed password takes on a real Debian sshd: PAM sleeps its delay randomized
/// the Linux-PAM way (base × (1 + mean of three uniforms − ½)), then sshd's
/// `ensure_minimum_time_since` doubles the user's delay until it exceeds the time spent
/// and sleeps the rest. The answer therefore lands on d·2ᵏ (≈1.9 s or ≈3.8 s for the 2 s
/// default), which is what clients measure against the real daemon. A PAM delay over 5 s
/// (a persona base over 3.3 s) is not rounded up, as in sshd.
pub fn failure_delay(base_ms: u64, user_delay_s: f64, rng: &mut impl Rng) -> Duration {
    let pam = pam_delay(base_ms, rng).as_secs_f64();
    if pam > MAX_FAIL_DELAY_S {
        return Duration::from_secs_f64(pam);
    }
    let mut total = user_delay_s.max(MIN_FAIL_DELAY_S);
    // Bounded: pam ≤ 5 s and total ≥ 5 ms, so at most 10 doublings.
    while total < pam {
        total *= 2.0;
    }
    Duration::from_secs_f64(total)
}

/// The emulator: one per service process.
pub struct Ssh {
    config: Arc<russh::server::Config>,
    shells: ShellCache,
    failure_delay_ms: u64,
    timing_secret: [u8; 32],
    sessions: std::sync::atomic::AtomicU32,
}

/// Builds the emulator from the persona.
///
/// # Errors
/// [`Error::Config`] when host keys cannot be derived.
pub fn build(ctx: &ServiceCtx) -> Result<Arc<dyn Emulator>, Error> {
    let persona = &ctx.persona;
    let ident = persona
        .get("ssh_version")
        .unwrap_or(persona.distro.ssh_version)
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect::<String>();
    let rhel_policy = matches!(persona.distro.slug, "rocky9" | "fedora");
    let config = russh::server::Config {
        server_id: SshId::Standard(format!("SSH-2.0-{ident}").into()),
        methods: methods(),
        // The failure delay is applied by the handler, with jitter, for passwords only.
        auth_rejection_time: Duration::ZERO,
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: keys::host_keys(persona)?,
        preferred: algorithms::preferred(&ident, rhel_policy),
        // The handler disconnects at MaxAuthTries; this is only a backstop.
        max_auth_attempts: MAX_AUTH_TRIES as usize + 2,
        inactivity_timeout: Some(ctx.limits.idle_timeout),
        keepalive_interval: None,
        nodelay: true,
        ..Default::default()
    };
    let failure_delay_ms = persona
        .get("failure_delay_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_FAILURE_DELAY_MS);
    let started = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(Arc::new(Ssh {
        config: Arc::new(config),
        shells: ShellCache::new(persona.clone(), started),
        failure_delay_ms,
        timing_secret: persona.derive("ssh-timing-secret"),
        sessions: std::sync::atomic::AtomicU32::new(0),
    }))
}

impl Emulator for Ssh {
    fn handle(self: Arc<Self>, conn: Conn, ctx: Arc<ServiceCtx>) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            // eth0 shows the address the attacker actually reached.
            let shell = self.shells.for_local(conn.local.ip());
            let handle_cell = Arc::new(OnceLock::new());
            let gate = Arc::new(Gate::default());
            let stream = Gated::new(conn.stream, gate.clone());
            let handler = SshConn {
                ctx: ctx.clone(),
                shell,
                peer: conn.peer,
                failures: 0,
                failure_delay_ms: self.failure_delay_ms,
                handle: handle_cell.clone(),
                user: None,
                channels: HashMap::new(),
                emulator: self.clone(),
                gate: gate.clone(),
            };
            let running =
                match russh::server::run_stream(self.config.clone(), stream, handler).await {
                    Ok(running) => running,
                    Err(_) => return,
                };
            let handle = running.handle();
            let guard = DisconnectOnDrop(Some(handle.clone()));
            let _ = handle_cell.set(handle.clone());
            tokio::pin!(running);
            tokio::select! {
                _ = &mut running => {}
                (delay, user) = gate.tripped() => {
                    // The request after the last allowed failure: sshd takes its failure
                    // delay, then disconnects without answering it.
                    tokio::time::sleep(delay).await;
                    if gate.holding() {
                        ctx.emit(
                            Event::from_peer(kind::REQUEST, conn.peer)
                                .field("request", "userauth")
                                .field("username", user)
                                .field("reason", "max_auth_tries"),
                        );
                        let _ = handle
                            .disconnect(
                                Disconnect::ProtocolError,
                                TOO_MANY_FAILURES.into(),
                                String::new(),
                            )
                            .await;
                    }
                    let _ = running.await;
                }
            }
            drop(guard);
        })
    }
}

/// Ends the russh session task when the harness drops the connection (session cap).
struct DisconnectOnDrop(Option<Handle>);

impl Drop for DisconnectOnDrop {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take() {
            tokio::spawn(async move {
                let _ = handle
                    .disconnect(
                        Disconnect::ByApplication,
                        "Timeout, server not responding".into(),
                        String::new(),
                    )
                    .await;
            });
        }
    }
}

struct Chan {
    pty: Option<(String, u32, u32)>,
    editor: LineEditor,
    session: Option<shell::Session>,
    recorder: Option<Recorder>,
    pending: Vec<u8>,
}

struct SshConn {
    ctx: Arc<ServiceCtx>,
    shell: Arc<Shell>,
    peer: SocketAddr,
    failures: u32,
    failure_delay_ms: u64,
    handle: Arc<OnceLock<Handle>>,
    user: Option<String>,
    channels: HashMap<ChannelId, Chan>,
    emulator: Arc<Ssh>,
    gate: Arc<Gate>,
}

/// OpenSSH's methods, listed again after every failure (russh would drop the failed one).
fn methods() -> MethodSet {
    MethodSet::from(&[MethodKind::PublicKey, MethodKind::Password][..])
}

fn reject() -> Auth {
    Auth::Reject {
        proceed_with_methods: Some(methods()),
        partial_success: false,
    }
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `\n` → `\r\n`, as a terminal in cooked output mode shows it.
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
    out
}

impl SshConn {
    /// Counts a failed attempt (`method` says how long the next one would take). One
    /// before `MaxAuthTries`, the gate holds the next request: sshd answers that one only
    /// with its disconnect.
    async fn fail(&mut self, user: &str, method: MethodKind) {
        self.failures += 1;
        if self.failures + 1 == MAX_AUTH_TRIES {
            let timing = user_delay(&self.emulator.timing_secret, user);
            let delay = match method {
                MethodKind::Password => {
                    failure_delay(self.failure_delay_ms, timing, &mut rand::thread_rng())
                }
                _ => Duration::from_secs_f64(timing),
            };
            self.gate.arm(delay, user);
        } else if self.failures >= MAX_AUTH_TRIES
            && let Some(handle) = self.handle.get()
        {
            // Backstop only: the gate keeps such a request from reaching the handler.
            let _ = handle
                .disconnect(
                    Disconnect::ProtocolError,
                    TOO_MANY_FAILURES.into(),
                    String::new(),
                )
                .await;
        }
    }

    fn send(&mut self, channel: ChannelId, session: &mut Session, text: &[u8]) {
        if text.is_empty() {
            return;
        }
        if let Some(rec) = self
            .channels
            .get_mut(&channel)
            .and_then(|c| c.recorder.as_mut())
        {
            rec.record(Stream::Output, text);
        }
        let _ = session.data(channel, text.to_vec());
    }

    fn close(&mut self, channel: ChannelId, session: &mut Session, status: i32) {
        let _ = session.exit_status_request(channel, u32::try_from(status).unwrap_or(1));
        let _ = session.eof(channel);
        let _ = session.close(channel);
        if let Some(chan) = self.channels.get_mut(&channel)
            && let Some(rec) = chan.recorder.take()
        {
            self.ctx.emit(rec.finish());
        }
    }

    fn start_session(&mut self, channel: ChannelId, mode: Mode) -> Option<shell::Session> {
        let user = self.user.clone()?;
        let n = self
            .emulator
            .sessions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut s = self
            .shell
            .session(&user, self.peer, mode, now_unix(), n % 64);
        if let Some(chan) = self.channels.get(&channel)
            && let Some((term, _, _)) = &chan.pty
        {
            s.env.insert("TERM".into(), term.clone());
        }
        Some(s)
    }

    fn start_recorder(&mut self, channel: ChannelId) {
        let Some(chan) = self.channels.get_mut(&channel) else {
            return;
        };
        let (term, w, h) = chan.pty.clone().unwrap_or_else(|| (String::new(), 0, 0));
        chan.recorder = Some(Recorder::start(
            self.ctx.persona.artifacts_dir.as_deref(),
            "ssh",
            self.peer,
            w,
            h,
            &term,
            now_unix(),
        ));
    }

    /// Runs lines typed on an interactive channel.
    async fn interactive_input(&mut self, channel: ChannelId, data: &[u8], session: &mut Session) {
        let Some(chan) = self.channels.get_mut(&channel) else {
            return;
        };
        if let Some(rec) = chan.recorder.as_mut() {
            rec.record(Stream::Input, data);
        }
        let edit = chan.editor.feed(data);
        let echo = edit.echo;
        self.send(channel, session, &echo);
        for ev in edit.lines {
            let Some(mut s) = self
                .channels
                .get_mut(&channel)
                .and_then(|c| c.session.take())
            else {
                return;
            };
            let out = match ev {
                line::Event::Line(l) => self.shell.run_line(&mut s, &l, now_unix()),
                line::Event::Interrupt => shell::Output {
                    echo: true,
                    ..Default::default()
                },
                line::Event::Eof => self.shell.run_line(&mut s, "exit", now_unix()),
            };
            for e in out.events {
                self.ctx.emit(e);
            }
            if out.delay_ms > 0 {
                tokio::time::sleep(Duration::from_millis(out.delay_ms)).await;
            }
            let mut text = crlf(&out.text);
            if let Some(status) = out.exit {
                self.send(channel, session, &text);
                self.close(channel, session, status);
                return;
            }
            if out.echo {
                text.extend_from_slice(&crlf(&self.shell.prompt(&s)));
            }
            self.send(channel, session, &text);
            if let Some(chan) = self.channels.get_mut(&channel) {
                chan.editor.echo = out.echo;
                chan.session = Some(s);
            }
        }
    }

    /// Runs newline-terminated lines on a channel without a terminal (`ssh -T`).
    fn batch_input(&mut self, channel: ChannelId, data: &[u8], session: &mut Session) {
        let Some(chan) = self.channels.get_mut(&channel) else {
            return;
        };
        if let Some(rec) = chan.recorder.as_mut() {
            rec.record(Stream::Input, data);
        }
        let room = MAX_EXEC_BYTES.saturating_sub(chan.pending.len());
        chan.pending
            .extend_from_slice(&data[..data.len().min(room)]);
        while let Some(pos) = self
            .channels
            .get(&channel)
            .and_then(|c| c.pending.iter().position(|b| *b == b'\n'))
        {
            let Some(chan) = self.channels.get_mut(&channel) else {
                return;
            };
            let line: Vec<u8> = chan.pending.drain(..=pos).collect();
            let Some(mut s) = chan.session.take() else {
                return;
            };
            let out = self
                .shell
                .run_line(&mut s, &String::from_utf8_lossy(&line), now_unix());
            for e in out.events {
                self.ctx.emit(e);
            }
            self.send(channel, session, out.text.as_bytes());
            if let Some(status) = out.exit {
                self.close(channel, session, status);
                return;
            }
            if let Some(chan) = self.channels.get_mut(&channel) {
                chan.session = Some(s);
            }
        }
        // A full buffer without a newline is dropped, as the line is too long to keep.
        if let Some(chan) = self.channels.get_mut(&channel)
            && chan.pending.len() >= MAX_EXEC_BYTES
        {
            chan.pending.clear();
        }
    }
}

impl Drop for SshConn {
    fn drop(&mut self) {
        for (_, chan) in self.channels.drain() {
            if let Some(rec) = chan.recorder {
                self.ctx.emit(rec.finish());
            }
        }
    }
}

impl russh::server::Handler for SshConn {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let ok = self.shell.host.accepts(user, password.as_bytes());
        let outcome = if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        self.ctx
            .emit(Event::from_peer(kind::AUTH_ATTEMPT, self.peer).credential(
                &Credential::password(user, password.as_bytes(), outcome).mechanism("password"),
            ));
        if ok {
            self.user = Some(user.to_owned());
            return Ok(Auth::Accept);
        }
        let delay = failure_delay(
            self.failure_delay_ms,
            user_delay(&self.emulator.timing_secret, user),
            &mut rand::thread_rng(),
        );
        tokio::time::sleep(delay).await;
        self.fail(user, MethodKind::Password).await;
        Ok(reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        let key = offer.public_key;
        let text = key.to_openssh().unwrap_or_default();
        let credential = Credential {
            principal: Some(user.to_owned()),
            kind: SecretKind::SshPublicKey,
            secret: text.into_bytes(),
            outcome: Outcome::Failure,
            mechanism: Some("publickey".into()),
        };
        self.ctx.emit(
            Event::from_peer(kind::AUTH_ATTEMPT, self.peer)
                .credential(&credential)
                .field("key_type", offer.algorithm.as_str())
                .field("fingerprint", key.fingerprint(HashAlg::Sha256).to_string()),
        );
        // sshd's minimum failure time applies to public keys too.
        tokio::time::sleep(Duration::from_secs_f64(user_delay(
            &self.emulator.timing_secret,
            user,
        )))
        .await;
        self.fail(user, MethodKind::PublicKey).await;
        Ok(reject())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if self.channels.len() >= MAX_CHANNELS || self.user.is_none() {
            return Ok(());
        }
        self.channels.insert(
            channel.id(),
            Chan {
                pty: None,
                editor: LineEditor::new(),
                session: None,
                recorder: None,
                pending: Vec::new(),
            },
        );
        reply.accept().await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&channel) {
            Some(chan) => {
                let term: String = term.chars().take(64).collect();
                chan.pty = Some((term, col_width.min(10_000), row_height.min(10_000)));
                session.channel_success(channel)?;
            }
            None => session.channel_failure(channel)?,
        }
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _name: &str,
        _value: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // sshd accepts only AcceptEnv names (LANG, LC_*) and never replies to env.
        let _ = (channel, session);
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let has_pty = self.channels.get(&channel).is_some_and(|c| c.pty.is_some());
        let mode = if has_pty {
            Mode::Interactive
        } else {
            Mode::Exec
        };
        let Some(s) = self.start_session(channel, mode) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        session.channel_success(channel)?;
        self.start_recorder(channel);
        if has_pty {
            let mut text = crlf(&self.shell.login_banner(&s));
            text.extend_from_slice(&crlf(&self.shell.prompt(&s)));
            self.send(channel, session, &text);
        }
        if let Some(chan) = self.channels.get_mut(&channel) {
            chan.session = Some(s);
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let has_pty = self.channels.get(&channel).is_some_and(|c| c.pty.is_some());
        let Some(mut s) = self.start_session(channel, Mode::Exec) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        session.channel_success(channel)?;
        self.start_recorder(channel);
        let command = String::from_utf8_lossy(&data[..data.len().min(MAX_EXEC_BYTES)]).into_owned();
        if let Some(rec) = self
            .channels
            .get_mut(&channel)
            .and_then(|c| c.recorder.as_mut())
        {
            rec.record(Stream::Input, command.as_bytes());
        }
        let out = self.shell.run_line(&mut s, &command, now_unix());
        for e in out.events {
            self.ctx.emit(e);
        }
        if out.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(out.delay_ms)).await;
        }
        let text = if has_pty {
            crlf(&out.text)
        } else {
            out.text.into_bytes()
        };
        self.send(channel, session, &text);
        let status = out.exit.unwrap_or(s.status);
        self.close(channel, session, status);
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.ctx.emit(
            Event::from_peer(kind::REQUEST, self.peer)
                .field("request", "subsystem")
                .field("name", name.chars().take(64).collect::<String>()),
        );
        // No `Subsystem sftp` line: sshd answers with a channel failure.
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        _channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        self.ctx.emit(
            Event::from_peer(kind::REQUEST, self.peer)
                .field("request", "direct-tcpip")
                .field(
                    "target",
                    format!(
                        "{}:{port_to_connect}",
                        host_to_connect.chars().take(255).collect::<String>()
                    ),
                ),
        );
        // AllowTcpForwarding no: "administratively prohibited".
        drop(reply);
        Ok(())
    }

    async fn tcpip_forward(
        &mut self,
        address: &str,
        port: &mut u32,
        _session: &mut Session,
    ) -> Result<bool, Self::Error> {
        self.ctx.emit(
            Event::from_peer(kind::REQUEST, self.peer)
                .field("request", "tcpip-forward")
                .field(
                    "target",
                    format!("{}:{port}", address.chars().take(255).collect::<String>()),
                ),
        );
        Ok(false)
    }

    async fn data(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let Some(chan) = self.channels.get(&channel) else {
            return Ok(());
        };
        if chan.session.is_none() {
            return Ok(());
        }
        if chan.pty.is_some() {
            self.interactive_input(channel, data, session).await;
        } else {
            self.batch_input(channel, data, session);
        }
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(rec) = self
            .channels
            .get_mut(&channel)
            .and_then(|c| c.recorder.as_mut())
        {
            rec.resize(col_width, row_height);
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        // End of input without a terminal: the shell exits with the last status.
        let status = self
            .channels
            .get(&channel)
            .filter(|c| c.pty.is_none())
            .and_then(|c| c.session.as_ref().map(|s| s.status));
        if let Some(status) = status {
            self.close(channel, session, status);
        }
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(chan) = self.channels.remove(&channel)
            && let Some(rec) = chan.recorder
        {
            self.ctx.emit(rec.finish());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use std::sync::Mutex;

    use crate::server::Limits;
    use crate::services::framed::testkit;

    /// A russh client that writes down how the server ends the connection.
    struct Client(Arc<Mutex<Vec<String>>>);

    impl russh::client::Handler for Client {
        type Error = russh::Error;

        async fn check_server_key(
            &mut self,
            _key: &russh::keys::PublicKeyOrCertificate,
        ) -> Result<bool, Self::Error> {
            Ok(true)
        }

        async fn disconnected(
            &mut self,
            reason: russh::client::DisconnectReason<Self::Error>,
        ) -> Result<(), Self::Error> {
            let line = match reason {
                russh::client::DisconnectReason::ReceivedDisconnect(info) => {
                    format!("DISCONNECT {} {:?}", info.reason_code as u32, info.message)
                }
                russh::client::DisconnectReason::Error(e) => format!("error {e}"),
            };
            self.0.lock().unwrap().push(line);
            Ok(())
        }
    }

    /// The answer to each of `tries` wrong passwords, then how the connection ended.
    async fn wrong_passwords(tries: usize) -> (Vec<String>, crate::event::MemorySink) {
        let (ctx, sink) = testkit::ctx(
            "ssh",
            &[("FAILURE_DELAY_MS", "0"), ("USERS", "root:toor")],
            Limits::default(),
        );
        let (stream, server) = testkit::connect(&ctx);
        let log = Arc::new(Mutex::new(Vec::new()));
        let config = Arc::new(russh::client::Config::default());
        let mut client = russh::client::connect_stream(config, stream, Client(log.clone()))
            .await
            .unwrap();
        for i in 1..=tries {
            let line = match client.authenticate_password("root", format!("pw{i}")).await {
                Ok(russh::client::AuthResult::Failure {
                    remaining_methods, ..
                }) if !remaining_methods.is_empty() => {
                    let names: Vec<&str> = remaining_methods.iter().map(<&str>::from).collect();
                    format!("USERAUTH_FAILURE {}", names.join(","))
                }
                Ok(russh::client::AuthResult::Success) => "USERAUTH_SUCCESS".to_owned(),
                // No answer: the session ended.
                Ok(_) | Err(_) => "no answer".to_owned(),
            };
            log.lock().unwrap().push(line);
        }
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .unwrap()
            .unwrap();
        let _ = client.await;
        let transcript = log.lock().unwrap().clone();
        (transcript, sink)
    }

    #[tokio::test]
    async fn sixth_wrong_password_gets_only_sshds_disconnect() {
        let (transcript, sink) = wrong_passwords(6).await;
        let mut expected = vec!["USERAUTH_FAILURE publickey,password".to_owned(); 5];
        expected.push("DISCONNECT 2 \"Too many authentication failures\"".to_owned());
        expected.push("no answer".to_owned());
        assert_eq!(transcript, expected);
        // All six were seen: five with their password, the last (unread) as a request.
        let attempts = sink.of_kind(kind::AUTH_ATTEMPT);
        let passwords: Vec<&str> = attempts
            .iter()
            .map(|e| e.get("secret_printable").unwrap())
            .collect();
        assert_eq!(passwords, ["pw1", "pw2", "pw3", "pw4", "pw5"]);
        let requests = sink.of_kind(kind::REQUEST);
        assert_eq!(requests.len(), 1, "{requests:?}");
        assert_eq!(requests[0].get("request"), Some("userauth"));
        assert_eq!(requests[0].get("username"), Some("root"));
        assert_eq!(requests[0].get("reason"), Some("max_auth_tries"));
    }

    #[tokio::test]
    async fn five_wrong_passwords_leave_the_connection_open() {
        let (ctx, sink) = testkit::ctx("ssh", &[("FAILURE_DELAY_MS", "0")], Limits::default());
        let (stream, _server) = testkit::connect(&ctx);
        let log = Arc::new(Mutex::new(Vec::new()));
        let config = Arc::new(russh::client::Config::default());
        let mut client = russh::client::connect_stream(config, stream, Client(log.clone()))
            .await
            .unwrap();
        for i in 1..=5 {
            let r = client
                .authenticate_password("root", format!("pw{i}"))
                .await
                .unwrap();
            assert!(!r.success());
        }
        // Nothing more happens until the client sends a sixth request.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(log.lock().unwrap().is_empty(), "{:?}", log.lock().unwrap());
        assert_eq!(sink.of_kind(kind::AUTH_ATTEMPT).len(), 5);
        assert!(sink.of_kind(kind::REQUEST).is_empty());
    }

    #[test]
    fn failure_delays_land_on_doublings_of_the_user_delay() {
        let secret = [7u8; 32];
        let d = user_delay(&secret, "root");
        assert!((0.005..0.0093).contains(&d), "{d}");
        assert_ne!(d, user_delay(&secret, "admin"));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..400 {
            let t = failure_delay(2_000, d, &mut rng).as_secs_f64();
            let k = (t / d).log2();
            assert!((k - k.round()).abs() < 1e-9, "{t} is not d·2^k");
            assert!((1.0 - 1e-9..=3.0 * 2.0).contains(&t), "{t}");
            seen.insert(k.round() as i32);
        }
        // Both the short and the long answer of a real sshd occur.
        assert_eq!(seen.len(), 2, "{seen:?}");
        // No PAM delay: only sshd's few milliseconds.
        assert!(failure_delay(0, d, &mut rng).as_secs_f64() < 0.01);
        // Past sshd's 5 s ceiling the PAM delay stands as it is.
        for _ in 0..100 {
            let t = failure_delay(8_000, d, &mut rng).as_secs_f64();
            let k = (t / d).log2();
            assert!(t > 5.0 || (k - k.round()).abs() < 1e-9, "{t}");
            assert!((4.0..=12.0).contains(&t), "{t}");
        }
    }
}
