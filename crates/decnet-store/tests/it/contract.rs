//! The store contract: every body runs unchanged against every backend.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use anyhow::{Context, ensure};
use decnet_core::{DeckyConfig, DeckyName, HostUuid};
use decnet_store::limits::{
    MAX_BATCH, MAX_ERROR_LEN, MAX_FILTER_TEXT_LEN, MAX_PAGE_SIZE, MAX_SERVICES, MAX_SHARD_SNAPSHOT,
};
use decnet_store::{
    Attacker, AttackerObservation, AttackerQuery, Credential, CredentialFilter, CredentialUpserted,
    Error, ErrorUpdate, Fingerprint, FleetState, FleetSummary, FleetUpsert, HeartbeatOutcome,
    HeartbeatWrite, HostScope, HostStatus, IngestEvent, IngestOutcome, LogFilter, LogOrigin,
    LogQuery, NewArtifact, NewCredential, NewLog, NewSwarmHost, NewUser, ObservedShard, Order,
    Repository, RevokedFingerprint, Role, ShardFilter, ShardUpsert, SwarmHostPatch, Timestamp,
    TokenConsumption,
};
use serde_json::json;

type Repo = Arc<dyn Repository>;
type Res = anyhow::Result<()>;

fn host(id: &str) -> HostUuid {
    HostUuid::new(id).unwrap()
}

fn name(n: &str) -> DeckyName {
    DeckyName::new(n).unwrap()
}

fn fp(byte: char) -> Fingerprint {
    Fingerprint::new(&byte.to_string().repeat(64)).unwrap()
}

fn config(n: &str, last_octet: u8) -> DeckyConfig {
    serde_json::from_value(json!({
        "name": n,
        "ip": format!("192.168.1.{last_octet}"),
        "services": ["ssh", "http"],
        "distro": "debian",
        "base_image": "debian:bookworm-slim",
        "hostname": format!("{n}-host"),
        "service_config": {"ssh": {"banner": "OpenSSH_9.2"}},
        "last_mutated": 1.5,
    }))
    .unwrap()
}

fn fleet(h: &str, n: &str, state: FleetState) -> FleetUpsert {
    FleetUpsert {
        host_uuid: host(h),
        name: name(n),
        services: vec!["ssh".into()],
        decky_config: None,
        decky_ip: None,
        state,
    }
}

fn new_host(uuid: &str, host_name: &str, fingerprint: Option<Fingerprint>) -> NewSwarmHost {
    NewSwarmHost {
        uuid: host(uuid),
        name: host_name.into(),
        address: "10.0.0.5".into(),
        agent_port: 8765,
        client_cert_fingerprint: fingerprint,
        updater_cert_fingerprint: None,
        cert_bundle_path: format!("/etc/decnet/ca/workers/{host_name}"),
        enrolled_at: Timestamp::from_unix_micros(1_700_000_000_123_456),
        notes: Some("enrolled in a test".into()),
        use_ipvlan: true,
    }
}

fn shard(h: &str, n: &str, state: FleetState, last_error: ErrorUpdate) -> ShardUpsert {
    ShardUpsert {
        host_uuid: host(h),
        decky_name: name(n),
        services: vec!["ssh".into(), "smtp".into()],
        decky_config: Some(config(n, 20)),
        decky_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20))),
        state,
        last_error,
        last_seen: None,
    }
}

fn log(key: &str, micros: i64, decky: &str, service: &str, ip: &str, line: &str) -> NewLog {
    NewLog {
        dedup_key: key.into(),
        timestamp: Timestamp::from_unix_micros(micros),
        decky: decky.into(),
        service: service.into(),
        event_type: if service == "ssh" {
            "auth_attempt"
        } else {
            "request"
        }
        .into(),
        attacker_ip: ip.into(),
        severity: Some(6),
        fields: json!({"user": "root", "n": 1}).as_object().unwrap().clone(),
        msg: None,
        raw_line: line.into(),
        source_worker: None,
        trace_id: None,
        span_id: None,
        origin: LogOrigin::Local,
    }
}

fn cred(ip: &str, principal: Option<&str>, sha: &str, at: i64) -> NewCredential {
    NewCredential {
        attacker_ip: ip.into(),
        decky: "web-01".into(),
        service: "ssh".into(),
        principal: principal.map(str::to_owned),
        secret_kind: "plaintext".into(),
        secret_sha256: sha.into(),
        secret_b64: Some("aHVudGVyMg==".into()),
        secret_printable: Some("hunter2".into()),
        outcome: None,
        fields: Default::default(),
        seen_at: Timestamp::from_unix_seconds(at),
    }
}

fn is_conflict(r: &Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(r, Err(Error::Conflict { .. }))
}

fn is_invalid(r: &Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(r, Err(Error::Invalid { .. }))
}

fn is_not_found(r: &Result<impl std::fmt::Debug, Error>) -> bool {
    matches!(r, Err(Error::NotFound { .. }))
}

// ---------------------------------------------------------------- fleet

pub async fn fleet_upsert_is_on_conflict(repo: Repo) -> Res {
    let before = Timestamp::now();
    let mut d = fleet("local", "web-01", FleetState::Running);
    d.decky_config = Some(config("web-01", 10));
    repo.upsert_fleet_decky(&d).await?;
    let first = repo
        .get_fleet_decky(&host("local"), &name("web-01"))
        .await?
        .context("row missing after insert")?;
    assert_eq!(first.state, FleetState::Running);
    assert!(first.updated_at >= before);
    assert_eq!(first.last_error, None);

    // Give the row a last_error and last_seen; an upsert must keep them.
    let prev = repo
        .update_fleet_state(
            &host("local"),
            &name("web-01"),
            FleetState::Failed,
            Some("boom"),
        )
        .await?;
    assert_eq!(prev, Some(FleetState::Running));

    d.state = FleetState::Degraded;
    d.services = vec!["ssh".into(), "ftp".into()];
    d.decky_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10)));
    repo.upsert_fleet_decky(&d).await?;
    repo.upsert_fleet_decky(&d).await?;
    let rows = repo.list_fleet(&HostScope::All).await?;
    assert_eq!(rows.len(), 1, "upsert must not duplicate: {rows:?}");
    let row = &rows[0];
    assert_eq!(row.state, FleetState::Degraded);
    assert_eq!(row.services, vec!["ssh".to_owned(), "ftp".to_owned()]);
    assert_eq!(row.decky_ip, d.decky_ip);
    assert_eq!(row.decky_config.as_ref(), d.decky_config.as_ref());
    assert_eq!(
        row.last_error.as_deref(),
        Some("boom"),
        "unsupplied column kept"
    );
    assert!(row.last_seen.is_some(), "unsupplied column kept");
    assert!(row.updated_at >= first.updated_at);
    Ok(())
}

pub async fn fleet_host_scoping(repo: Repo) -> Res {
    for (h, n) in [
        ("host-b", "d1"),
        ("host-a", "d2"),
        ("host-a", "d1"),
        ("host-b", "d3"),
    ] {
        repo.upsert_fleet_decky(&fleet(h, n, FleetState::Running))
            .await?;
    }
    let a = repo.list_fleet(&HostScope::Host(host("host-a"))).await?;
    let a_keys: Vec<_> = a
        .iter()
        .map(|d| (d.host_uuid.as_str(), d.name.as_str()))
        .collect();
    assert_eq!(a_keys, [("host-a", "d1"), ("host-a", "d2")]);
    let all = repo.list_fleet(&HostScope::All).await?;
    let all_keys: Vec<_> = all
        .iter()
        .map(|d| (d.host_uuid.as_str(), d.name.as_str()))
        .collect();
    assert_eq!(
        all_keys,
        [
            ("host-a", "d1"),
            ("host-b", "d1"),
            ("host-a", "d2"),
            ("host-b", "d3")
        ],
        "ordered by name, then host"
    );
    assert!(
        repo.list_fleet(&HostScope::Host(host("host-c")))
            .await?
            .is_empty()
    );

    let b_before = repo.list_fleet(&HostScope::Host(host("host-b"))).await?;
    let prev = repo
        .update_fleet_state(&host("host-a"), &name("d1"), FleetState::Failed, Some("x"))
        .await?;
    assert_eq!(prev, Some(FleetState::Running));
    assert_eq!(
        repo.stamp_fleet_observed(&host("host-a"), Timestamp::from_unix_seconds(5))
            .await?,
        2
    );
    assert!(
        repo.delete_fleet_decky(&host("host-a"), &name("d1"))
            .await?
    );
    assert!(
        !repo
            .delete_fleet_decky(&host("host-a"), &name("d1"))
            .await?
    );
    let b_after = repo.list_fleet(&HostScope::Host(host("host-b"))).await?;
    assert_eq!(b_before, b_after, "another host's rows are untouched");
    assert!(b_after.iter().all(|d| d.last_observed.is_none()));
    let a = repo.list_fleet(&HostScope::Host(host("host-a"))).await?;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].last_observed, Some(Timestamp::from_unix_seconds(5)));
    Ok(())
}

pub async fn fleet_summary_is_the_light_view_of_the_listing(repo: Repo) -> Res {
    for (h, n) in [("host-b", "d1"), ("host-a", "d2"), ("host-a", "d1")] {
        repo.upsert_fleet_decky(&fleet(h, n, FleetState::Running))
            .await?;
    }
    repo.update_fleet_state(&host("host-a"), &name("d2"), FleetState::Degraded, None)
        .await?;
    repo.stamp_fleet_observed(&host("host-a"), Timestamp::from_unix_seconds(7))
        .await?;
    for scope in [
        HostScope::All,
        HostScope::Host(host("host-a")),
        HostScope::Host(host("host-c")),
    ] {
        let full = repo.list_fleet(&scope).await?;
        let light = repo.list_fleet_summary(&scope).await?;
        let projected: Vec<FleetSummary> = full.iter().map(FleetSummary::from).collect();
        assert_eq!(light, projected, "{scope:?}: same rows, same order");
    }
    let a = repo
        .list_fleet_summary(&HostScope::Host(host("host-a")))
        .await?;
    assert_eq!(
        a.iter()
            .map(|s| (s.name.as_str(), s.state, s.last_observed))
            .collect::<Vec<_>>(),
        [
            (
                "d1",
                FleetState::Running,
                Some(Timestamp::from_unix_seconds(7))
            ),
            (
                "d2",
                FleetState::Degraded,
                Some(Timestamp::from_unix_seconds(7))
            )
        ]
    );
    // A config rewrite moves updated_at, so a reader caching full rows sees it.
    let before = a[0].updated_at;
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let mut d = fleet("host-a", "d1", FleetState::Running);
    d.services = vec!["ssh".into(), "http".into()];
    repo.upsert_fleet_decky(&d).await?;
    let after = repo
        .list_fleet_summary(&HostScope::Host(host("host-a")))
        .await?;
    assert!(after[0].updated_at > before);
    Ok(())
}

