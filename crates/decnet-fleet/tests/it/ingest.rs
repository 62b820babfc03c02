//! The ingester: one store transaction per batch, bus events after it, the SIEM copy.

use std::sync::Arc;
use std::time::Duration;

use decnet_bus::{Bus as _, MemoryHub, Pattern};
use decnet_fleet::logs::ingest::Ingester;
use decnet_fleet::logs::siem::{SiemOutput, SiemTarget};
use decnet_fleet::logs::{CollectedEvent, EventSink as _, Origin};
use decnet_store::memory::MemoryStore;
use decnet_store::{
    AttackerRepo as _, CredentialFilter, CredentialRepo as _, LogFilter, LogQuery, LogRepo as _,
    Order, Timestamp,
};
use decnet_wire::rfc5424::unwrap;
use decnet_wire::rfc5425;
use tokio::io::AsyncReadExt as _;
use tokio_util::sync::CancellationToken;

const RCV: Timestamp = Timestamp::from_unix_micros(1_800_000_000_000_000);

fn event(n: u32, decky: &str, service: &str, line: &str) -> CollectedEvent {
    CollectedEvent {
        key: CollectedEvent::container_key("c", i128::from(n), line),
        decky: decky.to_owned(),
        service: service.to_owned(),
        received: RCV,
        raw_line: line.to_owned(),
        claimed: Default::default(),
    }
}

fn auth(ip: &str, user: &str, b64: &str) -> String {
    format!(
        "<134>1 2026-11-27T08:00:00.000001+00:00 decky-01 ssh - auth_attempt \
         [relay@55555 src_ip=\"{ip}\" src_port=\"40000\" principal=\"{user}\" \
         secret_kind=\"plaintext\" secret_b64=\"{b64}\" outcome=\"failure\"]"
    )
}

fn batch() -> Vec<CollectedEvent> {
    vec![
        event(
            1,
            "decky-01",
            "ssh",
            &auth("203.0.113.9", "root", "aHVudGVyMg=="),
        ),
        event(
            2,
            "decky-01",
            "ssh",
            &auth("203.0.113.9", "root", "aHVudGVyMg=="),
        ),
        // Forged from inside decky-01's ssh container, claiming decky-02's mysql.
        event(
            3,
            "decky-01",
            "ssh",
            &auth("203.0.113.9", "admin", "YWRtaW4=").replace("decky-01 ssh", "decky-02 mysql"),
        ),
        event(4, "decky-01", "ssh", "not a syslog line"),
    ]
}

