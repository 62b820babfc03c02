//! The facts one decky's shell shows: distro family traits, accounts, hardware, network
//! and processes, all derived from the persona so they are stable per decky and differ
//! across deckies.

use std::net::{IpAddr, Ipv4Addr};

use decnet_core::catalog::Distro;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::persona::{KernelInfo, Persona};

/// Longest user name taken from the persona.
pub const MAX_USER_NAME: usize = 32;
/// Most login accounts taken from the persona.
pub const MAX_LOGIN_USERS: usize = 16;

/// Which distro family's tools and files the shell imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Debian 12 (and Kali).
    Debian,
    /// Ubuntu.
    Ubuntu,
    /// RHEL 8/9 likes and Fedora.
    Rhel,
    /// CentOS 7 (older coreutils and procps).
    Centos7,
    /// Alpine (busybox).
    Alpine,
    /// Arch Linux.
    Arch,
}

/// Which interactive shell the login runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellKind {
    /// GNU bash.
    Bash,
    /// busybox ash.
    Ash,
    /// zsh (Kali's root shell).
    Zsh,
}

/// One account of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// GECOS field.
    pub gecos: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
    /// Accepted password when this is a login account of the persona.
    pub password: Option<String>,
    /// Supplementary groups shown by `id` (gid, name).
    pub groups: Vec<(u32, String)>,
}

/// One process of the fake process table.
#[derive(Debug, Clone)]
pub struct Proc {
    /// User name.
    pub user: &'static str,
    /// Process id.
    pub pid: u32,
    /// Virtual size (KiB).
    pub vsz: u32,
    /// Resident size (KiB).
    pub rss: u32,
    /// `ps` STAT.
    pub stat: &'static str,
    /// Command line (`[name]` for kernel threads).
    pub cmd: String,
    /// CPU seconds used.
    pub cpu_s: u32,
}

/// A CPU model the decky claims.
#[derive(Debug, Clone, Copy)]
pub struct Cpu {
    /// `vendor_id`.
    pub vendor: &'static str,
    /// `cpu family`.
    pub family: u32,
    /// `model`.
    pub model: u32,
    /// `model name`.
    pub name: &'static str,
    /// `stepping`.
    pub stepping: u32,
    /// `cpu MHz`.
    pub mhz: f64,
    /// `cache size` in KB.
    pub cache_kb: u32,
}

const CPUS: &[Cpu] = &[
    Cpu {
        vendor: "GenuineIntel",
        family: 6,
        model: 85,
        name: "Intel(R) Xeon(R) Gold 6230R CPU @ 2.10GHz",
        stepping: 7,
        mhz: 2095.078,
        cache_kb: 36608,
    },
    Cpu {
        vendor: "GenuineIntel",
        family: 6,
        model: 79,
        name: "Intel(R) Xeon(R) CPU E5-2680 v4 @ 2.40GHz",
        stepping: 1,
        mhz: 2399.998,
        cache_kb: 35840,
    },
    Cpu {
        vendor: "GenuineIntel",
        family: 6,
        model: 106,
        name: "Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz",
        stepping: 6,
        mhz: 2394.374,
        cache_kb: 24576,
    },
    Cpu {
        vendor: "AuthenticAMD",
        family: 23,
        model: 49,
        name: "AMD EPYC 7542 32-Core Processor",
        stepping: 0,
        mhz: 2894.562,
        cache_kb: 512,
    },
    Cpu {
        vendor: "AuthenticAMD",
        family: 25,
        model: 1,
        name: "AMD EPYC 7443P 24-Core Processor",
        stepping: 1,
        mhz: 2850.000,
        cache_kb: 512,
    },
];

/// Everything the shell shows about one decky.
#[derive(Debug, Clone)]
pub struct Host {
    /// Full hostname (`uname -n`, `hostname`).
    pub hostname: String,
    /// Hostname up to the first dot (the prompt's `\h`).
    pub short: String,
    /// Distro.
    pub distro: &'static Distro,
    /// Family of tools.
    pub family: Family,
    /// Login shell flavour.
    pub shell: ShellKind,
    /// Kernel.
    pub kernel: KernelInfo,
    /// Every account, system ones first.
    pub accounts: Vec<Account>,
    /// Seconds the machine had been up when the service started.
    pub uptime_at_start: u64,
    /// Unix time the service started (the shell adds real elapsed time to the uptime).
    pub started_unix: i64,
    /// Unix time the system was "installed" (base of file dates).
    pub installed_unix: i64,
    /// Memory in KiB.
    pub mem_kib: u64,
    /// Swap in KiB.
    pub swap_kib: u64,
    /// Memory in use at start, KiB.
    pub used_kib: u64,
    /// Buffers and cache, KiB.
    pub cache_kib: u64,
    /// CPU model.
    pub cpu: Cpu,
    /// Number of CPUs.
    pub n_cpus: u32,
    /// Root filesystem size in KiB.
    pub disk_kib: u64,
    /// Root filesystem use in KiB.
    pub disk_used_kib: u64,
    /// IPv4 address of eth0.
    pub ip: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
    /// MAC address of eth0.
    pub mac: [u8; 6],
    /// Received bytes/packets and sent bytes/packets on eth0 at start.
    pub counters: [u64; 4],
    /// The process table (without the attacker's own session).
    pub procs: Vec<Proc>,
    /// Load averages ×100.
    pub load: [u32; 3],
    /// Machine id (`/etc/machine-id`).
    pub machine_id: String,
    /// Seed for per-path details (file sizes and dates).
    pub detail_seed: [u8; 32],
}

