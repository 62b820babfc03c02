//! `reconcile_once` against the memory store and SQLite. Every case runs the pass a
//! second time and checks that it writes nothing and publishes nothing.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use decnet_bus::{Bus, Envelope};
use decnet_core::{DeckyConfig, HostUuid};
use decnet_fleet::{ReconcileReport, StateEvent, Transition, fleet_state, reconcile_once};
use decnet_runtime::status::{DeckyState, RuntimeMap};
use decnet_store::{FleetRepo, FleetState, FleetUpsert, HostScope, Timestamp};
use serde_json::{Value, json};

use crate::support::*;

/// One store (wrapped in the counting wrapper), a bus tap and a host scope.
struct Case {
    store: Store,
    repo: Arc<Counting>,
    tap: Tap,
    host: HostUuid,
}

impl Case {
    async fn new(backend: Backend) -> Case {
        Case::on(backend, HostUuid::local()).await
    }

    async fn on(backend: Backend, host: HostUuid) -> Case {
        let store = Store::new(backend).await;
        let repo = Counting::new(store.repo.clone());
        Case {
            store,
            repo,
            tap: Tap::new().await,
            host,
        }
    }

    fn label(&self) -> String {
        format!("{:?}", self.store.backend)
    }

    async fn pass(
        &mut self,
        desired: &[DeckyConfig],
        observed: Option<&RuntimeMap>,
    ) -> (ReconcileReport, Vec<Envelope>) {
        let report = reconcile_once(
            self.repo.as_ref(),
            &self.host,
            desired,
            observed,
            self.tap.bus(),
        )
        .await
        .unwrap();
        (report, self.tap.drain())
    }

    /// A pass, then the same pass again, which must be a no-op.
    async fn converge(
        &mut self,
        desired: &[DeckyConfig],
        observed: Option<&RuntimeMap>,
    ) -> (ReconcileReport, Vec<Envelope>) {
        let first = self.pass(desired, observed).await;
        self.repo.take_log();
        let writes = self.repo.writes();
        let (again, events) = self.pass(desired, observed).await;
        assert!(
            again.is_quiet(),
            "{}: second pass not quiet: {again:?}",
            self.label()
        );
        assert_eq!(
            self.repo.writes(),
            writes,
            "{}: second pass wrote {:?}",
            self.label(),
            self.repo.take_log()
        );
        assert!(
            events.is_empty(),
            "{}: second pass published {events:?}",
            self.label()
        );
        first
    }

    async fn states(&self) -> Vec<(String, FleetState)> {
        states(self.store.repo.as_ref(), &self.host).await
    }
}

fn event(e: &Envelope) -> StateEvent {
    e.payload_as().unwrap()
}

