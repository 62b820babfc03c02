//! Distro personas: image names, hostname styles and the facts the emulated shell shows.

use rand::Rng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::Error;

/// How hostnames of a distro look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostnameStyle {
    /// `SRV-WORD-nn`.
    Generic,
    /// `wordnn.localdomain`.
    Rhel,
    /// `word-nn`.
    Minimal,
    /// `word-word`.
    Rolling,
}

/// How the distro's default shell prompt looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptStyle {
    /// bash on Debian/Ubuntu/Kali: `user@host:~# `.
    Debian,
    /// bash on RHEL-likes and Arch: `[user@host ~]# `.
    Rhel,
    /// busybox ash on Alpine: `host:~# `.
    Ash,
}

/// One kernel build a distro ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Kernel {
    /// `uname -r`.
    pub release: &'static str,
    /// `uname -v`.
    pub version: &'static str,
}

/// One distro persona.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Distro {
    /// Slug (`debian`, `ubuntu22`, ...).
    pub slug: &'static str,
    /// Human name, as `PRETTY_NAME` in `/etc/os-release`.
    pub display: &'static str,
    /// `ID` in `/etc/os-release`.
    pub os_id: &'static str,
    /// `VERSION_ID` in `/etc/os-release`.
    pub version_id: &'static str,
    /// Image name the reference used for the base container (kept for compatibility of
    /// state files and compose exports).
    pub base_image: &'static str,
    /// Build base of the reference's service images.
    pub build_base: &'static str,
    /// Hostname style.
    pub hostname_style: HostnameStyle,
    /// Shell prompt style.
    pub prompt: PromptStyle,
    /// Kernels this distro ships; each decky picks one by its seed.
    pub kernels: &'static [Kernel],
    /// OpenSSH identification string after `SSH-2.0-`.
    pub ssh_version: &'static str,
    /// Login shell of root.
    pub root_shell: &'static str,
}

const DEBIAN_BASE: &str = "debian:bookworm-slim";

