//! The reference's event conventions over a parsed line, and the attacker's address.

use std::net::{IpAddr, SocketAddr};

use super::{Line, NIL};

/// SD keys that name the attacker's address, in the reference's order of preference.
pub const ATTACKER_KEYS: [&str; 7] = [
    "src_ip",
    "src",
    "client_ip",
    "remote_ip",
    "remote_addr",
    "target_ip",
    "ip",
];

/// SD keys that name the attacker's port when the address itself carries none.
pub const PORT_KEYS: [&str; 2] = ["src_port", "remote_port"];

/// A line seen through the reference's conventions: the event's fields are the first
/// `relay@55555` element, a double-wrapped line (outer MSGID `-`, a whole RFC 5424 line
/// as MSG, as rsyslog relays `logger` lines) stands for its inner line, and a bare
/// `CMD …` MSG under a nil MSGID is a `command` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective<'a> {
    /// The line the event comes from: [`Line::inner`] of a double-wrapped line, else the
    /// line itself.
    pub line: &'a Line,
    /// Event type: MSGID; `command` for a nil MSGID with a bare `CMD …` MSG; else `-`.
    pub event_type: &'a str,
    /// The parameters of the first `relay@55555` element (empty when there is none).
    pub params: &'a [(String, String)],
    /// MSG.
    pub msg: Option<&'a str>,
    /// Whether the line was double-wrapped.
    pub unwrapped: bool,
}

/// The effective event of `line` (see [`Effective`]).
pub fn effective(line: &Line) -> Effective<'_> {
    let (line, unwrapped) = match line.inner() {
        Some(inner) => (inner, true),
        None => (line, false),
    };
    let msg = line.msg.as_deref();
    let event_type =
        if line.msgid == NIL && msg.is_some_and(|m| m == "CMD" || m.starts_with("CMD ")) {
            "command"
        } else {
            line.msgid.as_str()
        };
    Effective {
        line,
        event_type,
        params: line.relay_params(),
        msg,
        unwrapped,
    }
}

impl Effective<'_> {
    /// The value of the first `key` among [`Effective::params`].
    pub fn param(&self, key: &str) -> Option<&str> {
        param_in(self.params, key)
    }

    /// [`attacker_addr`] of the effective line.
    pub fn attacker_addr(&self) -> Option<(IpAddr, Option<u16>)> {
        attacker_addr(self.line)
    }
}

fn param_in<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Reads `ip`, `ip:port`, `[v6]` or `[v6]:port`; IPv4-mapped IPv6 becomes IPv4.
fn split_addr(value: &str) -> Option<(IpAddr, Option<u16>)> {
    let value = value.trim();
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Some((ip.to_canonical(), None));
    }
    if let Ok(sa) = value.parse::<SocketAddr>() {
        return Some((sa.ip().to_canonical(), Some(sa.port())));
    }
    let bracketed = value.strip_prefix('[')?.strip_suffix(']')?;
    let ip = bracketed.parse::<std::net::Ipv6Addr>().ok()?;
    Some((IpAddr::V6(ip).to_canonical(), None))
}

/// A decimal port number (digits only, no sign).
fn port_number(value: &str) -> Option<u16> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

/// The attacker's address from the SD keys of the first `relay@55555` element of the
/// line's effective event (see [`effective`]: the inner line of a double-wrapped one) only,
/// never from MSG prose (SV-3): the first of [`ATTACKER_KEYS`] whose value is an address
/// (`ip`, `ip:port`, `[v6]:port`; values that are not addresses are skipped). The port
/// is the one written with the address, else the first of [`PORT_KEYS`] that is a port
/// number.
pub fn attacker_addr(line: &Line) -> Option<(IpAddr, Option<u16>)> {
    let params = effective(line).params;
    let (ip, port) = ATTACKER_KEYS
        .iter()
        .find_map(|key| param_in(params, key).and_then(split_addr))?;
    let port = port.or_else(|| {
        PORT_KEYS
            .iter()
            .find_map(|key| param_in(params, key).and_then(port_number))
    });
    Some((ip, port))
}
