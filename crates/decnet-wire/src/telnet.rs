//! Telnet (RFC 854/855) for a server: an IO-free decoder that separates data from IAC
//! commands, bounded subnegotiation (NAWS, TERMINAL-TYPE), and option negotiation by the
//! RFC 1143 "Q method" so no exchange with any client can loop.
//!
//! The server's opening offer is that of busybox `telnetd` (the daemon the reference's
//! telnet decky ran): `DO ECHO`, `DO NAWS`, `WILL ECHO`, `WILL SUPPRESS-GO-AHEAD`.

/// Interpret As Command.
pub const IAC: u8 = 255;
/// Refuse / stop an option on the peer's side.
pub const DONT: u8 = 254;
/// Ask the peer to enable an option.
pub const DO: u8 = 253;
/// Refuse / stop an option on our side.
pub const WONT: u8 = 252;
/// Offer an option on our side.
pub const WILL: u8 = 251;
/// Subnegotiation begin.
pub const SB: u8 = 250;
/// Go ahead.
pub const GA: u8 = 249;
/// Erase line.
pub const EL: u8 = 248;
/// Erase character.
pub const EC: u8 = 247;
/// Are you there.
pub const AYT: u8 = 246;
/// Abort output.
pub const AO: u8 = 245;
/// Interrupt process.
pub const IP: u8 = 244;
/// Break.
pub const BRK: u8 = 243;
/// Data mark.
pub const DM: u8 = 242;
/// No operation.
pub const NOP: u8 = 241;
/// Subnegotiation end.
pub const SE: u8 = 240;

/// Option: echo.
pub const OPT_ECHO: u8 = 1;
/// Option: suppress go-ahead.
pub const OPT_SGA: u8 = 3;
/// Option: terminal type.
pub const OPT_TTYPE: u8 = 24;
/// Option: negotiate about window size.
pub const OPT_NAWS: u8 = 31;

/// Longest subnegotiation payload kept; longer ones are dropped whole.
pub const MAX_SUBNEG: usize = 256;
/// Longest terminal type kept.
pub const MAX_TTYPE: usize = 40;

/// Something the client signalled besides data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// NAWS: columns and rows.
    WindowSize(u16, u16),
    /// TERMINAL-TYPE IS.
    TerminalType(String),
    /// IAC IP (the client's ^C).
    Interrupt,
    /// IAC AYT.
    AreYouThere,
    /// IAC EC.
    EraseChar,
    /// IAC EL.
    EraseLine,
    /// IAC BRK.
    Break,
}

/// What one call to [`Telnet::feed`] produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Feed {
    /// Application data, IAC sequences removed, `IAC IAC` → 255, `CR NUL` → CR.
    pub data: Vec<u8>,
    /// Bytes to send back (negotiation answers).
    pub reply: Vec<u8>,
    /// Commands and subnegotiations seen.
    pub events: Vec<Event>,
}

/// RFC 1143 option state (no `WantNo` or queue bits: the server never withdraws an option).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Q {
    #[default]
    No,
    Yes,
    WantYes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Data,
    Cr,
    Iac,
    Verb(u8),
    Sb,
    SbOption(u8),
    SbIac(u8),
}

/// One connection's telnet state.
#[derive(Debug, Clone)]
pub struct Telnet {
    state: State,
    us: [Q; 256],
    him: [Q; 256],
    sb: Vec<u8>,
    sb_overflow: bool,
}

impl Default for Telnet {
    fn default() -> Self {
        Telnet {
            state: State::Data,
            us: [Q::No; 256],
            him: [Q::No; 256],
            sb: Vec::new(),
            sb_overflow: false,
        }
    }
}

/// Options we are willing to enable on our side.
fn we_support(option: u8) -> bool {
    matches!(option, OPT_ECHO | OPT_SGA)
}

/// Options we accept the client enabling.
fn he_may(option: u8) -> bool {
    matches!(option, OPT_NAWS | OPT_SGA | OPT_TTYPE)
}

impl Telnet {
    /// A fresh state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The server's opening negotiation (busybox telnetd's).
    pub fn opening(&mut self) -> Vec<u8> {
        self.him[usize::from(OPT_ECHO)] = Q::WantYes;
        self.him[usize::from(OPT_NAWS)] = Q::WantYes;
        self.us[usize::from(OPT_ECHO)] = Q::WantYes;
        self.us[usize::from(OPT_SGA)] = Q::WantYes;
        vec![
            IAC, DO, OPT_ECHO, IAC, DO, OPT_NAWS, IAC, WILL, OPT_ECHO, IAC, WILL, OPT_SGA,
        ]
    }

    /// Whether we (the server) echo: the client then expects no local echo.
    pub fn server_echoes(&self) -> bool {
        self.us[usize::from(OPT_ECHO)] == Q::Yes
    }