fn by_name(events: &[Envelope]) -> Vec<(String, Transition)> {
    let mut out: Vec<(String, Transition)> = events
        .iter()
        .map(|e| {
            let ev = event(e);
            (ev.name.to_string(), ev.transition)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn st(s: &str) -> FleetState {
    FleetState::parse(s).unwrap()
}

#[tokio::test]
async fn a_new_fleet_is_inserted_with_dockers_states_and_announced() {
    for backend in BACKENDS {
        let mut c = Case::new(backend).await;
        let desired = [
            decky("a", 10, &["ssh"]),
            decky("b", 11, &["http", "ssh"]),
            decky("c", 12, &["redis"]),
        ];
        // `c` is not in the map (not observed): inserted as unknown, like an unreachable Docker.
        let seen = observed(&[("a", DeckyState::Running), ("b", DeckyState::Degraded)]);
        let (report, events) = c.converge(&desired, Some(&seen)).await;
        assert_eq!(
            (report.inserted, report.deleted, report.state_updated),
            (3, 0, 0)
        );
        assert_eq!(report.published, 3);
        assert!(report.observed);
        assert_eq!(
            c.states().await,
            [
                ("a".into(), st("running")),
                ("b".into(), st("degraded")),
                ("c".into(), st("unknown"))
            ]
        );
        assert_eq!(events.len(), 3);
        let a = events
            .iter()
            .find(|e| e.topic.as_str() == "decky.local:a.state")
            .unwrap();
        assert_eq!(a.event_type, "state");
        // The exact payload: no previous_state on an insert.
        assert_eq!(
            Value::Object(a.payload.to_map().unwrap()),
            json!({"host_uuid": "local", "name": "a", "state": "running",
                   "transition": "inserted", "source": "fleet"})
        );
        // The full config is stored, so the next pass sees no drift.
        let row = c
            .store
            .repo
            .get_fleet_decky(&c.host, &name("b"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.decky_config.as_ref(), Some(&desired[1]));
        assert_eq!(row.services, ["http", "ssh"]);
        assert_eq!(row.decky_ip, Some("10.9.0.11".parse().unwrap()));
    }
}

#[tokio::test]
async fn each_transition_publishes_exactly_one_event_with_the_right_payload() {
    for backend in BACKENDS {
        let mut c = Case::new(backend).await;
        let running = observed(&[
            ("d-flip", DeckyState::Running),
            ("d-keep", DeckyState::Running),
            ("ghost", DeckyState::Running),
        ]);
        c.converge(
            &[
                decky("d-flip", 10, &["ssh"]),
                decky("d-keep", 11, &["ssh"]),
                decky("ghost", 12, &["ssh"]),
            ],
            Some(&running),
        )
        .await;

        // ghost leaves the state file, d-new joins, d-flip's containers exited.
        let desired = [
            decky("d-flip", 10, &["ssh"]),
            decky("d-keep", 11, &["ssh"]),
            decky("d-new", 13, &["http"]),
        ];
        let seen = observed(&[
            ("d-flip", DeckyState::Failed),
            ("d-keep", DeckyState::Running),
            ("d-new", DeckyState::Running),
        ]);
        let (report, events) = c.converge(&desired, Some(&seen)).await;
        assert_eq!(
            (
                report.inserted,
                report.deleted,
                report.state_updated,
                report.config_updated
            ),
            (1, 1, 1, 0),
            "{}",
            c.label()
        );
        assert_eq!(
            by_name(&events),
            [
                ("d-flip".into(), Transition::StateChanged),
                ("d-new".into(), Transition::Inserted),
                ("ghost".into(), Transition::Deleted),
            ]
        );
        let topics: Vec<&str> = events.iter().map(|e| e.topic.as_str()).collect();
        for t in [
            "decky.local:d-flip.state",
            "decky.local:d-new.state",
            "decky.local:ghost.state",
        ] {
            assert!(topics.contains(&t), "{topics:?}");
        }
        for e in &events {
            let payload = Value::Object(e.payload.to_map().unwrap());
            match event(e).transition {
                Transition::StateChanged => assert_eq!(
                    payload,
                    json!({"host_uuid": "local", "name": "d-flip", "state": "failed",
                           "transition": "state_changed", "source": "fleet",
                           "previous_state": "running"})
                ),
                Transition::Deleted => assert_eq!(
                    payload,
                    json!({"host_uuid": "local", "name": "ghost", "state": "torn_down",
                           "transition": "deleted", "source": "fleet"})
                ),
                Transition::Inserted => assert_eq!(
                    payload,
                    json!({"host_uuid": "local", "name": "d-new", "state": "running",
                           "transition": "inserted", "source": "fleet"})
                ),
            }
        }
        assert_eq!(
            c.states().await,
            [
                ("d-flip".into(), st("failed")),
                ("d-keep".into(), st("running")),
                ("d-new".into(), st("running"))
            ]
        );
    }
}

#[tokio::test]
async fn a_quiet_tick_is_one_query_no_write_no_event() {
    for backend in BACKENDS {
        let mut c = Case::new(backend).await;
        let desired: Vec<DeckyConfig> = (0..20)
            .map(|i| decky(&format!("q-{i:02}"), 10 + i, &["ssh", "http"]))
            .collect();
        let names: Vec<String> = desired.iter().map(|d| d.name.to_string()).collect();
        let pairs: Vec<(&str, DeckyState)> = names
            .iter()
            .map(|n| (n.as_str(), DeckyState::Running))
            .collect();
        let seen = observed(&pairs);
        c.converge(&desired, Some(&seen)).await;
        let (lists, reads, writes) = (
            c.repo.lists.load(Ordering::SeqCst),
            c.repo.reads.load(Ordering::SeqCst),
            c.repo.writes(),
        );
        for _ in 0..3 {
            let (report, events) = c.pass(&desired, Some(&seen)).await;
            assert!(report.is_quiet(), "{report:?}");
            assert_eq!(report.stored, 20);
            assert!(events.is_empty());
        }
        assert_eq!(
            c.repo.lists.load(Ordering::SeqCst),
            lists + 3,
            "one list per pass"
        );
        assert_eq!(
            c.repo.reads.load(Ordering::SeqCst),
            reads,
            "no per-decky read"
        );
        assert_eq!(c.repo.writes(), writes, "{:?}", c.repo.take_log());
    }
}

#[tokio::test]
async fn docker_unknown_changes_no_state_inserts_unknown_and_still_deletes() {
    for backend in BACKENDS {
        let mut c = Case::new(backend).await;
        c.converge(
            &[decky("a", 10, &["ssh"]), decky("b", 11, &["ssh"])],
            Some(&observed(&[
                ("a", DeckyState::Running),
                ("b", DeckyState::Degraded),
            ])),
        )
        .await;
        let before = c
            .store
            .repo
            .get_fleet_decky(&c.host, &name("a"))
            .await
            .unwrap()
            .unwrap();

        // Docker unreachable; the state file dropped b and added n.
        let desired = [decky("a", 10, &["ssh"]), decky("n", 12, &["ssh"])];
        let (report, events) = c.converge(&desired, None).await;
        assert!(!report.observed);
        assert_eq!(
            (
                report.inserted,
                report.deleted,
                report.state_updated,
                report.stamped
            ),
            (1, 1, 0, 0)
        );
        assert_eq!(
            by_name(&events),
            [
                ("b".into(), Transition::Deleted),
                ("n".into(), Transition::Inserted)
            ]
        );
        // FL-7: a row inserted while Docker is unknown is `unknown`, never `running`.
        assert_eq!(
            c.states().await,
            [("a".into(), st("running")), ("n".into(), st("unknown"))]
        );
        let after = c
            .store
            .repo
            .get_fleet_decky(&c.host, &name("a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            after, before,
            "a's row is untouched while Docker is unknown"
        );

        // Docker is back: n's real state replaces unknown, with the previous state.
        let (report, events) = c
            .converge(
                &desired,
                Some(&observed(&[
                    ("a", DeckyState::Running),
                    ("n", DeckyState::TornDown),
                ])),
            )
            .await;
        assert_eq!(report.state_updated, 1);
        assert_eq!(event(&events[0]).previous_state, Some(FleetState::Unknown));
        assert_eq!(event(&events[0]).state, FleetState::TornDown);
    }
}

#[tokio::test]
async fn rows_of_other_hosts_are_never_touched() {
    for backend in BACKENDS {
        let mut c = Case::new(backend).await;
        let worker = host("9f1c2a7e-worker");
        // The worker's rows, including one with a name the local fleet also uses.
        for (n, octet) in [("a", 20), ("z", 21)] {
            let mut d = decky(n, octet, &["ssh"]);
            d.host_uuid = Some(worker.clone());
            c.store
                .repo
                .upsert_fleet_decky(&FleetUpsert::from_config(&d, FleetState::Degraded))
                .await
                .unwrap();
        }
        let theirs = c
            .store
            .repo
            .list_fleet(&HostScope::Host(worker.clone()))
            .await
            .unwrap();

        // The state file also lists a decky pinned to the worker: not this host's.
        let mut pinned = decky("p", 30, &["ssh"]);
        pinned.host_uuid = Some(worker.clone());
        let desired = [decky("a", 10, &["ssh"]), decky("b", 11, &["ssh"]), pinned];
        let seen = observed(&[
            ("a", DeckyState::Running),
            ("b", DeckyState::Running),
            ("p", DeckyState::Running),
        ]);
        let (report, events) = c.converge(&desired, Some(&seen)).await;
        assert_eq!((report.inserted, report.foreign), (2, 1));
        assert_eq!(events.len(), 2);
        // Then the local fleet goes away entirely: only local rows are deleted.
        let (report, events) = c.converge(&[], Some(&seen)).await;
        assert_eq!(report.deleted, 2);
        assert!(
            events
                .iter()
                .all(|e| e.topic.as_str().starts_with("decky.local:"))
        );
        assert_eq!(
            c.store
                .repo
                .list_fleet(&HostScope::Host(worker.clone()))
                .await
                .unwrap(),
            theirs,
            "{}: the worker's rows changed",
            c.label()
        );
        assert!(c.states().await.is_empty());
    }
}

#[tokio::test]
async fn a_worker_lists_writes_and_publishes_under_its_own_uuid() {
    // FL-3: the reference listed `local` but inserted under the decky's host, so a
    // converged worker re-inserted and deleted its whole fleet every pass.
    for backend in BACKENDS {
        let worker = host("5b3e0c1d-8a");
        let mut c = Case::on(backend, worker.clone()).await;
        let desired: Vec<DeckyConfig> = ["w-1", "w-2"]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let mut d = decky(n, 40 + u8::try_from(i).unwrap(), &["ssh"]);
                d.host_uuid = Some(worker.clone());
                d
            })
            .collect();
        let seen = observed(&[("w-1", DeckyState::Running), ("w-2", DeckyState::Failed)]);
        let (report, events) = c.converge(&desired, Some(&seen)).await;
        assert_eq!((report.inserted, report.foreign), (2, 0));
        let mut topics: Vec<&str> = events.iter().map(|e| e.topic.as_str()).collect();
        topics.sort_unstable();
        assert_eq!(
            topics,
            ["decky.5b3e0c1d-8a:w-1.state", "decky.5b3e0c1d-8a:w-2.state"]
        );
        assert_eq!(event(&events[0]).host_uuid, worker);
        assert!(
            states(c.store.repo.as_ref(), &HostUuid::local())
                .await
                .is_empty()
        );
        assert_eq!(c.states().await.len(), 2);
    }
}

#[tokio::test]
async fn the_previous_state_is_the_one_the_store_held_at_the_write() {
    for backend in BACKENDS {
        let mut c = Case::new(backend).await;
        c.converge(
            &[decky("a", 10, &["ssh"])],
            Some(&observed(&[("a", DeckyState::Running)])),
        )
        .await;
        // Between the pass's list (running) and its update, another writer sets degraded.
        *c.repo.race_state.lock().unwrap() = Some(FleetState::Degraded);
        let (report, events) = c
            .pass(
                &[decky("a", 10, &["ssh"])],
                Some(&observed(&[("a", DeckyState::Failed)])),
            )
            .await;
        *c.repo.race_state.lock().unwrap() = None;
        assert_eq!(report.state_updated, 1);
        assert_eq!(events.len(), 1);
        let ev = event(&events[0]);
        assert_eq!(
            (ev.previous_state, ev.state),
            (Some(FleetState::Degraded), FleetState::Failed),
            "{}: the listed snapshot (running) is stale",
            c.label()
        );
        // And converged.
        c.converge(
            &[decky("a", 10, &["ssh"])],
            Some(&observed(&[("a", DeckyState::Failed)])),
        )
        .await;

        // A writer that already set the target state: no transition of ours to announce.
        c.converge(
            &[decky("a", 10, &["ssh"])],
            Some(&observed(&[("a", DeckyState::Running)])),
        )
        .await;
        *c.repo.race_state.lock().unwrap() = Some(FleetState::Degraded);
        let (report, events) = c
            .pass(
                &[decky("a", 10, &["ssh"])],
                Some(&observed(&[("a", DeckyState::Degraded)])),
            )
            .await;
        *c.repo.race_state.lock().unwrap() = None;
        assert_eq!(report.state_updated, 0);
        assert!(events.is_empty());
    }
}

#[tokio::test]
async fn a_store_that_mutates_rows_in_place_still_gives_the_true_previous_state() {
    let store = InPlace::new();
    let repo: Arc<dyn FleetRepo> = store.clone();
    let local = HostUuid::local();
    let mut tap = Tap::new().await;
    let desired = [decky("a", 10, &["ssh"]), decky("b", 11, &["ssh"])];
    let running = observed(&[("a", DeckyState::Running), ("b", DeckyState::Running)]);
    reconcile_once(repo.as_ref(), &local, &desired, Some(&running), tap.bus())
        .await
        .unwrap();
    tap.drain();
    let flip = observed(&[("a", DeckyState::Degraded), ("b", DeckyState::Failed)]);
    let report = reconcile_once(repo.as_ref(), &local, &desired, Some(&flip), tap.bus())
        .await
        .unwrap();
    assert_eq!(report.state_updated, 2);
    let mut events: Vec<StateEvent> = tap.drain().iter().map(event).collect();
    events.sort_by(|x, y| x.name.cmp(&y.name));
    assert_eq!(
        events
            .iter()
            .map(|e| (e.name.as_str(), e.previous_state, e.state))
            .collect::<Vec<_>>(),
        [
            ("a", Some(FleetState::Running), FleetState::Degraded),
            ("b", Some(FleetState::Running), FleetState::Failed)
        ]
    );
    // The row objects were mutated in place during the update: reading a row again
    // after the write shows the new state, which is what a reconciler that took its
    // "previous" state from a row object after the write would have reported.
    assert_eq!(store.object_state("a"), FleetState::Degraded);
    let again = reconcile_once(repo.as_ref(), &local, &desired, Some(&flip), tap.bus())
        .await
        .unwrap();
    assert!(again.is_quiet(), "{again:?}");
    assert!(tap.drain().is_empty());
}

#[tokio::test]
async fn config_drift_is_rewritten_from_the_state_file_without_an_event() {
    for backend in BACKENDS {
        let mut c = Case::new(backend).await;
        let seen = observed(&[("a", DeckyState::Running)]);
        c.converge(&[decky("a", 10, &["ssh"])], Some(&seen)).await;
        // A redeploy changed a's services and address.
        let changed = decky("a", 99, &["ssh", "http"]);
        let (report, events) = c
            .converge(std::slice::from_ref(&changed), Some(&seen))
            .await;
        assert_eq!((report.config_updated, report.changes()), (1, 1));
        assert!(events.is_empty());
        let row = c
            .store
            .repo
            .get_fleet_decky(&c.host, &name("a"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.services, ["ssh", "http"]);
        assert_eq!(row.decky_ip, Some("10.9.0.99".parse().unwrap()));
        assert_eq!(row.decky_config, Some(changed));
        assert_eq!(row.state, FleetState::Running);
    }
}

#[tokio::test]
async fn a_failed_write_is_reported_and_the_pass_goes_on() {
    for backend in BACKENDS {
        let mut c = Case::new(backend).await;
        let desired = [
            decky("a", 10, &["ssh"]),
            decky("b", 11, &["ssh"]),
            decky("c", 12, &["ssh"]),
        ];
        let seen = observed(&[
            ("a", DeckyState::Running),
            ("b", DeckyState::Running),
            ("c", DeckyState::Running),
        ]);
        c.repo.fail_names.lock().unwrap().push("b".into());
        let (report, events) = c.pass(&desired, Some(&seen)).await;
        assert_eq!(report.inserted, 2);
        assert_eq!(report.error_count, 1);
        assert_eq!(report.errors[0].name, "b");
        assert_eq!(report.errors[0].op, "insert");
        assert!(report.errors[0].message.contains("injected failure"));
        assert_eq!(
            by_name(&events),
            [
                ("a".into(), Transition::Inserted),
                ("c".into(), Transition::Inserted)
            ]
        );
        c.repo.fail_names.lock().unwrap().clear();
        let (report, events) = c.converge(&desired, Some(&seen)).await;
        assert_eq!((report.inserted, report.error_count), (1, 0));
        assert_eq!(by_name(&events), [("b".into(), Transition::Inserted)]);
    }
}

#[tokio::test]
async fn a_broken_or_missing_bus_never_aborts_the_pass() {
    for backend in BACKENDS {
        let mut c = Case::new(backend).await;
        c.tap.bus.close().await;
        let desired = [decky("a", 10, &["ssh"]), decky("b", 11, &["ssh"])];
        let (report, _) = c.converge(&desired, None).await;
        assert_eq!(
            (report.inserted, report.published, report.publish_failed),
            (2, 0, 2)
        );
        assert_eq!(c.states().await.len(), 2, "the writes stand");

        // No bus at all: a no-op publish.
        let report = reconcile_once(c.repo.as_ref(), &c.host, &[], None, None)
            .await
            .unwrap();
        assert_eq!(
            (report.deleted, report.published, report.publish_failed),
            (2, 0, 0)
        );
    }
}

#[tokio::test]
async fn last_observed_is_stamped_when_something_changed_or_the_stamp_is_old() {
    for backend in BACKENDS {
        let mut c = Case::new(backend).await;
        let desired = [decky("a", 10, &["ssh"]), decky("b", 11, &["ssh"])];
        let seen = observed(&[("a", DeckyState::Running), ("b", DeckyState::Running)]);
        let (report, _) = c.converge(&desired, Some(&seen)).await;
        assert_eq!(report.stamped, 2);
        let fresh = c
            .store
            .repo
            .get_fleet_decky(&c.host, &name("a"))
            .await
            .unwrap()
            .unwrap();
        assert!(fresh.last_observed.is_some());

        // An hour later nothing changed, but the stamps are old: one statement refreshes them.
        let old = Timestamp::now().minus(std::time::Duration::from_secs(3600));
        c.store
            .repo
            .stamp_fleet_observed(&c.host, old)
            .await
            .unwrap();
        c.repo.take_log();
        let (report, events) = c.converge(&desired, Some(&seen)).await;
        assert_eq!((report.changes(), report.stamped), (0, 2));
        assert!(events.is_empty());
        let row = c
            .store
            .repo
            .get_fleet_decky(&c.host, &name("a"))
            .await
            .unwrap()
            .unwrap();
        assert!(row.last_observed.unwrap() > old);
        assert_eq!(
            row.updated_at, fresh.updated_at,
            "a stamp is not a row change"
        );

        // Docker unknown: nothing was observed, so nothing is stamped even when old.
        c.store
            .repo
            .stamp_fleet_observed(&c.host, old)
            .await
            .unwrap();
        let (report, _) = c.converge(&desired, None).await;
        assert_eq!(report.stamped, 0);
    }
}

#[test]
fn runtime_aggregates_map_to_stored_states() {
    for (rt, stored) in [
        (DeckyState::Running, "running"),
        (DeckyState::Degraded, "degraded"),
        (DeckyState::Failed, "failed"),
        (DeckyState::TornDown, "torn_down"),
    ] {
        assert_eq!(fleet_state(rt).as_str(), stored);
        assert_eq!(rt.as_str(), stored);
    }
}
