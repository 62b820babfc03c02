//! The commands the emulated shell answers, each from the host facts and the fake
//! filesystem; none runs anything.

use std::fmt::Write as _;

use base64::Engine as _;
use time::OffsetDateTime;

use super::fs::{self, Kind, Node};
use super::host::{Family, ShellKind};
use super::{Ctx, MAX_DEPTH, Mode, Ran, Session, Shell};
use crate::event::{Event, kind};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
/// Six months, the `ls -l` cut-off between "time" and "year" dates.
const HALF_YEAR: i64 = 15_778_476;

fn tm(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn month(t: &OffsetDateTime) -> &'static str {
    MONTHS[usize::from(u8::from(t.month())) - 1]
}

fn weekday(t: &OffsetDateTime) -> &'static str {
    DAYS[usize::from(t.weekday().number_days_from_monday())]
}

/// `Tue Feb 20 10:11:12 2024` (ctime without the newline).
pub fn fmt_ctime(unix: i64) -> String {
    let t = tm(unix);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        weekday(&t),
        month(&t),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    )
}

fn fmt_ls_date(unix: i64, now: i64) -> String {
    let t = tm(unix);
    if (now - unix).abs() < HALF_YEAR {
        format!(
            "{} {:>2} {:02}:{:02}",
            month(&t),
            t.day(),
            t.hour(),
            t.minute()
        )
    } else {
        format!("{} {:>2}  {}", month(&t), t.day(), t.year())
    }
}

fn hms(unix: i64) -> String {
    let t = tm(unix);
    format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())
}

/// Runs one simple command.
pub(crate) fn run(
    sh: &Shell,
    s: &mut Session,
    words: &[String],
    stdin: Option<String>,
    ctx: &mut Ctx<'_>,
) -> Ran {
    // Leading `NAME=value` words are assignments.
    let mut start = 0;
    while start < words.len() && is_assignment(&words[start]) {
        start += 1;
    }
    if start == words.len() {
        for w in words {
            if let Some((k, v)) = w.split_once('=') {
                s.env.insert(k.to_owned(), v.to_owned());
            }
        }
        return Ran::ok("");
    }
    let words = &words[start..];
    let typed = words[0].as_str();
    let args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let name = if typed.contains('/') {
        match resolve_program(sh, s, typed) {
            Ok(name) => name,
            Err(ran) => return ran,
        }
    } else {
        typed.to_owned()
    };
    let bb = sh.host.family.busybox();
    match name.as_str() {
        "uname" => uname(sh, &args),
        "id" => id(sh, s, &args),
        "whoami" => Ran::ok(format!("{}\n", s.user.name)),
        "pwd" => Ran::ok(format!("{}\n", s.cwd)),
        "cd" => cd(sh, s, &args),
        "ls" | "dir" => ls(sh, s, &args, ctx.now),
        "ll" if !bb => {
            let mut a = vec!["-alF"];
            a.extend(args.iter().copied());
            ls(sh, s, &a, ctx.now)
        }
        "cat" => cat(sh, s, &args, stdin),
        "echo" => echo(&args),
        "printf" => Ran::ok(args.first().map(|f| unescape(f)).unwrap_or_default()),
        "hostname" => hostname(sh, &args),
        "history" => history(s, &args),
        "export" => export(s, &args),
        "unset" => {
            for a in &args {
                s.env.remove(*a);
            }
            Ran::ok("")
        }
        "env" | "printenv" => {
            if let Some(var) = args.first().filter(|_| name == "printenv") {
                return s
                    .env
                    .get(*var)
                    .map_or_else(|| Ran::fail("", 1), |v| Ran::ok(format!("{v}\n")));
            }
            Ran::ok(
                s.env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}\n"))
                    .collect::<String>(),
            )
        }
        "exit" | "logout" => {
            let status = args
                .first()
                .and_then(|a| a.parse().ok())
                .unwrap_or(s.status);
            sh.exit(s, status)
        }
        "sudo" => sudo(sh, s, &args, ctx),
        "su" => su(sh, s, &args),
        "wget" => download(sh, s, "wget", &args, ctx),
        "curl" => download(sh, s, "curl", &args, ctx),
        "tftp" | "ftpget" => download(sh, s, &name, &args, ctx),
        "ps" => ps(sh, s, &args, ctx.now),
        "free" => free(sh, &args),
        "uptime" => Ran::ok(format!("{}\n", uptime_line(sh, ctx.now, 1))),
        "w" => w(sh, s, ctx.now),
        "ifconfig" => ifconfig(sh),
        "ip" => ip(sh, &args),
        "nproc" => Ran::ok(format!("{}\n", sh.host.n_cpus)),
        "lscpu" if !bb => lscpu(sh),
        "df" => df(sh, &args),
        "which" | "command" => which(sh, &args),
        "type" => Ran::ok(
            args.iter()
                .map(|a| format!("{a} is /usr/bin/{a}\n"))
                .collect::<String>(),
        ),
        "crontab" => Ran::fail(format!("no crontab for {}\n", s.user.name), 1),
        "date" => {
            let t = tm(ctx.now);
            Ran::ok(format!(
                "{} {} {:>2} {} UTC {}\n",
                weekday(&t),
                month(&t),
                t.day(),
                hms(ctx.now),
                t.year()
            ))
        }
        "clear" => Ran::ok("\x1b[H\x1b[2J\x1b[3J"),
        "true" | ":" => Ran::ok(""),
        "false" => Ran::fail("", 1),
        "sleep" => {
            let secs: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0.0);
            ctx.delay_ms = ctx
                .delay_ms
                .saturating_add((secs.clamp(0.0, 10.0) * 1000.0) as u64);
            Ran::ok("")
        }
        "grep" | "egrep" | "fgrep" => grep(sh, s, &args, stdin),
        "head" | "tail" => head_tail(sh, s, &name, &args, stdin),
        "wc" => wc(sh, s, &args, stdin),
        "sort" => {
            let mut lines: Vec<String> = input_text(sh, s, &args, stdin)
                .lines()
                .map(str::to_owned)
                .collect();
            lines.sort();
            if args.contains(&"-r") {
                lines.reverse();
            }
            if args.contains(&"-u") {
                lines.dedup();
            }
            Ran::ok(join_lines(&lines))
        }
        "uniq" => {
            let mut lines: Vec<String> = input_text(sh, s, &args, stdin)
                .lines()
                .map(str::to_owned)
                .collect();
            lines.dedup();
            Ran::ok(join_lines(&lines))
        }
        "awk" => awk(&args, stdin.unwrap_or_default()),
        "base64" => base64_cmd(&args, stdin.unwrap_or_default()),
        "tee" => {
            let data = stdin.unwrap_or_default();
            for a in args.iter().filter(|a| !a.starts_with('-')) {
                let _ = sh.write_file(s, a, &data, args.contains(&"-a"));
            }
            Ran::ok(data)
        }
        "bash" | "sh" | "ash" | "dash" | "zsh" => nested_shell(sh, s, &name, &args, ctx),
        "chmod" | "chown" | "chgrp" | "touch" | "mkdir" | "rm" | "rmdir" | "cp" | "mv" | "ln"
        | "kill" | "pkill" | "killall" | "sync" | "ulimit" | "set" | "source" | "." | "alias"
        | "nohup" | "chattr" | "umask" | "shopt" | "setenv" | "disown" | "wait" => Ran::ok(""),
        "passwd" => Ran::fail(
            "passwd: Authentication token manipulation error\npasswd: password unchanged\n",
            10,
        ),
        "last" => last(sh, s, ctx.now),
        "apt" | "apt-get" if matches!(sh.host.family, Family::Debian | Family::Ubuntu) => {
            apt(s, &args)
        }
        "yum" | "dnf" if matches!(sh.host.family, Family::Rhel | Family::Centos7) => {
            yum(s, &name, &args)
        }
        "apk" if bb => apk(s, &args),
        _ if installed(sh, &name) => Ran::ok(""),
        _ => Ran::fail(sh.not_found(s, typed), 127),
    }
}

/// Whether `name` is one of the system's programs (then it "runs" silently).
fn installed(sh: &Shell, name: &str) -> bool {
    !name.is_empty()
        && !name.contains('/')
        && ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
            .iter()
            .any(|dir| sh.fs.get(&format!("{dir}/{name}")).is_some())
}

/// The first operand after an install verb.
fn package_operand<'a>(args: &[&'a str]) -> Option<&'a str> {
    args.iter().skip(1).find(|a| !a.starts_with('-')).copied()
}

