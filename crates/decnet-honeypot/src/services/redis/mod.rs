//! `redis`: a Redis 7.0 server speaking RESP2 (multibulk and inline requests) over a
//! per-decky fake keyspace. It answers the commands attackers and tools use (PING, ECHO,
//! INFO, AUTH, HELLO, SELECT, CONFIG, CLIENT, COMMAND, KEYS, SCAN, TYPE, TTL, GET, SET,
//! the common string/list/hash/set/sorted-set commands, SAVE, SLAVEOF, FLUSHALL, …) with
//! Redis 7.0's exact replies and error texts, including the unknown-command error.
//!
//! Every command produces a `command` event (name and the first [`MAX_LOGGED_ARGS`]
//! arguments, each cut at [`MAX_LOGGED_ARG_BYTES`]); a run of identical commands on one
//! connection is reported once plus one event carrying the repeat count, and at most
//! [`MAX_COMMAND_EVENTS`] events are written per connection (the rest are counted), so a
//! flood cannot flood the log. AUTH (and HELLO … AUTH) produce `auth_attempt` events; the
//! outcome follows the persona's `requirepass`.
//!
//! Nothing is executed: `CONFIG SET dir`/`dbfilename` are refused as Redis 7's protected
//! configs, `SLAVEOF` never connects out, `MODULE LOAD` and `DEBUG` are refused as in a
//! default 7.0, and `EVAL` never runs Lua. The keyspace is capped in keys and bytes
//! (`keyspace::MAX_KEYS`, `keyspace::MAX_BYTES`; beyond, writes get Redis' OOM error),
//! requests by the RESP decoder's caps, and every read waits at most the idle timeout.

pub mod info;
pub mod keyspace;

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use decnet_wire::resp::{self, Decoded};
use rand::Rng;
use sha1::Digest as _;

use self::info::{ClientLine, Facts, Kind, Live, PARAMS, Role};
use self::keyspace::{Entry, Full, Store, Value};
use crate::Error;
use crate::event::{Credential, Event, Outcome, kind, printable};
use crate::persona::Persona;
use crate::server::{BoxFuture, Conn, Emulator, ServiceCtx};
use crate::services::framed::{Framed, Stop};

/// Arguments copied into a `command` event (the command name first).
pub const MAX_LOGGED_ARGS: usize = 8;
/// Bytes of each argument copied into a `command` event.
pub const MAX_LOGGED_ARG_BYTES: usize = 128;
/// `command` events written per connection; further ones are only counted.
pub const MAX_COMMAND_EVENTS: usize = 10_000;
/// Longest client name kept by `CLIENT SETNAME`.
pub const MAX_CLIENT_NAME: usize = 256;
/// Largest `COUNT` honoured by `SCAN` in one call.
pub const MAX_SCAN_COUNT: usize = 1_000;
/// Most elements returned by one range command.
pub const MAX_RANGE: usize = 10_000;
/// Most unconsumed request bytes buffered per connection.
pub const MAX_BUFFER: usize = resp::MAX_COMMAND_LEN + 16 * 1024;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Builds the emulator: facts and keyspace from the persona's seed.
///
/// # Errors
/// None today; the signature is the registry's.
pub fn build(ctx: &ServiceCtx) -> Result<Arc<dyn Emulator>, Error> {
    Ok(Arc::new(Redis::from_persona(&ctx.persona)))
}

/// A fake client that is "already connected" (the decky's application).
#[derive(Debug, Clone)]
struct Resident {
    id: u64,
    host: u8,
    port: u16,
    age: u64,
    db: usize,
    cmd: &'static str,
}

/// State shared by every connection of the process.
struct Shared {
    store: Store,
    config: BTreeMap<&'static str, String>,
    clients: BTreeMap<u64, ClientLine>,
    residents: Vec<Resident>,
    next_id: u64,
    live: Live,
}

/// The Redis emulator.
pub struct Redis {
    facts: Facts,
    requirepass: Option<Vec<u8>>,
    shared: Mutex<Shared>,
}

impl Redis {
    /// The server of this persona.
    pub fn from_persona(persona: &Persona) -> Redis {
        let facts = Facts::from_persona(persona);
        let now = now_ms();
        let store = keyspace::seed(&mut persona.rng("redis-keyspace"), now);
        let mut rng = persona.rng("redis-clients");
        let requirepass = persona
            .get("requirepass")
            .map(|p| p.as_bytes().to_vec())
            .filter(|p| !p.is_empty());
        let mut config: BTreeMap<&'static str, String> = PARAMS
            .iter()
            .map(|(k, _, v)| (*k, (*v).to_owned()))
            .collect();
        if let Some(p) = &requirepass {
            config.insert("requirepass", String::from_utf8_lossy(p).into_owned());
        }
        let residents = (0..rng.gen_range(0..=3u64))
            .map(|i| Resident {
                id: 3 + i,
                host: rng.gen_range(2..250),
                port: rng.gen_range(32_768..60_999),
                age: rng.gen_range(600..(now / 1000).saturating_sub(facts.started).max(601)),
                db: 0,
                cmd: ["get", "setex", "ping", "expire"][rng.gen_range(0..4)],
            })
            .collect();
        let live = Live {
            last_save: facts.last_save,
            policy: "noeviction".to_owned(),
            ..Live::default()
        };
        let next_id = facts.base_connections + 5;
        Redis {
            facts,
            requirepass,
            shared: Mutex::new(Shared {
                store,
                config,
                clients: BTreeMap::new(),
                residents,
                next_id,
                live,
            }),
        }
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        // A panic while holding the lock cannot leave the fake state inconsistent in a
        // way that matters; keep serving.
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Emulator for Redis {
    fn handle(self: Arc<Self>, conn: Conn, ctx: Arc<ServiceCtx>) -> BoxFuture<'static, ()> {
        Box::pin(async move { self.serve(conn, ctx).await })
    }
}

/// What the connection does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// Send what is pending, then close (QUIT, protocol errors).
    Close,
    /// Close at once, discarding pending replies (Redis' reaction to HTTP requests).
    Drop,
}

/// The command of the last `command` event, for collapsing repeats.
struct Last {
    argc: usize,
    args: Vec<Vec<u8>>,
    event: Event,
}

/// One connection.
struct Session {
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    db: usize,
    authed: bool,
    resp3: bool,
    last: Option<Last>,
    repeats: u64,
    events: usize,
    suppressed: u64,
}

fn logged_arg(a: &[u8]) -> &[u8] {
    &a[..a.len().min(MAX_LOGGED_ARG_BYTES)]
}

impl Session {
    /// Whether `args` repeat the last logged command (same count, same logged prefix).
    fn repeats_last(&self, args: &[Cow<'_, [u8]>]) -> bool {
        self.last.as_ref().is_some_and(|l| {
            l.argc == args.len()
                && l.args
                    .iter()
                    .zip(args.iter())
                    .all(|(a, b)| a.as_slice() == logged_arg(b))
        })
    }

    fn flush_repeats(&mut self, ctx: &ServiceCtx) {
        if self.repeats > 0
            && let Some(last) = &self.last
        {
            ctx.emit(
                last.event
                    .clone()
                    .field("repeated", self.repeats.to_string()),
            );
        }
        self.repeats = 0;
    }
}

/// The command name in lower case, in `buf` (no allocation on the hot path); `None` for
/// names longer than any command.
fn lower_name<'a>(name: &[u8], buf: &'a mut [u8; 32]) -> Option<&'a [u8]> {
    let out = buf.get_mut(..name.len())?;
    for (o, b) in out.iter_mut().zip(name) {
        *o = b.to_ascii_lowercase();
    }
    Some(out)
}

/// Redis' `%.*s`: a C string stops at its first NUL.
fn c_str(bytes: &[u8]) -> &[u8] {
    bytes
        .iter()
        .position(|&b| b == 0)
        .map_or(bytes, |n| &bytes[..n])
}

