//! The database the commands open: the host config's `[database]` (by default SQLite
//! under the data directory), resolved and opened the same way everywhere.

use std::sync::Arc;

use anyhow::{Context as _, Result};
use decnet_store::{Repository, StoreConfig};

use crate::context::Ctx;
use crate::exit::invalid;

/// The host's database settings; a bad `[database]` section is a usage error (exit 2).
pub fn config(ctx: &Ctx) -> Result<StoreConfig> {
    StoreConfig::from_host_config(&ctx.host, &ctx.settings).map_err(|e| invalid(e.to_string()))
}

/// Opens the database (creating and migrating it when needed).
pub async fn open(config: &StoreConfig) -> Result<Arc<dyn Repository>> {
    decnet_store::open(config)
        .await
        .context("open the database")
}