/// The nine distros, in the reference's registry order (which round-robin follows).
pub static DISTROS: &[Distro] = &[
    Distro {
        slug: "debian",
        display: "Debian GNU/Linux 12 (bookworm)",
        os_id: "debian",
        version_id: "12",
        base_image: "debian:bookworm-slim",
        build_base: DEBIAN_BASE,
        hostname_style: HostnameStyle::Generic,
        prompt: PromptStyle::Debian,
        kernels: &[
            Kernel {
                release: "6.1.0-18-amd64",
                version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)",
            },
            Kernel {
                release: "6.1.0-21-amd64",
                version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.90-1 (2024-05-03)",
            },
            Kernel {
                release: "6.1.0-25-amd64",
                version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.106-3 (2024-08-26)",
            },
            Kernel {
                release: "6.1.0-28-amd64",
                version: "#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)",
            },
        ],
        ssh_version: "OpenSSH_9.2p1 Debian-2+deb12u3",
        root_shell: "/bin/bash",
    },
    Distro {
        slug: "ubuntu22",
        display: "Ubuntu 22.04.4 LTS",
        os_id: "ubuntu",
        version_id: "22.04",
        base_image: "ubuntu:22.04",
        build_base: "ubuntu:22.04",
        hostname_style: HostnameStyle::Generic,
        prompt: PromptStyle::Debian,
        kernels: &[
            Kernel {
                release: "5.15.0-97-generic",
                version: "#107-Ubuntu SMP Wed Feb 7 13:26:48 UTC 2024",
            },
            Kernel {
                release: "5.15.0-105-generic",
                version: "#115-Ubuntu SMP Mon Apr 15 09:52:04 UTC 2024",
            },
            Kernel {
                release: "5.15.0-113-generic",
                version: "#123-Ubuntu SMP Mon Jun 10 08:16:17 UTC 2024",
            },
        ],
        ssh_version: "OpenSSH_8.9p1 Ubuntu-3ubuntu0.6",
        root_shell: "/bin/bash",
    },
    Distro {
        slug: "ubuntu20",
        display: "Ubuntu 20.04.6 LTS",
        os_id: "ubuntu",
        version_id: "20.04",
        base_image: "ubuntu:20.04",
        build_base: "ubuntu:20.04",
        hostname_style: HostnameStyle::Generic,
        prompt: PromptStyle::Debian,
        kernels: &[
            Kernel {
                release: "5.4.0-172-generic",
                version: "#190-Ubuntu SMP Fri Feb 2 23:24:22 UTC 2024",
            },
            Kernel {
                release: "5.4.0-182-generic",
                version: "#202-Ubuntu SMP Fri Apr 26 12:29:36 UTC 2024",
            },
        ],
        ssh_version: "OpenSSH_8.2p1 Ubuntu-4ubuntu0.11",
        root_shell: "/bin/bash",
    },
    Distro {
        slug: "rocky9",
        display: "Rocky Linux 9.3 (Blue Onyx)",
        os_id: "rocky",
        version_id: "9.3",
        base_image: "rockylinux:9-minimal",
        build_base: DEBIAN_BASE,
        hostname_style: HostnameStyle::Rhel,
        prompt: PromptStyle::Rhel,
        kernels: &[
            Kernel {
                release: "5.14.0-362.18.1.el9_3.x86_64",
                version: "#1 SMP PREEMPT_DYNAMIC Mon Jan 29 07:05:48 EST 2024",
            },
            Kernel {
                release: "5.14.0-427.13.1.el9_4.x86_64",
                version: "#1 SMP PREEMPT_DYNAMIC Wed May 1 19:11:28 UTC 2024",
            },
        ],
        ssh_version: "OpenSSH_8.7",
        root_shell: "/bin/bash",
    },
    Distro {
        slug: "centos7",
        display: "CentOS Linux 7 (Core)",
        os_id: "centos",
        version_id: "7",
        base_image: "centos:7",
        build_base: DEBIAN_BASE,
        hostname_style: HostnameStyle::Rhel,
        prompt: PromptStyle::Rhel,
        kernels: &[
            Kernel {
                release: "3.10.0-1160.108.1.el7.x86_64",
                version: "#1 SMP Thu Jan 25 16:17:31 UTC 2024",
            },
            Kernel {
                release: "3.10.0-1160.119.1.el7.x86_64",
                version: "#1 SMP Tue Jun 4 14:43:51 UTC 2024",
            },
        ],
        ssh_version: "OpenSSH_7.4",
        root_shell: "/bin/bash",
    },
    Distro {
        slug: "alpine",
        display: "Alpine Linux v3.19",
        os_id: "alpine",
        version_id: "3.19.1",
        base_image: "alpine:3.19",
        build_base: DEBIAN_BASE,
        hostname_style: HostnameStyle::Minimal,
        prompt: PromptStyle::Ash,
        kernels: &[Kernel {
            release: "6.6.16-0-lts",
            version: "#1-Alpine SMP PREEMPT_DYNAMIC Fri, 16 Feb 2024 07:23:47 +0000",
        }],
        ssh_version: "OpenSSH_9.6",
        root_shell: "/bin/ash",
    },
    Distro {
        slug: "fedora",
        display: "Fedora Linux 39 (Server Edition)",
        os_id: "fedora",
        version_id: "39",
        base_image: "fedora:39",
        build_base: DEBIAN_BASE,
        hostname_style: HostnameStyle::Rhel,
        prompt: PromptStyle::Rhel,
        kernels: &[Kernel {
            release: "6.7.5-200.fc39.x86_64",
            version: "#1 SMP PREEMPT_DYNAMIC Sat Feb 17 17:20:08 UTC 2024",
        }],
        ssh_version: "OpenSSH_9.3",
        root_shell: "/bin/bash",
    },
    Distro {
        slug: "kali",
        display: "Kali GNU/Linux Rolling",
        os_id: "kali",
        version_id: "2024.1",
        base_image: "kalilinux/kali-rolling",
        build_base: "kalilinux/kali-rolling",
        hostname_style: HostnameStyle::Rolling,
        prompt: PromptStyle::Debian,
        kernels: &[Kernel {
            release: "6.6.9-amd64",
            version: "#1 SMP PREEMPT_DYNAMIC Kali 6.6.9-1kali1 (2024-01-08)",
        }],
        ssh_version: "OpenSSH_9.6p1 Debian-4",
        root_shell: "/usr/bin/zsh",
    },
    Distro {
        slug: "arch",
        display: "Arch Linux",
        os_id: "arch",
        version_id: "rolling",
        base_image: "archlinux:latest",
        build_base: DEBIAN_BASE,
        hostname_style: HostnameStyle::Rolling,
        prompt: PromptStyle::Rhel,
        kernels: &[Kernel {
            release: "6.7.6-arch1-1",
            version: "#1 SMP PREEMPT_DYNAMIC Fri, 23 Feb 2024 16:31:48 +0000",
        }],
        ssh_version: "OpenSSH_9.6",
        root_shell: "/bin/bash",
    },
];

