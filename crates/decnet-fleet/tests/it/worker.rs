//! The long-running loop: first pass at start, health with metrics, stop over the bus,
//! shutdown within 2 s, and errors that requeue instead of ending the loop.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use decnet_bus::{Bus, Envelope, MemoryHub, Pattern, Subscription, payload_object};
use decnet_core::{DecnetConfig, HostUuid};
use decnet_fleet::{Inputs, LoopOptions, Metrics, Reconciler};
use decnet_runtime::status::{DeckyState, RuntimeMap};
use decnet_store::FleetState;
use serde_json::{Value, json};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

use crate::support::*;

/// Inputs fixed by the test.
struct Fixed {
    desired: Mutex<Option<DecnetConfig>>,
    observed: Mutex<Option<RuntimeMap>>,
}

impl Fixed {
    fn new(desired: Option<DecnetConfig>, observed: Option<RuntimeMap>) -> Arc<Fixed> {
        Arc::new(Fixed {
            desired: Mutex::new(desired),
            observed: Mutex::new(observed),
        })
    }
}

#[async_trait]
impl Inputs for Fixed {
    async fn desired(&self) -> decnet_fleet::Result<Option<DecnetConfig>> {
        Ok(self.desired.lock().unwrap().clone())
    }

    async fn observe(&self, _config: &DecnetConfig) -> Option<RuntimeMap> {
        self.observed.lock().unwrap().clone()
    }
}

fn two_running() -> (DecnetConfig, RuntimeMap) {
    (
        fleet(vec![decky("a", 10, &["ssh"]), decky("b", 11, &["http"])]),
        observed(&[("a", DeckyState::Running), ("b", DeckyState::Running)]),
    )
}

/// A running loop and what the test needs to watch and stop it.
struct Running {
    reconciler: Arc<Reconciler>,
    token: CancellationToken,
    task: tokio::task::JoinHandle<Metrics>,
}

impl Running {
    fn start(reconciler: Reconciler, opts: LoopOptions) -> Running {
        let reconciler = Arc::new(reconciler);
        let token = CancellationToken::new();
        let task = tokio::spawn({
            let r = Arc::clone(&reconciler);
            let t = token.clone();
            async move { r.run(opts, t).await }
        });
        Running {
            reconciler,
            token,
            task,
        }
    }

    fn metrics(&self) -> Metrics {
        self.reconciler.metrics()
    }

    /// Cancels and checks the loop ends within 2 s.
    async fn stop(self) -> Metrics {
        let asked = Instant::now();
        self.token.cancel();
        let metrics = tokio::time::timeout(Duration::from_secs(2), self.task)
            .await
            .expect("the loop ends within 2 s of shutdown")
            .unwrap();
        assert!(asked.elapsed() < Duration::from_secs(2));
        metrics
    }
}

fn quick(interval: Duration) -> LoopOptions {
    LoopOptions {
        interval,
        backoff_min: Duration::from_millis(10),
        health_interval: Duration::from_millis(50),
        ..LoopOptions::default()
    }
}

