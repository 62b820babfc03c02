//! Heartbeat intake benchmark: N simulated agents, each with a 20-decky snapshot, post
//! heartbeats over mTLS to a controller backed by SQLite as fast as it answers. The
//! reference figure, measured in the same run over the same connections, is the rate of
//! `GET /swarm/health` (TLS + HTTP without any database work).
//!
//! `cargo run --release -p decnet-swarm --example heartbeat_bench -- [agents] [seconds]`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use decnet_core::DecnetConfig;
use decnet_swarm::client::HttpClient;
use decnet_swarm::master::{Controller, ControllerOptions};
use decnet_swarm::pki::{Identity, generate_key, make_csr};
use decnet_swarm::proto::{
    AgentStatus, DeckyRuntimeView, EnrollRequest, EnrollResponse, Heartbeat,
};
use decnet_swarm::tls::{ServerPin, client_config};
use reqwest::{Method, StatusCode};

fn snapshot(n: usize) -> DecnetConfig {
    let deckies: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({
                "name": format!("decky-{i:02}"), "ip": format!("10.9.0.{}", 10 + i),
                "services": ["ssh", "http", "smb"], "distro": "debian",
                "base_image": "debian:bookworm-slim", "hostname": format!("host-{i}"),
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "mode": "swarm", "interface": "eth0", "subnet": "10.9.0.0/24", "gateway": "10.9.0.1",
        "deckies": deckies,
    }))
    .unwrap()
}

/// How the load is generated.
#[derive(Clone, Copy, PartialEq)]
enum Load {
    /// Heartbeats with the same snapshot each time (the steady state of a fleet).
    Steady,
    /// Every heartbeat flips one decky's observed state (every snapshot is written).
    Changing,
    /// `GET /swarm/health` (the transport reference).
    Health,
}

async fn hammer(clients: &[(HttpClient, Heartbeat)], secs: u64, load: Load) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let tasks: Vec<_> = clients
        .iter()
        .cloned()
        .map(|(c, mut beat)| {
            let done = done.clone();
            tokio::spawn(async move {
                let mut flip = false;
                while Instant::now() < deadline {
                    let (code, _) = if load == Load::Health {
                        c.send(Method::GET, "/swarm/health", None, None)
                            .await
                            .unwrap()
                    } else {
                        if load == Load::Changing {
                            flip = !flip;
                            if let Some(r) = beat.status.runtime.get_mut("decky-00") {
                                r.running = flip;
                                r.state = Some(if flip { "running" } else { "degraded" }.into());
                            }
                        }
                        c.send(Method::POST, "/swarm/heartbeat", Some(&beat), None)
                            .await
                            .unwrap()
                    };
                    assert!(
                        code == StatusCode::NO_CONTENT || code == StatusCode::OK,
                        "{code}"
                    );
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let start = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let agents: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let secs: u64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let repo = decnet_store::open(&decnet_store::StoreConfig::sqlite(dir.path().join("db/decnet.db")))
            .await
            .unwrap();
        let op_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let wk_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let worker_url = format!("https://{}", wk_l.local_addr().unwrap());
        let opts = ControllerOptions {
            operator_listen: op_l.local_addr().unwrap(),
            operator_tls: false,
            worker_listen: wk_l.local_addr().unwrap(),
            advertise_url: Some(worker_url.clone()),
            extra_sans: vec![],
            heartbeat_interval: Duration::from_secs(3600),
            token_ttl: Duration::from_secs(60),
            ca_dir: dir.path().join("ca"),
            master_dir: dir.path().join("master"),
        };
        let ctrl = Arc::new(Controller::new(repo, opts).unwrap());
        let op = decnet_swarm::client::OperatorClient::new(&format!("http://{}", op_l.local_addr().unwrap()), None).unwrap();
        tokio::spawn(decnet_swarm::master::run_on(ctrl.clone(), op_l, wk_l, std::future::pending()));
        let config = snapshot(20);
        let mut clients = Vec::new();
        for i in 0..agents {
            let key = generate_key().unwrap();
            let req = EnrollRequest {
                name: format!("w{i}"), address: format!("10.0.{}.{}", i / 250, i % 250 + 1), agent_port: 8765,
                sans: vec![], notes: None, use_ipvlan: false, renew: false,
                csr_pem: Some(make_csr(&key, "w").unwrap()),
            };
            let (_, resp): (_, EnrollResponse) =
                op.call(Method::POST, "/swarm/enroll", Some(&req), &[StatusCode::CREATED], None).await.unwrap();
            let bundle = resp.bundle.unwrap();
            let id = Identity {
                fingerprint: bundle.fingerprint.clone(),
                cert_pem: bundle.certificate_pem.clone(),
                key_pem: key.serialize_pem(),
                ca_pem: bundle.ca_pem.clone(),
            };
            let tls = client_config(Some(&id), Some(&id.ca_pem), ServerPin { fingerprint: bundle.controller_fingerprint.clone(), role: decnet_swarm::pki::Role::Swarmctl }).unwrap();
            let mut cfg = config.clone();
            for d in &mut cfg.deckies {
                d.host_uuid = Some(bundle.host_uuid.clone());
            }
            let status = AgentStatus {
                deployed: true,
                mode: Some(cfg.mode),
                compose_path: None,
                runtime: cfg.deckies.iter().map(|d| (d.name.to_string(), DeckyRuntimeView { running: true, state: Some("running".into()), services: d.services.iter().map(|s| (s.clone(), "running".to_owned())).collect() })).collect(),
                deckies: cfg.deckies,
                lan: None,
                generation: 1,
            };
            let beat = Heartbeat { host_uuid: bundle.host_uuid.clone(), agent_version: Some("bench".into()), status };
            clients.push((HttpClient::tls(&worker_url, tls).unwrap(), beat));
        }
        let body = serde_json::to_vec(&clients[0].1).unwrap().len();
        // Warm-up: connections, statement cache, first inserts.
        hammer(&clients, 1, Load::Steady).await;
        let steady = hammer(&clients, secs, Load::Steady).await;
        let changing = hammer(&clients, secs, Load::Changing).await;
        let health = hammer(&clients, secs, Load::Health).await;
        println!("agents={agents} seconds={secs} snapshot=20 deckies body={body} bytes");
        println!(
            "steady heartbeats/s={steady:.0} changing heartbeats/s={changing:.0} health/s={health:.0} \
             steady/health={:.2} changing/health={:.2}",
            steady / health,
            changing / health
        );
    });
}