fn apt(s: &Session, args: &[&str]) -> Ran {
    let verb = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .copied()
        .unwrap_or("");
    if !matches!(verb, "install" | "update" | "upgrade" | "remove" | "purge") {
        return Ran::fail(
            "E: Invalid operation\n".replace("operation", &format!("operation {verb}")),
            100,
        );
    }
    if s.user.uid != 0 {
        return Ran::fail(
            "E: Could not open lock file /var/lib/dpkg/lock-frontend - open (13: Permission denied)\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), are you root?\n",
            100,
        );
    }
    if verb == "update" || verb == "upgrade" {
        return Ran::fail(
            "Err:1 http://deb.debian.org/debian bookworm InRelease\n  Temporary failure resolving 'deb.debian.org'\nReading package lists... Done\nW: Failed to fetch http://deb.debian.org/debian/dists/bookworm/InRelease  Temporary failure resolving 'deb.debian.org'\nW: Some index files failed to download. They have been ignored, or old ones used instead.\n",
            0,
        );
    }
    let pkg = package_operand(args).unwrap_or("");
    // One stream, so the terminal shows apt's order.
    Ran {
        out: format!(
            "Reading package lists... Done\nBuilding dependency tree... Done\nReading state information... Done\nE: Unable to locate package {pkg}\n"
        ),
        err: String::new(),
        status: 100,
    }
}

fn yum(s: &Session, name: &str, args: &[&str]) -> Ran {
    if s.user.uid != 0 {
        return Ran::fail(
            "Error: This command has to be run with superuser privileges (under the root user on most systems).\n",
            1,
        );
    }
    let pkg = package_operand(args).unwrap_or("");
    let _ = name;
    Ran {
        out: String::new(),
        err: format!(
            "Errors during downloading metadata for repository 'baseos':\n  - Curl error (6): Couldn't resolve host name for https://mirrors.rockylinux.org/mirrorlist?arch=x86_64&repo=BaseOS-9\nError: Failed to download metadata for repo 'baseos': Cannot prepare internal mirrorlist: Curl error (6): Couldn't resolve host name\nNo match for argument: {pkg}\n"
        ),
        status: 1,
    }
}

fn apk(s: &Session, args: &[&str]) -> Ran {
    if s.user.uid != 0 {
        return Ran::fail(
            "ERROR: Unable to lock database: Permission denied\nERROR: Failed to open apk database: Permission denied\n",
            99,
        );
    }
    let pkg = package_operand(args).unwrap_or("");
    Ran::fail(
        format!(
            "WARNING: fetching https://dl-cdn.alpinelinux.org/alpine/v3.19/main: DNS lookup error\nERROR: unable to select packages:\n  {pkg} (no such package):\n    required by: world[{pkg}]\n"
        ),
        1,
    )
}

