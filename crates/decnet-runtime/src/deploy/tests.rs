//! Deploy, redeploy and teardown against the in-memory engine.

use std::time::Duration;

use decnet_core::state;

use super::*;
use crate::engine::ErrorKind;
use crate::fake::{FakeEngine, FakeHostNetwork};
use crate::teardown::{TeardownOptions, teardown_all, teardown_decky};

fn td() -> TeardownOptions {
    TeardownOptions {
        retry: Retry::none(),
        ..TeardownOptions::default()
    }
}

fn config() -> DecnetConfig {
    serde_json::from_value(serde_json::json!({
        "mode": "unihost", "interface": "lab0", "subnet": "10.9.0.0/24", "gateway": "10.9.0.1",
        "deckies": [
            {"name": "web-01", "ip": "10.9.0.10", "services": ["http", "ssh"], "distro": "debian",
             "base_image": "debian:bookworm-slim", "hostname": "SRV-ATLAS-12", "nmap_os": "linux"},
            {"name": "db-01", "ip": "10.9.0.11", "services": ["redis", "mysql", "postgres"], "distro": "debian",
             "base_image": "debian:bookworm-slim", "hostname": "SRV-ORION-33", "nmap_os": "linux"},
            {"name": "win-01", "ip": "10.9.0.12", "services": ["http"], "distro": "debian",
             "base_image": "debian:bookworm-slim", "hostname": "WS-17", "nmap_os": "windows"}
        ]
    }))
    .unwrap()
}

struct Env {
    _dir: tempfile::TempDir,
    settings: Settings,
    engine: FakeEngine,
    hostnet: FakeHostNetwork,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::under(dir.path());
        let engine = FakeEngine::new();
        engine.add_image(&spec::image_tag());
        Env {
            _dir: dir,
            settings,
            engine,
            hostnet: FakeHostNetwork::default(),
        }
    }

    fn opts() -> DeployOptions {
        DeployOptions {
            settle: Duration::ZERO,
            retry: Retry {
                attempts: 3,
                first_delay: Duration::ZERO,
            },
            ..DeployOptions::default()
        }
    }

    async fn deploy(&self, cfg: &DecnetConfig) -> Result<DeployReport, Error> {
        deploy(
            &self.engine,
            &self.hostnet,
            &self.settings,
            cfg,
            &Self::opts(),
            &Silent,
        )
        .await
    }

    fn mutating_calls(&self) -> Vec<String> {
        self.engine.take_calls()
    }
}

fn outcome<'a>(r: &'a DeployReport, container: &str) -> &'a ContainerOutcome {
    r.deckies
        .iter()
        .flat_map(|d| std::iter::once(&d.base).chain(&d.services))
        .find(|o| o.container == container)
        .unwrap()
}

#[tokio::test]
async fn fresh_deploy_runs_everything_and_saves_the_state() {
    let env = Env::new();
    let cfg = config();
    let report = env.deploy(&cfg).await.unwrap();
    assert!(report.all_running(), "{report:#?}");
    assert_eq!(report.network, NetworkOutcome::Created);
    assert!(!report.image.built);
    // 3 bases + 6 services.
    let states = env.engine.container_states();
    assert_eq!(states.len(), 9);
    assert!(states.values().all(|s| s == "running"), "{states:?}");
    assert_eq!(
        report.deckies.iter().map(|d| d.state).collect::<Vec<_>>(),
        [DeckyState::Running; 3]
    );
    // Bases are created and started before their services.
    let calls = env.mutating_calls();
    let pos = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(pos("start web-01") < pos("create web-01-ssh"));
    assert!(pos("create_network decnet_lan") < pos("create web-01"));

    let st = state::load(&env.settings.state_file).unwrap().unwrap();
    assert_eq!(st.config, cfg);
    assert_eq!(st.compose_path, env.settings.compose_file);
    let export = std::fs::read_to_string(&env.settings.compose_file).unwrap();
    assert!(export.contains("container_name: db-01-postgres"));
    assert_eq!(std::fs::read(&env.settings.instance_key).unwrap().len(), 32);
    assert!(env.settings.artifacts_dir.join("db-01/redis").is_dir());

    let hairpin = env.hostnet.current().unwrap();
    assert_eq!(hairpin.name, "decnet_macvlan0");
    assert_eq!(hairpin.address.to_string(), "10.9.0.254");
    let routes: Vec<String> = hairpin.routes.iter().map(ToString::to_string).collect();
    assert_eq!(routes, ["10.9.0.10", "10.9.0.11", "10.9.0.12"]);
    let net = env.engine.state().networks["decnet_lan"].clone();
    assert_eq!(net.ip_range.as_deref(), Some("10.9.0.8/29"));
    assert_eq!(net.options["parent"], "lab0");
}

