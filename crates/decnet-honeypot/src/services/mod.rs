//! The emulator registry: one entry per catalogue slug that `decnet-decky` serves, one
//! folder per service (`services/<slug>/`).

use std::sync::Arc;

use crate::Error;
use crate::server::{Emulator, ServiceCtx};

pub(crate) mod framed;
pub mod ftp;
pub mod http;
pub mod https;
pub mod mysql;
pub mod postgres;
pub mod redis;
pub mod smtp;
pub mod ssh;
pub mod telnet;
pub mod vnc;

/// How to build one service's emulator from its context.
pub struct Entry {
    /// Catalogue slug.
    pub slug: &'static str,
    /// Builds the emulator (loads keys, certificates, bait content from the persona).
    pub build: fn(&ServiceCtx) -> Result<Arc<dyn Emulator>, Error>,
}

/// Every emulator in this build.
pub static REGISTRY: &[Entry] = &[
    Entry {
        slug: "ssh",
        build: ssh::build,
    },
    Entry {
        slug: "telnet",
        build: telnet::build,
    },
    Entry {
        slug: "http",
        build: http::build,
    },
    Entry {
        slug: "https",
        build: https::build,
    },
    Entry {
        slug: "ftp",
        build: ftp::build,
    },
    Entry {
        slug: "smtp",
        build: smtp::build,
    },
    Entry {
        slug: "vnc",
        build: vnc::build,
    },
    Entry {
        slug: "postgres",
        build: postgres::build,
    },
    Entry {
        slug: "mysql",
        build: mysql::build,
    },
    Entry {
        slug: "redis",
        build: redis::build,
    },
];

/// Finds the emulator of `slug`.
pub fn lookup(slug: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.slug == slug)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_entries_are_emulated_catalogue_services() {
        for entry in REGISTRY {
            let spec = decnet_core::catalog::service(entry.slug).unwrap();
            assert!(
                spec.emulated,
                "{} is registered but not marked emulated",
                entry.slug
            );
        }
    }
}
