//! The collector against a real Docker daemon (provisioned by `.ci/provision/10-docker.sh`;
//! the decky binary comes from `cargo xtask test`): a decky deployed after the collector
//! started is picked up from the event stream, its lines arrive attributed from its
//! labels with Docker's timestamps, and a restart from the cursor file repeats nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// The teardown guard is shared with the runtime's live tests, the lab network with the
// CLI's and the runtime's (one copy each).
#[path = "../../decnet-runtime/tests/it/guard.rs"]
mod guard;
#[allow(dead_code)]
#[path = "../../decnet/tests/it/lab.rs"]
mod lab;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use decnet_core::{DecnetConfig, Settings};
use decnet_fleet::logs::collector::{CURSOR_FILE, Collector, CollectorOptions, CollectorStats};
use decnet_fleet::logs::{CollectedEvent, CommitOutcome, EventSink, Origin, SinkError};
use decnet_runtime::Engine as _;
use decnet_runtime::deploy::{DeployOptions, Silent, deploy};
use decnet_runtime::docker::DockerEngine;
use decnet_runtime::hairpin::NetlinkHostNetwork;
use decnet_runtime::image::ensure_image;
use decnet_runtime::logs::LogStream;
use decnet_runtime::spec::Project;
use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;

use guard::Teardown;
use lab::{LIVE, Lab, live_env};

#[derive(Default)]
struct MemSink(Mutex<Vec<CollectedEvent>>);

impl MemSink {
    fn of(&self, decky: &str) -> Vec<CollectedEvent> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.decky == decky)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl EventSink for MemSink {
    async fn commit(
        &self,
        _: &Origin,
        batch: &[CollectedEvent],
    ) -> Result<CommitOutcome, SinkError> {
        self.0.lock().unwrap().extend_from_slice(batch);
        Ok(CommitOutcome {
            inserted: batch.len() as u64,
            duplicates: 0,
        })
    }
}

struct Running {
    token: CancellationToken,
    stats: CollectorStats,
    handle: tokio::task::JoinHandle<decnet_fleet::logs::collector::CollectorSummary>,
}

