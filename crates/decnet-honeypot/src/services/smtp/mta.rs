//! Reply texts of the imitated mail servers (Postfix in full; Exim and Sendmail for the
//! dialogue a scanner, a spammer or a credential bot sees).

use std::net::IpAddr;

use rand::Rng;
use time::OffsetDateTime;

use crate::persona::Persona;

/// The imitated MTA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mta {
    /// Postfix (with the distro tag Debian and Ubuntu append to the banner).
    Postfix(Option<&'static str>),
    /// Exim (version).
    Exim(&'static str),
    /// Sendmail (version string).
    Sendmail(&'static str),
}

/// Reply lines without the code (placeholders: `{host}`, `{arg}`, `{id}`, `{ip}`,
/// `{helo}`).
#[derive(Debug, Clone, Copy)]
pub struct Texts {
    /// `EHLO` extension lines after the greeting line.
    pub ehlo_extensions: &'static [&'static str],
    /// First EHLO line.
    pub ehlo_greeting: &'static str,
    /// HELO answer.
    pub helo: &'static str,
    /// 250 to MAIL.
    pub mail_ok: &'static str,
    /// 250 to RCPT.
    pub rcpt_ok: &'static str,
    /// 354 to DATA.
    pub data_go: &'static str,
    /// 250 after the message.
    pub queued: &'static str,
    /// 250 to RSET.
    pub rset: &'static str,
    /// 250 to NOOP.
    pub noop: &'static str,
    /// 221 to QUIT.
    pub bye: &'static str,
    /// Unknown command (code, text).
    pub unknown: (u16, &'static str),
    /// AUTH failure (code, text).
    pub auth_failed: (u16, &'static str),
    /// VRFY answer (code, text).
    pub vrfy: (u16, &'static str),
    /// RCPT before MAIL (code, text).
    pub need_mail: (u16, &'static str),
    /// DATA without recipients (code, text).
    pub need_rcpt: (u16, &'static str),
    /// DATA without MAIL (code, text).
    pub need_rcpt_cmd: (u16, &'static str),
    /// Nested MAIL (code, text).
    pub nested_mail: (u16, &'static str),
    /// MAIL syntax error (code, text).
    pub mail_syntax: (u16, &'static str),
    /// Bad sender address (code, text).
    pub bad_sender: (u16, &'static str),
    /// RCPT syntax error (code, text).
    pub rcpt_syntax: (u16, &'static str),
    /// Bad recipient address (code, text).
    pub bad_rcpt: (u16, &'static str),
    /// Message over the size limit (code, text).
    pub too_big: (u16, &'static str),
    /// SIZE= over the limit (code, text).
    pub size_exceeded: (u16, &'static str),
    /// Too many recipients (code, text).
    pub too_many_rcpts: (u16, &'static str),
    /// Command needs HELO/EHLO first (code, text).
    pub need_helo: (u16, &'static str),
    /// Too many errors (code, text).
    pub too_many_errors: (u16, &'static str),
    /// Idle timeout (code, text).
    pub timeout: (u16, &'static str),
    /// A non-SMTP protocol was spoken (code, text).
    pub forbidden: (u16, &'static str),
    /// Line too long (code, text).
    pub line_too_long: (u16, &'static str),
    /// AUTH aborted with `*` (code, text).
    pub auth_aborted: (u16, &'static str),
    /// AUTH response not base64 (code, text).
    pub auth_decode: (u16, &'static str),
    /// AUTH with an unknown mechanism (code, text).
    pub auth_mechanism: (u16, &'static str),
    /// AUTH during a transaction (code, text).
    pub auth_in_mail: (u16, &'static str),
    /// HELO/EHLO without an argument (code, text).
    pub helo_syntax: (u16, &'static str),
    /// STARTTLS and other recognised but unavailable commands (code, text).
    pub not_implemented: (u16, &'static str),
}

const POSTFIX: Texts = Texts {
    ehlo_greeting: "{host}",
    ehlo_extensions: &[
        "PIPELINING",
        "SIZE 10240000",
        "VRFY",
        "ETRN",
        "AUTH PLAIN LOGIN",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "DSN",
        "SMTPUTF8",
    ],
    helo: "{host}",
    mail_ok: "2.1.0 Ok",
    rcpt_ok: "2.1.5 Ok",
    data_go: "End data with <CR><LF>.<CR><LF>",
    queued: "2.0.0 Ok: queued as {id}",
    rset: "2.0.0 Ok",
    noop: "2.0.0 Ok",
    bye: "2.0.0 Bye",
    unknown: (502, "5.5.2 Error: command not recognized"),
    auth_failed: (
        535,
        "5.7.8 Error: authentication failed: authentication failure",
    ),
    vrfy: (252, "2.0.0 {arg}"),
    need_mail: (503, "5.5.1 Error: need MAIL command"),
    need_rcpt: (554, "5.5.1 Error: no valid recipients"),
    need_rcpt_cmd: (503, "5.5.1 Error: need RCPT command"),
    nested_mail: (503, "5.5.1 Error: nested MAIL command"),
    mail_syntax: (501, "5.5.4 Syntax: MAIL FROM:<address>"),
    bad_sender: (501, "5.1.7 Bad sender address syntax"),
    rcpt_syntax: (501, "5.5.4 Syntax: RCPT TO:<address>"),
    bad_rcpt: (501, "5.1.3 Bad recipient address syntax"),
    too_big: (552, "5.3.4 Error: message file too big"),
    size_exceeded: (552, "5.3.4 Message size exceeds fixed limit"),
    too_many_rcpts: (452, "4.5.3 Error: too many recipients"),
    need_helo: (503, "5.5.1 Error: send HELO/EHLO first"),
    too_many_errors: (421, "4.7.0 {host} Error: too many errors"),
    timeout: (421, "4.4.2 {host} Error: timeout exceeded"),
    forbidden: (221, "2.7.0 Error: I can break rules, too. Goodbye."),
    line_too_long: (500, "5.5.0 Error: line too long"),
    auth_aborted: (501, "5.7.0 Authentication aborted"),
    auth_decode: (501, "5.5.2 Cannot decode response"),
    auth_mechanism: (
        535,
        "5.7.8 Error: authentication failed: Invalid authentication mechanism",
    ),
    auth_in_mail: (503, "5.5.1 Error: MAIL transaction in progress"),
    helo_syntax: (501, "Syntax: {verb} hostname"),
    not_implemented: (502, "5.5.1 Error: command not implemented"),
};

const EXIM: Texts = Texts {
    ehlo_greeting: "{host} Hello {helo} [{ip}]",
    ehlo_extensions: &[
        "SIZE 52428800",
        "8BITMIME",
        "PIPELINING",
        "AUTH PLAIN LOGIN",
        "PRDR",
        "HELP",
    ],
    helo: "{host} Hello {helo} [{ip}]",
    mail_ok: "OK",
    rcpt_ok: "Accepted",
    data_go: "Enter message, ending with \".\" on a line by itself",
    queued: "OK id={id}",
    rset: "Reset OK",
    noop: "OK",
    bye: "{host} closing connection",
    unknown: (500, "unrecognized command"),
    auth_failed: (535, "Incorrect authentication data"),
    vrfy: (252, "Administrative prohibition"),
    need_mail: (503, "sender not yet given"),
    need_rcpt: (503, "valid RCPT command must precede DATA"),
    need_rcpt_cmd: (503, "valid RCPT command must precede DATA"),
    nested_mail: (503, "sender already given"),
    mail_syntax: (501, "MAIL must have an address operand"),
    bad_sender: (501, "{arg}: malformed address"),
    rcpt_syntax: (501, "RCPT must have an address operand"),
    bad_rcpt: (501, "{arg}: malformed address"),
    too_big: (552, "Message size exceeds maximum permitted"),
    size_exceeded: (552, "Message size exceeds maximum permitted"),
    too_many_rcpts: (452, "too many recipients"),
    need_helo: (503, "AUTH command used when not advertised"),
    too_many_errors: (421, "{host} too many unrecognized commands"),
    timeout: (421, "{host} SMTP command timeout - closing connection"),
    forbidden: (554, "SMTP synchronization error"),
    line_too_long: (500, "line too long"),
    auth_aborted: (501, "Authentication cancelled"),
    auth_decode: (501, "Invalid base64 data"),
    auth_mechanism: (504, "Unsupported authentication mechanism"),
    auth_in_mail: (503, "AUTH command used when not advertised"),
    helo_syntax: (501, "Syntactically invalid {verb} argument(s)"),
    not_implemented: (500, "unrecognized command"),
};

const SENDMAIL: Texts = Texts {
    ehlo_greeting: "{host} Hello [{ip}], pleased to meet you",
    ehlo_extensions: &[
        "ENHANCEDSTATUSCODES",
        "PIPELINING",
        "8BITMIME",
        "SIZE",
        "DSN",
        "ETRN",
        "AUTH PLAIN LOGIN",
        "DELIVERBY",
        "HELP",
    ],
    helo: "{host} Hello [{ip}], pleased to meet you",
    mail_ok: "2.1.0 {arg}... Sender ok",
    rcpt_ok: "2.1.5 {arg}... Recipient ok",
    data_go: "Enter mail, end with \".\" on a line by itself",
    queued: "2.0.0 {id} Message accepted for delivery",
    rset: "2.0.0 Reset state",
    noop: "2.0.0 OK",
    bye: "2.0.0 {host} closing connection",
    unknown: (500, "5.5.1 Command unrecognized: \"{arg}\""),
    auth_failed: (535, "5.7.0 authentication failed"),
    vrfy: (
        252,
        "2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)",
    ),
    need_mail: (503, "5.0.0 Need MAIL before RCPT"),
    need_rcpt: (503, "5.0.0 Need RCPT (recipient)"),
    need_rcpt_cmd: (503, "5.0.0 Need MAIL command"),
    nested_mail: (503, "5.5.0 Sender already specified"),
    mail_syntax: (501, "5.5.2 Syntax error in parameters scanning \"from\""),
    bad_sender: (
        553,
        "5.1.0 {arg}... Domain name required for sender address",
    ),
    rcpt_syntax: (501, "5.5.2 Syntax error in parameters scanning \"to\""),
    bad_rcpt: (553, "5.1.3 {arg}... User address required"),
    too_big: (552, "5.2.3 Message exceeds maximum fixed size"),
    size_exceeded: (552, "5.2.3 Message size exceeds fixed maximum message size"),
    too_many_rcpts: (452, "4.5.3 Too many recipients"),
    need_helo: (503, "5.0.0 Polite people say HELO first"),
    too_many_errors: (421, "4.7.0 {host} Too many errors"),
    timeout: (421, "4.4.1 {host} Lost input channel"),
    forbidden: (554, "5.7.0 Rejecting open proxy"),
    line_too_long: (500, "5.5.0 Line too long"),
    auth_aborted: (501, "5.0.0 AUTH aborted"),
    auth_decode: (501, "5.5.4 cannot decode AUTH parameter"),
    auth_mechanism: (504, "5.3.3 AUTH mechanism not available"),
    auth_in_mail: (503, "5.5.0 AUTH not permitted during a mail transaction"),
    helo_syntax: (501, "5.0.0 {verb} requires domain address"),
    not_implemented: (454, "4.3.3 TLS not available after start"),
};

impl Mta {
    /// The MTA the persona asks for (`mta`, Postfix by default).
    pub fn from_persona(persona: &Persona) -> Mta {
        match persona.get("mta") {
            Some("exim") => Mta::Exim(match persona.distro.slug {
                "ubuntu20" => "4.93",
                "ubuntu22" => "4.95",
                "centos7" | "rocky9" => "4.97.1",
                _ => "4.96",
            }),
            Some("sendmail") => Mta::Sendmail(match persona.distro.slug {
                "centos7" => "8.14.7/8.14.7",
                "rocky9" | "fedora" => "8.16.1/8.16.1",
                _ => "8.17.1.9/8.17.1.9/Debian-2",
            }),
            _ => Mta::Postfix(match persona.distro.slug {
                "debian" | "kali" => Some("Debian/GNU"),
                "ubuntu22" | "ubuntu20" => Some("Ubuntu"),
                _ => None,
            }),
        }
    }

    /// The reply table.
    pub fn texts(self) -> &'static Texts {
        match self {
            Mta::Postfix(_) => &POSTFIX,
            Mta::Exim(_) => &EXIM,
            Mta::Sendmail(_) => &SENDMAIL,
        }
    }

    /// The greeting text after `220 ` (`ip` is the client's address, which Sendmail
    /// echoes).
    pub fn banner(self, host: &str, ip: IpAddr) -> String {
        let now = rfc2822_now();
        match self {
            Mta::Postfix(Some(tag)) => format!("{host} ESMTP Postfix ({tag})"),
            Mta::Postfix(None) => format!("{host} ESMTP Postfix"),
            Mta::Exim(v) => format!("{host} ESMTP Exim {v} {now}"),
            Mta::Sendmail(v) => {
                let _ = ip;
                format!("{host} ESMTP Sendmail {v}; {now}")
            }
        }
    }

    /// A fresh queue id in the MTA's format.
    pub fn queue_id(self) -> String {
        let mut rng = rand::thread_rng();
        match self {
            Mta::Postfix(_) => (0..11)
                .map(|_| char::from(b"0123456789ABCDEF"[rng.gen_range(0..16)]))
                .collect(),
            Mta::Exim(_) => {
                const B62: &[u8] =
                    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
                let mut part = |n: usize| -> String {
                    (0..n)
                        .map(|_| char::from(B62[rng.gen_range(0..62)]))
                        .collect()
                };
                format!("{}-{}-{}", part(6), part(6), part(2))
            }
            Mta::Sendmail(_) => {
                const B60: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXabcdefghijklmnopqrstuvwx";
                let mut id: String = (0..8)
                    .map(|_| char::from(B60[rng.gen_range(0..B60.len())]))
                    .collect();
                id.push_str(&format!("{:06}", rng.gen_range(0..999_999)));
                id
            }
        }
    }
}

/// `Wed, 27 Nov 2024 02:10:00 +0000`.
fn rfc2822_now() -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let now = OffsetDateTime::now_utc();
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[usize::from(now.weekday().number_days_from_monday())],
        now.day(),
        MONTHS[usize::from(u8::from(now.month()) - 1)],
        now.year(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banners_and_ids() {
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(
            Mta::Postfix(Some("Debian/GNU")).banner("mx1.corp.example", ip),
            "mx1.corp.example ESMTP Postfix (Debian/GNU)"
        );
        assert!(
            Mta::Exim("4.96")
                .banner("mx", ip)
                .starts_with("mx ESMTP Exim 4.96 ")
        );
        let id = Mta::Postfix(None).queue_id();
        assert_eq!(id.len(), 11);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_lowercase())
        );
        assert_eq!(Mta::Exim("4.96").queue_id().len(), 16);
    }
}
