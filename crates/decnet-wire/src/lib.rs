//! IO-free codecs shared by DECNET's processes.
//!
//! Every decoder here is total and bounded: any byte string yields a value, "need more
//! input", or an error, never a panic, and every length or count is checked against a
//! named `MAX_*` constant. Time and randomness are parameters. Each decoder has a property
//! test (and a cargo-fuzz target under `fuzz/`).
//!
//! Modules:
//! - [`rfc5424`]: the event line format (`<PRI>1 TS HOST APP - MSGID [relay@55555 ...] MSG`);
//! - [`rfc5425`]: octet-counted framing of RFC 5424 lines over TLS;
//! - [`bus`]: frames of the host-local service bus;
//! - [`resp`], [`mysql`], [`pgwire`], [`rfb`], [`smtp`], [`ftp`], [`telnet`]: honeypot protocols.
//!
//! It does no IO and knows nothing about sockets, processes or the database.

pub mod bus;
pub mod ftp;
pub mod mysql;
pub mod pgwire;
pub mod resp;
pub mod rfb;
pub mod rfc5424;
pub mod rfc5425;
pub mod smtp;
pub mod telnet;
