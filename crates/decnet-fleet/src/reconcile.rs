//! One reconcile pass: desired (state file) against stored (the host's fleet rows)
//! against observed (Docker's aggregate per decky).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use decnet_bus::{Bus, publish_safely, topics};
use decnet_core::{DeckyConfig, DeckyName, HostUuid};
use decnet_runtime::status::{DeckyState, RuntimeMap};
use decnet_store::{FleetDecky, FleetRepo, FleetState, FleetUpsert, HostScope, Timestamp};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

use crate::Result;

/// How old the oldest `last_observed` stamp of a host may get before a quiet pass
/// refreshes it. Stamping every row on every pass (FL-7 taken literally) would make every
/// tick a write; instead a stamp means "observed within this period", and the exact time
/// of the last pass is in the worker's health payload.
pub const OBSERVED_REFRESH: Duration = Duration::from_secs(300);

/// Per-decky errors kept in a [`ReconcileReport`]; further ones are only counted.
pub const MAX_REPORTED_ERRORS: usize = 16;

/// Event type of `decky.<host>:<name>.state`.
pub const EVENT_TYPE_STATE: &str = "state";

/// `source` of the reconciler's events.
pub const SOURCE_FLEET: &str = "fleet";

/// What happened to a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transition {
    /// The state file wants a decky the database did not have.
    Inserted,
    /// The database had a decky the state file no longer wants.
    Deleted,
    /// Docker reports a different aggregate state.
    StateChanged,
}

/// The payload of `decky.<host_uuid>:<name>.state` (type [`EVENT_TYPE_STATE`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEvent {
    /// The pass's host scope.
    pub host_uuid: HostUuid,
    /// The decky.
    pub name: DeckyName,
    /// The state now (`torn_down` for a deleted row).
    pub state: FleetState,
    /// What happened.
    pub transition: Transition,
    /// Always [`SOURCE_FLEET`].
    pub source: String,
    /// The state the store held when the update was written (`state_changed` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_state: Option<FleetState>,
}

/// A decky whose write failed; the pass went on with the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeckyError {
    /// The decky (empty for a host-wide statement such as the stamp).
    pub name: String,
    /// The write that failed (`insert`, `update config`, `update state`, `delete`,
    /// `stamp`).
    pub op: &'static str,
    /// The store's error, with its causes.
    pub message: String,
}

/// What one pass did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// The host scope of the pass.
    pub host_uuid: HostUuid,
    /// Whether Docker could be observed (`false`: unknown, no state was changed on its
    /// account).
    pub observed: bool,
    /// Deckies the state file wants on this host.
    pub desired: usize,
    /// Rows the database held for this host at the start of the pass.
    pub stored: usize,
    /// Rows inserted.
    pub inserted: u64,
    /// Rows deleted.
    pub deleted: u64,
    /// Rows whose state changed.
    pub state_updated: u64,
    /// Rows whose services, address or config were rewritten from the state file.
    pub config_updated: u64,
    /// State-file deckies skipped because they are pinned to another host.
    pub foreign: u64,
    /// Rows whose `last_observed` was refreshed.
    pub stamped: u64,
    /// Events handed to the bus.
    pub published: u64,
    /// Events the bus did not take (logged; the writes stand).
    pub publish_failed: u64,
    /// Failed writes, at most [`MAX_REPORTED_ERRORS`] of them.
    pub errors: Vec<DeckyError>,
    /// Number of failed writes.
    pub error_count: u64,
}

impl ReconcileReport {
    /// An empty report for `host`.
    pub fn new(host: HostUuid) -> Self {
        ReconcileReport {
            host_uuid: host,
            observed: false,
            desired: 0,
            stored: 0,
            inserted: 0,
            deleted: 0,
            state_updated: 0,
            config_updated: 0,
            foreign: 0,
            stamped: 0,
            published: 0,
            publish_failed: 0,
            errors: Vec::new(),
            error_count: 0,
        }
    }

    /// Rows inserted, deleted or updated.
    pub fn changes(&self) -> u64 {
        self.inserted + self.deleted + self.state_updated + self.config_updated
    }

    /// True when the pass wrote nothing and published nothing.
    pub fn is_quiet(&self) -> bool {
        self.changes() == 0
            && self.stamped == 0
            && self.published == 0
            && self.publish_failed == 0
            && self.error_count == 0
    }

