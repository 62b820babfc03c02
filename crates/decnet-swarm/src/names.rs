//! Strict patterns for worker names and addresses (SW-2, SW-12).

use std::net::IpAddr;

use crate::{Error, Result};

/// Longest worker name (it is a certificate CN, a DNS SAN and a directory name).
pub const MAX_NAME_LEN: usize = 63;
/// Longest address or SAN (a DNS name).
pub const MAX_ADDRESS_LEN: usize = 253;
/// Most extra SANs one enrollment may ask for.
pub const MAX_SANS: usize = 16;

/// Names that belong to control-plane identities and can never be a worker's.
pub const RESERVED_NAMES: &[&str] = &[
    "decnet-master",
    "swarmctl",
    "decnet-swarmctl",
    "decnet-operator",
    "localhost",
];

/// Checks a worker name: lowercase letters, digits, `-` and `.`, starting and ending with
/// a letter or digit, at most [`MAX_NAME_LEN`] characters, no empty label, not reserved
/// and not `updater@…`.
///
/// # Errors
/// [`Error::Invalid`] saying which rule was broken.
pub fn check_worker_name(name: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("worker name {name:?}: {why}")));
    if name.starts_with("updater@") {
        return bad("names of the form updater@… are reserved for updater identities");
    }
    if RESERVED_NAMES.contains(&name) {
        return bad("this name is reserved for a control-plane identity");
    }
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return bad("must be 1 to 63 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        return bad("use lowercase letters, digits, '-' and '.' only");
    }
    if name
        .split('.')
        .any(|label| label.is_empty() || label.starts_with('-') || label.ends_with('-'))
    {
        return bad("each dot-separated part must start and end with a letter or digit");
    }
    Ok(())
}

/// Checks an address or SAN: an IP address, or a DNS name of letters, digits and `-` in
/// dot-separated labels of 1 to 63 characters (at most [`MAX_ADDRESS_LEN`]).
///
/// # Errors
/// [`Error::Invalid`] naming `what`.
pub fn check_address(what: &str, address: &str) -> Result<()> {
    if address.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let ok = !address.is_empty()
        && address.len() <= MAX_ADDRESS_LEN
        && address.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} {address:?}: expected an IP address or a DNS name (letters, digits, '-' \
             in dot-separated labels)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_names() {
        for ok in ["w1", "worker-a", "rack1.w2", "a"] {
            check_worker_name(ok).unwrap();
        }
        for bad in [
            "",
            "decnet-master",
            "swarmctl",
            "updater@w1",
            "W1",
            "-w",
            "w-",
            "a..b",
            "a b",
            "a;rm",
            "a\nb",
            "x".repeat(64).as_str(),
            "../etc",
        ] {
            assert!(check_worker_name(bad).is_err(), "{bad:?} accepted");
        }
        let err = check_worker_name("decnet-master").unwrap_err().to_string();
        assert!(err.contains("reserved"), "{err}");
    }

    #[test]
    fn addresses() {
        for ok in ["10.0.0.5", "::1", "fe80::1", "worker.example.org", "host-1"] {
            check_address("address", ok).unwrap();
        }
        for bad in ["", "a b", "$(id)", "a;b", "x.", ".x", "a_b", "[::1]", "h\n"] {
            assert!(check_address("address", bad).is_err(), "{bad:?} accepted");
        }
    }
}
