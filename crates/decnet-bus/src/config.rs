//! Backend selection from configuration (`DECNET_BUS_ENABLED`, `DECNET_BUS_TYPE`, `DECNET_BUS_URL`).

use std::path::PathBuf;
use std::sync::Arc;

use crate::Error;
use crate::bus::Bus;
use crate::client::{ClientOptions, SocketClient};
use crate::memory::MemoryHub;
use crate::nats::{DEFAULT_NATS_URL, NatsBus};
use crate::queue::DEFAULT_QUEUE_CAPACITY;

/// Which backend to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusKind {
    /// No bus: publishing is a no-op (`DECNET_BUS_ENABLED=false`).
    Disabled,
    /// The broker's UNIX socket (the default).
    Unix(PathBuf),
    /// A NATS server.
    Nats(String),
    /// An in-process hub private to this process (tests, single-process runs).
    Memory,
}

/// How to reach the bus, resolved once at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusConfig {
    /// The backend.
    pub kind: BusKind,
    /// Connection name (HELLO / NATS client name).
    pub name: String,
    /// Capacity of each subscription queue.
    pub queue_capacity: usize,
}

fn falsy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off"
    )
}

impl BusConfig {
    /// Resolves the configuration from `lookup` (the environment or the host config, read
    /// by the caller): `DECNET_BUS_ENABLED` (false/0/no/off disables), `DECNET_BUS_TYPE`
    /// (`unix` default, `nats`, `memory`; `fake` is accepted for `memory`),
    /// `DECNET_BUS_URL` (NATS URL, default `nats://127.0.0.1:4222`). The socket path is
    /// `socket` (from `Settings::bus_socket`, which already honours `DECNET_BUS_SOCKET`).
    ///
    /// # Errors
    /// [`Error::UnsupportedType`] for an unknown type.
    pub fn resolve(
        lookup: impl Fn(&str) -> Option<String>,
        socket: impl Into<PathBuf>,
        name: impl Into<String>,
    ) -> Result<Self, Error> {
        let name = name.into();
        let kind = if lookup("DECNET_BUS_ENABLED").is_some_and(|v| falsy(&v)) {
            BusKind::Disabled
        } else {
            let ty = lookup("DECNET_BUS_TYPE").unwrap_or_default();
            match ty.trim().to_ascii_lowercase().as_str() {
                "" | "unix" => BusKind::Unix(socket.into()),
                "nats" => BusKind::Nats(
                    lookup("DECNET_BUS_URL")
                        .filter(|u| !u.trim().is_empty())
                        .unwrap_or_else(|| DEFAULT_NATS_URL.to_owned()),
                ),
                "memory" | "fake" => BusKind::Memory,
                _ => return Err(Error::UnsupportedType(ty)),
            }
        };
        Ok(Self {
            kind,
            name,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        })
    }

    /// Opens the configured bus: `None` when disabled. The socket client connects lazily,
    /// so this succeeds while the broker is down; NATS connects now.
    ///
    /// # Errors
    /// [`Error::Nats`] when the NATS server cannot be reached.
    pub async fn open(&self) -> Result<Option<Arc<dyn Bus>>, Error> {
        Ok(match &self.kind {
            BusKind::Disabled => None,
            BusKind::Unix(path) => {
                let mut opts = ClientOptions::new(self.name.clone());
                opts.queue_capacity = self.queue_capacity;
                Some(Arc::new(SocketClient::new(path.clone(), opts)))
            }
            BusKind::Nats(url) => Some(Arc::new(
                NatsBus::connect(url, &self.name, self.queue_capacity).await?,
            )),
            BusKind::Memory => Some(Arc::new(
                MemoryHub::new(self.queue_capacity).connect(self.name.clone()),
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(vars: &[(&str, &str)]) -> Result<BusConfig, Error> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        BusConfig::resolve(|k| map.get(k).cloned(), "/run/decnet/bus.sock", "api")
    }

    #[test]
    fn selects_the_backend() {
        assert_eq!(
            resolve(&[]).unwrap().kind,
            BusKind::Unix("/run/decnet/bus.sock".into())
        );
        assert_eq!(
            resolve(&[
                ("DECNET_BUS_TYPE", "nats"),
                ("DECNET_BUS_URL", "nats://h:1")
            ])
            .unwrap()
            .kind,
            BusKind::Nats("nats://h:1".into())
        );
        assert_eq!(
            resolve(&[("DECNET_BUS_TYPE", "NATS")]).unwrap().kind,
            BusKind::Nats(DEFAULT_NATS_URL.into())
        );
        assert_eq!(
            resolve(&[("DECNET_BUS_TYPE", "fake")]).unwrap().kind,
            BusKind::Memory
        );
        assert_eq!(
            resolve(&[
                ("DECNET_BUS_ENABLED", "false"),
                ("DECNET_BUS_TYPE", "bogus")
            ])
            .unwrap()
            .kind,
            BusKind::Disabled
        );
        let err = resolve(&[("DECNET_BUS_TYPE", "redis")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported bus type \"redis\" (expected unix, nats or memory)"
        );
    }

    #[tokio::test]
    async fn disabled_opens_nothing_and_unix_opens_lazily() {
        assert!(
            resolve(&[("DECNET_BUS_ENABLED", "0")])
                .unwrap()
                .open()
                .await
                .unwrap()
                .is_none()
        );
        let bus = resolve(&[]).unwrap().open().await.unwrap().unwrap();
        assert_eq!(bus.name(), "api");
        assert_eq!(bus.stats().published, 0);
    }
}
