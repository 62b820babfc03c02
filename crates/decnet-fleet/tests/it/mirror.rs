//! Deploy, crash, teardown through the runtime's fake engine: the mirror operations and
//! the reconciler observing Docker through the `Engine` trait.

use std::sync::Arc;
use std::time::Duration;

use decnet_core::{DecnetConfig, HostUuid, Settings};
use decnet_fleet::{LiveInputs, Reconciler, Transition, forget_all, forget_decky, mirror_deploy};
use decnet_runtime::deploy::{DeployOptions, Silent, deploy};
use decnet_runtime::engine::{Engine, Retry};
use decnet_runtime::fake::{FakeEngine, FakeHostNetwork};
use decnet_runtime::spec::{self, Project, container_name};
use decnet_runtime::status::runtime_map;
use decnet_runtime::teardown::{TeardownOptions, teardown_all, teardown_decky};
use decnet_store::FleetState;

use crate::support::*;

struct Lab {
    _dir: tempfile::TempDir,
    settings: Settings,
    engine: Arc<FakeEngine>,
    hostnet: FakeHostNetwork,
    store: Store,
    tap: Tap,
    reconciler: Reconciler,
}

impl Lab {
    async fn new(backend: Backend) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::under(dir.path());
        let engine = Arc::new(FakeEngine::new());
        engine.add_image(&spec::image_tag());
        let store = Store::new(backend).await;
        let tap = Tap::new().await;
        let connect_to = Arc::clone(&engine);
        let inputs = LiveInputs::new(
            &settings.state_file,
            Project::default(),
            Arc::new(move || {
                let engine: Arc<dyn Engine> = connect_to.clone();
                Box::pin(async move { Ok(engine) })
            }),
        );
        let bus: Arc<dyn decnet_bus::Bus> = Arc::new(tap.hub.connect("reconciler-loop"));
        let reconciler = Reconciler::new(
            store.repo.clone(),
            HostUuid::local(),
            Arc::new(inputs),
            Some(bus),
        );
        Lab {
            _dir: dir,
            settings,
            engine,
            hostnet: FakeHostNetwork::default(),
            store,
            tap,
            reconciler,
        }
    }

    async fn deploy(&self, config: &DecnetConfig) {
        let opts = DeployOptions {
            settle: Duration::ZERO,
            retry: Retry::none(),
            ..DeployOptions::default()
        };
        let report = deploy(
            self.engine.as_ref(),
            &self.hostnet,
            &self.settings,
            config,
            &opts,
            &Silent,
        )
        .await
        .unwrap();
        assert!(report.all_running());
    }

    fn td() -> TeardownOptions {
        TeardownOptions {
            retry: Retry::none(),
            ..TeardownOptions::default()
        }
    }

    /// A reconciler pass that must change nothing.
    async fn quiet(&mut self) {
        let report = self.reconciler.pass().await.unwrap();
        assert!(report.is_quiet(), "{report:?}");
        assert!(self.tap.drain().is_empty());
    }

    async fn states(&self) -> Vec<(String, FleetState)> {
        states(self.store.repo.as_ref(), &HostUuid::local()).await
    }
}

fn lab_fleet() -> DecnetConfig {
    fleet(vec![
        decky("web-01", 10, &["http", "ssh"]),
        decky("db-01", 11, &["redis", "mysql"]),
        decky("mail-01", 12, &["smtp"]),
    ])
}