#[tokio::test]
async fn redeploying_the_same_config_changes_nothing() {
    let env = Env::new();
    let cfg = config();
    env.deploy(&cfg).await.unwrap();
    let before = env.engine.container_states();
    env.mutating_calls();
    let report = env.deploy(&cfg).await.unwrap();
    assert!(report.unchanged(), "{report:#?}");
    assert!(report.all_running());
    assert_eq!(report.network, NetworkOutcome::Reused);
    assert_eq!(env.mutating_calls(), Vec::<String>::new());
    assert_eq!(env.engine.container_states(), before);
}

#[tokio::test]
async fn a_changed_config_touches_only_what_changed() {
    let env = Env::new();
    let cfg = config();
    env.deploy(&cfg).await.unwrap();
    env.mutating_calls();

    let mut changed = cfg.clone();
    // A persona change of one service, one decky gone, one decky added.
    changed.deckies[0].service_config.insert(
        "http".into(),
        serde_json::from_value(serde_json::json!({"server_header": "nginx/1.22.1"})).unwrap(),
    );
    changed.deckies.remove(2);
    let mut extra = changed.deckies[1].clone();
    extra.name = decnet_core::DeckyName::new("cache-01").unwrap();
    extra.ip = "10.9.0.13".parse().unwrap();
    extra.services = vec!["redis".into()];
    changed.deckies.push(extra);

    let report = env.deploy(&changed).await.unwrap();
    assert!(report.all_running(), "{report:#?}");
    let mut calls = env.mutating_calls();
    calls.sort();
    assert_eq!(
        calls,
        [
            "create cache-01",
            "create cache-01-redis",
            "create web-01-http",
            "remove web-01-http",
            "remove win-01",
            "remove win-01-http",
            "start cache-01",
            "start cache-01-redis",
            "start web-01-http",
        ]
    );
    assert_eq!(outcome(&report, "web-01-http").action, Action::Recreated);
    assert_eq!(outcome(&report, "web-01-ssh").action, Action::Unchanged);
    assert_eq!(outcome(&report, "db-01").action, Action::Unchanged);
    let mut removed = report.removed.clone();
    removed.sort();
    assert_eq!(removed, ["win-01", "win-01-http"]);
    // The hairpin follows: one /32 per remaining decky.
    let routes: Vec<String> = env
        .hostnet
        .current()
        .unwrap()
        .routes
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(routes, ["10.9.0.10", "10.9.0.11", "10.9.0.13"]);
    // Redeploying the changed config is a no-op again.
    assert!(env.deploy(&changed).await.unwrap().unchanged());
}

#[tokio::test]
async fn a_failing_service_is_a_partial_success() {
    let env = Env::new();
    let cfg = config();
    env.engine
        .fail("start", "db-01-mysql", ErrorKind::Failed, u32::MAX);
    env.engine
        .state()
        .exit_after_start
        .insert("web-01-ssh".into());
    let report = env.deploy(&cfg).await.unwrap();
    assert!(!report.all_running());
    assert!(report.any_running());
    let mysql = outcome(&report, "db-01-mysql");
    assert!(!mysql.running);
    assert!(mysql.error.as_deref().unwrap().contains("injected failure"));
    let ssh = outcome(&report, "web-01-ssh");
    assert!(!ssh.running);
    assert!(
        ssh.error.as_deref().unwrap().contains("Exited (2)"),
        "{ssh:?}"
    );
    // The others were not rolled back.
    assert!(outcome(&report, "db-01-redis").running);
    assert!(outcome(&report, "win-01-http").running);
    let states: Vec<_> = report.deckies.iter().map(|d| d.state).collect();
    assert_eq!(
        states,
        [
            DeckyState::Degraded,
            DeckyState::Degraded,
            DeckyState::Running
        ]
    );

    // Once the cause is gone a redeploy starts what is stopped and leaves the rest.
    env.engine.state().fail.clear();
    env.engine.state().exit_after_start.clear();
    env.mutating_calls();
    let report = env.deploy(&cfg).await.unwrap();
    assert!(report.all_running(), "{report:#?}");
    assert_eq!(outcome(&report, "db-01-mysql").action, Action::Started);
    assert_eq!(outcome(&report, "web-01-ssh").action, Action::Started);
    let mut calls = env.mutating_calls();
    calls.sort();
    assert_eq!(calls, ["start db-01-mysql", "start web-01-ssh"]);
}

