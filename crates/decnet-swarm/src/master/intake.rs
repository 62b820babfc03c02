//! Heartbeat group commit: request handlers queue heartbeats on a bounded channel, one
//! task records whatever is pending in one `apply_heartbeats` call and answers each
//! request with its own outcome.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Weak;

use decnet_core::HostUuid;
use decnet_store::{Fingerprint, HeartbeatOutcome, HeartbeatWrite, ObservedShard, Timestamp};
use tokio::sync::{mpsc, oneshot};

use super::Controller;
use super::worker::observed_state;
use crate::proto::AgentStatus;
use crate::serve::ApiError;

/// Heartbeats that may wait for the recorder; one more is answered 503 at once.
pub const MAX_PENDING_HEARTBEATS: usize = 1024;

/// Heartbeats recorded in one transaction.
pub const MAX_HEARTBEAT_BATCH: usize = 256;

/// Longest wait for the store to record one batch. Past it every heartbeat of the batch
/// is answered 503, so a hung database stalls no agent longer than this; the write itself
/// is left to finish (with its shard locks held), never cancelled, so the shard rows end
/// as the heartbeat said and no deploy outcome is written in between.
pub const STORE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
const _: () = assert!(MAX_HEARTBEAT_BATCH <= decnet_store::limits::MAX_BATCH);
const _: () = assert!(MAX_HEARTBEAT_BATCH > 0);

/// The answer a heartbeat request gets.
pub type Reply = Result<(), ApiError>;

/// A heartbeat whose certificate role was checked, waiting to be recorded.
#[derive(Debug)]
pub struct Pending {
    /// The host the heartbeat names.
    pub host: HostUuid,
    /// The presenting certificate.
    pub fingerprint: Fingerprint,
    /// The agent's version (already cut to its limit).
    pub agent_version: Option<String>,
    /// The reported status (the snapshot, the LAN, the generation).
    pub status: AgentStatus,
    /// [`super::worker::snapshot_digest`] of `status`.
    pub digest: u64,
    /// Where the answer goes.
    pub reply: oneshot::Sender<Reply>,
}

/// The sending side of the recorder's queue.
pub(super) type Intake = mpsc::Sender<Pending>;

/// Creates the queue and starts the recorder on the current runtime. The recorder
/// holds the controller weakly and ends when the queue's sender (owned by the
/// controller) is dropped.
pub(super) fn start(ctrl: Weak<Controller>) -> Intake {
    let (tx, rx) = mpsc::channel(MAX_PENDING_HEARTBEATS);
    tokio::spawn(run(ctrl, rx));
    tx
}

/// Queues `pending` without waiting for room and returns its answer, which arrives on
/// `answer` (the receiving end of `pending.reply`).
pub(super) async fn submit(
    intake: &Intake,
    pending: Pending,
    answer: oneshot::Receiver<Reply>,
) -> Reply {
    match intake.try_send(pending) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            return Err(ApiError::unavailable(
                "heartbeat intake is full, retry later",
            ));
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            return Err(ApiError::unavailable("heartbeat intake stopped"));
        }
    }
    answer
        .await
        .unwrap_or_else(|_| Err(ApiError::unavailable("heartbeat intake stopped")))
}

async fn run(ctrl: Weak<Controller>, mut rx: mpsc::Receiver<Pending>) {
    let mut deferred: VecDeque<Pending> = VecDeque::new();
    let mut incoming = Vec::with_capacity(MAX_HEARTBEAT_BATCH);
    loop {
        incoming.extend(deferred.drain(..));
        let room = MAX_HEARTBEAT_BATCH.saturating_sub(incoming.len());
        if incoming.is_empty() {
            if rx.recv_many(&mut incoming, room).await == 0 {
                return;
            }
        } else {
            while incoming.len() < MAX_HEARTBEAT_BATCH {
                match rx.try_recv() {
                    Ok(p) => incoming.push(p),
                    Err(_) => break,
                }
            }
        }
        let batch = split_batch(&mut incoming, &mut deferred);
        let Some(ctrl) = ctrl.upgrade() else {
            return;
        };
        record_batch(&ctrl, batch).await;
    }
}

/// Takes the first heartbeat of each host out of `incoming` (arrival order kept) and
/// moves the later ones to `deferred`, so a batch names each host once and a host's
/// heartbeats are recorded in the order they came.
fn split_batch(incoming: &mut Vec<Pending>, deferred: &mut VecDeque<Pending>) -> Vec<Pending> {
    let mut seen = HashSet::with_capacity(incoming.len());
    let mut batch = Vec::with_capacity(incoming.len());
    for p in incoming.drain(..) {
        if seen.contains(&p.host) {
            deferred.push_back(p);
        } else {
            seen.insert(p.host.clone());
            batch.push(p);
        }
    }
    batch
}