impl Family {
    /// The family of a distro slug.
    pub fn of(distro: &Distro) -> Family {
        match distro.slug {
            "ubuntu22" | "ubuntu20" => Family::Ubuntu,
            "rocky9" | "fedora" => Family::Rhel,
            "centos7" => Family::Centos7,
            "alpine" => Family::Alpine,
            "arch" => Family::Arch,
            _ => Family::Debian,
        }
    }

    /// Whether coreutils quote names in messages (`cannot access '/x'`, coreutils ≥ 8.25).
    pub fn quotes_names(self) -> bool {
        !matches!(self, Family::Centos7)
    }

    /// Whether the userland is busybox.
    pub fn busybox(self) -> bool {
        matches!(self, Family::Alpine)
    }

    /// `nologin` path.
    pub fn nologin(self) -> &'static str {
        match self {
            Family::Debian | Family::Ubuntu => "/usr/sbin/nologin",
            Family::Arch => "/usr/bin/nologin",
            _ => "/sbin/nologin",
        }
    }

    /// The administrators' group login users belong to.
    pub fn admin_group(self) -> (u32, &'static str) {
        match self {
            Family::Debian | Family::Ubuntu => (27, "sudo"),
            _ => (10, "wheel"),
        }
    }
}

/// System accounts per family: (name, uid, gid, gecos, home, shell or "" for nologin).
fn system_accounts(
    family: Family,
) -> &'static [(
    &'static str,
    u32,
    u32,
    &'static str,
    &'static str,
    &'static str,
)] {
    match family {
        Family::Debian => &[
            ("daemon", 1, 1, "daemon", "/usr/sbin", ""),
            ("bin", 2, 2, "bin", "/bin", ""),
            ("sys", 3, 3, "sys", "/dev", ""),
            ("sync", 4, 65534, "sync", "/bin", "/bin/sync"),
            ("games", 5, 60, "games", "/usr/games", ""),
            ("man", 6, 12, "man", "/var/cache/man", ""),
            ("lp", 7, 7, "lp", "/var/spool/lpd", ""),
            ("mail", 8, 8, "mail", "/var/mail", ""),
            ("news", 9, 9, "news", "/var/spool/news", ""),
            ("uucp", 10, 10, "uucp", "/var/spool/uucp", ""),
            ("proxy", 13, 13, "proxy", "/bin", ""),
            ("www-data", 33, 33, "www-data", "/var/www", ""),
            ("backup", 34, 34, "backup", "/var/backups", ""),
            ("list", 38, 38, "Mailing List Manager", "/var/list", ""),
            ("irc", 39, 39, "ircd", "/run/ircd", ""),
            ("_apt", 42, 65534, "", "/nonexistent", ""),
            ("nobody", 65534, 65534, "nobody", "/nonexistent", ""),
            (
                "systemd-network",
                998,
                998,
                "systemd Network Management",
                "/",
                "",
            ),
            (
                "systemd-timesync",
                997,
                997,
                "systemd Time Synchronization",
                "/",
                "",
            ),
            ("messagebus", 100, 107, "", "/nonexistent", ""),
            ("sshd", 101, 65534, "", "/run/sshd", ""),
        ],
        Family::Ubuntu => &[
            ("daemon", 1, 1, "daemon", "/usr/sbin", ""),
            ("bin", 2, 2, "bin", "/bin", ""),
            ("sys", 3, 3, "sys", "/dev", ""),
            ("sync", 4, 65534, "sync", "/bin", "/bin/sync"),
            ("games", 5, 60, "games", "/usr/games", ""),
            ("man", 6, 12, "man", "/var/cache/man", ""),
            ("lp", 7, 7, "lp", "/var/spool/lpd", ""),
            ("mail", 8, 8, "mail", "/var/mail", ""),
            ("news", 9, 9, "news", "/var/spool/news", ""),
            ("uucp", 10, 10, "uucp", "/var/spool/uucp", ""),
            ("proxy", 13, 13, "proxy", "/bin", ""),
            ("www-data", 33, 33, "www-data", "/var/www", ""),
            ("backup", 34, 34, "backup", "/var/backups", ""),
            ("list", 38, 38, "Mailing List Manager", "/var/list", ""),
            ("irc", 39, 39, "ircd", "/run/ircd", ""),
            (
                "gnats",
                41,
                41,
                "Gnats Bug-Reporting System (admin)",
                "/var/lib/gnats",
                "",
            ),
            ("nobody", 65534, 65534, "nobody", "/nonexistent", ""),
            ("_apt", 100, 65534, "", "/nonexistent", ""),
            (
                "systemd-network",
                101,
                102,
                "systemd Network Management,,,",
                "/run/systemd",
                "",
            ),
            (
                "systemd-resolve",
                102,
                103,
                "systemd Resolver,,,",
                "/run/systemd",
                "",
            ),
            ("messagebus", 103, 104, "", "/nonexistent", ""),
            (
                "systemd-timesync",
                104,
                105,
                "systemd Time Synchronization,,,",
                "/run/systemd",
                "",
            ),
            ("syslog", 105, 111, "", "/home/syslog", ""),
            ("uuidd", 106, 112, "", "/run/uuidd", ""),
            ("tcpdump", 107, 113, "", "/nonexistent", ""),
            ("sshd", 108, 65534, "", "/run/sshd", ""),
            ("landscape", 109, 116, "", "/var/lib/landscape", ""),
            (
                "pollinate",
                110,
                1,
                "",
                "/var/cache/pollinate",
                "/bin/false",
            ),
            (
                "lxd",
                999,
                100,
                "",
                "/var/snap/lxd/common/lxd",
                "/bin/false",
            ),
        ],
        Family::Rhel | Family::Centos7 => &[
            ("bin", 1, 1, "bin", "/bin", ""),
            ("daemon", 2, 2, "daemon", "/sbin", ""),
            ("adm", 3, 4, "adm", "/var/adm", ""),
            ("lp", 4, 7, "lp", "/var/spool/lpd", ""),
            ("sync", 5, 0, "sync", "/sbin", "/bin/sync"),
            ("shutdown", 6, 0, "shutdown", "/sbin", "/sbin/shutdown"),
            ("halt", 7, 0, "halt", "/sbin", "/sbin/halt"),
            ("mail", 8, 12, "mail", "/var/spool/mail", ""),
            ("operator", 11, 0, "operator", "/root", ""),
            ("games", 12, 100, "games", "/usr/games", ""),
            ("ftp", 14, 50, "FTP User", "/var/ftp", ""),
            ("nobody", 65534, 65534, "Kernel Overflow User", "/", ""),
            ("systemd-coredump", 999, 997, "systemd Core Dumper", "/", ""),
            ("dbus", 81, 81, "System message bus", "/", ""),
            (
                "tss",
                59,
                59,
                "Account used for TPM access",
                "/dev/null",
                "",
            ),
            ("sssd", 998, 995, "User for sssd", "/", ""),
            ("chrony", 997, 994, "", "/var/lib/chrony", ""),
            (
                "sshd",
                74,
                74,
                "Privilege-separated SSH",
                "/usr/share/empty.sshd",
                "",
            ),
        ],
        Family::Alpine => &[
            ("bin", 1, 1, "bin", "/bin", ""),
            ("daemon", 2, 2, "daemon", "/sbin", ""),
            ("adm", 3, 4, "adm", "/var/adm", ""),
            ("lp", 4, 7, "lp", "/var/spool/lpd", ""),
            ("sync", 5, 0, "sync", "/sbin", "/bin/sync"),
            ("shutdown", 6, 0, "shutdown", "/sbin", "/sbin/shutdown"),
            ("halt", 7, 0, "halt", "/sbin", "/sbin/halt"),
            ("mail", 8, 12, "mail", "/var/mail", ""),
            ("news", 9, 13, "news", "/usr/lib/news", ""),
            ("uucp", 10, 14, "uucp", "/var/spool/uucppublic", ""),
            ("operator", 11, 0, "operator", "/root", ""),
            ("man", 13, 15, "man", "/usr/man", ""),
            ("postmaster", 14, 12, "postmaster", "/var/mail", ""),
            ("cron", 16, 16, "cron", "/var/spool/cron", ""),
            ("ftp", 21, 21, "", "/var/lib/ftp", ""),
            ("sshd", 22, 22, "sshd", "/dev/null", ""),
            ("at", 25, 25, "at", "/var/spool/cron/atjobs", ""),
            ("squid", 31, 31, "Squid", "/var/cache/squid", ""),
            ("xfs", 33, 33, "X Font Server", "/etc/X11/fs", ""),
            ("games", 35, 35, "games", "/usr/games", ""),
            ("cyrus", 85, 12, "", "/usr/cyrus", ""),
            ("vpopmail", 89, 89, "", "/var/vpopmail", ""),
            ("ntp", 123, 123, "NTP", "/var/empty", ""),
            ("smmsp", 209, 209, "smmsp", "/var/spool/mqueue", ""),
            ("guest", 405, 100, "guest", "/dev/null", ""),
            ("nobody", 65534, 65534, "nobody", "/", ""),
        ],
        Family::Arch => &[
            ("bin", 1, 1, "", "/", ""),
            ("daemon", 2, 2, "", "/", ""),
            ("mail", 8, 12, "", "/var/spool/mail", ""),
            ("ftp", 14, 11, "", "/srv/ftp", ""),
            ("http", 33, 33, "", "/srv/http", ""),
            ("nobody", 65534, 65534, "Kernel Overflow User", "/", ""),
            ("dbus", 81, 81, "System Message Bus", "/", ""),
            ("systemd-coredump", 984, 984, "systemd Core Dumper", "/", ""),
            (
                "systemd-network",
                982,
                982,
                "systemd Network Management",
                "/",
                "",
            ),
            (
                "systemd-timesync",
                979,
                979,
                "systemd Time Synchronization",
                "/",
                "",
            ),
            ("sshd", 976, 976, "sshd user", "/var/empty", ""),
        ],
    }
}