#[tokio::test]
async fn a_batch_is_stored_once_and_announced_once() {
    let store = Arc::new(MemoryStore::new());
    let hub = MemoryHub::new(1024);
    let bus: Arc<dyn decnet_bus::Bus> = Arc::new(hub.connect("ingester"));
    let tap = hub.connect("tap");
    let mut attackers = tap
        .subscribe(Pattern::new("attacker.>").unwrap())
        .await
        .unwrap();
    let mut creds = tap
        .subscribe(Pattern::new("credential.>").unwrap())
        .await
        .unwrap();
    let ingester = Ingester::new(store.clone(), Some(bus));

    let done = ingester.commit(&Origin::Local, &batch()).await.unwrap();
    assert_eq!((done.inserted, done.duplicates), (4, 0));
    let rows = store
        .query_logs(&LogQuery {
            filter: LogFilter::default(),
            order: Order::OldestFirst,
            cursor: None,
            offset: 0,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 4);
    assert!(
        rows.iter()
            .all(|r| r.decky == "decky-01" && r.service == "ssh")
    );
    assert_eq!(rows[2].fields["claimed_hostname"], "decky-02");
    assert_eq!(rows[3].event_type, "unparsed");
    let a = store
        .get_attacker_by_ip("203.0.113.9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.event_count, 3);
    assert_eq!(a.deckies, vec!["decky-01".to_owned()]);
    assert_eq!(a.services, vec!["ssh".to_owned()]);
    let c = store
        .list_credentials(&CredentialFilter::default(), 100, 0)
        .await
        .unwrap();
    assert_eq!(c.len(), 2);
    let root = c
        .iter()
        .find(|c| c.principal.as_deref() == Some("root"))
        .unwrap();
    assert_eq!(root.attempt_count, 2);
    assert_eq!(root.decky, "decky-01");

    // Bus events came after the write: one attacker, two credential upserts.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut seen = Vec::new();
    while let Some(e) = attackers.try_recv() {
        seen.push(e);
    }
    assert_eq!(seen.len(), 1);
    let p: serde_json::Value = seen[0].payload_as().unwrap();
    assert_eq!(p["ip"], "203.0.113.9");
    assert_eq!(p["event_count"], 3);
    assert_eq!(p["created"], true);
    let mut captured = Vec::new();
    while let Some(e) = creds.try_recv() {
        captured.push(e.payload_as::<serde_json::Value>().unwrap());
    }
    assert_eq!(
        captured.len(),
        3,
        "one event per inserted attempt: {captured:?}"
    );
    assert!(captured.iter().all(|p| p.get("secret_b64").is_none()));

    // The same batch again (a retry after a crash): nothing changes, nothing announced.
    let again = ingester.commit(&Origin::Local, &batch()).await.unwrap();
    assert_eq!((again.inserted, again.duplicates), (0, 4));
    let a2 = store
        .get_attacker_by_ip("203.0.113.9")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a2.event_count, 3);
    let c2 = store
        .list_credentials(&CredentialFilter::default(), 100, 0)
        .await
        .unwrap();
    assert_eq!(c2.iter().map(|c| c.attempt_count).sum::<u64>(), 3);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(attackers.try_recv().is_none());
    assert!(creds.try_recv().is_none());
}

#[tokio::test]
async fn the_siem_gets_each_new_event_once_with_its_trusted_origin() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let siem = SiemOutput::start(
        SiemTarget {
            address: addr.to_string(),
            tls: None,
        },
        stop.clone(),
    );
    let store = Arc::new(MemoryStore::new());
    let ingester = Ingester::new(store, None).with_siem(siem.clone());
    ingester.commit(&Origin::Local, &batch()).await.unwrap();
    ingester.commit(&Origin::Local, &batch()).await.unwrap();

    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut buf = Vec::new();
    let mut frames = Vec::new();
    while frames.len() < 4 {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "SIEM connection closed early");
        buf.extend_from_slice(&chunk[..n]);
        while let Some((range, used)) = rfc5425::decode(&buf).unwrap() {
            frames.push(String::from_utf8(buf[range].to_vec()).unwrap());
            buf.drain(..used);
        }
    }
    // Nothing more: the duplicate batch was not sent again.
    let mut extra = [0u8; 64];
    let more = tokio::time::timeout(Duration::from_millis(300), conn.read(&mut extra)).await;
    assert!(more.is_err(), "unexpected bytes after the four events");
    let forged = &batch()[2];
    let (env, raw) = unwrap(&frames[2]).unwrap();
    assert_eq!(raw, forged.raw_line);
    assert_eq!(
        (env.decky.as_str(), env.service.as_str()),
        ("decky-01", "ssh")
    );
    assert_eq!(env.key, forged.key);
    assert_eq!(siem.dropped(), 0);
    stop.cancel();
}