/// Looks up a distro by slug.
///
/// # Errors
/// [`Error::Unknown`] listing every distro.
pub fn distro(slug: &str) -> Result<&'static Distro, Error> {
    DISTROS
        .iter()
        .find(|d| d.slug == slug)
        .ok_or_else(|| Error::Unknown {
            what: "distro",
            name: slug.to_owned(),
            known: DISTROS
                .iter()
                .map(|d| d.slug)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Words hostnames are made of.
pub static HOSTNAME_WORDS: [&str; 25] = [
    "atlas", "aurora", "beacon", "birch", "cedar", "comet", "delta", "ember", "falcon", "granite",
    "harbor", "helix", "juniper", "kestrel", "lumen", "maple", "nimbus", "onyx", "orion", "quartz",
    "raven", "sierra", "summit", "tundra", "vertex",
];

impl HostnameStyle {
    /// Draws a hostname in this style.
    pub fn generate(self, rng: &mut impl Rng) -> String {
        let word =
            |rng: &mut dyn rand::RngCore| *HOSTNAME_WORDS.choose(rng).unwrap_or(&HOSTNAME_WORDS[0]);
        let number: u8 = rng.gen_range(10..=99);
        match self {
            HostnameStyle::Generic => format!("SRV-{}-{number}", word(rng).to_uppercase()),
            HostnameStyle::Rhel => format!("{}{number}.localdomain", word(rng)),
            HostnameStyle::Minimal => format!("{}-{number}", word(rng)),
            HostnameStyle::Rolling => {
                let first = word(rng);
                let mut second = word(rng);
                while second == first {
                    second = word(rng);
                }
                format!("{first}-{second}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn nine_distros_in_reference_order() {
        let slugs: Vec<_> = DISTROS.iter().map(|d| d.slug).collect();
        assert_eq!(
            slugs,
            [
                "debian", "ubuntu22", "ubuntu20", "rocky9", "centos7", "alpine", "fedora", "kali",
                "arch"
            ]
        );
        assert!(DISTROS.iter().all(|d| !d.kernels.is_empty()));
        assert!(distro("gentoo").unwrap_err().to_string().contains("debian"));
    }

    #[test]
    fn hostname_styles() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let g = HostnameStyle::Generic.generate(&mut rng);
        assert!(g.starts_with("SRV-") && g[4..].contains('-'), "{g}");
        let r = HostnameStyle::Rhel.generate(&mut rng);
        assert!(r.ends_with(".localdomain"), "{r}");
        let m = HostnameStyle::Minimal.generate(&mut rng);
        let (w, n) = m.rsplit_once('-').unwrap();
        assert!(
            HOSTNAME_WORDS.contains(&w) && n.parse::<u8>().unwrap() >= 10,
            "{m}"
        );
        let roll = HostnameStyle::Rolling.generate(&mut rng);
        let (a, b) = roll.split_once('-').unwrap();
        assert!(a != b && HOSTNAME_WORDS.contains(&a) && HOSTNAME_WORDS.contains(&b));
    }
}
