//! The emulated shell: a pure function from (persona facts, session state, typed line) to
//! (output, new state, events). Nothing typed is executed, fetched or used as a host
//! path: every command is answered from [`host::Host`] and the fake [`fs::Fs`].
//!
//! Read in this order: [`Shell`] (built once per service from the persona), [`Session`]
//! (one per login), [`Shell::run_line`] and its [`Output`]; [`line::LineEditor`] turns raw
//! terminal bytes into lines for the ssh and telnet front ends.

pub mod cmds;
pub mod fs;
pub mod host;
pub mod line;
pub mod parse;

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use crate::event::{Credential, Event, Outcome, kind};
use crate::persona::Persona;
use fs::Fs;
use host::{Account, Family, Host, ShellKind};
use parse::{Join, Vars};

/// Longest line run; the rest is cut.
pub const MAX_INPUT_LINE: usize = line::MAX_LINE_BYTES;
/// Lines kept by `history`.
pub const MAX_HISTORY: usize = 500;
/// Files a session may create (with `>` or `tee`).
pub const MAX_OVERLAY_FILES: usize = 64;
/// Bytes a session may store in created files, in total.
pub const MAX_OVERLAY_BYTES: usize = 256 * 1024;
/// Deepest `bash -c` / `sh -c` nesting.
pub const MAX_DEPTH: usize = 4;
/// Longest output of one line (bigger outputs are cut).
pub const MAX_OUTPUT: usize = 1024 * 1024;
/// Longest delay one line may ask the front end for (`sleep`, sudo failures).
pub const MAX_DELAY_MS: u64 = 10_000;

/// The shell of one decky: facts and filesystem, shared by every session.
#[derive(Debug, Clone)]
pub struct Shell {
    /// Facts shown by commands.
    pub host: Host,
    /// The fake filesystem.
    pub fs: Fs,
}

/// One shell per address the decky answers on (eth0 shows the address the attacker
/// reached), built on first use and kept: a decky has one or two addresses.
pub struct ShellCache {
    base: Arc<Shell>,
    persona: Arc<Persona>,
    by_ip: Mutex<Vec<(IpAddr, Arc<Shell>)>>,
}

/// Most addresses a cache keeps shells for; further ones share the base shell.
pub const MAX_CACHED_ADDRESSES: usize = 8;

impl ShellCache {
    /// A cache around the shell of `persona` started at `started_unix`.
    pub fn new(persona: Arc<Persona>, started_unix: i64) -> ShellCache {
        ShellCache {
            base: Arc::new(Shell::new(&persona, None, started_unix)),
            persona,
            by_ip: Mutex::new(Vec::new()),
        }
    }

    /// The shell without a known local address (accounts and facts are the same).
    pub fn base(&self) -> &Arc<Shell> {
        &self.base
    }

    /// The shell for connections to `local`.
    pub fn for_local(&self, local: IpAddr) -> Arc<Shell> {
        if local.is_loopback() || local.is_unspecified() {
            return self.base.clone();
        }
        let Ok(mut cached) = self.by_ip.lock() else {
            return self.base.clone();
        };
        if let Some((_, shell)) = cached.iter().find(|(ip, _)| *ip == local) {
            return shell.clone();
        }
        if cached.len() >= MAX_CACHED_ADDRESSES {
            return self.base.clone();
        }
        let shell = Arc::new(Shell::new(
            &self.persona,
            Some(local),
            self.base.host.started_unix,
        ));
        cached.push((local, shell.clone()));
        shell
    }
}

/// How the shell was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An interactive login shell on a terminal.
    Interactive,
    /// `ssh host 'cmd'`: `bash -c` without a terminal.
    Exec,
}

/// A password prompt in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// `sudo` asked for the user's password.
    Sudo { rest: String, tries: u8 },
    /// `su` asked for the target's password.
    Su { target: String },
}