fn is_assignment(w: &str) -> bool {
    match w.split_once('=') {
        Some((k, _)) => {
            !k.is_empty()
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !k.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// A command typed with a path (`/bin/ls`, `./x`): runs it when it is one of the
/// system's programs, otherwise reports what bash would.
fn resolve_program(sh: &Shell, s: &Session, typed: &str) -> Result<String, Ran> {
    let abs = fs::normalize(&s.cwd, &s.user.home, typed);
    let prefix = sh.err_prefix(s);
    if sh.overlay_file(s, &abs).is_some() {
        return Err(Ran::fail(
            format!("{prefix}{typed}: Permission denied\n"),
            126,
        ));
    }
    match sh.fs.resolve(&abs) {
        None => Err(Ran::fail(
            format!("{prefix}{typed}: No such file or directory\n"),
            127,
        )),
        Some((_, node)) if node.kind == Kind::Dir => {
            Err(Ran::fail(format!("{prefix}{typed}: Is a directory\n"), 126))
        }
        Some((real, node)) => {
            let dir = fs::parent(&real);
            if node.mode & 0o111 != 0 && (dir.ends_with("/bin") || dir.ends_with("/sbin")) {
                Ok(fs::base(&real).to_owned())
            } else if node.mode & 0o111 != 0 {
                Ok(String::from(":"))
            } else {
                Err(Ran::fail(
                    format!("{prefix}{typed}: Permission denied\n"),
                    126,
                ))
            }
        }
    }
}

fn uname(sh: &Shell, args: &[&str]) -> Ran {
    let h = &sh.host;
    let bb = h.family.busybox();
    let rhel = matches!(h.family, Family::Rhel | Family::Centos7);
    let mut want = [false; 8];
    let mut all = false;
    for a in args {
        if let Some(long) = a.strip_prefix("--") {
            let i = match long {
                "all" => {
                    all = true;
                    continue;
                }
                "kernel-name" => 0,
                "nodename" => 1,
                "kernel-release" => 2,
                "kernel-version" => 3,
                "machine" => 4,
                "processor" => 5,
                "hardware-platform" => 6,
                "operating-system" => 7,
                _ => {
                    return Ran::fail(
                        format!(
                            "uname: unrecognized option '{a}'\nTry 'uname --help' for more information.\n"
                        ),
                        1,
                    );
                }
            };
            want[i] = true;
        } else if let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) {
            for c in flags.chars() {
                let i = match c {
                    'a' => {
                        all = true;
                        continue;
                    }
                    's' => 0,
                    'n' => 1,
                    'r' => 2,
                    'v' => 3,
                    'm' => 4,
                    'p' => 5,
                    'i' => 6,
                    'o' => 7,
                    _ => {
                        return Ran::fail(
                            format!(
                                "uname: invalid option -- '{c}'\nTry 'uname --help' for more information.\n"
                            ),
                            1,
                        );
                    }
                };
                want[i] = true;
            }
        } else {
            return Ran::fail(
                format!("uname: extra operand '{a}'\nTry 'uname --help' for more information.\n"),
                1,
            );
        }
    }
    let processor = if rhel { "x86_64" } else { "unknown" };
    let os = if bb { "Linux" } else { "GNU/Linux" };
    let values = [
        "Linux",
        h.hostname.as_str(),
        h.kernel.release.as_str(),
        h.kernel.version.as_str(),
        "x86_64",
        processor,
        processor,
        os,
    ];
    if all {
        for (i, w) in want.iter_mut().enumerate() {
            // GNU omits -p and -i from -a when they are unknown.
            *w = !((i == 5 || i == 6) && values[i] == "unknown");
        }
    }
    if !want.iter().any(|w| *w) {
        want[0] = true;
    }
    let parts: Vec<&str> = values
        .iter()
        .zip(want)
        .filter(|(_, w)| *w)
        .map(|(v, _)| *v)
        .collect();
    Ran::ok(format!("{}\n", parts.join(" ")))
}

fn id_line(sh: &Shell, a: &super::host::Account) -> String {
    let mut groups = vec![format!("{}({})", a.gid, group_name(sh, a.gid, &a.name))];
    for (gid, name) in &a.groups {
        groups.push(format!("{gid}({name})"));
    }
    let mut line = format!(
        "uid={}({}) gid={}({}) groups={}",
        a.uid,
        a.name,
        a.gid,
        group_name(sh, a.gid, &a.name),
        groups.join(",")
    );
    if sh.host.family == Family::Rhel {
        line.push_str(" context=unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023");
    }
    line
}

fn group_name(sh: &Shell, gid: u32, user: &str) -> String {
    match gid {
        0 => "root".into(),
        65534 => {
            if matches!(sh.host.family, Family::Debian | Family::Ubuntu) {
                "nogroup".into()
            } else {
                "nobody".into()
            }
        }
        g if g >= 1000 => user.to_owned(),
        g => sh
            .host
            .accounts
            .iter()
            .find(|a| a.gid == g && a.uid == g)
            .map_or_else(|| g.to_string(), |a| a.name.clone()),
    }
}

fn id(sh: &Shell, s: &Session, args: &[&str]) -> Ran {
    let mut flags = String::new();
    let mut who: Option<&str> = None;
    for a in args {
        if let Some(f) = a.strip_prefix('-') {
            flags.push_str(f);
        } else {
            who = Some(a);
        }
    }
    let account = match who {
        Some(name) => match sh.host.account(name) {
            Some(a) => a,
            None => return Ran::fail(format!("id: '{name}': no such user\n"), 1),
        },
        None => &s.user,
    };
    let names = flags.contains('n');
    if flags.contains('u') {
        return Ran::ok(if names {
            format!("{}\n", account.name)
        } else {
            format!("{}\n", account.uid)
        });
    }
    if flags.contains('g') && !flags.contains('G') {
        return Ran::ok(if names {
            format!("{}\n", group_name(sh, account.gid, &account.name))
        } else {
            format!("{}\n", account.gid)
        });
    }
    if flags.contains('G') {
        let mut g = vec![if names {
            group_name(sh, account.gid, &account.name)
        } else {
            account.gid.to_string()
        }];
        for (gid, name) in &account.groups {
            g.push(if names { name.clone() } else { gid.to_string() });
        }
        return Ran::ok(format!("{}\n", g.join(" ")));
    }
    let mut line = id_line(sh, account);
    if who.is_some()
        && let Some(i) = line.find(" context=")
    {
        line.truncate(i);
    }
    Ran::ok(format!("{line}\n"))
}

fn can_enter(node: &Node, s: &Session) -> bool {
    s.user.uid == 0
        || (node.owner == s.user.name && node.mode & 0o100 != 0)
        || node.mode & 0o001 != 0
}

fn can_read(node: &Node, s: &Session) -> bool {
    s.user.uid == 0
        || (node.owner == s.user.name && node.mode & 0o400 != 0)
        || node.mode & 0o004 != 0
}

fn cd(sh: &Shell, s: &mut Session, args: &[&str]) -> Ran {
    let args: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| *a != "-L" && *a != "-P")
        .collect();
    let p = sh.err_prefix(s);
    if args.len() > 1 {
        return match sh.host.shell {
            ShellKind::Zsh => Ran::fail(format!("cd: string not in pwd: {}\n", args[0]), 1),
            _ => Ran::fail(format!("{p}cd: too many arguments\n"), 1),
        };
    }
    let mut print = false;
    let target = match args.first() {
        None => s.user.home.clone(),
        Some(&"-") => {
            print = true;
            match s.env.get("OLDPWD") {
                Some(o) => o.clone(),
                None => return Ran::fail(format!("{p}cd: OLDPWD not set\n"), 1),
            }
        }
        Some(a) => (*a).to_owned(),
    };
    let abs = fs::normalize(&s.cwd, &s.user.home, &target);
    let error = match sh.fs.resolve(&abs) {
        None => Some("No such file or directory"),
        Some((_, node)) if node.kind != Kind::Dir => Some("Not a directory"),
        Some((_, node)) if !can_enter(node, s) => Some("Permission denied"),
        Some(_) => None,
    };
    if let Some(e) = error {
        let e_overlay = if sh.overlay_file(s, &abs).is_some() {
            "Not a directory"
        } else {
            e
        };
        return Ran::fail(
            match sh.host.shell {
                ShellKind::Ash => format!("{p}cd: can't cd to {target}: {e_overlay}\n"),
                ShellKind::Zsh => format!("cd: {}: {target}\n", e_overlay.to_lowercase()),
                ShellKind::Bash => format!("{p}cd: {target}: {e_overlay}\n"),
            },
            1,
        );
    }
    let old = std::mem::replace(&mut s.cwd, abs.clone());
    s.env.insert("OLDPWD".into(), old);
    s.env.insert("PWD".into(), abs.clone());
    Ran::ok(if print {
        format!("{abs}\n")
    } else {
        String::new()
    })
}

fn mode_string(node: &Node) -> String {
    let t = match node.kind {
        Kind::Dir => 'd',
        Kind::Link(_) => 'l',
        Kind::Char => 'c',
        Kind::File => '-',
    };
    let m = node.mode;
    let bit = |mask: u32, c: char| if m & mask != 0 { c } else { '-' };
    let mut out = String::with_capacity(10);
    out.push(t);
    out.push(bit(0o400, 'r'));
    out.push(bit(0o200, 'w'));
    out.push(bit(0o100, 'x'));
    out.push(bit(0o040, 'r'));
    out.push(bit(0o020, 'w'));
    out.push(bit(0o010, 'x'));
    out.push(bit(0o004, 'r'));
    out.push(bit(0o002, 'w'));
    out.push(if m & 0o1000 != 0 {
        if m & 0o001 != 0 { 't' } else { 'T' }
    } else {
        bit(0o001, 'x')
    });
    out
}

fn human(bytes: u64) -> String {
    if bytes < 1024 {
        return bytes.to_string();
    }
    let units = ["K", "M", "G", "T"];
    let mut v = bytes as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if v < 10.0 {
        format!("{:.1}{}", (v * 10.0).ceil() / 10.0, units[i])
    } else {
        format!("{}{}", v.ceil() as u64, units[i])
    }
}

struct Entry {
    name: String,
    node: Node,
    nlink: usize,
}

fn ls(sh: &Shell, s: &Session, args: &[&str], now: i64) -> Ran {
    let (mut long, mut all, mut almost, mut one, mut dir_only, mut hum) =
        (false, false, false, false, false, false);
    let mut paths = Vec::new();
    for a in args {
        if let Some(flags) = a
            .strip_prefix('-')
            .filter(|f| !f.is_empty() && !f.starts_with('-'))
        {
            for c in flags.chars() {
                match c {
                    'l' | 'n' | 'g' | 'o' => long = true,
                    'a' => all = true,
                    'A' => almost = true,
                    '1' => one = true,
                    'd' => dir_only = true,
                    'h' => hum = true,
                    'F' | 'r' | 't' | 'S' | 'R' | 'i' | 's' | 'G' | 'C' | 'x' | 'X' | 'U' => {}
                    _ => {
                        return Ran::fail(
                            format!(
                                "ls: invalid option -- '{c}'\nTry 'ls --help' for more information.\n"
                            ),
                            2,
                        );
                    }
                }
            }
        } else if !a.starts_with("--") {
            paths.push(*a);
        }
    }
    if paths.is_empty() {
        paths.push(".");
    }
    let quote = sh.host.family.quotes_names();
    let bb = sh.host.family.busybox();
    let mut out = String::new();
    let mut err = String::new();
    let mut status = 0;
    let mut files: Vec<Entry> = Vec::new();
    let mut dirs: Vec<(String, String)> = Vec::new();
    for p in &paths {
        let abs = fs::normalize(&s.cwd, &s.user.home, p);
        if let Some(content) = sh.overlay_file(s, &abs) {
            files.push(Entry {
                name: (*p).to_owned(),
                node: overlay_node(s, content.len(), now),
                nlink: 1,
            });
            continue;
        }
        let Some(link) = sh
            .fs
            .get(&abs)
            .cloned()
            .or_else(|| sh.fs.resolve(&abs).map(|(_, n)| n.clone()))
        else {
            err.push_str(&if bb {
                format!("ls: {p}: No such file or directory\n")
            } else if quote {
                format!("ls: cannot access '{p}': No such file or directory\n")
            } else {
                format!("ls: cannot access {p}: No such file or directory\n")
            });
            status = 2;
            continue;
        };
        let resolved = sh.fs.resolve(&abs);
        let is_dir = resolved.as_ref().is_some_and(|(_, n)| n.kind == Kind::Dir);
        if is_dir && !dir_only && !(long && matches!(link.kind, Kind::Link(_)) && !p.ends_with('/'))
        {
            let real = resolved.map(|(r, _)| r).unwrap_or(abs);
            dirs.push(((*p).to_owned(), real));
        } else {
            files.push(Entry {
                name: (*p).to_owned(),
                nlink: nlink(sh, &abs, &link),
                node: link,
            });
        }
    }
    let multi = paths.len() > 1;
    let width = if s.mode == Mode::Interactive && !one {
        80
    } else {
        0
    };
    if !files.is_empty() {
        out.push_str(&render(&files, long, hum, width, now, false));
    }
    for (i, (shown, real)) in dirs.iter().enumerate() {
        let Some(dir_node) = sh.fs.get(real) else {
            continue;
        };
        if !can_read(dir_node, s) {
            err.push_str(&if quote {
                format!("ls: cannot open directory '{shown}': Permission denied\n")
            } else {
                format!("ls: cannot open directory {shown}: Permission denied\n")
            });
            status = 2;
            continue;
        }
        if multi || !files.is_empty() {
            if i > 0 || !files.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("{shown}:\n"));
        }
        let mut entries: Vec<Entry> = Vec::new();
        if all {
            entries.push(Entry {
                name: ".".into(),
                nlink: 2 + sh.fs.subdirs(real),
                node: dir_node.clone(),
            });
            let parent = fs::parent(real);
            if let Some(pn) = sh.fs.get(parent) {
                entries.push(Entry {
                    name: "..".into(),
                    nlink: 2 + sh.fs.subdirs(parent),
                    node: pn.clone(),
                });
            }
        }
        for (name, node) in sh.fs.children(real) {
            if name.starts_with('.') && !all && !almost {
                continue;
            }
            let path = format!("{}/{name}", real.trim_end_matches('/'));
            entries.push(Entry {
                name: name.to_owned(),
                nlink: nlink(sh, &path, node),
                node: node.clone(),
            });
        }
        for (name, len) in sh.overlay_children(s, real) {
            if name.starts_with('.') && !all && !almost {
                continue;
            }
            if entries.iter().any(|e| e.name == name) {
                entries.retain(|e| e.name != name);
            }
            entries.push(Entry {
                name: name.to_owned(),
                node: overlay_node(s, len, now),
                nlink: 1,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        if entries.iter().all(|e| e.name == "." || e.name == "..") {
            entries.sort_by_key(|a| a.name.len());
        }
        out.push_str(&render(&entries, long, hum, width, now, true));
    }
    Ran { out, err, status }
}

fn overlay_node(s: &Session, len: usize, now: i64) -> Node {
    Node {
        kind: Kind::File,
        mode: 0o644,
        owner: s.user.name.clone(),
        group: s.user.name.clone(),
        size: len as u64,
        mtime: now,
        content: None,
        dynamic: false,
    }
}

fn nlink(sh: &Shell, path: &str, node: &Node) -> usize {
    if node.kind == Kind::Dir {
        2 + sh.fs.subdirs(path)
    } else {
        1
    }
}

fn render(entries: &[Entry], long: bool, hum: bool, width: usize, now: i64, total: bool) -> String {
    let mut out = String::new();
    if long {
        let size_of = |e: &Entry| {
            if hum {
                human(e.node.size)
            } else {
                e.node.size.to_string()
            }
        };
        let w_link = entries
            .iter()
            .map(|e| e.nlink.to_string().len())
            .max()
            .unwrap_or(1);
        let w_owner = entries
            .iter()
            .map(|e| e.node.owner.len())
            .max()
            .unwrap_or(4);
        let w_group = entries
            .iter()
            .map(|e| e.node.group.len())
            .max()
            .unwrap_or(4);
        let w_size = entries.iter().map(|e| size_of(e).len()).max().unwrap_or(1);
        if total {
            let blocks: u64 = entries
                .iter()
                .map(|e| {
                    if e.node.kind == Kind::Char {
                        0
                    } else {
                        e.node.size.div_ceil(4096) * 4
                    }
                })
                .sum();
            let _ = writeln!(
                out,
                "total {}",
                if hum {
                    human(blocks * 1024)
                } else {
                    blocks.to_string()
                }
            );
        }
        for e in entries {
            let mut name = e.name.clone();
            if let Kind::Link(t) = &e.node.kind {
                name = format!("{name} -> {t}");
            }
            let size = if e.node.kind == Kind::Char {
                "1, 3".to_owned()
            } else {
                size_of(e)
            };
            let _ = writeln!(
                out,
                "{} {:>w_link$} {:<w_owner$} {:<w_group$} {:>w_size$} {} {name}",
                mode_string(&e.node),
                e.nlink,
                e.node.owner,
                e.node.group,
                size,
                fmt_ls_date(e.node.mtime, now),
            );
        }
        return out;
    }
    if width == 0 {
        for e in entries {
            let _ = writeln!(out, "{}", e.name);
        }
        return out;
    }
    columns(
        &entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
        width,
    )
}

/// GNU ls's column layout: as many columns as fit, filled top to bottom.
fn columns(names: &[String], width: usize) -> String {
    if names.is_empty() {
        return String::new();
    }
    let n = names.len();
    let mut best_rows = n;
    let mut best_widths = vec![names.iter().map(String::len).max().unwrap_or(1)];
    for cols in (1..=n.min(width / 3 + 1)).rev() {
        let rows = n.div_ceil(cols);
        let widths: Vec<usize> = (0..cols)
            .map(|c| {
                (0..rows)
                    .filter_map(|r| names.get(c * rows + r))
                    .map(String::len)
                    .max()
                    .unwrap_or(0)
            })
            .filter(|w| *w > 0)
            .collect();
        let total: usize = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
        if total < width {
            best_rows = rows;
            best_widths = widths;
            break;
        }
    }
    let mut out = String::new();
    for r in 0..best_rows {
        let mut line = String::new();
        for (c, w) in best_widths.iter().enumerate() {
            if let Some(name) = names.get(c * best_rows + r) {
                if c + 1 < best_widths.len() && names.get((c + 1) * best_rows + r).is_some() {
                    let _ = write!(line, "{name:<w$}  ");
                } else {
                    line.push_str(name);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Contents of a file for `cat` and friends, when it has any.
pub(crate) fn file_content(sh: &Shell, s: &Session, abs: &str) -> Option<String> {
    let (real, node) = sh.fs.resolve(abs)?;
    if node.dynamic {
        let now = sh.host.started_unix;
        return Some(match real.as_str() {
            "/proc/cpuinfo" => sh.host.cpuinfo(),
            "/proc/version" => sh.host.proc_version(),
            "/proc/meminfo" => sh.host.meminfo(),
            "/proc/uptime" => format!("{}.{:02} {}.{:02}\n", sh.host.uptime(now), now % 100, sh.host.uptime(now) * u64::from(sh.host.n_cpus) * 9 / 10, now % 97),
            "/proc/loadavg" => {
                let l = sh.host.load;
                format!("{}.{:02} {}.{:02} {}.{:02} 1/{} {}\n", l[0] / 100, l[0] % 100, l[1] / 100, l[1] % 100, l[2] / 100, l[2] % 100, sh.host.procs.len() + 40, s.next_pid)
            }
            "/proc/cmdline" => format!("BOOT_IMAGE=/boot/vmlinuz-{} root=/dev/sda1 ro quiet\n", sh.host.kernel.release),
            "/proc/mounts" => "/dev/sda1 / ext4 rw,relatime,errors=remount-ro 0 0\nproc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\nsysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0\ntmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,mode=755 0 0\n".into(),
            _ => String::new(),
        });
    }
    node.content.clone()
}

fn input_text(sh: &Shell, s: &Session, args: &[&str], stdin: Option<String>) -> String {
    let files: Vec<&&str> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if let Some(f) = files.first() {
        let abs = fs::normalize(&s.cwd, &s.user.home, f);
        if let Some(c) = sh.overlay_file(s, &abs) {
            return c.clone();
        }
        return file_content(sh, s, &abs).unwrap_or_default();
    }
    stdin.unwrap_or_default()
}

fn cat(sh: &Shell, s: &Session, args: &[&str], stdin: Option<String>) -> Ran {
    let files: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !a.starts_with('-') || *a == "-")
        .collect();
    if files.is_empty() {
        return Ran::ok(stdin.unwrap_or_default());
    }
    let mut out = String::new();
    let mut err = String::new();
    let mut status = 0;
    for f in files {
        if f == "-" {
            out.push_str(stdin.as_deref().unwrap_or(""));
            continue;
        }
        let abs = fs::normalize(&s.cwd, &s.user.home, f);
        if let Some(c) = sh.overlay_file(s, &abs) {
            out.push_str(c);
            continue;
        }
        match sh.fs.resolve(&abs) {
            None => {
                err.push_str(&format!("cat: {f}: No such file or directory\n"));
                status = 1;
            }
            Some((_, node)) if node.kind == Kind::Dir => {
                err.push_str(&format!("cat: {f}: Is a directory\n"));
                status = 1;
            }
            Some((_, node)) if !can_read(node, s) => {
                err.push_str(&format!("cat: {f}: Permission denied\n"));
                status = 1;
            }
            Some(_) => out.push_str(&file_content(sh, s, &abs).unwrap_or_default()),
        }
    }
    Ran { out, err, status }
}

/// Interprets `echo -e` / `printf` escapes.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' || i + 1 >= bytes.len() {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let c = bytes[i + 1];
        i += 2;
        match c {
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'r' => out.push(b'\r'),
            b'a' => out.push(7),
            b'e' => out.push(0x1b),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hex: String = bytes[i..]
                    .iter()
                    .take(2)
                    .take_while(|b| b.is_ascii_hexdigit())
                    .map(|b| char::from(*b))
                    .collect();
                if let Ok(v) = u8::from_str_radix(&hex, 16) {
                    out.push(v);
                    i += hex.len();
                } else {
                    out.extend_from_slice(b"\\x");
                }
            }
            b'0' => {
                let oct: String = bytes[i..]
                    .iter()
                    .take(3)
                    .take_while(|b| (b'0'..=b'7').contains(b))
                    .map(|b| char::from(*b))
                    .collect();
                out.push(u8::from_str_radix(&oct, 8).unwrap_or(0));
                i += oct.len();
            }
            other => {
                out.push(b'\\');
                out.push(other);
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn echo(args: &[&str]) -> Ran {
    let mut newline = true;
    let mut escapes = false;
    let mut start = 0;
    for a in args {
        let is_flag = a.len() > 1
            && a.starts_with('-')
            && a[1..].chars().all(|c| matches!(c, 'n' | 'e' | 'E'));
        if !is_flag {
            break;
        }
        newline &= !a.contains('n');
        escapes = a.contains('e');
        start += 1;
    }
    let text = args[start..].join(" ");
    let mut out = if escapes { unescape(&text) } else { text };
    if newline {
        out.push('\n');
    }
    Ran::ok(out)
}

fn hostname(sh: &Shell, args: &[&str]) -> Ran {
    match args.first() {
        Some(&"-I") => Ran::ok(format!("{} \n", sh.host.ip)),
        Some(&"-i") => Ran::ok("127.0.1.1\n"),
        Some(&"-s") => Ran::ok(format!("{}\n", sh.host.short)),
        Some(&"-f") | None => Ran::ok(format!("{}\n", sh.host.hostname)),
        Some(_) => Ran::fail("hostname: you must be root to change the host name\n", 1),
    }
}

fn history(s: &mut Session, args: &[&str]) -> Ran {
    if args.first() == Some(&"-c") {
        s.history.clear();
        return Ran::ok("");
    }
    let mut out = String::new();
    for (i, line) in s.history.iter().enumerate() {
        let _ = writeln!(out, "{:>5}  {line}", i + 1);
    }
    Ran::ok(out)
}

fn export(s: &mut Session, args: &[&str]) -> Ran {
    let args: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| *a != "-p" && *a != "-n")
        .collect();
    if args.is_empty() {
        let out: String = s
            .env
            .iter()
            .map(|(k, v)| format!("declare -x {k}=\"{v}\"\n"))
            .collect();
        return Ran::ok(out);
    }
    for a in args {
        if let Some((k, v)) = a.split_once('=')
            && is_assignment(a)
        {
            s.env.insert(k.to_owned(), v.to_owned());
        }
    }
    Ran::ok("")
}

/// Splits `sudo [options] cmd...` and runs it as root when allowed.
fn sudo(sh: &Shell, s: &mut Session, args: &[&str], ctx: &mut Ctx<'_>) -> Ran {
    let rest = sudo_command(args);
    if rest.is_none() && !args.iter().any(|a| matches!(*a, "-i" | "-s" | "su")) {
        return Ran::fail(
            "usage: sudo -h | -K | -k | -V\nusage: sudo -v [-ABkNnS] [-g group] [-h host] [-p prompt] [-u user]\n",
            1,
        );
    }
    let line = if args.iter().any(|a| matches!(*a, "-i" | "-s")) && rest.is_none() {
        "sudo-login".to_owned()
    } else {
        rest.unwrap_or_default()
    };
    if s.user.uid == 0 {
        let out = sudo_as_root(sh, s, &line, ctx);
        return Ran {
            out,
            err: String::new(),
            status: s.status,
        };
    }
    if s.user.groups.is_empty() {
        // Not an administrator: sudo still asks for the password first.
        return sh.start_sudo(s, format!("sudo-denied {line}"));
    }
    sh.start_sudo(s, line)
}

fn sudo_command(args: &[&str]) -> Option<String> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if !a.starts_with('-') {
            break;
        }
        if matches!(a, "-u" | "-g" | "-p" | "-C" | "-h" | "-U" | "-r" | "-t") {
            i += 1;
        }
        i += 1;
    }
    (i < args.len()).then(|| args[i..].join(" "))
}

/// Runs a sudo'ed command line as root (the password, if any, was accepted).
pub(crate) fn sudo_as_root(sh: &Shell, s: &mut Session, line: &str, ctx: &mut Ctx<'_>) -> String {
    if let Some(cmd) = line.strip_prefix("sudo-denied ") {
        s.status = 1;
        return format!(
            "{} is not in the sudoers file.  This incident will be reported.\n",
            s.user.name
        )
        .replace("{}", cmd.split_whitespace().next().unwrap_or(""));
    }
    if line == "sudo-login" || line == "su" || line == "su -" || line == "bash" || line == "-i" {
        if s.user.uid != 0 {
            sh.switch_user(s, "root", true);
        }
        s.status = 0;
        return String::new();
    }
    let saved = s.user.clone();
    let was_root = saved.uid == 0;
    if !was_root && let Some(root) = sh.host.account("root") {
        s.user = root.clone();
    }
    let text = sh.run_text(s, line, ctx);
    if !was_root && s.stack.is_empty() {
        s.user = saved;
    }
    text
}

fn su(sh: &Shell, s: &mut Session, args: &[&str]) -> Ran {
    let login = args
        .iter()
        .any(|a| *a == "-" || *a == "-l" || *a == "--login");
    let target = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .copied()
        .unwrap_or("root");
    if sh.host.account(target).is_none() {
        return Ran::fail(
            format!(
                "su: user {target} does not exist or the user entry does not contain all the required fields\n"
            ),
            1,
        );
    }
    if s.user.uid == 0 {
        sh.switch_user(s, target, login);
        return Ran::ok("");
    }
    sh.start_su(s, target.to_owned())
}

fn download(sh: &Shell, s: &Session, tool: &str, args: &[&str], ctx: &mut Ctx<'_>) -> Ran {
    let takes_value = |a: &str| match tool {
        "curl" => matches!(
            a,
            "-o" | "-H"
                | "-A"
                | "-u"
                | "-X"
                | "-d"
                | "-e"
                | "-T"
                | "-x"
                | "-m"
                | "--output"
                | "--user-agent"
        ),
        _ => matches!(
            a,
            "-O" | "-o" | "-P" | "-U" | "-e" | "-t" | "-T" | "-l" | "-r"
        ),
    };
    let mut url = None;
    let mut silent = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if takes_value(a) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            if tool == "curl"
                && a.starts_with('-')
                && !a.starts_with("--")
                && a.contains('s')
                && !a.contains('S')
            {
                silent = true;
            }
            i += 1;
            continue;
        }
        if url.is_none() {
            url = Some(a.to_owned());
        }
        i += 1;
    }
    if tool == "curl" && sh.host.family.busybox() {
        // Not installed on Alpine: the attempt is recorded, the shell says so.
        if let Some(url) = &url {
            ctx.events.push(
                Event::from_peer(kind::DOWNLOAD_ATTEMPT, s.peer)
                    .field("url", url.clone())
                    .field("tool", tool)
                    .field("cwd", s.cwd.clone())
                    .field("user", s.user.name.clone()),
            );
        }
        return Ran::fail(sh.not_found(s, "curl"), 127);
    }
    let Some(url) = url else {
        return match tool {
            "curl" => Ran::fail(
                "curl: try 'curl --help' or 'curl --manual' for more information\n",
                2,
            ),
            _ if sh.host.family.busybox() => Ran::fail(
                "BusyBox v1.36.1 (2023-11-07 18:53:09 UTC) multi-call binary.\n\nUsage: wget [-cqS] [--spider] [-O FILE] [-o LOGFILE] [--header STR]\n",
                1,
            ),
            _ => Ran::fail(
                "wget: missing URL\nUsage: wget [OPTION]... [URL]...\n\nTry `wget --help' for more options.\n",
                1,
            ),
        };
    };
    ctx.events.push(
        Event::from_peer(kind::DOWNLOAD_ATTEMPT, s.peer)
            .field("url", url.clone())
            .field("tool", tool)
            .field("cwd", s.cwd.clone())
            .field("user", s.user.name.clone()),
    );
    let (scheme, rest) = url.split_once("://").unwrap_or(("http", url.as_str()));
    let hostport = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = hostport.rsplit('@').next().unwrap_or(hostport);
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => (h.to_owned(), p.to_owned()),
        _ => (
            hostport.to_owned(),
            if scheme == "https" {
                "443".into()
            } else if scheme == "ftp" {
                "21".into()
            } else {
                "80".into()
            },
        ),
    };
    let is_ip = host.parse::<std::net::IpAddr>().is_ok();
    let stamp = {
        let t = tm(ctx.now);
        format!(
            "{}-{:02}-{:02} {}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            hms(ctx.now)
        )
    };
    ctx.delay_ms = ctx.delay_ms.saturating_add(if is_ip { 1_200 } else { 300 });
    match tool {
        "curl" => {
            if silent {
                return Ran::fail("", if is_ip { 7 } else { 6 });
            }
            if is_ip {
                Ran::fail(
                    format!(
                        "curl: (7) Failed to connect to {host} port {port} after 1203 ms: Couldn't connect to server\n"
                    ),
                    7,
                )
            } else {
                Ran::fail(format!("curl: (6) Could not resolve host: {host}\n"), 6)
            }
        }
        _ if sh.host.family.busybox() => {
            if is_ip {
                Ran::fail(
                    format!(
                        "Connecting to {host} ({host}:{port})\nwget: can't connect to remote host ({host}): Connection refused\n"
                    ),
                    1,
                )
            } else {
                Ran::fail(format!("wget: bad address '{host}'\n"), 1)
            }
        }
        "wget" => {
            if is_ip {
                Ran::fail(
                    format!(
                        "--{stamp}--  {url}\nConnecting to {host}:{port}... failed: Connection refused.\n"
                    ),
                    4,
                )
            } else {
                Ran::fail(
                    format!(
                        "--{stamp}--  {url}\nResolving {host} ({host})... failed: Temporary failure in name resolution.\nwget: unable to resolve host address '{host}'\n"
                    ),
                    4,
                )
            }
        }
        _ => Ran::fail(format!("{tool}: {host}: Connection refused\n"), 1),
    }
}

fn short_user(name: &str) -> String {
    if name.len() > 8 {
        format!("{}+", &name[..7])
    } else {
        name.to_owned()
    }
}

/// (user, pid, ppid, vsz, rss, stat, tty, cmd, start, cpu seconds).
type PsRow<'a> = (
    String,
    u32,
    u32,
    u32,
    u32,
    &'a str,
    String,
    String,
    i64,
    u32,
);

fn ps(sh: &Shell, s: &mut Session, args: &[&str], now: i64) -> Ran {
    let h = &sh.host;
    let joined: String = args.concat();
    let boot = h.boot_unix();
    let me = s.user.name.clone();
    let shell_name = match h.shell {
        ShellKind::Ash => "-ash",
        ShellKind::Zsh => "-zsh",
        ShellKind::Bash => "-bash",
    };
    let ps_pid = s.next_pid;
    s.next_pid += 1 + (h.detail(&ps_pid.to_string()) % 3) as u32;
    let mut rows: Vec<PsRow<'_>> = Vec::new();
    // (user, pid, ppid, vsz, rss, stat, tty, cmd, start, cpu_s)
    for p in &h.procs {
        let ppid = if p.pid == 1 || p.cmd == "[kthreadd]" {
            0
        } else if p.cmd.starts_with('[') {
            2
        } else {
            1
        };
        rows.push((
            p.user.to_owned(),
            p.pid,
            ppid,
            p.vsz,
            p.rss,
            p.stat,
            "?".into(),
            p.cmd.clone(),
            boot + (p.pid as i64 % 7),
            p.cpu_s,
        ));
    }
    let sshd_pid = h
        .procs
        .iter()
        .find(|p| p.cmd.starts_with("sshd:"))
        .map_or(1, |p| p.pid);
    let sess_pid = s.pid.saturating_sub(4);
    rows.push((
        "root".into(),
        sess_pid,
        sshd_pid,
        17_820,
        10_952,
        "Ss",
        "?".into(),
        s.parent_cmd.clone(),
        s.login_unix,
        0,
    ));
    rows.push((
        me.clone(),
        s.pid,
        sess_pid,
        8_260,
        4_932,
        "Ss",
        s.tty.clone(),
        shell_name.into(),
        s.login_unix,
        0,
    ));
    let ps_cmd = if args.is_empty() {
        "ps".to_owned()
    } else {
        format!("ps {}", args.join(" "))
    };
    rows.push((
        me.clone(),
        ps_pid,
        s.pid,
        11_084,
        4_516,
        "R+",
        s.tty.clone(),
        ps_cmd,
        now,
        0,
    ));
    let mut out = String::new();
    if h.family.busybox() {
        out.push_str("PID   USER     TIME  COMMAND\n");
        for r in &rows {
            let _ = writeln!(
                out,
                "{:>5} {:<8} {:>2}:{:02} {}",
                r.1,
                short_user(&r.0),
                r.9 / 60,
                r.9 % 60,
                r.7
            );
        }
        return Ran::ok(out);
    }
    let wide_pid = h.family != Family::Centos7;
    let pw = if wide_pid { 7 } else { 5 };
    let start_str = |t: i64| {
        if now - t < 86_400 {
            let d = tm(t);
            format!("{:02}:{:02}", d.hour(), d.minute())
        } else {
            let d = tm(t);
            format!("{}{:02}", month(&d), d.day())
        }
    };
    if joined.contains('a') && joined.contains('u') || joined.contains("aux") {
        let _ = writeln!(
            out,
            "USER     {:>pw$} %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND",
            "PID"
        );
        for r in &rows {
            let mem = f64::from(r.4) * 100.0 / h.mem_kib as f64;
            let _ = writeln!(
                out,
                "{:<8} {:>pw$}  0.0 {:>4.1} {:>6} {:>5} {:<8} {:<4} {:>5} {:>3}:{:02} {}",
                short_user(&r.0),
                r.1,
                mem,
                r.3,
                r.4,
                r.6,
                r.5,
                start_str(r.8),
                r.9 / 60,
                r.9 % 60,
                r.7
            );
        }
    } else if joined.contains('e') || joined.contains('f') || joined.contains('A') {
        let _ = writeln!(
            out,
            "UID      {:>pw$} {:>pw$}  C STIME TTY          TIME CMD",
            "PID", "PPID"
        );
        for r in &rows {
            let _ = writeln!(
                out,
                "{:<8} {:>pw$} {:>pw$}  0 {:>5} {:<8} {:02}:{:02}:{:02} {}",
                short_user(&r.0),
                r.1,
                r.2,
                start_str(r.8),
                r.6,
                r.9 / 3600,
                (r.9 / 60) % 60,
                r.9 % 60,
                r.7
            );
        }
    } else {
        let _ = writeln!(out, "{:>pw$} TTY          TIME CMD", "PID");
        for r in rows.iter().filter(|r| r.6 == s.tty) {
            let cmd =
                r.7.trim_start_matches('-')
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_owned();
            let _ = writeln!(out, "{:>pw$} {:<8} 00:00:00 {cmd}", r.1, r.6);
        }
    }
    Ran::ok(out)
}

fn free(sh: &Shell, args: &[&str]) -> Ran {
    let h = &sh.host;
    let hum = args.iter().any(|a| a.contains('h'));
    let div: u64 = if args.iter().any(|a| a.contains('g')) {
        1024 * 1024
    } else if args.iter().any(|a| a.contains('m')) {
        1024
    } else {
        1
    };
    let total = h.mem_kib;
    let used = h.used_kib;
    let cache = h.cache_kib;
    let shared = 1_000 + h.detail("shm") % 20_000;
    let freem = total - used - cache;
    let avail = freem + cache * 9 / 10;
    let fmt = |kib: u64| -> String {
        if hum {
            let b = kib * 1024;
            if b >= 1 << 30 {
                format!("{:.1}Gi", b as f64 / f64::from(1u32 << 30))
            } else if b >= 1 << 20 {
                format!("{}Mi", b >> 20)
            } else if b == 0 {
                "0B".to_owned()
            } else {
                format!("{}Ki", b >> 10)
            }
        } else {
            (kib / div).to_string()
        }
    };
    let old = matches!(h.family, Family::Centos7 | Family::Alpine);
    let fw = if old { 19 } else { 20 };
    let vw = fw - 5;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>fw$} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "total", "used", "free", "shared", "buff/cache", "available"
    );
    let _ = writeln!(
        out,
        "{:<5}{:>vw$} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "Mem:",
        fmt(total),
        fmt(used),
        fmt(freem),
        fmt(shared),
        fmt(cache),
        fmt(avail)
    );
    let _ = writeln!(
        out,
        "{:<5}{:>vw$} {:>11} {:>11}",
        "Swap:",
        fmt(h.swap_kib),
        fmt(0),
        fmt(h.swap_kib)
    );
    Ran::ok(out)
}