fn start(engine: &DockerEngine, sink: &Arc<MemSink>, cursor: &Path) -> Running {
    let options = CollectorOptions {
        batch_window: Duration::from_millis(20),
        // Only the event stream can pick up the decky deployed below.
        rescan_interval: Duration::from_secs(3600),
        ..CollectorOptions::default()
    };
    let collector =
        Collector::new(Arc::new(engine.clone()), sink.clone(), cursor, options).unwrap();
    let stats = collector.stats();
    let token = CancellationToken::new();
    let handle = tokio::spawn(collector.run(token.clone()));
    Running {
        token,
        stats,
        handle,
    }
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn request(lab: &Lab, ip: &str, path: &str) {
    request_with(lab, ip, path, "");
}

/// `GET path` with extra header lines (`Name: value\\r\\n` each, printf-escaped).
fn request_with(lab: &Lab, ip: &str, path: &str, headers: &str) {
    let out = lab.exec(&format!(
        "exec 3<>/dev/tcp/{ip}/80 && printf 'GET {path} HTTP/1.0\\r\\n{headers}\\r\\n' >&3 && timeout 5 head -c 16 <&3"
    ));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("HTTP/1."),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn collects_a_live_decky_attributed_by_labels_and_resumes_without_repeats() {
    let Some(decky_bin) = live_env() else { return };
    let _serial = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::new();
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::under(dir.path());
    let project = Project::new(&format!("lc-{}", lab.tag)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let engine = rt.block_on(DockerEngine::connect(None)).unwrap();
    let _guard = Teardown {
        rt: &rt,
        engine: &engine,
        settings: &settings,
        project: project.clone(),
    };
    let bin = PathBuf::from(&decky_bin);
    rt.block_on(ensure_image(&engine, || Ok(bin.clone()), false, false))
        .unwrap();

    let decky = format!("{}-a", lab.tag);
    let ip = format!("{}.20", lab.prefix);
    let cfg: DecnetConfig = serde_json::from_value(serde_json::json!({
        "mode": "unihost", "interface": lab.parent, "subnet": format!("{}.0/24", lab.prefix),
        "gateway": format!("{}.1", lab.prefix),
        "deckies": [
            {"name": decky, "ip": ip, "services": ["http"], "distro": "debian",
             "base_image": "debian:bookworm-slim", "hostname": "SRV-ATLAS-12", "nmap_os": "linux"}
        ]
    }))
    .unwrap();
    let cursor = dir.path().join(CURSOR_FILE);
    let started = decnet_store::Timestamp::now();

    rt.block_on(async {
        // The collector first: the decky below is found through the event stream.
        let first = Arc::new(MemSink::default());
        let run = start(&engine, &first, &cursor);
        let report = deploy(
            &engine,
            &NetlinkHostNetwork,
            &settings,
            &cfg,
            &DeployOptions {
                project: project.clone(),
                ..DeployOptions::default()
            },
            &Silent,
        )
        .await
        .unwrap();
        assert!(report.all_running(), "{report:#?}");
        let containers = engine.list_managed(project.as_str()).await.unwrap();
        let http = containers
            .iter()
            .find(|c| c.service() == Some("http"))
            .unwrap()
            .clone();
        wait_for("the http container to be followed", || {
            run.stats.followed().contains(&http.id)
        })
        .await;

        // The service's startup line, then a request from the lab's LAN.
        wait_for("the startup line", || {
            first
                .of(&decky)
                .iter()
                .any(|e| e.raw_line.contains(" startup "))
        })
        .await;
        request(&lab, &ip, "/collector-probe-1");
        wait_for("the request line", || {
            first
                .of(&decky)
                .iter()
                .any(|e| e.raw_line.contains("collector-probe-1"))
        })
        .await;
        // A line longer than Docker's 16 KiB message buffer (each event field is capped
        // at 4 KiB, so several long ones): stored as partial messages, handed on as one.
        let long_path = format!("/long-{}", "p".repeat(4_000));
        let query = "r".repeat(4_000);
        let agent = "u".repeat(3_500);
        let host = "h".repeat(3_500);
        request_with(
            &lab,
            &ip,
            &format!("{long_path}?{query}"),
            &format!("User-Agent: {agent}\\r\\nHost: {host}\\r\\n"),
        );
        wait_for("the long request line", || {
            first
                .of(&decky)
                .iter()
                .any(|e| e.raw_line.contains("/long-"))
        })
        .await;
        let long: Vec<CollectedEvent> = first
            .of(&decky)
            .into_iter()
            .filter(|e| e.raw_line.contains("/long-") || e.raw_line.contains("rrrr"))
            .collect();
        assert_eq!(long.len(), 1, "one line, not its parts");
        let text = &long[0].raw_line;
        assert!(text.len() > 16 * 1024, "{}", text.len());
        for part in [&long_path, &query, &agent, &host] {
            assert!(text.contains(part.as_str()), "{text}");
        }
        assert!(text.starts_with('<'), "{text}");

        let summary = {
            run.token.cancel();
            run.handle.await.unwrap()
        };
        assert!(summary.committed >= 2);
        let got = first.of(&decky);
        for e in &got {
            assert_eq!(e.service, "http", "{e:?}");
            assert!(e.received >= started.minus(Duration::from_secs(5)), "{e:?}");
            assert!(e.received <= decnet_store::Timestamp::now(), "{e:?}");
        }
        // Keys and timestamps are Docker's: the same lines read straight from the engine.
        let probe = got
            .iter()
            .find(|e| e.raw_line.contains("collector-probe-1"))
            .unwrap();
        let mut direct = engine.follow_logs(&http.id, 0);
        let line = loop {
            let line = tokio::time::timeout(Duration::from_secs(10), direct.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if line.line == probe.raw_line {
                break line;
            }
        };
        drop(direct);
        assert_eq!(line.stream, LogStream::Stdout);
        assert_eq!(
            probe.key,
            CollectedEvent::container_key(&http.id, line.ts_nanos, &line.line)
        );
        assert_eq!(
            i128::from(probe.received.as_unix_micros()),
            line.ts_nanos / 1_000
        );
        let mut keys: Vec<&str> = got.iter().map(|e| e.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), got.len(), "a line was delivered twice");

        // While the collector is down.
        request(&lab, &ip, "/collector-probe-2");

        // Restart from the cursor: only what is new arrives, once.
        let second = Arc::new(MemSink::default());
        let run = start(&engine, &second, &cursor);
        wait_for("the down-time request", || {
            second
                .of(&decky)
                .iter()
                .any(|e| e.raw_line.contains("collector-probe-2"))
        })
        .await;
        request(&lab, &ip, "/collector-probe-3");
        wait_for("the new request", || {
            second
                .of(&decky)
                .iter()
                .any(|e| e.raw_line.contains("collector-probe-3"))
        })
        .await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        run.token.cancel();
        run.handle.await.unwrap();
        let again = second.of(&decky);
        let first_keys: std::collections::HashSet<&str> =
            got.iter().map(|e| e.key.as_str()).collect();
        for e in &again {
            assert!(!first_keys.contains(e.key.as_str()), "repeated: {e:?}");
            assert!(!e.raw_line.contains(" startup "), "repeated: {e:?}");
        }
        for probe in ["collector-probe-2", "collector-probe-3"] {
            assert_eq!(
                again.iter().filter(|e| e.raw_line.contains(probe)).count(),
                1,
                "{probe}: {again:#?}"
            );
        }
    });
}
