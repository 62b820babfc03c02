//! DECNET's fleet reconciler: converges, for one host, the state file (membership
//! intent), the `fleet_deckies` rows of that host (the database mirror) and what Docker
//! runs (runtime truth), and announces every change on the bus.
//!
//! Read in this order:
//! - [`reconcile_once`] (and [`reconcile_rows`], the same pass over rows already
//!   listed): one level-triggered pass, returning a [`ReconcileReport`]; every change is
//!   published as a [`StateEvent`] on `decky.<host>:<name>.state`;
//! - [`mirror`]: the fleet operations the CLI runs after a deploy or a teardown
//!   ([`mirror_deploy`], [`forget_decky`], [`forget_all`]), built on the same pass;
//! - [`RowCache`]: how the worker reads the host's rows with one light query when
//!   nothing changed since its last full read;
//! - [`Inputs`] and [`LiveInputs`]: where a pass gets its desired state (the state file)
//!   and its observation (the [`decnet_runtime::Engine`], through the one aggregation
//!   rule of [`decnet_runtime::status`]);
//! - [`Reconciler`] and [`LoopOptions`]: the long-running worker (`decnet reconcile`):
//!   a pass at start, then every interval (jittered), errors requeued with backoff,
//!   health on `system.reconciler.health`, stop on `system.reconciler.control`.
//!
//! # Invariants
//! - **Level-triggered and idempotent.** A pass compares desired with stored and
//!   observed state; it never acts on what woke it. Running it twice in a row writes
//!   nothing and publishes nothing the second time.
//! - **Membership comes from the state file only.** Docker never causes an insert or a
//!   delete; it only sets the state of rows the state file wants. Docker unreachable is
//!   *unknown*, not *empty*: no row changes state on its account, and a new row is
//!   inserted as `unknown`, never `running` (FL-7; the reference inserted `running`).
//! - **One host scope.** A pass lists, writes and publishes under one resolved
//!   [`decnet_core::HostUuid`] (`local`, or a worker's own uuid: FL-3); rows of other
//!   hosts are never read or written, and state-file deckies pinned to another host are
//!   skipped.
//! - **Database first, bus best-effort.** Each event is published after its write, with
//!   [`decnet_bus::publish_safely`] (topic construction included), so a bus problem never
//!   aborts a pass (FL-6). The previous state of a `state_changed` event is the one the
//!   store read in the write's own transaction.
//! - **A quiet tick writes nothing.** `last_observed` (FL-7) is refreshed in one
//!   statement when a pass changed something, or when the oldest stamp of the host is
//!   older than [`OBSERVED_REFRESH`]; otherwise a converged pass issues exactly one
//!   query (the host's rows, in their light form when cached) and no write.
//! - **Errors never end the loop.** A failed pass is retried with exponential backoff
//!   (capped), a decky whose write fails does not stop the others.
//!
//! Not here: talking to Docker beyond observation (deploys and teardowns are
//! `decnet-runtime`'s), SQL (`decnet-store`), the bus transport (`decnet-bus`), and
//! resolving the host identity from the agent bundle (the binary does it once at start).

mod error;
mod inputs;
pub mod logs;
pub mod mirror;
mod reconcile;
mod rows;
mod worker;

pub use error::{Error, Result};
pub use inputs::{Connector, Inputs, LiveInputs};
pub use mirror::{forget_all, forget_decky, mirror_deploy};
pub use reconcile::{
    DeckyError, EVENT_TYPE_STATE, MAX_REPORTED_ERRORS, OBSERVED_REFRESH, ReconcileReport,
    SOURCE_FLEET, StateEvent, Transition, fleet_state, reconcile_once, reconcile_rows,
};
pub use rows::{FULL_LIST_PERIOD, RowCache};
pub use worker::{LoopOptions, Metrics, PassSummary, Reconciler, WORKER_NAME, backoff, jittered};
