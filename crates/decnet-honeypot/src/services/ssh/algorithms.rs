//! Which algorithms the ssh emulator offers, in which order: OpenSSH's server defaults
//! for the persona's version, minus what russh cannot complete.
//!
//! Differences from the real daemon, all forced by russh:
//! - `sntrup761x25519-sha512@openssh.com` (and `sntrup761x25519-sha512`) is not offered:
//!   russh has no Streamlined NTRU Prime; OpenSSH ≥ 9.0 puts it first, so our list starts
//!   with `curve25519-sha256` instead.
//! - the `umac-64*`/`umac-128*` MACs are not offered (russh has no UMAC); the remaining
//!   MACs keep OpenSSH's relative order.
//! - `ssh-rsa` (SHA-1 signatures) is offered only for versions before 8.8, as OpenSSH did.
//!
//! Everything else (kex order, host-key order rsa/ecdsa/ed25519 as `sshd` derives it from
//! its default `HostKey` files, cipher order, `none,zlib@openssh.com`) matches upstream,
//! or the RHEL crypto-policies `DEFAULT` profile for RHEL-family personas.

use std::borrow::Cow;

use russh::keys::{Algorithm, EcdsaCurve, HashAlg};
use russh::{Preferred, cipher, compression, kex, mac};

/// An OpenSSH version parsed from an identification string (`OpenSSH_9.2p1 Debian-...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version(pub u32, pub u32);

/// Parses the version of an OpenSSH identification; other servers count as 9.2.
pub fn parse_version(ident: &str) -> Version {
    let Some(rest) = ident.strip_prefix("OpenSSH_") else {
        return Version(9, 2);
    };
    let digits: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = digits.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    Version(parts.next().unwrap_or(9), parts.next().unwrap_or(0))
}

/// Whether the server advertises `kex-strict-s-v00@openssh.com` (OpenSSH ≥ 9.6 and the
/// distro backports of the Terrapin fix, which every persona version except CentOS 7's
/// 7.4 carries).
fn strict_kex(v: Version) -> bool {
    v >= Version(8, 0)
}