async fn next(sub: &mut Subscription) -> Envelope {
    tokio::time::timeout(Duration::from_secs(5), sub.recv())
        .await
        .expect("an event within 5 s")
        .expect("subscription open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_pass_runs_at_start_and_health_carries_the_pass_metrics() {
    let hub = MemoryHub::new(1024);
    let bus: Arc<dyn Bus> = Arc::new(hub.connect("reconciler"));
    let watcher = hub.connect("watcher");
    let mut health = watcher
        .subscribe(Pattern::new("system.reconciler.health").unwrap())
        .await
        .unwrap();
    let mut states = watcher
        .subscribe(Pattern::new("decky.*.state").unwrap())
        .await
        .unwrap();
    let store = Store::new(Backend::Memory).await;
    let repo = Counting::new(store.repo.clone());
    let (config, seen) = two_running();
    let reconciler = Reconciler::new(
        repo.clone(),
        HostUuid::local(),
        Fixed::new(Some(config), Some(seen)),
        Some(bus),
    );
    // An hour between passes: the inserts can only come from the pass at start.
    let running = Running::start(reconciler, quick(Duration::from_secs(3600)));
    let mut inserted = vec![
        next(&mut states).await.topic.to_string(),
        next(&mut states).await.topic.to_string(),
    ];
    inserted.sort();
    assert_eq!(inserted, ["decky.local:a.state", "decky.local:b.state"]);

    let beat = loop {
        let e = next(&mut health).await;
        if e.payload
            .to_map()
            .unwrap()
            .get("passes")
            .and_then(Value::as_u64)
            == Some(1)
        {
            break e;
        }
    };
    assert_eq!(beat.event_type, "health");
    let p = Value::Object(beat.payload.to_map().unwrap());
    assert_eq!(p["worker"], "reconciler");
    assert_eq!(p["host_uuid"], "local");
    assert_eq!(p["pid"], json!(std::process::id()));
    assert_eq!(p["inserted"], 2);
    assert_eq!(p["failed_passes"], 0);
    assert_eq!(p["last_pass"]["report"]["inserted"], 2);
    assert_eq!(p["last_pass"]["report"]["observed"], true);
    assert!(p["last_pass"]["duration_ms"].as_f64().unwrap() >= 0.0);
    // The next pass is one jittered interval away.
    let next_in = p["next_pass_in_s"].as_f64().unwrap();
    assert!((3240.0..=3960.0).contains(&next_in), "{next_in}");

    let metrics = running.stop().await;
    assert_eq!(metrics.passes, 1);
    assert_eq!(repo.lists.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_on_the_control_topic_ends_the_loop() {
    let hub = MemoryHub::new(1024);
    let bus: Arc<dyn Bus> = Arc::new(hub.connect("reconciler"));
    let operator = hub.connect("api");
    let store = Store::new(Backend::Memory).await;
    let reconciler = Reconciler::new(
        store.repo.clone(),
        HostUuid::local(),
        Fixed::new(None, None),
        Some(bus),
    );
    let running = Running::start(reconciler, quick(Duration::from_secs(3600)));
    eventually("the control listener", || hub.subscriptions() == 1).await;
    let asked = Instant::now();
    let payload = payload_object(json!({"action": "stop", "requested_by": "test"})).unwrap();
    operator
        .publish(Envelope::new(
            decnet_bus::topics::system_control(
                &decnet_bus::IdToken::new("w", "reconciler").unwrap(),
            ),
            "control",
            payload,
        ))
        .await
        .unwrap();
    let metrics = tokio::time::timeout(Duration::from_secs(2), running.task)
        .await
        .expect("stopped within 2 s")
        .unwrap();
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert!(running.token.is_cancelled());
    assert_eq!(metrics.passes, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_loop_within_two_seconds_even_during_a_hung_pass() {
    let store = Store::new(Backend::Memory).await;
    let repo = Counting::new(store.repo.clone());
    repo.hang.store(true, Ordering::SeqCst);
    let reconciler = Reconciler::new(
        repo.clone(),
        HostUuid::local(),
        Fixed::new(None, None),
        None,
    );
    let running = Running::start(reconciler, quick(Duration::from_secs(30)));
    eventually("the pass to start", || {
        repo.lists.load(Ordering::SeqCst) == 1
    })
    .await;
    let metrics = running.stop().await;
    assert_eq!(
        metrics.passes, 0,
        "the hung pass was abandoned, not recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_pass_is_retried_with_backoff_and_the_loop_recovers() {
    let store = Store::new(Backend::Memory).await;
    let repo = Counting::new(store.repo.clone());
    repo.hang.store(true, Ordering::SeqCst);
    let (config, seen) = two_running();
    let reconciler = Reconciler::new(
        repo.clone(),
        HostUuid::local(),
        Fixed::new(Some(config), Some(seen)),
        None,
    );
    let opts = LoopOptions {
        pass_timeout: Duration::from_millis(30),
        ..quick(Duration::from_secs(3600))
    };
    let running = Running::start(reconciler, opts);
    eventually("three failed passes", || {
        running.metrics().failed_passes >= 3
    })
    .await;
    let m = running.metrics();
    assert!(m.consecutive_failures >= 3);
    let error = m.last_pass.unwrap().error.unwrap();
    assert!(error.contains("timed out"), "{error}");
    assert!(
        m.next_pass_in_s < 1.0,
        "backoff, not the hour-long interval"
    );
    repo.hang.store(false, Ordering::SeqCst);
    eventually("a good pass", || {
        running.metrics().consecutive_failures == 0
    })
    .await;
    assert_eq!(
        states(store.repo.as_ref(), &HostUuid::local()).await,
        [
            ("a".into(), FleetState::Running),
            ("b".into(), FleetState::Running)
        ]
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_row_fails_passes_without_ending_the_loop_until_it_is_repaired() {
    let store = Store::new(Backend::Sqlite).await;
    let (config, seen) = two_running();
    let inputs = Fixed::new(Some(config), Some(seen));
    let reconciler = Reconciler::new(store.repo.clone(), HostUuid::local(), inputs, None);
    reconciler.pass().await.unwrap();

    // One stored config becomes unreadable (written like any store write, which moves
    // updated_at): reading the host's rows in full now fails.
    let url = format!("sqlite://{}", store.path.as_ref().unwrap().display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "UPDATE fleet_deckies SET decky_config = '{\"name\": ', updated_at = updated_at + 1 \
         WHERE name = 'b'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    assert!(reconciler.pass().await.is_err());

    let running = Running::start(reconciler, quick(Duration::from_secs(3600)));
    eventually("passes to keep failing", || {
        running.metrics().failed_passes >= 3
    })
    .await;
    let error = running.metrics().last_pass.unwrap().error.unwrap();
    assert!(error.contains("corrupt"), "{error}");

    // The operator removes the bad row; the loop, still running, converges again.
    sqlx::query("DELETE FROM fleet_deckies WHERE name = 'b'")
        .execute(&mut conn)
        .await
        .unwrap();
    eventually("a good pass", || {
        running.metrics().consecutive_failures == 0
    })
    .await;
    let m = running.stop().await;
    assert_eq!(m.last_pass.unwrap().report.unwrap().inserted, 1);
    assert_eq!(
        states(store.repo.as_ref(), &HostUuid::local()).await,
        [
            ("a".into(), FleetState::Running),
            ("b".into(), FleetState::Running)
        ]
    );
    conn.close().await.unwrap();
}

#[tokio::test]
async fn an_unreadable_state_file_fails_the_pass_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decnet-state.json");
    std::fs::write(&path, "{ not json").unwrap();
    let store = Store::new(Backend::Memory).await;
    let repo = Counting::new(store.repo.clone());
    let inputs = Arc::new(decnet_fleet::LiveInputs::new(
        &path,
        decnet_runtime::spec::Project::default(),
        Arc::new(|| {
            Box::pin(async {
                Err(decnet_runtime::EngineError::new(
                    decnet_runtime::ErrorKind::Unreachable,
                    "connect",
                    "test",
                ))
            })
        }),
    ));
    // A row the state file would want deleted if it were read as empty.
    let reconciler = Reconciler::new(repo.clone(), HostUuid::local(), inputs, None);
    let mut d = decky("keep", 10, &["ssh"]);
    d.host_uuid = None;
    store
        .repo
        .upsert_fleet_decky(&decnet_store::FleetUpsert::from_config(
            &d,
            FleetState::Running,
        ))
        .await
        .unwrap();
    let err = reconciler.pass().await.unwrap_err();
    assert!(matches!(err, decnet_fleet::Error::State(_)), "{err:?}");
    assert_eq!(repo.writes(), 0);
    assert_eq!(
        states(store.repo.as_ref(), &HostUuid::local()).await.len(),
        1
    );

    // A missing state file is an empty desired fleet: the row goes.
    std::fs::remove_file(&path).unwrap();
    let report = reconciler.pass().await.unwrap();
    assert_eq!(report.deleted, 1);
}

#[tokio::test]
async fn quiet_passes_read_the_light_listing_and_a_change_reads_in_full() {
    for backend in BACKENDS {
        let store = Store::new(backend).await;
        let repo = Counting::new(store.repo.clone());
        let (config, seen) = two_running();
        let inputs = Fixed::new(Some(config.clone()), Some(seen));
        let reconciler = Reconciler::new(repo.clone(), HostUuid::local(), inputs.clone(), None);
        assert_eq!(reconciler.pass().await.unwrap().inserted, 2);
        // Its own inserts moved updated_at: the next pass reads in full once, then quiet
        // passes use the light listing only.
        assert!(reconciler.pass().await.unwrap().is_quiet());
        let full = repo.lists.load(Ordering::SeqCst);
        let writes = repo.writes();
        for _ in 0..3 {
            assert!(reconciler.pass().await.unwrap().is_quiet());
        }
        assert_eq!(
            repo.lists.load(Ordering::SeqCst),
            full,
            "{backend:?}: no full read"
        );
        assert_eq!(repo.writes(), writes);
        assert!(repo.summaries.load(Ordering::SeqCst) >= 3);

        // Someone rewrites b's config behind the reconciler's back (through the store):
        // the light listing shows updated_at moved, the pass reads in full and puts the
        // state file's config back.
        let mut other = decky("b", 77, &["redis"]);
        other.host_uuid = None;
        store
            .repo
            .upsert_fleet_decky(&decnet_store::FleetUpsert::from_config(
                &other,
                FleetState::Running,
            ))
            .await
            .unwrap();
        let report = reconciler.pass().await.unwrap();
        assert_eq!(report.config_updated, 1, "{backend:?}");
        assert_eq!(repo.lists.load(Ordering::SeqCst), full + 1);
        let row = store
            .repo
            .get_fleet_decky(&HostUuid::local(), &name("b"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.decky_config.as_ref(), Some(&config.deckies[1]));

        // The state file changes a config: the cache is of rows, not of the state file,
        // so the drift is seen on the very next pass.
        let changed = fleet(vec![
            decky("a", 10, &["ssh", "http"]),
            decky("b", 11, &["http"]),
        ]);
        *inputs.desired.lock().unwrap() = Some(changed);
        reconciler.pass().await.unwrap();
        let report = reconciler.pass().await.unwrap();
        assert!(report.is_quiet(), "{report:?}");
        let row = store
            .repo
            .get_fleet_decky(&HostUuid::local(), &name("a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.services, ["ssh", "http"]);
    }
}

#[tokio::test]
async fn an_edit_behind_the_stores_back_is_seen_at_the_next_full_read() {
    let store = Store::new(Backend::Sqlite).await;
    let (config, seen) = two_running();
    let cached = Reconciler::new(
        store.repo.clone(),
        HostUuid::local(),
        Fixed::new(Some(config.clone()), Some(seen.clone())),
        None,
    );
    let uncached = Reconciler::new(
        store.repo.clone(),
        HostUuid::local(),
        Fixed::new(Some(config), Some(seen)),
        None,
    )
    .with_full_list_period(Duration::ZERO);
    cached.pass().await.unwrap();
    cached.pass().await.unwrap();
    uncached.pass().await.unwrap();
    let url = format!("sqlite://{}", store.path.as_ref().unwrap().display());
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    // Raw SQL that leaves updated_at alone: only a full read notices.
    sqlx::query("UPDATE fleet_deckies SET decky_config = 'garbage' WHERE name = 'a'")
        .execute(&mut conn)
        .await
        .unwrap();
    assert!(cached.pass().await.unwrap().is_quiet());
    let err = uncached.pass().await.unwrap_err();
    assert!(
        matches!(
            err,
            decnet_fleet::Error::Store(decnet_store::Error::Corrupt { .. })
        ),
        "{err:?}"
    );
    conn.close().await.unwrap();
}