#[tokio::test]
async fn deploy_crash_and_teardowns_keep_the_rows_in_step() {
    for backend in BACKENDS {
        let mut lab = Lab::new(backend).await;
        let config = lab_fleet();
        lab.deploy(&config).await;

        // The CLI's mirror right after the deploy: one pass with the fresh observation.
        let seen = runtime_map(lab.engine.as_ref(), &config, &Project::default())
            .await
            .unwrap();
        let report = mirror_deploy(
            lab.store.repo.as_ref(),
            &HostUuid::local(),
            &config.deckies,
            Some(&seen),
            lab.tap.bus(),
        )
        .await
        .unwrap();
        assert_eq!(report.inserted, 3);
        assert_eq!(lab.tap.drain().len(), 3);
        assert!(
            lab.states()
                .await
                .iter()
                .all(|(_, s)| *s == FleetState::Running)
        );
        // The reconciler agrees: nothing to do.
        lab.quiet().await;

        // A service container of db-01 dies: observed through the engine, one event.
        lab.engine
            .set_state(&container_name("db-01", "redis"), "exited");
        let report = lab.reconciler.pass().await.unwrap();
        assert_eq!(report.state_updated, 1);
        let events = lab.tap.drain();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].topic.as_str(), "decky.local:db-01.state");
        assert_eq!(events[0].payload.to_map().unwrap()["state"], "degraded");
        assert_eq!(
            events[0].payload.to_map().unwrap()["previous_state"],
            "running"
        );
        lab.quiet().await;

        // Docker goes away: unknown is not gone, nothing changes.
        lab.engine.state().unreachable = true;
        let report = lab.reconciler.pass().await.unwrap();
        assert!(!report.observed);
        assert!(report.is_quiet(), "{report:?}");
        lab.engine.state().unreachable = false;
        lab.quiet().await;

        // One decky torn down (FL-4): the runtime removes it from the state file, the
        // mirror removes its row, and the next pass does not bring it back.
        teardown_decky(
            lab.engine.as_ref(),
            &lab.hostnet,
            &lab.settings,
            "web-01",
            &Lab::td(),
        )
        .await
        .unwrap();
        let local = HostUuid::local();
        assert!(
            forget_decky(
                lab.store.repo.as_ref(),
                &local,
                &name("web-01"),
                lab.tap.bus()
            )
            .await
            .unwrap()
        );
        let events = lab.tap.drain();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].payload.to_map().unwrap()["transition"], "deleted");
        assert!(
            !forget_decky(
                lab.store.repo.as_ref(),
                &local,
                &name("web-01"),
                lab.tap.bus()
            )
            .await
            .unwrap(),
            "a second forget is a no-op"
        );
        assert!(lab.tap.drain().is_empty());
        lab.quiet().await;
        assert_eq!(
            lab.states().await,
            [
                ("db-01".into(), FleetState::Degraded),
                ("mail-01".into(), FleetState::Running)
            ]
        );

        // Everything torn down: the state file is gone, every row of the host goes.
        teardown_all(lab.engine.as_ref(), &lab.hostnet, &lab.settings, &Lab::td())
            .await
            .unwrap();
        let report = forget_all(lab.store.repo.as_ref(), &local, lab.tap.bus())
            .await
            .unwrap();
        assert_eq!(report.deleted, 2);
        assert!(
            lab.tap
                .drain()
                .iter()
                .all(|e| e.payload.to_map().unwrap()["transition"] == "deleted")
        );
        lab.quiet().await;
        assert!(lab.states().await.is_empty());
    }
}

#[tokio::test]
async fn without_the_mirror_the_reconciler_alone_converges_a_single_teardown() {
    let mut lab = Lab::new(Backend::Sqlite).await;
    lab.deploy(&lab_fleet()).await;
    let report = lab.reconciler.pass().await.unwrap();
    assert_eq!(report.inserted, 3);
    lab.tap.drain();
    teardown_decky(
        lab.engine.as_ref(),
        &lab.hostnet,
        &lab.settings,
        "mail-01",
        &Lab::td(),
    )
    .await
    .unwrap();
    let report = lab.reconciler.pass().await.unwrap();
    assert_eq!((report.deleted, report.inserted), (1, 0));
    let events = lab.tap.drain();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]
            .payload_as::<decnet_fleet::StateEvent>()
            .unwrap()
            .transition,
        Transition::Deleted
    );
    // Not resurrected as torn_down (the reference's single-decky teardown left it in the
    // state file, so the next pass re-inserted it).
    lab.quiet().await;
    assert_eq!(lab.states().await.len(), 2);
}
