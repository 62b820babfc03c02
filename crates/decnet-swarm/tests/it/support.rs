//! An in-process controller and agents on 127.0.0.x, each with a fake runtime.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use decnet_core::HostUuid;
use decnet_core::net::NetInfo;
use decnet_store::SwarmHost;
use decnet_swarm::agent::backend::FakeBackend;
use decnet_swarm::agent::reaper::{Reaper, ReaperScript, SpawnPlan, Spawner};
use decnet_swarm::agent::relocalize::FixedLan;
use decnet_swarm::agent::{AgentBundle, AgentOptions, enroll};
use decnet_swarm::client::OperatorClient;
use decnet_swarm::master::{Controller, ControllerOptions};
use decnet_swarm::proto::{EnrollRequest, EnrollResponse, HostView};
use reqwest::{Method, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub const INTERVAL: Duration = Duration::from_millis(200);

pub struct Master {
    pub ctrl: Arc<Controller>,
    pub worker_url: String,
    pub op: OperatorClient,
    _stop: oneshot::Sender<()>,
    pub dir: tempfile::TempDir,
}

pub async fn start_master() -> Master {
    let dir = tempfile::tempdir().unwrap();
    let repo = decnet_store::open(&decnet_store::StoreConfig::sqlite(
        dir.path().join("db/decnet.db"),
    ))
    .await
    .unwrap();
    let op_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wk_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let worker_url = format!("https://{}", wk_l.local_addr().unwrap());
    let opts = ControllerOptions {
        operator_listen: op_l.local_addr().unwrap(),
        operator_tls: false,
        worker_listen: wk_l.local_addr().unwrap(),
        advertise_url: Some(worker_url.clone()),
        extra_sans: vec![],
        heartbeat_interval: INTERVAL,
        token_ttl: Duration::from_secs(60),
        ca_dir: dir.path().join("etc/ca"),
        master_dir: dir.path().join("etc/master"),
    };
    let ctrl = Arc::new(Controller::new(repo, opts).unwrap());
    let (tx, rx) = oneshot::channel();
    let operator_url: String = format!("http://{}", op_l.local_addr().unwrap());
    tokio::spawn(decnet_swarm::master::run_on(
        ctrl.clone(),
        op_l,
        wk_l,
        async {
            let _ = rx.await;
        },
    ));
    let op = OperatorClient::new(&operator_url, None).unwrap();
    Master {
        ctrl,
        worker_url,
        op,
        _stop: tx,
        dir,
    }
}

/// Records spawn plans instead of running them.
#[derive(Default)]
pub struct RecordingSpawner(pub Mutex<Vec<SpawnPlan>>);

impl Spawner for RecordingSpawner {
    fn spawn(&self, plan: &SpawnPlan) -> decnet_swarm::Result<()> {
        self.0.lock().unwrap().push(plan.clone());
        Ok(())
    }
}

pub struct Agent {
    pub uuid: HostUuid,
    pub addr: std::net::SocketAddr,
    pub fake: FakeBackend,
    pub bundle: AgentBundle,
    pub spawner: Arc<RecordingSpawner>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Agent {
    /// Stops serving and heartbeating, as if the process died.
    pub async fn kill(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        (&mut self.task).await.ok();
    }
}

pub fn lan(host_ip: &str) -> NetInfo {
    NetInfo {
        interface: "eth9".into(),
        subnet: "10.9.0.0/24".parse().unwrap(),
        gateway: "10.9.0.1".parse().unwrap(),
        host_ip: host_ip.parse().unwrap(),
    }
}

pub async fn enroll_token(m: &Master, name: &str, address: &str, port: u16) -> EnrollResponse {
    let req = EnrollRequest {
        name: name.into(),
        address: address.into(),
        agent_port: port,
        sans: vec![],
        notes: None,
        use_ipvlan: false,
        renew: false,
        csr_pem: None,
    };
    m.op.call(
        Method::POST,
        "/swarm/enroll",
        Some(&req),
        &[StatusCode::CREATED],
        None,
    )
    .await
    .unwrap()
    .1
}

/// Enrolls and starts an agent listening on `ip` (a 127.0.0.x address).
pub async fn start_agent(m: &Master, name: &str, ip: &str, lan_host: &str) -> Agent {
    let listener = TcpListener::bind(format!("{ip}:0")).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = enroll_token(m, name, ip, addr.port()).await;
    let dir = tempfile::tempdir().unwrap();
    let agent_dir = dir.path().join("agent");
    let bundle = enroll::enroll_online(
        &agent_dir,
        &m.worker_url,
        token.token.as_deref().unwrap(),
        token.controller_fingerprint.clone(),
    )
    .await
    .unwrap();
    let fake = FakeBackend::new();
    let spawner = Arc::new(RecordingSpawner::default());
    // A host where systemd runs but decnet-reaper.service is not installed: the agent
    // writes its own script and hands it to systemd-run (recorded, not run).
    let systemd_dir = dir.path().join("run-systemd-system");
    std::fs::create_dir(&systemd_dir).unwrap();
    let reaper = Reaper {
        script: ReaperScript {
            root: dir.path().join("root"),
            delay_secs: 0,
            systemctl: "true".into(),
            docker: "none".into(),
            own_dir: false,
        },
        temp_dir: dir.path().to_path_buf(),
        lookup: Arc::new(|n: &str| {
            (n == "systemd-run").then(|| PathBuf::from("/usr/bin/systemd-run"))
        }),
        spawner: spawner.clone(),
        systemd_dir,
    };
    let (tx, rx) = oneshot::channel();
    let agent_lan = lan(lan_host);
    let task = tokio::spawn({
        let bundle = bundle.clone();
        let fake = fake.clone();
        async move {
            decnet_swarm::agent::run_on(
                listener,
                bundle,
                Arc::new(fake),
                Arc::new(FixedLan(agent_lan)),
                AgentOptions {
                    listen: addr,
                    heartbeat_interval: INTERVAL,
                    agent_version: "test-1".into(),
                    reaper,
                },
                async {
                    let _ = rx.await;
                },
            )
            .await
            .unwrap();
        }
    });
    Agent {
        uuid: token.host_uuid,
        addr,
        fake,
        bundle,
        spawner,
        stop: Some(tx),
        task,
        _dir: dir,
    }
}

pub async fn hosts(m: &Master) -> Vec<HostView> {
    m.op.call(Method::GET, "/swarm/hosts", None, &[StatusCode::OK], None)
        .await
        .unwrap()
        .1
}

pub async fn host_row(m: &Master, uuid: &HostUuid) -> Option<SwarmHost> {
    m.ctrl.repo.get_swarm_host(uuid).await.unwrap()
}

/// Polls `check` until it holds or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