fn uptime_line(sh: &Shell, now: i64, users: usize) -> String {
    let up = sh.host.uptime(now);
    let days = up / 86_400;
    let hours = (up % 86_400) / 3600;
    let mins = (up % 3600) / 60;
    let mut text = format!(" {} up ", hms(now));
    if days > 0 {
        let _ = write!(text, "{days} day{}, ", if days == 1 { "" } else { "s" });
    }
    if hours > 0 {
        let _ = write!(text, "{hours:>2}:{mins:02}, ");
    } else {
        let _ = write!(text, "{mins} min, ");
    }
    let l = sh.host.load;
    let _ = write!(
        text,
        " {users} user{},  load average: {}.{:02}, {}.{:02}, {}.{:02}",
        if users == 1 { "" } else { "s" },
        l[0] / 100,
        l[0] % 100,
        l[1] / 100,
        l[1] % 100,
        l[2] / 100,
        l[2] % 100
    );
    text
}

fn w(sh: &Shell, s: &Session, now: i64) -> Ran {
    let mut out = format!("{}\n", uptime_line(sh, now, 1));
    out.push_str("USER     TTY      FROM             LOGIN@   IDLE   JCPU   PCPU WHAT\n");
    let t = tm(s.login_unix);
    let _ = writeln!(
        out,
        "{:<8} {:<8} {:<16} {:02}:{:02}    0.00s  0.02s  0.00s w",
        short_user(&s.user.name),
        s.tty,
        s.peer.ip().to_string(),
        t.hour(),
        t.minute()
    );
    Ran::ok(out)
}

