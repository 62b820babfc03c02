//! The long-running reconciler (`decnet reconcile`): a pass at start, then one per
//! jittered interval; errors requeue with backoff and never end the loop.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use decnet_bus::worker::{DEFAULT_HEALTH_INTERVAL, control_listener, health_heartbeat};
use decnet_bus::{Bus, IdToken, now_ts, payload_object};
use decnet_core::HostUuid;
use decnet_store::FleetRepo;
use rand::Rng;
use serde::Serialize;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::reconcile::chain;
use crate::{Error, Inputs, ReconcileReport, Result, RowCache, reconcile_rows};

/// The worker name: `system.reconciler.health`, `system.reconciler.control`.
pub const WORKER_NAME: &str = "reconciler";

/// How the loop runs.
#[derive(Debug, Clone)]
pub struct LoopOptions {
    /// Time between passes (30 s).
    pub interval: Duration,
    /// Each wait is the interval times a random factor in `1 ± jitter` (0.1), so the
    /// reconcilers of many hosts do not hit a shared database in step.
    pub jitter: f64,
    /// First retry delay after a failed pass (1 s); doubles per consecutive failure up
    /// to the interval.
    pub backoff_min: Duration,
    /// Longest a pass may take before it counts as failed (120 s).
    pub pass_timeout: Duration,
    /// How long a pass in flight may finish after shutdown was requested (1 s).
    pub shutdown_grace: Duration,
    /// Period of `system.reconciler.health` (30 s).
    pub health_interval: Duration,
    /// Tell systemd `READY=1` once the loop runs (harmless without `NOTIFY_SOCKET`).
    pub notify_systemd: bool,
}

impl Default for LoopOptions {
    fn default() -> Self {
        LoopOptions {
            interval: Duration::from_secs(30),
            jitter: 0.1,
            backoff_min: Duration::from_secs(1),
            pass_timeout: Duration::from_secs(120),
            shutdown_grace: Duration::from_secs(1),
            health_interval: DEFAULT_HEALTH_INTERVAL,
            notify_systemd: false,
        }
    }
}

/// The last pass, as exported in the health payload.
#[derive(Debug, Clone, Serialize)]
pub struct PassSummary {
    /// When it started (epoch seconds).
    pub at: f64,
    /// How long it took.
    pub duration_ms: f64,
    /// Its report, when it ran to the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<ReconcileReport>,
    /// Why it failed, when it did (a whole-pass error, or the first failed write).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Pass metrics of one reconciler process (FL-7), exported in every health beat.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Metrics {
    /// Passes run.
    pub passes: u64,
    /// Passes that failed as a whole or had a failed write.
    pub failed_passes: u64,
    /// Failed passes in a row (drives the backoff).
    pub consecutive_failures: u32,
    /// Rows inserted since start.
    pub inserted: u64,
    /// Rows deleted since start.
    pub deleted: u64,
    /// State changes since start.
    pub state_updated: u64,
    /// Config rewrites since start.
    pub config_updated: u64,
    /// Events handed to the bus since start.
    pub published: u64,
    /// Events the bus did not take since start.
    pub publish_failed: u64,
    /// Passes that could not observe Docker.
    pub unobserved_passes: u64,
    /// The last pass.
    pub last_pass: Option<PassSummary>,
    /// Seconds until the next pass was scheduled, when the last pass ended.
    pub next_pass_in_s: f64,
}

/// `min(backoff_min · 2^(failures-1), cap)`: the requeue delay after `failures`
/// consecutive failed passes (the error policy).
pub fn backoff(failures: u32, backoff_min: Duration, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(30));
    backoff_min.saturating_mul(factor).min(cap.max(backoff_min))
}

/// `interval` times a random factor in `1 ± jitter` (`jitter` clamped to `0..=0.5`).
pub fn jittered(interval: Duration, jitter: f64, rng: &mut impl Rng) -> Duration {
    let j = if jitter.is_finite() {
        jitter.clamp(0.0, 0.5)
    } else {
        0.0
    };
    if j == 0.0 {
        return interval;
    }
    interval.mul_f64(1.0 + rng.gen_range(-j..=j))
}

/// The reconciler of one host: its store, inputs and (optional) bus.
pub struct Reconciler {
    repo: Arc<dyn FleetRepo>,
    host: HostUuid,
    inputs: Arc<dyn Inputs>,
    bus: Option<Arc<dyn Bus>>,
    metrics: Arc<Mutex<Metrics>>,
    rows: tokio::sync::Mutex<RowCache>,
}

