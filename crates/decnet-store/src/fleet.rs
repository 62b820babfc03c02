//! Fleet deckies: the `fleet_deckies` table, keyed by `(host_uuid, name)`.

use std::net::IpAddr;

use async_trait::async_trait;
use decnet_core::{DeckyConfig, DeckyName, HostUuid};
use serde::{Deserialize, Serialize};

use crate::enums::text_enum;
use crate::limits::{self, MAX_LABEL_LEN, MAX_SERVICES};
use crate::{Error, Result, Timestamp};

text_enum! {
    /// Lifecycle state of a decky row (fleet and shard tables share the vocabulary).
    pub enum FleetState {
        /// Accepted, not yet known to run.
        Pending = "pending",
        /// Every container runs.
        Running = "running",
        /// None of the present containers runs.
        Failed = "failed",
        /// No container is present.
        TornDown = "torn_down",
        /// Some containers run, some do not.
        Degraded = "degraded",
        /// A teardown is in progress.
        TearingDown = "tearing_down",
        /// The last teardown failed.
        TeardownFailed = "teardown_failed",
        /// The runtime could not be observed when the row was written.
        Unknown = "unknown",
    }
}

/// Which hosts' rows a call covers. "All hosts" is spelled out; it is never the
/// result of an empty or missing host id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostScope {
    /// Every host.
    All,
    /// Only this host's rows.
    Host(HostUuid),
}

impl HostScope {
    /// True when a row of `host` is in scope.
    pub fn contains(&self, host: &HostUuid) -> bool {
        match self {
            Self::All => true,
            Self::Host(h) => h == host,
        }
    }
}

/// One stored fleet decky.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetDecky {
    /// Host that runs it (`local` on a unihost install).
    pub host_uuid: HostUuid,
    /// Decky name, unique per host.
    pub name: DeckyName,
    /// Service slugs.
    pub services: Vec<String>,
    /// The full desired config, when known.
    pub decky_config: Option<DeckyConfig>,
    /// LAN address.
    pub decky_ip: Option<IpAddr>,
    /// Observed aggregate state.
    pub state: FleetState,
    /// Last error text (kept until replaced).
    pub last_error: Option<String>,
    /// Hash of the compose fragment it was deployed from.
    pub compose_hash: Option<String>,
    /// Last state change written by [`FleetRepo::update_fleet_state`].
    pub last_seen: Option<Timestamp>,
    /// Last reconciler pass that observed the row (FL-7).
    pub last_observed: Option<Timestamp>,
    /// Last write of any column.
    pub updated_at: Timestamp,
}

/// The light view of a fleet row: what a reconcile pass needs to tell whether anything
/// changed, without the config columns (whose decoding dominates a full listing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetSummary {
    /// Host that runs it.
    pub host_uuid: HostUuid,
    /// Decky name.
    pub name: DeckyName,
    /// Observed aggregate state.
    pub state: FleetState,
    /// Last reconciler pass that observed the row.
    pub last_observed: Option<Timestamp>,
    /// Last write of any column: a row whose `updated_at` did not move has the same
    /// services, address and config as when it was last read in full.
    pub updated_at: Timestamp,
}

impl From<&FleetDecky> for FleetSummary {
    fn from(d: &FleetDecky) -> Self {
        Self {
            host_uuid: d.host_uuid.clone(),
            name: d.name.clone(),
            state: d.state,
            last_observed: d.last_observed,
            updated_at: d.updated_at,
        }
    }
}

/// The columns an upsert writes. Columns not listed here (`last_error`,
/// `compose_hash`, `last_seen`, `last_observed`) keep their stored values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetUpsert {
    /// Host that runs it.
    pub host_uuid: HostUuid,
    /// Decky name.
    pub name: DeckyName,
    /// Service slugs (at most [`MAX_SERVICES`]).
    pub services: Vec<String>,
    /// The full desired config.
    pub decky_config: Option<DeckyConfig>,
    /// LAN address.
    pub decky_ip: Option<IpAddr>,
    /// State to store.
    pub state: FleetState,
}