/// The state of one login.
#[derive(Debug, Clone)]
pub struct Session {
    /// Current effective account.
    pub user: Account,
    /// Accounts left by `su`/`sudo -i` (restored by `exit`).
    pub stack: Vec<(Account, String)>,
    /// Working directory (logical, as bash keeps it).
    pub cwd: String,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Typed lines.
    pub history: VecDeque<String>,
    /// `$?`.
    pub status: i32,
    /// Interactive or exec.
    pub mode: Mode,
    /// The attacker's address (stamped on every event).
    pub peer: SocketAddr,
    /// PID of the login shell.
    pub pid: u32,
    /// Next PID handed to a command.
    pub next_pid: u32,
    /// Terminal name (`pts/0`).
    pub tty: String,
    /// The process that started the shell, as `ps` shows it (`sshd: root@pts/0`).
    pub parent_cmd: String,
    /// Unix time of the login.
    pub login_unix: i64,
    /// Set once the shell exited, with its status.
    pub exited: Option<i32>,
    pending: Option<Pending>,
    overlay: BTreeMap<String, String>,
    overlay_bytes: usize,
}

/// What one line produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    /// Text for the terminal (`\n` line ends; the front end converts for a tty).
    pub text: String,
    /// Events to emit (already carrying the peer's address).
    pub events: Vec<Event>,
    /// Whether the next line is echoed (false while a password is read).
    pub echo: bool,
    /// The shell exited with this status.
    pub exit: Option<i32>,
    /// How long the front end should wait before showing the output (real tools'
    /// delays: `sleep`, a failed `sudo` password).
    pub delay_ms: u64,
}

/// stdout, stderr, status of one simple command.
pub(crate) struct Ran {
    pub out: String,
    pub err: String,
    pub status: i32,
}

impl Ran {
    pub(crate) fn ok(out: impl Into<String>) -> Ran {
        Ran {
            out: out.into(),
            err: String::new(),
            status: 0,
        }
    }
    pub(crate) fn fail(err: impl Into<String>, status: i32) -> Ran {
        Ran {
            out: String::new(),
            err: err.into(),
            status,
        }
    }
}

/// Per-line execution context.
pub(crate) struct Ctx<'a> {
    pub now: i64,
    pub events: &'a mut Vec<Event>,
    pub delay_ms: u64,
    pub depth: usize,
}

impl Shell {
    /// The shell of `persona`'s decky (see [`Host::new`] for `local` and `started_unix`).
    pub fn new(persona: &Persona, local: Option<IpAddr>, started_unix: i64) -> Shell {
        let host = Host::new(persona, local, started_unix);
        let fs = Fs::build(&host);
        Shell { host, fs }
    }

    /// A session of `user` (who must exist; unknown users get a fresh uid-1000 account so
    /// the shell never fails) from `peer`.
    pub fn session(
        &self,
        user: &str,
        peer: SocketAddr,
        mode: Mode,
        now: i64,
        session_no: u32,
    ) -> Session {
        let account = self.host.account(user).cloned().unwrap_or_else(|| Account {
            name: user.to_owned(),
            uid: 1000,
            gid: 1000,
            gecos: String::new(),
            home: format!("/home/{user}"),
            shell: "/bin/bash".into(),
            password: None,
            groups: Vec::new(),
        });
        let pid = 1000 + (self.host.detail("session-pid") % 2000) as u32 + session_no * 7;
        let tty = format!("pts/{}", session_no % 8);
        let mut s = Session {
            cwd: account.home.clone(),
            env: BTreeMap::new(),
            user: account.clone(),
            stack: Vec::new(),
            history: VecDeque::new(),
            status: 0,
            mode,
            peer,
            pid,
            next_pid: pid + 1 + (self.host.detail("pid-gap") % 40) as u32,
            parent_cmd: format!("sshd: {}@{tty}", account.name),
            tty,
            login_unix: now,
            exited: None,
            pending: None,
            overlay: BTreeMap::new(),
            overlay_bytes: 0,
        };
        self.reset_env(&mut s);
        s
    }