#[tokio::test]
async fn a_failed_base_fails_its_services_only() {
    let env = Env::new();
    env.engine
        .fail("create", "db-01", ErrorKind::Conflict, u32::MAX);
    let report = env.deploy(&config()).await.unwrap();
    let db = report.deckies.iter().find(|d| d.name == "db-01").unwrap();
    assert_eq!(db.state, DeckyState::Failed);
    assert!(db.services.iter().all(|s| {
        !s.running
            && s.error
                .as_deref()
                .unwrap()
                .contains("base container failed")
    }));
    assert!(outcome(&report, "web-01-http").running);
}

#[tokio::test]
async fn transient_errors_are_retried() {
    let env = Env::new();
    env.engine
        .fail("create", "web-01-http", ErrorKind::Transient, 2);
    env.engine.fail("start", "db-01", ErrorKind::Transient, 1);
    let report = env.deploy(&config()).await.unwrap();
    assert!(report.all_running(), "{report:#?}");
}

#[tokio::test]
async fn a_recreated_base_takes_its_services_along() {
    let env = Env::new();
    let cfg = config();
    env.deploy(&cfg).await.unwrap();
    // The base stopped: its network namespace is gone, so services must rejoin a new one.
    env.engine.set_state("web-01", "exited");
    env.mutating_calls();
    let report = env.deploy(&cfg).await.unwrap();
    assert!(report.all_running());
    assert_eq!(outcome(&report, "web-01").action, Action::Recreated);
    assert_eq!(outcome(&report, "web-01-ssh").action, Action::Recreated);
    assert_eq!(outcome(&report, "db-01").action, Action::Unchanged);
    let calls = env.mutating_calls();
    assert!(calls.iter().all(|c| c.contains("web-01")), "{calls:?}");
    // Services are removed before the base they depend on.
    let pos = |c: &str| calls.iter().position(|x| x == c).unwrap();
    assert!(pos("remove web-01-ssh") < pos("remove web-01"));
}

#[tokio::test]
async fn a_rebuilt_image_recreates_its_containers() {
    let env = Env::new();
    let cfg = config();
    env.deploy(&cfg).await.unwrap();
    let tag = spec::image_tag();
    env.engine
        .state()
        .images
        .get_mut(&tag)
        .unwrap()
        .id
        .push_str("-new");
    env.mutating_calls();
    let report = env.deploy(&cfg).await.unwrap();
    assert!(report.all_running());
    assert!(
        report
            .deckies
            .iter()
            .all(|d| d.base.action == Action::Recreated)
    );
}

#[tokio::test]
async fn refused_configs_change_nothing() {
    let env = Env::new();
    let mut cfg = config();
    cfg.deckies[0].services.push("smb".into());
    let err = env.deploy(&cfg).await.unwrap_err();
    assert!(err.is_validation());
    assert!(err.to_string().contains("smb (decky web-01)"), "{err}");

    let cfg: DecnetConfig = serde_json::from_value(serde_json::json!({
        "mode": "unihost", "interface": "lab0", "subnet": "10.9.0.0/24", "gateway": "10.9.0.1",
        "deckies": [{"name": "sink-01", "ip": "10.9.0.10", "services": ["sink", "ssh"], "distro": "debian",
                     "base_image": "debian:bookworm-slim", "hostname": "h"}],
        "custom_services": [{"name": "sink", "binary": "local/sink:1", "ports": [9000]}]
    }))
    .unwrap();
    let err = env.deploy(&cfg).await.unwrap_err();
    assert!(err.is_validation());
    assert!(err.to_string().contains("'local/sink:1'"), "{err}");
    assert_eq!(env.mutating_calls(), Vec::<String>::new());
    assert!(!env.settings.state_file.exists());
    assert!(env.hostnet.current().is_none());

    // Present locally: deployed like any other service, with the custom image.
    env.engine.add_image("local/sink:1");
    let report = env.deploy(&cfg).await.unwrap();
    assert!(report.all_running(), "{report:#?}");
    let sink = env
        .engine
        .state()
        .containers
        .values()
        .find(|c| c.observed.name == "sink-01-sink")
        .unwrap()
        .spec
        .image
        .clone();
    assert_eq!(sink, "local/sink:1");
}

