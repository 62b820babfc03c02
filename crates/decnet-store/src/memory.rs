//! [`MemoryStore`]: the in-memory double of every repository trait, for tests.
//!
//! It passes the same contract suite as the SQL stores, so tests that use it see the
//! same semantics: ordering, limits, host scoping, conflicts, idempotency. Every call
//! holds one mutex for its whole duration, so each call is atomic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use decnet_core::{DeckyName, HostUuid};
use serde_json::Value;

use crate::fleet::{FleetDecky, FleetRepo, FleetState, FleetUpsert, HostScope};
use crate::limits::{self, MAX_BATCH};
use crate::swarm::{
    self, DeckyShard, ErrorUpdate, Fingerprint, HeartbeatOutcome, HeartbeatRepo, HeartbeatWrite,
    HostStatus, NewSwarmHost, RevokedFingerprint, ShardFilter, ShardRepo, ShardUpsert,
    SnapshotOutcome, SwarmHost, SwarmHostPatch, SwarmHostRepo, TokenConsumption, TokenRepo,
    token_digest,
};
use crate::telemetry::{
    Artifact, ArtifactRepo, Attacker, AttackerObservation, AttackerQuery, AttackerRepo,
    AttackerTouched, Credential, CredentialFilter, CredentialRepo, CredentialUpserted, IngestEvent,
    IngestOutcome, IngestRepo, InsertOutcome, LogFilter, LogQuery, LogRepo, LogRow, NewArtifact,
    NewCredential, NewLog, Order, encode_batch,
};
use crate::users::{self, NewUser, Role, StateRepo, User, UserRepo};
use crate::{Error, Result, Timestamp};

#[derive(Debug, Clone)]
struct TokenRow {
    host: HostUuid,
    expires_at: Timestamp,
    used_at: Option<Timestamp>,
}

type CredentialKey = (String, String, String, String, String, String);

#[derive(Debug, Default)]
struct Tables {
    fleet: BTreeMap<(HostUuid, DeckyName), FleetDecky>,
    hosts: BTreeMap<HostUuid, SwarmHost>,
    revoked: BTreeMap<Fingerprint, RevokedFingerprint>,
    shards: BTreeMap<(HostUuid, DeckyName), DeckyShard>,
    tokens: BTreeMap<String, TokenRow>,
    logs: Vec<LogRow>,
    log_keys: BTreeSet<String>,
    next_log_id: i64,
    attackers: BTreeMap<String, Attacker>,
    credentials: Vec<Credential>,
    credential_index: BTreeMap<CredentialKey, usize>,
    artifacts: Vec<Artifact>,
    artifact_keys: BTreeSet<(String, String, String, String)>,
    users: BTreeMap<String, User>,
    state: BTreeMap<String, Value>,
}