    /// Records a failed write.
    fn fail(&mut self, name: &str, op: &'static str, error: &decnet_store::Error) {
        let message = chain(error);
        warn!(decky = %name, op, error = %message, "Reconcile write failed");
        self.error_count += 1;
        if self.errors.len() < MAX_REPORTED_ERRORS {
            self.errors.push(DeckyError {
                name: name.to_owned(),
                op,
                message,
            });
        }
    }
}

/// An error and its causes on one line.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The stored state of a runtime aggregate.
pub fn fleet_state(state: DeckyState) -> FleetState {
    match state {
        DeckyState::Running => FleetState::Running,
        DeckyState::Degraded => FleetState::Degraded,
        DeckyState::Failed => FleetState::Failed,
        DeckyState::TornDown => FleetState::TornDown,
    }
}

/// One pass: lists the rows of `host` in full (one query), then [`reconcile_rows`]. The
/// worker reads them through a [`crate::RowCache`] instead, which skips decoding the
/// config columns when no row changed.
///
/// `desired` is the state file's deckies (empty when there is no state file: every row
/// of the host is then deleted); `observed` is Docker's runtime map of those deckies, or
/// `None` when Docker could not be observed.
///
/// # Errors
/// [`crate::Error::Store`] when the rows cannot be listed (nothing was written). Failed
/// writes do not fail the pass: they are in [`ReconcileReport::errors`].
pub async fn reconcile_once(
    repo: &dyn FleetRepo,
    host: &HostUuid,
    desired: &[DeckyConfig],
    observed: Option<&RuntimeMap>,
    bus: Option<&dyn Bus>,
) -> Result<ReconcileReport> {
    let rows = repo.list_fleet(&HostScope::Host(host.clone())).await?;
    Ok(reconcile_rows(repo, host, &rows, desired, observed, bus).await)
}

/// The pass over `rows` already read for `host` (the worker reads them *before* it
/// reads the state file, so a deploy that writes the state file and then the rows can
/// never have its fresh rows deleted by a pass that read the older state file: FL-1).
///
/// For each decky of `desired` on this host: no row → insert it (state from `observed`,
/// `unknown` when Docker is unknown) and publish `inserted`; a row → rewrite its config
/// columns when they differ from the state file (no event), and when Docker reports a
/// different aggregate, update the state and publish `state_changed` with the previous
/// state the store returned. Each row of `host` the state file does not want is deleted
/// and `deleted` published. Finally `last_observed` is refreshed (see
/// [`OBSERVED_REFRESH`]) when Docker was observed.
pub async fn reconcile_rows(
    repo: &dyn FleetRepo,
    host: &HostUuid,
    rows: &[FleetDecky],
    desired: &[DeckyConfig],
    observed: Option<&RuntimeMap>,
    bus: Option<&dyn Bus>,
) -> ReconcileReport {
    let mut report = ReconcileReport::new(host.clone());
    report.observed = observed.is_some();
    // The store was asked for this host only; a row of another host would be a store bug,
    // and must not be deleted on this host's account.
    let rows: Vec<&FleetDecky> = rows.iter().filter(|r| &r.host_uuid == host).collect();
    report.stored = rows.len();
    let index: HashMap<&str, &FleetDecky> = rows.iter().map(|r| (r.name.as_str(), *r)).collect();
    let now = Timestamp::now();
    let refresh_before = now.minus(OBSERVED_REFRESH);
    let mut wanted: HashSet<&str> = HashSet::with_capacity(desired.len());
    let mut stale_stamp = false;

    for decky in desired {
        if decky.host_uuid.as_ref().is_some_and(|h| h != host) {
            report.foreign += 1;
            continue;
        }
        if !wanted.insert(decky.name.as_str()) {
            // A validated config has unique names; a second entry adds nothing.
            continue;
        }
        report.desired += 1;
        // Outer None: Docker unknown. Inner None: the map does not cover this decky.
        let seen: Option<FleetState> = observed
            .and_then(|m| m.get(decky.name.as_str()))
            .map(|r| fleet_state(r.state));
        let Some(row) = index.get(decky.name.as_str()) else {
            insert(repo, host, decky, seen, bus, &mut report).await;
            continue;
        };
        stale_stamp |= row.last_observed.is_none_or(|t| t < refresh_before);
        if config_differs(row, decky) {
            let upsert = upsert_for(host, decky, row.state);
            match repo.upsert_fleet_decky(&upsert).await {
                Ok(()) => report.config_updated += 1,
                Err(e) => report.fail(decky.name.as_str(), "update config", &e),
            }
        }
        if let Some(state) = seen
            && state != row.state
        {
            update_state(repo, host, &decky.name, state, bus, &mut report).await;
        }
    }

    for row in &rows {
        if wanted.contains(row.name.as_str()) {
            continue;
        }
        match repo.delete_fleet_decky(host, &row.name).await {
            Ok(true) => {
                report.deleted += 1;
                debug!(decky = %row.name, "Fleet row deleted");
                let event = StateEvent {
                    host_uuid: host.clone(),
                    name: row.name.clone(),
                    state: FleetState::TornDown,
                    transition: Transition::Deleted,
                    source: SOURCE_FLEET.to_owned(),
                    previous_state: None,
                };
                publish(bus, &event, &mut report).await;
            }
            // Gone already (a teardown's mirror got there first): nothing happened here.
            Ok(false) => {}
            Err(e) => report.fail(row.name.as_str(), "delete", &e),
        }
    }

    if report.observed && report.desired > 0 && (report.changes() > 0 || stale_stamp) {
        match repo.stamp_fleet_observed(host, now).await {
            Ok(n) => report.stamped = n,
            Err(e) => report.fail("", "stamp", &e),
        }
    }
    report
}