#[tokio::test]
async fn a_missing_image_is_built_from_a_static_binary() {
    let env = Env::new();
    env.engine.state().images.clear();
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("decnet-decky");
    // The smallest static ELF64 the checker accepts: a header and one PT_LOAD.
    let mut elf = vec![0u8; 64 + 56];
    elf[..4].copy_from_slice(b"\x7fELF");
    elf[4] = 2;
    elf[5] = 1;
    let machine: u16 = if std::env::consts::ARCH == "aarch64" {
        183
    } else {
        62
    };
    elf[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
    elf[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
    elf[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    elf[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
    elf[64] = 1;
    std::fs::write(&bin, &elf).unwrap();
    let opts = DeployOptions {
        decky_bin: Some(bin),
        ..Env::opts()
    };
    let report = deploy(
        &env.engine,
        &env.hostnet,
        &env.settings,
        &config(),
        &opts,
        &Silent,
    )
    .await
    .unwrap();
    assert!(report.image.built);
    assert!(report.all_running());
    // A dynamic binary is refused before anything changes.
    let env = Env::new();
    env.engine.state().images.clear();
    let opts = DeployOptions {
        decky_bin: Some("/bin/sh".into()),
        ..Env::opts()
    };
    let err = deploy(
        &env.engine,
        &env.hostnet,
        &env.settings,
        &config(),
        &opts,
        &Silent,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("dynamically linked"), "{err}");
    assert!(env.engine.state().networks.is_empty());
}

#[tokio::test]
async fn a_network_with_foreign_containers_is_not_rebuilt() {
    let env = Env::new();
    let mut cfg = config();
    env.deploy(&cfg).await.unwrap();
    env.engine
        .state()
        .networks
        .get_mut("decnet_lan")
        .unwrap()
        .containers
        .push("someone-elses".into());
    cfg.interface = "eth9".into();
    let err = env.deploy(&cfg).await.unwrap_err();
    assert!(err.is_validation());
    assert!(err.to_string().contains("DECNET does not manage"), "{err}");

    // Without the foreign container, a parent change rebuilds the network and every decky.
    env.engine
        .state()
        .networks
        .get_mut("decnet_lan")
        .unwrap()
        .containers
        .retain(|c| c != "someone-elses");
    let report = env.deploy(&cfg).await.unwrap();
    assert_eq!(report.network, NetworkOutcome::Rebuilt);
    assert!(report.all_running(), "{report:#?}");
    assert_eq!(
        env.engine.state().networks["decnet_lan"].options["parent"],
        "eth9"
    );
}

#[tokio::test]
async fn single_decky_teardown_removes_it_everywhere() {
    let env = Env::new();
    let cfg = config();
    env.deploy(&cfg).await.unwrap();
    let r = teardown_decky(&env.engine, &env.hostnet, &env.settings, "db-01", &td())
        .await
        .unwrap();
    assert_eq!(
        r.removed,
        ["db-01", "db-01-mysql", "db-01-postgres", "db-01-redis"]
    );
    assert_eq!(r.remaining, ["web-01", "win-01"]);
    let states = env.engine.container_states();
    assert!(states.keys().all(|n| !n.starts_with("db-01")), "{states:?}");
    assert_eq!(states.len(), 5);
    let st = state::load(&env.settings.state_file).unwrap().unwrap();
    assert!(st.config.decky("db-01").is_none());
    assert!(
        !std::fs::read_to_string(&env.settings.compose_file)
            .unwrap()
            .contains("db-01")
    );
    let routes = env.hostnet.current().unwrap().routes;
    assert_eq!(routes.len(), 2);
    // Redeploying what is left changes nothing: the teardown really converged.
    assert!(env.deploy(&st.config).await.unwrap().unchanged());

    let err = teardown_decky(&env.engine, &env.hostnet, &env.settings, "nope", &td())
        .await
        .unwrap_err();
    assert!(err.is_validation());
    assert!(err.to_string().contains("web-01, win-01"), "{err}");
}

#[tokio::test]
async fn full_teardown_leaves_nothing() {
    let env = Env::new();
    env.deploy(&config()).await.unwrap();
    // A container DECNET does not manage survives.
    env.engine.add_image("other:1");
    let r = teardown_all(&env.engine, &env.hostnet, &env.settings, &td())
        .await
        .unwrap();
    assert_eq!(r.removed.len(), 9);
    assert!(r.network_removed && r.hairpin_removed && r.state_cleared);
    assert!(env.engine.container_states().is_empty());
    assert!(env.engine.state().networks.is_empty());
    assert!(env.hostnet.current().is_none());
    assert!(!env.settings.state_file.exists());
    assert!(!env.settings.compose_file.exists());
    // Idempotent.
    let r = teardown_all(&env.engine, &env.hostnet, &env.settings, &td())
        .await
        .unwrap();
    assert!(r.removed.is_empty());
    // The last decky's teardown is a full one.
    env.deploy(&config()).await.unwrap();
    for name in ["web-01", "db-01"] {
        teardown_decky(&env.engine, &env.hostnet, &env.settings, name, &td())
            .await
            .unwrap();
    }
    let r = teardown_decky(&env.engine, &env.hostnet, &env.settings, "win-01", &td())
        .await
        .unwrap();
    assert!(r.state_cleared && r.network_removed);
    assert!(env.engine.state().networks.is_empty());
}

#[tokio::test]
async fn the_runtime_map_follows_the_engine() {
    let env = Env::new();
    let cfg = config();
    env.deploy(&cfg).await.unwrap();
    env.engine.set_state("db-01-redis", "exited");
    let map = crate::status::runtime_map(&env.engine, &cfg, &Project::default())
        .await
        .unwrap();
    assert_eq!(map["db-01"].state, DeckyState::Degraded);
    assert_eq!(map["db-01"].services["redis"], "exited");
    assert!(map["web-01"].running);
    env.engine.state().unreachable = true;
    let err = crate::status::runtime_map(&env.engine, &cfg, &Project::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unreachable);
}

#[tokio::test]
async fn projects_do_not_touch_each_other() {
    let env = Env::new();
    let cfg = config();
    env.deploy(&cfg).await.unwrap();
    let lab = Project::new("lab-7").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lab_settings = Settings::under(dir.path());
    let mut lab_cfg = cfg.clone();
    for d in &mut lab_cfg.deckies {
        d.name = decnet_core::DeckyName::new(format!("lab-{}", d.name)).unwrap();
    }
    let opts = DeployOptions {
        project: lab.clone(),
        ..Env::opts()
    };
    let report = deploy(
        &env.engine,
        &env.hostnet,
        &lab_settings,
        &lab_cfg,
        &opts,
        &Silent,
    )
    .await
    .unwrap();
    assert!(report.all_running());
    assert_eq!(
        report.hairpin.name,
        crate::hairpin::link_name(&lab, crate::engine::Driver::Macvlan)
    );
    assert!(env.engine.state().networks.contains_key("lab_7_lan"));
    assert!(env.engine.state().networks.contains_key("decnet_lan"));
    // The default project's redeploy neither sees nor removes the lab's containers.
    env.mutating_calls();
    assert!(env.deploy(&cfg).await.unwrap().unchanged());
    assert_eq!(env.mutating_calls(), Vec::<String>::new());
    let r = teardown_all(
        &env.engine,
        &env.hostnet,
        &lab_settings,
        &TeardownOptions {
            project: lab,
            ..td()
        },
    )
    .await
    .unwrap();
    assert_eq!(r.removed.len(), 9);
    let states = env.engine.container_states();
    assert_eq!(states.len(), 9);
    assert!(states.keys().all(|n| !n.starts_with("lab-")), "{states:?}");
    assert!(env.engine.state().networks.contains_key("decnet_lan"));
    assert!(!env.engine.state().networks.contains_key("lab_7_lan"));
}

#[tokio::test]
async fn a_failed_hairpin_leaves_no_new_network() {
    struct NoHairpin;
    #[async_trait::async_trait]
    impl HostNetwork for NoHairpin {
        async fn ensure_hairpin(&self, _: &HairpinPlan) -> Result<(), Error> {
            Err(Error::HostNetwork("operation not supported".into()))
        }
        async fn remove_hairpin(&self, _: &Project) -> Result<bool, Error> {
            Ok(false)
        }
    }
    let env = Env::new();
    let err = deploy(
        &env.engine,
        &NoHairpin,
        &env.settings,
        &config(),
        &Env::opts(),
        &Silent,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("not supported"));
    assert!(env.engine.state().networks.is_empty());
    assert!(env.engine.container_states().is_empty());
    assert!(!env.settings.state_file.exists());
}
