//! Reply texts of the imitated FTP servers (vsftpd in full; ProFTPD and Pure-FTPd for the
//! dialogue a scanner or a login bot sees).

use std::net::{IpAddr, SocketAddr};

use time::{Duration as TimeDuration, OffsetDateTime};

use crate::persona::Persona;

/// The imitated server and its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// vsftpd (version text).
    Vsftpd(&'static str),
    /// ProFTPD (the `ServerName` Debian ships).
    Proftpd(&'static str),
    /// Pure-FTPd.
    PureFtpd,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Product {
    /// The product of `ftp_server` (vsftpd by default), versioned as the distro ships it.
    pub fn from_persona(persona: &Persona) -> Product {
        match persona.get("ftp_server") {
            Some("proftpd") => Product::Proftpd(match persona.distro.slug {
                "ubuntu22" | "ubuntu20" => "Debian",
                "rocky9" | "centos7" | "fedora" => "ProFTPD Default Installation",
                _ => "Debian",
            }),
            Some("pure-ftpd") => Product::PureFtpd,
            _ => Product::Vsftpd(match persona.distro.slug {
                "centos7" => "3.0.2",
                "ubuntu22" | "rocky9" | "fedora" | "arch" | "alpine" => "3.0.5",
                _ => "3.0.3",
            }),
        }
    }

    /// The greeting, CR LF included.
    pub fn banner(self, local: SocketAddr) -> String {
        match self {
            Product::Vsftpd(v) => format!("220 (vsFTPd {v})\r\n"),
            Product::Proftpd(name) => {
                let ip = match local.ip() {
                    IpAddr::V4(v4) => format!("::ffff:{v4}"),
                    IpAddr::V6(v6) => v6.to_string(),
                };
                format!("220 ProFTPD Server ({name}) [{ip}]\r\n")
            }
            Product::PureFtpd => format!(
                "220---------- Welcome to Pure-FTPd [privsep] [TLS] ----------\r\n220-You are user number 1 of 50 allowed.\r\n220-Local time is now {}. Server port: {}.\r\n220-IPv6 connections are also welcome on this server.\r\n220 You will be disconnected after 15 minutes of inactivity.\r\n",
                {
                    let now = OffsetDateTime::now_utc();
                    format!("{:02}:{:02}", now.hour(), now.minute())
                },
                local.port()
            ),
        }
    }

    /// Text of the 421 sent on idle timeout.
    pub fn timeout_text(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Timeout.",
            Product::Proftpd(_) => "Idle timeout (600 seconds): closing control connection",
            Product::PureFtpd => "Timeout - try typing a little faster next time",
        }
    }

    pub(super) fn user_when_logged_in(self) -> (u16, &'static str) {
        match self {
            Product::Vsftpd(_) => (530, "Can't change to another user."),
            Product::Proftpd(_) => (530, "Login incorrect."),
            Product::PureFtpd => (530, "You're already logged in"),
        }
    }

    pub(super) fn need_password(self, user: &str) -> String {
        match self {
            Product::Vsftpd(_) => "Please specify the password.".into(),
            Product::Proftpd(_) => format!("Password required for {user}"),
            Product::PureFtpd => format!("User {user} OK. Password required"),
        }
    }

    pub(super) fn goodbye(self) -> &'static str {
        match self {
            Product::Vsftpd(_) | Product::Proftpd(_) => "221 Goodbye.\r\n",
            Product::PureFtpd => {
                "221-Goodbye. You uploaded 0 and downloaded 0 kbytes.\r\n221 Logout.\r\n"
            }
        }
    }

    pub(super) fn feat(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => {
                "211-Features:\r\n EPRT\r\n EPSV\r\n MDTM\r\n PASV\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End\r\n"
            }
            Product::Proftpd(_) => {
                "211-Features:\r\n CLNT\r\n EPRT\r\n EPSV\r\n HOST\r\n LANG en-US*\r\n MDTM\r\n MFF modify;UNIX.group;UNIX.mode;\r\n MFMT\r\n MLST modify*;perm*;size*;type*;unique*;UNIX.group*;UNIX.groupname*;UNIX.mode*;UNIX.owner*;UNIX.ownername*;\r\n REST STREAM\r\n SIZE\r\n SSCN\r\n TVFS\r\n UTF8\r\n211 End\r\n"
            }
            Product::PureFtpd => {
                "211-Extensions supported:\r\n EPRT\r\n IDLE\r\n MDTM\r\n SIZE\r\n MFMT\r\n REST STREAM\r\n MLST type*;size*;sizd*;modify*;UNIX.mode*;UNIX.uid*;UNIX.gid*;unique*;\r\n MLSD\r\n PRET\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n UTF8\r\n TVFS\r\n ESTA\r\n PASV\r\n EPSV\r\n ESTP\r\n211 End.\r\n"
            }
        }
    }

    pub(super) fn utf8_on(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Always in UTF8 mode.",
            Product::Proftpd(_) => "UTF8 set to on",
            Product::PureFtpd => "OK, UTF-8 enabled",
        }
    }

    pub(super) fn opts_bad(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Option not understood.",
            Product::Proftpd(_) => "OPTS: Invalid parameters",
            Product::PureFtpd => "Unknown command",
        }
    }

    pub(super) fn noop(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "NOOP ok.",
            Product::Proftpd(_) => "NOOP command successful",
            Product::PureFtpd => "Zzz...",
        }
    }

    pub(super) fn unknown(self, verb: &str) -> (u16, String) {
        match self {
            Product::Vsftpd(_) => (500, "Unknown command.".into()),
            Product::Proftpd(_) => (500, format!("{verb} not understood")),
            Product::PureFtpd => (500, "Unknown command".into()),
        }
    }

    pub(super) fn login_first(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Please login with USER and PASS.",
            Product::Proftpd(_) => "Please login with USER and PASS",
            Product::PureFtpd => "You aren't logged in",
        }
    }

    pub(super) fn pwd(self, cwd: &str) -> String {
        match self {
            Product::Vsftpd(_) | Product::Proftpd(_) => {
                format!("\"{cwd}\" is the current directory")
            }
            Product::PureFtpd => format!("\"{cwd}\" is your current location"),
        }
    }

    pub(super) fn cwd_ok(self, path: &str) -> String {
        match self {
            Product::Vsftpd(_) => "Directory successfully changed.".into(),
            Product::Proftpd(_) => "CWD command successful".into(),
            Product::PureFtpd => format!("OK. Current directory is {path}"),
        }
    }

    pub(super) fn cwd_fail(self, arg: &str) -> String {
        match self {
            Product::Vsftpd(_) => "Failed to change directory.".into(),
            Product::Proftpd(_) => format!("{arg}: No such file or directory"),
            Product::PureFtpd => {
                format!("Can't change directory to {arg}: No such file or directory")
            }
        }
    }

    pub(super) fn type_binary(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Switching to Binary mode.",
            Product::Proftpd(_) => "Type set to I",
            Product::PureFtpd => "TYPE is now 8-bit binary",
        }
    }

    pub(super) fn type_ascii(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Switching to ASCII mode.",
            Product::Proftpd(_) => "Type set to A",
            Product::PureFtpd => "TYPE is now ASCII",
        }
    }

    pub(super) fn type_bad(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Unrecognised TYPE command.",
            Product::Proftpd(_) => "TYPE: Invalid parameters",
            Product::PureFtpd => "Unknown TYPE",
        }
    }

    pub(super) fn port_ok(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "PORT command successful. Consider using PASV.",
            Product::Proftpd(_) => "PORT command successful",
            Product::PureFtpd => "PORT command successful",
        }
    }

    pub(super) fn eprt_ok(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "EPRT command successful. Consider using EPSV.",
            _ => "EPRT command successful",
        }
    }

    pub(super) fn size_fail(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Could not get file size.",
            _ => "No such file or directory",
        }
    }

    pub(super) fn mdtm_fail(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Could not get file modification time.",
            _ => "No such file or directory",
        }
    }

    pub(super) fn rest(self, n: u64) -> String {
        match self {
            Product::Vsftpd(_) => format!("Restart position accepted ({n})."),
            Product::Proftpd(_) => {
                format!("Restarting at {n}. Send STORE or RETRIEVE to initiate transfer")
            }
            Product::PureFtpd => format!("Restarting at {n}"),
        }
    }

    pub(super) fn stat(self, ip: IpAddr, user: &str, binary: bool) -> String {
        match self {
            Product::Vsftpd(v) => format!(
                "211-FTP server status:\r\n     Connected to {ip}\r\n     Logged in as {user}\r\n     TYPE: {}\r\n     No session bandwidth limit\r\n     Session timeout in seconds is 300\r\n     Control connection is plain text\r\n     Data connections will be plain text\r\n     At session startup, client count was 1\r\n     vsFTPd {v} - secure, fast, stable\r\n211 End of status\r\n",
                if binary { "BINARY" } else { "ASCII" }
            ),
            _ => "211 Status OK\r\n".into(),
        }
    }

    pub(super) fn help(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => {
                "214-The following commands are recognized.\r\n ABOR ACCT ALLO APPE CDUP CWD  DELE EPRT EPSV FEAT HELP LIST MDTM MKD\r\n MODE NLST NOOP OPTS PASS PASV PORT PWD  QUIT REIN REST RETR RMD  RNFR\r\n RNTO SITE SIZE SMNT STAT STOR STOU STRU SYST TYPE USER XCUP XCWD XMKD\r\n XPWD XRMD\r\n214 Help OK.\r\n"
            }
            Product::Proftpd(_) => {
                "214-The following commands are recognized (* =>'s unimplemented):\r\n CWD     XCWD    CDUP    XCUP    SMNT*   QUIT    PORT    PASV    \r\n EPRT    EPSV    ALLO*   RNFR    RNTO    DELE    MDTM    RMD     \r\n XRMD    MKD     XMKD    PWD     XPWD    SIZE    SYST    HELP    \r\n NOOP    FEAT    OPTS    HOST    CLNT    AUTH*   CCC*    CONF*   \r\n ENC*    MIC*    PBSZ*   PROT*   TYPE    STRU    MODE    RETR    \r\n STOR    STOU    APPE    REST    ABOR    RANG    USER    PASS    \r\n ACCT*   REIN*   LIST    NLST    STAT    SITE    MLSD    MLST    \r\n214 Direct comments to root@localhost\r\n"
            }
            Product::PureFtpd => {
                "214-The following SITE commands are recognized\r\n ALIAS\r\n CHMOD\r\n IDLE\r\n UTIME\r\n214 Pure-FTPd - http://pureftpd.org/\r\n"
            }
        }
    }

    pub(super) fn refused(self, verb: &str, arg: &str) -> (u16, String) {
        match self {
            Product::Vsftpd(_) => (550, "Permission denied.".into()),
            Product::Proftpd(_) => (550, format!("{arg}: Permission denied")),
            Product::PureFtpd => match verb {
                "DELE" => (550, format!("Could not delete {arg}: Permission denied")),
                "MKD" | "XMKD" => (550, "Can't create directory: Permission denied".into()),
                _ => (553, "Can't open that file: Permission denied".into()),
            },
        }
    }

    pub(super) fn already_logged_in(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Already logged in.",
            _ => "Already logged in",
        }
    }

    pub(super) fn user_first(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Login with USER first.",
            Product::Proftpd(_) => "Login with USER first",
            Product::PureFtpd => "Login with USER first",
        }
    }

    pub(super) fn logged_in(self, user: &str) -> String {
        match self {
            Product::Vsftpd(_) => "Login successful.".into(),
            Product::Proftpd(_) => format!("User {user} logged in"),
            Product::PureFtpd => "OK. Current directory is /".into(),
        }
    }

    pub(super) fn login_incorrect(self) -> &'static str {
        match self {
            Product::Vsftpd(_) | Product::Proftpd(_) => "Login incorrect.",
            Product::PureFtpd => "Login authentication failed",
        }
    }

    pub(super) fn no_data(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Failed to establish connection.",
            Product::Proftpd(_) => "Unable to build data connection: Connection refused",
            Product::PureFtpd => "Could not open data connection to port 0",
        }
    }

    pub(super) fn use_pasv(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Use PORT or PASV first.",
            Product::Proftpd(_) => "Unable to build data connection: Connection refused",
            Product::PureFtpd => "No data connection",
        }
    }

    pub(super) fn epsv(self, port: u16) -> String {
        match self {
            Product::PureFtpd => format!("Extended Passive mode OK (|||{port}|)"),
            _ => decnet_wire::ftp::epsv_text(port),
        }
    }

    pub(super) fn list_start(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "Here comes the directory listing.",
            Product::Proftpd(_) => "Opening ASCII mode data connection for file list",
            Product::PureFtpd => "Accepted data connection",
        }
    }

    pub(super) fn list_done(self, n: usize) -> String {
        match self {
            Product::Vsftpd(_) => "226 Directory send OK.\r\n".into(),
            Product::Proftpd(_) => "226 Transfer complete\r\n".into(),
            Product::PureFtpd => format!("226-Options: -l \r\n226 {n} matches total\r\n"),
        }
    }

    /// One line of a long listing in the product's layout.
    pub(super) fn list_line(
        self,
        dir: bool,
        size: u64,
        mtime: OffsetDateTime,
        name: &str,
        now: OffsetDateTime,
    ) -> String {
        let perms = if dir { "drwxr-xr-x" } else { "-rw-r--r--" };
        let links = if dir { 2 } else { 1 };
        let month = MONTHS[usize::from(u8::from(mtime.month()) - 1)];
        let recent = mtime <= now && now - mtime < TimeDuration::days(182);
        match self {
            Product::Vsftpd(_) => {
                let when = if recent {
                    format!(
                        "{month} {:02} {:02}:{:02}",
                        mtime.day(),
                        mtime.hour(),
                        mtime.minute()
                    )
                } else {
                    format!("{month} {:02}  {}", mtime.day(), mtime.year())
                };
                format!(
                    "{perms} {links:>4} {:<8} {:<8} {size:>8} {when} {name}\r\n",
                    "1000", "1000"
                )
            }
            Product::Proftpd(_) | Product::PureFtpd => {
                let when = if recent {
                    format!(
                        "{month} {:>2} {:02}:{:02}",
                        mtime.day(),
                        mtime.hour(),
                        mtime.minute()
                    )
                } else {
                    format!("{month} {:>2}  {}", mtime.day(), mtime.year())
                };
                format!(
                    "{perms} {links:>3} {:<8} {:<8} {size:>8} {when} {name}\r\n",
                    "ftp", "ftp"
                )
            }
        }
    }

    pub(super) fn retr_fail(self, arg: &str) -> String {
        match self {
            Product::Vsftpd(_) => "Failed to open file.".into(),
            Product::Proftpd(_) => format!("{arg}: No such file or directory"),
            Product::PureFtpd => format!("Can't open {arg}: No such file or directory"),
        }
    }

    pub(super) fn retr_start(self, binary: bool, arg: &str, size: u64) -> String {
        let mode = if binary { "BINARY" } else { "ASCII" };
        match self {
            Product::Vsftpd(_) => {
                format!("150 Opening {mode} mode data connection for {arg} ({size} bytes).\r\n")
            }
            Product::Proftpd(_) => {
                format!("150 Opening {mode} mode data connection for {arg} ({size} bytes)\r\n")
            }
            Product::PureFtpd => format!(
                "150-Accepted data connection\r\n150 {:.1} kbytes to download\r\n",
                size as f64 / 1024.0
            ),
        }
    }

    pub(super) fn transfer_done(self) -> &'static str {
        match self {
            Product::Vsftpd(_) => "226 Transfer complete.\r\n",
            Product::Proftpd(_) => "226 Transfer complete\r\n",
            Product::PureFtpd => {
                "226-File successfully transferred\r\n226 0.001 seconds (measured here), 1.00 Mbytes per second\r\n"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn vsftpd_listing_layout() {
        let now = datetime!(2024-06-01 12:00 UTC);
        let p = Product::Vsftpd("3.0.3");
        assert_eq!(
            p.list_line(true, 4096, datetime!(2024-03-09 09:43 UTC), "pub", now),
            "drwxr-xr-x    2 1000     1000         4096 Mar 09 09:43 pub\r\n"
        );
        assert_eq!(
            p.list_line(
                false,
                1234567,
                datetime!(2023-01-02 03:04 UTC),
                "a.tar.gz",
                now
            ),
            "-rw-r--r--    1 1000     1000      1234567 Jan 02  2023 a.tar.gz\r\n"
        );
    }

    #[test]
    fn banners() {
        let local: SocketAddr = "127.0.0.1:21".parse().unwrap();
        assert_eq!(
            Product::Vsftpd("3.0.3").banner(local),
            "220 (vsFTPd 3.0.3)\r\n"
        );
        assert_eq!(
            Product::Proftpd("Debian").banner(local),
            "220 ProFTPD Server (Debian) [::ffff:127.0.0.1]\r\n"
        );
    }
}