fn upsert_for(host: &HostUuid, decky: &DeckyConfig, state: FleetState) -> FleetUpsert {
    FleetUpsert {
        host_uuid: host.clone(),
        name: decky.name.clone(),
        services: decky.services.clone(),
        decky_config: Some(decky.clone()),
        decky_ip: Some(IpAddr::V4(decky.ip)),
        state,
    }
}

fn config_differs(row: &FleetDecky, decky: &DeckyConfig) -> bool {
    row.services != decky.services
        || row.decky_ip != Some(IpAddr::V4(decky.ip))
        || row.decky_config.as_ref() != Some(decky)
}

async fn insert(
    repo: &dyn FleetRepo,
    host: &HostUuid,
    decky: &DeckyConfig,
    seen: Option<FleetState>,
    bus: Option<&dyn Bus>,
    report: &mut ReconcileReport,
) {
    let state = seen.unwrap_or(FleetState::Unknown);
    match repo
        .upsert_fleet_decky(&upsert_for(host, decky, state))
        .await
    {
        Ok(()) => {
            report.inserted += 1;
            debug!(decky = %decky.name, state = %state, "Fleet row inserted");
            let event = StateEvent {
                host_uuid: host.clone(),
                name: decky.name.clone(),
                state,
                transition: Transition::Inserted,
                source: SOURCE_FLEET.to_owned(),
                previous_state: None,
            };
            publish(bus, &event, report).await;
        }
        Err(e) => report.fail(decky.name.as_str(), "insert", &e),
    }
}

async fn update_state(
    repo: &dyn FleetRepo,
    host: &HostUuid,
    name: &DeckyName,
    state: FleetState,
    bus: Option<&dyn Bus>,
    report: &mut ReconcileReport,
) {
    // The previous state is what the store read in the update's own transaction, not the
    // row listed at the start of the pass: another writer may have changed it since, and
    // a row object read back after the write would already show the new state.
    match repo.update_fleet_state(host, name, state, None).await {
        Ok(Some(previous)) if previous != state => {
            report.state_updated += 1;
            debug!(decky = %name, from = %previous, to = %state, "Fleet row state changed");
            let event = StateEvent {
                host_uuid: host.clone(),
                name: name.clone(),
                state,
                transition: Transition::StateChanged,
                source: SOURCE_FLEET.to_owned(),
                previous_state: Some(previous),
            };
            publish(bus, &event, report).await;
        }
        // Another writer set this state meanwhile: no transition of ours to announce.
        Ok(Some(_)) => debug!(decky = %name, state = %state, "Fleet row already in state"),
        // Deleted meanwhile: the next pass inserts it again if it is still wanted.
        Ok(None) => debug!(decky = %name, "Fleet row vanished before its update"),
        Err(e) => report.fail(name.as_str(), "update state", &e),
    }
}

async fn publish(bus: Option<&dyn Bus>, event: &StateEvent, report: &mut ReconcileReport) {
    let Some(bus) = bus else {
        return;
    };
    let topic = || Ok(topics::decky_state(&event.host_uuid, &event.name));
    if publish_safely(Some(bus), topic, EVENT_TYPE_STATE, event).await {
        report.published += 1;
    } else {
        report.publish_failed += 1;
    }
}