    fn reset_env(&self, s: &mut Session) {
        let u = &s.user;
        let path = if u.uid == 0 {
            match self.host.family {
                Family::Alpine => "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                Family::Rhel | Family::Centos7 => {
                    "/root/.local/bin:/root/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
                }
                _ => "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            }
        } else {
            "/usr/local/bin:/usr/bin:/bin:/usr/games"
        };
        let ssh_client = format!("{} {} 22", s.peer.ip(), s.peer.port());
        let pairs = [
            ("HOME", u.home.clone()),
            ("LANG", "C.UTF-8".to_owned()),
            ("LOGNAME", u.name.clone()),
            ("MAIL", format!("/var/mail/{}", u.name)),
            ("PATH", path.to_owned()),
            ("PWD", s.cwd.clone()),
            ("SHELL", u.shell.clone()),
            ("SHLVL", "1".to_owned()),
            ("SSH_CLIENT", ssh_client),
            ("TERM", "xterm-256color".to_owned()),
            ("USER", u.name.clone()),
        ];
        s.env = pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    }

    /// The prompt for the session's current user and directory.
    pub fn prompt(&self, s: &Session) -> String {
        let sign = if s.user.uid == 0 { '#' } else { '$' };
        let tilde = self.tilde(s);
        let short = &self.host.short;
        match (self.host.shell, self.host.distro.prompt) {
            (ShellKind::Zsh, _) => format!("┌──({}㉿{short})-[{tilde}]\n└─{sign} ", s.user.name),
            (ShellKind::Ash, _) => format!("{short}:{tilde}{sign} "),
            (_, decnet_core::catalog::PromptStyle::Rhel) => {
                let last = if tilde == "~" || tilde == "/" {
                    tilde.clone()
                } else {
                    fs::base(&tilde).to_owned()
                };
                format!("[{}@{short} {last}]{sign} ", s.user.name)
            }
            _ => format!("{}@{short}:{tilde}{sign} ", s.user.name),
        }
    }

    fn tilde(&self, s: &Session) -> String {
        let home = &s.user.home;
        if &s.cwd == home {
            "~".to_owned()
        } else if let Some(rest) = s.cwd.strip_prefix(&format!("{home}/")) {
            format!("~/{rest}")
        } else {
            s.cwd.clone()
        }
    }

    /// What the login prints before the first prompt (motd and last login).
    pub fn login_banner(&self, s: &Session) -> String {
        let h = &self.host;
        let last_from = {
            let d = h.detail("last-login-from");
            format!(
                "10.{}.{}.{}",
                (d >> 8) % 255,
                (d >> 16) % 255,
                2 + (d >> 24) % 250
            )
        };
        let last_at = s.login_unix - 3_600 - (h.detail("last-login-at") % (5 * 86_400)) as i64;
        let last = format!(
            "Last login: {} from {last_from}\n",
            cmds::fmt_ctime(last_at)
        );
        match h.distro.slug {
            "debian" | "kali" => {
                let name = if h.distro.slug == "kali" { "Kali" } else { "Debian" };
                format!(
                    "Linux {} {} {} x86_64\n\nThe programs included with the {name} GNU/Linux system are free software;\nthe exact distribution terms for each program are described in the\nindividual files in /usr/share/doc/*/copyright.\n\n{name} GNU/Linux comes with ABSOLUTELY NO WARRANTY, to the extent\npermitted by applicable law.\n{last}",
                    h.short, h.kernel.release, h.kernel.version
                )
            }
            "ubuntu22" | "ubuntu20" => format!(
                "Welcome to {} (GNU/Linux {} x86_64)\n\n * Documentation:  https://help.ubuntu.com\n * Management:     https://landscape.canonical.com\n * Support:        https://ubuntu.com/pro\n\n{last}",
                h.distro.display, h.kernel.release
            ),
            "rocky9" => format!("Activate the web console with: systemctl enable --now cockpit.socket\n\n{last}"),
            "alpine" => "Welcome to Alpine!\n\nThe Alpine Wiki contains a large amount of how-to guides and general\ninformation about administrating Alpine systems.\nSee <https://wiki.alpinelinux.org/>.\n\nYou can setup the system with the command: setup-alpine\n\nYou may change this message by editing /etc/motd.\n\n".to_owned(),
            _ => last,
        }
    }