pub async fn fleet_update_returns_previous_state(repo: Repo) -> Res {
    let (h, n) = (host("local"), name("d1"));
    assert_eq!(
        repo.update_fleet_state(&h, &n, FleetState::Running, None)
            .await?,
        None,
        "missing row"
    );
    assert!(
        repo.get_fleet_decky(&h, &n).await?.is_none(),
        "update must not insert"
    );

    repo.upsert_fleet_decky(&fleet("local", "d1", FleetState::Pending))
        .await?;
    let before = Timestamp::now();
    let steps = [
        (FleetState::Running, None, FleetState::Pending),
        (
            FleetState::Degraded,
            Some("one container down"),
            FleetState::Running,
        ),
        (FleetState::Failed, None, FleetState::Degraded),
        (FleetState::Failed, None, FleetState::Failed),
    ];
    for (state, error, expected_prev) in steps {
        let prev = repo.update_fleet_state(&h, &n, state, error).await?;
        assert_eq!(prev, Some(expected_prev));
        let row = repo.get_fleet_decky(&h, &n).await?.context("row")?;
        assert_eq!(row.state, state);
    }
    let row = repo.get_fleet_decky(&h, &n).await?.context("row")?;
    assert_eq!(
        row.last_error.as_deref(),
        Some("one container down"),
        "an update without an error keeps the stored one"
    );
    let seen = row.last_seen.context("last_seen set")?;
    assert!(seen >= before);
    assert!(row.updated_at >= before);

    let long = "é".repeat(MAX_ERROR_LEN);
    repo.update_fleet_state(&h, &n, FleetState::Failed, Some(&long))
        .await?;
    let row = repo.get_fleet_decky(&h, &n).await?.context("row")?;
    let stored = row.last_error.context("error")?;
    assert!(stored.len() <= MAX_ERROR_LEN && stored.len() >= MAX_ERROR_LEN - 1);
    Ok(())
}

pub async fn fleet_concurrent_updates_chain_previous_states(repo: Repo) -> Res {
    repo.upsert_fleet_decky(&fleet("local", "d1", FleetState::Pending))
        .await?;
    let targets: Vec<FleetState> = FleetState::ALL
        .iter()
        .copied()
        .filter(|s| *s != FleetState::Pending)
        .collect();
    let mut tasks = Vec::new();
    for state in targets.clone() {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            repo.update_fleet_state(&host("local"), &name("d1"), state, None)
                .await
        }));
    }
    let mut previous = Vec::new();
    for t in tasks {
        previous.push(t.await??.context("row exists")?);
    }
    let last = repo
        .get_fleet_decky(&host("local"), &name("d1"))
        .await?
        .context("row")?
        .state;
    // Serialized updates form a chain: every state written is either some later
    // update's previous state or the final state, exactly once.
    let mut seen: Vec<FleetState> = previous;
    seen.push(last);
    seen.sort();
    let mut expected = targets;
    expected.push(FleetState::Pending);
    expected.sort();
    assert_eq!(
        seen, expected,
        "lost update: two writers saw the same previous state"
    );
    Ok(())
}

pub async fn fleet_round_trips_every_column(repo: Repo) -> Res {
    for (i, state) in FleetState::ALL.iter().enumerate() {
        let mut d = fleet("local", &format!("d{i}"), *state);
        d.decky_ip = Some(if i % 2 == 0 {
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, i as u8))
        } else {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        });
        d.decky_config = Some(config(&format!("d{i}"), 30 + i as u8));
        repo.upsert_fleet_decky(&d).await?;
        let row = repo
            .get_fleet_decky(&d.host_uuid, &d.name)
            .await?
            .context("row")?;
        assert_eq!(row.state, *state);
        assert_eq!(row.decky_ip, d.decky_ip);
        assert_eq!(row.decky_config, d.decky_config);
        assert_eq!(row.services, d.services);
        assert_eq!(row.compose_hash, None);
    }
    let odd = Timestamp::from_unix_micros(1_775_044_800_123_457);
    repo.stamp_fleet_observed(&host("local"), odd).await?;
    let rows = repo.list_fleet(&HostScope::Host(host("local"))).await?;
    assert_eq!(rows.len(), FleetState::ALL.len());
    assert!(
        rows.iter().all(|r| r.last_observed == Some(odd)),
        "microseconds kept"
    );
    // The row serializes (typed rows are an API format).
    let text = serde_json::to_string(&rows[0])?;
    assert!(
        text.contains("\"last_observed\":\"2026-04-01T12:00:00.123457Z\""),
        "{text}"
    );
    Ok(())
}

// ---------------------------------------------------------------- swarm hosts

pub async fn swarm_hosts_crud_and_conflicts(repo: Repo) -> Res {
    let created = repo
        .create_swarm_host(&new_host("u-2", "beta", Some(fp('b'))))
        .await?;
    assert_eq!(created.status, HostStatus::Enrolled);
    repo.create_swarm_host(&new_host("u-1", "alpha", Some(fp('a'))))
        .await?;
    repo.create_swarm_host(&new_host("u-3", "gamma", None))
        .await?;

    let stored = repo.get_swarm_host(&host("u-2")).await?.context("u-2")?;
    assert_eq!(stored, created, "read back equals what create returned");
    assert_eq!(
        repo.get_swarm_host_by_name("alpha").await?.map(|h| h.uuid),
        Some(host("u-1"))
    );
    let upper = Fingerprint::new(&"B".repeat(64))?;
    assert_eq!(
        repo.get_swarm_host_by_fingerprint(&upper)
            .await?
            .map(|h| h.uuid),
        Some(host("u-2")),
        "fingerprints are case-normalised"
    );
    assert!(
        repo.get_swarm_host_by_fingerprint(&fp('c'))
            .await?
            .is_none()
    );
    assert!(repo.get_swarm_host_by_name("delta").await?.is_none());

    assert!(is_conflict(
        &repo
            .create_swarm_host(&new_host("u-1", "other", None))
            .await
    ));
    assert!(is_conflict(
        &repo
            .create_swarm_host(&new_host("u-9", "alpha", None))
            .await
    ));
    assert!(is_conflict(
        &repo
            .create_swarm_host(&new_host("u-9", "other", Some(fp('a'))))
            .await
    ));
    assert!(repo.get_swarm_host(&host("u-9")).await?.is_none());

    let names: Vec<String> = repo
        .list_swarm_hosts(None)
        .await?
        .into_iter()
        .map(|h| h.name)
        .collect();
    assert_eq!(names, ["alpha", "beta", "gamma"]);

    let patch = SwarmHostPatch {
        status: Some(HostStatus::Active),
        last_heartbeat: Some(Timestamp::from_unix_micros(1_800_000_000_000_001)),
        address: Some("10.0.0.9".into()),
        agent_version: Some("0.1.0".into()),
        ..Default::default()
    };
    assert!(repo.update_swarm_host(&host("u-1"), &patch).await?);
    let h = repo.get_swarm_host(&host("u-1")).await?.context("u-1")?;
    assert_eq!(h.status, HostStatus::Active);
    assert_eq!(h.last_heartbeat, patch.last_heartbeat);
    assert_eq!(h.address, "10.0.0.9");
    assert_eq!(h.agent_version.as_deref(), Some("0.1.0"));
    assert_eq!(h.name, "alpha", "unpatched columns kept");
    assert_eq!(h.client_cert_fingerprint, Some(fp('a')));

    assert!(
        repo.update_swarm_host(&host("u-1"), &SwarmHostPatch::default())
            .await?
    );
    assert_eq!(
        repo.get_swarm_host(&host("u-1")).await?,
        Some(h),
        "empty patch"
    );
    assert!(!repo.update_swarm_host(&host("nope"), &patch).await?);
    assert!(
        !repo
            .update_swarm_host(&host("nope"), &SwarmHostPatch::default())
            .await?
    );

    let steal = SwarmHostPatch {
        client_cert_fingerprint: Some(fp('b')),
        ..Default::default()
    };
    assert!(is_conflict(
        &repo.update_swarm_host(&host("u-3"), &steal).await
    ));
    let own = SwarmHostPatch {
        client_cert_fingerprint: Some(fp('b')),
        ..Default::default()
    };
    assert!(
        repo.update_swarm_host(&host("u-2"), &own).await?,
        "re-setting its own pin"
    );

    let active: Vec<String> = repo
        .list_swarm_hosts(Some(HostStatus::Active))
        .await?
        .into_iter()
        .map(|h| h.name)
        .collect();
    assert_eq!(active, ["alpha"]);
    assert!(
        repo.list_swarm_hosts(Some(HostStatus::Decommissioned))
            .await?
            .is_empty()
    );
    Ok(())
}

pub async fn swarm_host_delete_removes_shards_and_tokens(repo: Repo) -> Res {
    repo.create_swarm_host(&new_host("u-a", "a", None)).await?;
    repo.create_swarm_host(&new_host("u-b", "b", None)).await?;
    for h in ["u-a", "u-b"] {
        repo.upsert_shard(&shard(h, "d1", FleetState::Running, ErrorUpdate::Keep))
            .await?;
    }
    let t0 = Timestamp::from_unix_seconds(1_000);
    let later = Timestamp::from_unix_seconds(2_000);
    repo.create_enrollment_token("token-for-host-a-0001", &host("u-a"), t0, later)
        .await?;
    repo.create_enrollment_token("token-for-host-b-0001", &host("u-b"), t0, later)
        .await?;

    assert!(repo.delete_swarm_host(&host("u-a")).await?);
    assert!(!repo.delete_swarm_host(&host("u-a")).await?);
    assert!(repo.get_swarm_host(&host("u-a")).await?.is_none());
    assert!(
        repo.list_shards(&ShardFilter::host(host("u-a")))
            .await?
            .is_empty()
    );
    assert_eq!(repo.list_shards(&ShardFilter::all()).await?.len(), 1);
    assert_eq!(
        repo.consume_enrollment_token("token-for-host-a-0001", t0)
            .await?,
        TokenConsumption::Unknown
    );
    assert_eq!(
        repo.consume_enrollment_token("token-for-host-b-0001", t0)
            .await?,
        TokenConsumption::Consumed(host("u-b"))
    );
    Ok(())
}