/// The algorithm preferences for `ident` (the text after `SSH-2.0-`); `rhel_policy`
/// selects the RHEL crypto-policies `DEFAULT` lists.
pub fn preferred(ident: &str, rhel_policy: bool) -> Preferred {
    let v = parse_version(ident);
    let mut kexes: Vec<kex::Name> = Vec::new();
    if rhel_policy && v >= Version(8, 0) {
        kexes.extend([
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::ECDH_SHA2_NISTP256,
            kex::ECDH_SHA2_NISTP384,
            kex::ECDH_SHA2_NISTP521,
            kex::DH_GEX_SHA256,
            kex::DH_G14_SHA256,
            kex::DH_G16_SHA512,
            kex::DH_G18_SHA512,
        ]);
    } else {
        if v >= Version(9, 9) {
            kexes.push(kex::MLKEM768X25519_SHA256);
        }
        kexes.extend([
            kex::CURVE25519,
            kex::CURVE25519_PRE_RFC_8731,
            kex::ECDH_SHA2_NISTP256,
            kex::ECDH_SHA2_NISTP384,
            kex::ECDH_SHA2_NISTP521,
            kex::DH_GEX_SHA256,
            kex::DH_G16_SHA512,
            kex::DH_G18_SHA512,
        ]);
        if v < Version(8, 2) {
            kexes.push(kex::DH_GEX_SHA1);
        }
        kexes.push(kex::DH_G14_SHA256);
        if v < Version(8, 2) {
            kexes.push(kex::DH_G14_SHA1);
        }
    }
    if v >= Version(9, 6) {
        kexes.push(kex::EXTENSION_SUPPORT_AS_SERVER);
    }
    if strict_kex(v) {
        kexes.push(kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER);
    }

    let rsa512 = Algorithm::Rsa {
        hash: Some(HashAlg::Sha512),
    };
    let rsa256 = Algorithm::Rsa {
        hash: Some(HashAlg::Sha256),
    };
    let ecdsa = Algorithm::Ecdsa {
        curve: EcdsaCurve::NistP256,
    };
    let mut keys: Vec<Algorithm> = Vec::new();
    if rhel_policy && v >= Version(8, 0) {
        keys.extend([rsa256, rsa512, ecdsa, Algorithm::Ed25519]);
    } else {
        if v < Version(8, 8) {
            keys.push(Algorithm::Rsa { hash: None });
        }
        keys.extend([rsa512, rsa256, ecdsa, Algorithm::Ed25519]);
    }

    let ciphers: Vec<cipher::Name> = if rhel_policy && v >= Version(8, 0) {
        vec![
            cipher::AES_256_GCM,
            cipher::CHACHA20_POLY1305,
            cipher::AES_256_CTR,
            cipher::AES_128_GCM,
            cipher::AES_128_CTR,
        ]
    } else {
        vec![
            cipher::CHACHA20_POLY1305,
            cipher::AES_128_CTR,
            cipher::AES_192_CTR,
            cipher::AES_256_CTR,
            cipher::AES_128_GCM,
            cipher::AES_256_GCM,
        ]
    };
    let macs: Vec<mac::Name> = if rhel_policy && v >= Version(8, 0) {
        vec![
            mac::HMAC_SHA256_ETM,
            mac::HMAC_SHA1_ETM,
            mac::HMAC_SHA512_ETM,
            mac::HMAC_SHA256,
            mac::HMAC_SHA1,
            mac::HMAC_SHA512,
        ]
    } else {
        vec![
            mac::HMAC_SHA256_ETM,
            mac::HMAC_SHA512_ETM,
            mac::HMAC_SHA1_ETM,
            mac::HMAC_SHA256,
            mac::HMAC_SHA512,
            mac::HMAC_SHA1,
        ]
    };
    Preferred {
        kex: Cow::Owned(kexes),
        key: Cow::Owned(keys),
        host_key_certificates: Cow::Borrowed(&[]),
        cipher: Cow::Owned(ciphers),
        mac: Cow::Owned(macs),
        compression: Cow::Owned(vec![compression::NONE, compression::ZLIB_LEGACY]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &Preferred) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
        (
            p.kex.iter().map(|k| k.as_ref().to_owned()).collect(),
            p.key.iter().map(ToString::to_string).collect(),
            p.cipher.iter().map(|c| c.as_ref().to_owned()).collect(),
            p.mac.iter().map(|m| m.as_ref().to_owned()).collect(),
        )
    }

    #[test]
    fn debian_bookworm_defaults() {
        let p = preferred("OpenSSH_9.2p1 Debian-2+deb12u3", false);
        let (kex, key, cipher, mac) = names(&p);
        assert_eq!(
            kex,
            [
                "curve25519-sha256",
                "curve25519-sha256@libssh.org",
                "ecdh-sha2-nistp256",
                "ecdh-sha2-nistp384",
                "ecdh-sha2-nistp521",
                "diffie-hellman-group-exchange-sha256",
                "diffie-hellman-group16-sha512",
                "diffie-hellman-group18-sha512",
                "diffie-hellman-group14-sha256",
                "kex-strict-s-v00@openssh.com"
            ]
        );
        assert_eq!(
            key,
            [
                "rsa-sha2-512",
                "rsa-sha2-256",
                "ecdsa-sha2-nistp256",
                "ssh-ed25519"
            ]
        );
        assert_eq!(
            cipher,
            [
                "chacha20-poly1305@openssh.com",
                "aes128-ctr",
                "aes192-ctr",
                "aes256-ctr",
                "aes128-gcm@openssh.com",
                "aes256-gcm@openssh.com"
            ]
        );
        assert_eq!(mac[0], "hmac-sha2-256-etm@openssh.com");
    }

    #[test]
    fn older_and_rhel_versions() {
        let (kex, key, _, _) = names(&preferred("OpenSSH_7.4", false));
        assert_eq!(key[0], "ssh-rsa");
        assert!(kex.contains(&"diffie-hellman-group14-sha1".to_owned()));
        assert!(!kex.contains(&"kex-strict-s-v00@openssh.com".to_owned()));
        let (kex, key, cipher, _) = names(&preferred("OpenSSH_8.7", true));
        assert_eq!(key[0], "rsa-sha2-256");
        assert_eq!(cipher[0], "aes256-gcm@openssh.com");
        assert_eq!(kex[6], "diffie-hellman-group14-sha256");
        assert_eq!(parse_version("OpenSSH_9.6p1 Debian-4"), Version(9, 6));
        assert!(
            names(&preferred("OpenSSH_9.6", false))
                .0
                .contains(&"ext-info-s".to_owned())
        );
    }
}