    /// The prefix of the shell's own error messages (`-bash: `, `bash: line 1: `, ...).
    pub(crate) fn err_prefix(&self, s: &Session) -> String {
        match (self.host.shell, s.mode) {
            (ShellKind::Ash, Mode::Interactive) => "-ash: ".into(),
            (ShellKind::Ash, Mode::Exec) => "ash: ".into(),
            (ShellKind::Zsh, _) => "zsh: ".into(),
            (ShellKind::Bash, Mode::Interactive) => "-bash: ".into(),
            (ShellKind::Bash, Mode::Exec) if self.host.family == Family::Centos7 => "bash: ".into(),
            (ShellKind::Bash, Mode::Exec) => "bash: line 1: ".into(),
        }
    }

    /// The message for a command that does not exist.
    pub(crate) fn not_found(&self, s: &Session, cmd: &str) -> String {
        match self.host.shell {
            ShellKind::Ash => format!("{}{cmd}: not found\n", self.err_prefix(s)),
            ShellKind::Zsh => format!("zsh: command not found: {cmd}\n"),
            ShellKind::Bash => format!("{}{cmd}: command not found\n", self.err_prefix(s)),
        }
    }

    /// Runs one typed line at unix time `now`.
    pub fn run_line(&self, s: &mut Session, line: &str, now: i64) -> Output {
        let mut line = line.trim_end_matches(['\r', '\n']).to_owned();
        if line.len() > MAX_INPUT_LINE {
            let mut cut = MAX_INPUT_LINE;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            line.truncate(cut);
        }
        let mut events = Vec::new();
        if let Some(pending) = s.pending.take() {
            return self.answer_prompt(s, pending, &line, now);
        }
        let trimmed = line.trim();
        if !trimmed.is_empty() {
            events.push(
                Event::from_peer(kind::COMMAND, s.peer)
                    .field("cmd", trimmed)
                    .field("cwd", s.cwd.clone())
                    .field("user", s.user.name.clone()),
            );
            if s.history.len() >= MAX_HISTORY {
                s.history.pop_front();
            }
            s.history.push_back(trimmed.to_owned());
        }
        let mut ctx = Ctx {
            now,
            events: &mut events,
            delay_ms: 0,
            depth: 0,
        };
        let text = self.run_text(s, &line, &mut ctx);
        let delay_ms = ctx.delay_ms.min(MAX_DELAY_MS);
        Output {
            text,
            events,
            echo: s.pending.is_none(),
            exit: s.exited,
            delay_ms,
        }
    }