#[tokio::test]
async fn the_siem_copy_goes_over_verified_tls() {
    use rustls_pki_types::pem::PemObject as _;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca = rcgen::generate_simple_self_signed(vec!["siem.test".to_owned()]).unwrap();
    let cert = CertificateDer::from_pem_slice(ca.cert.pem().as_bytes()).unwrap();
    let key = PrivateKeyDer::from_pem_slice(ca.key_pair.serialize_pem().as_bytes()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let siem = SiemOutput::start(
        SiemTarget {
            address: addr.to_string(),
            tls: Some((
                Arc::new(client),
                ServerName::try_from("siem.test".to_owned()).unwrap(),
            )),
        },
        stop.clone(),
    );
    let ingester = Ingester::new(Arc::new(MemoryStore::new()), None).with_siem(siem);
    ingester
        .commit(&Origin::Local, &batch()[..1])
        .await
        .unwrap();
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut tls = acceptor.accept(tcp).await.unwrap();
    let mut buf = Vec::new();
    let frame = loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
        if let Some((range, _)) = rfc5425::decode(&buf).unwrap() {
            break String::from_utf8(buf[range].to_vec()).unwrap();
        }
    };
    let (env, raw) = unwrap(&frame).unwrap();
    assert_eq!(raw, batch()[0].raw_line);
    assert_eq!(env.decky, "decky-01");
    stop.cancel();
}

#[tokio::test]
async fn a_siem_with_the_wrong_certificate_gets_nothing() {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let other = rcgen::generate_simple_self_signed(vec!["other.test".to_owned()]).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(
            other.cert.der().to_vec(),
        ))
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    // An impostor presenting its own self-signed certificate for the expected name.
    let impostor = rcgen::generate_simple_self_signed(vec!["siem.test".to_owned()]).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls_pki_types::CertificateDer::from(
                impostor.cert.der().to_vec(),
            )],
            rustls_pki_types::PrivateKeyDer::try_from(impostor.key_pair.serialize_der()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let siem = SiemOutput::start(
        SiemTarget {
            address: addr.to_string(),
            tls: Some((
                Arc::new(client),
                rustls_pki_types::ServerName::try_from("siem.test".to_owned()).unwrap(),
            )),
        },
        stop.clone(),
    );
    let ingester = Ingester::new(Arc::new(MemoryStore::new()), None).with_siem(siem);
    ingester
        .commit(&Origin::Local, &batch()[..1])
        .await
        .unwrap();
    let (tcp, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .unwrap()
        .unwrap();
    // The client refuses the handshake: the impostor reads no application byte.
    match acceptor.accept(tcp).await {
        Err(_) => {}
        Ok(mut tls) => {
            let mut chunk = [0u8; 64];
            let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut chunk))
                .await
                .unwrap()
                .unwrap_or(0);
            assert_eq!(n, 0, "application data reached an unverified server");
        }
    }
    stop.cancel();
}

/// Refuses the second event of the first batch it sees, like a store whose limits an
/// event exceeds, then behaves.
struct RefuseOnce {
    inner: MemoryStore,
    refused: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl decnet_store::IngestRepo for RefuseOnce {
    async fn ingest(
        &self,
        batch: &[decnet_store::IngestEvent],
    ) -> decnet_store::Result<decnet_store::IngestOutcome> {
        if !self.refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
            // Nothing written: the whole batch is refused, naming the event.
            return Err(decnet_store::Error::InvalidEvent {
                index: 1,
                source: Box::new(decnet_store::Error::Invalid {
                    what: "credential fields",
                    reason: "too large".into(),
                }),
            });
        }
        self.inner.ingest(batch).await
    }
}

#[tokio::test]
async fn an_event_the_store_refuses_is_kept_as_its_line_and_the_batch_goes_in() {
    let store = Arc::new(RefuseOnce {
        inner: MemoryStore::new(),
        refused: std::sync::atomic::AtomicBool::new(false),
    });
    let ingester = Ingester::new(store.clone(), None);
    let done = ingester.commit(&Origin::Local, &batch()).await.unwrap();
    assert_eq!(done.inserted, 4);
    let c = store
        .inner
        .list_credentials(&CredentialFilter::default(), 100, 0)
        .await
        .unwrap();
    // Event 1's credential was dropped by the repair; events 0 and 2 kept theirs.
    assert_eq!(c.iter().map(|c| c.attempt_count).sum::<u64>(), 2);
    let rows = store
        .inner
        .query_logs(&LogQuery {
            filter: LogFilter::default(),
            order: Order::OldestFirst,
            cursor: None,
            offset: 0,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(rows[1].raw_line, batch()[1].raw_line);
}
