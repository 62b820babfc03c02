//! The read-only fake filesystem: a few hundred entries per distro family with seeded
//! sizes and dates, and the contents of the files attackers read first.

use std::collections::BTreeMap;

use super::host::{Family, Host};

/// What a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link to the target (as stored in the link).
    Link(String),
    /// A character device.
    Char,
}

/// One filesystem entry.
#[derive(Debug, Clone)]
pub struct Node {
    /// Type.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Owner name.
    pub owner: String,
    /// Group name.
    pub group: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (unix).
    pub mtime: i64,
    /// Fixed contents, when the file has any worth showing.
    pub content: Option<String>,
    /// Contents computed at read time (`/proc`).
    pub dynamic: bool,
}

/// The filesystem: absolute normalized path → entry.
#[derive(Debug, Clone, Default)]
pub struct Fs {
    nodes: BTreeMap<String, Node>,
}

/// Normalizes `path` against `cwd` (and `home` for `~`), resolving `.` and `..`
/// lexically, as bash's `cd` does by default.
pub fn normalize(cwd: &str, home: &str, path: &str) -> String {
    let joined = if path == "~" {
        home.to_owned()
    } else if let Some(rest) = path.strip_prefix("~/") {
        format!("{home}/{rest}")
    } else if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("{cwd}/{path}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Parent directory of a normalized path.
pub fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// Last component of a normalized path.
pub fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

const COMMON_DIRS: &str = "
d 755 /bin_real
d 755 /boot
d 755 /dev
d 755 /dev/pts
d 1777 /dev/shm
d 755 /etc
d 755 /etc/cron.d
d 755 /etc/cron.daily
d 755 /etc/default
d 755 /etc/init.d
d 755 /etc/logrotate.d
d 755 /etc/pam.d
d 755 /etc/security
d 755 /etc/ssh
d 755 /etc/ssl
d 750 /etc/sudoers.d
d 755 /etc/systemd
d 755 /home
d 755 /media
d 755 /mnt
d 755 /opt
d 555 /proc
d 700 /root
d 700 /root/.ssh
d 755 /run
d 755 /srv
d 555 /sys
d 1777 /tmp
d 755 /usr
d 755 /usr/bin
d 755 /usr/include
d 755 /usr/lib
d 755 /usr/local
d 755 /usr/local/bin
d 755 /usr/local/sbin
d 755 /usr/sbin
d 755 /usr/share
d 755 /usr/src
d 755 /var
d 755 /var/backups
d 755 /var/cache
d 755 /var/lib
d 755 /var/local
d 755 /var/log
d 755 /var/mail
d 755 /var/opt
d 755 /var/spool
d 1777 /var/tmp
d 755 /var/www
f 644 /etc/crontab 1042
f 644 /etc/fstab 664
f 644 /etc/host.conf 9
f 644 /etc/hostname 0
f 644 /etc/hosts 0
f 644 /etc/issue 0
f 644 /etc/issue.net 0
f 644 /etc/ld.so.cache 24859
f 644 /etc/ld.so.conf 34
f 644 /etc/login.defs 12569
f 444 /etc/machine-id 33
f 644 /etc/motd 0
f 644 /etc/nsswitch.conf 494
f 644 /etc/passwd 0
f 644 /etc/group 0
f 640 /etc/shadow 0
f 644 /etc/profile 769
f 644 /etc/resolv.conf 0
f 644 /etc/shells 0
f 440 /etc/sudoers 1714
f 644 /etc/sysctl.conf 2355
f 644 /etc/ssh/sshd_config 3223
f 644 /etc/ssh/ssh_config 1650
f 600 /etc/ssh/ssh_host_ed25519_key 399
f 644 /etc/ssh/ssh_host_ed25519_key.pub 91
f 600 /etc/ssh/ssh_host_rsa_key 2590
f 644 /etc/ssh/ssh_host_rsa_key.pub 563
f 600 /etc/ssh/ssh_host_ecdsa_key 505
f 644 /etc/ssh/ssh_host_ecdsa_key.pub 171
f 600 /root/.ssh/authorized_keys 0
c 666 /dev/null
c 666 /dev/zero
c 666 /dev/random
c 666 /dev/urandom
c 666 /dev/tty
c 620 /dev/console
d 755 /var/log/journal
f 664 /var/log/wtmp 46080
f 660 /var/log/btmp 1152384
f 664 /var/log/lastlog 292292
";

const DEBIAN_LIKE: &str = "
l 777 /bin usr/bin
l 777 /sbin usr/sbin
l 777 /lib usr/lib
l 777 /lib64 usr/lib64
d 755 /usr/lib64
d 755 /etc/apt
d 755 /etc/apt/sources.list.d
f 644 /etc/apt/sources.list 0
d 755 /etc/network
f 644 /etc/network/interfaces 0
f 644 /etc/debian_version 5
f 644 /etc/bash.bashrc 1994
f 644 /etc/adduser.conf 3040
f 644 /etc/timezone 8
l 777 /etc/localtime /usr/share/zoneinfo/Etc/UTC
l 777 /etc/os-release ../usr/lib/os-release
f 644 /usr/lib/os-release 0
f 644 /root/.bashrc 571
f 644 /root/.profile 161
d 755 /var/lib/dpkg
d 755 /var/cache/apt
d 755 /var/log/apt
f 644 /var/log/dpkg.log 182310
f 644 /var/log/alternatives.log 4210
f 640 /var/log/auth.log 0
f 640 /var/log/syslog 0
f 644 /var/log/faillog 32032
d 755 /boot/grub
";

const RHEL_LIKE: &str = "
l 777 /bin usr/bin
l 777 /sbin usr/sbin
l 777 /lib usr/lib
l 777 /lib64 usr/lib64
d 755 /usr/lib64
d 755 /usr/libexec
d 755 /etc/yum.repos.d
d 755 /etc/dnf
d 755 /etc/sysconfig
d 755 /etc/selinux
f 644 /etc/selinux/config 0
f 644 /etc/redhat-release 0
f 644 /etc/system-release 0
f 644 /etc/bashrc 2658
f 644 /etc/os-release 0
l 777 /etc/localtime ../usr/share/zoneinfo/UTC
f 600 /root/anaconda-ks.cfg 1158
f 644 /root/.bash_logout 18
f 644 /root/.bash_profile 141
f 644 /root/.bashrc 429
f 644 /root/.cshrc 100
f 644 /root/.tcshrc 129
d 755 /var/log/audit
f 600 /var/log/messages 0
f 600 /var/log/secure 0
f 600 /var/log/cron 0
f 600 /var/log/maillog 0
f 644 /var/log/dnf.log 86214
f 600 /var/log/boot.log 0
d 700 /boot/grub2
d 755 /boot/loader
";

const ALPINE: &str = "
d 755 /bin
d 755 /sbin
d 755 /lib
d 755 /etc/apk
f 644 /etc/apk/repositories 0
f 644 /etc/apk/world 0
f 644 /etc/alpine-release 0
f 644 /etc/os-release 0
f 644 /etc/inittab 570
d 755 /etc/conf.d
d 755 /etc/runlevels
d 755 /etc/network
f 644 /etc/network/interfaces 0
f 644 /etc/localtime 127
f 600 /root/.ash_history 0
f 644 /var/log/messages 0
d 755 /var/lib/apk
";

const ARCH: &str = "
l 777 /bin usr/bin
l 777 /sbin usr/bin
l 777 /lib usr/lib
l 777 /lib64 usr/lib
l 777 /usr/sbin bin
f 644 /etc/arch-release 0
f 644 /etc/pacman.conf 3101
d 755 /etc/pacman.d
f 644 /etc/bash.bashrc 619
l 777 /etc/os-release ../usr/lib/os-release
f 644 /usr/lib/os-release 0
l 777 /etc/localtime /usr/share/zoneinfo/UTC
f 644 /root/.bash_profile 57
f 644 /root/.bashrc 172
f 644 /var/log/pacman.log 211452
";

const BINARIES: &[&str] = &[
    "awk", "base64", "bash", "cat", "chmod", "chown", "cp", "curl", "cut", "date", "dd", "df",
    "du", "echo", "env", "find", "free", "grep", "gzip", "head", "hostname", "id", "ip", "kill",
    "less", "ln", "ls", "mkdir", "more", "mount", "mv", "nano", "nproc", "passwd", "perl", "ping",
    "ps", "pwd", "python3", "rm", "sed", "sh", "sleep", "sort", "ss", "sudo", "tail", "tar", "tee",
    "top", "touch", "uname", "uniq", "uptime", "vi", "w", "wc", "wget", "which", "whoami", "xargs",
];

impl Fs {
    /// Builds the filesystem of `host`.
    pub fn build(host: &Host) -> Fs {
        let mut fs = Fs::default();
        let family_table = match host.family {
            Family::Debian | Family::Ubuntu => DEBIAN_LIKE,
            Family::Rhel | Family::Centos7 => RHEL_LIKE,
            Family::Alpine => ALPINE,
            Family::Arch => ARCH,
        };
        let installed = host.installed_unix;
        let boot = host.boot_unix();
        for table in [COMMON_DIRS, family_table] {
            for line in table.lines() {
                let parts: Vec<&str> = line.split_whitespace().collect();
                let [kind, mode, path, rest @ ..] = parts.as_slice() else {
                    continue;
                };
                // `/bin_real` marks "a real /bin on families without usrmerge".
                if *path == "/bin_real" {
                    continue;
                }
                let mode = u32::from_str_radix(mode, 8).unwrap_or(0o644);
                let spread = (host.detail(path) % (20 * 86_400)) as i64;
                let mtime = if path.starts_with("/var/log")
                    || path.starts_with("/run")
                    || path.starts_with("/dev")
                    || path.starts_with("/tmp")
                {
                    boot + (host.detail(path) % host.uptime_at_start.max(1)) as i64
                } else {
                    installed + spread
                };
                let (kind, size) = match *kind {
                    "d" => (Kind::Dir, 4096),
                    "l" => {
                        let target = rest.first().copied().unwrap_or("/").to_owned();
                        let size = target.len() as u64;
                        (Kind::Link(target), size)
                    }
                    "c" => (Kind::Char, 0),
                    _ => {
                        let size = rest
                            .first()
                            .and_then(|s| s.parse::<u64>().ok())
                            .unwrap_or(0);
                        let size = if size == 0 {
                            100 + host.detail(path) % 4000
                        } else {
                            size
                        };
                        (Kind::File, size)
                    }
                };
                let group = if *path == "/etc/shadow"
                    && matches!(host.family, Family::Debian | Family::Ubuntu)
                {
                    "shadow"
                } else {
                    "root"
                };
                fs.nodes.insert(
                    (*path).to_owned(),
                    Node {
                        kind,
                        mode,
                        owner: "root".into(),
                        group: group.into(),
                        size,
                        mtime,
                        content: None,
                        dynamic: false,
                    },
                );
            }
        }
        fs.nodes.insert(
            "/".into(),
            Node {
                kind: Kind::Dir,
                mode: 0o755,
                owner: "root".into(),
                group: "root".into(),
                size: 4096,
                mtime: installed,
                content: None,
                dynamic: false,
            },
        );
        let bin_dir = if host.family == Family::Alpine {
            "/bin"
        } else {
            "/usr/bin"
        };
        for b in BINARIES {
            // A minimal Alpine has busybox applets but none of these packages.
            if host.family == Family::Alpine
                && matches!(*b, "bash" | "curl" | "python3" | "perl" | "nano" | "sudo")
            {
                continue;
            }
            let path = format!("{bin_dir}/{b}");
            let size = 20_000 + host.detail(&path) % 900_000;
            fs.add_file(
                &path,
                0o755,
                "root",
                size,
                installed + (host.detail(b) % 86_400) as i64,
                None,
            );
        }
        for kernel_file in ["vmlinuz", "initrd.img", "config", "System.map"] {
            if matches!(host.family, Family::Debian | Family::Ubuntu) {
                let path = format!("/boot/{kernel_file}-{}", host.kernel.release);
                let size = 200_000 + host.detail(&path) % 40_000_000;
                fs.add_file(&path, 0o644, "root", size, installed, None);
            }
        }
        for account in &host.accounts {
            if account.uid >= 1000 && account.uid < 65534 {
                let home = account.home.clone();
                fs.nodes.insert(
                    home.clone(),
                    Node {
                        kind: Kind::Dir,
                        mode: 0o750,
                        owner: account.name.clone(),
                        group: account.name.clone(),
                        size: 4096,
                        mtime: installed + (host.detail(&home) % (40 * 86_400)) as i64,
                        content: None,
                        dynamic: false,
                    },
                );
                for (name, size) in [
                    (".bashrc", 3771u64),
                    (".profile", 807),
                    (".bash_logout", 220),
                ] {
                    let path = format!("{home}/{name}");
                    fs.add_file(&path, 0o644, &account.name, size, installed, None);
                }
            }
        }
        // One seeded application directory under /opt.
        let apps = ["backup", "scripts", "monitoring", "app", "deploy"];
        let app = apps[(host.detail("opt-app") % apps.len() as u64) as usize];
        let app_dir = format!("/opt/{app}");
        fs.nodes.insert(
            app_dir.clone(),
            Node {
                kind: Kind::Dir,
                mode: 0o755,
                owner: "root".into(),
                group: "root".into(),
                size: 4096,
                mtime: installed + (host.detail(&app_dir) % (60 * 86_400)) as i64,
                content: None,
                dynamic: false,
            },
        );
        for name in ["run.sh", "config.ini", "README"] {
            let path = format!("{app_dir}/{name}");
            let size = 200 + host.detail(&path) % 6000;
            fs.add_file(
                &path,
                if name.ends_with(".sh") { 0o755 } else { 0o644 },
                "root",
                size,
                installed + (host.detail(&path) % (60 * 86_400)) as i64,
                None,
            );
        }
        for name in [
            "cpuinfo", "version", "meminfo", "uptime", "loadavg", "mounts", "cmdline",
        ] {
            let path = format!("/proc/{name}");
            fs.nodes.insert(
                path,
                Node {
                    kind: Kind::File,
                    mode: 0o444,
                    owner: "root".into(),
                    group: "root".into(),
                    size: 0,
                    mtime: boot,
                    content: None,
                    dynamic: true,
                },
            );
        }
        fs.fill_contents(host);
        fs
    }

    fn add_file(
        &mut self,
        path: &str,
        mode: u32,
        owner: &str,
        size: u64,
        mtime: i64,
        content: Option<String>,
    ) {
        self.nodes.insert(
            path.to_owned(),
            Node {
                kind: Kind::File,
                mode,
                owner: owner.to_owned(),
                group: owner.to_owned(),
                size,
                mtime,
                content,
                dynamic: false,
            },
        );
    }

    fn set_content(&mut self, path: &str, content: String) {
        if let Some(node) = self.nodes.get_mut(path) {
            node.size = content.len() as u64;
            node.content = Some(content);
        }
    }

    fn fill_contents(&mut self, host: &Host) {
        let passwd: String = host
            .accounts
            .iter()
            .map(|a| {
                format!(
                    "{}:x:{}:{}:{}:{}:{}\n",
                    a.name, a.uid, a.gid, a.gecos, a.home, a.shell
                )
            })
            .collect();
        self.set_content("/etc/passwd", passwd);
        let mut group = String::from("root:x:0:\n");
        let (admin_gid, admin_name) = host.family.admin_group();
        let admins: Vec<&str> = host
            .accounts
            .iter()
            .filter(|a| a.uid >= 1000 && a.uid < 65534)
            .map(|a| a.name.as_str())
            .collect();
        group.push_str(&format!(
            "{admin_name}:x:{admin_gid}:{}\n",
            admins.join(",")
        ));
        for a in host
            .accounts
            .iter()
            .filter(|a| a.uid >= 1000 && a.uid < 65534)
        {
            group.push_str(&format!("{}:x:{}:\n", a.name, a.gid));
        }
        self.set_content("/etc/group", group);
        let shadow: String = host
            .accounts
            .iter()
            .map(|a| {
                let hash = if a.password.is_some() || a.uid == 0 {
                    let salt = &hex::encode(host.detail(&format!("salt:{}", a.name)).to_le_bytes());
                    let body = hex::encode(host.detail(&format!("hash:{}", a.name)).to_be_bytes());
                    match host.family {
                        Family::Debian | Family::Ubuntu | Family::Arch => {
                            format!("$y$j9T${salt}${body}{body}")
                        }
                        _ => format!("$6${salt}${body}{body}{body}"),
                    }
                } else {
                    "*".to_owned()
                };
                format!(
                    "{}:{hash}:{}:0:99999:7:::\n",
                    a.name,
                    19_000 + host.detail(&a.name) % 800
                )
            })
            .collect();
        self.set_content("/etc/shadow", shadow);
        self.set_content("/etc/hostname", format!("{}\n", host.hostname));
        self.set_content(
            "/etc/hosts",
            format!("127.0.0.1\tlocalhost\n127.0.1.1\t{}\n\n# The following lines are desirable for IPv6 capable hosts\n::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n", host.hostname),
        );
        let gw = {
            let o = host.ip.octets();
            format!("{}.{}.{}.1", o[0], o[1], o[2])
        };
        self.set_content("/etc/resolv.conf", format!("nameserver {gw}\n"));
        let os_release = host.os_release();
        for path in ["/etc/os-release", "/usr/lib/os-release"] {
            if matches!(self.nodes.get(path).map(|n| &n.kind), Some(Kind::File)) {
                self.set_content(path, os_release.clone());
            }
        }
        let issue = match host.family {
            Family::Debian => "Debian GNU/Linux 12 \\n \\l\n\n".to_owned(),
            Family::Ubuntu => format!("{} \\n \\l\n\n", host.distro.display),
            Family::Rhel | Family::Centos7 => "\\S\nKernel \\r on an \\m\n\n".to_owned(),
            Family::Alpine => {
                "Welcome to Alpine Linux 3.19\nKernel \\r on an \\m (\\l)\n\n".to_owned()
            }
            Family::Arch => "Arch Linux \\r (\\l)\n\n".to_owned(),
        };
        self.set_content("/etc/issue", issue);
        let shells = match host.family {
            Family::Alpine => "# valid login shells\n/bin/sh\n/bin/ash\n".to_owned(),
            Family::Rhel | Family::Centos7 => "/bin/sh\n/bin/bash\n/usr/bin/sh\n/usr/bin/bash\n".to_owned(),
            _ => "# /etc/shells: valid login shells\n/bin/sh\n/usr/bin/sh\n/bin/bash\n/usr/bin/bash\n/bin/rbash\n/usr/bin/rbash\n/bin/dash\n/usr/bin/dash\n".to_owned(),
        };
        self.set_content("/etc/shells", shells);
        self.set_content("/etc/machine-id", format!("{}\n", host.machine_id));
        match host.family {
            Family::Rhel | Family::Centos7 => {
                let release = match host.distro.slug {
                    "centos7" => "CentOS Linux release 7.9.2009 (Core)\n",
                    "fedora" => "Fedora release 39 (Thirty Nine)\n",
                    _ => "Rocky Linux release 9.3 (Blue Onyx)\n",
                };
                self.set_content("/etc/redhat-release", release.to_owned());
                self.set_content("/etc/system-release", release.to_owned());
                self.set_content(
                    "/etc/selinux/config",
                    "SELINUX=enforcing\nSELINUXTYPE=targeted\n".to_owned(),
                );
            }
            Family::Alpine => {
                self.set_content("/etc/alpine-release", "3.19.1\n".to_owned());
                self.set_content(
                    "/etc/apk/repositories",
                    "https://dl-cdn.alpinelinux.org/alpine/v3.19/main\nhttps://dl-cdn.alpinelinux.org/alpine/v3.19/community\n".to_owned(),
                );
                self.set_content(
                    "/etc/apk/world",
                    "alpine-base\nchrony\nopenssh\n".to_owned(),
                );
            }
            Family::Debian => {
                self.set_content("/etc/debian_version", "12.5\n".to_owned());
                self.set_content(
                    "/etc/apt/sources.list",
                    "deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian-security bookworm-security main\ndeb http://deb.debian.org/debian bookworm-updates main\n".to_owned(),
                );
            }
            Family::Ubuntu => {
                self.set_content("/etc/debian_version", "bookworm/sid\n".to_owned());
            }
            Family::Arch => self.set_content("/etc/arch-release", String::new()),
        }
        let o = host.ip.octets();
        self.set_content(
            "/etc/network/interfaces",
            format!("auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet static\n\taddress {}/{}\n\tgateway {}.{}.{}.1\n", host.ip, host.prefix, o[0], o[1], o[2]),
        );
    }

    /// The entry at a normalized path, following no links.
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Resolves symbolic links (at most 8 hops) to the final path and entry.
    pub fn resolve(&self, path: &str) -> Option<(String, &Node)> {
        let mut current = path.to_owned();
        for _ in 0..8 {
            // Resolve links in the leading components too (`/bin/ls` → `/usr/bin/ls`).
            let mut resolved = String::new();
            let mut changed = false;
            for part in current.trim_start_matches('/').split('/') {
                if part.is_empty() {
                    continue;
                }
                let candidate = format!("{resolved}/{part}");
                match self.nodes.get(&candidate).map(|n| &n.kind) {
                    Some(Kind::Link(target)) => {
                        resolved = if target.starts_with('/') {
                            normalize("/", "/", target)
                        } else {
                            normalize(parent(&candidate), "/", target)
                        };
                        changed = true;
                    }
                    _ => resolved = candidate,
                }
            }
            if resolved.is_empty() {
                resolved.push('/');
            }
            if !changed {
                return self.nodes.get(&resolved).map(|n| (resolved.clone(), n));
            }
            current = resolved;
        }
        None
    }

    /// Names directly inside directory `dir` (normalized, resolved).
    pub fn children(&self, dir: &str) -> Vec<(&str, &Node)> {
        let prefix = if dir == "/" {
            "/".to_owned()
        } else {
            format!("{dir}/")
        };
        self.nodes
            .range(prefix.clone()..)
            .take_while(|(p, _)| p.starts_with(&prefix))
            .filter(|(p, _)| p.len() > prefix.len() && !p[prefix.len()..].contains('/'))
            .map(|(p, n)| (&p[prefix.len()..], n))
            .collect()
    }

    /// Number of subdirectories of `dir` (for the link count of `ls -l`).
    pub fn subdirs(&self, dir: &str) -> usize {
        self.children(dir)
            .iter()
            .filter(|(_, n)| n.kind == Kind::Dir)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_paths() {
        assert_eq!(normalize("/root", "/root", ".."), "/");
        assert_eq!(normalize("/", "/root", "../../etc/./ssh/"), "/etc/ssh");
        assert_eq!(normalize("/tmp", "/home/a", "~/x"), "/home/a/x");
        assert_eq!(normalize("/tmp", "/home/a", "~"), "/home/a");
        assert_eq!(parent("/etc/ssh"), "/etc");
        assert_eq!(parent("/etc"), "/");
        assert_eq!(base("/etc/ssh"), "ssh");
    }
}