    /// Runs a command string (a line, or the argument of `bash -c`), returning what the
    /// terminal shows.
    pub(crate) fn run_text(&self, s: &mut Session, line: &str, ctx: &mut Ctx<'_>) -> String {
        let home = s.user.home.clone();
        let vars = Vars {
            env: &s.env,
            status: s.status,
            home: &home,
            pid: s.pid,
        };
        let list = match parse::parse(line, &vars) {
            Ok(list) => list,
            Err(token) => {
                s.status = 2;
                return match self.host.shell {
                    ShellKind::Ash => format!(
                        "{}syntax error: unexpected \"{token}\"\n",
                        self.err_prefix(s)
                    ),
                    ShellKind::Zsh => format!("zsh: parse error near `{token}'\n"),
                    ShellKind::Bash => format!(
                        "{}syntax error near unexpected token `{token}'\n",
                        self.err_prefix(s)
                    ),
                };
            }
        };
        let mut text = String::new();
        for (join, pipeline) in list {
            if s.exited.is_some() || s.pending.is_some() {
                break;
            }
            match join {
                Join::And if s.status != 0 => continue,
                Join::Or if s.status == 0 => continue,
                _ => {}
            }
            let mut stdin: Option<String> = None;
            let n = pipeline.len();
            for (i, cmd) in pipeline.into_iter().enumerate() {
                let input = match &cmd.stdin {
                    Some(path) => Some(self.read_for_redirect(s, path)),
                    None => stdin.take(),
                };
                let ran = if cmd.words.is_empty() {
                    Ran::ok("")
                } else {
                    cmds::run(self, s, &cmd.words, input, ctx)
                };
                s.status = ran.status;
                let (mut out, mut err) = (ran.out, ran.err);
                for r in &cmd.redirects {
                    match (r.fd, r.target.as_deref()) {
                        (2, None) => out.push_str(&std::mem::take(&mut err)),
                        (fd, Some(target)) => {
                            let data = if fd == 2 {
                                std::mem::take(&mut err)
                            } else {
                                std::mem::take(&mut out)
                            };
                            if let Err(e) = self.write_file(s, target, &data, r.append) {
                                text.push_str(&format!("{}{target}: {e}\n", self.err_prefix(s)));
                                s.status = 1;
                            }
                        }
                        _ => {}
                    }
                }
                push_capped(&mut text, &err);
                if i + 1 == n {
                    push_capped(&mut text, &out);
                } else {
                    stdin = Some(out);
                }
                if s.exited.is_some() || s.pending.is_some() {
                    break;
                }
            }
        }
        text
    }

    fn read_for_redirect(&self, s: &Session, path: &str) -> String {
        let abs = fs::normalize(&s.cwd, &s.user.home, path);
        if let Some(c) = s.overlay.get(&abs) {
            return c.clone();
        }
        cmds::file_content(self, s, &abs).unwrap_or_default()
    }