impl FleetUpsert {
    /// The upsert for `config` on its own host (or `local`), in `state`.
    pub fn from_config(config: &DeckyConfig, state: FleetState) -> Self {
        Self {
            host_uuid: config.host(),
            name: config.name.clone(),
            services: config.services.clone(),
            decky_config: Some(config.clone()),
            decky_ip: Some(IpAddr::V4(config.ip)),
            state,
        }
    }

    /// Checks limits; returns `(services_json, config_json)`.
    pub(crate) fn encode(&self) -> Result<(String, Option<String>)> {
        services(&self.services)?;
        let config = self
            .decky_config
            .as_ref()
            .map(|c| limits::json("decky config", c, limits::MAX_DECKY_CONFIG_BYTES))
            .transpose()?;
        Ok((
            limits::json("services", &self.services, usize::MAX)?,
            config,
        ))
    }
}

/// Checks a service list against [`MAX_SERVICES`] and [`MAX_LABEL_LEN`].
pub(crate) fn services(services: &[String]) -> Result<()> {
    if services.len() > MAX_SERVICES {
        return Err(Error::invalid(
            "services",
            format!(
                "{} services, at most {MAX_SERVICES} allowed",
                services.len()
            ),
        ));
    }
    for s in services {
        limits::label("service", s, MAX_LABEL_LEN)?;
    }
    Ok(())
}

/// Fleet deckies, keyed by `(host_uuid, name)`.
///
/// Guarantees: every write is one atomic statement or transaction; rows of hosts
/// outside the call's host scope are never read or written; upserts are idempotent.
#[async_trait]
pub trait FleetRepo: Send + Sync {
    /// Rows in scope, ordered by name, then host (byte order).
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn list_fleet(&self, scope: &HostScope) -> Result<Vec<FleetDecky>>;

    /// [`FleetRepo::list_fleet`] without the config columns: same rows, same order, one
    /// query. The default derives it from `list_fleet`; the SQL stores select only these
    /// columns.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn list_fleet_summary(&self, scope: &HostScope) -> Result<Vec<FleetSummary>> {
        Ok(self
            .list_fleet(scope)
            .await?
            .iter()
            .map(FleetSummary::from)
            .collect())
    }

    /// One row.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn get_fleet_decky(
        &self,
        host: &HostUuid,
        name: &DeckyName,
    ) -> Result<Option<FleetDecky>>;

    /// Inserts the row or overwrites the upsert's columns of the existing one
    /// (`INSERT … ON CONFLICT DO UPDATE`), stamping `updated_at`.
    ///
    /// # Errors
    /// [`Error::Invalid`] over a limit; [`Error::Database`].
    async fn upsert_fleet_decky(&self, decky: &FleetUpsert) -> Result<()>;

    /// Sets `state`, `updated_at` = `last_seen` = now, and `last_error` when given.
    /// Returns the state stored *before* this call, read in the same transaction, or
    /// `None` (and writes nothing) when the row does not exist.
    ///
    /// # Errors
    /// [`Error::Database`], [`Error::Corrupt`].
    async fn update_fleet_state(
        &self,
        host: &HostUuid,
        name: &DeckyName,
        state: FleetState,
        last_error: Option<&str>,
    ) -> Result<Option<FleetState>>;

    /// Deletes one row; returns whether it existed.
    ///
    /// # Errors
    /// [`Error::Database`].
    async fn delete_fleet_decky(&self, host: &HostUuid, name: &DeckyName) -> Result<bool>;

    /// Stamps `last_observed = at` on every row of `host` (one statement); returns the
    /// number of rows stamped. `updated_at` is untouched.
    ///
    /// # Errors
    /// [`Error::Database`].
    async fn stamp_fleet_observed(&self, host: &HostUuid, at: Timestamp) -> Result<u64>;
}
