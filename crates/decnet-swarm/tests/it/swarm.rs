//! Enrollment, heartbeats, sharded deploys with partial failure, liveness, trust checks
//! and decommission, with one controller and two agents on 127.0.0.2 and 127.0.0.3.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use decnet_core::DecnetConfig;
use decnet_store::{FleetState, HostStatus, ShardFilter};
use decnet_swarm::Error;
use decnet_swarm::agent::heartbeat::Heartbeater;
use decnet_swarm::agent::relocalize::FixedLan;
use decnet_swarm::client::{AgentClient, HttpClient, https_url};
use decnet_swarm::master::shard_round_robin;
use decnet_swarm::pki::{Ca, Identity, LeafSpec, Role};
use decnet_swarm::proto::{DecommissionResponse, DeployRequest, DispatchResponse};
use decnet_swarm::tls::{ServerPin, client_config};
use reqwest::{Method, StatusCode};

use crate::support::*;

fn swarm_config(n: usize) -> DecnetConfig {
    let deckies: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({
                "name": format!("d{i}"), "ip": format!("10.9.0.{}", 10 + i), "services": ["ssh"],
                "distro": "debian", "base_image": "debian:bookworm-slim", "hostname": format!("d{i}"),
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({
        "mode": "swarm", "interface": "eth0", "subnet": "10.9.0.0/24", "gateway": "10.9.0.1",
        "deckies": deckies,
    }))
    .unwrap()
}

async fn deploy(m: &Master, config: DecnetConfig) -> (StatusCode, DispatchResponse) {
    m.op.call(
        Method::POST,
        "/swarm/deploy",
        Some(&DeployRequest {
            config,
            dry_run: false,
            no_cache: false,
        }),
        &[StatusCode::OK, StatusCode::MULTI_STATUS],
        None,
    )
    .await
    .unwrap()
}

/// A client presenting `id` to the agent at `agent`.
fn client_as(id: &Identity, agent: &Agent) -> HttpClient {
    let tls = client_config(
        Some(id),
        Some(&agent.bundle.identity.ca_pem),
        ServerPin {
            fingerprint: agent.bundle.identity.fingerprint.clone(),
            role: Role::Agent,
        },
    )
    .unwrap();
    HttpClient::tls(
        &https_url(&agent.addr.ip().to_string(), agent.addr.port()),
        tls,
    )
    .unwrap()
}

async fn status_code(c: &HttpClient, method: Method, path: &str) -> Result<StatusCode, Error> {
    let body = serde_json::json!({});
    let b: Option<&(dyn decnet_swarm::client::erased::Body + Sync)> = if method == Method::POST {
        Some(&body)
    } else {
        None
    };
    c.send(method, path, b, None).await.map(|(s, _)| s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn swarm_end_to_end() {
    let m = start_master().await;
    let mut w1 = start_agent(&m, "w1", "127.0.0.2", "10.9.0.2").await;
    let w2 = start_agent(&m, "w2", "127.0.0.3", "10.9.0.3").await;

    // Enrolled, then active once heartbeats arrive; agent_version stored.
    assert!(
        eventually(Duration::from_secs(10), || async {
            hosts(&m)
                .await
                .iter()
                .filter(|h| h.status == "active")
                .count()
                == 2
        })
        .await,
        "{:?}",
        hosts(&m).await
    );
    let row = host_row(&m, &w1.uuid).await.unwrap();
    assert_eq!(row.agent_version.as_deref(), Some("test-1"));
    assert_eq!(
        row.client_cert_fingerprint.as_ref(),
        Some(&w1.bundle.identity.fingerprint)
    );
    assert!(
        hosts(&m)
            .await
            .iter()
            .all(|h| h.cert_not_after.is_some() && h.lan.is_some())
    );
    // The master never stored a worker key.
    for entry in walk(m.dir.path()) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        if text.contains("PRIVATE KEY") {
            let name = entry.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                ["ca.key", "master.key", "swarmctl.key", "operator.key"].contains(&name.as_str()),
                "unexpected key file {}",
                entry.display()
            );
        }
    }

    // Deploy 6 deckies round-robin over both workers, which share 10.9.0.0/24.
    let mut config = swarm_config(6);
    shard_round_robin(&mut config, &[w1.uuid.clone(), w2.uuid.clone()]).unwrap();
    let (code, resp) = deploy(&m, config.clone()).await;
    assert_eq!(code, StatusCode::OK, "{resp:?}");
    assert!(resp.ok && resp.results.len() == 2);
    let shards = m.ctrl.repo.list_shards(&ShardFilter::all()).await.unwrap();
    assert_eq!(shards.len(), 6);
    assert!(
        shards
            .iter()
            .all(|s| s.state == FleetState::Running && s.last_error.is_none())
    );
    assert_eq!(shards.iter().filter(|s| s.host_uuid == w1.uuid).count(), 3);
    // IP safety: distinct, never a worker's own address or the gateway.
    let ips: BTreeSet<_> = shards.iter().map(|s| s.decky_ip.unwrap()).collect();
    assert_eq!(ips.len(), 6, "{ips:?}");
    for taken in ["10.9.0.1", "10.9.0.2", "10.9.0.3"] {
        assert!(!ips.contains(&taken.parse().unwrap()));
    }
    // Each agent got only its shard, relocalized onto its own interface.
    let got = w1.fake.state().deployed.last().unwrap().clone();
    assert_eq!(got.interface, "eth9");
    assert!(
        got.deckies
            .iter()
            .all(|d| d.host_uuid.as_ref() == Some(&w1.uuid))
    );

    // One decky fails on w2: it is `failed` with the error, its siblings run.
    let failing = config
        .deckies
        .iter()
        .find(|d| d.host_uuid.as_ref() == Some(&w2.uuid))
        .unwrap()
        .name
        .to_string();
    w2.fake.state().fail.insert(failing.clone());
    let (code, resp) = deploy(&m, config.clone()).await;
    assert_eq!(code, StatusCode::MULTI_STATUS, "{resp:?}");
    assert!(!resp.ok);
    let r2 = resp
        .results
        .iter()
        .find(|r| r.host_uuid == w2.uuid)
        .unwrap();
    assert!(!r2.ok && r2.detail == "deploy partially failed", "{r2:?}");
    let shards = m
        .ctrl
        .repo
        .list_shards(&ShardFilter::host(w2.uuid.clone()))
        .await
        .unwrap();
    for s in &shards {
        if s.decky_name.as_str() == failing {
            assert_eq!(s.state, FleetState::Failed);
            assert!(s.last_error.as_deref().unwrap().contains("exited"), "{s:?}");
        } else {
            assert_eq!(s.state, FleetState::Running, "{s:?}");
            assert!(s.last_error.is_none());
        }
    }
    // A heartbeat keeps the error (SW-21) and reports what runs.
    tokio::time::sleep(INTERVAL * 3).await;
    let s = m
        .ctrl
        .repo
        .get_shard(
            &w2.uuid,
            &decnet_core::DeckyName::new(failing.clone()).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.state, FleetState::Failed);
    assert!(s.last_error.is_some() && s.last_seen.is_some());
    w2.fake.state().fail.clear();

    // /health answers promptly while a slow deploy holds the queue.
    w1.fake.state().delay = Duration::from_millis(1500);
    let master_client =
        AgentClient::for_host(&host_row(&m, &w1.uuid).await.unwrap(), &m.ctrl.master).unwrap();
    master_client.health().await.unwrap();
    let slow = {
        let c = master_client.clone();
        let shard = DeployRequest {
            config: {
                let mut c1 = config.clone();
                c1.deckies
                    .retain(|d| d.host_uuid.as_ref() == Some(&w1.uuid));
                c1
            },
            dry_run: false,
            no_cache: false,
        };
        tokio::spawn(async move { c.deploy(&shard).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    master_client.health().await.unwrap();
    let took = t0.elapsed();
    assert!(!slow.is_finished(), "the deploy should still be running");
    assert!(
        took < Duration::from_millis(100),
        "/health took {took:?} during a deploy"
    );
    // A second operation waits for the first (one at a time, SW-30).
    let status_during = master_client.status().await.unwrap();
    assert!(status_during.deployed);
    slow.await.unwrap().unwrap();
    assert_eq!(w1.fake.state().max_concurrent, 1);
    w1.fake.state().delay = Duration::ZERO;

    // Trust: a worker certificate calling another agent gets 403 on control routes.
    let as_w1 = client_as(&w1.bundle.identity, &w2);
    assert_eq!(
        status_code(&as_w1, Method::GET, "/status").await.unwrap(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_code(&as_w1, Method::POST, "/teardown")
            .await
            .unwrap(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_code(&as_w1, Method::POST, "/self-destruct")
            .await
            .unwrap(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status_code(&as_w1, Method::GET, "/health").await.unwrap(),
        StatusCode::OK
    );
    assert_eq!(
        status_code(&as_w1, Method::GET, "/docs").await.unwrap(),
        StatusCode::NOT_FOUND
    );
    // …and so does the controller's own server identity.
    let as_swarmctl = client_as(&m.ctrl.swarmctl, &w2);
    assert_eq!(
        status_code(&as_swarmctl, Method::GET, "/status")
            .await
            .unwrap(),
        StatusCode::FORBIDDEN
    );
    // A certificate from another CA, even named decnet-master with the master role, is
    // refused at the TLS handshake.
    let evil_dir = tempfile::tempdir().unwrap();
    let evil_ca = Ca::load_or_create(&evil_dir.path().join("ca")).unwrap();
    let evil = Identity::ensure(
        &evil_ca,
        &evil_dir.path().join("m"),
        "master",
        &LeafSpec {
            name: "decnet-master".into(),
            role: Role::Master,
            sans: vec![],
        },
    )
    .unwrap();
    let as_evil = client_as(&evil, &w2);
    assert!(matches!(
        status_code(&as_evil, Method::GET, "/status").await,
        Err(Error::Transport { .. })
    ));
    // The master pins each agent: w1's pin does not open w2.
    let mut wrong = host_row(&m, &w2.uuid).await.unwrap();
    wrong.client_cert_fingerprint = Some(w1.bundle.identity.fingerprint.clone());
    let pinned_wrong = AgentClient::for_host(&wrong, &m.ctrl.master).unwrap();
    assert!(pinned_wrong.health().await.is_err());
    // A heartbeat claiming another host's uuid is refused.
    let mut forged = w1.bundle.clone();
    forged.meta.host_uuid = w2.uuid.clone();
    let hb = Heartbeater::new(
        &forged,
        std::sync::Arc::new(w1.fake.clone()),
        std::sync::Arc::new(FixedLan(lan("10.9.0.2"))),
        "x".into(),
        Default::default(),
    )
    .unwrap();
    assert!(matches!(
        hb.send_once().await,
        Err(Error::Status { status: 403, .. })
    ));
    // Operator routes are not served on the worker listener (SW-8).
    let wk_as_w1 = HttpClient::tls(&m.worker_url, w1.bundle.controller_tls().unwrap()).unwrap();
    let (code, _) = wk_as_w1
        .send(Method::GET, "/swarm/hosts", None, None)
        .await
        .unwrap();
    assert_eq!(code, StatusCode::NOT_FOUND);

    // w1 dies: unreachable after three missed intervals, found by the sweeper alone.
    w1.kill().await;
    assert!(
        eventually(Duration::from_secs(10), || async {
            host_row(&m, &w1.uuid).await.unwrap().status == HostStatus::Unreachable
        })
        .await
    );
    assert_eq!(
        host_row(&m, &w2.uuid).await.unwrap().status,
        HostStatus::Active
    );

    // Decommissioning the dead w1 still completes.
    let w1_dir = m.ctrl.worker_dir("w1");
    assert!(w1_dir.join("worker.crt").exists());
    let (_, d): (_, DecommissionResponse) =
        m.op.call(
            Method::DELETE,
            &format!("/swarm/hosts/{}", w1.uuid),
            None,
            &[StatusCode::OK],
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert!(!d.self_destruct_acknowledged && d.revoked);
    assert!(host_row(&m, &w1.uuid).await.is_none());
    assert!(!w1_dir.exists());
    assert!(
        m.ctrl
            .repo
            .is_fingerprint_revoked(&w1.bundle.identity.fingerprint)
            .await
            .unwrap()
    );
    assert!(
        m.ctrl
            .repo
            .list_shards(&ShardFilter::host(w1.uuid.clone()))
            .await
            .unwrap()
            .is_empty()
    );
    // Its certificate is refused from now on (SW-3).
    let hb = Heartbeater::new(
        &w1.bundle,
        std::sync::Arc::new(w1.fake.clone()),
        std::sync::Arc::new(FixedLan(lan("10.9.0.2"))),
        "x".into(),
        Default::default(),
    )
    .unwrap();
    match hb.send_once().await {
        Err(Error::Status {
            status: 403,
            detail,
            ..
        }) => assert!(detail.contains("revoked"), "{detail}"),
        other => panic!("{other:?}"),
    }

    // Decommissioning the live w2: acknowledged with 202, purge then reaper.
    let (_, d): (_, DecommissionResponse) =
        m.op.call(
            Method::DELETE,
            &format!("/swarm/hosts/{}", w2.uuid),
            None,
            &[StatusCode::OK],
            Some(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert!(d.self_destruct_acknowledged && d.revoked);
    assert!(
        eventually(Duration::from_secs(5), || async {
            !w2.spawner.0.lock().unwrap().is_empty()
        })
        .await,
        "the reaper was not started"
    );
    let plan = w2.spawner.0.lock().unwrap()[0].clone();
    assert!(plan.systemd() && plan.args.iter().any(|a| a.starts_with("decnet-reaper-")));
    assert!(w2.fake.state().calls.iter().any(|c| c == "purge"));
    assert!(w2.fake.state().config.is_none());
    assert!(hosts(&m).await.is_empty());
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_rules() {
    let m = start_master().await;
    // Reserved and malformed names are refused before anything is stored.
    for (name, address) in [
        ("decnet-master", "10.0.0.5"),
        ("swarmctl", "10.0.0.5"),
        ("updater@w", "10.0.0.5"),
        ("w;x", "10.0.0.5"),
        ("ok", "$(id)"),
    ] {
        let req = decnet_swarm::proto::EnrollRequest {
            name: name.into(),
            address: address.into(),
            agent_port: 8765,
            sans: vec![],
            notes: None,
            use_ipvlan: false,
            renew: false,
            csr_pem: None,
        };
        let err =
            m.op.call::<serde_json::Value>(
                Method::POST,
                "/swarm/enroll",
                Some(&req),
                &[StatusCode::CREATED],
                None,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Status { status: 422, .. }),
            "{name}: {err}"
        );
    }
    assert!(hosts(&m).await.is_empty());
    // A token is single-use and a duplicate name conflicts.
    let t = enroll_token(&m, "w9", "127.0.0.9", 8765).await;
    let token = t.token.clone().unwrap();
    let d1 = tempfile::tempdir().unwrap();
    decnet_swarm::agent::enroll::enroll_online(
        d1.path(),
        &m.worker_url,
        &token,
        t.controller_fingerprint.clone(),
    )
    .await
    .unwrap();
    let d2 = tempfile::tempdir().unwrap();
    let again = decnet_swarm::agent::enroll::enroll_online(
        d2.path(),
        &m.worker_url,
        &token,
        t.controller_fingerprint.clone(),
    )
    .await;
    assert!(
        matches!(again, Err(Error::Status { status: 403, .. })),
        "{again:?}"
    );
    let dup =
        m.op.call::<serde_json::Value>(
            Method::POST,
            "/swarm/enroll",
            Some(&decnet_swarm::proto::EnrollRequest {
                name: "w9".into(),
                address: "127.0.0.9".into(),
                agent_port: 8765,
                sans: vec![],
                notes: None,
                use_ipvlan: false,
                renew: false,
                csr_pem: None,
            }),
            &[StatusCode::CREATED],
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(dup, Error::Status { status: 409, .. }));
    // A wrong controller pin is refused by the enrolling worker.
    let t2 = enroll_token(&m, "w10", "127.0.0.10", 8765).await;
    let bad_pin = decnet_store::Fingerprint::new(&"00".repeat(32)).unwrap();
    let d3 = tempfile::tempdir().unwrap();
    assert!(matches!(
        decnet_swarm::agent::enroll::enroll_online(
            d3.path(),
            &m.worker_url,
            t2.token.as_deref().unwrap(),
            bad_pin
        )
        .await,
        Err(Error::Transport { .. })
    ));
    // Key file mode.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(d1.path().join("worker.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);

    // Renewal (SW-4): a fresh token for the enrolled host; the worker enrolls again with a
    // new key; the new certificate is pinned and the old one revoked.
    let old = decnet_swarm::agent::AgentBundle::load(d1.path()).unwrap();
    let req = decnet_swarm::proto::EnrollRequest {
        name: "w9".into(),
        address: "127.0.0.9".into(),
        agent_port: 8765,
        sans: vec![],
        notes: None,
        use_ipvlan: false,
        renew: true,
        csr_pem: None,
    };
    let (_, renewal): (_, decnet_swarm::proto::EnrollResponse) =
        m.op.call(
            Method::POST,
            "/swarm/enroll",
            Some(&req),
            &[StatusCode::CREATED],
            None,
        )
        .await
        .unwrap();
    assert_eq!(renewal.host_uuid, t.host_uuid);
    let renewed = decnet_swarm::agent::enroll::enroll_online(
        d1.path(),
        &m.worker_url,
        renewal.token.as_deref().unwrap(),
        renewal.controller_fingerprint.clone(),
    )
    .await
    .unwrap();
    assert_ne!(renewed.identity.fingerprint, old.identity.fingerprint);
    let row = host_row(&m, &t.host_uuid).await.unwrap();
    assert_eq!(
        row.client_cert_fingerprint.as_ref(),
        Some(&renewed.identity.fingerprint)
    );
    assert!(
        m.ctrl
            .repo
            .is_fingerprint_revoked(&old.identity.fingerprint)
            .await
            .unwrap()
    );
    assert!(
        !m.ctrl
            .repo
            .is_fingerprint_revoked(&renewed.identity.fingerprint)
            .await
            .unwrap()
    );

    // Offline flow: CSR file → signed bundle (no key) → installed with the pending key.
    let worker = tempfile::tempdir().unwrap();
    let csr = decnet_swarm::agent::enroll::offline_request(worker.path()).unwrap();
    let req = decnet_swarm::proto::EnrollRequest {
        name: "air".into(),
        address: "10.1.2.3".into(),
        agent_port: 8765,
        sans: vec!["air.lan".into()],
        notes: None,
        use_ipvlan: false,
        renew: false,
        csr_pem: Some(csr),
    };
    let (_, resp): (_, decnet_swarm::proto::EnrollResponse) =
        m.op.call(
            Method::POST,
            "/swarm/enroll",
            Some(&req),
            &[StatusCode::CREATED],
            None,
        )
        .await
        .unwrap();
    assert!(resp.token.is_none());
    let bundle = resp.bundle.unwrap();
    let text = serde_json::to_string(&bundle).unwrap();
    assert!(!text.contains("PRIVATE KEY"));
    let out = tempfile::tempdir().unwrap();
    std::fs::write(out.path().join("bundle.json"), text).unwrap();
    let installed =
        decnet_swarm::agent::enroll::offline_install(worker.path(), out.path(), None).unwrap();
    assert_eq!(installed.meta.name, "air");
    assert_eq!(installed.meta.controller_url, m.worker_url);
    assert!(!worker.path().join("worker.key.pending").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_refuses_before_sending() {
    let m = start_master().await;
    let w = start_agent(&m, "w1", "127.0.0.4", "10.9.0.2").await;
    // Unassigned decky: 400; unknown host: 404; unihost: 400. Nothing reached the agent.
    let config = swarm_config(2);
    let err =
        m.op.call::<serde_json::Value>(
            Method::POST,
            "/swarm/deploy",
            Some(&DeployRequest {
                config: config.clone(),
                dry_run: false,
                no_cache: false,
            }),
            &[StatusCode::OK],
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 400, .. }), "{err}");
    let mut c2 = config.clone();
    shard_round_robin(
        &mut c2,
        &[w.uuid.clone(), decnet_core::HostUuid::new("nope").unwrap()],
    )
    .unwrap();
    let err =
        m.op.call::<serde_json::Value>(
            Method::POST,
            "/swarm/deploy",
            Some(&DeployRequest {
                config: c2,
                dry_run: false,
                no_cache: false,
            }),
            &[StatusCode::OK],
            None,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Status { status: 404, .. }), "{err}");
    assert!(w.fake.state().deployed.is_empty());
    // Malformed body: 422.
    let (code, _) =
        m.op.http
            .send(
                Method::POST,
                "/swarm/deploy",
                Some(&serde_json::json!({"config": 1})),
                None,
            )
            .await
            .unwrap();
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    // Teardown of one decky removes that shard only.
    let mut c3 = config;
    shard_round_robin(&mut c3, std::slice::from_ref(&w.uuid)).unwrap();
    assert_eq!(deploy(&m, c3).await.0, StatusCode::OK);
    let (code, _): (_, DispatchResponse) =
        m.op.call(
            Method::POST,
            "/swarm/teardown",
            Some(&decnet_swarm::proto::SwarmTeardownRequest {
                host_uuid: Some(w.uuid.clone()),
                decky_id: Some("d0".into()),
            }),
            &[StatusCode::OK],
            None,
        )
        .await
        .unwrap();
    assert_eq!(code, StatusCode::OK);
    let left: Vec<_> = m
        .ctrl
        .repo
        .list_shards(&ShardFilter::all())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.decky_name.to_string())
        .collect();
    assert_eq!(left, ["d1"]);
    // The next heartbeat does not resurrect it.
    tokio::time::sleep(INTERVAL * 3).await;
    assert_eq!(
        m.ctrl
            .repo
            .list_shards(&ShardFilter::all())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_listener_gate() {
    let dir = tempfile::tempdir().unwrap();
    let repo = decnet_store::open(&decnet_store::StoreConfig::sqlite(
        dir.path().join("db.sqlite"),
    ))
    .await
    .unwrap();
    let op_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let wk_l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut opts = decnet_swarm::master::ControllerOptions {
        operator_listen: op_l.local_addr().unwrap(),
        operator_tls: true,
        worker_listen: wk_l.local_addr().unwrap(),
        advertise_url: None,
        extra_sans: vec![],
        heartbeat_interval: INTERVAL,
        token_ttl: Duration::from_secs(60),
        ca_dir: dir.path().join("ca"),
        master_dir: dir.path().join("master"),
    };
    // A plaintext operator listener off loopback is refused before anything is bound.
    let mut plain = opts.clone();
    plain.operator_tls = false;
    plain.operator_listen = "0.0.0.0:0".parse().unwrap();
    let ctrl =
        std::sync::Arc::new(decnet_swarm::master::Controller::new(repo.clone(), plain).unwrap());
    let err = decnet_swarm::master::run(ctrl, std::future::pending())
        .await
        .unwrap_err();
    assert!(err.is_validation(), "{err}");

    opts.operator_tls = true;
    let ctrl = std::sync::Arc::new(decnet_swarm::master::Controller::new(repo, opts).unwrap());
    let url = format!("https://{}", op_l.local_addr().unwrap());
    tokio::spawn(decnet_swarm::master::run_on(
        ctrl.clone(),
        op_l,
        wk_l,
        std::future::pending(),
    ));
    let as_id = |id: &Identity| {
        let tls = client_config(
            Some(id),
            Some(&id.ca_pem),
            ServerPin {
                fingerprint: ctrl.swarmctl.fingerprint.clone(),
                role: Role::Swarmctl,
            },
        )
        .unwrap();
        HttpClient::tls(&url, tls).unwrap()
    };
    // The operator identity is accepted; a certificate of another role is not.
    let (code, _) = as_id(&ctrl.operator)
        .send(Method::GET, "/swarm/hosts", None, None)
        .await
        .unwrap();
    assert_eq!(code, StatusCode::OK);
    let (code, _) = as_id(&ctrl.swarmctl)
        .send(Method::GET, "/swarm/hosts", None, None)
        .await
        .unwrap();
    assert_eq!(code, StatusCode::FORBIDDEN);
    // Without a client certificate the TLS handshake itself fails.
    let tls = client_config(
        None,
        Some(&ctrl.operator.ca_pem),
        ServerPin {
            fingerprint: ctrl.swarmctl.fingerprint.clone(),
            role: Role::Swarmctl,
        },
    )
    .unwrap();
    let anon = HttpClient::tls(&url, tls).unwrap();
    assert!(
        anon.send(Method::GET, "/swarm/hosts", None, None)
            .await
            .is_err()
    );
    // A server other than the pinned controller is refused by the client.
    let tls = client_config(
        Some(&ctrl.operator),
        Some(&ctrl.operator.ca_pem),
        ServerPin {
            fingerprint: ctrl.master.fingerprint.clone(),
            role: Role::Swarmctl,
        },
    )
    .unwrap();
    let wrong_pin = HttpClient::tls(&url, tls).unwrap();
    assert!(matches!(
        wrong_pin
            .send(Method::GET, "/swarm/hosts", None, None)
            .await,
        Err(Error::Transport { .. })
    ));
}
