//! Log-forwarding fixtures shared by the tests and the benchmark: a controller identity over a SQLite store, worker identities with host rows, the real ingester as sink, realistic events.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use decnet_core::{DeckyName, HostUuid};
use decnet_fleet::logs::ingest::Ingester;
use decnet_fleet::logs::spool::{Spool, SpoolOptions, envelope_encoder};
use decnet_fleet::logs::{CollectedEvent, EventSink, Origin};
use decnet_store::{ErrorUpdate, FleetState, NewSwarmHost, ShardUpsert, Timestamp};
use decnet_swarm::forward::Forwarder;
use decnet_swarm::listen::{LogListener, envelope_decoder};
use decnet_swarm::master::{Controller, ControllerOptions};
use decnet_swarm::pki::{Identity, LeafSpec, Role};
use decnet_swarm::tls::{ServerPin, client_config};

/// A controller (CA, swarmctl identity) over a SQLite store in `dir`.
pub async fn controller(dir: &Path) -> Arc<Controller> {
    let repo = decnet_store::open(&decnet_store::StoreConfig::sqlite(dir.join("db/decnet.db")))
        .await
        .unwrap();
    let opts = ControllerOptions {
        operator_listen: "127.0.0.1:0".parse().unwrap(),
        operator_tls: false,
        worker_listen: "127.0.0.1:0".parse().unwrap(),
        advertise_url: None,
        extra_sans: vec![],
        heartbeat_interval: Duration::from_secs(10),
        token_ttl: Duration::from_secs(60),
        ca_dir: dir.join("etc/ca"),
        master_dir: dir.join("etc/master"),
    };
    Arc::new(Controller::new(repo, opts).unwrap())
}

/// A worker identity signed by the controller's CA, pinned in a new host row when
/// `enrolled` and then assigned deckies `web-00` … `web-15` running ssh (the deckies of
/// [`event`]).
pub async fn worker(ctrl: &Controller, dir: &Path, name: &str, enrolled: bool) -> Identity {
    let id = Identity::ensure(
        ctrl.ca(),
        &dir.join(format!("workers/{name}")),
        "worker",
        &LeafSpec {
            name: name.into(),
            role: Role::Agent,
            sans: vec![],
        },
    )
    .unwrap();
    if enrolled {
        ctrl.repo
            .create_swarm_host(&NewSwarmHost {
                uuid: HostUuid::new(format!("uuid-{name}")).unwrap(),
                name: name.into(),
                address: "127.0.0.1".into(),
                agent_port: 8765,
                client_cert_fingerprint: Some(id.fingerprint.clone()),
                updater_cert_fingerprint: None,
                cert_bundle_path: String::new(),
                enrolled_at: Timestamp::now(),
                notes: None,
                use_ipvlan: false,
            })
            .await
            .unwrap();
        for d in 0..16 {
            assign(ctrl, name, &format!("web-{d:02}"), &["ssh"]).await;
        }
    }
    id
}

/// Assigns decky `decky` running `services` to enrolled worker `worker` (a shard row).
pub async fn assign(ctrl: &Controller, worker: &str, decky: &str, services: &[&str]) {
    ctrl.repo
        .upsert_shard(&ShardUpsert {
            host_uuid: HostUuid::new(format!("uuid-{worker}")).unwrap(),
            decky_name: DeckyName::new(decky).unwrap(),
            services: services.iter().map(|s| (*s).to_owned()).collect(),
            decky_config: None,
            decky_ip: None,
            state: FleetState::Running,
            last_error: ErrorUpdate::Keep,
            last_seen: None,
        })
        .await
        .unwrap();
}

/// The client TLS a worker holding `id` uses towards `ctrl` (controller pinned).
pub fn worker_tls(ctrl: &Controller, id: &Identity) -> rustls::ClientConfig {
    client_config(
        Some(id),
        Some(&id.ca_pem),
        ServerPin {
            fingerprint: ctrl.swarmctl.fingerprint.clone(),
            role: Role::Swarmctl,
        },
    )
    .unwrap()
}

/// A forwarder of `spool_dir` to `target` presenting `id`, with short test backoffs.
pub fn forwarder(ctrl: &Controller, id: &Identity, target: String, spool_dir: &Path) -> Forwarder {
    let tls = worker_tls(ctrl, id);
    Forwarder {
        target,
        tls: Arc::new(move || Ok(tls.clone())),
        spool_dir: spool_dir.to_path_buf(),
        backoff_min: Duration::from_millis(100),
        backoff_max: Duration::from_millis(400),
    }
}

/// The controller's log listener committing to `sink`.
pub fn listener(ctrl: &Controller, sink: Arc<dyn EventSink>) -> LogListener {
    LogListener::new(&ctrl.swarmctl, ctrl.repo.clone(), sink, envelope_decoder()).unwrap()
}

/// The master's real sink (the ingester) over the controller's store, without a bus.
pub fn ingester(ctrl: &Controller) -> Arc<dyn EventSink> {
    Arc::new(Ingester::new(ctrl.repo.clone(), None))
}

/// Event `i`: a realistic honeypot line (an SSH login attempt) from decky `web-NN`.
pub fn event(i: u64) -> CollectedEvent {
    let decky = format!("web-{:02}", i % 16);
    let micros = 1_795_000_000_000_000 + i as i64 * 1000;
    let ts = decnet_wire::rfc5424::format_timestamp(micros).unwrap();
    let raw_line = format!(
        "<38>1 {ts} {decky} ssh - auth_attempt [relay@55555 src_ip=\"203.0.113.{}\" src_port=\"{}\" username=\"root\" password=\"hunter{i}\" outcome=\"failed\" seq=\"{i}\"] Failed password for root from 203.0.113.{} port {}",
        i % 250 + 1,
        40000 + i % 20000,
        i % 250 + 1,
        40000 + i % 20000,
    );
    CollectedEvent {
        key: CollectedEvent::container_key("c0ffee", i128::from(micros) * 1000, &raw_line),
        decky,
        service: "ssh".into(),
        received: Timestamp::from_unix_micros(micros),
        raw_line,
        claimed: Default::default(),
    }
}

/// Appends events `from..to` to the spool in `dir` in batches of 1000.
pub async fn fill_spool(dir: &Path, from: u64, to: u64) {
    fill_spool_with(dir, from, to, SpoolOptions::default()).await;
}

/// [`fill_spool`] with spool options (small segments).
pub async fn fill_spool_with(dir: &Path, from: u64, to: u64, opts: SpoolOptions) {
    let spool = Spool::open(dir, opts, envelope_encoder()).unwrap();
    let mut i = from;
    while i < to {
        let end = (i + 1000).min(to);
        let batch: Vec<_> = (i..end).map(event).collect();
        spool.commit(&Origin::Local, &batch).await.unwrap();
        i = end;
    }
}

/// (rows, distinct dedup keys, distinct raw lines) in the SQLite `logs` table.
pub async fn count_rows(db: &Path) -> (i64, i64, i64) {
    use sqlx::Row as _;
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(db)
        .read_only(true);
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&opts)
        .await
        .unwrap();
    let row = sqlx::query(
        "SELECT COUNT(*), COUNT(DISTINCT dedup_key), COUNT(DISTINCT raw_line) FROM logs",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    (row.get(0), row.get(1), row.get(2))
}
