//! Log forwarding over real mTLS on loopback: durability across listener and forwarder crashes, refused certificates, oversized and bad frames.

use std::sync::Arc;
use std::time::{Duration, Instant};

use decnet_fleet::logs::spool::{SpoolOptions, SpoolReader, envelope_line};
use decnet_store::{LogFilter, RevokedFingerprint, Timestamp};
use decnet_swarm::pki::{Ca, Identity, LeafSpec, Role};
use decnet_wire::rfc5425;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::logs_support::*;
use crate::support::eventually;

async fn rows(ctrl: &decnet_swarm::master::Controller) -> u64 {
    ctrl.repo.count_logs(&LogFilter::default()).await.unwrap()
}

/// Starts the listener on `addr` (port 0 picks one); returns the task and the address.
async fn start_listener(
    ctrl: &Arc<decnet_swarm::master::Controller>,
    addr: std::net::SocketAddr,
) -> (tokio::task::JoinHandle<()>, std::net::SocketAddr) {
    let l = listener(ctrl, ingester(ctrl));
    let tcp = TcpListener::bind(addr).await.unwrap();
    let addr = tcp.local_addr().unwrap();
    (tokio::spawn(l.run_on(tcp, std::future::pending())), addr)
}

async fn wait_rows(ctrl: &decnet_swarm::master::Controller, at_least: u64) {
    let start = Instant::now();
    while rows(ctrl).await < at_least {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "stuck below {at_least} rows ({} stored)",
            rows(ctrl).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_survives_listener_and_forwarder_crashes_exactly_once() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("decnet_swarm=info,decnet_fleet=info")
        .with_test_writer()
        .try_init();
    const N: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    let ctrl = controller(dir.path()).await;
    let id = worker(&ctrl, dir.path(), "worker-1", true).await;
    let spool_dir = dir.path().join("worker/spool");
    // 1 MiB segments (~36 in all): rolling and deleting acknowledged segments happen
    // while the crashes do.
    let opts = SpoolOptions {
        segment_bytes: 1 << 20,
        ..SpoolOptions::default()
    };
    fill_spool_with(&spool_dir, 0, N / 2, opts).await;
    // The collector keeps appending while everything below happens.
    let writer = tokio::spawn({
        let spool_dir = spool_dir.clone();
        async move {
            for k in 0..50 {
                let from = N / 2 + k * (N / 100);
                fill_spool_with(&spool_dir, from, from + N / 100, opts).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    let (l1, addr) = start_listener(&ctrl, "127.0.0.1:0".parse().unwrap()).await;
    let fwd = forwarder(&ctrl, &id, addr.to_string(), &spool_dir);
    let f1 = tokio::spawn(decnet_swarm::forward::run(
        fwd.clone(),
        std::future::pending(),
    ));

    // Crash 1: the listener, mid-stream (its tasks dropped, no close_notify, commits in
    // flight abandoned).
    wait_rows(&ctrl, 20_000).await;
    l1.abort();
    let _ = l1.await;
    let at_crash = rows(&ctrl).await;
    assert!(at_crash < N, "the stream was not interrupted mid-way");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (l2, _) = start_listener(&ctrl, addr).await;

    // Crash 2: the forwarder (a new one reopens the spool from its persisted offset).
    wait_rows(&ctrl, 45_000).await;
    f1.abort();
    let _ = f1.await;
    let f2 = tokio::spawn(decnet_swarm::forward::run(
        fwd.clone(),
        std::future::pending(),
    ));

    // Crash 3: the listener again.
    wait_rows(&ctrl, 70_000).await;
    l2.abort();
    let _ = l2.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (l3, _) = start_listener(&ctrl, addr).await;

    writer.await.unwrap();
    wait_rows(&ctrl, N).await;
    // Everything is acknowledged: a fresh reader of the spool finds nothing left.
    let acked_all = eventually(Duration::from_secs(10), || {
        let spool_dir = spool_dir.clone();
        async move {
            let mut r = SpoolReader::open(&spool_dir).unwrap();
            let mut out = Vec::new();
            r.read(10, &mut out).unwrap() == 0
        }
    })
    .await;
    assert!(
        acked_all,
        "the spool's acknowledged position did not reach its end"
    );
    // Acknowledged segments are gone; the newest stays (the collector appends to it).
    let segments = std::fs::read_dir(&spool_dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".seg")
        })
        .count();
    assert_eq!(segments, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (total, keys, lines) = count_rows(&dir.path().join("db/decnet.db")).await;
    assert_eq!((total, keys, lines), (N as i64, N as i64, N as i64));
    let worker_rows = ctrl
        .repo
        .count_logs(&LogFilter {
            source_worker: Some("worker-1".into()),
            ..LogFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(worker_rows, N);
    f2.abort();
    l3.abort();
}

#[tokio::test]
async fn revoked_unknown_and_foreign_certificates_are_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ctrl = controller(dir.path()).await;
    let (listen_task, addr) = start_listener(&ctrl, "127.0.0.1:0".parse().unwrap()).await;

    // Revoked: enrolled, then its certificate revoked.
    let revoked = worker(&ctrl, dir.path(), "revoked-1", true).await;
    ctrl.repo
        .revoke_fingerprint(&RevokedFingerprint {
            fingerprint: revoked.fingerprint.clone(),
            host_uuid: None,
            revoked_at: Timestamp::now(),
            reason: Some("test".into()),
        })
        .await
        .unwrap();
    // Unknown: signed by the right CA with the agent role, but no host row pins it.
    let unpinned = worker(&ctrl, dir.path(), "unpinned-1", false).await;
    // Foreign: an agent certificate from another CA.
    let other_ca = Ca::load_or_create(&dir.path().join("other-ca")).unwrap();
    let foreign = Identity::ensure(
        &other_ca,
        &dir.path().join("foreign"),
        "worker",
        &LeafSpec {
            name: "foreign-1".into(),
            role: Role::Agent,
            sans: vec![],
        },
    )
    .unwrap();

    let mut tasks = Vec::new();
    let mut spools = Vec::new();
    for (name, id) in [
        ("revoked", &revoked),
        ("unpinned", &unpinned),
        ("foreign", &foreign),
    ] {
        let spool_dir = dir.path().join(format!("{name}/spool"));
        fill_spool(&spool_dir, 0, 50).await;
        let mut fwd = forwarder(&ctrl, id, addr.to_string(), &spool_dir);
        if name == "foreign" {
            // The foreign worker trusts its own CA for the chain; the pin still names
            // the real controller, so only the listener can refuse it.
            let tls = decnet_swarm::tls::client_config(
                Some(id),
                None,
                decnet_swarm::tls::ServerPin {
                    fingerprint: ctrl.swarmctl.fingerprint.clone(),
                    role: Role::Swarmctl,
                },
            )
            .unwrap();
            fwd.tls = Arc::new(move || Ok(tls.clone()));
        }
        tasks.push(tokio::spawn(decnet_swarm::forward::run(
            fwd,
            std::future::pending(),
        )));
        spools.push(spool_dir);
    }
    // A legitimate worker on the same listener gets through: the refusals are not a
    // broken listener.
    let good = worker(&ctrl, dir.path(), "good-1", true).await;
    let good_spool = dir.path().join("good/spool");
    fill_spool(&good_spool, 1000, 1010).await;
    let good_task = tokio::spawn(decnet_swarm::forward::run(
        forwarder(&ctrl, &good, addr.to_string(), &good_spool),
        std::future::pending(),
    ));
    assert!(
        eventually(Duration::from_secs(10), || async {
            rows(&ctrl).await == 10
        })
        .await
    );
    // Several reconnect rounds of the refused ones (backoff 100-400 ms).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rows(&ctrl).await, 10);
    let only_good = ctrl
        .repo
        .count_logs(&LogFilter {
            source_worker: Some("good-1".into()),
            ..LogFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(only_good, 10);
    for spool in &spools {
        let r = SpoolReader::open(spool).unwrap();
        assert_eq!(r.acked(), Default::default(), "{}", spool.display());
    }
    for t in tasks {
        t.abort();
    }
    good_task.abort();
    listen_task.abort();
}

/// A raw TLS connection to the listener as `id`.
async fn raw_client(
    ctrl: &decnet_swarm::master::Controller,
    id: &Identity,
    addr: std::net::SocketAddr,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut tls = worker_tls(ctrl, id);
    tls.alpn_protocols.clear();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    connector
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// Everything the listener sends until it closes (bounded by a timeout).
async fn read_to_close(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the listener did not close the connection; got {got:?}"),
        }
    }
}

fn frames_of(events: std::ops::Range<u64>) -> Vec<u8> {
    let mut wire = Vec::new();
    for i in events {
        rfc5425::encode(envelope_line(&event(i)).as_bytes(), &mut wire).unwrap();
    }
    wire
}

#[tokio::test]
async fn an_oversized_frame_closes_the_connection_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let ctrl = controller(dir.path()).await;
    let id = worker(&ctrl, dir.path(), "worker-1", true).await;
    let (task, addr) = start_listener(&ctrl, "127.0.0.1:0".parse().unwrap()).await;
    let mut s = raw_client(&ctrl, &id, addr).await;
    // A 65 537-byte frame: refused from its prefix, its payload never read.
    let line = envelope_line(&event(1));
    let mut payload = line.into_bytes();
    payload.resize(rfc5425::MAX_FRAME + 1, b'x');
    let mut wire = format!("{} ", payload.len()).into_bytes();
    wire.extend_from_slice(&payload);
    let _ = s.write_all(&wire).await;
    let got = read_to_close(&mut s).await;
    assert!(got.is_empty(), "nothing is acknowledged: {got:?}");
    assert_eq!(rows(&ctrl).await, 0);
    task.abort();
}

#[tokio::test]
async fn a_valid_stream_then_a_bad_frame_commits_and_acknowledges_the_valid_part() {
    let dir = tempfile::tempdir().unwrap();
    let ctrl = controller(dir.path()).await;
    let id = worker(&ctrl, dir.path(), "worker-1", true).await;
    let (task, addr) = start_listener(&ctrl, "127.0.0.1:0".parse().unwrap()).await;

    // Five good frames, then a frame whose payload is not an envelope, then good ones.
    let mut s = raw_client(&ctrl, &id, addr).await;
    let mut wire = frames_of(0..5);
    rfc5425::encode(b"<13>1 - host app - - - not an envelope", &mut wire).unwrap();
    wire.extend_from_slice(&frames_of(5..8));
    s.write_all(&wire).await.unwrap();
    let got = read_to_close(&mut s).await;
    assert_eq!(got, b"5 ack 5");
    assert_eq!(rows(&ctrl).await, 5);

    // Three good frames, then an oversized prefix: three committed and acknowledged.
    let mut s = raw_client(&ctrl, &id, addr).await;
    let mut wire = frames_of(10..13);
    wire.extend_from_slice(b"99999 ");
    s.write_all(&wire).await.unwrap();
    let got = read_to_close(&mut s).await;
    assert_eq!(got, b"5 ack 3");
    assert_eq!(rows(&ctrl).await, 8);

    // Sending the first five again stores nothing new and is acknowledged.
    let mut s = raw_client(&ctrl, &id, addr).await;
    s.write_all(&frames_of(0..5)).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], b"5 ack 5");
    assert_eq!(rows(&ctrl).await, 8);
    task.abort();
}

/// A listener that answers every read with a bogus acknowledgement (`garbage`), counting
/// connections.
async fn bogus_listener(
    ctrl: &decnet_swarm::master::Controller,
    tcp: TcpListener,
    garbage: &'static [u8],
    connections: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut tls = (*decnet_swarm::tls::server_config(
        &ctrl.swarmctl,
        decnet_swarm::tls::ClientAuth::Required,
    )
    .unwrap())
    .clone();
    tls.alpn_protocols.clear();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    loop {
        let (stream, _) = tcp.accept().await.unwrap();
        connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(mut s) = acceptor.accept(stream).await else {
                return;
            };
            let mut buf = [0u8; 4096];
            while let Ok(n) = s.read(&mut buf).await {
                if n == 0 || s.write_all(garbage).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test]
async fn garbage_acknowledgements_advance_nothing_and_the_forwarder_keeps_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let ctrl = controller(dir.path()).await;
    let id = worker(&ctrl, dir.path(), "worker-1", true).await;
    let spool_dir = dir.path().join("worker/spool");
    fill_spool(&spool_dir, 0, 500).await;
    for garbage in [&b"10 ack 999999"[..], b"5 nak 1", b"x"] {
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let fake = tokio::spawn({
            let ctrl = ctrl.clone();
            let connections = connections.clone();
            async move { bogus_listener(&ctrl, tcp, garbage, connections).await }
        });
        let fwd = tokio::spawn(decnet_swarm::forward::run(
            forwarder(&ctrl, &id, addr.to_string(), &spool_dir),
            std::future::pending(),
        ));
        // Each bogus answer ends the session and the forwarder comes back.
        let retried = eventually(Duration::from_secs(10), || async {
            connections.load(std::sync::atomic::Ordering::SeqCst) >= 3
        })
        .await;
        assert!(retried, "{garbage:?}: the forwarder did not reconnect");
        assert!(!fwd.is_finished(), "{garbage:?}: the forwarder exited");
        fwd.abort();
        fake.abort();
        let r = SpoolReader::open(&spool_dir).unwrap();
        assert_eq!(r.acked(), Default::default(), "{garbage:?}");
    }
    // A real listener on a new address: everything arrives once.
    let (task, addr) = start_listener(&ctrl, "127.0.0.1:0".parse().unwrap()).await;
    let fwd = tokio::spawn(decnet_swarm::forward::run(
        forwarder(&ctrl, &id, addr.to_string(), &spool_dir),
        std::future::pending(),
    ));
    assert!(
        eventually(Duration::from_secs(10), || async {
            rows(&ctrl).await == 500
        })
        .await
    );
    fwd.abort();
    task.abort();
}

#[tokio::test]
async fn a_certificate_revoked_mid_stream_stops_the_stream_at_the_next_check() {
    let dir = tempfile::tempdir().unwrap();
    let ctrl = controller(dir.path()).await;
    let id = worker(&ctrl, dir.path(), "worker-1", true).await;
    let mut l = listener(&ctrl, ingester(&ctrl));
    l.recheck_interval = Duration::from_millis(100);
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let task = tokio::spawn(l.run_on(tcp, std::future::pending()));
    let spool_dir = dir.path().join("worker/spool");
    fill_spool(&spool_dir, 0, 100).await;
    let fwd = tokio::spawn(decnet_swarm::forward::run(
        forwarder(&ctrl, &id, addr.to_string(), &spool_dir),
        std::future::pending(),
    ));
    assert!(
        eventually(Duration::from_secs(10), || async {
            rows(&ctrl).await == 100
        })
        .await
    );
    ctrl.repo
        .revoke_fingerprint(&RevokedFingerprint {
            fingerprint: id.fingerprint.clone(),
            host_uuid: None,
            revoked_at: Timestamp::now(),
            reason: None,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // The connection opened before the revocation is still up; its next batch is refused.
    fill_spool(&spool_dir, 100, 200).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rows(&ctrl).await, 100);
    fwd.abort();
    task.abort();
}

/// Sends `events` as frames on `s` and returns the acknowledgement that follows.
async fn send_events(
    s: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    events: &[&decnet_fleet::logs::CollectedEvent],
) -> String {
    let mut wire = Vec::new();
    for e in events {
        rfc5425::encode(envelope_line(e).as_bytes(), &mut wire).unwrap();
    }
    s.write_all(&wire).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// The stored row of event `ev`.
async fn row_of(
    ctrl: &decnet_swarm::master::Controller,
    ev: &decnet_fleet::logs::CollectedEvent,
) -> decnet_store::LogRow {
    let rows = ctrl
        .repo
        .query_logs(&decnet_store::LogQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    rows.into_iter()
        .find(|r| r.dedup_key == ev.key)
        .unwrap_or_else(|| panic!("no row for {}", ev.decky))
}

#[tokio::test]
async fn events_for_deckies_or_services_a_worker_was_not_assigned_are_stored_unattributed() {
    let dir = tempfile::tempdir().unwrap();
    let ctrl = controller(dir.path()).await;
    let id = worker(&ctrl, dir.path(), "worker-1", true).await;
    // worker-2's decky: worker-1 must not be able to write into its history.
    worker(&ctrl, dir.path(), "worker-2", true).await;
    assign(&ctrl, "worker-2", "db-01", &["mysql"]).await;
    let (task, addr) = start_listener(&ctrl, "127.0.0.1:0".parse().unwrap()).await;

    let own = event(1); // web-01 / ssh: assigned to worker-1
    let mut foreign = event(2);
    foreign.decky = "db-01".into();
    foreign.service = "mysql".into();
    let mut wrong_service = event(3); // web-03 runs ssh only
    wrong_service.service = "mysql".into();
    let mut s = raw_client(&ctrl, &id, addr).await;
    let ack = send_events(&mut s, &[&own, &foreign, &wrong_service]).await;
    assert_eq!(ack, "5 ack 3", "all three are stored");

    let r = row_of(&ctrl, &own).await;
    assert_eq!((r.decky.as_str(), r.service.as_str()), ("web-01", "ssh"));
    assert!(!r.fields.contains_key("claimed_decky"));

    let r = row_of(&ctrl, &foreign).await;
    assert_eq!((r.decky.as_str(), r.service.as_str()), ("-", "-"));
    assert_eq!(r.fields["claimed_decky"], "db-01");
    assert_eq!(r.fields["claimed_service"], "mysql");
    assert_eq!(r.source_worker.as_deref(), Some("worker-1"));
    let in_db01 = ctrl
        .repo
        .count_logs(&LogFilter {
            decky: Some("db-01".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(in_db01, 0, "nothing lands in worker-2's decky");

    let r = row_of(&ctrl, &wrong_service).await;
    assert_eq!((r.decky.as_str(), r.service.as_str()), ("web-03", "-"));
    assert_eq!(r.fields["claimed_service"], "mysql");
    assert!(!r.fields.contains_key("claimed_decky"));

    // A decky assigned while the connection is open is recognised once the list is
    // read again (on a miss, at most once per SHARD_REFRESH).
    assign(&ctrl, "worker-1", "new-01", &["ssh"]).await;
    tokio::time::sleep(decnet_swarm::listen::SHARD_REFRESH).await;
    let mut late = event(4);
    late.decky = "new-01".into();
    assert_eq!(send_events(&mut s, &[&late]).await, "5 ack 4");
    let r = row_of(&ctrl, &late).await;
    assert_eq!((r.decky.as_str(), r.service.as_str()), ("new-01", "ssh"));

    // A decky of a deploy in flight (no shard row yet) is accepted at once; once the
    // deploy is over and wrote no row for it, it is not; a decky removed from the shards
    // while the connection is open stays accepted (lines spooled before a teardown).
    let l = listener(&ctrl, ingester(&ctrl)).with_assigning(ctrl.assigning.clone());
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr2 = tcp.local_addr().unwrap();
    let listener2 = tokio::spawn(l.run_on(tcp, std::future::pending()));
    let mut s = raw_client(&ctrl, &id, addr2).await;
    let host = decnet_core::HostUuid::new("uuid-worker-1").unwrap();
    let ssh = vec!["ssh".to_owned()];
    let deploying = ctrl.assigning.begin(&host, [("fresh-01", ssh.as_slice())]);
    let mut fresh = event(5);
    fresh.decky = "fresh-01".into();
    // The connection has read its shard list (web-06 in it) once this is acknowledged.
    assert_eq!(send_events(&mut s, &[&event(6)]).await, "5 ack 1");
    assert!(
        ctrl.repo
            .delete_shard(&host, &decnet_core::DeckyName::new("web-06").unwrap())
            .await
            .unwrap()
    );
    tokio::time::sleep(decnet_swarm::listen::SHARD_REFRESH).await;
    let removed = event(22); // web-06 again
    assert_eq!(send_events(&mut s, &[&fresh, &removed]).await, "5 ack 3");
    let r = row_of(&ctrl, &fresh).await;
    assert_eq!((r.decky.as_str(), r.service.as_str()), ("fresh-01", "ssh"));
    let r = row_of(&ctrl, &removed).await;
    assert_eq!((r.decky.as_str(), r.service.as_str()), ("web-06", "ssh"));
    drop(deploying);
    let mut again = event(7);
    again.decky = "fresh-01".into();
    assert_eq!(send_events(&mut s, &[&again]).await, "5 ack 4");
    let r = row_of(&ctrl, &again).await;
    assert_eq!(r.decky, "-");
    assert_eq!(r.fields["claimed_decky"], "fresh-01");
    listener2.abort();
    task.abort();
}