fn bytes_h(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / f64::from(1u32 << 30))
    } else if b >= 1 << 20 {
        format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20))
    } else {
        format!("{:.1} KiB", b as f64 / 1024.0)
    }
}

fn mac_str(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn link_local(mac: &[u8; 6]) -> String {
    format!(
        "fe80::{:x}:{:x}:{:x}:{:x}",
        (u16::from(mac[0] ^ 2) << 8) | u16::from(mac[1]),
        (u16::from(mac[2]) << 8) | 0xff,
        0xfe00 | u16::from(mac[3]),
        (u16::from(mac[4]) << 8) | u16::from(mac[5])
    )
}

fn ifconfig(sh: &Shell) -> Ran {
    let h = &sh.host;
    let o = h.ip.octets();
    let c = h.counters;
    let mut out = String::new();
    let _ = write!(
        out,
        "eth0: flags=4163<UP,BROADCAST,RUNNING,MULTICAST>  mtu 1500\n        inet {}  netmask 255.255.255.0  broadcast {}.{}.{}.255\n        inet6 {}  prefixlen 64  scopeid 0x20<link>\n        ether {}  txqueuelen 1000  (Ethernet)\n        RX packets {}  bytes {} ({})\n        RX errors 0  dropped {}  overruns 0  frame 0\n        TX packets {}  bytes {} ({})\n        TX errors 0  dropped 0 overruns 0  carrier 0  collisions 0\n\n",
        h.ip,
        o[0],
        o[1],
        o[2],
        link_local(&h.mac),
        mac_str(&h.mac),
        c[1],
        c[0],
        bytes_h(c[0]),
        h.detail("rxdrop") % 40,
        c[3],
        c[2],
        bytes_h(c[2])
    );
    let lo = 2_000 + h.detail("lo") % 90_000;
    let _ = write!(
        out,
        "lo: flags=73<UP,LOOPBACK,RUNNING>  mtu 65536\n        inet 127.0.0.1  netmask 255.0.0.0\n        inet6 ::1  prefixlen 128  scopeid 0x10<host>\n        loop  txqueuelen 1000  (Local Loopback)\n        RX packets {lo}  bytes {} ({})\n        RX errors 0  dropped 0  overruns 0  frame 0\n        TX packets {lo}  bytes {} ({})\n        TX errors 0  dropped 0 overruns 0  carrier 0  collisions 0\n\n",
        lo * 97,
        bytes_h(lo * 97),
        lo * 97,
        bytes_h(lo * 97)
    );
    Ran::ok(out)
}

fn ip(sh: &Shell, args: &[&str]) -> Ran {
    let h = &sh.host;
    let o = h.ip.octets();
    let args: Vec<&str> = args
        .iter()
        .copied()
        .filter(|a| !a.starts_with('-'))
        .collect();
    match args.first().copied() {
        Some(obj) if "address".starts_with(obj) || obj == "addr" || obj == "a" => Ran::ok(format!(
            "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n    inet 127.0.0.1/8 scope host lo\n       valid_lft forever preferred_lft forever\n    inet6 ::1/128 scope host \n       valid_lft forever preferred_lft forever\n2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP group default qlen 1000\n    link/ether {} brd ff:ff:ff:ff:ff:ff\n    inet {}/{} brd {}.{}.{}.255 scope global eth0\n       valid_lft forever preferred_lft forever\n    inet6 {}/64 scope link \n       valid_lft forever preferred_lft forever\n",
            mac_str(&h.mac),
            h.ip,
            h.prefix,
            o[0],
            o[1],
            o[2],
            link_local(&h.mac)
        )),
        Some(obj) if "route".starts_with(obj) || obj == "r" => Ran::ok(format!(
            "default via {}.{}.{}.1 dev eth0 \n{}.{}.{}.0/{} dev eth0 proto kernel scope link src {} \n",
            o[0], o[1], o[2], o[0], o[1], o[2], h.prefix, h.ip
        )),
        Some(obj) if "link".starts_with(obj) || obj == "l" => Ran::ok(format!(
            "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP mode DEFAULT group default qlen 1000\n    link/ether {} brd ff:ff:ff:ff:ff:ff\n",
            mac_str(&h.mac)
        )),
        None => Ran::fail(
            "Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }\n       ip [ -force ] -batch filename\nwhere  OBJECT := { address | addrlabel | amt | fou | help | ila | ioam | l2tp | link |\n                   macsec | maddress | monitor | mptcp | mroute | mrule |\n                   neighbor | neighbour | netconf | netns | nexthop | ntable |\n                   ntbl | route | rule | sr | tap | tcpmetrics |\n                   token | tunnel | tuntap | vrf | xfrm }\n",
            255,
        ),
        Some(obj) => Ran::fail(
            format!("Object \"{obj}\" is unknown, try \"ip help\".\n"),
            255,
        ),
    }
}

fn lscpu(sh: &Shell) -> Ran {
    let h = &sh.host;
    let c = h.cpu;
    Ran::ok(format!(
        "Architecture:            x86_64\n  CPU op-mode(s):        32-bit, 64-bit\n  Address sizes:         40 bits physical, 48 bits virtual\n  Byte Order:            Little Endian\nCPU(s):                  {n}\n  On-line CPU(s) list:   0-{last}\nVendor ID:               {}\n  Model name:            {}\n    CPU family:          {}\n    Model:               {}\n    Thread(s) per core:  1\n    Core(s) per socket:  1\n    Socket(s):           {n}\n    Stepping:            {}\n    BogoMIPS:            {:.2}\nVirtualization features: \n  Hypervisor vendor:     KVM\n  Virtualization type:   full\n",
        c.vendor,
        c.name,
        c.family,
        c.model,
        c.stepping,
        c.mhz * 2.0,
        n = h.n_cpus,
        last = h.n_cpus - 1,
    ))
}

fn df(sh: &Shell, args: &[&str]) -> Ran {
    let h = &sh.host;
    let hum = args.iter().any(|a| a.starts_with('-') && a.contains('h'));
    let f = |k: u64| if hum { human(k * 1024) } else { k.to_string() };
    let run = h.mem_kib / 10;
    let rows = [
        ("udev", h.mem_kib / 2, 0, "/dev"),
        ("tmpfs", run, 1_100, "/run"),
        ("/dev/sda1", h.disk_kib, h.disk_used_kib, "/"),
        ("tmpfs", h.mem_kib / 2, 0, "/dev/shm"),
        ("tmpfs", 5_120, 0, "/run/lock"),
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Filesystem     {:>width$} {:>5} {:>5} Use% Mounted on",
        if hum { "Size" } else { "1K-blocks" },
        "Used",
        "Avail",
        width = if hum { 5 } else { 9 }
    );
    for (fs_name, size, used, mnt) in rows {
        let pct = if size == 0 {
            0
        } else {
            (used * 100).div_ceil(size)
        };
        let _ = writeln!(
            out,
            "{fs_name:<15}{:>width$} {:>5} {:>5} {:>3}% {mnt}",
            f(size),
            f(used),
            f(size - used),
            pct,
            width = if hum { 5 } else { 9 }
        );
    }
    Ran::ok(out)
}

fn which(sh: &Shell, args: &[&str]) -> Ran {
    let dir = if sh.host.family == Family::Alpine {
        "/bin"
    } else {
        "/usr/bin"
    };
    let mut out = String::new();
    let mut status = 0;
    for a in args.iter().filter(|a| !a.starts_with('-')) {
        let path = format!("{dir}/{a}");
        if sh.fs.get(&path).is_some() {
            let _ = writeln!(out, "{path}");
        } else {
            status = 1;
        }
    }
    Ran {
        out,
        err: String::new(),
        status,
    }
}

fn grep(sh: &Shell, s: &Session, args: &[&str], stdin: Option<String>) -> Ran {
    let mut invert = false;
    let mut icase = false;
    let mut count = false;
    let mut rest = Vec::new();
    for a in args {
        if let Some(f) = a.strip_prefix('-').filter(|f| !f.is_empty()) {
            invert |= f.contains('v');
            icase |= f.contains('i');
            count |= f.contains('c');
        } else {
            rest.push(*a);
        }
    }
    let Some(pattern) = rest.first() else {
        return Ran::fail(
            "Usage: grep [OPTION]... PATTERNS [FILE]...\nTry 'grep --help' for more information.\n",
            2,
        );
    };
    let text = if rest.len() > 1 {
        let abs = fs::normalize(&s.cwd, &s.user.home, rest[1]);
        match sh
            .overlay_file(s, &abs)
            .cloned()
            .or_else(|| file_content(sh, s, &abs))
        {
            Some(t) => t,
            None => return Ran::fail(format!("grep: {}: No such file or directory\n", rest[1]), 2),
        }
    } else {
        stdin.unwrap_or_default()
    };
    let needle = pattern.trim_start_matches('^').trim_end_matches('$');
    let needle = if icase {
        needle.to_lowercase()
    } else {
        needle.to_owned()
    };
    let matched: Vec<&str> = text
        .lines()
        .filter(|l| {
            let hay = if icase {
                l.to_lowercase()
            } else {
                (*l).to_owned()
            };
            hay.contains(&needle) != invert
        })
        .collect();
    let status = if matched.is_empty() { 1 } else { 0 };
    if count {
        return Ran {
            out: format!("{}\n", matched.len()),
            err: String::new(),
            status,
        };
    }
    Ran {
        out: matched.iter().map(|l| format!("{l}\n")).collect(),
        err: String::new(),
        status,
    }
}

fn head_tail(sh: &Shell, s: &Session, name: &str, args: &[&str], stdin: Option<String>) -> Ran {
    let mut n = 10usize;
    let mut files = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a == "-n" {
            n = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(10);
            i += 2;
            continue;
        }
        if let Some(v) = a.strip_prefix("-n").or_else(|| a.strip_prefix('-')) {
            n = v.parse().unwrap_or(n);
        } else {
            files.push(a);
        }
        i += 1;
    }
    let text = input_text(sh, s, &files, stdin);
    let lines: Vec<&str> = text.lines().collect();
    let picked: Vec<&str> = if name == "head" {
        lines.iter().take(n).copied().collect()
    } else {
        lines
            .iter()
            .skip(lines.len().saturating_sub(n))
            .copied()
            .collect()
    };
    Ran::ok(picked.iter().map(|l| format!("{l}\n")).collect::<String>())
}