/// The shard set a status describes (empty when nothing is deployed).
pub fn observed_snapshot(status: &AgentStatus) -> Vec<ObservedShard> {
    if !status.deployed {
        return Vec::new();
    }
    status
        .deckies
        .iter()
        .map(|d| ObservedShard {
            decky_name: d.name.clone(),
            services: d.services.clone(),
            decky_config: Some(d.clone()),
            decky_ip: Some(std::net::IpAddr::V4(d.ip)),
            state: observed_state(status, d.name.as_str()),
        })
        .collect()
}

/// What the recorder decided for one heartbeat before the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SnapshotPlan {
    /// Older than a recorded deploy or teardown: host row only.
    Stale,
    /// Same as the snapshot last written: host row only.
    Unchanged,
    /// Written.
    Write,
}

/// Records `batch` (each host at most once) in one transaction and answers every item.
///
/// The shard locks of every host in the batch are held from the generation check to
/// the commit, so a deploy outcome recorded meanwhile is never overwritten by an older
/// snapshot.
pub async fn record_batch(ctrl: &Controller, batch: Vec<Pending>) {
    if batch.is_empty() {
        return;
    }
    let stripes: BTreeSet<usize> = batch.iter().map(|p| ctrl.stripe_of(&p.host)).collect();
    let mut guards = Vec::with_capacity(stripes.len());
    for i in stripes {
        guards.push(ctrl.lock_stripe(i).await);
    }
    let mut plans = Vec::with_capacity(batch.len());
    let mut writes = Vec::with_capacity(batch.len());
    for p in &batch {
        let plan = if ctrl.is_stale(&p.host, p.status.generation) {
            SnapshotPlan::Stale
        } else if ctrl.snapshot_unchanged(&p.host, p.digest) {
            SnapshotPlan::Unchanged
        } else {
            SnapshotPlan::Write
        };
        writes.push(HeartbeatWrite {
            host_uuid: p.host.clone(),
            fingerprint: p.fingerprint.clone(),
            agent_version: p.agent_version.clone(),
            snapshot: (plan == SnapshotPlan::Write).then(|| observed_snapshot(&p.status)),
        });
        plans.push(plan);
    }
    let write = ctrl.repo.apply_heartbeats(&writes, Timestamp::now());
    tokio::pin!(write);
    let result = tokio::time::timeout(STORE_TIMEOUT, &mut write).await;
    let outcomes = match result {
        Ok(Ok(o)) => o,
        Err(_) => {
            tracing::error!(
                heartbeats = batch.len(),
                "The store did not record heartbeats in time; answering 503 and letting the write finish"
            );
            for p in batch {
                let _ = p.reply.send(Err(ApiError::unavailable(
                    "the database did not answer in time, retry later",
                )));
            }
            if let Err(e) = write.await {
                tracing::error!(error = %e, "Late heartbeat write failed");
            }
            drop(guards);
            return;
        }
        Ok(Err(e)) => {
            tracing::error!(error = %e, heartbeats = batch.len(), "Could not record heartbeats");
            drop(guards);
            for p in batch {
                let _ = p.reply.send(Err(ApiError::internal(&e)));
            }
            return;
        }
    };
    let mut outcomes = outcomes.into_iter();
    let mut replies = Vec::with_capacity(batch.len());
    for (p, plan) in batch.into_iter().zip(plans) {
        let reply = match outcomes.next() {
            Some(outcome) => settle(ctrl, &p, plan, outcome),
            None => Err(ApiError::internal(
                &"store returned fewer heartbeat outcomes",
            )),
        };
        replies.push((p.reply, reply));
    }
    drop(guards);
    for (tx, reply) in replies {
        // The requester may have gone (connection closed); nothing to do then.
        let _ = tx.send(reply);
    }
}