/// The in-memory store. Cheap to create; one per test.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    /// Held for writing by [`MemoryStore::hold_heartbeats`]: heartbeat writes wait.
    heartbeat_gate: std::sync::Arc<tokio::sync::RwLock<()>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes [`HeartbeatRepo::apply_heartbeats`] wait until the returned guard is
    /// dropped, as a hung database would: for tests of the callers' timeouts.
    pub async fn hold_heartbeats(&self) -> tokio::sync::OwnedRwLockWriteGuard<()> {
        self.heartbeat_gate.clone().write_owned().await
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock can only come from a bug in this file; the
        // tables are still structurally valid, so keep serving them.
        self.tables
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn ascii_contains(haystack: &str, needle: &str) -> bool {
    haystack
        .to_ascii_lowercase()
        .contains(&needle.to_ascii_lowercase())
}

fn opt_eq(filter: Option<&String>, value: &str) -> bool {
    filter.is_none_or(|f| f == value)
}

#[async_trait]
impl FleetRepo for MemoryStore {
    async fn list_fleet(&self, scope: &HostScope) -> Result<Vec<FleetDecky>> {
        let t = self.lock();
        let mut rows: Vec<FleetDecky> = t
            .fleet
            .values()
            .filter(|d| scope.contains(&d.host_uuid))
            .cloned()
            .collect();
        rows.sort_by(|a, b| (&a.name, &a.host_uuid).cmp(&(&b.name, &b.host_uuid)));
        Ok(rows)
    }

    async fn get_fleet_decky(
        &self,
        host: &HostUuid,
        name: &DeckyName,
    ) -> Result<Option<FleetDecky>> {
        Ok(self
            .lock()
            .fleet
            .get(&(host.clone(), name.clone()))
            .cloned())
    }

    async fn upsert_fleet_decky(&self, decky: &FleetUpsert) -> Result<()> {
        decky.encode()?;
        let now = Timestamp::now();
        let mut t = self.lock();
        let key = (decky.host_uuid.clone(), decky.name.clone());
        let row = t.fleet.entry(key).or_insert_with(|| FleetDecky {
            host_uuid: decky.host_uuid.clone(),
            name: decky.name.clone(),
            services: Vec::new(),
            decky_config: None,
            decky_ip: None,
            state: decky.state,
            last_error: None,
            compose_hash: None,
            last_seen: None,
            last_observed: None,
            updated_at: now,
        });
        row.services.clone_from(&decky.services);
        row.decky_config.clone_from(&decky.decky_config);
        row.decky_ip = decky.decky_ip;
        row.state = decky.state;
        row.updated_at = now;
        Ok(())
    }

    async fn update_fleet_state(
        &self,
        host: &HostUuid,
        name: &DeckyName,
        state: FleetState,
        last_error: Option<&str>,
    ) -> Result<Option<FleetState>> {
        let now = Timestamp::now();
        let mut t = self.lock();
        let Some(row) = t.fleet.get_mut(&(host.clone(), name.clone())) else {
            return Ok(None);
        };
        let previous = row.state;
        row.state = state;
        row.updated_at = now;
        row.last_seen = Some(now);
        if let Some(e) = last_error {
            row.last_error = Some(limits::error_text(e));
        }
        Ok(Some(previous))
    }

    async fn delete_fleet_decky(&self, host: &HostUuid, name: &DeckyName) -> Result<bool> {
        Ok(self
            .lock()
            .fleet
            .remove(&(host.clone(), name.clone()))
            .is_some())
    }

    async fn stamp_fleet_observed(&self, host: &HostUuid, at: Timestamp) -> Result<u64> {
        let mut t = self.lock();
        let mut n = 0;
        for row in t.fleet.values_mut().filter(|d| &d.host_uuid == host) {
            row.last_observed = Some(at);
            n += 1;
        }
        Ok(n)
    }
}

impl Tables {
    fn fingerprint_owner(&self, fp: &Fingerprint) -> Option<&HostUuid> {
        self.hosts
            .values()
            .find(|h| h.client_cert_fingerprint.as_ref() == Some(fp))
            .map(|h| &h.uuid)
    }

    fn upsert_shard(&mut self, shard: &ShardUpsert, now: Timestamp) -> Result<()> {
        let enc = shard.encode()?;
        if !self.hosts.contains_key(&shard.host_uuid) {
            return Err(Error::not_found("swarm host", shard.host_uuid.as_str()));
        }
        let key = (shard.host_uuid.clone(), shard.decky_name.clone());
        let old = self.shards.get(&key);
        let last_error = match &shard.last_error {
            ErrorUpdate::Keep => old.and_then(|o| o.last_error.clone()),
            ErrorUpdate::Set(_) => enc.error,
            ErrorUpdate::Clear => None,
        };
        let last_seen = shard.last_seen.or(old.and_then(|o| o.last_seen));
        self.shards.insert(
            key,
            DeckyShard {
                host_uuid: shard.host_uuid.clone(),
                decky_name: shard.decky_name.clone(),
                services: shard.services.clone(),
                decky_config: shard.decky_config.clone(),
                decky_ip: shard.decky_ip,
                state: shard.state,
                last_error,
                last_seen,
                updated_at: now,
            },
        );
        Ok(())
    }
}

#[async_trait]
impl SwarmHostRepo for MemoryStore {
    async fn create_swarm_host(&self, host: &NewSwarmHost) -> Result<SwarmHost> {
        host.check()?;
        let mut t = self.lock();
        if t.hosts.contains_key(&host.uuid) {
            return Err(Error::conflict("swarm host", host.uuid.as_str()));
        }
        if t.hosts.values().any(|h| h.name == host.name) {
            return Err(Error::conflict("swarm host name", host.name.as_str()));
        }
        if let Some(fp) = &host.client_cert_fingerprint
            && t.fingerprint_owner(fp).is_some()
        {
            return Err(Error::conflict(
                "client certificate fingerprint",
                fp.as_str(),
            ));
        }
        let row = host.to_row();
        t.hosts.insert(host.uuid.clone(), row.clone());
        Ok(row)
    }

    async fn get_swarm_host(&self, uuid: &HostUuid) -> Result<Option<SwarmHost>> {
        Ok(self.lock().hosts.get(uuid).cloned())
    }

    async fn get_swarm_host_by_name(&self, name: &str) -> Result<Option<SwarmHost>> {
        Ok(self.lock().hosts.values().find(|h| h.name == name).cloned())
    }

    async fn get_swarm_host_by_fingerprint(
        &self,
        fingerprint: &Fingerprint,
    ) -> Result<Option<SwarmHost>> {
        let t = self.lock();
        Ok(t.fingerprint_owner(fingerprint)
            .and_then(|u| t.hosts.get(u))
            .cloned())
    }

    async fn list_swarm_hosts(&self, status: Option<HostStatus>) -> Result<Vec<SwarmHost>> {
        let mut rows: Vec<SwarmHost> = self
            .lock()
            .hosts
            .values()
            .filter(|h| status.is_none_or(|s| h.status == s))
            .cloned()
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(rows)
    }

    async fn update_swarm_host(&self, uuid: &HostUuid, patch: &SwarmHostPatch) -> Result<bool> {
        patch.check()?;
        let mut t = self.lock();
        if !t.hosts.contains_key(uuid) {
            return Ok(false);
        }
        if let Some(fp) = &patch.client_cert_fingerprint
            && t.fingerprint_owner(fp).is_some_and(|owner| owner != uuid)
        {
            return Err(Error::conflict(
                "client certificate fingerprint",
                fp.as_str(),
            ));
        }
        if let Some(host) = t.hosts.get_mut(uuid) {
            patch.apply(host);
        }
        Ok(true)
    }

    async fn mark_stale_hosts_unreachable(&self, older_than: Timestamp) -> Result<Vec<HostUuid>> {
        let mut t = self.lock();
        let mut out = Vec::new();
        for h in t.hosts.values_mut() {
            if h.status == HostStatus::Active && h.last_heartbeat.is_none_or(|t| t < older_than) {
                h.status = HostStatus::Unreachable;
                out.push(h.uuid.clone());
            }
        }
        out.sort();
        Ok(out)
    }

    async fn delete_swarm_host(&self, uuid: &HostUuid) -> Result<bool> {
        let mut t = self.lock();
        t.shards.retain(|(h, _), _| h != uuid);
        t.tokens.retain(|_, tok| &tok.host != uuid);
        Ok(t.hosts.remove(uuid).is_some())
    }

    async fn revoke_fingerprint(&self, revoked: &RevokedFingerprint) -> Result<bool> {
        limits::opt_text(
            "revocation reason",
            revoked.reason.as_deref(),
            limits::MAX_TEXT_LEN,
        )?;
        let mut t = self.lock();
        if t.revoked.contains_key(&revoked.fingerprint) {
            return Ok(false);
        }
        t.revoked
            .insert(revoked.fingerprint.clone(), revoked.clone());
        Ok(true)
    }

    async fn is_fingerprint_revoked(&self, fingerprint: &Fingerprint) -> Result<bool> {
        Ok(self.lock().revoked.contains_key(fingerprint))
    }

    async fn list_revoked_fingerprints(&self) -> Result<Vec<RevokedFingerprint>> {
        let mut rows: Vec<RevokedFingerprint> = self.lock().revoked.values().cloned().collect();
        rows.sort_by(|a, b| (a.revoked_at, &a.fingerprint).cmp(&(b.revoked_at, &b.fingerprint)));
        Ok(rows)
    }
}

#[async_trait]
impl ShardRepo for MemoryStore {
    async fn upsert_shard(&self, shard: &ShardUpsert) -> Result<()> {
        let now = Timestamp::now();
        self.lock().upsert_shard(shard, now)
    }

    async fn list_shards(&self, filter: &ShardFilter) -> Result<Vec<DeckyShard>> {
        Ok(self
            .lock()
            .shards
            .values()
            .filter(|s| filter.host.contains(&s.host_uuid))
            .filter(|s| filter.state.is_none_or(|st| s.state == st))
            .cloned()
            .collect())
    }

    async fn get_shard(&self, host: &HostUuid, name: &DeckyName) -> Result<Option<DeckyShard>> {
        Ok(self
            .lock()
            .shards
            .get(&(host.clone(), name.clone()))
            .cloned())
    }

    async fn delete_shard(&self, host: &HostUuid, name: &DeckyName) -> Result<bool> {
        Ok(self
            .lock()
            .shards
            .remove(&(host.clone(), name.clone()))
            .is_some())
    }

    async fn delete_shards_for_host(&self, host: &HostUuid) -> Result<u64> {
        let mut t = self.lock();
        let before = t.shards.len();
        t.shards.retain(|(h, _), _| h != host);
        Ok((before - t.shards.len()) as u64)
    }

    async fn replace_host_shards(
        &self,
        host: &HostUuid,
        snapshot: &[ShardUpsert],
    ) -> Result<SnapshotOutcome> {
        swarm::check_snapshot(host, snapshot)?;
        for s in snapshot {
            s.encode()?;
        }
        let now = Timestamp::now();
        let mut t = self.lock();
        if !t.hosts.contains_key(host) {
            return Err(Error::not_found("swarm host", host.as_str()));
        }
        for s in snapshot {
            t.upsert_shard(s, now)?;
        }
        let keep: BTreeSet<&DeckyName> = snapshot.iter().map(|s| &s.decky_name).collect();
        let removed: Vec<DeckyName> = t
            .shards
            .keys()
            .filter(|(h, n)| h == host && !keep.contains(n))
            .map(|(_, n)| n.clone())
            .collect();
        for n in &removed {
            t.shards.remove(&(host.clone(), n.clone()));
        }
        Ok(SnapshotOutcome {
            upserted: snapshot.len(),
            removed,
        })
    }
}

#[async_trait]
impl HeartbeatRepo for MemoryStore {
    async fn apply_heartbeats(
        &self,
        batch: &[HeartbeatWrite],
        at: Timestamp,
    ) -> Result<Vec<HeartbeatOutcome>> {
        let _gate = self.heartbeat_gate.read().await;
        limits::batch("heartbeat batch", batch.len(), MAX_BATCH)?;
        let encoded: Vec<_> = batch.iter().map(HeartbeatWrite::encode).collect();
        let mut t = self.lock();
        let plan = swarm::plan_heartbeats(
            batch,
            &encoded,
            |fp| t.revoked.contains_key(fp),
            |uuid| {
                t.hosts
                    .get(uuid)
                    .map(|h| (h.client_cert_fingerprint.clone(), h.status))
            },
        );
        for (uuid, write) in &plan.hosts {
            if let Some(h) = t.hosts.get_mut(*uuid) {
                h.status = HostStatus::Active;
                h.last_heartbeat = Some(at);
                if let Some(v) = write.version {
                    h.agent_version = Some(v.to_owned());
                }
            }
            let Some(snapshot) = write
                .snapshot
                .and_then(|i| batch.get(i))
                .and_then(|w| w.snapshot.as_deref())
            else {
                continue;
            };
            let keep: BTreeSet<&DeckyName> = snapshot.iter().map(|s| &s.decky_name).collect();
            t.shards.retain(|(h, n), _| h != *uuid || keep.contains(n));
            for s in snapshot {
                let key = ((*uuid).clone(), s.decky_name.clone());
                let last_error = t.shards.get(&key).and_then(|o| o.last_error.clone());
                t.shards.insert(
                    key,
                    DeckyShard {
                        host_uuid: (*uuid).clone(),
                        decky_name: s.decky_name.clone(),
                        services: s.services.clone(),
                        decky_config: s.decky_config.clone(),
                        decky_ip: s.decky_ip,
                        state: s.state,
                        last_error,
                        last_seen: Some(at),
                        updated_at: at,
                    },
                );
            }
        }
        Ok(plan.outcomes)
    }
}

#[async_trait]
impl TokenRepo for MemoryStore {
    async fn create_enrollment_token(
        &self,
        token: &str,
        host: &HostUuid,
        _created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        swarm::check_token(token)?;
        let digest = token_digest(token);
        let mut t = self.lock();
        // Same order as the SQL stores: the unique key is checked before the host.
        if t.tokens.contains_key(&digest) {
            return Err(Error::conflict("enrollment token", digest));
        }
        if !t.hosts.contains_key(host) {
            return Err(Error::not_found("swarm host", host.as_str()));
        }
        t.tokens.insert(
            digest,
            TokenRow {
                host: host.clone(),
                expires_at,
                used_at: None,
            },
        );
        Ok(())
    }

    async fn consume_enrollment_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<TokenConsumption> {
        let mut t = self.lock();
        let Some(row) = t.tokens.get_mut(&token_digest(token)) else {
            return Ok(TokenConsumption::Unknown);
        };
        if row.used_at.is_some() {
            return Ok(TokenConsumption::AlreadyUsed);
        }
        if row.expires_at <= now {
            return Ok(TokenConsumption::Expired);
        }
        row.used_at = Some(now);
        Ok(TokenConsumption::Consumed(row.host.clone()))
    }

    async fn purge_expired_tokens(&self, now: Timestamp) -> Result<u64> {
        let mut t = self.lock();
        let before = t.tokens.len();
        t.tokens.retain(|_, row| row.expires_at > now);
        Ok((before - t.tokens.len()) as u64)
    }
}

fn log_matches(f: &LogFilter, row: &LogRow) -> bool {
    opt_eq(f.decky.as_ref(), &row.decky)
        && opt_eq(f.service.as_ref(), &row.service)
        && opt_eq(f.event_type.as_ref(), &row.event_type)
        && opt_eq(f.attacker_ip.as_ref(), &row.attacker_ip)
        && f.since.is_none_or(|s| row.timestamp >= s)
        && f.until.is_none_or(|u| row.timestamp < u)
        && f.text
            .as_ref()
            .is_none_or(|q| ascii_contains(&row.raw_line, q))
        && f.origin.is_none_or(|o| row.origin == o)
        && f.source_worker
            .as_ref()
            .is_none_or(|w| row.source_worker.as_ref() == Some(w))
        && f.after_id.is_none_or(|a| row.id > a)
}

impl Tables {
    /// Stores `log` unless its key is known; returns the new id.
    fn insert_log(&mut self, log: &NewLog) -> Option<i64> {
        if !self.log_keys.insert(log.dedup_key.clone()) {
            return None;
        }
        self.next_log_id += 1;
        let id = self.next_log_id;
        self.logs.push(LogRow {
            id,
            dedup_key: log.dedup_key.clone(),
            timestamp: log.timestamp,
            decky: log.decky.clone(),
            service: log.service.clone(),
            event_type: log.event_type.clone(),
            attacker_ip: log.attacker_ip.clone(),
            severity: log.severity,
            fields: log.fields.clone(),
            msg: log.msg.clone(),
            raw_line: log.raw_line.clone(),
            source_worker: log.source_worker.clone(),
            trace_id: log.trace_id.clone(),
            span_id: log.span_id.clone(),
            origin: log.origin,
        });
        Some(id)
    }

    /// Folds one observation into its attacker row; true when the row was created.
    fn fold_attacker(&mut self, o: &AttackerObservation, now: Timestamp) -> bool {
        let mut created = false;
        let a = self.attackers.entry(o.ip.clone()).or_insert_with(|| {
            created = true;
            Attacker {
                uuid: uuid::Uuid::new_v4().to_string(),
                ip: o.ip.clone(),
                first_seen: o.seen_at,
                last_seen: o.seen_at,
                event_count: 0,
                services: Vec::new(),
                deckies: Vec::new(),
                updated_at: now,
            }
        });
        a.first_seen = a.first_seen.min(o.seen_at);
        a.last_seen = a.last_seen.max(o.seen_at);
        a.event_count = a.event_count.saturating_add(o.events);
        a.updated_at = now;
        if let Some(s) = &o.service {
            insert_sorted(&mut a.services, s);
        }
        if let Some(d) = &o.decky {
            insert_sorted(&mut a.deckies, d);
        }
        created
    }

    /// Upserts one credential attempt.
    fn upsert_credential(&mut self, c: &NewCredential) -> CredentialUpserted {
        let sha = c.secret_sha256.to_ascii_lowercase();
        let key = (
            c.attacker_ip.clone(),
            c.decky.clone(),
            c.service.clone(),
            c.secret_kind.clone(),
            sha.clone(),
            c.principal_key().to_owned(),
        );
        if let Some(&i) = self.credential_index.get(&key) {
            let row = &mut self.credentials[i];
            row.attempt_count += 1;
            row.first_seen = row.first_seen.min(c.seen_at);
            row.last_seen = row.last_seen.max(c.seen_at);
            if c.outcome.is_some() {
                row.outcome.clone_from(&c.outcome);
            }
            if c.secret_b64.is_some() {
                row.secret_b64.clone_from(&c.secret_b64);
            }
            if c.secret_printable.is_some() {
                row.secret_printable.clone_from(&c.secret_printable);
            }
            row.fields.clone_from(&c.fields);
            return CredentialUpserted {
                id: row.id,
                attempt_count: row.attempt_count,
                created: false,
            };
        }
        let id = self.credentials.len() as i64 + 1;
        self.credentials.push(Credential {
            id,
            attacker_ip: c.attacker_ip.clone(),
            decky: c.decky.clone(),
            service: c.service.clone(),
            principal: c.principal.clone(),
            secret_kind: c.secret_kind.clone(),
            secret_sha256: sha,
            secret_b64: c.secret_b64.clone(),
            secret_printable: c.secret_printable.clone(),
            outcome: c.outcome.clone(),
            fields: c.fields.clone(),
            first_seen: c.seen_at,
            last_seen: c.seen_at,
            attempt_count: 1,
        });
        let index = self.credentials.len() - 1;
        self.credential_index.insert(key, index);
        CredentialUpserted {
            id,
            attempt_count: 1,
            created: true,
        }
    }
}

#[async_trait]
impl LogRepo for MemoryStore {
    async fn insert_logs(&self, batch: &[NewLog]) -> Result<InsertOutcome> {
        limits::batch("log batch", batch.len(), MAX_BATCH)?;
        for log in batch {
            log.encode()?;
        }
        let mut t = self.lock();
        let mut out = InsertOutcome::default();
        for log in batch {
            if t.insert_log(log).is_some() {
                out.inserted += 1;
            } else {
                out.duplicates += 1;
            }
        }
        Ok(out)
    }

    async fn query_logs(&self, query: &LogQuery) -> Result<Vec<LogRow>> {
        query.filter.check()?;
        let t = self.lock();
        let rows = t
            .logs
            .iter()
            .filter(|r| log_matches(&query.filter, r))
            .filter(|r| match (query.cursor, query.order) {
                (None, _) => true,
                (Some(c), Order::NewestFirst) => r.id < c,
                (Some(c), Order::OldestFirst) => r.id > c,
            });
        let skip = usize::try_from(query.offset).unwrap_or(usize::MAX);
        let take = limits::page(query.limit) as usize;
        // Rows are stored in id order.
        Ok(match query.order {
            Order::OldestFirst => rows.skip(skip).take(take).cloned().collect(),
            Order::NewestFirst => {
                let all: Vec<&LogRow> = rows.collect();
                all.into_iter()
                    .rev()
                    .skip(skip)
                    .take(take)
                    .cloned()
                    .collect()
            }
        })
    }

    async fn count_logs(&self, filter: &LogFilter) -> Result<u64> {
        filter.check()?;
        Ok(self
            .lock()
            .logs
            .iter()
            .filter(|r| log_matches(filter, r))
            .count() as u64)
    }

    async fn max_log_id(&self) -> Result<Option<i64>> {
        Ok(self.lock().logs.last().map(|r| r.id))
    }
}

#[async_trait]
impl IngestRepo for MemoryStore {
    async fn ingest(&self, batch: &[IngestEvent]) -> Result<IngestOutcome> {
        encode_batch(batch)?;
        let now = Timestamp::now();
        let mut t = self.lock();
        let mut out = IngestOutcome::default();
        // Per address: (created, events added).
        let mut touched: BTreeMap<String, (bool, u64)> = BTreeMap::new();
        for (index, event) in batch.iter().enumerate() {
            let log = &event.log;
            if t.insert_log(log).is_none() {
                out.duplicates += 1;
                continue;
            }
            out.inserted.push(index);
            if event.has_attacker() {
                let created = t.fold_attacker(
                    &AttackerObservation {
                        ip: log.attacker_ip.clone(),
                        seen_at: log.timestamp,
                        decky: Some(log.decky.clone()),
                        service: Some(log.service.clone()),
                        events: 1,
                    },
                    now,
                );
                let entry = touched.entry(log.attacker_ip.clone()).or_default();
                entry.0 |= created;
                entry.1 += 1;
            }
            if let Some(c) = &event.credential {
                out.credentials.push((index, t.upsert_credential(c)));
            }
        }
        out.attackers = touched
            .into_iter()
            .filter_map(|(ip, (created, added))| {
                let a = t.attackers.get(&ip)?;
                Some(AttackerTouched {
                    uuid: a.uuid.clone(),
                    event_count: a.event_count,
                    ip,
                    created,
                    added,
                })
            })
            .collect();
        Ok(out)
    }
}

fn attacker_matches(q: &AttackerQuery, a: &Attacker) -> bool {
    q.ip_contains
        .as_ref()
        .is_none_or(|s| ascii_contains(&a.ip, s))
        && q.service.as_ref().is_none_or(|s| a.services.contains(s))
        && q.decky.as_ref().is_none_or(|d| a.deckies.contains(d))
}

fn insert_sorted(list: &mut Vec<String>, value: &str) {
    if let Err(pos) = list.binary_search_by(|v| v.as_str().cmp(value)) {
        list.insert(pos, value.to_owned());
    }
}

#[async_trait]
impl AttackerRepo for MemoryStore {
    async fn upsert_attackers(&self, observations: &[AttackerObservation]) -> Result<()> {
        limits::batch("attacker batch", observations.len(), MAX_BATCH)?;
        for o in observations {
            o.check()?;
        }
        let now = Timestamp::now();
        let mut t = self.lock();
        for o in observations {
            t.fold_attacker(o, now);
        }
        Ok(())
    }

    async fn get_attacker(&self, uuid: &str) -> Result<Option<Attacker>> {
        Ok(self
            .lock()
            .attackers
            .values()
            .find(|a| a.uuid == uuid)
            .cloned())
    }

    async fn get_attacker_by_ip(&self, ip: &str) -> Result<Option<Attacker>> {
        Ok(self.lock().attackers.get(ip).cloned())
    }

    async fn list_attackers(&self, query: &AttackerQuery) -> Result<Vec<Attacker>> {
        query.check()?;
        let t = self.lock();
        let mut rows: Vec<&Attacker> = t
            .attackers
            .values()
            .filter(|a| attacker_matches(query, a))
            .collect();
        rows.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then_with(|| a.ip.cmp(&b.ip)));
        let skip = usize::try_from(query.offset).unwrap_or(usize::MAX);
        Ok(rows
            .into_iter()
            .skip(skip)
            .take(limits::page(query.limit) as usize)
            .cloned()
            .collect())
    }

    async fn count_attackers(&self, query: &AttackerQuery) -> Result<u64> {
        query.check()?;
        Ok(self
            .lock()
            .attackers
            .values()
            .filter(|a| attacker_matches(query, a))
            .count() as u64)
    }
}