/// Parses the persona's accepted logins: `users` (`root:toor,admin:admin123`), then the
/// reference keys `password` (root) and `user`/`user_password`. Without any of them root's
/// password is `admin`, the reference default.
pub fn login_credentials(persona: &Persona) -> Vec<(String, String)> {
    let mut creds: Vec<(String, String)> = Vec::new();
    let add = |creds: &mut Vec<(String, String)>, user: &str, pass: &str| {
        let user = user.trim();
        let ok = !user.is_empty()
            && user.len() <= MAX_USER_NAME
            && user
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if ok && creds.len() < MAX_LOGIN_USERS && !creds.iter().any(|(u, p)| u == user && p == pass)
        {
            creds.push((user.to_owned(), pass.to_owned()));
        }
    };
    if let Some(users) = persona.get("users") {
        for pair in users.split(',') {
            if let Some((u, p)) = pair.split_once(':') {
                add(&mut creds, u, p);
            }
        }
    }
    if let Some(p) = persona.get("password") {
        add(&mut creds, "root", p);
    }
    if let (Some(u), Some(p)) = (persona.get("user"), persona.get("user_password")) {
        add(&mut creds, u, p);
    }
    if creds.is_empty() {
        creds.push(("root".to_owned(), "admin".to_owned()));
    }
    creds
}