/// Applies the controller-side effects of one recorded outcome and returns the answer.
fn settle(ctrl: &Controller, p: &Pending, plan: SnapshotPlan, outcome: HeartbeatOutcome) -> Reply {
    match outcome {
        HeartbeatOutcome::Recorded => {
            ctrl.set_lan(&p.host, p.status.lan.clone());
            match plan {
                SnapshotPlan::Stale => {
                    // Taken before a deploy or teardown whose outcome is already recorded.
                    tracing::debug!(host = %p.host, "Stale heartbeat snapshot skipped");
                }
                SnapshotPlan::Unchanged => ctrl.note_generation(&p.host, p.status.generation),
                SnapshotPlan::Write => {
                    ctrl.note_generation(&p.host, p.status.generation);
                    ctrl.snapshot_written(&p.host, Some(p.digest));
                }
            }
            Ok(())
        }
        HeartbeatOutcome::Invalid(reason) => {
            ctrl.set_lan(&p.host, p.status.lan.clone());
            Err(ApiError::unprocessable(reason))
        }
        HeartbeatOutcome::UnknownHost => Err(ApiError::not_found("unknown host")),
        HeartbeatOutcome::Revoked => Err(ApiError::forbidden("certificate revoked")),
        HeartbeatOutcome::FingerprintMismatch => {
            tracing::warn!(host = %p.host, "Heartbeat with a certificate that is not the host's");
            Err(ApiError::forbidden("certificate fingerprint mismatch"))
        }
        HeartbeatOutcome::Decommissioning => {
            Err(ApiError::forbidden("host is being decommissioned"))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use axum::http::StatusCode;
    use decnet_core::DeckyConfig;
    use decnet_store::{
        FleetState, HostStatus, NewSwarmHost, Repository, RevokedFingerprint, ShardFilter,
        SwarmHostPatch,
    };

    use super::*;
    use crate::master::ControllerOptions;
    use crate::proto::DeckyRuntimeView;

    fn host(id: &str) -> HostUuid {
        HostUuid::new(id).unwrap()
    }

    fn fp(c: char) -> Fingerprint {
        Fingerprint::new(&c.to_string().repeat(64)).unwrap()
    }

    fn decky(name: &str, octet: u8) -> DeckyConfig {
        serde_json::from_value(serde_json::json!({
            "name": name, "ip": format!("10.9.0.{octet}"), "services": ["ssh"],
            "distro": "debian", "base_image": "debian:bookworm-slim",
            "hostname": format!("{name}-host"),
        }))
        .unwrap()
    }

    /// A deployed status with `names`, all running, at `generation`.
    fn status(names: &[&str], generation: u64) -> AgentStatus {
        let deckies: Vec<_> = names.iter().zip(10u8..).map(|(n, i)| decky(n, i)).collect();
        AgentStatus {
            runtime: deckies
                .iter()
                .map(|d| {
                    (
                        d.name.to_string(),
                        DeckyRuntimeView {
                            running: true,
                            state: Some("running".into()),
                            services: Default::default(),
                        },
                    )
                })
                .collect(),
            deckies,
            deployed: true,
            generation,
            ..AgentStatus::empty()
        }
    }

    fn pending(h: &str, pin: char, status: AgentStatus) -> (Pending, oneshot::Receiver<Reply>) {
        let (reply, answer) = oneshot::channel();
        let digest = super::super::worker::snapshot_digest(&status);
        let p = Pending {
            host: host(h),
            fingerprint: fp(pin),
            agent_version: Some("2.0".into()),
            status,
            digest,
            reply,
        };
        (p, answer)
    }

    async fn answer(rx: oneshot::Receiver<Reply>) -> (StatusCode, String) {
        answer_after(rx, Duration::from_secs(10)).await
    }

    async fn answer_after(rx: oneshot::Receiver<Reply>, wait: Duration) -> (StatusCode, String) {
        match tokio::time::timeout(wait, rx)
            .await
            .expect("answered in time")
            .expect("answered at all")
        {
            Ok(()) => (StatusCode::NO_CONTENT, String::new()),
            Err(e) => (e.status, e.detail),
        }
    }

    async fn shard_names(repo: &Arc<dyn Repository>, h: &str) -> Vec<(String, FleetState)> {
        repo.list_shards(&ShardFilter::host(host(h)))
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.decky_name.to_string(), s.state))
            .collect()
    }

    /// A controller over `repo` with hosts `u-a` … `u-e` pinned to `a` … `e`; `u-c` is
    /// being decommissioned and `d`'s certificate is revoked.
    async fn controller(repo: Arc<dyn Repository>) -> (Arc<Controller>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let opts = ControllerOptions {
            operator_listen: "127.0.0.1:0".parse().unwrap(),
            operator_tls: false,
            worker_listen: "127.0.0.1:0".parse().unwrap(),
            advertise_url: None,
            extra_sans: vec![],
            heartbeat_interval: Duration::from_secs(10),
            token_ttl: Duration::from_secs(60),
            ca_dir: dir.path().join("ca"),
            master_dir: dir.path().join("master"),
        };
        for (u, pin) in [
            ("u-a", 'a'),
            ("u-b", 'b'),
            ("u-c", 'c'),
            ("u-d", 'd'),
            ("u-e", 'e'),
        ] {
            repo.create_swarm_host(&NewSwarmHost {
                uuid: host(u),
                name: u.trim_start_matches("u-").into(),
                address: "10.0.0.5".into(),
                agent_port: 8765,
                client_cert_fingerprint: Some(fp(pin)),
                updater_cert_fingerprint: None,
                cert_bundle_path: "/nowhere".into(),
                enrolled_at: Timestamp::now(),
                notes: None,
                use_ipvlan: false,
            })
            .await
            .unwrap();
        }
        repo.update_swarm_host(
            &host("u-c"),
            &SwarmHostPatch {
                status: Some(HostStatus::Decommissioning),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        repo.revoke_fingerprint(&RevokedFingerprint {
            fingerprint: fp('d'),
            host_uuid: Some(host("u-d")),
            revoked_at: Timestamp::now(),
            reason: None,
        })
        .await
        .unwrap();
        let ctrl = Arc::new(Controller::new(repo, opts).unwrap());
        (ctrl, dir)
    }

    async fn stores() -> Vec<(&'static str, Arc<dyn Repository>, tempfile::TempDir)> {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = decnet_store::open(&decnet_store::StoreConfig::sqlite(
            dir.path().join("decnet.db"),
        ))
        .await
        .unwrap();
        vec![
            (
                "memory",
                Arc::new(decnet_store::memory::MemoryStore::new()),
                tempfile::tempdir().unwrap(),
            ),
            ("sqlite", sqlite, dir),
        ]
    }

    /// One transaction, eight heartbeats: each gets the answer it would get alone, and
    /// only the accepted ones change anything.
    #[tokio::test]
    async fn a_mixed_batch_answers_each_heartbeat_on_its_own() {
        for (store, repo, _db) in stores().await {
            let (ctrl, _dir) = controller(repo.clone()).await;
            // e's deploy outcome at generation 10 is recorded; its rows are the deploy's.
            ctrl.note_generation(&host("u-e"), 10);
            let (p, _) = pending("u-e", 'e', status(&["e-deployed"], 10));
            record_batch(&ctrl, vec![p]).await;
            assert_eq!(shard_names(&repo, "u-e").await.len(), 1, "{store}");

            let mut dup = status(&["b1"], 6);
            dup.deckies.push(decky("b1", 40));
            let cases = vec![
                pending("u-a", 'a', status(&["a1", "a2"], 5)),
                // An impostor (a's certificate) naming b, with a huge generation.
                pending("u-b", 'a', status(&["evil"], u64::MAX)),
                pending("u-x", 'b', status(&["x1"], 1)),
                pending("u-c", 'c', status(&["c1"], 1)),
                pending("u-d", 'd', status(&["d1"], 1)),
                // Older than e's recorded deploy: the host row only.
                pending("u-e", 'e', status(&["e-old"], 9)),
            ];
            let (batch, answers): (Vec<_>, Vec<_>) = cases.into_iter().unzip();
            record_batch(&ctrl, batch).await;
            let mut got = Vec::new();
            for a in answers {
                got.push(answer(a).await);
            }
            let expect = [
                (StatusCode::NO_CONTENT, ""),
                (StatusCode::FORBIDDEN, "certificate fingerprint mismatch"),
                (StatusCode::NOT_FOUND, "unknown host"),
                (StatusCode::FORBIDDEN, "host is being decommissioned"),
                (StatusCode::FORBIDDEN, "certificate revoked"),
                (StatusCode::NO_CONTENT, ""),
            ];
            let got_ref: Vec<_> = got.iter().map(|(c, d)| (*c, d.as_str())).collect();
            assert_eq!(got_ref, expect, "{store}");
            assert_eq!(
                shard_names(&repo, "u-a").await,
                [
                    ("a1".into(), FleetState::Running),
                    ("a2".into(), FleetState::Running)
                ],
                "{store}"
            );
            assert!(shard_names(&repo, "u-b").await.is_empty(), "{store}");
            assert!(shard_names(&repo, "u-c").await.is_empty(), "{store}");
            assert!(shard_names(&repo, "u-d").await.is_empty(), "{store}");
            assert_eq!(
                shard_names(&repo, "u-e").await,
                [("e-deployed".into(), FleetState::Running)],
                "{store}: the stale snapshot was dropped"
            );
            let hosts = repo.list_swarm_hosts(None).await.unwrap();
            let st = |n: &str| {
                let h = hosts.iter().find(|h| h.name == n).unwrap();
                (
                    h.status,
                    h.last_heartbeat.is_some(),
                    h.agent_version.clone(),
                )
            };
            assert_eq!(
                st("a"),
                (HostStatus::Active, true, Some("2.0".into())),
                "{store}"
            );
            assert_eq!(st("b"), (HostStatus::Enrolled, false, None), "{store}");
            assert_eq!(st("c").0, HostStatus::Decommissioning, "{store}");
            assert_eq!(st("d"), (HostStatus::Enrolled, false, None), "{store}");
            assert_eq!(
                st("e").0,
                HostStatus::Active,
                "{store}: a stale snapshot still proves e alive"
            );

            // The impostor's generation was not noted: b's own heartbeat and an invalid
            // one are answered on their own.
            let (good, good_a) = pending("u-b", 'b', status(&["b1"], 2));
            let (bad, bad_a) = pending("u-a", 'a', dup);
            record_batch(&ctrl, vec![good, bad]).await;
            assert_eq!(answer(good_a).await.0, StatusCode::NO_CONTENT, "{store}");
            let (code, detail) = answer(bad_a).await;
            assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{store}");
            assert!(detail.contains("listed twice"), "{store}: {detail}");
            assert_eq!(
                shard_names(&repo, "u-b").await,
                [("b1".into(), FleetState::Running)],
                "{store}"
            );
            assert_eq!(
                shard_names(&repo, "u-a").await.len(),
                2,
                "{store}: a kept its rows"
            );
        }
    }

    /// An unchanged snapshot is not rewritten; a changed one is.
    #[tokio::test]
    async fn an_unchanged_snapshot_is_skipped_and_a_changed_one_written() {
        let (_, repo, _db) = stores().await.pop().unwrap();
        let (ctrl, _dir) = controller(repo.clone()).await;
        let (p, a) = pending("u-a", 'a', status(&["a1"], 1));
        record_batch(&ctrl, vec![p]).await;
        assert_eq!(answer(a).await.0, StatusCode::NO_CONTENT);
        let seen = |rows: Vec<decnet_store::DeckyShard>| rows[0].last_seen;
        let first = seen(
            repo.list_shards(&ShardFilter::host(host("u-a")))
                .await
                .unwrap(),
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (p, a) = pending("u-a", 'a', status(&["a1"], 1));
        record_batch(&ctrl, vec![p]).await;
        assert_eq!(answer(a).await.0, StatusCode::NO_CONTENT);
        let again = seen(
            repo.list_shards(&ShardFilter::host(host("u-a")))
                .await
                .unwrap(),
        );
        assert_eq!(first, again, "unchanged snapshot not rewritten");
        let mut changed = status(&["a1"], 1);
        changed.runtime.clear();
        let (p, a) = pending("u-a", 'a', changed);
        record_batch(&ctrl, vec![p]).await;
        assert_eq!(answer(a).await.0, StatusCode::NO_CONTENT);
        assert_eq!(
            shard_names(&repo, "u-a").await,
            [("a1".into(), FleetState::Degraded)]
        );
    }

    #[test]
    fn a_batch_names_each_host_once_in_arrival_order() {
        let mut incoming = vec![
            pending("u-a", 'a', status(&["1"], 1)).0,
            pending("u-b", 'b', status(&["2"], 1)).0,
            pending("u-a", 'a', status(&["3"], 1)).0,
            pending("u-c", 'c', status(&["4"], 1)).0,
            pending("u-a", 'a', status(&["5"], 1)).0,
        ];
        let mut deferred = VecDeque::new();
        let batch = split_batch(&mut incoming, &mut deferred);
        let first = |p: &Pending| p.status.deckies[0].name.to_string();
        assert_eq!(batch.iter().map(first).collect::<Vec<_>>(), ["1", "2", "4"]);
        assert_eq!(deferred.iter().map(first).collect::<Vec<_>>(), ["3", "5"]);
        assert!(incoming.is_empty());
    }

    /// Through the queue: a host's heartbeats queued together are recorded in order (the
    /// last snapshot wins) and each is answered.
    #[tokio::test]
    async fn queued_heartbeats_of_one_host_are_recorded_in_order() {
        let (_, repo, _db) = stores().await.pop().unwrap();
        let (ctrl, _dir) = controller(repo.clone()).await;
        let intake = ctrl.heartbeat_intake().clone();
        let mut answers = Vec::new();
        for (i, names) in [["a1"], ["a2"], ["a3"]].iter().enumerate() {
            let (p, a) = pending("u-a", 'a', status(names, 1 + i as u64));
            intake.try_send(p).unwrap();
            answers.push(a);
            let (p, a) = pending("u-b", 'a', status(&["evil"], 1));
            intake.try_send(p).unwrap();
            answers.push(a);
        }
        let mut codes = Vec::new();
        for a in answers {
            codes.push(answer(a).await.0);
        }
        assert_eq!(
            codes,
            [StatusCode::NO_CONTENT, StatusCode::FORBIDDEN].repeat(3)
        );
        assert_eq!(
            shard_names(&repo, "u-a").await,
            [("a3".into(), FleetState::Running)]
        );
    }

    /// A store that does not answer within STORE_TIMEOUT: the heartbeat is answered
    /// 503, but its write is not cancelled: it completes once the store answers, with
    /// the host's shard lock held until then (no deploy outcome can slip in between).
    #[tokio::test(start_paused = true)]
    async fn a_hung_store_answers_unavailable_and_the_write_still_completes() {
        let store = Arc::new(decnet_store::memory::MemoryStore::new());
        let repo: Arc<dyn Repository> = store.clone();
        let (ctrl, _dir) = controller(repo.clone()).await;
        let intake = ctrl.heartbeat_intake().clone();
        let hold = store.hold_heartbeats().await;
        let (p, a) = pending("u-a", 'a', status(&["a1"], 1));
        intake.try_send(p).unwrap();
        let started = tokio::time::Instant::now();
        // (Paused clock: it jumps to the recorder's timeout once everything waits.)
        let (code, _) = answer_after(a, STORE_TIMEOUT * 2).await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(started.elapsed() >= STORE_TIMEOUT);
        assert!(
            shard_names(&repo, "u-a").await.is_empty(),
            "not written yet"
        );
        let a_host = host("u-a");
        let lock = tokio::time::timeout(Duration::from_secs(5), ctrl.lock_shards(&a_host));
        assert!(
            lock.await.is_err(),
            "the shard lock is held while the write waits"
        );
        drop(hold);
        let guard = tokio::time::timeout(Duration::from_secs(60), ctrl.lock_shards(&a_host))
            .await
            .expect("released once the write is done");
        drop(guard);
        assert_eq!(
            shard_names(&repo, "u-a").await,
            [("a1".into(), FleetState::Running)],
            "the late write was completed, not cancelled"
        );
        // The recorder serves the next heartbeat.
        let (p, a) = pending("u-a", 'a', status(&["a2"], 2));
        intake.try_send(p).unwrap();
        assert_eq!(answer(a).await.0, StatusCode::NO_CONTENT);
    }

    /// A full queue answers 503 at once; what was queued is still answered.
    #[tokio::test]
    async fn a_full_queue_answers_unavailable() {
        let repo: Arc<dyn Repository> = Arc::new(decnet_store::memory::MemoryStore::new());
        let (ctrl, _dir) = controller(repo.clone()).await;
        let intake = ctrl.heartbeat_intake().clone();
        // Hold every shard lock: the recorder takes one batch and waits.
        let mut guards = Vec::new();
        for i in 0..super::super::SHARD_LOCK_STRIPES {
            guards.push(ctrl.lock_stripe(i).await);
        }
        let (p, first) = pending("u-a", 'a', status(&["a1"], 1));
        intake.try_send(p).unwrap();
        tokio::time::timeout(Duration::from_secs(10), async {
            while intake.capacity() < MAX_PENDING_HEARTBEATS {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the recorder took the first heartbeat");
        let mut answers = vec![first];
        for i in 0..MAX_PENDING_HEARTBEATS {
            let h = if i % 2 == 0 { "u-a" } else { "u-b" };
            let (p, a) = pending(h, h.chars().last().unwrap(), status(&["x"], 1));
            intake.try_send(p).unwrap();
            answers.push(a);
        }
        let (p, a) = pending("u-a", 'a', status(&["a1"], 1));
        let refused = tokio::time::timeout(Duration::from_secs(1), submit(&intake, p, a))
            .await
            .expect("a full queue answers at once")
            .unwrap_err();
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        drop(guards);
        for a in answers {
            assert_eq!(answer(a).await.0, StatusCode::NO_CONTENT);
        }
    }
}