    /// Stores `data` in the session's overlay (never on the host).
    pub(crate) fn write_file(
        &self,
        s: &mut Session,
        target: &str,
        data: &str,
        append: bool,
    ) -> Result<(), &'static str> {
        let abs = fs::normalize(&s.cwd, &s.user.home, target);
        if abs == "/dev/null" || abs.starts_with("/dev/") {
            return Ok(());
        }
        let parent = fs::parent(&abs);
        match self.fs.resolve(parent) {
            Some((_, node)) if node.kind == fs::Kind::Dir => {
                if s.user.uid != 0 && node.mode & 0o002 == 0 && node.owner != s.user.name {
                    return Err("Permission denied");
                }
            }
            Some(_) => return Err("Not a directory"),
            None => return Err("No such file or directory"),
        }
        if let Some(node) = self.fs.get(&abs) {
            if node.kind == fs::Kind::Dir {
                return Err("Is a directory");
            }
            if s.user.uid != 0 && node.owner != s.user.name {
                return Err("Permission denied");
            }
        }
        let old = s.overlay.get(&abs).map_or(0, String::len);
        let new_len = if append { old + data.len() } else { data.len() };
        if (!s.overlay.contains_key(&abs) && s.overlay.len() >= MAX_OVERLAY_FILES)
            || s.overlay_bytes - old + new_len > MAX_OVERLAY_BYTES
        {
            return Err("No space left on device");
        }
        s.overlay_bytes = s.overlay_bytes - old + new_len;
        let entry = s.overlay.entry(abs).or_default();
        if !append {
            entry.clear();
        }
        entry.push_str(data);
        Ok(())
    }

    /// A file the session created, if any.
    pub(crate) fn overlay_file<'a>(&self, s: &'a Session, abs: &str) -> Option<&'a String> {
        s.overlay.get(abs)
    }

    /// Names the session created directly inside `dir`.
    pub(crate) fn overlay_children<'a>(&self, s: &'a Session, dir: &str) -> Vec<(&'a str, usize)> {
        s.overlay
            .iter()
            .filter(|(p, _)| fs::parent(p) == dir)
            .map(|(p, c)| (fs::base(p), c.len()))
            .collect()
    }

    pub(crate) fn start_sudo(&self, s: &mut Session, rest: String) -> Ran {
        s.pending = Some(Pending::Sudo { rest, tries: 0 });
        Ran::ok(format!("[sudo] password for {}: ", s.user.name))
    }

    pub(crate) fn start_su(&self, s: &mut Session, target: String) -> Ran {
        s.pending = Some(Pending::Su { target });
        Ran::ok("Password: ")
    }

    pub(crate) fn switch_user(&self, s: &mut Session, name: &str, login: bool) {
        let Some(account) = self.host.account(name).cloned() else {
            return;
        };
        s.stack.push((s.user.clone(), s.cwd.clone()));
        s.user = account;
        if login {
            s.cwd = s.user.home.clone();
        }
        let cwd = s.cwd.clone();
        self.reset_env(s);
        s.env.insert("PWD".into(), cwd);
    }

    /// `exit`: leaves an `su` shell, or ends the session.
    pub(crate) fn exit(&self, s: &mut Session, status: i32) -> Ran {
        if let Some((user, cwd)) = s.stack.pop() {
            s.user = user;
            s.cwd = cwd;
            self.reset_env(s);
            s.status = status;
            return Ran::ok("logout\n");
        }
        s.exited = Some(status);
        match s.mode {
            Mode::Interactive => Ran::ok("logout\n"),
            Mode::Exec => Ran::ok(""),
        }
    }

    fn answer_prompt(&self, s: &mut Session, pending: Pending, password: &str, now: i64) -> Output {
        let mut events = Vec::new();
        let mut out = Output {
            echo: true,
            ..Output::default()
        };
        match pending {
            Pending::Sudo { rest, tries } => {
                let ok = s.user.password.as_deref() == Some(password);
                events.push(
                    Event::from_peer(kind::AUTH_ATTEMPT, s.peer).credential(
                        &Credential::password(
                            &s.user.name,
                            password.as_bytes(),
                            if ok {
                                Outcome::Success
                            } else {
                                Outcome::Failure
                            },
                        )
                        .mechanism("sudo"),
                    ),
                );
                if ok {
                    let me = s.user.name.clone();
                    let mut ctx = Ctx {
                        now,
                        events: &mut events,
                        delay_ms: 0,
                        depth: 0,
                    };
                    let ran = cmds::sudo_as_root(self, s, &rest, &mut ctx);
                    let _ = me;
                    out.text = ran;
                } else if tries + 1 >= 3 {
                    out.text = "sudo: 3 incorrect password attempts\n".into();
                    out.delay_ms = 2_000;
                    s.status = 1;
                } else {
                    out.text = format!("Sorry, try again.\n[sudo] password for {}: ", s.user.name);
                    out.delay_ms = 2_000;
                    s.pending = Some(Pending::Sudo {
                        rest,
                        tries: tries + 1,
                    });
                    out.echo = false;
                }
            }
            Pending::Su { target } => {
                let ok = self
                    .host
                    .account(&target)
                    .and_then(|a| a.password.as_deref())
                    == Some(password);
                events.push(
                    Event::from_peer(kind::AUTH_ATTEMPT, s.peer).credential(
                        &Credential::password(
                            &target,
                            password.as_bytes(),
                            if ok {
                                Outcome::Success
                            } else {
                                Outcome::Failure
                            },
                        )
                        .mechanism("su"),
                    ),
                );
                if ok {
                    self.switch_user(s, &target, false);
                    s.status = 0;
                } else {
                    out.text = "su: Authentication failure\n".into();
                    out.delay_ms = 2_000;
                    s.status = 1;
                }
            }
        }
        out.events = events;
        out.exit = s.exited;
        out
    }
}

fn push_capped(text: &mut String, add: &str) {
    if text.len() >= MAX_OUTPUT {
        return;
    }
    let room = MAX_OUTPUT - text.len();
    if add.len() <= room {
        text.push_str(add);
    } else {
        let mut cut = room;
        while !add.is_char_boundary(cut) {
            cut -= 1;
        }
        text.push_str(&add[..cut]);
    }
}

#[cfg(test)]
mod tests;
