//! The hook where the database mirror of the fleet is updated after the runtime changed.
//!
//! The state file is the fleet's intent and the runtime crate writes it; the database
//! rows (`fleet_deckies`) are kept in step by the reconciler, which reads the state file
//! and the runtime. When the CLI is wired to the store, the upserts and deletes go here,
//! best-effort (a database error must not turn a deploy that ran into a failure).

use decnet_core::DecnetConfig;

use crate::context::Ctx;

/// After a deploy: every decky of `config` is wanted on this host.
pub fn after_deploy(_ctx: &Ctx, config: &DecnetConfig) {
    tracing::debug!(
        deckies = config.deckies.len(),
        "Database mirror not wired in the CLI; the reconciler converges it"
    );
}

/// After a teardown: `removed` deckies are gone (`None`: all of them).
pub fn after_teardown(_ctx: &Ctx, removed: Option<&str>) {
    tracing::debug!(
        decky = removed.unwrap_or("*"),
        "Database mirror not wired in the CLI; the reconciler converges it"
    );
}