fn lock(m: &Mutex<Metrics>) -> MutexGuard<'_, Metrics> {
    // Metrics are plain counters: a panic elsewhere leaves them usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[allow(clippy::expect_used)]
fn worker_token() -> IdToken {
    // A constant that satisfies the token rules (checked by a unit test).
    IdToken::new("worker", WORKER_NAME).expect("the worker name is a valid topic token")
}

impl Reconciler {
    /// A reconciler for `host` (resolved once by the caller: `local`, or the worker's
    /// own uuid).
    pub fn new(
        repo: Arc<dyn FleetRepo>,
        host: HostUuid,
        inputs: Arc<dyn Inputs>,
        bus: Option<Arc<dyn Bus>>,
    ) -> Self {
        Reconciler {
            rows: tokio::sync::Mutex::new(RowCache::new(host.clone())),
            repo,
            host,
            inputs,
            bus,
            metrics: Arc::new(Mutex::new(Metrics::default())),
        }
    }

    /// The same reconciler with another period between full reads of the rows (see
    /// [`RowCache`]; zero reads them in full every pass).
    #[must_use]
    pub fn with_full_list_period(self, period: std::time::Duration) -> Self {
        let host = self.host.clone();
        Reconciler {
            rows: tokio::sync::Mutex::new(RowCache::new(host).with_full_period(period)),
            ..self
        }
    }

    /// The host scope.
    pub fn host(&self) -> &HostUuid {
        &self.host
    }

    /// A copy of the metrics so far.
    pub fn metrics(&self) -> Metrics {
        lock(&self.metrics).clone()
    }

    /// One pass. The host's rows are read *before* the state file, so a deploy or
    /// teardown that writes the state file and then mirrors it into the rows can never be
    /// undone by this pass (FL-1); then Docker is observed and [`reconcile_rows`] runs.
    /// The rows come from the [`RowCache`]: one light query when nothing changed.
    ///
    /// # Errors
    /// [`Error::Store`] (reading the rows), [`Error::State`] (an unreadable state file).
    /// Nothing was written then.
    pub async fn pass(&self) -> Result<ReconcileReport> {
        let mut cache = self.rows.lock().await;
        let rows = cache.refresh(self.repo.as_ref()).await?;
        let desired = self.inputs.desired().await?;
        let (deckies, observed) = match &desired {
            Some(config) => (config.deckies.as_slice(), self.inputs.observe(config).await),
            None => (&[][..], None),
        };
        Ok(reconcile_rows(
            self.repo.as_ref(),
            &self.host,
            rows,
            deckies,
            observed.as_ref(),
            self.bus.as_deref(),
        )
        .await)
    }

    /// Full reads of the rows so far (the first pass, and passes after a change).
    pub async fn full_lists(&self) -> u64 {
        self.rows.lock().await.full_lists()
    }

    /// Records a pass in the metrics and returns the delay before the next one (the
    /// interval, jittered; or the backoff after a failure).
    fn record(
        &self,
        at: f64,
        took: Duration,
        outcome: Result<ReconcileReport>,
        opts: &LoopOptions,
    ) -> Duration {
        let mut m = lock(&self.metrics);
        m.passes += 1;
        let error = match &outcome {
            Ok(r) => {
                m.inserted += r.inserted;
                m.deleted += r.deleted;
                m.state_updated += r.state_updated;
                m.config_updated += r.config_updated;
                m.published += r.published;
                m.publish_failed += r.publish_failed;
                if !r.observed {
                    m.unobserved_passes += 1;
                }
                if r.changes() > 0 || r.error_count > 0 {
                    info!(
                        inserted = r.inserted,
                        deleted = r.deleted,
                        state_updated = r.state_updated,
                        config_updated = r.config_updated,
                        failed_writes = r.error_count,
                        "Reconcile pass changed the fleet"
                    );
                }
                r.errors
                    .first()
                    .map(|e| format!("{} {}: {}", e.op, e.name, e.message))
            }
            Err(e) => {
                let text = chain(e);
                error!(error = %text, "Reconcile pass failed");
                Some(text)
            }
        };
        let delay = if error.is_some() {
            m.failed_passes += 1;
            m.consecutive_failures = m.consecutive_failures.saturating_add(1);
            backoff(m.consecutive_failures, opts.backoff_min, opts.interval)
        } else {
            m.consecutive_failures = 0;
            jittered(opts.interval, opts.jitter, &mut rand::thread_rng())
        };
        m.last_pass = Some(PassSummary {
            at,
            duration_ms: took.as_secs_f64() * 1000.0,
            report: outcome.ok(),
            error,
        });
        m.next_pass_in_s = delay.as_secs_f64();
        delay
    }