fn credential_matches(f: &CredentialFilter, c: &Credential) -> bool {
    opt_eq(f.attacker_ip.as_ref(), &c.attacker_ip)
        && opt_eq(f.decky.as_ref(), &c.decky)
        && opt_eq(f.service.as_ref(), &c.service)
        && opt_eq(f.secret_kind.as_ref(), &c.secret_kind)
        && f.principal
            .as_ref()
            .is_none_or(|p| c.principal.as_ref() == Some(p))
        && f.secret_sha256
            .as_ref()
            .is_none_or(|h| h.to_ascii_lowercase() == c.secret_sha256)
}

#[async_trait]
impl CredentialRepo for MemoryStore {
    async fn upsert_credentials(&self, batch: &[NewCredential]) -> Result<Vec<CredentialUpserted>> {
        limits::batch("credential batch", batch.len(), MAX_BATCH)?;
        for c in batch {
            c.encode()?;
        }
        let mut t = self.lock();
        Ok(batch.iter().map(|c| t.upsert_credential(c)).collect())
    }

    async fn list_credentials(
        &self,
        filter: &CredentialFilter,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<Credential>> {
        filter.check()?;
        let t = self.lock();
        let mut rows: Vec<&Credential> = t
            .credentials
            .iter()
            .filter(|c| credential_matches(filter, c))
            .collect();
        rows.sort_by(|a, b| b.last_seen.cmp(&a.last_seen).then(b.id.cmp(&a.id)));
        Ok(rows
            .into_iter()
            .skip(usize::try_from(offset).unwrap_or(usize::MAX))
            .take(limits::page(limit) as usize)
            .cloned()
            .collect())
    }

    async fn count_credentials(&self, filter: &CredentialFilter) -> Result<u64> {
        filter.check()?;
        Ok(self
            .lock()
            .credentials
            .iter()
            .filter(|c| credential_matches(filter, c))
            .count() as u64)
    }
}

#[async_trait]
impl ArtifactRepo for MemoryStore {
    async fn record_artifact(&self, artifact: &NewArtifact) -> Result<bool> {
        artifact.encode()?;
        let sha = artifact.sha256.to_ascii_lowercase();
        let mut t = self.lock();
        let key = (
            artifact.attacker_ip.clone(),
            artifact.decky.clone(),
            artifact.service.clone(),
            sha.clone(),
        );
        if !t.artifact_keys.insert(key) {
            return Ok(false);
        }
        let id = t.artifacts.len() as i64 + 1;
        t.artifacts.push(Artifact {
            id,
            attacker_ip: artifact.attacker_ip.clone(),
            decky: artifact.decky.clone(),
            service: artifact.service.clone(),
            kind: artifact.kind.clone(),
            sha256: sha,
            stored_path: artifact.stored_path.clone(),
            size: artifact.size,
            observed_at: artifact.observed_at,
            meta: artifact.meta.clone(),
        });
        Ok(true)
    }