pub async fn stale_hosts_become_unreachable(repo: Repo) -> Res {
    let beat = |s| SwarmHostPatch {
        status: Some(HostStatus::Active),
        last_heartbeat: Some(Timestamp::from_unix_seconds(s)),
        ..Default::default()
    };
    for (u, n) in [("h1", "n1"), ("h2", "n2"), ("h3", "n3"), ("h4", "n4")] {
        repo.create_swarm_host(&new_host(u, n, None)).await?;
    }
    repo.update_swarm_host(&host("h1"), &beat(100)).await?;
    repo.update_swarm_host(&host("h2"), &beat(300)).await?;
    repo.update_swarm_host(
        &host("h4"),
        &SwarmHostPatch {
            status: Some(HostStatus::Active),
            ..Default::default()
        },
    )
    .await?;
    let stale = repo
        .mark_stale_hosts_unreachable(Timestamp::from_unix_seconds(200))
        .await?;
    assert_eq!(stale, [host("h1"), host("h4")]);
    let status = |h: Option<decnet_store::SwarmHost>| h.map(|h| h.status);
    assert_eq!(
        status(repo.get_swarm_host(&host("h1")).await?),
        Some(HostStatus::Unreachable)
    );
    assert_eq!(
        status(repo.get_swarm_host(&host("h2")).await?),
        Some(HostStatus::Active)
    );
    assert_eq!(
        status(repo.get_swarm_host(&host("h3")).await?),
        Some(HostStatus::Enrolled)
    );
    assert!(
        repo.mark_stale_hosts_unreachable(Timestamp::from_unix_seconds(200))
            .await?
            .is_empty(),
        "second pass changes nothing"
    );
    Ok(())
}

pub async fn revoked_fingerprints(repo: Repo) -> Res {
    let first = RevokedFingerprint {
        fingerprint: fp('e'),
        host_uuid: Some(host("gone")),
        revoked_at: Timestamp::from_unix_seconds(20),
        reason: Some("decommissioned".into()),
    };
    let second = RevokedFingerprint {
        fingerprint: fp('d'),
        host_uuid: None,
        revoked_at: Timestamp::from_unix_seconds(10),
        reason: None,
    };
    assert!(repo.revoke_fingerprint(&first).await?);
    assert!(repo.revoke_fingerprint(&second).await?);
    let again = RevokedFingerprint {
        reason: Some("again".into()),
        ..first.clone()
    };
    assert!(!repo.revoke_fingerprint(&again).await?, "already revoked");
    assert!(repo.is_fingerprint_revoked(&fp('e')).await?);
    assert!(
        repo.is_fingerprint_revoked(&Fingerprint::new(&"E".repeat(64))?)
            .await?
    );
    assert!(!repo.is_fingerprint_revoked(&fp('f')).await?);
    assert_eq!(
        repo.list_revoked_fingerprints().await?,
        vec![second, first],
        "oldest first; the first record is kept"
    );
    Ok(())
}

// ---------------------------------------------------------------- shards

pub async fn shard_upsert_is_host_scoped(repo: Repo) -> Res {
    repo.create_swarm_host(&new_host("u-a", "a", None)).await?;
    repo.create_swarm_host(&new_host("u-b", "b", None)).await?;
    repo.upsert_shard(&shard("u-a", "d1", FleetState::Running, ErrorUpdate::Keep))
        .await?;
    let a_before = repo
        .get_shard(&host("u-a"), &name("d1"))
        .await?
        .context("a/d1")?;
    // Same decky name on another host is another row (SW-19).
    repo.upsert_shard(&shard(
        "u-b",
        "d1",
        FleetState::Failed,
        ErrorUpdate::Set("dispatch failed".into()),
    ))
    .await?;
    repo.upsert_shard(&shard("u-b", "d2", FleetState::Running, ErrorUpdate::Keep))
        .await?;
    assert_eq!(
        repo.get_shard(&host("u-a"), &name("d1")).await?,
        Some(a_before.clone()),
        "host B's write left host A's row alone"
    );
    assert!(is_not_found(
        &repo
            .upsert_shard(&shard("u-x", "d1", FleetState::Running, ErrorUpdate::Keep))
            .await
    ));

    let all = repo.list_shards(&ShardFilter::all()).await?;
    let keys: Vec<_> = all
        .iter()
        .map(|s| (s.host_uuid.as_str(), s.decky_name.as_str()))
        .collect();
    assert_eq!(keys, [("u-a", "d1"), ("u-b", "d1"), ("u-b", "d2")]);
    let failed = repo
        .list_shards(&ShardFilter {
            host: HostScope::All,
            state: Some(FleetState::Failed),
        })
        .await?;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].last_error.as_deref(), Some("dispatch failed"));
    assert_eq!(failed[0].decky_config, Some(config("d1", 20)));
    let b_running = repo
        .list_shards(&ShardFilter {
            host: HostScope::Host(host("u-b")),
            state: Some(FleetState::Running),
        })
        .await?;
    assert_eq!(b_running.len(), 1);
    assert_eq!(b_running[0].decky_name, name("d2"));

    // Keep leaves the error, Clear removes it; last_seen None keeps the stored one.
    let mut heartbeat = shard("u-b", "d1", FleetState::Running, ErrorUpdate::Keep);
    heartbeat.last_seen = Some(Timestamp::from_unix_seconds(77));
    repo.upsert_shard(&heartbeat).await?;
    let mut dispatch = shard("u-b", "d1", FleetState::Running, ErrorUpdate::Keep);
    dispatch.last_seen = None;
    repo.upsert_shard(&dispatch).await?;
    let row = repo
        .get_shard(&host("u-b"), &name("d1"))
        .await?
        .context("b/d1")?;
    assert_eq!(row.state, FleetState::Running);
    assert_eq!(row.last_error.as_deref(), Some("dispatch failed"));
    assert_eq!(row.last_seen, Some(Timestamp::from_unix_seconds(77)));
    repo.upsert_shard(&shard("u-b", "d1", FleetState::Running, ErrorUpdate::Clear))
        .await?;
    let row = repo
        .get_shard(&host("u-b"), &name("d1"))
        .await?
        .context("b/d1")?;
    assert_eq!(row.last_error, None);

    assert!(repo.delete_shard(&host("u-a"), &name("d1")).await?);
    assert!(!repo.delete_shard(&host("u-a"), &name("d1")).await?);
    assert!(repo.get_shard(&host("u-b"), &name("d1")).await?.is_some());
    assert_eq!(repo.delete_shards_for_host(&host("u-b")).await?, 2);
    assert!(repo.list_shards(&ShardFilter::all()).await?.is_empty());
    Ok(())
}

pub async fn shard_snapshot_replacement(repo: Repo) -> Res {
    repo.create_swarm_host(&new_host("u-a", "a", None)).await?;
    repo.create_swarm_host(&new_host("u-b", "b", None)).await?;
    for n in ["d1", "d3"] {
        repo.upsert_shard(&shard("u-a", n, FleetState::Running, ErrorUpdate::Keep))
            .await?;
    }
    repo.upsert_shard(&shard(
        "u-a",
        "d2",
        FleetState::Failed,
        ErrorUpdate::Set("boom".into()),
    ))
    .await?;
    repo.upsert_shard(&shard("u-b", "d3", FleetState::Running, ErrorUpdate::Keep))
        .await?;
    let b_before = repo.list_shards(&ShardFilter::host(host("u-b"))).await?;

    let mut snapshot = vec![
        shard("u-a", "d1", FleetState::Running, ErrorUpdate::Keep),
        shard("u-a", "d2", FleetState::Running, ErrorUpdate::Keep),
        shard("u-a", "d4", FleetState::Degraded, ErrorUpdate::Keep),
    ];
    for s in &mut snapshot {
        s.last_seen = Some(Timestamp::from_unix_seconds(500));
    }
    let out = repo.replace_host_shards(&host("u-a"), &snapshot).await?;
    assert_eq!(out.upserted, 3);
    assert_eq!(out.removed, [name("d3")]);
    let a = repo.list_shards(&ShardFilter::host(host("u-a"))).await?;
    let names: Vec<&str> = a.iter().map(|s| s.decky_name.as_str()).collect();
    assert_eq!(names, ["d1", "d2", "d4"]);
    assert_eq!(a[1].state, FleetState::Running);
    assert_eq!(
        a[1].last_error.as_deref(),
        Some("boom"),
        "errors survive heartbeats (SW-21)"
    );
    assert!(
        a.iter()
            .all(|s| s.last_seen == Some(Timestamp::from_unix_seconds(500)))
    );
    assert_eq!(
        repo.list_shards(&ShardFilter::host(host("u-b"))).await?,
        b_before,
        "another host's d3 is untouched"
    );

    // Invalid snapshots change nothing.
    let foreign = vec![
        shard("u-a", "d1", FleetState::Running, ErrorUpdate::Keep),
        shard("u-b", "d9", FleetState::Running, ErrorUpdate::Keep),
    ];
    assert!(is_invalid(
        &repo.replace_host_shards(&host("u-a"), &foreign).await
    ));
    let twice = vec![
        shard("u-a", "d1", FleetState::Running, ErrorUpdate::Keep),
        shard("u-a", "d1", FleetState::Failed, ErrorUpdate::Keep),
    ];
    assert!(is_invalid(
        &repo.replace_host_shards(&host("u-a"), &twice).await
    ));
    assert_eq!(repo.list_shards(&ShardFilter::host(host("u-a"))).await?, a);
    assert!(is_not_found(
        &repo.replace_host_shards(&host("u-x"), &[]).await
    ));

    // An empty snapshot (deployed:false) removes every row of the host.
    let out = repo.replace_host_shards(&host("u-a"), &[]).await?;
    assert_eq!(out.upserted, 0);
    assert_eq!(out.removed, [name("d1"), name("d2"), name("d4")]);
    assert!(
        repo.list_shards(&ShardFilter::host(host("u-a")))
            .await?
            .is_empty()
    );
    assert_eq!(repo.list_shards(&ShardFilter::all()).await?.len(), 1);
    Ok(())
}

fn observed(n: &str, state: FleetState) -> ObservedShard {
    ObservedShard {
        decky_name: name(n),
        services: vec!["ssh".into(), "http".into()],
        decky_config: Some(config(n, 30)),
        decky_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 30))),
        state,
    }
}

fn beat(
    h: &str,
    fingerprint: char,
    version: Option<&str>,
    snapshot: Option<Vec<ObservedShard>>,
) -> HeartbeatWrite {
    HeartbeatWrite {
        host_uuid: host(h),
        fingerprint: fp(fingerprint),
        agent_version: version.map(str::to_owned),
        snapshot,
    }
}