    /// Escapes application data for sending (`255` → `IAC IAC`).
    pub fn escape(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 8);
        for &b in data {
            out.push(b);
            if b == IAC {
                out.push(IAC);
            }
        }
        out
    }

    /// Feeds bytes from the client.
    pub fn feed(&mut self, input: &[u8]) -> Feed {
        let mut out = Feed::default();
        for &b in input {
            self.state = match self.state {
                State::Data => match b {
                    IAC => State::Iac,
                    b'\r' => {
                        out.data.push(b);
                        State::Cr
                    }
                    _ => {
                        out.data.push(b);
                        State::Data
                    }
                },
                State::Cr => match b {
                    0 => State::Data,
                    IAC => State::Iac,
                    _ => {
                        out.data.push(b);
                        if b == b'\r' { State::Cr } else { State::Data }
                    }
                },
                State::Iac => match b {
                    IAC => {
                        out.data.push(IAC);
                        State::Data
                    }
                    WILL | WONT | DO | DONT => State::Verb(b),
                    SB => State::Sb,
                    IP => {
                        out.events.push(Event::Interrupt);
                        State::Data
                    }
                    AYT => {
                        out.events.push(Event::AreYouThere);
                        State::Data
                    }
                    EC => {
                        out.events.push(Event::EraseChar);
                        State::Data
                    }
                    EL => {
                        out.events.push(Event::EraseLine);
                        State::Data
                    }
                    BRK => {
                        out.events.push(Event::Break);
                        State::Data
                    }
                    // NOP, DM, GA, AO, SE outside SB and unknown commands are ignored.
                    _ => State::Data,
                },
                State::Verb(verb) => {
                    self.negotiate(verb, b, &mut out.reply);
                    State::Data
                }
                State::Sb => {
                    self.sb.clear();
                    self.sb_overflow = false;
                    State::SbOption(b)
                }
                State::SbOption(option) => {
                    if b == IAC {
                        State::SbIac(option)
                    } else {
                        self.push_sb(b);
                        State::SbOption(option)
                    }
                }
                State::SbIac(option) => match b {
                    SE => {
                        self.finish_sb(option, &mut out.events);
                        State::Data
                    }
                    IAC => {
                        self.push_sb(IAC);
                        State::SbOption(option)
                    }
                    // A broken subnegotiation: drop it and resume on data.
                    _ => State::Data,
                },
            };
        }
        out
    }

    fn push_sb(&mut self, b: u8) {
        if self.sb.len() < MAX_SUBNEG {
            self.sb.push(b);
        } else {
            self.sb_overflow = true;
        }
    }

    fn finish_sb(&mut self, option: u8, events: &mut Vec<Event>) {
        if self.sb_overflow {
            return;
        }
        match option {
            OPT_NAWS if self.sb.len() == 4 => {
                let w = u16::from_be_bytes([self.sb[0], self.sb[1]]);
                let h = u16::from_be_bytes([self.sb[2], self.sb[3]]);
                events.push(Event::WindowSize(w, h));
            }
            OPT_TTYPE if self.sb.first() == Some(&0) => {
                let name: String = self.sb[1..]
                    .iter()
                    .filter(|b| b.is_ascii_graphic())
                    .take(MAX_TTYPE)
                    .map(|b| char::from(*b))
                    .collect();
                events.push(Event::TerminalType(name));
            }
            _ => {}
        }
    }

    /// RFC 1143: answer only what changes state, so two conforming peers never loop.
    fn negotiate(&mut self, verb: u8, option: u8, reply: &mut Vec<u8>) {
        let i = usize::from(option);
        match verb {
            DO => match self.us[i] {
                Q::No => {
                    if we_support(option) {
                        self.us[i] = Q::Yes;
                        reply.extend_from_slice(&[IAC, WILL, option]);
                    } else {
                        reply.extend_from_slice(&[IAC, WONT, option]);
                    }
                }
                Q::WantYes => self.us[i] = Q::Yes,
                Q::Yes => {}
            },
            DONT => match self.us[i] {
                Q::Yes => {
                    self.us[i] = Q::No;
                    reply.extend_from_slice(&[IAC, WONT, option]);
                }
                Q::WantYes => self.us[i] = Q::No,
                Q::No => {}
            },
            WILL => match self.him[i] {
                Q::No => {
                    if he_may(option) {
                        self.him[i] = Q::Yes;
                        reply.extend_from_slice(&[IAC, DO, option]);
                        if option == OPT_TTYPE {
                            reply.extend_from_slice(&[IAC, SB, OPT_TTYPE, 1, IAC, SE]);
                        }
                    } else {
                        reply.extend_from_slice(&[IAC, DONT, option]);
                    }
                }
                Q::WantYes => self.him[i] = Q::Yes,
                Q::Yes => {}
            },
            WONT => match self.him[i] {
                Q::Yes => {
                    self.him[i] = Q::No;
                    reply.extend_from_slice(&[IAC, DONT, option]);
                }
                Q::WantYes => self.him[i] = Q::No,
                Q::No => {}
            },
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn linux_client_handshake() {
        let mut t = Telnet::new();
        let open = t.opening();
        assert_eq!(open, [IAC, DO, 1, IAC, DO, 31, IAC, WILL, 1, IAC, WILL, 3]);
        // A netkit telnet client's answers plus its own offers.
        let f = t.feed(&[
            IAC, WONT, 1, IAC, WILL, 31, IAC, DO, 1, IAC, DO, 3, IAC, WILL, 24, IAC, SB, 31, 0,
            120, 0, 40, IAC, SE,
        ]);
        assert!(t.server_echoes());
        assert_eq!(f.reply, [IAC, DO, 24, IAC, SB, 24, 1, IAC, SE]);
        assert_eq!(f.events, [Event::WindowSize(120, 40)]);
        assert!(f.data.is_empty());
        let f = t.feed(&[
            IAC, SB, 24, 0, b'X', b'T', b'E', b'R', b'M', IAC, SE, b'r', b'o', b'o', b't', b'\r', 0,
        ]);
        assert_eq!(f.events, [Event::TerminalType("XTERM".into())]);
        assert_eq!(f.data, b"root\r");
    }

    #[test]
    fn data_escapes_and_commands() {
        let mut t = Telnet::new();
        let f = t.feed(&[
            b'a', IAC, IAC, b'b', IAC, IP, IAC, NOP, b'\r', b'\n', IAC, AYT,
        ]);
        assert_eq!(f.data, [b'a', 255, b'b', b'\r', b'\n']);
        assert_eq!(f.events, [Event::Interrupt, Event::AreYouThere]);
        assert_eq!(Telnet::escape(&[1, 255, 2]), [1, 255, 255, 2]);
        // Unsupported options are refused once, repeats in the refused state too (no state
        // change, no loop), and a DONT for a disabled option is ignored.
        let f = t.feed(&[IAC, DO, 99, IAC, DONT, 99, IAC, WILL, 5]);
        assert_eq!(f.reply, [IAC, WONT, 99, IAC, DONT, 5]);
    }

    #[test]
    fn oversized_subnegotiation_is_dropped() {
        let mut t = Telnet::new();
        let mut input = vec![IAC, SB, OPT_TTYPE, 0];
        input.extend(std::iter::repeat_n(b'A', MAX_SUBNEG * 4));
        input.extend([IAC, SE, b'x']);
        let f = t.feed(&input);
        assert!(f.events.is_empty());
        assert_eq!(f.data, b"x");
        assert!(t.sb.len() <= MAX_SUBNEG);
    }

    /// A peer with its own RFC 1143 policy, to check that negotiations settle.
    fn settle(client_offers: &[u8]) -> usize {
        let mut server = Telnet::new();
        let mut client = Telnet::new();
        let mut to_client = server.opening();
        let mut to_server = client_offers.to_vec();
        let mut rounds = 0;
        while (!to_client.is_empty() || !to_server.is_empty()) && rounds < 50 {
            let fs = server.feed(&std::mem::take(&mut to_server));
            let fc = client.feed(&std::mem::take(&mut to_client));
            to_client = fs.reply;
            to_server = fc.reply;
            rounds += 1;
        }
        rounds
    }

    #[test]
    fn negotiations_settle() {
        assert!(settle(&[IAC, WILL, 24, IAC, DO, 1, IAC, WILL, 31]) < 10);
    }

    proptest! {
        #[test]
        fn any_bytes_are_total_and_bounded(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
            let mut t = Telnet::new();
            for chunk in &chunks {
                let f = t.feed(chunk);
                prop_assert!(f.data.len() <= chunk.len());
                // At most one 3-byte answer (plus a TTYPE SEND) per 3 input bytes.
                prop_assert!(f.reply.len() <= chunk.len() * 3);
                prop_assert!(t.sb.len() <= MAX_SUBNEG);
            }
        }

        /// One opening request per option, as a client that tracks its own state sends
        /// them. (Contradicting requests for one option in a row, such as DO then DONT
        /// unanswered, break RFC 1143 on the client's side: two peers can then answer
        /// each other forever, one reply per request, which costs the server nothing
        /// beyond the bytes the client sends; `any_bytes_are_total_and_bounded` covers it.)
        #[test]
        fn any_offers_settle(offers in proptest::collection::btree_map(any::<u8>(), prop_oneof![Just(DO), Just(DONT), Just(WILL), Just(WONT)], 0..40)) {
            let bytes: Vec<u8> = offers.iter().flat_map(|(o, v)| [IAC, *v, *o]).collect();
            prop_assert!(settle(&bytes) < 50);
        }
    }
}
