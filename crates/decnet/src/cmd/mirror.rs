//! The database mirror of a deploy or teardown, right after the runtime changed (FL-1,
//! FL-4): `decnet_fleet::{mirror_deploy, forget_decky, forget_all}`.
//!
//! Best-effort: the state file the runtime just wrote is the intent, and the reconciler
//! converges the rows from it anyway, so any failure here is a warning, never a failed
//! deploy. The mirror never creates the database: its daemons create it with their own
//! owner (a CLI run as root must not leave a root-owned database behind).

use std::future::Future;
use std::sync::Arc;

use anyhow::Result;
use decnet_bus::Bus;
use decnet_core::{DeckyName, DecnetConfig, HostUuid};
use decnet_fleet::{forget_all, forget_decky, mirror_deploy};
use decnet_runtime::status::runtime_map;
use decnet_store::{FleetRepo, StoreConfig};

use super::{live, reconcile};
use crate::context::Ctx;
use crate::exit::one_line;

/// Runs `op` with the store, the bus and the host identity; logs instead of failing.
fn best_effort<F, Fut>(ctx: &Ctx, what: &str, op: F)
where
    F: FnOnce(Arc<dyn FleetRepo>, Option<Arc<dyn Bus>>, HostUuid) -> Fut,
    Fut: Future<Output = Result<()>>,
{
    let outcome = (|| {
        let config = super::db::config(ctx)?;
        if let StoreConfig::Sqlite { path, .. } = &config
            && !path.exists()
        {
            tracing::debug!(db = %path.display(), "No database yet; the reconciler creates it");
            return Ok(());
        }
        let host = reconcile::host_identity(ctx, None)?;
        live::runtime()?.block_on(async {
            let repo: Arc<dyn FleetRepo> = super::db::open(&config).await?;
            let bus = reconcile::open_bus(ctx, "decnet-cli").await?;
            let result = op(repo, bus.clone(), host).await;
            reconcile::close_bus(bus.as_ref()).await;
            result
        })
    })();
    if let Err(e) = outcome {
        tracing::warn!(
            error = %one_line(&e),
            "Database mirror after {what} skipped; the reconciler will converge it"
        );
    }
}

/// After a deploy: the deployed config is this host's whole desired fleet.
pub fn after_deploy(ctx: &Ctx, config: &DecnetConfig) {
    best_effort(ctx, "deploy", |repo, bus, host| async move {
        // Docker's view right after the deploy, so rows start with their real state;
        // unknown (not running) when it cannot be observed.
        let observed = match live::engine().await {
            Ok(engine) => runtime_map(&engine, config, &live::project(&ctx.settings)?)
                .await
                .ok(),
            Err(_) => None,
        };
        let report = mirror_deploy(
            repo.as_ref(),
            &host,
            &config.deckies,
            observed.as_ref(),
            bus.as_deref(),
        )
        .await?;
        tracing::info!(
            inserted = report.inserted,
            deleted = report.deleted,
            state_updated = report.state_updated,
            "Database mirror updated"
        );
        Ok(())
    });
}

/// After a teardown: `removed` deckies are gone (`None`: all of them).
pub fn after_teardown(ctx: &Ctx, removed: Option<&str>) {
    best_effort(ctx, "teardown", |repo, bus, host| async move {
        match removed {
            Some(name) => {
                let name = DeckyName::new(name)?;
                forget_decky(repo.as_ref(), &host, &name, bus.as_deref()).await?;
            }
            None => {
                forget_all(repo.as_ref(), &host, bus.as_deref()).await?;
            }
        }
        Ok(())
    });
}