pub async fn heartbeat_batches(repo: Repo) -> Res {
    for (u, n, pin) in [
        ("u-a", "a", 'a'),
        ("u-b", "b", 'b'),
        ("u-c", "c", 'c'),
        ("u-d", "d", 'd'),
        ("u-e", "e", 'e'),
    ] {
        repo.create_swarm_host(&new_host(u, n, Some(fp(pin))))
            .await?;
    }
    repo.update_swarm_host(
        &host("u-c"),
        &SwarmHostPatch {
            status: Some(HostStatus::Decommissioning),
            ..Default::default()
        },
    )
    .await?;
    repo.update_swarm_host(
        &host("u-e"),
        &SwarmHostPatch {
            status: Some(HostStatus::Unreachable),
            agent_version: Some("0.9".into()),
            ..Default::default()
        },
    )
    .await?;
    repo.revoke_fingerprint(&RevokedFingerprint {
        fingerprint: fp('d'),
        host_uuid: Some(host("u-d")),
        revoked_at: Timestamp::from_unix_seconds(5),
        reason: None,
    })
    .await?;
    repo.upsert_shard(&shard(
        "u-a",
        "d1",
        FleetState::Failed,
        ErrorUpdate::Set("boom".into()),
    ))
    .await?;
    repo.upsert_shard(&shard("u-a", "d3", FleetState::Running, ErrorUpdate::Keep))
        .await?;
    repo.upsert_shard(&shard("u-e", "e1", FleetState::Running, ErrorUpdate::Keep))
        .await?;
    let e_before = repo.list_shards(&ShardFilter::host(host("u-e"))).await?;
    let hosts_before = repo.list_swarm_hosts(None).await?;

    assert!(
        repo.apply_heartbeats(&[], Timestamp::from_unix_seconds(1))
            .await?
            .is_empty()
    );
    let t1 = Timestamp::from_unix_seconds(1_000);
    let outcomes = repo
        .apply_heartbeats(
            &[
                beat(
                    "u-a",
                    'a',
                    Some("1.0"),
                    Some(vec![
                        observed("d1", FleetState::Running),
                        observed("d2", FleetState::Degraded),
                    ]),
                ),
                beat("u-b", 'a', Some("evil"), Some(vec![])),
                beat("u-x", 'b', None, None),
                beat("u-c", 'c', None, Some(vec![])),
                beat("u-d", 'd', None, Some(vec![])),
                beat("u-x", 'd', None, None),
                beat("u-e", 'e', None, None),
                beat("u-b", 'b', Some("bad\0version"), Some(vec![])),
            ],
            t1,
        )
        .await?;
    assert_eq!(
        outcomes,
        [
            HeartbeatOutcome::Recorded,
            HeartbeatOutcome::FingerprintMismatch,
            HeartbeatOutcome::UnknownHost,
            HeartbeatOutcome::Decommissioning,
            HeartbeatOutcome::Revoked,
            HeartbeatOutcome::Revoked,
            HeartbeatOutcome::Recorded,
            HeartbeatOutcome::Invalid("invalid agent version: it contains a NUL character".into()),
        ]
    );
    let get = |h: &'static str| {
        let repo = repo.clone();
        async move { repo.get_swarm_host(&host(h)).await?.context(h) }
    };
    let a = get("u-a").await?;
    assert_eq!(
        (a.status, a.last_heartbeat, a.agent_version.as_deref()),
        (HostStatus::Active, Some(t1), Some("1.0"))
    );
    // The full snapshot replaced a's rows: d3 is gone, d1's error survives (SW-21).
    let rows = repo.list_shards(&ShardFilter::host(host("u-a"))).await?;
    let summary: Vec<_> = rows
        .iter()
        .map(|s| {
            (
                s.decky_name.as_str(),
                s.state,
                s.last_error.as_deref(),
                s.last_seen,
                s.updated_at,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("d1", FleetState::Running, Some("boom"), Some(t1), t1),
            ("d2", FleetState::Degraded, None, Some(t1), t1),
        ]
    );
    assert_eq!(rows[1].decky_config, Some(config("d2", 30)));
    assert_eq!(rows[1].services, ["ssh", "http"]);
    assert_eq!(
        rows[1].decky_ip,
        Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 30)))
    );
    // b: the mismatched certificate changed nothing; its own (invalid) heartbeat
    // proves it alive, without the version or the snapshot.
    let b = get("u-b").await?;
    assert_eq!(
        (b.status, b.last_heartbeat, b.agent_version),
        (HostStatus::Active, Some(t1), None)
    );
    // Refused hosts are untouched.
    let after = repo.list_swarm_hosts(None).await?;
    for n in ["c", "d"] {
        assert_eq!(
            after.iter().find(|h| h.name == n),
            hosts_before.iter().find(|h| h.name == n),
            "host {n} untouched"
        );
    }
    // e: no snapshot, no version: only the host row moves.
    let e = get("u-e").await?;
    assert_eq!(
        (e.status, e.last_heartbeat, e.agent_version.as_deref()),
        (HostStatus::Active, Some(t1), Some("0.9"))
    );
    assert_eq!(
        repo.list_shards(&ShardFilter::host(host("u-e"))).await?,
        e_before
    );

    // Several heartbeats of one host in one batch end as if recorded one by one: the
    // last valid snapshot and the last named version win; an invalid one writes
    // nothing of its own. An empty snapshot removes every row.
    let t2 = Timestamp::from_unix_seconds(2_000);
    let outcomes = repo
        .apply_heartbeats(
            &[
                beat(
                    "u-a",
                    'a',
                    Some("2.0"),
                    Some(vec![observed("d4", FleetState::Running)]),
                ),
                beat("u-a", 'a', None, None),
                beat(
                    "u-a",
                    'a',
                    Some("3.0"),
                    Some(vec![
                        observed("d5", FleetState::Running),
                        observed("d5", FleetState::Failed),
                    ]),
                ),
                beat("u-e", 'e', None, Some(vec![])),
            ],
            t2,
        )
        .await?;
    assert_eq!(
        outcomes[..2],
        [HeartbeatOutcome::Recorded, HeartbeatOutcome::Recorded]
    );
    assert!(
        matches!(&outcomes[2], HeartbeatOutcome::Invalid(why) if why.contains("listed twice")),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[3], HeartbeatOutcome::Recorded);
    let a = get("u-a").await?;
    assert_eq!(
        (a.last_heartbeat, a.agent_version.as_deref()),
        (Some(t2), Some("2.0"))
    );
    let names: Vec<_> = repo
        .list_shards(&ShardFilter::host(host("u-a")))
        .await?
        .into_iter()
        .map(|s| (s.decky_name.to_string(), s.last_seen))
        .collect();
    assert_eq!(names, [("d4".to_owned(), Some(t2))]);
    assert!(
        repo.list_shards(&ShardFilter::host(host("u-e")))
            .await?
            .is_empty()
    );

    // Limits: a snapshot over the cap is refused per item; a batch over the cap whole.
    let many: Vec<_> = (0..=MAX_SHARD_SNAPSHOT)
        .map(|i| observed(&format!("x{i}"), FleetState::Running))
        .collect();
    let outcomes = repo
        .apply_heartbeats(&[beat("u-a", 'a', None, Some(many))], t2)
        .await?;
    assert!(matches!(&outcomes[0], HeartbeatOutcome::Invalid(_)));
    assert_eq!(
        repo.list_shards(&ShardFilter::host(host("u-a")))
            .await?
            .len(),
        1
    );
    let too_many: Vec<_> = (0..=MAX_BATCH)
        .map(|_| beat("u-a", 'a', None, None))
        .collect();
    assert!(is_invalid(&repo.apply_heartbeats(&too_many, t2).await));
    Ok(())
}

// ---------------------------------------------------------------- tokens

pub async fn token_single_use_and_expiry(repo: Repo) -> Res {
    repo.create_swarm_host(&new_host("u-a", "a", None)).await?;
    let t0 = Timestamp::from_unix_seconds(1_000_000);
    let five_min = Timestamp::from_unix_seconds(1_000_300);
    repo.create_enrollment_token("tok-aaaaaaaaaaaaaaaa", &host("u-a"), t0, five_min)
        .await?;
    repo.create_enrollment_token("tok-bbbbbbbbbbbbbbbb", &host("u-a"), t0, five_min)
        .await?;
    assert!(is_conflict(
        &repo
            .create_enrollment_token("tok-aaaaaaaaaaaaaaaa", &host("u-a"), t0, five_min)
            .await
    ));
    assert!(is_not_found(
        &repo
            .create_enrollment_token("tok-cccccccccccccccc", &host("u-x"), t0, five_min)
            .await
    ));
    assert!(is_invalid(
        &repo
            .create_enrollment_token("short", &host("u-a"), t0, five_min)
            .await
    ));

    let just_before = Timestamp::from_unix_micros(five_min.as_unix_micros() - 1);
    assert_eq!(
        repo.consume_enrollment_token("tok-aaaaaaaaaaaaaaaa", just_before)
            .await?,
        TokenConsumption::Consumed(host("u-a"))
    );
    assert_eq!(
        repo.consume_enrollment_token("tok-aaaaaaaaaaaaaaaa", t0)
            .await?,
        TokenConsumption::AlreadyUsed
    );
    assert_eq!(
        repo.consume_enrollment_token("tok-bbbbbbbbbbbbbbbb", five_min)
            .await?,
        TokenConsumption::Expired,
        "expiry is exclusive"
    );
    assert_eq!(
        repo.consume_enrollment_token("tok-never-issued-0000", t0)
            .await?,
        TokenConsumption::Unknown
    );
    assert_eq!(
        repo.consume_enrollment_token("tok-bbbbbbbbbbbbbbbb", t0)
            .await?,
        TokenConsumption::Consumed(host("u-a")),
        "the failed late attempt did not use the token up"
    );

    repo.create_enrollment_token(
        "tok-dddddddddddddddd",
        &host("u-a"),
        t0,
        Timestamp::from_unix_seconds(2_000_000),
    )
    .await?;
    assert_eq!(repo.purge_expired_tokens(just_before).await?, 0);
    assert_eq!(repo.purge_expired_tokens(five_min).await?, 2);
    assert_eq!(
        repo.consume_enrollment_token("tok-aaaaaaaaaaaaaaaa", t0)
            .await?,
        TokenConsumption::Unknown
    );
    assert_eq!(
        repo.consume_enrollment_token("tok-dddddddddddddddd", five_min)
            .await?,
        TokenConsumption::Consumed(host("u-a"))
    );
    Ok(())
}

pub async fn token_concurrent_consumption_is_single(repo: Repo) -> Res {
    repo.create_swarm_host(&new_host("u-a", "a", None)).await?;
    let t0 = Timestamp::from_unix_seconds(1_000);
    repo.create_enrollment_token(
        "race-token-0123456789",
        &host("u-a"),
        t0,
        Timestamp::from_unix_seconds(9_000),
    )
    .await?;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let repo = repo.clone();
        tasks.push(tokio::spawn(async move {
            repo.consume_enrollment_token("race-token-0123456789", t0)
                .await
        }));
    }
    let mut consumed = 0;
    let mut used = 0;
    for t in tasks {
        match t.await?? {
            TokenConsumption::Consumed(h) => {
                assert_eq!(h, host("u-a"));
                consumed += 1;
            }
            TokenConsumption::AlreadyUsed => used += 1,
            other => anyhow::bail!("unexpected {other:?}"),
        }
    }
    assert_eq!((consumed, used), (1, 7));
    Ok(())
}

// ---------------------------------------------------------------- logs

