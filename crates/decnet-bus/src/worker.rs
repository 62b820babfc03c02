//! Helpers every long-running worker uses: the health heartbeat and the control listener.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::bus::{Bus, publish_safely};
use crate::envelope::now_ts;
use crate::topic::{IdToken, Pattern};
use crate::topics::{TYPE_HEALTH, system_control, system_health};

/// Default heartbeat period of `system.<worker>.health`.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(30);

/// The payload of one health beat: `{worker, ts, …extra}` (`worker` and `ts` win over
/// keys of the same name in `extra`).
pub fn health_payload(worker: &IdToken, extra: Option<Map<String, Value>>) -> Map<String, Value> {
    let mut payload = extra.unwrap_or_default();
    payload.insert("worker".into(), Value::String(worker.to_string()));
    payload.insert("ts".into(), json!(now_ts()));
    payload
}

/// Publishes `system.<worker>.health` at once, then every `interval`, until `shutdown`.
///
/// `extra` adds fields to each beat; when it fails the failure is logged at DEBUG and the
/// beat is still sent without them. Without a bus it only waits for `shutdown`.
pub async fn health_heartbeat<F>(
    bus: Option<Arc<dyn Bus>>,
    worker: IdToken,
    interval: Duration,
    extra: F,
    shutdown: CancellationToken,
) where
    F: Fn() -> Result<Map<String, Value>, String>,
{
    let Some(bus) = bus else {
        shutdown.cancelled().await;
        return;
    };
    let topic = system_health(&worker);
    let mut tick = tokio::time::interval(interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let more = match extra() {
            Ok(m) => Some(m),
            Err(e) => {
                debug!(worker = %worker, error = %e, "Health extra fields failed; beating without them");
                None
            }
        };
        publish_safely(
            Some(bus.as_ref()),
            &topic,
            TYPE_HEALTH,
            health_payload(&worker, more),
        )
        .await;
    }
}

/// Listens on `system.<worker>.control` and cancels `shutdown` on `{"action": "stop"}`.
///
/// Other actions are ignored. Without a bus it waits for `shutdown`. When the subscription
/// cannot be made or ends (the bus closed), it logs a warning and returns; stopping
/// through the bus is then unavailable but the worker keeps running.
pub async fn control_listener(
    bus: Option<Arc<dyn Bus>>,
    worker: IdToken,
    shutdown: CancellationToken,
) {
    let Some(bus) = bus else {
        shutdown.cancelled().await;
        return;
    };
    let pattern = Pattern::from(system_control(&worker));
    let mut sub = match bus.subscribe(pattern).await {
        Ok(s) => s,
        Err(e) => {
            warn!(worker = %worker, error = %e, "Control listener disabled: cannot subscribe");
            return;
        }
    };
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            e = sub.recv() => e,
        };
        let Some(event) = event else {
            warn!(worker = %worker, "Control listener disabled: bus closed");
            return;
        };
        // Control events are rare: reading them into values costs nothing that matters.
        let payload = event.payload.to_map().unwrap_or_default();
        match payload.get("action").and_then(Value::as_str) {
            Some("stop") => {
                let by = payload.get("requested_by").and_then(Value::as_str);
                info!(worker = %worker, requested_by = ?by, "Stop requested over the bus");
                shutdown.cancel();
                return;
            }
            other => debug!(worker = %worker, action = ?other, "Control action ignored"),
        }
    }
}