fn kernel_threads() -> &'static [&'static str] {
    &[
        "kthreadd",
        "rcu_gp",
        "rcu_par_gp",
        "slub_flushwq",
        "netns",
        "kworker/0:0H-events_highpri",
        "mm_percpu_wq",
        "rcu_tasks_kthread",
        "ksoftirqd/0",
        "rcu_preempt",
        "migration/0",
        "cpuhp/0",
        "kdevtmpfs",
        "inet_frag_wq",
        "kauditd",
        "khungtaskd",
        "oom_reaper",
        "writeback",
        "kcompactd0",
        "ksmd",
        "khugepaged",
        "kblockd",
        "kswapd0",
        "kthrotld",
        "jbd2/sda1-8",
        "ext4-rsv-conver",
    ]
}

/// (user, command, vsz, rss, stat) of the userland daemons per family.
fn daemons(family: Family) -> &'static [(&'static str, &'static str, u32, u32, &'static str)] {
    match family {
        Family::Debian | Family::Ubuntu | Family::Arch => &[
            ("root", "/lib/systemd/systemd-journald", 41368, 14220, "Ss"),
            ("root", "/lib/systemd/systemd-udevd", 25744, 6820, "Ss"),
            (
                "systemd-timesync",
                "/lib/systemd/systemd-timesyncd",
                90088,
                6740,
                "Ssl",
            ),
            ("root", "/usr/sbin/cron -f", 6612, 2740, "Ss"),
            (
                "messagebus",
                "/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile --systemd-activation --syslog-only",
                9252,
                4916,
                "Ss",
            ),
            ("root", "/lib/systemd/systemd-logind", 25264, 8080, "Ss"),
            (
                "root",
                "/sbin/agetty -o -p -- \\u --noclear - linux",
                5876,
                1940,
                "Ss+",
            ),
            (
                "root",
                "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
                15432,
                9012,
                "Ss",
            ),
            ("root", "/usr/sbin/rsyslogd -n -iNONE", 222220, 5412, "Ssl"),
        ],
        Family::Rhel | Family::Centos7 => &[
            (
                "root",
                "/usr/lib/systemd/systemd-journald",
                35264,
                12840,
                "Ss",
            ),
            ("root", "/usr/lib/systemd/systemd-udevd", 33136, 11340, "Ss"),
            ("root", "/sbin/auditd", 86936, 2472, "S<sl"),
            ("chrony", "/usr/sbin/chronyd -F 2", 84712, 3636, "S"),
            (
                "dbus",
                "/usr/bin/dbus-broker-launch --scope system --audit",
                19824,
                6324,
                "Ss",
            ),
            (
                "root",
                "/usr/sbin/irqbalance --foreground",
                78216,
                3708,
                "Ssl",
            ),
            (
                "root",
                "/usr/lib/systemd/systemd-logind",
                30620,
                11460,
                "Ss",
            ),
            (
                "root",
                "/usr/sbin/NetworkManager --no-daemon",
                256308,
                18496,
                "Ssl",
            ),
            ("root", "/usr/sbin/rsyslogd -n", 160168, 7300, "Ssl"),
            ("root", "/usr/sbin/crond -n", 221928, 3568, "Ss"),
            (
                "root",
                "/sbin/agetty -o -p -- \\u --noclear - linux",
                221008,
                1816,
                "Ss+",
            ),
            (
                "root",
                "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups",
                16828,
                9208,
                "Ss",
            ),
            ("root", "/usr/sbin/gssproxy -D", 447520, 6112, "Ssl"),
        ],
        Family::Alpine => &[
            ("root", "/sbin/syslogd -t -n", 1612, 964, "S"),
            (
                "root",
                "/usr/sbin/crond -c /etc/crontabs -f",
                1612,
                904,
                "S",
            ),
            (
                "root",
                "/sbin/udhcpc -b -R -p /var/run/udhcpc.eth0.pid -i eth0",
                1612,
                880,
                "S",
            ),
            (
                "chrony",
                "/usr/sbin/chronyd -f /etc/chrony/chrony.conf",
                5252,
                2256,
                "S",
            ),
            (
                "root",
                "sshd: /usr/sbin/sshd [listener] 0 of 10-100 startups",
                4972,
                3268,
                "S",
            ),
            ("root", "/sbin/getty 38400 tty1", 1612, 836, "S"),
        ],
    }
}