fn unknown_command(args: &[Cow<'_, [u8]>], out: &mut Vec<u8>) {
    let name = c_str(&args[0]);
    let mut msg = b"ERR unknown command '".to_vec();
    msg.extend_from_slice(&name[..name.len().min(128)]);
    msg.extend_from_slice(b"', with args beginning with: ");
    let mut listed: Vec<u8> = Vec::new();
    for a in &args[1..] {
        if listed.len() >= 128 {
            break;
        }
        let a = c_str(a);
        let room = 128 - listed.len();
        listed.push(b'\'');
        listed.extend_from_slice(&a[..a.len().min(room)]);
        listed.extend_from_slice(b"' ");
    }
    msg.extend_from_slice(&listed);
    resp::error_bytes(out, &msg);
}

fn wrong_args(out: &mut Vec<u8>, name: &str) {
    resp::error(
        out,
        &format!("ERR wrong number of arguments for '{name}' command"),
    );
}

const SYNTAX: &str = "ERR syntax error";
const NOT_INTEGER: &str = "ERR value is not an integer or out of range";
const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Command table: name, arity (negative = at least), allowed before AUTH.
const COMMANDS: &[(&str, i32, bool)] = &[
    ("append", 3, false),
    ("auth", -2, true),
    ("bgsave", -1, false),
    ("client", -2, false),
    ("command", -1, false),
    ("config", -2, false),
    ("dbsize", 1, false),
    ("debug", -2, false),
    ("decr", 2, false),
    ("decrby", 3, false),
    ("del", -2, false),
    ("echo", 2, false),
    ("eval", -3, false),
    ("evalsha", -3, false),
    ("exists", -2, false),
    ("expire", -3, false),
    ("flushall", -1, false),
    ("flushdb", -1, false),
    ("get", 2, false),
    ("getdel", 2, false),
    ("getset", 3, false),
    ("hdel", -3, false),
    ("hello", -1, true),
    ("hexists", 3, false),
    ("hget", 3, false),
    ("hgetall", 2, false),
    ("hkeys", 2, false),
    ("hlen", 2, false),
    ("hmset", -4, false),
    ("hset", -4, false),
    ("hvals", 2, false),
    ("incr", 2, false),
    ("incrby", 3, false),
    ("info", -1, false),
    ("keys", 2, false),
    ("lastsave", 1, false),
    ("lindex", 3, false),
    ("llen", 2, false),
    ("lpop", -2, false),
    ("lpush", -3, false),
    ("lrange", 4, false),
    ("mget", -2, false),
    ("module", -2, false),
    ("mset", -3, false),
    ("persist", 2, false),
    ("pexpire", -3, false),
    ("ping", -1, false),
    ("pttl", 2, false),
    ("quit", -1, true),
    ("randomkey", 1, false),
    ("rename", 3, false),
    ("replicaof", 3, false),
    ("role", 1, false),
    ("rpop", -2, false),
    ("rpush", -3, false),
    ("sadd", -3, false),
    ("save", 1, false),
    ("scan", -2, false),
    ("scard", 2, false),
    ("select", 2, false),
    ("set", -3, false),
    ("setex", 4, false),
    ("setnx", 3, false),
    ("shutdown", -1, false),
    ("sismember", 3, false),
    ("slaveof", 3, false),
    ("smembers", 2, false),
    ("srem", -3, false),
    ("strlen", 2, false),
    ("time", 1, false),
    ("ttl", 2, false),
    ("type", 2, false),
    ("unlink", -2, false),
    ("zadd", -4, false),
    ("zcard", 2, false),
    ("zrange", -4, false),
    ("zrevrange", -4, false),
    ("zscore", 3, false),
];

/// Subcommands of container commands: (container, sub, arity, full name).
const SUBCOMMANDS: &[(&str, &str, i32, &str)] = &[
    ("client", "getname", 2, "client|getname"),
    ("client", "help", 2, "client|help"),
    ("client", "id", 2, "client|id"),
    ("client", "info", 2, "client|info"),
    ("client", "kill", -3, "client|kill"),
    ("client", "list", -2, "client|list"),
    ("client", "setname", 3, "client|setname"),
    ("command", "count", 2, "command|count"),
    ("command", "docs", -2, "command|docs"),
    ("command", "help", 2, "command|help"),
    ("command", "info", -2, "command|info"),
    ("command", "list", -2, "command|list"),
    ("config", "get", -3, "config|get"),
    ("config", "help", 2, "config|help"),
    ("config", "resetstat", 2, "config|resetstat"),
    ("config", "rewrite", 2, "config|rewrite"),
    ("config", "set", -4, "config|set"),
    ("module", "help", 2, "module|help"),
    ("module", "list", 2, "module|list"),
    ("module", "load", -3, "module|load"),
    ("module", "loadex", -3, "module|loadex"),
    ("module", "unload", 3, "module|unload"),
];

fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = i32::try_from(argc).unwrap_or(i32::MAX);
    if arity >= 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

fn parse_i64(a: &[u8]) -> Option<i64> {
    std::str::from_utf8(a).ok()?.parse().ok()
}

fn eq(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

impl Redis {
    async fn serve(self: Arc<Self>, conn: Conn, ctx: Arc<ServiceCtx>) {
        let mut sess = Session {
            id: 0,
            peer: conn.peer,
            local: conn.local,
            db: 0,
            authed: self.requirepass.is_none(),
            resp3: false,
            last: None,
            repeats: 0,
            events: 0,
            suppressed: 0,
        };
        {
            let mut s = self.shared();
            sess.id = s.next_id;
            s.next_id += 1 + u64::from(rand::thread_rng().gen_bool(0.2));
            // File descriptors are reused: a new client gets the lowest free one above
            // the listener's and the application's.
            let first_free = 8 + s.residents.len() as u32;
            let fd = (first_free..)
                .find(|fd| !s.clients.values().any(|c| c.fd == *fd))
                .unwrap_or(first_free);
            let now = now_ms() / 1000;
            s.clients.insert(
                sess.id,
                ClientLine {
                    id: sess.id,
                    addr: conn.peer,
                    laddr: conn.local,
                    fd,
                    name: String::new(),
                    since: now,
                    last: now,
                    db: 0,
                    cmd: "NULL",
                    resp: 2,
                },
            );
            s.live.connections += 1;
        }
        let mut io = Framed::new(conn.stream, ctx.limits.idle_timeout, MAX_BUFFER);
        let stop = self.run(&mut io, &ctx, &mut sess).await;
        io.close().await;
        sess.flush_repeats(&ctx);
        if sess.suppressed > 0 {
            ctx.emit(
                Event::from_peer("commands_suppressed", sess.peer)
                    .field("count", sess.suppressed.to_string()),
            );
        }
        if let Some(stop) = stop
            && stop != Stop::Eof
        {
            ctx.emit(
                Event::from_peer(kind::PROTOCOL_ERROR, sess.peer).field("reason", stop.as_str()),
            );
        }
        self.shared().clients.remove(&sess.id);
    }

    /// Serves requests until the peer leaves or a command ends the connection; the
    /// reason when it was not a command.
    async fn run(&self, io: &mut Framed, ctx: &ServiceCtx, sess: &mut Session) -> Option<Stop> {
        let mut out = Vec::with_capacity(4096);
        let mut need = 1;
        loop {
            let mut flow = Flow::Continue;
            let mut read_bytes = 0;
            while io.buffer().len() >= need {
                let (consumed, f) = match resp::decode(io.buffer()) {
                    Ok(Decoded::NeedMore { min_len }) => {
                        need = min_len;
                        break;
                    }
                    Ok(Decoded::Empty { consumed }) => (consumed, Flow::Continue),
                    Ok(Decoded::Command { args, consumed }) => {
                        (consumed, self.command(ctx, sess, &args, &mut out))
                    }
                    Err(e) => {
                        resp::error(&mut out, &e.reply());
                        ctx.emit(
                            Event::from_peer(kind::PROTOCOL_ERROR, sess.peer)
                                .field("reason", "resp")
                                .field("detail", e.to_string()),
                        );
                        (io.buffer().len(), Flow::Close)
                    }
                };
                need = 1;
                read_bytes += consumed;
                io.consume(consumed);
                if f != Flow::Continue {
                    flow = f;
                    break;
                }
            }
            if flow == Flow::Drop {
                return None;
            }
            if !out.is_empty() {
                {
                    let mut s = self.shared();
                    s.live.net.0 += read_bytes as u64;
                    s.live.net.1 += out.len() as u64;
                }
                if let Err(stop) = io.write_all(&out).await {
                    return Some(stop);
                }
                out.clear();
            }
            if flow == Flow::Close {
                return None;
            }
            if let Err(stop) = io.read_more().await {
                return Some(stop);
            }
        }
    }

    fn log_command(&self, ctx: &ServiceCtx, sess: &mut Session, args: &[Cow<'_, [u8]>]) {
        if sess.repeats_last(args) {
            sess.repeats += 1;
            return;
        }
        sess.flush_repeats(ctx);
        if sess.events >= MAX_COMMAND_EVENTS {
            sess.suppressed += 1;
            return;
        }
        sess.events += 1;
        let is_auth = eq(&args[0], "auth");
        let is_hello = eq(&args[0], "hello");
        let shown: Vec<String> = args
            .iter()
            .enumerate()
            .skip(1)
            .take(MAX_LOGGED_ARGS - 1)
            .map(|(i, a)| {
                // Passwords go to `auth_attempt` events only: the last argument of AUTH,
                // the one after `AUTH <user>` in HELLO.
                let hidden = (is_auth && i == args.len() - 1)
                    || (is_hello && i >= 2 && eq(&args[i - 2], "auth"));
                if hidden {
                    "<redacted>".to_owned()
                } else {
                    printable(logged_arg(a))
                }
            })
            .collect();
        let event = Event::from_peer(kind::COMMAND, sess.peer)
            .field("cmd", printable(logged_arg(&args[0])).to_ascii_uppercase())
            .field("args", serde_json::Value::from(shown).to_string())
            .field("argc", args.len().to_string())
            .field("db", sess.db.to_string());
        ctx.emit(event.clone());
        sess.last = Some(Last {
            argc: args.len(),
            args: args
                .iter()
                .take(MAX_LOGGED_ARGS)
                .map(|a| logged_arg(a).to_vec())
                .collect(),
            event,
        });
    }

    /// Runs one command, appending its reply to `out`.
    fn command(
        &self,
        ctx: &ServiceCtx,
        sess: &mut Session,
        args: &[Cow<'_, [u8]>],
        out: &mut Vec<u8>,
    ) -> Flow {
        self.log_command(ctx, sess, args);
        let start = out.len();
        let mut name_buf = [0u8; 32];
        let Some(name) = lower_name(&args[0], &mut name_buf) else {
            unknown_command(args, out);
            self.count_error(&out[start..], None);
            return Flow::Continue;
        };
        // An HTTP request on the Redis port: Redis logs a possible security attack and
        // drops the connection without answering.
        if name == b"post" || name == b"host:" {
            ctx.emit(
                Event::from_peer(kind::PROTOCOL_ERROR, sess.peer)
                    .field("reason", "http_request")
                    .field_bytes("data", logged_arg(&args[0])),
            );
            return Flow::Drop;
        }
        let Some(&(cmd, arity, no_auth)) = COMMANDS.iter().find(|(n, _, _)| n.as_bytes() == name)
        else {
            unknown_command(args, out);
            self.count_error(&out[start..], None);
            return Flow::Continue;
        };
        let mut full: &'static str = cmd;
        if matches!(cmd, "client" | "command" | "config" | "module") && args.len() >= 2 {
            match SUBCOMMANDS
                .iter()
                .find(|(c, s, _, _)| *c == cmd && s.as_bytes().eq_ignore_ascii_case(&args[1]))
            {
                Some(&(_, _, sub_arity, sub_full)) => {
                    full = sub_full;
                    if !arity_ok(sub_arity, args.len()) {
                        wrong_args(out, full);
                        self.count_error(&out[start..], None);
                        return Flow::Continue;
                    }
                }
                None => {
                    let shown = c_str(&args[1]);
                    let mut msg = b"ERR unknown subcommand '".to_vec();
                    msg.extend_from_slice(&shown[..shown.len().min(128)]);
                    msg.extend_from_slice(
                        format!("'. Try {} HELP.", cmd.to_ascii_uppercase()).as_bytes(),
                    );
                    resp::error_bytes(out, &msg);
                    self.count_error(&out[start..], None);
                    return Flow::Continue;
                }
            }
        } else if !arity_ok(arity, args.len()) {
            wrong_args(out, cmd);
            self.count_error(&out[start..], None);
            return Flow::Continue;
        }
        if !sess.authed && !no_auth {
            resp::error(out, "NOAUTH Authentication required.");
            self.count_error(&out[start..], None);
            return Flow::Continue;
        }
        let flow = self.dispatch(ctx, sess, full, args, out);
        let mut s = self.shared();
        *s.live.calls.entry(full).or_insert(0) += 1;
        if let Some(client) = s.clients.get_mut(&sess.id) {
            client.cmd = full;
            client.last = now_ms() / 1000;
            client.db = sess.db;
        }
        drop(s);
        if out.get(start) == Some(&b'-') {
            self.count_error(&out[start..], Some(full));
        }
        flow
    }

    /// Counts the error reply `reply` (`-WORD text`) by its first word in the error stats.
    fn count_error(&self, reply: &[u8], cmd: Option<&'static str>) {
        let Some(rest) = reply.strip_prefix(b"-") else {
            return;
        };
        let word: String = rest
            .iter()
            .take_while(|b| b.is_ascii_uppercase())
            .map(|&b| char::from(b))
            .collect();
        let mut s = self.shared();
        *s.live.errors.entry(word).or_insert(0) += 1;
        if let Some(cmd) = cmd {
            *s.live.failed.entry(cmd).or_insert(0) += 1;
        }
    }

    fn null(sess: &Session, out: &mut Vec<u8>) {
        if sess.resp3 {
            out.extend_from_slice(b"_\r\n");
        } else {
            resp::null_bulk(out);
        }
    }

    fn auth(
        &self,
        ctx: &ServiceCtx,
        sess: &mut Session,
        user: Option<&[u8]>,
        pass: &[u8],
        mechanism: &str,
    ) -> Result<(), &'static str> {
        let user_name = user.unwrap_or(b"default");
        let ok = match (&self.requirepass, user) {
            (Some(p), _) => user_name == b"default" && p.as_slice() == pass,
            (None, None) => false,
            (None, Some(u)) => u == b"default",
        };
        let credential = Credential::password(
            &printable(user_name),
            pass,
            if ok {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        )
        .mechanism(mechanism);
        ctx.emit(Event::from_peer(kind::AUTH_ATTEMPT, sess.peer).credential(&credential));
        if ok {
            sess.authed = true;
            Ok(())
        } else if self.requirepass.is_none() && user.is_none() {
            Err(
                "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            )
        } else {
            Err(WRONGPASS)
        }
    }

    #[allow(clippy::too_many_lines)]
    fn dispatch(
        &self,
        ctx: &ServiceCtx,
        sess: &mut Session,
        full: &'static str,
        args: &[Cow<'_, [u8]>],
        out: &mut Vec<u8>,
    ) -> Flow {
        let now = now_ms();
        let db = sess.db;
        match full {
            "ping" => match args.len() {
                1 => out.extend_from_slice(b"+PONG\r\n"),
                2 => resp::bulk(out, &args[1]),
                _ => wrong_args(out, "ping"),
            },
            "echo" => resp::bulk(out, &args[1]),
            "quit" => {
                resp::simple(out, "OK");
                return Flow::Close;
            }
            "auth" => {
                if args.len() > 3 {
                    resp::error(out, SYNTAX);
                } else {
                    let (user, pass) = if args.len() == 3 {
                        (Some(&*args[1]), &*args[2])
                    } else {
                        (None, &*args[1])
                    };
                    match self.auth(ctx, sess, user, pass, "AUTH") {
                        Ok(()) => resp::simple(out, "OK"),
                        Err(e) => resp::error(out, e),
                    }
                }
            }
            "hello" => self.hello(ctx, sess, args, out),
            "select" => match parse_i64(&args[1]) {
                None => resp::error(out, NOT_INTEGER),
                Some(n) if !(0..keyspace::DATABASES as i64).contains(&n) => {
                    resp::error(out, "ERR DB index is out of range");
                }
                Some(n) => {
                    sess.db = usize::try_from(n).unwrap_or(0);
                    resp::simple(out, "OK");
                }
            },
            "info" => {
                let wanted: Vec<Vec<u8>> = args[1..].iter().map(|a| a.to_vec()).collect();
                let sections = info::sections(&wanted);
                let live = self.live(sess.local.port());
                let text = info::render(&self.facts, &live, &sections);
                resp::bulk(out, text.as_bytes());
            }
            "dbsize" => {
                let mut s = self.shared();
                s.store.purge(db, now);
                let (n, _, _) = s.store.stats(db, now);
                resp::integer(out, n as i64);
            }
            "keys" => {
                let mut s = self.shared();
                let keys = s.store.keys(db, now);
                let matched: Vec<&Vec<u8>> = keys
                    .iter()
                    .filter(|k| resp::glob_match(&args[1], k, false))
                    .collect();
                resp::array(out, matched.len());
                for k in matched {
                    resp::bulk(out, k);
                }
            }
            "scan" => self.scan(args, db, now, out),
            "randomkey" => {
                let mut s = self.shared();
                let keys = s.store.keys(db, now);
                if keys.is_empty() {
                    Self::null(sess, out);
                } else {
                    let k = &keys[rand::thread_rng().gen_range(0..keys.len())];
                    resp::bulk(out, k);
                }
            }
            "type" => {
                let mut s = self.shared();
                let t = s
                    .store
                    .get(db, &args[1], now)
                    .map_or("none", |e| e.value.type_name());
                resp::simple(out, t);
            }
            "ttl" | "pttl" => {
                let mut s = self.shared();
                let v = match s.store.get(db, &args[1], now) {
                    None => -2,
                    Some(Entry {
                        expires_at: None, ..
                    }) => -1,
                    Some(Entry {
                        expires_at: Some(t),
                        ..
                    }) => {
                        let left = t.saturating_sub(now) as i64;
                        if full == "ttl" {
                            (left + 500) / 1000
                        } else {
                            left
                        }
                    }
                };
                resp::integer(out, v);
            }
            "exists" => {
                let mut s = self.shared();
                let n = args[1..]
                    .iter()
                    .filter(|k| s.store.get(db, k, now).is_some())
                    .count();
                resp::integer(out, n as i64);
            }
            "del" | "unlink" => {
                let mut s = self.shared();
                let mut n = 0;
                for k in &args[1..] {
                    if s.store.get(db, k, now).is_some() && s.store.remove(db, k) {
                        n += 1;
                    }
                }
                s.live.dirty += n;
                resp::integer(out, n as i64);
            }
            "expire" | "pexpire" => match parse_i64(&args[2]) {
                None => resp::error(out, NOT_INTEGER),
                Some(t) => {
                    let mut s = self.shared();
                    let ms = if full == "expire" {
                        t.saturating_mul(1000)
                    } else {
                        t
                    };
                    match s.store.get_mut(db, &args[1], now) {
                        None => resp::integer(out, 0),
                        Some(e) => {
                            e.expires_at = Some(now.saturating_add_signed(ms));
                            resp::integer(out, 1);
                        }
                    }
                }
            },
            "persist" => {
                let mut s = self.shared();
                let changed = match s.store.get_mut(db, &args[1], now) {
                    Some(e) if e.expires_at.is_some() => {
                        e.expires_at = None;
                        1
                    }
                    _ => 0,
                };
                resp::integer(out, changed);
            }
            "rename" => {
                let mut s = self.shared();
                match s.store.get(db, &args[1], now).cloned() {
                    None => resp::error(out, "ERR no such key"),
                    Some(e) => {
                        s.store.remove(db, &args[1]);
                        match s.store.set(db, &args[2], e) {
                            Ok(()) => resp::simple(out, "OK"),
                            Err(Full::OutOfMemory) => resp::error(out, OOM),
                        }
                    }
                }
            }
            "get" | "getdel" | "getset" => {
                let mut s = self.shared();
                let found = s.store.get(db, &args[1], now).map(|e| e.value.clone());
                match found {
                    Some(Value::Str(v)) => {
                        s.live.hits.0 += 1;
                        resp::bulk(out, &v);
                        if full == "getdel" {
                            s.store.remove(db, &args[1]);
                        }
                    }
                    Some(_) => {
                        resp::error(out, WRONGTYPE);
                        return Flow::Continue;
                    }
                    None => {
                        s.live.hits.1 += 1;
                        Self::null(sess, out);
                    }
                }
                if full == "getset" {
                    let _ = s.store.set(
                        db,
                        &args[1],
                        Entry {
                            value: Value::Str(args[2].to_vec()),
                            expires_at: None,
                        },
                    );
                    s.live.dirty += 1;
                }
            }
            "mget" => {
                let mut s = self.shared();
                resp::array(out, args.len() - 1);
                for k in &args[1..] {
                    match s.store.get(db, k, now).map(|e| &e.value) {
                        Some(Value::Str(v)) => resp::bulk(out, v),
                        _ => Self::null(sess, out),
                    }
                }
            }
            "set" | "setex" | "setnx" => self.set(sess, full, args, now, out),
            "mset" => {
                if args.len().is_multiple_of(2) {
                    wrong_args(out, "mset");
                } else {
                    let mut s = self.shared();
                    let mut ok = true;
                    for pair in args[1..].chunks(2) {
                        if s.store
                            .set(
                                db,
                                &pair[0],
                                Entry {
                                    value: Value::Str(pair[1].to_vec()),
                                    expires_at: None,
                                },
                            )
                            .is_err()
                        {
                            ok = false;
                            break;
                        }
                        s.live.dirty += 1;
                    }
                    if ok {
                        resp::simple(out, "OK");
                    } else {
                        resp::error(out, OOM);
                    }
                }
            }
            "incr" | "decr" | "incrby" | "decrby" => {
                let delta = match full {
                    "incr" => Some(1),
                    "decr" => Some(-1),
                    "incrby" => parse_i64(&args[2]),
                    _ => parse_i64(&args[2]).and_then(i64::checked_neg),
                };
                let Some(delta) = delta else {
                    resp::error(out, NOT_INTEGER);
                    return Flow::Continue;
                };
                let mut s = self.shared();
                let current = s
                    .store
                    .get(db, &args[1], now)
                    .map(|e| (e.value.clone(), e.expires_at));
                let (base, expires_at) = match current {
                    None => (0, None),
                    Some((Value::Str(v), exp)) => match parse_i64(&v) {
                        Some(n) => (n, exp),
                        None => {
                            resp::error(out, NOT_INTEGER);
                            return Flow::Continue;
                        }
                    },
                    Some(_) => {
                        resp::error(out, WRONGTYPE);
                        return Flow::Continue;
                    }
                };
                match base.checked_add(delta) {
                    None => resp::error(out, "ERR increment or decrement would overflow"),
                    Some(n) => match s.store.set(
                        db,
                        &args[1],
                        Entry {
                            value: Value::Str(n.to_string().into_bytes()),
                            expires_at,
                        },
                    ) {
                        Ok(()) => {
                            s.live.dirty += 1;
                            resp::integer(out, n);
                        }
                        Err(Full::OutOfMemory) => resp::error(out, OOM),
                    },
                }
            }
            "append" | "strlen" => {
                let mut s = self.shared();
                let current = s
                    .store
                    .get(db, &args[1], now)
                    .map(|e| (e.value.clone(), e.expires_at));
                let (mut v, exp) = match current {
                    None => (Vec::new(), None),
                    Some((Value::Str(v), exp)) => (v, exp),
                    Some(_) => {
                        resp::error(out, WRONGTYPE);
                        return Flow::Continue;
                    }
                };
                if full == "strlen" {
                    resp::integer(out, v.len() as i64);
                } else {
                    v.extend_from_slice(&args[2]);
                    let len = v.len();
                    match s.store.set(
                        db,
                        &args[1],
                        Entry {
                            value: Value::Str(v),
                            expires_at: exp,
                        },
                    ) {
                        Ok(()) => resp::integer(out, len as i64),
                        Err(Full::OutOfMemory) => resp::error(out, OOM),
                    }
                }
            }
            "lrange" | "llen" | "lindex" | "lpush" | "rpush" | "lpop" | "rpop" => {
                self.list(sess, full, args, now, out);
            }
            "hget" | "hgetall" | "hkeys" | "hvals" | "hlen" | "hexists" | "hset" | "hmset"
            | "hdel" => self.hash(sess, full, args, now, out),
            "smembers" | "scard" | "sismember" | "sadd" | "srem" => {
                self.set_cmd(sess, full, args, now, out);
            }
            "zrange" | "zrevrange" | "zcard" | "zscore" | "zadd" => {
                self.zset(sess, full, args, now, out);
            }
            "flushall" | "flushdb" => {
                if args.len() > 2
                    || (args.len() == 2 && !eq(&args[1], "async") && !eq(&args[1], "sync"))
                {
                    resp::error(out, SYNTAX);
                } else {
                    let mut s = self.shared();
                    if full == "flushall" {
                        s.store.flush_all();
                    } else {
                        s.store.flush_db(db);
                    }
                    s.live.dirty += 1;
                    resp::simple(out, "OK");
                }
            }
            "save" => {
                let mut s = self.shared();
                s.live.last_save = now / 1000;
                s.live.dirty = 0;
                resp::simple(out, "OK");
            }
            "bgsave" => {
                let mut s = self.shared();
                s.live.last_save = now / 1000;
                s.live.dirty = 0;
                s.live.bgsaves += 1;
                resp::simple(out, "Background saving started");
            }
            "lastsave" => resp::integer(out, self.shared().live.last_save as i64),
            "time" => {
                let us = now * 1000 + rand::thread_rng().gen_range(0..1000);
                resp::array(out, 2);
                resp::bulk(out, (us / 1_000_000).to_string().as_bytes());
                resp::bulk(out, (us % 1_000_000).to_string().as_bytes());
            }
            "role" => {
                let s = self.shared();
                match &s.live.role {
                    Role::Master => {
                        resp::array(out, 3);
                        resp::bulk(out, b"master");
                        resp::integer(out, 0);
                        resp::array(out, 0);
                    }
                    Role::Replica(host, port, _) => {
                        resp::array(out, 5);
                        resp::bulk(out, b"slave");
                        resp::bulk(out, host.as_bytes());
                        resp::integer(out, parse_i64(port.as_bytes()).unwrap_or(0));
                        resp::bulk(out, b"connect");
                        resp::integer(out, -1);
                    }
                }
            }
            "slaveof" | "replicaof" => {
                let mut s = self.shared();
                if eq(&args[1], "no") && eq(&args[2], "one") {
                    s.live.role = Role::Master;
                    resp::simple(out, "OK");
                } else if parse_i64(&args[2]).is_none_or(|p| !(0..=65_535).contains(&p)) {
                    resp::error(out, "ERR Invalid master port");
                } else {
                    // Recorded by the command event; a real replica would connect out,
                    // this one never does.
                    s.live.role =
                        Role::Replica(printable(&args[1]), printable(&args[2]), now / 1000);
                    resp::simple(out, "OK");
                }
            }
            "shutdown" => resp::error(out, "ERR Errors trying to SHUTDOWN. Check logs."),
            "debug" => resp::error(
                out,
                "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
            ),
            "module|load" | "module|loadex" | "module|unload" => resp::error(
                out,
                "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
            ),
            "module|list" => resp::array(out, 0),
            "eval" | "evalsha" => self.eval(full, args, out),
            "config|get" => {
                let s = self.shared();
                let mut pairs: Vec<(&str, &str)> = Vec::new();
                for pattern in &args[2..] {
                    for (k, v) in &s.config {
                        if resp::glob_match(pattern, k.as_bytes(), true)
                            && !pairs.iter().any(|(pk, _)| pk == k)
                        {
                            pairs.push((k, v));
                        }
                    }
                }
                resp::array(out, pairs.len() * 2);
                for (k, v) in pairs {
                    resp::bulk(out, k.as_bytes());
                    resp::bulk(out, v.as_bytes());
                }
            }
            "config|set" => self.config_set(args, out),
            "config|resetstat" => {
                let mut s = self.shared();
                s.live.calls.clear();
                s.live.failed.clear();
                s.live.errors.clear();
                resp::simple(out, "OK");
            }
            "config|rewrite" => resp::simple(out, "OK"),
            "config|help" | "client|help" | "command|help" | "module|help" => {
                let container = full
                    .split('|')
                    .next()
                    .unwrap_or_default()
                    .to_ascii_uppercase();
                let lines = [
                    format!("{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"),
                    "HELP".to_owned(),
                    "    Print this help.".to_owned(),
                ];
                resp::array(out, lines.len());
                for l in lines {
                    resp::simple(out, &l);
                }
            }
            "client|setname" => {
                let name = &args[2];
                if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                    resp::error(
                        out,
                        "ERR Client names cannot contain spaces, newlines or special characters.",
                    );
                } else {
                    let mut s = self.shared();
                    if let Some(c) = s.clients.get_mut(&sess.id) {
                        c.name = printable(&name[..name.len().min(MAX_CLIENT_NAME)]);
                    }
                    resp::simple(out, "OK");
                }
            }
            "client|getname" => {
                let s = self.shared();
                match s
                    .clients
                    .get(&sess.id)
                    .map(|c| c.name.clone())
                    .filter(|n| !n.is_empty())
                {
                    Some(n) => resp::bulk(out, n.as_bytes()),
                    None => Self::null(sess, out),
                }
            }
            "client|id" => resp::integer(out, sess.id as i64),
            "client|info" | "client|list" => {
                let mut s = self.shared();
                if let Some(c) = s.clients.get_mut(&sess.id) {
                    c.cmd = full;
                    c.last = now / 1000;
                    c.db = sess.db;
                }
                let text = if full == "client|info" {
                    s.clients
                        .get(&sess.id)
                        .map(|c| c.render(now / 1000))
                        .unwrap_or_default()
                } else {
                    Self::client_list(&s, sess.local, now / 1000)
                };
                resp::bulk(out, text.as_bytes());
            }
            "client|kill" => resp::error(out, "ERR No such client"),
            "command|count" => resp::integer(out, 240),
            "command|docs" | "command|info" | "command|list" => resp::array(out, 0),
            _ => unknown_command(args, out),
        }
        Flow::Continue
    }

    fn client_list(s: &Shared, local: SocketAddr, now: u64) -> String {
        let mut text = String::new();
        let base = match local.ip() {
            IpAddr::V4(v4) => v4.octets(),
            IpAddr::V6(_) => [127, 0, 0, 1],
        };
        for r in &s.residents {
            let addr = SocketAddr::new(
                IpAddr::V4(Ipv4Addr::new(base[0], base[1], base[2], r.host)),
                r.port,
            );
            let line = ClientLine {
                id: r.id,
                addr,
                laddr: local,
                fd: 8 + u32::try_from(r.id - 3).unwrap_or(0),
                name: String::new(),
                since: now.saturating_sub(r.age),
                last: now.saturating_sub(r.age % 7),
                db: r.db,
                cmd: r.cmd,
                resp: 2,
            };
            text.push_str(&line.render(now));
        }
        for c in s.clients.values() {
            text.push_str(&c.render(now));
        }
        text
    }

    fn live(&self, port: u16) -> Live {
        let now = now_ms();
        let mut s = self.shared();
        let mut live = s.live.clone();
        live.tcp_port = port;
        live.clients = s.clients.len() + s.residents.len();
        live.dataset = s.store.bytes() as u64;
        live.maxmemory = s
            .config
            .get("maxmemory")
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        live.policy = s
            .config
            .get("maxmemory-policy")
            .cloned()
            .unwrap_or_default();
        live.keyspace = (0..keyspace::DATABASES)
            .filter_map(|db| {
                s.store.purge(db, now);
                let (keys, expires, avg) = s.store.stats(db, now);
                (keys > 0).then_some((db, keys, expires, avg))
            })
            .collect();
        let used_estimate = live.dataset + live.dataset / 3 + self.facts.startup_memory;
        s.live.peak = s.live.peak.max(used_estimate);
        live.peak = s.live.peak;
        live
    }

    fn hello(
        &self,
        ctx: &ServiceCtx,
        sess: &mut Session,
        args: &[Cow<'_, [u8]>],
        out: &mut Vec<u8>,
    ) {
        let mut proto = if sess.resp3 { 3 } else { 2 };
        let mut i = 1;
        if let Some(v) = args.get(1) {
            match parse_i64(v) {
                Some(p @ 2..=3) => proto = p,
                Some(_) => {
                    resp::error(out, "NOPROTO unsupported protocol version");
                    return;
                }
                None => {
                    resp::error(
                        out,
                        "ERR Protocol version is not an integer or out of range",
                    );
                    return;
                }
            }
            i = 2;
        }
        while i < args.len() {
            if eq(&args[i], "auth") && i + 2 < args.len() {
                if let Err(e) = self.auth(ctx, sess, Some(&args[i + 1]), &args[i + 2], "HELLO") {
                    resp::error(out, e);
                    return;
                }
                i += 3;
            } else if eq(&args[i], "setname") && i + 1 < args.len() {
                let mut s = self.shared();
                if let Some(c) = s.clients.get_mut(&sess.id) {
                    c.name = printable(&args[i + 1][..args[i + 1].len().min(MAX_CLIENT_NAME)]);
                }
                i += 2;
            } else {
                let shown = c_str(&args[i]);
                let mut msg = b"ERR Syntax error in HELLO option '".to_vec();
                msg.extend_from_slice(&shown[..shown.len().min(128)]);
                msg.push(b'\'');
                resp::error_bytes(out, &msg);
                return;
            }
        }
        if !sess.authed {
            resp::error(
                out,
                "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            );
            return;
        }
        sess.resp3 = proto == 3;
        if let Some(c) = self.shared().clients.get_mut(&sess.id) {
            c.resp = if sess.resp3 { 3 } else { 2 };
        }
        if sess.resp3 {
            out.extend_from_slice(b"%7\r\n");
        } else {
            resp::array(out, 14);
        }
        let role = if self.shared().live.role == Role::Master {
            "master"
        } else {
            "replica"
        };
        resp::bulk(out, b"server");
        resp::bulk(out, b"redis");
        resp::bulk(out, b"version");
        resp::bulk(out, self.facts.version.as_bytes());
        resp::bulk(out, b"proto");
        resp::integer(out, proto);
        resp::bulk(out, b"id");
        resp::integer(out, sess.id as i64);
        resp::bulk(out, b"mode");
        resp::bulk(out, b"standalone");
        resp::bulk(out, b"role");
        resp::bulk(out, role.as_bytes());
        resp::bulk(out, b"modules");
        resp::array(out, 0);
    }

    fn scan(&self, args: &[Cow<'_, [u8]>], db: usize, now: u64, out: &mut Vec<u8>) {
        let Some(cursor) = std::str::from_utf8(&args[1])
            .ok()
            .and_then(|c| c.parse::<u64>().ok())
        else {
            resp::error(out, "ERR invalid cursor");
            return;
        };
        let (mut pattern, mut count, mut type_filter): (Option<&[u8]>, usize, Option<String>) =
            (None, 10, None);
        let mut i = 2;
        while i < args.len() {
            let Some(value) = args.get(i + 1) else {
                resp::error(out, SYNTAX);
                return;
            };
            if eq(&args[i], "match") {
                pattern = Some(value);
            } else if eq(&args[i], "count") {
                match parse_i64(value) {
                    Some(n) if n >= 1 => {
                        count = usize::try_from(n)
                            .unwrap_or(MAX_SCAN_COUNT)
                            .min(MAX_SCAN_COUNT);
                    }
                    Some(_) => {
                        resp::error(out, SYNTAX);
                        return;
                    }
                    None => {
                        resp::error(out, NOT_INTEGER);
                        return;
                    }
                }
            } else if eq(&args[i], "type") {
                type_filter = Some(String::from_utf8_lossy(value).to_ascii_lowercase());
            } else {
                resp::error(out, SYNTAX);
                return;
            }
            i += 2;
        }
        let mut s = self.shared();
        let keys = s.store.keys(db, now);
        let start = usize::try_from(cursor)
            .unwrap_or(usize::MAX)
            .min(keys.len());
        let end = start.saturating_add(count).min(keys.len());
        let next = if end >= keys.len() { 0 } else { end };
        let mut found = Vec::new();
        for k in &keys[start..end] {
            if pattern.is_some_and(|p| !resp::glob_match(p, k, false)) {
                continue;
            }
            if let Some(t) = &type_filter
                && s.store.get(db, k, now).map(|e| e.value.type_name()) != Some(t.as_str())
            {
                continue;
            }
            found.push(k.clone());
        }
        resp::array(out, 2);
        resp::bulk(out, next.to_string().as_bytes());
        resp::array(out, found.len());
        for k in found {
            resp::bulk(out, &k);
        }
    }

    fn set(&self, sess: &Session, full: &str, args: &[Cow<'_, [u8]>], now: u64, out: &mut Vec<u8>) {
        let db = sess.db;
        let (key, value, mut expires_at, mut nx, mut xx, mut get) = match full {
            "setex" => match parse_i64(&args[2]) {
                Some(t) if t > 0 => (
                    &args[1],
                    &args[3],
                    Some(now.saturating_add_signed(t.saturating_mul(1000))),
                    false,
                    false,
                    false,
                ),
                Some(_) => {
                    resp::error(out, "ERR invalid expire time in 'setex' command");
                    return;
                }
                None => {
                    resp::error(out, NOT_INTEGER);
                    return;
                }
            },
            "setnx" => (&args[1], &args[2], None, true, false, false),
            _ => (&args[1], &args[2], None, false, false, false),
        };
        let mut keep_ttl = false;
        let mut i = 3;
        while full == "set" && i < args.len() {
            let opt = String::from_utf8_lossy(&args[i]).to_ascii_lowercase();
            match opt.as_str() {
                "nx" => nx = true,
                "xx" => xx = true,
                "get" => get = true,
                "keepttl" => keep_ttl = true,
                "ex" | "px" | "exat" | "pxat" => {
                    let Some(n) = args.get(i + 1) else {
                        resp::error(out, SYNTAX);
                        return;
                    };
                    let Some(n) = parse_i64(n) else {
                        resp::error(out, NOT_INTEGER);
                        return;
                    };
                    if n <= 0 {
                        resp::error(out, "ERR invalid expire time in 'set' command");
                        return;
                    }
                    expires_at = Some(match opt.as_str() {
                        "ex" => now.saturating_add_signed(n.saturating_mul(1000)),
                        "px" => now.saturating_add_signed(n),
                        "exat" => u64::try_from(n).unwrap_or(0).saturating_mul(1000),
                        _ => u64::try_from(n).unwrap_or(0),
                    });
                    i += 1;
                }
                _ => {
                    resp::error(out, SYNTAX);
                    return;
                }
            }
            i += 1;
        }
        if nx && xx {
            resp::error(out, SYNTAX);
            return;
        }
        let mut s = self.shared();
        let old = s.store.get(db, key, now).cloned();
        if get
            && let Some(Entry { value: v, .. }) = &old
            && !matches!(v, Value::Str(_))
        {
            resp::error(out, WRONGTYPE);
            return;
        }
        let exists = old.is_some();
        let reply_old = |out: &mut Vec<u8>| match &old {
            Some(Entry {
                value: Value::Str(v),
                ..
            }) => resp::bulk(out, v),
            _ => Self::null(sess, out),
        };
        if (nx && exists) || (xx && !exists) {
            if full == "setnx" {
                resp::integer(out, 0);
            } else if get {
                reply_old(out);
            } else {
                Self::null(sess, out);
            }
            return;
        }
        if keep_ttl {
            expires_at = old.as_ref().and_then(|e| e.expires_at);
        }
        match s.store.set(
            db,
            key,
            Entry {
                value: Value::Str(value.to_vec()),
                expires_at,
            },
        ) {
            Err(Full::OutOfMemory) => resp::error(out, OOM),
            Ok(()) => {
                s.live.dirty += 1;
                if full == "setnx" {
                    resp::integer(out, 1);
                } else if get {
                    reply_old(out);
                } else {
                    out.extend_from_slice(b"+OK\r\n");
                }
            }
        }
    }

    /// Fetches a collection of the expected type; `Err(())` after writing WRONGTYPE.
    fn with_value<T>(
        &self,
        db: usize,
        key: &[u8],
        now: u64,
        out: &mut Vec<u8>,
        want: &str,
        f: impl FnOnce(Option<&mut Value>, &mut Vec<u8>) -> T,
    ) -> Option<T> {
        let mut s = self.shared();
        let entry = s.store.get_mut(db, key, now);
        match entry {
            Some(e) if e.value.type_name() != want => {
                resp::error(out, WRONGTYPE);
                None
            }
            Some(e) => Some(f(Some(&mut e.value), out)),
            None => Some(f(None, out)),
        }
    }

    /// Stores a new or changed collection, within the caps.
    fn store_value(&self, db: usize, key: &[u8], value: Value, out: &mut Vec<u8>) -> bool {
        let mut s = self.shared();
        let expires_at = s.store.get(db, key, now_ms()).and_then(|e| e.expires_at);
        if value.is_empty() {
            s.store.remove(db, key);
            return true;
        }
        if value.len() > keyspace::MAX_ELEMENTS
            || s.store.set(db, key, Entry { value, expires_at }).is_err()
        {
            resp::error(out, OOM);
            return false;
        }
        s.live.dirty += 1;
        true
    }

    fn list(
        &self,
        sess: &Session,
        full: &str,
        args: &[Cow<'_, [u8]>],
        now: u64,
        out: &mut Vec<u8>,
    ) {
        let db = sess.db;
        let current = self.with_value(db, &args[1], now, out, "list", |v, _| match v {
            Some(Value::List(l)) => l.clone(),
            _ => VecDeque::new(),
        });
        let Some(mut list) = current else { return };
        match full {
            "llen" => resp::integer(out, list.len() as i64),
            "lrange" => {
                let (Some(a), Some(b)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
                    resp::error(out, NOT_INTEGER);
                    return;
                };
                let items = range(list.len(), a, b);
                resp::array(out, items.len());
                for i in items {
                    resp::bulk(out, &list[i]);
                }
            }
            "lindex" => {
                let Some(i) = parse_i64(&args[2]) else {
                    resp::error(out, NOT_INTEGER);
                    return;
                };
                let n = list.len() as i64;
                let i = if i < 0 { n + i } else { i };
                match usize::try_from(i).ok().and_then(|i| list.get(i)) {
                    Some(v) => resp::bulk(out, v),
                    None => Self::null(sess, out),
                }
            }
            "lpush" | "rpush" => {
                for v in &args[2..] {
                    if full == "lpush" {
                        list.push_front(v.to_vec());
                    } else {
                        list.push_back(v.to_vec());
                    }
                }
                let n = list.len();
                if self.store_value(db, &args[1], Value::List(list), out) {
                    resp::integer(out, n as i64);
                }
            }
            _ => {
                let count = match args.get(2).map(|c| parse_i64(c)) {
                    None => None,
                    Some(Some(c)) if c >= 0 => Some(usize::try_from(c).unwrap_or(0)),
                    Some(_) => {
                        resp::error(out, "ERR value is out of range, must be positive");
                        return;
                    }
                };
                if list.is_empty() {
                    Self::null(sess, out);
                    return;
                }
                let take = count.unwrap_or(1).min(list.len());
                let popped: Vec<Vec<u8>> = (0..take)
                    .filter_map(|_| {
                        if full == "lpop" {
                            list.pop_front()
                        } else {
                            list.pop_back()
                        }
                    })
                    .collect();
                if !self.store_value(db, &args[1], Value::List(list), out) {
                    return;
                }
                if count.is_some() {
                    resp::array(out, popped.len());
                    for p in &popped {
                        resp::bulk(out, p);
                    }
                } else if let Some(p) = popped.first() {
                    resp::bulk(out, p);
                }
            }
        }
    }

    fn hash(
        &self,
        sess: &Session,
        full: &str,
        args: &[Cow<'_, [u8]>],
        now: u64,
        out: &mut Vec<u8>,
    ) {
        let db = sess.db;
        let current = self.with_value(db, &args[1], now, out, "hash", |v, _| match v {
            Some(Value::Hash(h)) => h.clone(),
            _ => Vec::new(),
        });
        let Some(mut hash) = current else { return };
        let field = |name: &[u8]| {
            hash.iter()
                .find(|(k, _)| k.as_slice() == name)
                .map(|(_, v)| v.clone())
        };
        match full {
            "hget" => match field(&args[2]) {
                Some(v) => resp::bulk(out, &v),
                None => Self::null(sess, out),
            },
            "hexists" => resp::integer(out, i64::from(field(&args[2]).is_some())),
            "hlen" => resp::integer(out, hash.len() as i64),
            "hgetall" | "hkeys" | "hvals" => {
                let per = if full == "hgetall" { 2 } else { 1 };
                resp::array(out, hash.len() * per);
                for (k, v) in &hash {
                    if full != "hvals" {
                        resp::bulk(out, k);
                    }
                    if full != "hkeys" {
                        resp::bulk(out, v);
                    }
                }
            }
            "hset" | "hmset" => {
                if !args.len().is_multiple_of(2) {
                    wrong_args(out, full);
                    return;
                }
                let mut added = 0;
                for pair in args[2..].chunks(2) {
                    match hash.iter_mut().find(|(k, _)| k.as_slice() == &*pair[0]) {
                        Some(slot) => slot.1 = pair[1].to_vec(),
                        None => {
                            hash.push((pair[0].to_vec(), pair[1].to_vec()));
                            added += 1;
                        }
                    }
                }
                if self.store_value(db, &args[1], Value::Hash(hash), out) {
                    if full == "hset" {
                        resp::integer(out, added);
                    } else {
                        resp::simple(out, "OK");
                    }
                }
            }
            _ => {
                let before = hash.len();
                hash.retain(|(k, _)| !args[2..].iter().any(|a| a.as_ref() == k.as_slice()));
                let removed = before - hash.len();
                if before > 0 && self.store_value(db, &args[1], Value::Hash(hash), out)
                    || before == 0
                {
                    resp::integer(out, removed as i64);
                }
            }
        }
    }

    fn set_cmd(
        &self,
        sess: &Session,
        full: &str,
        args: &[Cow<'_, [u8]>],
        now: u64,
        out: &mut Vec<u8>,
    ) {
        let db = sess.db;
        let current = self.with_value(db, &args[1], now, out, "set", |v, _| match v {
            Some(Value::Set(s)) => s.clone(),
            _ => Vec::new(),
        });
        let Some(mut set) = current else { return };
        match full {
            "smembers" => {
                resp::array(out, set.len());
                for m in &set {
                    resp::bulk(out, m);
                }
            }
            "scard" => resp::integer(out, set.len() as i64),
            "sismember" => resp::integer(
                out,
                i64::from(set.iter().any(|m| m.as_slice() == &*args[2])),
            ),
            "sadd" => {
                let mut added = 0;
                for m in &args[2..] {
                    if !set.iter().any(|x| x.as_slice() == m.as_ref()) {
                        set.push(m.to_vec());
                        added += 1;
                    }
                }
                if self.store_value(db, &args[1], Value::Set(set), out) {
                    resp::integer(out, added);
                }
            }
            _ => {
                let before = set.len();
                set.retain(|m| !args[2..].iter().any(|a| a.as_ref() == m.as_slice()));
                let removed = before - set.len();
                if before == 0 || self.store_value(db, &args[1], Value::Set(set), out) {
                    resp::integer(out, removed as i64);
                }
            }
        }
    }

    fn zset(
        &self,
        sess: &Session,
        full: &str,
        args: &[Cow<'_, [u8]>],
        now: u64,
        out: &mut Vec<u8>,
    ) {
        let db = sess.db;
        let current = self.with_value(db, &args[1], now, out, "zset", |v, _| match v {
            Some(Value::ZSet(z)) => z.clone(),
            _ => Vec::new(),
        });
        let Some(mut zset) = current else { return };
        let score_text = |s: f64| {
            if s.fract() == 0.0 && s.abs() < 1e17 {
                format!("{s:.0}")
            } else {
                format!("{s}")
            }
        };
        match full {
            "zcard" => resp::integer(out, zset.len() as i64),
            "zscore" => match zset.iter().find(|(_, m)| m.as_slice() == &*args[2]) {
                Some((s, _)) => resp::bulk(out, score_text(*s).as_bytes()),
                None => Self::null(sess, out),
            },
            "zrange" | "zrevrange" => {
                let (Some(a), Some(b)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
                    resp::error(out, NOT_INTEGER);
                    return;
                };
                let withscores = match args.get(4) {
                    None => false,
                    Some(w) if eq(w, "withscores") && args.len() == 5 => true,
                    Some(_) => {
                        resp::error(out, SYNTAX);
                        return;
                    }
                };
                if full == "zrevrange" {
                    zset.reverse();
                }
                let items = range(zset.len(), a, b);
                resp::array(out, items.len() * if withscores { 2 } else { 1 });
                for i in items {
                    resp::bulk(out, &zset[i].1);
                    if withscores {
                        resp::bulk(out, score_text(zset[i].0).as_bytes());
                    }
                }
            }
            _ => {
                if !args.len().is_multiple_of(2) {
                    resp::error(out, SYNTAX);
                    return;
                }
                let mut added = 0;
                for pair in args[2..].chunks(2) {
                    let Some(score) = std::str::from_utf8(&pair[0])
                        .ok()
                        .and_then(|s| s.parse::<f64>().ok())
                        .filter(|s| !s.is_nan())
                    else {
                        resp::error(out, "ERR value is not a valid float");
                        return;
                    };
                    match zset.iter_mut().find(|(_, m)| m.as_slice() == &*pair[1]) {
                        Some(slot) => slot.0 = score,
                        None => {
                            zset.push((score, pair[1].to_vec()));
                            added += 1;
                        }
                    }
                }
                zset.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
                if self.store_value(db, &args[1], Value::ZSet(zset), out) {
                    resp::integer(out, added);
                }
            }
        }
    }

    fn eval(&self, full: &str, args: &[Cow<'_, [u8]>], out: &mut Vec<u8>) {
        let script = &args[1];
        let Some(numkeys) = parse_i64(&args[2]) else {
            resp::error(out, NOT_INTEGER);
            return;
        };
        if numkeys < 0 || usize::try_from(numkeys).is_ok_and(|n| n > args.len() - 3) {
            resp::error(
                out,
                if numkeys < 0 {
                    "ERR Number of keys can't be negative"
                } else {
                    "ERR Number of keys can't be greater than number of args"
                },
            );
            return;
        }
        if full == "evalsha" {
            resp::error(out, "NOSCRIPT No matching script. Please use EVAL.");
            return;
        }
        let sha = hex::encode(sha1::Sha1::digest(script.as_ref()));
        let text = String::from_utf8_lossy(script);
        // The sandbox of a patched Redis refuses the globals every Lua escape needs
        // (CVE-2022-0543 payloads reach for `package`).
        for global in [
            "package",
            "io",
            "os",
            "loadstring",
            "dofile",
            "require",
            "loadfile",
        ] {
            let used = text.match_indices(global).any(|(at, _)| {
                let before = text[..at].chars().next_back();
                let after = text[at + global.len()..].chars().next();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            });
            if used {
                resp::error(
                    out,
                    &format!(
                        "ERR user_script:1: Script attempted to access nonexistent global variable '{global}' script: {sha}, on @user_script:1."
                    ),
                );
                return;
            }
        }
        let body = text.trim();
        match body.strip_prefix("return ").map(str::trim) {
            Some(v) if v.parse::<i64>().is_ok() => resp::integer(out, v.parse().unwrap_or(0)),
            Some(v)
                if v.len() >= 2
                    && (v.starts_with('\'') && v.ends_with('\'')
                        || v.starts_with('"') && v.ends_with('"')) =>
            {
                resp::bulk(out, &v.as_bytes()[1..v.len() - 1]);
            }
            _ => resp::null_bulk(out),
        }
    }

    fn config_set(&self, args: &[Cow<'_, [u8]>], out: &mut Vec<u8>) {
        if !args.len().is_multiple_of(2) {
            wrong_args(out, "config|set");
            return;
        }
        let mut s = self.shared();
        let mut updates = Vec::new();
        for pair in args[2..].chunks(2) {
            let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
            let value = String::from_utf8_lossy(&pair[1]).into_owned();
            let Some(&(key, kind, _)) = PARAMS.iter().find(|(k, _, _)| *k == name) else {
                let shown = c_str(&pair[0]);
                let mut msg =
                    b"ERR Unknown option or number of arguments for CONFIG SET - '".to_vec();
                msg.extend_from_slice(&shown[..shown.len().min(128)]);
                msg.push(b'\'');
                resp::error_bytes(out, &msg);
                return;
            };
            let refuse = |why: &str, out: &mut Vec<u8>| {
                resp::error(
                    out,
                    &format!(
                        "ERR CONFIG SET failed (possibly related to argument '{key}') - {why}"
                    ),
                );
            };
            let stored = match kind {
                Kind::Protected => return refuse("can't set protected config", out),
                Kind::Immutable => return refuse("can't set immutable config", out),
                Kind::Bool => match value.to_ascii_lowercase().as_str() {
                    v @ ("yes" | "no") => v.to_owned(),
                    _ => return refuse("argument must be 'yes' or 'no'", out),
                },
                Kind::Int => match value.parse::<i64>() {
                    Ok(n) => n.to_string(),
                    Err(_) => return refuse("argument couldn't be parsed into an integer", out),
                },
                Kind::Memory => match info::parse_memory(&value) {
                    Some(n) => n.to_string(),
                    None => return refuse("argument must be a memory value", out),
                },
                Kind::Text => value,
            };
            updates.push((key, stored));
        }
        for (k, v) in updates {
            s.config.insert(k, v);
        }
        resp::simple(out, "OK");
    }
}

/// Redis' index range over `len` elements (`start`/`stop` inclusive, negative from the
/// end), capped at [`MAX_RANGE`] elements.
fn range(len: usize, start: i64, stop: i64) -> std::ops::Range<usize> {
    let n = len as i64;
    let start = if start < 0 { (n + start).max(0) } else { start };
    let stop = if stop < 0 { n + stop } else { stop.min(n - 1) };
    if start > stop || start >= n {
        return 0..0;
    }
    let (a, b) = (
        usize::try_from(start).unwrap_or(0),
        usize::try_from(stop).unwrap_or(0) + 1,
    );
    a..b.min(a + MAX_RANGE)
}

#[cfg(test)]
mod tests;