    /// The health payload's extra fields: host, pid and the metrics.
    fn health_extra(
        metrics: &Mutex<Metrics>,
        host: &HostUuid,
    ) -> Result<Map<String, Value>, String> {
        let mut map = payload_object(&*lock(metrics)).map_err(|e| e.to_string())?;
        map.insert("host_uuid".into(), Value::String(host.to_string()));
        map.insert("pid".into(), Value::from(std::process::id()));
        Ok(map)
    }

    /// Runs until `shutdown` is cancelled (SIGTERM, or `{"action": "stop"}` on
    /// `system.reconciler.control`): a pass at once, then one per jittered interval;
    /// a failed pass is retried after [`backoff`]. Health beats go to
    /// `system.reconciler.health` with the [`Metrics`]. A pass in flight at shutdown gets
    /// [`LoopOptions::shutdown_grace`] to finish, then is dropped (each write is atomic;
    /// the next start converges). Returns the final metrics; the caller closes the bus.
    pub async fn run(&self, opts: LoopOptions, shutdown: CancellationToken) -> Metrics {
        let worker = worker_token();
        let heartbeat = {
            let metrics = Arc::clone(&self.metrics);
            let host = self.host.clone();
            tokio::spawn(health_heartbeat(
                self.bus.clone(),
                worker.clone(),
                opts.health_interval,
                move || Self::health_extra(&metrics, &host),
                shutdown.clone(),
            ))
        };
        let control = tokio::spawn(control_listener(self.bus.clone(), worker, shutdown.clone()));
        if opts.notify_systemd
            && let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready])
        {
            warn!(error = %e, "Cannot notify systemd of readiness");
        }
        info!(host = %self.host, interval = ?opts.interval, "Reconciler started");

        while !shutdown.is_cancelled() {
            let at = now_ts();
            let started = Instant::now();
            let pass = tokio::time::timeout(opts.pass_timeout, self.pass());
            tokio::pin!(pass);
            let finished = tokio::select! {
                r = &mut pass => Some(r),
                () = shutdown.cancelled() => {
                    tokio::time::timeout(opts.shutdown_grace, &mut pass).await.ok()
                }
            };
            let Some(finished) = finished else {
                warn!("Reconcile pass abandoned at shutdown");
                break;
            };
            let outcome = finished.unwrap_or(Err(Error::Timeout(opts.pass_timeout)));
            let delay = self.record(at, started.elapsed(), outcome, &opts);
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(delay) => {}
            }
        }

        if opts.notify_systemd {
            let _ = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]);
        }
        shutdown.cancel();
        for task in [heartbeat, control] {
            // Both end on the token; a beat stuck in a slow publish is cut short.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_millis(500), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        info!("Reconciler stopped");
        self.metrics()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_name_is_a_token() {
        assert_eq!(worker_token().as_str(), "reconciler");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let min = Duration::from_secs(1);
        let cap = Duration::from_secs(30);
        let got: Vec<u64> = (1..=7).map(|n| backoff(n, min, cap).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(u32::MAX, min, cap), cap);
        // A cap below the minimum never makes the delay zero.
        assert_eq!(backoff(3, min, Duration::ZERO), min);
    }

    #[test]
    fn jitter_stays_in_its_band() {
        let mut rng = rand::thread_rng();
        let base = Duration::from_secs(30);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..1000 {
            let d = jittered(base, 0.1, &mut rng);
            assert!(
                d >= Duration::from_secs(27) && d <= Duration::from_secs(33),
                "{d:?}"
            );
            seen.insert(d.as_millis() / 500);
        }
        // Spread over the band, not a constant.
        assert!(seen.len() >= 8, "{seen:?}");
        assert_eq!(jittered(base, 0.0, &mut rng), base);
        assert_eq!(jittered(base, f64::NAN, &mut rng), base);
        let wide = jittered(base, 7.0, &mut rng);
        assert!(wide >= Duration::from_secs(15) && wide <= Duration::from_secs(45));
    }
}