    async fn get_attacker_artifacts(&self, attacker_ip: &str, limit: u32) -> Result<Vec<Artifact>> {
        let t = self.lock();
        let mut rows: Vec<&Artifact> = t
            .artifacts
            .iter()
            .filter(|a| a.attacker_ip == attacker_ip)
            .collect();
        rows.sort_by(|a, b| b.observed_at.cmp(&a.observed_at).then(b.id.cmp(&a.id)));
        Ok(rows
            .into_iter()
            .take(limits::page(limit) as usize)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl UserRepo for MemoryStore {
    async fn create_user(&self, user: &NewUser) -> Result<User> {
        user.check()?;
        let mut t = self.lock();
        if t.users.contains_key(&user.uuid) {
            return Err(Error::conflict("user", user.uuid.as_str()));
        }
        if t.users.values().any(|u| u.username == user.username) {
            return Err(Error::conflict("username", user.username.as_str()));
        }
        let row = User {
            uuid: user.uuid.clone(),
            username: user.username.clone(),
            password_hash: user.password_hash.clone(),
            role: user.role,
            must_change_password: user.must_change_password,
            tokens_valid_from: None,
            created_at: Timestamp::now(),
        };
        t.users.insert(user.uuid.clone(), row.clone());
        Ok(row)
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        Ok(self
            .lock()
            .users
            .values()
            .find(|u| u.username == username)
            .cloned())
    }

    async fn get_user_by_uuid(&self, uuid: &str) -> Result<Option<User>> {
        Ok(self.lock().users.get(uuid).cloned())
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let mut rows: Vec<User> = self.lock().users.values().cloned().collect();
        rows.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(rows)
    }

    async fn update_user_password(
        &self,
        uuid: &str,
        password_hash: &str,
        must_change_password: bool,
    ) -> Result<bool> {
        limits::label("password hash", password_hash, limits::MAX_TEXT_LEN)?;
        let mut t = self.lock();
        let Some(u) = t.users.get_mut(uuid) else {
            return Ok(false);
        };
        u.password_hash = password_hash.to_owned();
        u.must_change_password = must_change_password;
        Ok(true)
    }

    async fn update_user_role(&self, uuid: &str, role: Role) -> Result<bool> {
        let mut t = self.lock();
        let Some(u) = t.users.get_mut(uuid) else {
            return Ok(false);
        };
        u.role = role;
        Ok(true)
    }

    async fn delete_user(&self, uuid: &str) -> Result<bool> {
        Ok(self.lock().users.remove(uuid).is_some())
    }
}

#[async_trait]
impl StateRepo for MemoryStore {
    async fn get_state(&self, key: &str) -> Result<Option<Value>> {
        Ok(self.lock().state.get(key).cloned())
    }

    async fn set_state(&self, key: &str, value: &Value) -> Result<()> {
        users::encode_state(key, value)?;
        self.lock().state.insert(key.to_owned(), value.clone());
        Ok(())
    }
}
