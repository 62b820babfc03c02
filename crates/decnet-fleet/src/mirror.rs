//! The database mirror of a deploy or a teardown, run by the CLI right after the runtime
//! changed (FL-1, FL-4), so the rows do not wait for the next reconcile pass.
//!
//! All three are the reconcile pass or a piece of it, so a deploy, a teardown and the
//! reconciler can never disagree about membership: the state file the runtime just wrote
//! is the intent, and these functions only make the host's rows agree with it. They are
//! best-effort for their callers (the state file stays authoritative): an error here
//! leaves the rows for the next pass to converge.

use decnet_bus::{Bus, publish_safely, topics};
use decnet_core::{DeckyConfig, DeckyName, HostUuid};
use decnet_runtime::status::RuntimeMap;
use decnet_store::{FleetRepo, FleetState};
use tracing::debug;

use crate::reconcile::{EVENT_TYPE_STATE, SOURCE_FLEET, StateEvent, Transition};
use crate::{ReconcileReport, Result, reconcile_once};

/// After a deploy: `deckies` (the deployed config, which is the host's whole desired
/// fleet) against the rows of `host`, with Docker's observation right after the deploy.
/// Exactly a reconcile pass, so a redeploy that changed nothing writes nothing.
///
/// # Errors
/// As [`reconcile_once`].
pub async fn mirror_deploy(
    repo: &dyn FleetRepo,
    host: &HostUuid,
    deckies: &[DeckyConfig],
    observed: Option<&RuntimeMap>,
    bus: Option<&dyn Bus>,
) -> Result<ReconcileReport> {
    reconcile_once(repo, host, deckies, observed, bus).await
}

/// After a single-decky teardown (which also removed it from the state file): deletes
/// its row and publishes `deleted`. Returns whether a row existed; a second call is a
/// no-op that publishes nothing.
///
/// # Errors
/// [`crate::Error::Store`].
pub async fn forget_decky(
    repo: &dyn FleetRepo,
    host: &HostUuid,
    name: &DeckyName,
    bus: Option<&dyn Bus>,
) -> Result<bool> {
    let existed = repo.delete_fleet_decky(host, name).await?;
    if existed {
        debug!(decky = %name, "Fleet row deleted after teardown");
        let event = StateEvent {
            host_uuid: host.clone(),
            name: name.clone(),
            state: FleetState::TornDown,
            transition: Transition::Deleted,
            source: SOURCE_FLEET.to_owned(),
            previous_state: None,
        };
        let topic = || Ok(topics::decky_state(host, name));
        publish_safely(bus, topic, EVENT_TYPE_STATE, &event).await;
    }
    Ok(existed)
}

/// After a full teardown (the state file is gone): the pass with an empty desired
/// fleet, which deletes every row of `host` and publishes one `deleted` per row.
///
/// # Errors
/// As [`reconcile_once`].
pub async fn forget_all(
    repo: &dyn FleetRepo,
    host: &HostUuid,
    bus: Option<&dyn Bus>,
) -> Result<ReconcileReport> {
    reconcile_once(repo, host, &[], None, bus).await
}