impl Host {
    /// The facts of `persona`'s decky. `local` is the address attackers connected to
    /// (shown as eth0's address unless it is loopback or unspecified, in which case a
    /// seeded private address is shown); `started_unix` is when the service started.
    pub fn new(persona: &Persona, local: Option<IpAddr>, started_unix: i64) -> Host {
        let distro = persona.distro;
        let family = Family::of(distro);
        let shell = match distro.root_shell {
            s if s.ends_with("zsh") => ShellKind::Zsh,
            s if s.ends_with("ash") && !s.ends_with("bash") => ShellKind::Ash,
            _ => ShellKind::Bash,
        };
        let hostname = persona
            .get("hostname")
            .map(str::to_owned)
            .unwrap_or_else(|| persona.hostname.clone());
        let hostname: String = hostname
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
            .take(64)
            .collect();
        let hostname = if hostname.is_empty() {
            "localhost".to_owned()
        } else {
            hostname
        };
        let short = hostname.split('.').next().unwrap_or(&hostname).to_owned();

        let mut rng = persona.rng("shell-host");
        let nologin = family.nologin();
        let mut accounts = vec![Account {
            name: "root".into(),
            uid: 0,
            gid: 0,
            gecos: if family == Family::Arch {
                String::new()
            } else {
                "root".into()
            },
            home: "/root".into(),
            shell: distro.root_shell.into(),
            password: None,
            groups: Vec::new(),
        }];
        for (name, uid, gid, gecos, home, sh) in system_accounts(family) {
            accounts.push(Account {
                name: (*name).into(),
                uid: *uid,
                gid: *gid,
                gecos: (*gecos).into(),
                home: (*home).into(),
                shell: if sh.is_empty() {
                    nologin.into()
                } else {
                    (*sh).into()
                },
                password: None,
                groups: Vec::new(),
            });
        }
        let user_shell = if family == Family::Alpine {
            "/bin/ash"
        } else {
            "/bin/bash"
        };
        let (admin_gid, admin_name) = family.admin_group();
        let mut next_uid = 1000;
        for (user, pass) in login_credentials(persona) {
            if let Some(existing) = accounts.iter_mut().find(|a| a.name == user) {
                if existing.password.is_none() {
                    existing.password = Some(pass);
                }
                continue;
            }
            accounts.push(Account {
                name: user.clone(),
                uid: next_uid,
                gid: next_uid,
                gecos: if family == Family::Debian || family == Family::Ubuntu {
                    format!("{user},,,")
                } else {
                    String::new()
                },
                home: format!("/home/{user}"),
                shell: user_shell.into(),
                password: Some(pass),
                groups: vec![(admin_gid, admin_name.to_owned())],
            });
            next_uid += 1;
        }

        let uptime_at_start = rng.gen_range(3_600..45 * 86_400);
        let installed_unix =
            started_unix - uptime_at_start as i64 - rng.gen_range(20..400) * 86_400;
        let mem_gib = *[2u64, 4, 4, 8, 8, 16, 32].choose(&mut rng).unwrap_or(&4);
        let mem_kib = mem_gib * 1024 * 1024 - rng.gen_range(60_000..220_000);
        let swap_kib = if family == Family::Alpine {
            0
        } else {
            *[0u64, 1_048_572, 2_097_148, 4_194_300]
                .choose(&mut rng)
                .unwrap_or(&0)
        };
        let used_kib = mem_kib * rng.gen_range(8..35) / 100;
        let cache_kib = mem_kib * rng.gen_range(10..40) / 100;
        let cpu = *CPUS.choose(&mut rng).unwrap_or(&CPUS[0]);
        let n_cpus = *[1u32, 2, 2, 4, 4, 8].choose(&mut rng).unwrap_or(&2);
        let disk_gib = *[20u64, 32, 40, 50, 80, 100].choose(&mut rng).unwrap_or(&40);
        let disk_kib = disk_gib * 1024 * 1024 - rng.gen_range(500_000..1_500_000);
        let disk_used_kib = disk_kib * rng.gen_range(8..55) / 100;
        let ip = match local {
            Some(IpAddr::V4(v4)) if !v4.is_loopback() && !v4.is_unspecified() => v4,
            _ => Ipv4Addr::new(
                10,
                rng.gen_range(0..=254),
                rng.gen_range(0..=254),
                rng.gen_range(10..250),
            ),
        };
        let vendors: [[u8; 3]; 4] = [
            [0x52, 0x54, 0x00],
            [0x00, 0x50, 0x56],
            [0xbc, 0x24, 0x11],
            [0x00, 0x16, 0x3e],
        ];
        let v = vendors[rng.gen_range(0..vendors.len())];
        let mac = [v[0], v[1], v[2], rng.r#gen(), rng.r#gen(), rng.r#gen()];
        let rx_pk = rng.gen_range(200_000..40_000_000u64);
        let tx_pk = rx_pk * rng.gen_range(30..90) / 100;
        let counters = [
            rx_pk * rng.gen_range(300..900),
            rx_pk,
            tx_pk * rng.gen_range(100..700),
            tx_pk,
        ];

        let mut procs = vec![Proc {
            user: "root",
            pid: 1,
            vsz: if family.busybox() {
                1612
            } else {
                167_000 + rng.gen_range(0..4_000)
            },
            rss: if family.busybox() {
                924
            } else {
                11_000 + rng.gen_range(0..3_000)
            },
            stat: "Ss",
            cmd: match family {
                Family::Alpine => "/sbin/init".into(),
                Family::Rhel | Family::Centos7 => {
                    "/usr/lib/systemd/systemd --switched-root --system --deserialize 31".into()
                }
                _ => "/sbin/init".into(),
            },
            cpu_s: rng.gen_range(2..30),
        }];
        let mut pid = 2;
        if !family.busybox() {
            for name in kernel_threads() {
                procs.push(Proc {
                    user: "root",
                    pid,
                    vsz: 0,
                    rss: 0,
                    stat: if name.starts_with("kworker")
                        || name.contains("wq")
                        || name.starts_with("rcu_") && *name != "rcu_preempt"
                    {
                        "I<"
                    } else {
                        "S"
                    },
                    cmd: format!("[{name}]"),
                    cpu_s: if *name == "rcu_preempt" || name.starts_with("ksoftirqd") {
                        rng.gen_range(1..40)
                    } else {
                        0
                    },
                });
                pid += rng.gen_range(1..4);
            }
            pid = rng.gen_range(180..420);
        }
        for (user, cmd, vsz, rss, stat) in daemons(family) {
            pid += rng.gen_range(1..60);
            procs.push(Proc {
                user,
                pid,
                vsz: vsz + rng.gen_range(0..512),
                rss: rss + rng.gen_range(0..256),
                stat,
                cmd: (*cmd).to_owned(),
                cpu_s: rng.gen_range(0..20),
            });
        }
        let load = [
            rng.gen_range(0..40),
            rng.gen_range(0..30),
            rng.gen_range(0..20),
        ];
        let machine_id = hex::encode(persona.derive("machine-id"))[..32].to_owned();
        Host {
            hostname,
            short,
            distro,
            family,
            shell,
            kernel: persona.kernel.clone(),
            accounts,
            uptime_at_start,
            started_unix,
            installed_unix,
            mem_kib,
            swap_kib,
            used_kib,
            cache_kib,
            cpu,
            n_cpus,
            disk_kib,
            disk_used_kib,
            ip,
            prefix: 24,
            mac,
            counters,
            procs,
            load,
            machine_id,
            detail_seed: persona.derive("shell-detail"),
        }
    }

    /// The account called `name`.
    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name == name)
    }

    /// Whether `user`/`password` is an accepted login.
    pub fn accepts(&self, user: &str, password: &[u8]) -> bool {
        self.account(user)
            .and_then(|a| a.password.as_deref())
            .is_some_and(|p| p.as_bytes() == password)
    }

    /// Seconds of uptime at unix time `now`.
    pub fn uptime(&self, now: i64) -> u64 {
        self.uptime_at_start + u64::try_from(now - self.started_unix).unwrap_or(0)
    }

    /// Unix time of the fake boot.
    pub fn boot_unix(&self) -> i64 {
        self.started_unix - self.uptime_at_start as i64
    }

    /// A stable number for `what` (file sizes, dates).
    pub fn detail(&self, what: &str) -> u64 {
        use sha2::{Digest, Sha256};
        let d = Sha256::new()
            .chain_update(self.detail_seed)
            .chain_update(what.as_bytes())
            .finalize();
        u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
    }

    /// `/etc/os-release`.
    pub fn os_release(&self) -> String {
        let d = self.distro;
        match self.distro.slug {
            "debian" => "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL=\"https://www.debian.org/\"\nSUPPORT_URL=\"https://www.debian.org/support\"\nBUG_REPORT_URL=\"https://bugs.debian.org/\"\n".into(),
            "ubuntu22" => "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"22.04\"\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\nHOME_URL=\"https://www.ubuntu.com/\"\nSUPPORT_URL=\"https://help.ubuntu.com/\"\nBUG_REPORT_URL=\"https://bugs.launchpad.net/ubuntu/\"\nPRIVACY_POLICY_URL=\"https://www.ubuntu.com/legal/terms-and-policies/privacy-policy\"\nUBUNTU_CODENAME=jammy\n".into(),
            "ubuntu20" => "NAME=\"Ubuntu\"\nVERSION=\"20.04.6 LTS (Focal Fossa)\"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME=\"Ubuntu 20.04.6 LTS\"\nVERSION_ID=\"20.04\"\nHOME_URL=\"https://www.ubuntu.com/\"\nSUPPORT_URL=\"https://help.ubuntu.com/\"\nBUG_REPORT_URL=\"https://bugs.launchpad.net/ubuntu/\"\nPRIVACY_POLICY_URL=\"https://www.ubuntu.com/legal/terms-and-policies/privacy-policy\"\nVERSION_CODENAME=focal\nUBUNTU_CODENAME=focal\n".into(),
            "rocky9" => "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\nANSI_COLOR=\"0;32\"\nLOGO=\"fedora-logo-icon\"\nCPE_NAME=\"cpe:/o:rocky:rocky:9::baseos\"\nHOME_URL=\"https://rockylinux.org/\"\nBUG_REPORT_URL=\"https://bugs.rockylinux.org/\"\nSUPPORT_END=\"2032-05-31\"\nROCKY_SUPPORT_PRODUCT=\"Rocky-Linux-9\"\nROCKY_SUPPORT_PRODUCT_VERSION=\"9.3\"\nREDHAT_SUPPORT_PRODUCT=\"Rocky Linux\"\nREDHAT_SUPPORT_PRODUCT_VERSION=\"9.3\"\n".into(),
            "centos7" => "NAME=\"CentOS Linux\"\nVERSION=\"7 (Core)\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"7\"\nPRETTY_NAME=\"CentOS Linux 7 (Core)\"\nANSI_COLOR=\"0;31\"\nCPE_NAME=\"cpe:/o:centos:centos:7\"\nHOME_URL=\"https://www.centos.org/\"\nBUG_REPORT_URL=\"https://bugs.centos.org/\"\n\nCENTOS_MANTISBT_PROJECT=\"CentOS-7\"\nCENTOS_MANTISBT_PROJECT_VERSION=\"7\"\nREDHAT_SUPPORT_PRODUCT=\"centos\"\nREDHAT_SUPPORT_PRODUCT_VERSION=\"7\"\n\n".into(),
            "alpine" => "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\nHOME_URL=\"https://alpinelinux.org/\"\nBUG_REPORT_URL=\"https://gitlab.alpinelinux.org/alpine/aports/-/issues\"\n".into(),
            "fedora" => "NAME=\"Fedora Linux\"\nVERSION=\"39 (Server Edition)\"\nID=fedora\nVERSION_ID=39\nVERSION_CODENAME=\"\"\nPLATFORM_ID=\"platform:f39\"\nPRETTY_NAME=\"Fedora Linux 39 (Server Edition)\"\nANSI_COLOR=\"0;38;2;60;110;180\"\nLOGO=fedora-logo-icon\nCPE_NAME=\"cpe:/o:fedoraproject:fedora:39\"\nHOME_URL=\"https://fedoraproject.org/\"\nSUPPORT_URL=\"https://ask.fedoraproject.org/\"\nBUG_REPORT_URL=\"https://bugzilla.redhat.com/\"\nVARIANT=\"Server Edition\"\nVARIANT_ID=server\n".into(),
            "kali" => "PRETTY_NAME=\"Kali GNU/Linux Rolling\"\nNAME=\"Kali GNU/Linux\"\nVERSION_ID=\"2024.1\"\nVERSION=\"2024.1\"\nVERSION_CODENAME=kali-rolling\nID=kali\nID_LIKE=debian\nHOME_URL=\"https://www.kali.org/\"\nSUPPORT_URL=\"https://forums.kali.org/\"\nBUG_REPORT_URL=\"https://bugs.kali.org/\"\nANSI_COLOR=\"1;31\"\n".into(),
            "arch" => "NAME=\"Arch Linux\"\nPRETTY_NAME=\"Arch Linux\"\nID=arch\nBUILD_ID=rolling\nANSI_COLOR=\"38;2;23;147;209\"\nHOME_URL=\"https://archlinux.org/\"\nDOCUMENTATION_URL=\"https://wiki.archlinux.org/\"\nSUPPORT_URL=\"https://bbs.archlinux.org/\"\nBUG_REPORT_URL=\"https://gitlab.archlinux.org/groups/archlinux/-/issues\"\nPRIVACY_POLICY_URL=\"https://terms.archlinux.org/docs/privacy-policy/\"\nLOGO=archlinux-logo\n".into(),
            _ => format!("PRETTY_NAME=\"{}\"\nID={}\nVERSION_ID=\"{}\"\n", d.display, d.os_id, d.version_id),
        }
    }

    /// `/proc/version`.
    pub fn proc_version(&self) -> String {
        let builder = match self.distro.slug {
            "debian" => {
                "(debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40)"
            }
            "ubuntu22" => {
                "(buildd@lcy02-amd64-051) (gcc (Ubuntu 11.4.0-1ubuntu1~22.04) 11.4.0, GNU ld (GNU Binutils for Ubuntu) 2.38)"
            }
            "ubuntu20" => {
                "(buildd@lcy02-amd64-046) (gcc (Ubuntu 9.4.0-1ubuntu1~20.04.2) 9.4.0, GNU ld (GNU Binutils for Ubuntu) 2.34)"
            }
            "rocky9" => {
                "(mockbuild@iad1-prod-build001.bld.equ.rockylinux.org) (gcc (GCC) 11.4.1 20230605 (Red Hat 11.4.1-2), GNU ld version 2.35.2-42.el9)"
            }
            "centos7" => {
                "(mockbuild@kbuilder.bsys.centos.org) (gcc version 4.8.5 20150623 (Red Hat 4.8.5-44) (GCC) )"
            }
            "alpine" => {
                "(buildozer@build-3-19-x86_64) (gcc (Alpine 13.2.1_git20231014) 13.2.1 20231014, GNU ld (GNU Binutils) 2.41)"
            }
            "fedora" => {
                "(mockbuild@bkernel01.iad2.fedoraproject.org) (gcc (GCC) 13.2.1 20231205 (Red Hat 13.2.1-6), GNU ld version 2.40-14.fc39)"
            }
            "kali" => {
                "(devel@kali.org) (gcc-13 (Debian 13.2.0-9) 13.2.0, GNU ld (GNU Binutils for Debian) 2.41.50.20231227)"
            }
            _ => "(linux@archlinux) (gcc (GCC) 13.2.1 20230801, GNU ld (GNU Binutils) 2.42.0)",
        };
        format!(
            "Linux version {} {builder} {}\n",
            self.kernel.release, self.kernel.version
        )
    }

    /// `/proc/cpuinfo`.
    pub fn cpuinfo(&self) -> String {
        let c = self.cpu;
        let flags = if c.vendor == "GenuineIntel" {
            "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon rep_good nopl xtopology cpuid tsc_known_freq pni pclmulqdq vmx ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch cpuid_fault invpcid_single ssbd ibrs ibpb stibp tpr_shadow flexpriority ept vpid ept_ad fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid mpx avx512f avx512dq rdseed adx smap clflushopt clwb avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves arat pku ospke md_clear arch_capabilities"
        } else {
            "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm rep_good nopl cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy svm cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext perfctr_core ssbd ibrs ibpb stibp vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 clzero xsaveerptr wbnoinvd arat npt nrip_save umip rdpid arch_capabilities"
        };
        let bugs = if c.vendor == "GenuineIntel" {
            "spectre_v1 spectre_v2 spec_store_bypass swapgs taa itlb_multihit mmio_stale_data retbleed gds"
        } else {
            "sysret_ss_attrs spectre_v1 spectre_v2 spec_store_bypass retbleed smt_rsb"
        };
        let mut out = String::new();
        for i in 0..self.n_cpus {
            out.push_str(&format!(
                "processor\t: {i}\nvendor_id\t: {}\ncpu family\t: {}\nmodel\t\t: {}\nmodel name\t: {}\nstepping\t: {}\nmicrocode\t: 0x{:x}\ncpu MHz\t\t: {:.3}\ncache size\t: {} KB\nphysical id\t: {i}\nsiblings\t: 1\ncore id\t\t: 0\ncpu cores\t: 1\napicid\t\t: {i}\ninitial apicid\t: {i}\nfpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: 13\nwp\t\t: yes\nflags\t\t: {flags}\nbugs\t\t: {bugs}\nbogomips\t: {:.2}\nclflush size\t: 64\ncache_alignment\t: 64\naddress sizes\t: 40 bits physical, 48 bits virtual\npower management:\n\n",
                c.vendor,
                c.family,
                c.model,
                c.name,
                c.stepping,
                0x5000000 + (self.detail("microcode") % 0x3000) as u32,
                c.mhz,
                c.cache_kb,
                c.mhz * 2.0,
            ));
        }
        out
    }

    /// `/proc/meminfo` (the first lines).
    pub fn meminfo(&self) -> String {
        let free = self.mem_kib - self.used_kib - self.cache_kib;
        format!(
            "MemTotal:       {:>8} kB\nMemFree:        {:>8} kB\nMemAvailable:   {:>8} kB\nBuffers:        {:>8} kB\nCached:         {:>8} kB\nSwapCached:            0 kB\nSwapTotal:      {:>8} kB\nSwapFree:       {:>8} kB\n",
            self.mem_kib,
            free,
            free + self.cache_kib * 9 / 10,
            self.cache_kib / 12,
            self.cache_kib - self.cache_kib / 12,
            self.swap_kib,
            self.swap_kib
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use decnet_core::catalog;

    #[test]
    fn credentials_from_every_key() {
        let ssh = catalog::service("ssh").unwrap();
        let p = Persona::from_json(
            ssh,
            &serde_json::json!({"users": "root:toor,admin:admin123,bad user:x", "user": "deploy", "user_password": "d3pl0y"}),
        )
        .unwrap();
        assert_eq!(
            login_credentials(&p),
            [
                ("root".to_owned(), "toor".to_owned()),
                ("admin".to_owned(), "admin123".to_owned()),
                ("deploy".to_owned(), "d3pl0y".to_owned())
            ]
        );
        let h = Host::new(&p, None, 1_700_000_000);
        assert!(h.accepts("root", b"toor"));
        assert!(h.accepts("admin", b"admin123"));
        assert!(!h.accepts("admin", b"admin"));
        assert_eq!(h.account("admin").unwrap().uid, 1000);
        let none = Persona::from_json(ssh, &serde_json::json!({})).unwrap();
        assert_eq!(
            login_credentials(&none),
            [("root".to_owned(), "admin".to_owned())]
        );
    }
}