fn wc(sh: &Shell, s: &Session, args: &[&str], stdin: Option<String>) -> Ran {
    let text = input_text(sh, s, args, stdin);
    let l = text.matches('\n').count();
    let w = text.split_whitespace().count();
    let c = text.len();
    let flags: String = args
        .iter()
        .filter(|a| a.starts_with('-'))
        .map(|a| a.trim_start_matches('-'))
        .collect();
    let mut parts = Vec::new();
    if flags.contains('l') {
        parts.push(l);
    }
    if flags.contains('w') {
        parts.push(w);
    }
    if flags.contains('c') || flags.contains('m') {
        parts.push(c);
    }
    if parts.is_empty() {
        return Ran::ok(format!("{l:>7} {w:>7} {c:>7}\n"));
    }
    if parts.len() == 1 {
        return Ran::ok(format!("{}\n", parts[0]));
    }
    Ran::ok(format!(
        "{}\n",
        parts
            .iter()
            .map(|p| format!("{p:>7}"))
            .collect::<Vec<_>>()
            .join(" ")
    ))
}

fn awk(args: &[&str], stdin: String) -> Ran {
    let mut sep: Option<String> = None;
    let mut program = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a == "-F" {
            sep = args.get(i + 1).map(|s| (*s).to_owned());
            i += 2;
            continue;
        }
        if let Some(f) = a.strip_prefix("-F") {
            sep = Some(f.to_owned());
        } else if program.is_none() {
            program = Some(a);
        }
        i += 1;
    }
    let Some(program) = program else {
        return Ran::fail(
            "usage: awk [-F fs][-v var=value][prog | -f progfile][file ...]\n",
            2,
        );
    };
    // Only `{print $a, $b ...}` is understood; anything else prints nothing.
    let Some(body) = program
        .trim()
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
    else {
        return Ran::ok("");
    };
    let Some(fields) = body.trim().strip_prefix("print") else {
        return Ran::ok("");
    };
    let wanted: Vec<&str> = fields
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    let mut out = String::new();
    for line in stdin.lines() {
        let cols: Vec<&str> = match &sep {
            Some(sp) if !sp.is_empty() && sp != " " => line.split(sp.as_str()).collect(),
            _ => line.split_whitespace().collect(),
        };
        let picked: Vec<&str> = wanted
            .iter()
            .map(|f| match *f {
                "$0" => line,
                "$NF" => cols.last().copied().unwrap_or(""),
                f => f
                    .strip_prefix('$')
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| n.checked_sub(1))
                    .and_then(|n| cols.get(n).copied())
                    .unwrap_or(""),
            })
            .collect();
        let _ = writeln!(
            out,
            "{}",
            if wanted.is_empty() {
                line.to_owned()
            } else {
                picked.join(" ")
            }
        );
    }
    Ran::ok(out)
}