pub async fn log_batch_idempotent_and_atomic(repo: Repo) -> Res {
    assert_eq!(repo.max_log_id().await?, None);
    assert_eq!(repo.insert_logs(&[]).await?.inserted, 0);
    let mut batch: Vec<NewLog> = (0..5)
        .map(|i| {
            log(
                &format!("k{i}"),
                1_000 + i,
                "web-01",
                "ssh",
                "1.2.3.4",
                "line",
            )
        })
        .collect();
    batch.push(log("k2", 9, "web-01", "ssh", "1.2.3.4", "same key again"));
    batch[0].msg = Some("startup".into());
    batch[0].source_worker = Some("worker-1".into());
    batch[0].trace_id = Some("abc".into());
    let out = repo.insert_logs(&batch).await?;
    assert_eq!((out.inserted, out.duplicates), (5, 1));
    let out = repo.insert_logs(&batch).await?;
    assert_eq!(
        (out.inserted, out.duplicates),
        (0, 6),
        "replay inserts nothing"
    );
    assert_eq!(repo.count_logs(&LogFilter::default()).await?, 5);

    let rows = repo
        .query_logs(&LogQuery {
            order: Order::OldestFirst,
            limit: 10,
            ..Default::default()
        })
        .await?;
    assert_eq!(rows.len(), 5);
    assert!(rows.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(repo.max_log_id().await?, Some(rows[4].id));
    let keys: Vec<&str> = rows.iter().map(|r| r.dedup_key.as_str()).collect();
    assert_eq!(
        keys,
        ["k0", "k1", "k2", "k3", "k4"],
        "ids follow batch order"
    );
    let r0 = &rows[0];
    assert_eq!(r0.timestamp, Timestamp::from_unix_micros(1_000));
    assert_eq!(r0.fields, batch[0].fields);
    assert_eq!(r0.severity, Some(6));
    assert_eq!(r0.msg.as_deref(), Some("startup"));
    assert_eq!(r0.source_worker.as_deref(), Some("worker-1"));
    assert_eq!(r0.trace_id.as_deref(), Some("abc"));
    assert_eq!(rows[2].raw_line, "line", "the first row with a key wins");

    // One bad row refuses the whole batch.
    let mut bad = vec![log("n1", 1, "d", "s", "ip", "fine")];
    let mut oversize = log("n2", 1, "d", "s", "ip", "x");
    oversize.raw_line = "x".repeat(decnet_store::limits::MAX_RAW_LINE_LEN + 1);
    bad.push(oversize);
    assert!(is_invalid(&repo.insert_logs(&bad).await));
    let mut bad_sev = log("n3", 1, "d", "s", "ip", "x");
    bad_sev.severity = Some(8);
    assert!(is_invalid(&repo.insert_logs(&[bad_sev]).await));
    let huge: Vec<NewLog> = (0..=MAX_BATCH)
        .map(|i| log(&format!("h{i}"), 1, "d", "s", "ip", "x"))
        .collect();
    assert!(is_invalid(&repo.insert_logs(&huge).await));
    assert_eq!(
        repo.count_logs(&LogFilter::default()).await?,
        5,
        "nothing written"
    );
    Ok(())
}

async fn seed_logs(repo: &Repo) -> anyhow::Result<()> {
    let mut batch = Vec::new();
    for i in 0..30i64 {
        let (decky, service, ip) = match i % 3 {
            0 => ("web-01", "ssh", "1.1.1.1"),
            1 => ("web-01", "http", "2.2.2.2"),
            _ => ("db-01", "ssh", "2.2.2.2"),
        };
        let line = if i == 7 {
            "GET /admin?q=100%_done HTTP/1.1".to_owned()
        } else {
            format!("<134>1 event {i} from {ip}")
        };
        batch.push(log(
            &format!("s{i}"),
            i * 1_000_000,
            decky,
            service,
            ip,
            &line,
        ));
    }
    repo.insert_logs(&batch).await?;
    Ok(())
}

pub async fn log_filters(repo: Repo) -> Res {
    seed_logs(&repo).await?;
    let count = |f: LogFilter| {
        let repo = repo.clone();
        async move { repo.count_logs(&f).await }
    };
    assert_eq!(count(LogFilter::default()).await?, 30);
    let web = LogFilter {
        decky: Some("web-01".into()),
        ..Default::default()
    };
    assert_eq!(count(web.clone()).await?, 20);
    assert_eq!(
        count(LogFilter {
            service: Some("ssh".into()),
            ..web.clone()
        })
        .await?,
        10
    );
    assert_eq!(
        count(LogFilter {
            event_type: Some("request".into()),
            ..Default::default()
        })
        .await?,
        10
    );
    assert_eq!(
        count(LogFilter {
            attacker_ip: Some("2.2.2.2".into()),
            ..Default::default()
        })
        .await?,
        20
    );
    let window = LogFilter {
        since: Some(Timestamp::from_unix_seconds(10)),
        until: Some(Timestamp::from_unix_seconds(20)),
        ..Default::default()
    };
    assert_eq!(
        count(window.clone()).await?,
        10,
        "since inclusive, until exclusive"
    );
    let rows = repo
        .query_logs(&LogQuery {
            filter: window,
            order: Order::OldestFirst,
            limit: 100,
            ..Default::default()
        })
        .await?;
    assert_eq!(
        rows.first().map(|r| r.timestamp),
        Some(Timestamp::from_unix_seconds(10))
    );
    assert_eq!(
        rows.last().map(|r| r.timestamp),
        Some(Timestamp::from_unix_seconds(19))
    );

    let text = |t: &str| LogFilter {
        text: Some(t.into()),
        ..Default::default()
    };
    assert_eq!(
        count(text("EVENT 1")).await?,
        11,
        "case-insensitive: 1, 10..19"
    );
    assert_eq!(count(text("100%_")).await?, 1, "wildcards are literal");
    assert_eq!(count(text("%")).await?, 1);
    assert_eq!(count(text("_")).await?, 1);
    assert_eq!(count(text("e%t")).await?, 0);
    assert_eq!(count(text("nothing-matches")).await?, 0);
    let combined = LogFilter {
        decky: Some("db-01".into()),
        text: Some("event 2".into()),
        ..Default::default()
    };
    // db-01 rows are i % 3 == 2: 2, 20, 23, 26, 29 contain "event 2".
    assert_eq!(count(combined).await?, 5);
    Ok(())
}

pub async fn log_pagination(repo: Repo) -> Res {
    seed_logs(&repo).await?;
    let all = repo
        .query_logs(&LogQuery {
            order: Order::NewestFirst,
            limit: 100,
            ..Default::default()
        })
        .await?;
    assert_eq!(all.len(), 30);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");

    // Keyset paging, newest first.
    let mut cursor = None;
    let mut pages = Vec::new();
    loop {
        let page = repo
            .query_logs(&LogQuery {
                order: Order::NewestFirst,
                cursor,
                limit: 12,
                ..Default::default()
            })
            .await?;
        if page.is_empty() {
            break;
        }
        cursor = page.last().map(|r| r.id);
        pages.push(page.len());
        ensure!(pages.len() <= 4, "keyset paging does not terminate");
        for r in page {
            ensure!(all.iter().any(|a| a.id == r.id));
        }
    }
    assert_eq!(pages, [12, 12, 6]);

    // Tailing: oldest first after a cursor.
    let mid = all[10].id;
    let tail = repo
        .query_logs(&LogQuery {
            order: Order::OldestFirst,
            cursor: Some(mid),
            limit: 100,
            ..Default::default()
        })
        .await?;
    let expected: Vec<i64> = all[..10].iter().rev().map(|r| r.id).collect();
    assert_eq!(tail.iter().map(|r| r.id).collect::<Vec<_>>(), expected);

    // Offset paging with a filter.
    let filter = LogFilter {
        service: Some("ssh".into()),
        ..Default::default()
    };
    let page2 = repo
        .query_logs(&LogQuery {
            filter: filter.clone(),
            order: Order::NewestFirst,
            offset: 5,
            limit: 5,
            ..Default::default()
        })
        .await?;
    let ssh: Vec<i64> = all
        .iter()
        .filter(|r| r.service == "ssh")
        .map(|r| r.id)
        .collect();
    assert_eq!(page2.iter().map(|r| r.id).collect::<Vec<_>>(), ssh[5..10]);
    let beyond = repo
        .query_logs(&LogQuery {
            filter,
            offset: 1_000,
            limit: 5,
            ..Default::default()
        })
        .await?;
    assert!(beyond.is_empty());
    let none = repo
        .query_logs(&LogQuery {
            limit: 0,
            ..Default::default()
        })
        .await?;
    assert!(none.is_empty(), "limit 0 returns nothing");
    Ok(())
}

pub async fn log_page_size_is_capped(repo: Repo) -> Res {
    let total = MAX_PAGE_SIZE as i64 + 5;
    let rows: Vec<NewLog> = (0..total)
        .map(|i| log(&format!("c{i}"), i, "d", "s", "ip", "x"))
        .collect();
    for chunk in rows.chunks(MAX_BATCH) {
        repo.insert_logs(chunk).await?;
    }
    assert_eq!(repo.count_logs(&LogFilter::default()).await?, total as u64);
    let page = repo
        .query_logs(&LogQuery {
            limit: u32::MAX,
            ..Default::default()
        })
        .await?;
    assert_eq!(page.len(), MAX_PAGE_SIZE as usize);
    Ok(())
}

// ---------------------------------------------------------------- credentials

pub async fn credential_dedup_counting(repo: Repo) -> Res {
    let sha = "ab".repeat(32);
    let other = "cd".repeat(32);
    let mut first = cred("1.2.3.4", Some("root"), &sha, 100);
    first.outcome = Some("failure".into());
    let out = repo
        .upsert_credentials(&[
            first.clone(),
            cred("1.2.3.4", Some("root"), &sha.to_uppercase(), 50),
        ])
        .await?;
    assert!(out[0].created && !out[1].created);
    assert_eq!(out[0].id, out[1].id);
    assert_eq!((out[0].attempt_count, out[1].attempt_count), (1, 2));
    let mut success = cred("1.2.3.4", Some("root"), &sha, 300);
    success.outcome = Some("success".into());
    let out = repo
        .upsert_credentials(&[
            cred("1.2.3.4", Some("root"), &sha, 200),
            success,
            cred("1.2.3.4", Some("admin"), &sha, 10),
            cred("1.2.3.4", None, &sha, 10),
            cred("5.6.7.8", Some("root"), &other, 400),
        ])
        .await?;
    assert_eq!(out[0].attempt_count, 3);
    assert_eq!(out[1].attempt_count, 4);
    assert!(out[2].created && out[3].created && out[4].created);
    assert_eq!(out.iter().filter(|o| o.created).count(), 3);

    assert_eq!(
        repo.count_credentials(&CredentialFilter::default()).await?,
        4
    );
    let root = repo
        .list_credentials(
            &CredentialFilter {
                principal: Some("root".into()),
                attacker_ip: Some("1.2.3.4".into()),
                ..Default::default()
            },
            10,
            0,
        )
        .await?;
    assert_eq!(root.len(), 1);
    let r = &root[0];
    assert_eq!(r.attempt_count, 4);
    assert_eq!(r.first_seen, Timestamp::from_unix_seconds(50));
    assert_eq!(r.last_seen, Timestamp::from_unix_seconds(300));
    assert_eq!(r.outcome.as_deref(), Some("success"));
    assert_eq!(r.secret_sha256, sha, "stored lowercase");
    assert_eq!(r.secret_printable.as_deref(), Some("hunter2"));

    let all = repo
        .list_credentials(&CredentialFilter::default(), 10, 0)
        .await?;
    let order: Vec<(i64, &str)> = all
        .iter()
        .map(|c| {
            (
                c.last_seen.as_unix_micros() / 1_000_000,
                c.attacker_ip.as_str(),
            )
        })
        .collect();
    assert_eq!(order[0], (400, "5.6.7.8"));
    assert_eq!(order[1], (300, "1.2.3.4"));
    assert!(order.windows(2).all(|w| w[0].0 >= w[1].0), "latest first");
    assert_eq!(
        repo.count_credentials(&CredentialFilter {
            secret_sha256: Some(sha.to_uppercase()),
            ..Default::default()
        })
        .await?,
        3
    );
    assert_eq!(
        repo.list_credentials(&CredentialFilter::default(), 2, 3)
            .await?
            .len(),
        1
    );

    let bad = vec![
        cred("9.9.9.9", None, &other, 1),
        cred("9.9.9.9", None, "nothex", 1),
    ];
    assert!(is_invalid(&repo.upsert_credentials(&bad).await));
    assert_eq!(
        repo.count_credentials(&CredentialFilter {
            attacker_ip: Some("9.9.9.9".into()),
            ..Default::default()
        })
        .await?,
        0,
        "batch refused whole"
    );
    Ok(())
}

// ---------------------------------------------------------------- attackers

pub async fn attackers_aggregate(repo: Repo) -> Res {
    let obs = |ip: &str, at: i64, decky: Option<&str>, service: Option<&str>, events| {
        AttackerObservation {
            ip: ip.into(),
            seen_at: Timestamp::from_unix_seconds(at),
            decky: decky.map(str::to_owned),
            service: service.map(str::to_owned),
            events,
        }
    };
    repo.upsert_attackers(&[
        obs("1.1.1.1", 10, Some("web-01"), Some("ssh"), 1),
        obs("1.1.1.1", 5, Some("db-01"), Some("http"), 2),
        obs("2.2.2.2", 50, Some("web-01"), Some("ssh"), 1),
    ])
    .await?;
    let a = repo.get_attacker_by_ip("1.1.1.1").await?.context("a")?;
    repo.upsert_attackers(&[
        obs("1.1.1.1", 20, Some("web-01"), Some("ssh"), 3),
        obs("3.3.3.3", 20, None, None, 1),
    ])
    .await?;
    let b = repo.get_attacker_by_ip("1.1.1.1").await?.context("b")?;
    assert_eq!(a.uuid, b.uuid, "uuid is stable");
    assert_eq!(b.first_seen, Timestamp::from_unix_seconds(5));
    assert_eq!(b.last_seen, Timestamp::from_unix_seconds(20));
    assert_eq!(b.event_count, 6);
    assert_eq!(b.services, ["http", "ssh"]);
    assert_eq!(b.deckies, ["db-01", "web-01"]);
    assert_eq!(repo.get_attacker(&b.uuid).await?, Some(b.clone()));
    assert!(repo.get_attacker("no-such-uuid").await?.is_none());
    let c = repo.get_attacker_by_ip("3.3.3.3").await?.context("c")?;
    assert!(c.services.is_empty() && c.deckies.is_empty());

    let list = |q: AttackerQuery| {
        let repo = repo.clone();
        async move {
            Ok::<_, anyhow::Error>(
                repo.list_attackers(&q)
                    .await?
                    .into_iter()
                    .map(|a| a.ip)
                    .collect::<Vec<_>>(),
            )
        }
    };
    let page = |limit, offset| AttackerQuery {
        limit,
        offset,
        ..Default::default()
    };
    assert_eq!(list(page(10, 0)).await?, ["2.2.2.2", "1.1.1.1", "3.3.3.3"]);
    assert_eq!(list(page(1, 1)).await?, ["1.1.1.1"]);
    let ssh = AttackerQuery {
        service: Some("ssh".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(list(ssh.clone()).await?, ["2.2.2.2", "1.1.1.1"]);
    assert_eq!(repo.count_attackers(&ssh).await?, 2);
    let db = AttackerQuery {
        decky: Some("db-01".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(list(db).await?, ["1.1.1.1"]);
    let ip = AttackerQuery {
        ip_contains: Some("3.3".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(list(ip).await?, ["3.3.3.3"]);
    assert_eq!(repo.count_attackers(&AttackerQuery::default()).await?, 3);
    Ok(())
}

// ---------------------------------------------------------------- artifacts

pub async fn artifacts_record_and_list(repo: Repo) -> Res {
    let art = |ip: &str, sha: char, at: i64| NewArtifact {
        attacker_ip: ip.into(),
        decky: "web-01".into(),
        service: "ssh".into(),
        kind: "file_captured".into(),
        sha256: sha.to_string().repeat(64),
        stored_path: format!("web-01/ssh/{at}_{sha}_payload.sh"),
        size: 1234,
        observed_at: Timestamp::from_unix_seconds(at),
        meta: json!({"orig_path": "/tmp/x"}).as_object().unwrap().clone(),
    };
    assert!(repo.record_artifact(&art("1.1.1.1", 'a', 10)).await?);
    assert!(repo.record_artifact(&art("1.1.1.1", 'b', 30)).await?);
    assert!(repo.record_artifact(&art("1.1.1.1", 'c', 20)).await?);
    assert!(repo.record_artifact(&art("2.2.2.2", 'a', 40)).await?);
    let mut upper = art("1.1.1.1", 'a', 99);
    upper.sha256 = upper.sha256.to_uppercase();
    assert!(!repo.record_artifact(&upper).await?, "same content again");

    let list = repo.get_attacker_artifacts("1.1.1.1", 10).await?;
    let shas: Vec<char> = list
        .iter()
        .map(|a| a.sha256.chars().next().unwrap_or('?'))
        .collect();
    assert_eq!(shas, ['b', 'c', 'a'], "newest first");
    assert_eq!(
        list[2].observed_at,
        Timestamp::from_unix_seconds(10),
        "first record kept"
    );
    assert_eq!(list[0].size, 1234);
    assert_eq!(list[0].meta, art("1.1.1.1", 'b', 30).meta);
    assert_eq!(repo.get_attacker_artifacts("1.1.1.1", 2).await?.len(), 2);
    assert!(repo.get_attacker_artifacts("9.9.9.9", 10).await?.is_empty());

    for path in ["../etc/passwd", "/etc/passwd", "a/../../b", ""] {
        let mut bad = art("1.1.1.1", 'f', 1);
        bad.stored_path = path.into();
        assert!(is_invalid(&repo.record_artifact(&bad).await), "{path:?}");
    }
    Ok(())
}

// ---------------------------------------------------------------- users and state

pub async fn users_crud(repo: Repo) -> Res {
    let user = |uuid: &str, username: &str, role| NewUser {
        uuid: uuid.into(),
        username: username.into(),
        password_hash: "$2b$12$hash".into(),
        role,
        must_change_password: true,
    };
    let before = Timestamp::now();
    let admin = repo.create_user(&user("u1", "zed", Role::Admin)).await?;
    assert!(admin.created_at >= before);
    repo.create_user(&user("u2", "amy", Role::Viewer)).await?;
    assert!(is_conflict(
        &repo.create_user(&user("u3", "amy", Role::Viewer)).await
    ));
    assert!(is_conflict(
        &repo.create_user(&user("u1", "bob", Role::Viewer)).await
    ));

    assert_eq!(repo.get_user_by_uuid("u1").await?, Some(admin.clone()));
    assert_eq!(repo.get_user_by_username("zed").await?, Some(admin));
    assert!(repo.get_user_by_username("bob").await?.is_none());
    let names: Vec<String> = repo
        .list_users()
        .await?
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["amy", "zed"]);

    assert!(repo.update_user_password("u2", "$2b$12$new", false).await?);
    assert!(repo.update_user_role("u2", Role::Admin).await?);
    let amy = repo.get_user_by_uuid("u2").await?.context("u2")?;
    assert_eq!(amy.password_hash, "$2b$12$new");
    assert!(!amy.must_change_password);
    assert_eq!(amy.role, Role::Admin);
    assert!(!repo.update_user_password("nope", "h", false).await?);
    assert!(!repo.update_user_role("nope", Role::Viewer).await?);
    assert!(is_invalid(
        &repo.update_user_password("u2", "", false).await
    ));

    assert!(repo.delete_user("u2").await?);
    assert!(!repo.delete_user("u2").await?);
    assert_eq!(repo.list_users().await?.len(), 1);
    Ok(())
}

pub async fn state_kv(repo: Repo) -> Res {
    assert_eq!(repo.get_state("ingest_position").await?, None);
    repo.set_state("ingest_position", &json!({"offset": 42, "inode": 7}))
        .await?;
    repo.set_state("other", &json!("text")).await?;
    assert_eq!(
        repo.get_state("ingest_position").await?,
        Some(json!({"offset": 42, "inode": 7}))
    );
    repo.set_state("ingest_position", &json!({"offset": 43}))
        .await?;
    assert_eq!(
        repo.get_state("ingest_position").await?,
        Some(json!({"offset": 43}))
    );
    assert_eq!(repo.get_state("other").await?, Some(json!("text")));
    assert!(is_invalid(&repo.set_state("", &json!(1)).await));
    let big = json!("x".repeat(decnet_store::limits::MAX_STATE_VALUE_BYTES));
    assert!(is_invalid(&repo.set_state("big", &big).await));
    assert_eq!(repo.get_state("big").await?, None);
    Ok(())
}

pub async fn oversize_input_is_refused(repo: Repo) -> Res {
    let mut d = fleet("local", "d1", FleetState::Running);
    d.services = (0..=MAX_SERVICES).map(|i| format!("s{i}")).collect();
    assert!(is_invalid(&repo.upsert_fleet_decky(&d).await));
    d.services = vec![String::new()];
    assert!(is_invalid(&repo.upsert_fleet_decky(&d).await));
    assert!(repo.list_fleet(&HostScope::All).await?.is_empty());

    let long_name = "h".repeat(decnet_store::limits::MAX_LABEL_LEN + 1);
    assert!(is_invalid(
        &repo
            .create_swarm_host(&new_host("u-1", &long_name, None))
            .await
    ));
    assert!(is_invalid(
        &repo.create_swarm_host(&new_host("u-1", "", None)).await
    ));
    assert!(repo.list_swarm_hosts(None).await?.is_empty());

    let long_text = LogFilter {
        text: Some("q".repeat(decnet_store::limits::MAX_FILTER_TEXT_LEN + 1)),
        ..Default::default()
    };
    assert!(is_invalid(&repo.count_logs(&long_text).await));
    assert!(is_invalid(
        &repo
            .query_logs(&LogQuery {
                filter: long_text,
                limit: 1,
                ..Default::default()
            })
            .await
    ));
    let nul = vec![log("k", 1, "d\0", "s", "ip", "x")];
    assert!(is_invalid(&repo.insert_logs(&nul).await));
    Ok(())
}

// ---------------------------------------------------------------- ingest

const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const SHA_B: &str = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";

/// An event at `secs` seconds; `sha` adds a credential attempt (principal `root`).
fn ev(
    key: &str,
    secs: i64,
    decky: &str,
    service: &str,
    ip: &str,
    sha: Option<&str>,
) -> IngestEvent {
    let mut log = log(
        key,
        secs * 1_000_000,
        decky,
        service,
        ip,
        &format!("line {key}"),
    );
    log.origin = LogOrigin::Forwarded;
    log.source_worker = Some("worker-1".into());
    let credential = sha.map(|sha| {
        let mut c = cred(ip, Some("root"), sha, secs);
        c.decky = decky.into();
        c.service = service.into();
        c
    });
    IngestEvent { log, credential }
}

/// Everything ingest may change: log keys in id order, attackers, credentials.
async fn snapshot(repo: &Repo) -> anyhow::Result<(Vec<String>, Vec<Attacker>, Vec<Credential>)> {
    let logs = repo
        .query_logs(&LogQuery {
            order: Order::OldestFirst,
            limit: MAX_PAGE_SIZE,
            ..Default::default()
        })
        .await?
        .into_iter()
        .map(|r| r.dedup_key)
        .collect();
    let attackers = repo
        .list_attackers(&AttackerQuery {
            limit: MAX_PAGE_SIZE,
            ..Default::default()
        })
        .await?;
    let credentials = repo
        .list_credentials(&CredentialFilter::default(), MAX_PAGE_SIZE, 0)
        .await?;
    Ok((logs, attackers, credentials))
}

fn touched(out: &IngestOutcome) -> Vec<(&str, bool, u64, u64)> {
    out.attackers
        .iter()
        .map(|a| (a.ip.as_str(), a.created, a.added, a.event_count))
        .collect()
}

fn attempts(out: &IngestOutcome) -> Vec<(usize, u64, bool)> {
    out.credentials
        .iter()
        .map(|(i, c)| (*i, c.attempt_count, c.created))
        .collect()
}

pub async fn ingest_replay_changes_nothing(repo: Repo) -> Res {
    assert_eq!(repo.ingest(&[]).await?, IngestOutcome::default());
    let batch = vec![
        ev("e0", 10, "web-01", "ssh", "1.1.1.1", Some(SHA_A)),
        ev("e1", 12, "web-01", "http", "1.1.1.1", None),
        ev("e2", 11, "db-01", "ssh", "2.2.2.2", Some(SHA_B)),
        ev("e3", 13, "db-01", "ssh", "Unknown", None),
        ev("e4", 14, "db-01", "ssh", "", None),
    ];
    let out = repo.ingest(&batch).await?;
    assert_eq!(out.inserted, [0, 1, 2, 3, 4]);
    assert_eq!(out.duplicates, 0);
    assert_eq!(
        touched(&out),
        [("1.1.1.1", true, 2, 2), ("2.2.2.2", true, 1, 1)],
        "Unknown and empty addresses make no attacker row"
    );
    assert_eq!(attempts(&out), [(0, 1, true), (2, 1, true)]);
    assert_ne!(out.credentials[0].1.id, out.credentials[1].1.id);
    let a = repo
        .get_attacker_by_ip("1.1.1.1")
        .await?
        .context("attacker")?;
    assert_eq!(a.uuid, out.attackers[0].uuid);
    assert_eq!(
        (a.first_seen, a.last_seen, a.event_count),
        (
            Timestamp::from_unix_seconds(10),
            Timestamp::from_unix_seconds(12),
            2
        )
    );
    assert_eq!(a.deckies, ["web-01"]);
    assert_eq!(a.services, ["http", "ssh"]);
    assert!(repo.get_attacker_by_ip("Unknown").await?.is_none());
    assert_eq!(repo.count_attackers(&AttackerQuery::default()).await?, 2);
    let creds = repo
        .list_credentials(&CredentialFilter::default(), 10, 0)
        .await?;
    assert_eq!(creds.len(), 2);
    let b = creds
        .iter()
        .find(|c| c.attacker_ip == "2.2.2.2")
        .context("cred b")?;
    assert_eq!(
        b.secret_sha256,
        SHA_B.to_ascii_lowercase(),
        "digest stored lowercase"
    );
    assert_eq!((b.decky.as_str(), b.attempt_count), ("db-01", 1));

    let before = snapshot(&repo).await?;
    let again = repo.ingest(&batch).await?;
    assert_eq!(
        again,
        IngestOutcome {
            duplicates: 5,
            ..Default::default()
        },
        "a replay inserts, touches and upserts nothing"
    );
    assert_eq!(snapshot(&repo).await?, before, "a replay changes no row");
    Ok(())
}

pub async fn ingest_duplicates_within_batch(repo: Repo) -> Res {
    let mut first = ev("k", 20, "web-01", "ssh", "1.1.1.1", Some(SHA_A));
    first.log.raw_line = "first".into();
    let mut second = ev("k", 21, "db-01", "http", "1.1.1.1", Some(SHA_A));
    second.log.raw_line = "second".into();
    let batch = vec![
        first,
        ev("k2", 22, "web-01", "ssh", "1.1.1.1", Some(SHA_A)),
        second,
        ev("k2", 23, "web-01", "ssh", "3.3.3.3", None),
        ev("k3", 24, "web-01", "ssh", "1.1.1.1", Some(SHA_A)),
    ];
    let out = repo.ingest(&batch).await?;
    assert_eq!(out.inserted, [0, 1, 4], "the first of a repeated key wins");
    assert_eq!(out.duplicates, 2);
    assert_eq!(touched(&out), [("1.1.1.1", true, 3, 3)]);
    assert_eq!(
        attempts(&out),
        [(0, 1, true), (1, 2, false), (4, 3, false)],
        "attempts of one credential count as if upserted one by one"
    );
    assert!(
        out.credentials
            .iter()
            .all(|(_, c)| c.id == out.credentials[0].1.id)
    );
    let a = repo
        .get_attacker_by_ip("1.1.1.1")
        .await?
        .context("attacker")?;
    assert_eq!(a.event_count, 3);
    assert_eq!(
        a.deckies,
        ["web-01"],
        "the skipped duplicate's decky is not counted"
    );
    assert_eq!(a.services, ["ssh"]);
    assert_eq!(a.last_seen, Timestamp::from_unix_seconds(24));
    assert!(repo.get_attacker_by_ip("3.3.3.3").await?.is_none());
    let rows = repo
        .query_logs(&LogQuery {
            order: Order::OldestFirst,
            limit: 10,
            ..Default::default()
        })
        .await?;
    let lines: Vec<&str> = rows.iter().map(|r| r.raw_line.as_str()).collect();
    assert_eq!(lines, ["first", "line k2", "line k3"]);
    let creds = repo
        .list_credentials(&CredentialFilter::default(), 10, 0)
        .await?;
    assert_eq!(creds.len(), 1);
    assert_eq!(creds[0].attempt_count, 3);
    assert_eq!(
        (creds[0].first_seen, creds[0].last_seen),
        (
            Timestamp::from_unix_seconds(20),
            Timestamp::from_unix_seconds(24)
        )
    );
    Ok(())
}

pub async fn ingest_partial_overlap_counts_only_new(repo: Repo) -> Res {
    let first: Vec<IngestEvent> = (0..4)
        .map(|i| {
            ev(
                &format!("p{i}"),
                100 + i,
                "web-01",
                "ssh",
                "1.1.1.1",
                Some(SHA_A),
            )
        })
        .collect();
    let out = repo.ingest(&first).await?;
    assert_eq!(out.inserted.len(), 4);
    assert_eq!(
        out.credentials.last().map(|(_, c)| c.attempt_count),
        Some(4)
    );

    // p2, p3 again (already stored) and p4..p6 new, one of them from a new address.
    let mut second: Vec<IngestEvent> = (2..7)
        .map(|i| {
            ev(
                &format!("p{i}"),
                100 + i,
                "web-01",
                "ssh",
                "1.1.1.1",
                Some(SHA_A),
            )
        })
        .collect();
    second[4] = ev("p6", 90, "db-01", "ftp", "1.1.1.1", None);
    second.push(ev("q0", 95, "db-01", "ftp", "4.4.4.4", Some(SHA_A)));
    let out = repo.ingest(&second).await?;
    assert_eq!(out.inserted, [2, 3, 4, 5]);
    assert_eq!(out.duplicates, 2);
    assert_eq!(
        touched(&out),
        [("1.1.1.1", false, 3, 7), ("4.4.4.4", true, 1, 1)]
    );
    assert_eq!(
        attempts(&out),
        [(2, 5, false), (3, 6, false), (5, 1, true)],
        "only the new events' attempts are counted"
    );
    let a = repo
        .get_attacker_by_ip("1.1.1.1")
        .await?
        .context("attacker")?;
    assert_eq!(a.event_count, 7);
    assert_eq!(
        (a.first_seen, a.last_seen),
        (
            Timestamp::from_unix_seconds(90),
            Timestamp::from_unix_seconds(105)
        )
    );
    let c = repo
        .list_credentials(
            &CredentialFilter {
                attacker_ip: Some("1.1.1.1".into()),
                ..Default::default()
            },
            10,
            0,
        )
        .await?;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].attempt_count, 6);
    assert_eq!(repo.count_logs(&LogFilter::default()).await?, 8);
    Ok(())
}

pub async fn ingest_attacker_sets_union(repo: Repo) -> Res {
    // Sets from the older API and from ingest merge into one row.
    repo.upsert_attackers(&[AttackerObservation {
        ip: "5.5.5.5".into(),
        seen_at: Timestamp::from_unix_seconds(50),
        decky: Some("mail-01".into()),
        service: Some("smtp".into()),
        events: 2,
    }])
    .await?;
    let uuid = repo.get_attacker_by_ip("5.5.5.5").await?.context("a")?.uuid;
    let out = repo
        .ingest(&[
            ev("u0", 60, "web-01", "ssh", "5.5.5.5", None),
            ev("u1", 40, "web-01", "http", "5.5.5.5", None),
            ev("u2", 61, "mail-01", "smtp", "5.5.5.5", None),
        ])
        .await?;
    assert_eq!(touched(&out), [("5.5.5.5", false, 3, 5)]);
    assert_eq!(out.attackers[0].uuid, uuid, "an existing row keeps its id");
    let out = repo
        .ingest(&[ev("u3", 62, "db-01", "ssh", "5.5.5.5", None)])
        .await?;
    assert_eq!(touched(&out), [("5.5.5.5", false, 1, 6)]);
    let a = repo.get_attacker_by_ip("5.5.5.5").await?.context("a")?;
    assert_eq!(a.deckies, ["db-01", "mail-01", "web-01"]);
    assert_eq!(a.services, ["http", "smtp", "ssh"]);
    assert_eq!(
        (a.first_seen, a.last_seen, a.event_count),
        (
            Timestamp::from_unix_seconds(40),
            Timestamp::from_unix_seconds(62),
            6
        )
    );
    let by_decky = AttackerQuery {
        decky: Some("db-01".into()),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(repo.count_attackers(&by_decky).await?, 1);
    Ok(())
}

pub async fn ingest_origin_round_trips(repo: Repo) -> Res {
    let mut imported = ev("o0", 1, "web-01", "ssh", "1.1.1.1", None);
    imported.log.origin = LogOrigin::Imported;
    imported.log.source_worker = None;
    let mut local = ev("o1", 2, "web-01", "ssh", "1.1.1.1", None);
    local.log.origin = LogOrigin::Local;
    local.log.source_worker = None;
    let forwarded = ev("o2", 3, "web-01", "ssh", "1.1.1.1", None);
    let mut other = ev("o3", 4, "web-01", "ssh", "1.1.1.1", None);
    other.log.source_worker = Some("worker-2".into());
    repo.ingest(&[imported, local, forwarded, other]).await?;
    // insert_logs stores the origin too.
    let mut old = log("o4", 5, "web-01", "ssh", "1.1.1.1", "x");
    old.origin = LogOrigin::Imported;
    repo.insert_logs(&[old]).await?;

    let rows = repo
        .query_logs(&LogQuery {
            order: Order::OldestFirst,
            limit: 10,
            ..Default::default()
        })
        .await?;
    let got: Vec<(&str, LogOrigin, Option<&str>)> = rows
        .iter()
        .map(|r| (r.dedup_key.as_str(), r.origin, r.source_worker.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("o0", LogOrigin::Imported, None),
            ("o1", LogOrigin::Local, None),
            ("o2", LogOrigin::Forwarded, Some("worker-1")),
            ("o3", LogOrigin::Forwarded, Some("worker-2")),
            ("o4", LogOrigin::Imported, None),
        ]
    );
    Ok(())
}

pub async fn log_filters_origin_worker_after_id(repo: Repo) -> Res {
    let mut batch = Vec::new();
    for i in 0..12i64 {
        let mut e = ev(&format!("f{i}"), i, "web-01", "ssh", "1.1.1.1", None);
        match i % 3 {
            0 => {
                e.log.origin = LogOrigin::Local;
                e.log.source_worker = None;
            }
            1 => e.log.source_worker = Some(format!("worker-{}", i % 2)),
            _ => {
                e.log.origin = LogOrigin::Imported;
                e.log.source_worker = None;
            }
        }
        batch.push(e);
    }
    repo.ingest(&batch).await?;
    let keys = |q: LogQuery| {
        let repo = repo.clone();
        async move {
            Ok::<_, anyhow::Error>(
                repo.query_logs(&q)
                    .await?
                    .into_iter()
                    .map(|r| r.dedup_key)
                    .collect::<Vec<_>>(),
            )
        }
    };
    let filtered = |filter: LogFilter| LogQuery {
        filter,
        order: Order::OldestFirst,
        limit: 100,
        ..Default::default()
    };
    let by_origin = |o| LogFilter {
        origin: Some(o),
        ..Default::default()
    };
    assert_eq!(
        keys(filtered(by_origin(LogOrigin::Imported))).await?,
        ["f2", "f5", "f8", "f11"]
    );
    assert_eq!(repo.count_logs(&by_origin(LogOrigin::Local)).await?, 4);
    assert_eq!(repo.count_logs(&by_origin(LogOrigin::Forwarded)).await?, 4);
    let worker1 = LogFilter {
        source_worker: Some("worker-1".into()),
        ..Default::default()
    };
    assert_eq!(keys(filtered(worker1.clone())).await?, ["f1", "f7"]);
    assert_eq!(repo.count_logs(&worker1).await?, 2);

    let all = repo.query_logs(&filtered(LogFilter::default())).await?;
    let after = all[5].id;
    let tail = LogFilter {
        after_id: Some(after),
        ..Default::default()
    };
    assert_eq!(
        keys(filtered(tail.clone())).await?,
        ["f6", "f7", "f8", "f9", "f10", "f11"]
    );
    assert_eq!(repo.count_logs(&tail).await?, 6);
    let newest_first = LogQuery {
        filter: LogFilter {
            after_id: Some(after),
            origin: Some(LogOrigin::Forwarded),
            ..Default::default()
        },
        order: Order::NewestFirst,
        limit: 100,
        ..Default::default()
    };
    assert_eq!(keys(newest_first).await?, ["f10", "f7"], "filters combine");
    let last = all.last().context("rows")?.id;
    assert_eq!(
        repo.count_logs(&LogFilter {
            after_id: Some(last),
            ..Default::default()
        })
        .await?,
        0
    );
    let long = LogFilter {
        source_worker: Some("w".repeat(MAX_FILTER_TEXT_LEN + 1)),
        ..Default::default()
    };
    assert!(is_invalid(&repo.count_logs(&long).await));
    Ok(())
}

pub async fn ingest_bad_event_writes_nothing(repo: Repo) -> Res {
    repo.ingest(&[ev("z0", 1, "web-01", "ssh", "1.1.1.1", Some(SHA_A))])
        .await?;
    let before = snapshot(&repo).await?;

    let mut bad_cred = ev("z2", 2, "web-01", "ssh", "1.1.1.1", Some(SHA_A));
    if let Some(c) = bad_cred.credential.as_mut() {
        c.secret_sha256 = "not-a-digest".into();
    }
    let mut bad_line = ev("z3", 2, "web-01", "ssh", "1.1.1.1", None);
    bad_line.log.raw_line = "x".repeat(decnet_store::limits::MAX_RAW_LINE_LEN + 1);
    let mut bad_sev = ev("z4", 2, "web-01", "ssh", "1.1.1.1", None);
    bad_sev.log.severity = Some(9);
    for (bad, field) in [
        (bad_cred, "secret sha256"),
        (bad_line, "log line"),
        (bad_sev, "log severity"),
    ] {
        assert!(bad.check().is_err(), "check() finds {field}");
        let batch = vec![
            ev("z1", 2, "web-01", "http", "9.9.9.9", Some(SHA_B)),
            ev("z0", 1, "web-01", "ssh", "1.1.1.1", Some(SHA_A)),
            bad,
        ];
        match repo.ingest(&batch).await {
            Err(Error::InvalidEvent { index, source }) => {
                assert_eq!(index, 2);
                assert!(
                    matches!(*source, Error::Invalid { what, .. } if what == field),
                    "{source:?} names {field}"
                );
            }
            other => panic!("expected InvalidEvent for {field}, got {other:?}"),
        }
    }
    let too_many: Vec<IngestEvent> = (0..=decnet_store::limits::MAX_INGEST_BATCH)
        .map(|i| ev(&format!("m{i}"), 1, "web-01", "ssh", "8.8.8.8", None))
        .collect();
    assert!(is_invalid(&repo.ingest(&too_many).await));
    assert_eq!(snapshot(&repo).await?, before, "nothing written");
    assert_eq!(repo.count_logs(&LogFilter::default()).await?, 1);
    Ok(())
}

pub async fn ingest_agrees_with_the_separate_calls(repo: Repo) -> Res {
    // The same attempts through upsert_credentials give the same counts and flags.
    let upserted: Vec<CredentialUpserted> = repo
        .upsert_credentials(&[
            cred("7.7.7.7", Some("admin"), SHA_A, 1),
            cred("7.7.7.7", Some("admin"), SHA_A, 2),
        ])
        .await?;
    let mut e = ev("c0", 3, "web-01", "ssh", "7.7.7.7", Some(SHA_A));
    if let Some(c) = e.credential.as_mut() {
        c.principal = Some("admin".into());
        c.outcome = Some("success".into());
    }
    let mut e2 = ev("c1", 4, "web-01", "ssh", "7.7.7.7", Some(SHA_A));
    if let Some(c) = e2.credential.as_mut() {
        c.principal = Some("admin".into());
        c.outcome = None;
        c.secret_printable = Some("later".into());
    }
    let out = repo.ingest(&[e, e2]).await?;
    assert_eq!(attempts(&out), [(0, 3, false), (1, 4, false)]);
    assert!(out.credentials.iter().all(|(_, c)| c.id == upserted[0].id));
    let c = repo
        .list_credentials(&CredentialFilter::default(), 10, 0)
        .await?;
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].attempt_count, 4);
    assert_eq!(
        c[0].outcome.as_deref(),
        Some("success"),
        "a later null keeps it"
    );
    assert_eq!(c[0].secret_printable.as_deref(), Some("later"));
    assert_eq!(c[0].principal.as_deref(), Some("admin"));
    assert_eq!(
        (c[0].first_seen, c[0].last_seen),
        (
            Timestamp::from_unix_seconds(1),
            Timestamp::from_unix_seconds(4)
        )
    );
    Ok(())
}

/// A full-size batch crosses the statement chunk boundaries.
pub async fn ingest_large_batch(repo: Repo) -> Res {
    let n = decnet_store::limits::MAX_INGEST_BATCH;
    let batch: Vec<IngestEvent> = (0..n)
        .map(|i| {
            let ip = format!("10.0.{}.{}", i % 7, i % 50);
            let sha = (i % 10 == 0).then_some(if i % 20 == 0 { SHA_A } else { SHA_B });
            ev(
                &format!("L{i}"),
                i as i64,
                &format!("d{}", i % 5),
                "ssh",
                &ip,
                sha,
            )
        })
        .collect();
    let out = repo.ingest(&batch).await?;
    assert_eq!(out.inserted.len(), n);
    assert_eq!(out.inserted.last(), Some(&(n - 1)));
    let total: u64 = out.attackers.iter().map(|a| a.added).sum();
    assert_eq!(total, n as u64);
    assert_eq!(out.credentials.len(), n.div_ceil(10));
    assert_eq!(repo.count_logs(&LogFilter::default()).await?, n as u64);
    let again = repo.ingest(&batch[n - 1030..]).await?;
    assert_eq!((again.inserted.len(), again.duplicates), (0, 1030));
    Ok(())
}