fn base64_cmd(args: &[&str], stdin: String) -> Ran {
    let engine = &base64::engine::general_purpose::STANDARD;
    if args.iter().any(|a| *a == "-d" || *a == "--decode") {
        let clean: String = stdin.chars().filter(|c| !c.is_whitespace()).collect();
        return match engine.decode(clean) {
            Ok(bytes) => Ran::ok(String::from_utf8_lossy(&bytes).into_owned()),
            Err(_) => Ran::fail("base64: invalid input\n", 1),
        };
    }
    let enc = engine.encode(stdin.as_bytes());
    let mut out = String::new();
    for chunk in enc.as_bytes().chunks(76) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    Ran::ok(out)
}

fn nested_shell(sh: &Shell, s: &mut Session, name: &str, args: &[&str], ctx: &mut Ctx<'_>) -> Ran {
    if let Some(i) = args.iter().position(|a| *a == "-c") {
        let Some(script) = args.get(i + 1) else {
            return Ran::fail(format!("{name}: -c: option requires an argument\n"), 2);
        };
        if ctx.depth >= MAX_DEPTH {
            return Ran::ok("");
        }
        ctx.depth += 1;
        let out = sh.run_text(s, script, ctx);
        ctx.depth -= 1;
        return Ran {
            out,
            err: String::new(),
            status: s.status,
        };
    }
    if let Some(file) = args.iter().find(|a| !a.starts_with('-')) {
        let abs = fs::normalize(&s.cwd, &s.user.home, file);
        if sh.overlay_file(s, &abs).is_none() && sh.fs.resolve(&abs).is_none() {
            return Ran::fail(format!("{name}: {file}: No such file or directory\n"), 127);
        }
    }
    // A script piped into a shell (`curl ... | sh`) is never run.
    Ran::ok("")
}

fn last(sh: &Shell, s: &Session, now: i64) -> Ran {
    let t = tm(s.login_unix);
    let boot = tm(sh.host.boot_unix());
    let _ = now;
    Ran::ok(format!(
        "{:<8} {:<12} {:<16} {} {} {:>2} {:02}:{:02}   still logged in\nreboot   system boot  {:<16} {} {} {:>2} {:02}:{:02}   still running\n\nwtmp begins {}\n",
        s.user.name,
        s.tty,
        s.peer.ip().to_string(),
        weekday(&t),
        month(&t),
        t.day(),
        t.hour(),
        t.minute(),
        sh.host.kernel.release,
        weekday(&boot),
        month(&boot),
        boot.day(),
        boot.hour(),
        boot.minute(),
        fmt_ctime(sh.host.installed_unix)
    ))
}

fn join_lines(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}
