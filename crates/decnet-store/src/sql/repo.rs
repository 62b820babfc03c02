//! `sql_repository!`: the trait impls shared by the SQLite and PostgreSQL stores.

/// Implements every repository trait for `$store` (a struct with `pool: Pool<$db>`,
/// the dialect constants `LIKE`, `LEAST`, `GREATEST`, `FOR_UPDATE`, `FLEET_SUMMARY_JSON`,
/// `NUMBERED_PARAMS`, and
/// `async fn begin_write(&self) -> sqlx::Result<Transaction<'static, $db>>`).
macro_rules! sql_repository {
    ($store:ident, $db:ty) => {
        use async_trait::async_trait;
        use decnet_core::{DeckyName, HostUuid};
        use serde_json::Value;
        use sqlx::QueryBuilder;

        use crate::fleet::{
            FleetDecky, FleetRepo, FleetState, FleetSummary, FleetUpsert, HostScope,
        };
        use crate::limits::{self, MAX_BATCH};
        use crate::sql::{
            ARTIFACT_COLS, ATTACKER_COLS, ArtifactRaw, AttackerRaw, CREDENTIAL_COLS,
            CREDENTIAL_INSERT, credential_merge,
            CredentialRaw, FLEET_COLS, FleetRaw, HOST_COLS, HostRaw, LOG_COLS, LogRaw,
            RevokedRaw, SHARD_COLS, ShardRaw, USER_COLS, UserRaw, assemble_attackers, convert,
            db, fleet_summaries, is_fk_violation, is_unique_violation, json_value, like_pattern, to_i64,
        };
        use crate::swarm::{
            self, DeckyShard, Fingerprint, HeartbeatOutcome, HeartbeatRepo, HeartbeatWrite,
            HostStatus, NewSwarmHost, RevokedFingerprint, ShardFilter, ShardRepo, ShardUpsert,
            SnapshotOutcome, SwarmHost, SwarmHostPatch, SwarmHostRepo, TokenConsumption,
            TokenRepo, token_digest,
        };
        use crate::telemetry::{
            Artifact, ArtifactRepo, Attacker, AttackerObservation, AttackerQuery, AttackerRepo,
            Credential, CredentialFilter, CredentialRepo, CredentialUpserted, InsertOutcome,
            LogFilter, LogQuery, LogRepo, LogRow, NewArtifact, NewCredential, NewLog, Order,
            IngestEvent, IngestOutcome, IngestRepo, encode_batch,
        };
        use crate::sql::ingest::{
            AttackerPlan, ChunkedSql, CredentialKey, MAX_CHUNK, chunk_sizes, credential_results,
            first_occurrences, fold_credentials, inserted_indexes,
        };
        use std::collections::{HashMap, HashSet};
        use std::sync::OnceLock;
        use crate::users::{self, NewUser, Role, StateRepo, User, UserRepo};
        use crate::{Error, Result, Timestamp};

        /// Rows per multi-row `INSERT` statement.
        const INSERT_CHUNK: usize = 250;
        /// Bind values per heartbeat snapshot `DELETE` (one host's snapshot may exceed
        /// it alone, up to [`limits::MAX_SHARD_SNAPSHOT`] + 1).
        const DELETE_BINDS: usize = 8192;

        impl $store {
            fn push_log_filter(qb: &mut QueryBuilder<'_, $db>, f: &LogFilter) {
                for (col, v) in [
                    ("decky", &f.decky),
                    ("service", &f.service),
                    ("event_type", &f.event_type),
                    ("attacker_ip", &f.attacker_ip),
                ] {
                    if let Some(v) = v {
                        qb.push(" AND ").push(col).push(" = ").push_bind(v.clone());
                    }
                }
                if let Some(s) = f.since {
                    qb.push(" AND timestamp >= ").push_bind(s.as_unix_micros());
                }
                if let Some(u) = f.until {
                    qb.push(" AND timestamp < ").push_bind(u.as_unix_micros());
                }
                if let Some(o) = f.origin {
                    qb.push(" AND origin = ").push_bind(o.as_str());
                }
                if let Some(w) = &f.source_worker {
                    qb.push(" AND source_worker = ").push_bind(w.clone());
                }
                if let Some(a) = f.after_id {
                    qb.push(" AND id > ").push_bind(a);
                }
                if let Some(t) = &f.text {
                    qb.push(" AND raw_line ")
                        .push(Self::LIKE)
                        .push(" ")
                        .push_bind(like_pattern(t))
                        .push(" ESCAPE '\\'");
                }
            }

            fn push_attacker_filter(qb: &mut QueryBuilder<'_, $db>, q: &AttackerQuery) {
                if let Some(ip) = &q.ip_contains {
                    qb.push(" AND ip ")
                        .push(Self::LIKE)
                        .push(" ")
                        .push_bind(like_pattern(ip))
                        .push(" ESCAPE '\\'");
                }
                if let Some(s) = &q.service {
                    qb.push(
                        " AND EXISTS (SELECT 1 FROM attacker_services s \
                         WHERE s.ip = attackers.ip AND s.service = ",
                    )
                    .push_bind(s.clone())
                    .push(")");
                }
                if let Some(d) = &q.decky {
                    qb.push(
                        " AND EXISTS (SELECT 1 FROM attacker_deckies d \
                         WHERE d.ip = attackers.ip AND d.decky = ",
                    )
                    .push_bind(d.clone())
                    .push(")");
                }
            }

            fn push_credential_filter(qb: &mut QueryBuilder<'_, $db>, f: &CredentialFilter) {
                let sha = f.secret_sha256.as_ref().map(|s| s.to_ascii_lowercase());
                for (col, v) in [
                    ("attacker_ip", &f.attacker_ip),
                    ("decky_name", &f.decky),
                    ("service", &f.service),
                    ("secret_kind", &f.secret_kind),
                    ("principal", &f.principal),
                    ("secret_sha256", &sha),
                ] {
                    if let Some(v) = v {
                        qb.push(" AND ").push(col).push(" = ").push_bind(v.clone());
                    }
                }
            }

            /// Loads the service and decky sets of `rows` and assembles attackers.
            async fn attackers_with_sets(&self, rows: Vec<AttackerRaw>) -> Result<Vec<Attacker>> {
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                let mut sets = Vec::with_capacity(2);
                for (table, col) in [("attacker_services", "service"), ("attacker_deckies", "decky")] {
                    let mut qb = QueryBuilder::<$db>::new(format!(
                        "SELECT ip, {col} FROM {table} WHERE ip IN ("
                    ));
                    let mut sep = qb.separated(", ");
                    for r in &rows {
                        sep.push_bind(r.ip.clone());
                    }
                    qb.push(format!(") ORDER BY ip, {col}"));
                    let pairs: Vec<(String, String)> = qb
                        .build_query_as()
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db("loading attacker sets"))?;
                    sets.push(pairs);
                }
                assemble_attackers(rows, &sets[0], &sets[1])
            }

            async fn upsert_shard_in(
                tx: &mut sqlx::Transaction<'static, $db>,
                shard: &ShardUpsert,
                now: Timestamp,
            ) -> Result<()> {
                let enc = shard.encode()?;
                sqlx::query(
                    "INSERT INTO decky_shards (host_uuid, decky_name, services, decky_config, \
                     decky_ip, state, last_error, last_seen, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (host_uuid, decky_name) DO UPDATE SET \
                     services = excluded.services, decky_config = excluded.decky_config, \
                     decky_ip = excluded.decky_ip, state = excluded.state, \
                     last_error = CASE WHEN $10 THEN NULL \
                     ELSE COALESCE(excluded.last_error, decky_shards.last_error) END, \
                     last_seen = COALESCE(excluded.last_seen, decky_shards.last_seen), \
                     updated_at = excluded.updated_at",
                )
                .bind(shard.host_uuid.as_str())
                .bind(shard.decky_name.as_str())
                .bind(enc.services)
                .bind(enc.config)
                .bind(shard.decky_ip.map(|ip| ip.to_string()))
                .bind(shard.state.as_str())
                .bind(enc.error)
                .bind(shard.last_seen.map(Timestamp::as_unix_micros))
                .bind(now.as_unix_micros())
                .bind(enc.clear_error)
                .execute(&mut **tx)
                .await
                .map_err(|e| {
                    if is_fk_violation(&e) {
                        Error::not_found("swarm host", shard.host_uuid.as_str())
                    } else {
                        db("upserting a shard")(e)
                    }
                })?;
                Ok(())
            }
        }

        #[async_trait]
        impl FleetRepo for $store {
            async fn list_fleet(&self, scope: &HostScope) -> Result<Vec<FleetDecky>> {
                let rows: Vec<FleetRaw> = match scope {
                    HostScope::All => {
                        sqlx::query_as(&format!(
                            "SELECT {FLEET_COLS} FROM fleet_deckies ORDER BY name, host_uuid"
                        ))
                        .fetch_all(&self.pool)
                        .await
                    }
                    HostScope::Host(h) => {
                        sqlx::query_as(&format!(
                            "SELECT {FLEET_COLS} FROM fleet_deckies WHERE host_uuid = $1 \
                             ORDER BY name, host_uuid"
                        ))
                        .bind(h.as_str())
                        .fetch_all(&self.pool)
                        .await
                    }
                }
                .map_err(db("listing fleet deckies"))?;
                convert(rows)
            }

            async fn list_fleet_summary(&self, scope: &HostScope) -> Result<Vec<FleetSummary>> {
                // One row carrying a JSON array: the drivers hand rows over one at a time
                // (SQLite's through a worker thread), which at thousands of rows costs
                // more than the query; one text value and one parse cost a third of it.
                let select = format!("SELECT {} FROM fleet_deckies", Self::FLEET_SUMMARY_JSON);
                let text: Option<String> = match scope {
                    HostScope::All => sqlx::query_scalar(&select).fetch_one(&self.pool).await,
                    HostScope::Host(h) => {
                        sqlx::query_scalar(&format!("{select} WHERE host_uuid = $1"))
                            .bind(h.as_str())
                            .fetch_one(&self.pool)
                            .await
                    }
                }
                .map_err(db("listing fleet summaries"))?;
                fleet_summaries(text.as_deref())
            }

            async fn get_fleet_decky(
                &self,
                host: &HostUuid,
                name: &DeckyName,
            ) -> Result<Option<FleetDecky>> {
                let row: Option<FleetRaw> = sqlx::query_as(&format!(
                    "SELECT {FLEET_COLS} FROM fleet_deckies WHERE host_uuid = $1 AND name = $2"
                ))
                .bind(host.as_str())
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db("reading a fleet decky"))?;
                row.map(FleetDecky::try_from).transpose()
            }

            async fn upsert_fleet_decky(&self, decky: &FleetUpsert) -> Result<()> {
                let (services, config) = decky.encode()?;
                sqlx::query(
                    "INSERT INTO fleet_deckies (host_uuid, name, services, decky_config, \
                     decky_ip, state, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (host_uuid, name) DO UPDATE SET \
                     services = excluded.services, decky_config = excluded.decky_config, \
                     decky_ip = excluded.decky_ip, state = excluded.state, \
                     updated_at = excluded.updated_at",
                )
                .bind(decky.host_uuid.as_str())
                .bind(decky.name.as_str())
                .bind(services)
                .bind(config)
                .bind(decky.decky_ip.map(|ip| ip.to_string()))
                .bind(decky.state.as_str())
                .bind(Timestamp::now().as_unix_micros())
                .execute(&self.pool)
                .await
                .map_err(db("upserting a fleet decky"))?;
                Ok(())
            }

            async fn update_fleet_state(
                &self,
                host: &HostUuid,
                name: &DeckyName,
                state: FleetState,
                last_error: Option<&str>,
            ) -> Result<Option<FleetState>> {
                let op = "updating a fleet decky state";
                let mut tx = self.begin_write().await.map_err(db(op))?;
                let previous: Option<String> = sqlx::query_scalar(&format!(
                    "SELECT state FROM fleet_deckies WHERE host_uuid = $1 AND name = $2{}",
                    Self::FOR_UPDATE
                ))
                .bind(host.as_str())
                .bind(name.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db(op))?;
                let Some(previous) = previous else {
                    tx.rollback().await.map_err(db(op))?;
                    return Ok(None);
                };
                let previous = FleetState::parse(&previous)
                    .ok_or_else(|| Error::corrupt("decky state", format!("{previous:?}")))?;
                sqlx::query(
                    "UPDATE fleet_deckies SET state = $3, updated_at = $4, last_seen = $4, \
                     last_error = COALESCE($5, last_error) WHERE host_uuid = $1 AND name = $2",
                )
                .bind(host.as_str())
                .bind(name.as_str())
                .bind(state.as_str())
                .bind(Timestamp::now().as_unix_micros())
                .bind(last_error.map(limits::error_text))
                .execute(&mut *tx)
                .await
                .map_err(db(op))?;
                tx.commit().await.map_err(db(op))?;
                Ok(Some(previous))
            }

            async fn delete_fleet_decky(&self, host: &HostUuid, name: &DeckyName) -> Result<bool> {
                let r = sqlx::query("DELETE FROM fleet_deckies WHERE host_uuid = $1 AND name = $2")
                    .bind(host.as_str())
                    .bind(name.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(db("deleting a fleet decky"))?;
                Ok(r.rows_affected() > 0)
            }

            async fn stamp_fleet_observed(&self, host: &HostUuid, at: Timestamp) -> Result<u64> {
                let r = sqlx::query("UPDATE fleet_deckies SET last_observed = $2 WHERE host_uuid = $1")
                    .bind(host.as_str())
                    .bind(at.as_unix_micros())
                    .execute(&self.pool)
                    .await
                    .map_err(db("stamping fleet deckies"))?;
                Ok(r.rows_affected())
            }
        }

        #[async_trait]
        impl SwarmHostRepo for $store {
            async fn create_swarm_host(&self, host: &NewSwarmHost) -> Result<SwarmHost> {
                host.check()?;
                let op = "creating a swarm host";
                let mut tx = self.begin_write().await.map_err(db(op))?;
                let checks: [(&str, Option<&str>, &'static str); 3] = [
                    ("uuid", Some(host.uuid.as_str()), "swarm host"),
                    ("name", Some(host.name.as_str()), "swarm host name"),
                    (
                        "client_cert_fingerprint",
                        host.client_cert_fingerprint.as_ref().map(Fingerprint::as_str),
                        "client certificate fingerprint",
                    ),
                ];
                for (col, value, what) in checks {
                    let Some(value) = value else { continue };
                    let n: i64 = sqlx::query_scalar(&format!(
                        "SELECT COUNT(*) FROM swarm_hosts WHERE {col} = $1"
                    ))
                    .bind(value)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db(op))?;
                    if n > 0 {
                        return Err(Error::conflict(what, value));
                    }
                }
                sqlx::query(&format!(
                    "INSERT INTO swarm_hosts ({HOST_COLS}) VALUES \
                     ($1, $2, $3, $4, $5, NULL, $6, $7, $8, $9, $10, $11, NULL)"
                ))
                .bind(host.uuid.as_str())
                .bind(host.name.as_str())
                .bind(host.address.as_str())
                .bind(i64::from(host.agent_port))
                .bind(HostStatus::Enrolled.as_str())
                .bind(host.client_cert_fingerprint.as_ref().map(Fingerprint::as_str))
                .bind(host.updater_cert_fingerprint.as_ref().map(Fingerprint::as_str))
                .bind(host.cert_bundle_path.as_str())
                .bind(host.enrolled_at.as_unix_micros())
                .bind(host.notes.as_deref())
                .bind(host.use_ipvlan)
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::conflict("swarm host", host.uuid.as_str())
                    } else {
                        db(op)(e)
                    }
                })?;
                tx.commit().await.map_err(db(op))?;
                Ok(host.to_row())
            }

            async fn get_swarm_host(&self, uuid: &HostUuid) -> Result<Option<SwarmHost>> {
                let row: Option<HostRaw> =
                    sqlx::query_as(&format!("SELECT {HOST_COLS} FROM swarm_hosts WHERE uuid = $1"))
                        .bind(uuid.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db("reading a swarm host"))?;
                row.map(SwarmHost::try_from).transpose()
            }

            async fn get_swarm_host_by_name(&self, name: &str) -> Result<Option<SwarmHost>> {
                let row: Option<HostRaw> =
                    sqlx::query_as(&format!("SELECT {HOST_COLS} FROM swarm_hosts WHERE name = $1"))
                        .bind(name)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db("reading a swarm host"))?;
                row.map(SwarmHost::try_from).transpose()
            }

            async fn get_swarm_host_by_fingerprint(
                &self,
                fingerprint: &Fingerprint,
            ) -> Result<Option<SwarmHost>> {
                let row: Option<HostRaw> = sqlx::query_as(&format!(
                    "SELECT {HOST_COLS} FROM swarm_hosts WHERE client_cert_fingerprint = $1"
                ))
                .bind(fingerprint.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db("reading a swarm host"))?;
                row.map(SwarmHost::try_from).transpose()
            }

            async fn list_swarm_hosts(&self, status: Option<HostStatus>) -> Result<Vec<SwarmHost>> {
                let rows: Vec<HostRaw> = match status {
                    None => {
                        sqlx::query_as(&format!("SELECT {HOST_COLS} FROM swarm_hosts ORDER BY name"))
                            .fetch_all(&self.pool)
                            .await
                    }
                    Some(s) => {
                        sqlx::query_as(&format!(
                            "SELECT {HOST_COLS} FROM swarm_hosts WHERE status = $1 ORDER BY name"
                        ))
                        .bind(s.as_str())
                        .fetch_all(&self.pool)
                        .await
                    }
                }
                .map_err(db("listing swarm hosts"))?;
                convert(rows)
            }

            async fn update_swarm_host(
                &self,
                uuid: &HostUuid,
                patch: &SwarmHostPatch,
            ) -> Result<bool> {
                patch.check()?;
                let op = "updating a swarm host";
                let mut tx = self.begin_write().await.map_err(db(op))?;
                let exists: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM swarm_hosts WHERE uuid = $1")
                        .bind(uuid.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db(op))?;
                if exists == 0 || patch.is_empty() {
                    tx.rollback().await.map_err(db(op))?;
                    return Ok(exists > 0);
                }
                if let Some(fp) = &patch.client_cert_fingerprint {
                    let taken: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM swarm_hosts \
                         WHERE client_cert_fingerprint = $1 AND uuid <> $2",
                    )
                    .bind(fp.as_str())
                    .bind(uuid.as_str())
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db(op))?;
                    if taken > 0 {
                        return Err(Error::conflict("client certificate fingerprint", fp.as_str()));
                    }
                }
                let mut qb = QueryBuilder::<$db>::new("UPDATE swarm_hosts SET ");
                let mut set = qb.separated(", ");
                if let Some(s) = patch.status {
                    set.push("status = ").push_bind_unseparated(s.as_str());
                }
                if let Some(t) = patch.last_heartbeat {
                    set.push("last_heartbeat = ")
                        .push_bind_unseparated(t.as_unix_micros());
                }
                if let Some(a) = &patch.address {
                    set.push("address = ").push_bind_unseparated(a.clone());
                }
                if let Some(v) = &patch.agent_version {
                    set.push("agent_version = ").push_bind_unseparated(v.clone());
                }
                if let Some(f) = &patch.client_cert_fingerprint {
                    set.push("client_cert_fingerprint = ")
                        .push_bind_unseparated(f.as_str().to_owned());
                }
                if let Some(f) = &patch.updater_cert_fingerprint {
                    set.push("updater_cert_fingerprint = ")
                        .push_bind_unseparated(f.as_str().to_owned());
                }
                if let Some(n) = &patch.notes {
                    set.push("notes = ").push_bind_unseparated(n.clone());
                }
                qb.push(" WHERE uuid = ").push_bind(uuid.as_str().to_owned());
                qb.build().execute(&mut *tx).await.map_err(db(op))?;
                tx.commit().await.map_err(db(op))?;
                Ok(true)
            }

            async fn mark_stale_hosts_unreachable(
                &self,
                older_than: Timestamp,
            ) -> Result<Vec<HostUuid>> {
                let ids: Vec<String> = sqlx::query_scalar(
                    "UPDATE swarm_hosts SET status = 'unreachable' WHERE status = 'active' \
                     AND (last_heartbeat IS NULL OR last_heartbeat < $1) RETURNING uuid",
                )
                .bind(older_than.as_unix_micros())
                .fetch_all(&self.pool)
                .await
                .map_err(db("marking stale hosts"))?;
                let mut out = ids
                    .into_iter()
                    .map(|id| HostUuid::new(id).map_err(|e| Error::corrupt("host uuid", e)))
                    .collect::<Result<Vec<_>>>()?;
                out.sort();
                Ok(out)
            }

            async fn delete_swarm_host(&self, uuid: &HostUuid) -> Result<bool> {
                let op = "deleting a swarm host";
                let mut tx = self.begin_write().await.map_err(db(op))?;
                for table in ["decky_shards", "enrollment_tokens"] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE host_uuid = $1"))
                        .bind(uuid.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db(op))?;
                }
                let r = sqlx::query("DELETE FROM swarm_hosts WHERE uuid = $1")
                    .bind(uuid.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(db(op))?;
                tx.commit().await.map_err(db(op))?;
                Ok(r.rows_affected() > 0)
            }

            async fn revoke_fingerprint(&self, revoked: &RevokedFingerprint) -> Result<bool> {
                limits::opt_text(
                    "revocation reason",
                    revoked.reason.as_deref(),
                    limits::MAX_TEXT_LEN,
                )?;
                let r = sqlx::query(
                    "INSERT INTO revoked_fingerprints (fingerprint, host_uuid, revoked_at, reason) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (fingerprint) DO NOTHING",
                )
                .bind(revoked.fingerprint.as_str())
                .bind(revoked.host_uuid.as_ref().map(HostUuid::as_str))
                .bind(revoked.revoked_at.as_unix_micros())
                .bind(revoked.reason.as_deref())
                .execute(&self.pool)
                .await
                .map_err(db("revoking a fingerprint"))?;
                Ok(r.rows_affected() > 0)
            }

            async fn is_fingerprint_revoked(&self, fingerprint: &Fingerprint) -> Result<bool> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM revoked_fingerprints WHERE fingerprint = $1",
                )
                .bind(fingerprint.as_str())
                .fetch_one(&self.pool)
                .await
                .map_err(db("checking a fingerprint"))?;
                Ok(n > 0)
            }

            async fn list_revoked_fingerprints(&self) -> Result<Vec<RevokedFingerprint>> {
                let rows: Vec<RevokedRaw> = sqlx::query_as(
                    "SELECT fingerprint, host_uuid, revoked_at, reason FROM revoked_fingerprints \
                     ORDER BY revoked_at, fingerprint",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(db("listing revoked fingerprints"))?;
                convert(rows)
            }
        }

        #[async_trait]
        impl ShardRepo for $store {
            async fn upsert_shard(&self, shard: &ShardUpsert) -> Result<()> {
                shard.encode()?;
                let op = "upserting a shard";
                let mut tx = self.begin_write().await.map_err(db(op))?;
                Self::upsert_shard_in(&mut tx, shard, Timestamp::now()).await?;
                tx.commit().await.map_err(db(op))?;
                Ok(())
            }

            async fn list_shards(&self, filter: &ShardFilter) -> Result<Vec<DeckyShard>> {
                let mut qb =
                    QueryBuilder::<$db>::new(format!("SELECT {SHARD_COLS} FROM decky_shards WHERE 1 = 1"));
                if let HostScope::Host(h) = &filter.host {
                    qb.push(" AND host_uuid = ").push_bind(h.as_str().to_owned());
                }
                if let Some(s) = filter.state {
                    qb.push(" AND state = ").push_bind(s.as_str());
                }
                qb.push(" ORDER BY host_uuid, decky_name");
                let rows: Vec<ShardRaw> = qb
                    .build_query_as()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db("listing shards"))?;
                convert(rows)
            }

            async fn get_shard(
                &self,
                host: &HostUuid,
                name: &DeckyName,
            ) -> Result<Option<DeckyShard>> {
                let row: Option<ShardRaw> = sqlx::query_as(&format!(
                    "SELECT {SHARD_COLS} FROM decky_shards WHERE host_uuid = $1 AND decky_name = $2"
                ))
                .bind(host.as_str())
                .bind(name.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(db("reading a shard"))?;
                row.map(DeckyShard::try_from).transpose()
            }

            async fn delete_shard(&self, host: &HostUuid, name: &DeckyName) -> Result<bool> {
                let r = sqlx::query(
                    "DELETE FROM decky_shards WHERE host_uuid = $1 AND decky_name = $2",
                )
                .bind(host.as_str())
                .bind(name.as_str())
                .execute(&self.pool)
                .await
                .map_err(db("deleting a shard"))?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_shards_for_host(&self, host: &HostUuid) -> Result<u64> {
                let r = sqlx::query("DELETE FROM decky_shards WHERE host_uuid = $1")
                    .bind(host.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(db("deleting shards"))?;
                Ok(r.rows_affected())
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
                let op = "replacing a shard snapshot";
                let now = Timestamp::now();
                let mut tx = self.begin_write().await.map_err(db(op))?;
                let exists: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM swarm_hosts WHERE uuid = $1")
                        .bind(host.as_str())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db(op))?;
                if exists == 0 {
                    return Err(Error::not_found("swarm host", host.as_str()));
                }
                for s in snapshot {
                    Self::upsert_shard_in(&mut tx, s, now).await?;
                }
                let names: Vec<String> = sqlx::query_scalar(
                    "SELECT decky_name FROM decky_shards WHERE host_uuid = $1 ORDER BY decky_name",
                )
                .bind(host.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(db(op))?;
                let keep: std::collections::BTreeSet<&str> =
                    snapshot.iter().map(|s| s.decky_name.as_str()).collect();
                let mut removed = Vec::new();
                for name in names.into_iter().filter(|n| !keep.contains(n.as_str())) {
                    sqlx::query("DELETE FROM decky_shards WHERE host_uuid = $1 AND decky_name = $2")
                        .bind(host.as_str())
                        .bind(name.as_str())
                        .execute(&mut *tx)
                        .await
                        .map_err(db(op))?;
                    removed.push(
                        DeckyName::new(name).map_err(|e| Error::corrupt("decky name", e))?,
                    );
                }
                tx.commit().await.map_err(db(op))?;
                Ok(SnapshotOutcome {
                    upserted: snapshot.len(),
                    removed,
                })
            }
        }

        #[async_trait]
        impl HeartbeatRepo for $store {
            async fn apply_heartbeats(
                &self,
                batch: &[HeartbeatWrite],
                at: Timestamp,
            ) -> Result<Vec<HeartbeatOutcome>> {
                limits::batch("heartbeat batch", batch.len(), MAX_BATCH)?;
                if batch.is_empty() {
                    return Ok(Vec::new());
                }
                let encoded: Vec<_> = batch.iter().map(HeartbeatWrite::encode).collect();
                let op = "recording heartbeats";
                let at_micros = at.as_unix_micros();
                // A few statements per batch, not per heartbeat: on SQLite every
                // statement is a round trip to the connection's worker thread.
                let mut tx = self.begin_write().await.map_err(db(op))?;
                let fingerprints: std::collections::BTreeSet<&str> =
                    batch.iter().map(|w| w.fingerprint.as_str()).collect();
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT fingerprint FROM revoked_fingerprints WHERE fingerprint IN (",
                );
                let mut list = qb.separated(", ");
                for fp in &fingerprints {
                    list.push_bind(*fp);
                }
                qb.push(")");
                let revoked: std::collections::BTreeSet<String> = qb
                    .build_query_scalar()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db(op))?
                    .into_iter()
                    .collect();
                let uuids: std::collections::BTreeSet<&str> =
                    batch.iter().map(|w| w.host_uuid.as_str()).collect();
                // On PostgreSQL the host rows stay locked until the commit, so a
                // concurrent decommission either happened before (and is seen) or waits.
                let mut qb = QueryBuilder::<$db>::new(
                    "SELECT uuid, client_cert_fingerprint, status FROM swarm_hosts WHERE uuid IN (",
                );
                let mut list = qb.separated(", ");
                for uuid in &uuids {
                    list.push_bind(*uuid);
                }
                qb.push(") ORDER BY uuid").push(Self::FOR_UPDATE);
                let rows: Vec<(String, Option<String>, String)> = qb
                    .build_query_as()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(db(op))?;
                let mut hosts = std::collections::BTreeMap::new();
                for (uuid, pin, status) in rows {
                    let pin = pin
                        .map(|p| Fingerprint::new(&p).map_err(|e| Error::corrupt("fingerprint", e)))
                        .transpose()?;
                    let status = HostStatus::parse(&status)
                        .ok_or_else(|| Error::corrupt("host status", format!("{status:?}")))?;
                    hosts.insert(uuid, (pin, status));
                }
                let plan = swarm::plan_heartbeats(
                    batch,
                    &encoded,
                    |fp| revoked.contains(fp.as_str()),
                    |uuid| hosts.get(uuid.as_str()).cloned(),
                );
                // Host rows: one statement per distinct version (usually one).
                let mut by_version: std::collections::BTreeMap<Option<&str>, Vec<&str>> =
                    Default::default();
                for (uuid, write) in &plan.hosts {
                    by_version.entry(write.version).or_default().push(uuid.as_str());
                }
                for (version, uuids) in by_version {
                    let mut qb = QueryBuilder::<$db>::new(
                        "UPDATE swarm_hosts SET status = 'active', last_heartbeat = ",
                    );
                    qb.push_bind(at_micros);
                    if let Some(v) = version {
                        qb.push(", agent_version = ").push_bind(v);
                    }
                    qb.push(" WHERE uuid IN (");
                    let mut list = qb.separated(", ");
                    for uuid in uuids {
                        list.push_bind(uuid);
                    }
                    qb.push(")");
                    qb.build().execute(&mut *tx).await.map_err(db(op))?;
                }
                // Snapshots: multi-row upserts, then one delete of the rows they omit.
                let snapshots: Vec<(&HostUuid, &[swarm::ObservedShard], &[swarm::EncodedObserved])> =
                    plan.hosts
                        .iter()
                        .filter_map(|(uuid, write)| {
                            let i = write.snapshot?;
                            let shards = batch.get(i)?.snapshot.as_deref()?;
                            let rows = encoded.get(i)?.as_ref().ok()?.as_deref()?;
                            Some((*uuid, shards, rows))
                        })
                        .collect();
                let rows: Vec<(&HostUuid, &swarm::ObservedShard, &swarm::EncodedObserved)> =
                    snapshots
                        .iter()
                        .flat_map(|(uuid, shards, enc)| {
                            shards.iter().zip(enc.iter()).map(move |(s, e)| (*uuid, s, e))
                        })
                        .collect();
                for chunk in rows.chunks(INSERT_CHUNK) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO decky_shards (host_uuid, decky_name, services, \
                         decky_config, decky_ip, state, last_seen, updated_at) ",
                    );
                    qb.push_values(chunk, |mut b, (uuid, shard, (services, config))| {
                        b.push_bind(uuid.as_str())
                            .push_bind(shard.decky_name.as_str())
                            .push_bind(services.as_str())
                            .push_bind(config.as_deref())
                            .push_bind(shard.decky_ip.map(|ip| ip.to_string()))
                            .push_bind(shard.state.as_str())
                            .push_bind(at_micros)
                            .push_bind(at_micros);
                    });
                    qb.push(
                        " ON CONFLICT (host_uuid, decky_name) DO UPDATE SET \
                         services = excluded.services, decky_config = excluded.decky_config, \
                         decky_ip = excluded.decky_ip, state = excluded.state, \
                         last_seen = excluded.last_seen, updated_at = excluded.updated_at",
                    );
                    qb.build().execute(&mut *tx).await.map_err(db(op))?;
                }
                // Hosts per statement, keeping the bind count bounded.
                let mut pending = snapshots.as_slice();
                while !pending.is_empty() {
                    let mut binds = 0;
                    let mut take = 0;
                    for (_, shards, _) in pending {
                        let need = 1 + shards.len();
                        if take > 0 && binds + need > DELETE_BINDS {
                            break;
                        }
                        binds += need;
                        take += 1;
                    }
                    let (now, rest) = pending.split_at(take);
                    pending = rest;
                    let mut qb = QueryBuilder::<$db>::new("DELETE FROM decky_shards WHERE 1 = 0");
                    for (uuid, shards, _) in now {
                        qb.push(" OR (host_uuid = ").push_bind(uuid.as_str());
                        if !shards.is_empty() {
                            qb.push(" AND decky_name NOT IN (");
                            let mut list = qb.separated(", ");
                            for s in *shards {
                                list.push_bind(s.decky_name.as_str());
                            }
                            qb.push(")");
                        }
                        qb.push(")");
                    }
                    qb.build().execute(&mut *tx).await.map_err(db(op))?;
                }
                tx.commit().await.map_err(db(op))?;
                Ok(plan.outcomes)
            }
        }

        #[async_trait]
        impl TokenRepo for $store {
            async fn create_enrollment_token(
                &self,
                token: &str,
                host: &HostUuid,
                created_at: Timestamp,
                expires_at: Timestamp,
            ) -> Result<()> {
                swarm::check_token(token)?;
                let digest = token_digest(token);
                sqlx::query(
                    "INSERT INTO enrollment_tokens (token_sha256, host_uuid, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(digest.as_str())
                .bind(host.as_str())
                .bind(created_at.as_unix_micros())
                .bind(expires_at.as_unix_micros())
                .execute(&self.pool)
                .await
                .map_err(|e| {
                    if is_fk_violation(&e) {
                        Error::not_found("swarm host", host.as_str())
                    } else if is_unique_violation(&e) {
                        Error::conflict("enrollment token", digest.as_str())
                    } else {
                        db("creating an enrollment token")(e)
                    }
                })?;
                Ok(())
            }

            async fn consume_enrollment_token(
                &self,
                token: &str,
                now: Timestamp,
            ) -> Result<TokenConsumption> {
                let op = "consuming an enrollment token";
                let digest = token_digest(token);
                let consumed: Option<String> = sqlx::query_scalar(
                    "UPDATE enrollment_tokens SET used_at = $2 WHERE token_sha256 = $1 \
                     AND used_at IS NULL AND expires_at > $2 RETURNING host_uuid",
                )
                .bind(digest.as_str())
                .bind(now.as_unix_micros())
                .fetch_optional(&self.pool)
                .await
                .map_err(db(op))?;
                if let Some(h) = consumed {
                    return Ok(TokenConsumption::Consumed(
                        HostUuid::new(h).map_err(|e| Error::corrupt("host uuid", e))?,
                    ));
                }
                let row: Option<(Option<i64>,)> =
                    sqlx::query_as("SELECT used_at FROM enrollment_tokens WHERE token_sha256 = $1")
                        .bind(digest.as_str())
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db(op))?;
                Ok(match row {
                    None => TokenConsumption::Unknown,
                    Some((Some(_),)) => TokenConsumption::AlreadyUsed,
                    Some((None,)) => TokenConsumption::Expired,
                })
            }

            async fn purge_expired_tokens(&self, now: Timestamp) -> Result<u64> {
                let r = sqlx::query("DELETE FROM enrollment_tokens WHERE expires_at <= $1")
                    .bind(now.as_unix_micros())
                    .execute(&self.pool)
                    .await
                    .map_err(db("purging enrollment tokens"))?;
                Ok(r.rows_affected())
            }
        }

        #[async_trait]
        impl LogRepo for $store {
            async fn insert_logs(&self, batch: &[NewLog]) -> Result<InsertOutcome> {
                limits::batch("log batch", batch.len(), MAX_BATCH)?;
                let fields = batch
                    .iter()
                    .map(NewLog::encode)
                    .collect::<Result<Vec<String>>>()?;
                if batch.is_empty() {
                    return Ok(InsertOutcome::default());
                }
                let op = "inserting logs";
                let mut tx = self.begin_write().await.map_err(db(op))?;
                let mut inserted = 0;
                for (rows, fields) in batch.chunks(INSERT_CHUNK).zip(fields.chunks(INSERT_CHUNK)) {
                    let mut qb = QueryBuilder::<$db>::new(
                        "INSERT INTO logs (dedup_key, timestamp, decky, service, event_type, \
                         attacker_ip, severity, fields, msg, raw_line, source_worker, trace_id, \
                         span_id, origin) ",
                    );
                    qb.push_values(rows.iter().zip(fields), |mut b, (log, fields)| {
                        b.push_bind(log.dedup_key.clone())
                            .push_bind(log.timestamp.as_unix_micros())
                            .push_bind(log.decky.clone())
                            .push_bind(log.service.clone())
                            .push_bind(log.event_type.clone())
                            .push_bind(log.attacker_ip.clone())
                            .push_bind(log.severity.map(i64::from))
                            .push_bind(fields.clone())
                            .push_bind(log.msg.clone())
                            .push_bind(log.raw_line.clone())
                            .push_bind(log.source_worker.clone())
                            .push_bind(log.trace_id.clone())
                            .push_bind(log.span_id.clone())
                            .push_bind(log.origin.as_str());
                    });
                    qb.push(" ON CONFLICT (dedup_key) DO NOTHING");
                    let r = qb.build().execute(&mut *tx).await.map_err(db(op))?;
                    inserted += r.rows_affected();
                }
                tx.commit().await.map_err(db(op))?;
                Ok(InsertOutcome {
                    inserted,
                    duplicates: batch.len() as u64 - inserted,
                })
            }

            async fn query_logs(&self, query: &LogQuery) -> Result<Vec<LogRow>> {
                query.filter.check()?;
                let limit = limits::page(query.limit);
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let mut qb =
                    QueryBuilder::<$db>::new(format!("SELECT {LOG_COLS} FROM logs WHERE 1 = 1"));
                Self::push_log_filter(&mut qb, &query.filter);
                let (cmp, dir) = match query.order {
                    Order::NewestFirst => (" AND id < ", " ORDER BY id DESC"),
                    Order::OldestFirst => (" AND id > ", " ORDER BY id ASC"),
                };
                if let Some(c) = query.cursor {
                    qb.push(cmp).push_bind(c);
                }
                qb.push(dir)
                    .push(" LIMIT ")
                    .push_bind(i64::from(limit))
                    .push(" OFFSET ")
                    .push_bind(to_i64(query.offset));
                let rows: Vec<LogRaw> = qb
                    .build_query_as()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db("querying logs"))?;
                convert(rows)
            }

            async fn count_logs(&self, filter: &LogFilter) -> Result<u64> {
                filter.check()?;
                let mut qb = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM logs WHERE 1 = 1");
                Self::push_log_filter(&mut qb, filter);
                let (n,): (i64,) = qb
                    .build_query_as()
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db("counting logs"))?;
                Ok(n.max(0) as u64)
            }

            async fn max_log_id(&self) -> Result<Option<i64>> {
                sqlx::query_scalar("SELECT MAX(id) FROM logs")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db("reading the last log id"))
            }
        }

        /// Statement texts of `ingest`, built once per backend.
        struct IngestSql {
            logs: ChunkedSql,
            attackers: ChunkedSql,
            deckies: ChunkedSql,
            services: ChunkedSql,
            credentials: ChunkedSql,
        }

        fn ingest_sql() -> &'static IngestSql {
            static SQL: OnceLock<IngestSql> = OnceLock::new();
            SQL.get_or_init(|| IngestSql {
                logs: ChunkedSql::new(
                    "INSERT INTO logs (dedup_key, timestamp, decky, service, event_type, \
                     attacker_ip, severity, fields, msg, raw_line, source_worker, trace_id, \
                     span_id, origin)",
                    14,
                    "ON CONFLICT (dedup_key) DO NOTHING RETURNING dedup_key",
                    $store::NUMBERED_PARAMS,
                ),
                attackers: ChunkedSql::new(
                    "INSERT INTO attackers (uuid, ip, first_seen, last_seen, event_count, \
                     updated_at)",
                    6,
                    &format!(
                        "ON CONFLICT (ip) DO UPDATE SET \
                         first_seen = {least}(attackers.first_seen, excluded.first_seen), \
                         last_seen = {greatest}(attackers.last_seen, excluded.last_seen), \
                         event_count = attackers.event_count + excluded.event_count, \
                         updated_at = excluded.updated_at \
                         RETURNING ip, uuid, event_count",
                        least = $store::LEAST,
                        greatest = $store::GREATEST,
                    ),
                    $store::NUMBERED_PARAMS,
                ),
                deckies: ChunkedSql::new(
                    "INSERT INTO attacker_deckies (ip, decky)",
                    2,
                    "ON CONFLICT DO NOTHING",
                    $store::NUMBERED_PARAMS,
                ),
                services: ChunkedSql::new(
                    "INSERT INTO attacker_services (ip, service)",
                    2,
                    "ON CONFLICT DO NOTHING",
                    $store::NUMBERED_PARAMS,
                ),
                credentials: ChunkedSql::new(
                    CREDENTIAL_INSERT,
                    14,
                    &format!(
                        "{} RETURNING attacker_ip, decky_name, service, secret_kind, \
                         secret_sha256, principal_key, id, attempt_count",
                        credential_merge($store::LEAST, $store::GREATEST),
                    ),
                    $store::NUMBERED_PARAMS,
                ),
            })
        }

        #[async_trait]
        impl IngestRepo for $store {
            async fn ingest(&self, batch: &[IngestEvent]) -> Result<IngestOutcome> {
                let encoded = encode_batch(batch)?;
                if batch.is_empty() {
                    return Ok(IngestOutcome::default());
                }
                let op = "ingesting events";
                let sql = ingest_sql();
                let now = Timestamp::now().as_unix_micros();
                let (candidates, repeated) = first_occurrences(batch);
                let mut tx = self.begin_write().await.map_err(db(op))?;

                let mut inserted_keys: HashSet<String> = HashSet::with_capacity(candidates.len());
                let mut rest = candidates.as_slice();
                for size in chunk_sizes(candidates.len()) {
                    let (chunk, tail) = rest.split_at(size);
                    rest = tail;
                    let mut q = sqlx::query_scalar::<_, String>(sql.logs.get(size));
                    for &i in chunk {
                        let log = &batch[i].log;
                        q = q
                            .bind(log.dedup_key.as_str())
                            .bind(log.timestamp.as_unix_micros())
                            .bind(log.decky.as_str())
                            .bind(log.service.as_str())
                            .bind(log.event_type.as_str())
                            .bind(log.attacker_ip.as_str())
                            .bind(log.severity.map(i64::from))
                            .bind(encoded[i].log_fields.as_str())
                            .bind(log.msg.as_deref())
                            .bind(log.raw_line.as_str())
                            .bind(log.source_worker.as_deref())
                            .bind(log.trace_id.as_deref())
                            .bind(log.span_id.as_deref())
                            .bind(log.origin.as_str());
                    }
                    inserted_keys.extend(q.fetch_all(&mut *tx).await.map_err(db(op))?);
                }
                let inserted = inserted_indexes(batch, &candidates, &inserted_keys);
                let duplicates = repeated + (candidates.len() - inserted.len()) as u64;

                let plan = AttackerPlan::new(batch, &inserted);
                let mut returned: HashMap<String, (String, i64)> =
                    HashMap::with_capacity(plan.rows.len());
                let mut rest = plan.rows.as_slice();
                for size in chunk_sizes(plan.rows.len()) {
                    let (chunk, tail) = rest.split_at(size);
                    rest = tail;
                    let mut q = sqlx::query_as::<_, (String, String, i64)>(sql.attackers.get(size));
                    for f in chunk {
                        q = q
                            .bind(f.fresh_uuid.as_str())
                            .bind(f.ip)
                            .bind(f.first_seen)
                            .bind(f.last_seen)
                            .bind(to_i64(f.added))
                            .bind(now);
                    }
                    for (ip, uuid, count) in q.fetch_all(&mut *tx).await.map_err(db(op))? {
                        returned.insert(ip, (uuid, count));
                    }
                }
                let attackers = plan.touched(&returned).ok_or_else(|| {
                    Error::corrupt("attacker upsert", "an upserted address was not returned")
                })?;
                for (pairs, texts) in [(&plan.deckies, &sql.deckies), (&plan.services, &sql.services)] {
                    // `DO NOTHING` makes a repeated pair harmless: each chunk is padded
                    // with its last pair up to a cached size, one statement per chunk.
                    for chunk in pairs.chunks(MAX_CHUNK) {
                        let size = chunk.len().next_power_of_two();
                        let mut q = sqlx::query(texts.get(size));
                        for k in 0..size {
                            let &(ip, v) = chunk.get(k).or(chunk.last()).unwrap_or(&("", ""));
                            q = q.bind(ip).bind(v);
                        }
                        q.execute(&mut *tx).await.map_err(db(op))?;
                    }
                }

                let folds = fold_credentials(batch, &encoded, &inserted);
                let mut returned: HashMap<CredentialKey, (i64, i64)> =
                    HashMap::with_capacity(folds.len());
                let mut rest = folds.as_slice();
                for size in chunk_sizes(folds.len()) {
                    let (chunk, tail) = rest.split_at(size);
                    rest = tail;
                    let mut q = sqlx::query_as::<
                        _,
                        (String, String, String, String, String, String, i64, i64),
                    >(sql.credentials.get(size));
                    for f in chunk {
                        let c = f.first;
                        q = q
                            .bind(f.key.0.as_str())
                            .bind(f.key.1.as_str())
                            .bind(f.key.2.as_str())
                            .bind(c.principal.as_deref())
                            .bind(f.key.5.as_str())
                            .bind(f.key.3.as_str())
                            .bind(f.key.4.as_str())
                            .bind(f.secret_b64)
                            .bind(f.secret_printable)
                            .bind(f.outcome)
                            .bind(f.fields)
                            .bind(f.first_seen)
                            .bind(f.last_seen)
                            .bind(to_i64(f.indexes.len() as u64));
                    }
                    for (ip, decky, service, kind, sha, principal, id, count) in
                        q.fetch_all(&mut *tx).await.map_err(db(op))?
                    {
                        returned.insert((ip, decky, service, kind, sha, principal), (id, count));
                    }
                }
                let credentials = credential_results(&folds, &returned).ok_or_else(|| {
                    Error::corrupt("credential upsert", "an upserted credential was not returned")
                })?;
                tx.commit().await.map_err(db(op))?;
                Ok(IngestOutcome {
                    inserted,
                    duplicates,
                    attackers,
                    credentials,
                })
            }
        }

        #[async_trait]
        impl AttackerRepo for $store {
            async fn upsert_attackers(&self, observations: &[AttackerObservation]) -> Result<()> {
                limits::batch("attacker batch", observations.len(), MAX_BATCH)?;
                for o in observations {
                    o.check()?;
                }
                if observations.is_empty() {
                    return Ok(());
                }
                let op = "upserting attackers";
                let now = Timestamp::now().as_unix_micros();
                let upsert = format!(
                    "INSERT INTO attackers (uuid, ip, first_seen, last_seen, event_count, updated_at) \
                     VALUES ($1, $2, $3, $3, $4, $5) ON CONFLICT (ip) DO UPDATE SET \
                     first_seen = {least}(attackers.first_seen, excluded.first_seen), \
                     last_seen = {greatest}(attackers.last_seen, excluded.last_seen), \
                     event_count = attackers.event_count + excluded.event_count, \
                     updated_at = excluded.updated_at",
                    least = Self::LEAST,
                    greatest = Self::GREATEST,
                );
                let mut tx = self.begin_write().await.map_err(db(op))?;
                for o in observations {
                    sqlx::query(&upsert)
                        .bind(uuid::Uuid::new_v4().to_string())
                        .bind(o.ip.as_str())
                        .bind(o.seen_at.as_unix_micros())
                        .bind(to_i64(o.events))
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(db(op))?;
                    for (sql, value) in [
                        (
                            "INSERT INTO attacker_services (ip, service) VALUES ($1, $2) \
                             ON CONFLICT DO NOTHING",
                            &o.service,
                        ),
                        (
                            "INSERT INTO attacker_deckies (ip, decky) VALUES ($1, $2) \
                             ON CONFLICT DO NOTHING",
                            &o.decky,
                        ),
                    ] {
                        if let Some(v) = value {
                            sqlx::query(sql)
                                .bind(o.ip.as_str())
                                .bind(v.as_str())
                                .execute(&mut *tx)
                                .await
                                .map_err(db(op))?;
                        }
                    }
                }
                tx.commit().await.map_err(db(op))?;
                Ok(())
            }

            async fn get_attacker(&self, uuid: &str) -> Result<Option<Attacker>> {
                let rows: Vec<AttackerRaw> =
                    sqlx::query_as(&format!("SELECT {ATTACKER_COLS} FROM attackers WHERE uuid = $1"))
                        .bind(uuid)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db("reading an attacker"))?;
                Ok(self.attackers_with_sets(rows).await?.into_iter().next())
            }

            async fn get_attacker_by_ip(&self, ip: &str) -> Result<Option<Attacker>> {
                let rows: Vec<AttackerRaw> =
                    sqlx::query_as(&format!("SELECT {ATTACKER_COLS} FROM attackers WHERE ip = $1"))
                        .bind(ip)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db("reading an attacker"))?;
                Ok(self.attackers_with_sets(rows).await?.into_iter().next())
            }

            async fn list_attackers(&self, query: &AttackerQuery) -> Result<Vec<Attacker>> {
                query.check()?;
                let limit = limits::page(query.limit);
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {ATTACKER_COLS} FROM attackers WHERE 1 = 1"
                ));
                Self::push_attacker_filter(&mut qb, query);
                qb.push(" ORDER BY last_seen DESC, ip ASC LIMIT ")
                    .push_bind(i64::from(limit))
                    .push(" OFFSET ")
                    .push_bind(to_i64(query.offset));
                let rows: Vec<AttackerRaw> = qb
                    .build_query_as()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db("listing attackers"))?;
                self.attackers_with_sets(rows).await
            }

            async fn count_attackers(&self, query: &AttackerQuery) -> Result<u64> {
                query.check()?;
                let mut qb = QueryBuilder::<$db>::new("SELECT COUNT(*) FROM attackers WHERE 1 = 1");
                Self::push_attacker_filter(&mut qb, query);
                let (n,): (i64,) = qb
                    .build_query_as()
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db("counting attackers"))?;
                Ok(n.max(0) as u64)
            }
        }

        #[async_trait]
        impl CredentialRepo for $store {
            async fn upsert_credentials(
                &self,
                batch: &[NewCredential],
            ) -> Result<Vec<CredentialUpserted>> {
                limits::batch("credential batch", batch.len(), MAX_BATCH)?;
                let fields = batch
                    .iter()
                    .map(NewCredential::encode)
                    .collect::<Result<Vec<String>>>()?;
                if batch.is_empty() {
                    return Ok(Vec::new());
                }
                let op = "upserting credentials";
                // One attempt: `excluded.attempt_count` is 1.
                let sql = format!(
                    "{CREDENTIAL_INSERT} \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, 1) \
                     {} RETURNING id, attempt_count",
                    credential_merge(Self::LEAST, Self::GREATEST),
                );
                let mut tx = self.begin_write().await.map_err(db(op))?;
                let mut out = Vec::with_capacity(batch.len());
                for (c, fields) in batch.iter().zip(fields) {
                    let (id, attempts): (i64, i64) = sqlx::query_as(&sql)
                        .bind(c.attacker_ip.as_str())
                        .bind(c.decky.as_str())
                        .bind(c.service.as_str())
                        .bind(c.principal.as_deref())
                        .bind(c.principal_key())
                        .bind(c.secret_kind.as_str())
                        .bind(c.secret_sha256.to_ascii_lowercase())
                        .bind(c.secret_b64.as_deref())
                        .bind(c.secret_printable.as_deref())
                        .bind(c.outcome.as_deref())
                        .bind(fields)
                        .bind(c.seen_at.as_unix_micros())
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(db(op))?;
                    let attempt_count = attempts.max(0) as u64;
                    out.push(CredentialUpserted {
                        id,
                        attempt_count,
                        created: attempt_count == 1,
                    });
                }
                tx.commit().await.map_err(db(op))?;
                Ok(out)
            }

            async fn list_credentials(
                &self,
                filter: &CredentialFilter,
                limit: u32,
                offset: u64,
            ) -> Result<Vec<Credential>> {
                filter.check()?;
                let limit = limits::page(limit);
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let mut qb = QueryBuilder::<$db>::new(format!(
                    "SELECT {CREDENTIAL_COLS} FROM credentials WHERE 1 = 1"
                ));
                Self::push_credential_filter(&mut qb, filter);
                qb.push(" ORDER BY last_seen DESC, id DESC LIMIT ")
                    .push_bind(i64::from(limit))
                    .push(" OFFSET ")
                    .push_bind(to_i64(offset));
                let rows: Vec<CredentialRaw> = qb
                    .build_query_as()
                    .fetch_all(&self.pool)
                    .await
                    .map_err(db("listing credentials"))?;
                convert(rows)
            }

            async fn count_credentials(&self, filter: &CredentialFilter) -> Result<u64> {
                filter.check()?;
                let mut qb =
                    QueryBuilder::<$db>::new("SELECT COUNT(*) FROM credentials WHERE 1 = 1");
                Self::push_credential_filter(&mut qb, filter);
                let (n,): (i64,) = qb
                    .build_query_as()
                    .fetch_one(&self.pool)
                    .await
                    .map_err(db("counting credentials"))?;
                Ok(n.max(0) as u64)
            }
        }

        #[async_trait]
        impl ArtifactRepo for $store {
            async fn record_artifact(&self, artifact: &NewArtifact) -> Result<bool> {
                let meta = artifact.encode()?;
                let r = sqlx::query(
                    "INSERT INTO artifacts (attacker_ip, decky, service, kind, sha256, \
                     stored_path, size, observed_at, meta) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (attacker_ip, decky, service, sha256) DO NOTHING",
                )
                .bind(artifact.attacker_ip.as_str())
                .bind(artifact.decky.as_str())
                .bind(artifact.service.as_str())
                .bind(artifact.kind.as_str())
                .bind(artifact.sha256.to_ascii_lowercase())
                .bind(artifact.stored_path.as_str())
                .bind(to_i64(artifact.size))
                .bind(artifact.observed_at.as_unix_micros())
                .bind(meta)
                .execute(&self.pool)
                .await
                .map_err(db("recording an artifact"))?;
                Ok(r.rows_affected() > 0)
            }

            async fn get_attacker_artifacts(
                &self,
                attacker_ip: &str,
                limit: u32,
            ) -> Result<Vec<Artifact>> {
                let limit = limits::page(limit);
                if limit == 0 {
                    return Ok(Vec::new());
                }
                let rows: Vec<ArtifactRaw> = sqlx::query_as(&format!(
                    "SELECT {ARTIFACT_COLS} FROM artifacts WHERE attacker_ip = $1 \
                     ORDER BY observed_at DESC, id DESC LIMIT $2"
                ))
                .bind(attacker_ip)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(db("listing artifacts"))?;
                convert(rows)
            }
        }

        #[async_trait]
        impl UserRepo for $store {
            async fn create_user(&self, user: &NewUser) -> Result<User> {
                user.check()?;
                let op = "creating a user";
                let mut tx = self.begin_write().await.map_err(db(op))?;
                for (col, value, what) in [
                    ("uuid", user.uuid.as_str(), "user"),
                    ("username", user.username.as_str(), "username"),
                ] {
                    let n: i64 =
                        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM users WHERE {col} = $1"))
                            .bind(value)
                            .fetch_one(&mut *tx)
                            .await
                            .map_err(db(op))?;
                    if n > 0 {
                        return Err(Error::conflict(what, value));
                    }
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
                sqlx::query(&format!(
                    "INSERT INTO users ({USER_COLS}) VALUES ($1, $2, $3, $4, $5, NULL, $6)"
                ))
                .bind(row.uuid.as_str())
                .bind(row.username.as_str())
                .bind(row.password_hash.as_str())
                .bind(row.role.as_str())
                .bind(row.must_change_password)
                .bind(row.created_at.as_unix_micros())
                .execute(&mut *tx)
                .await
                .map_err(|e| {
                    if is_unique_violation(&e) {
                        Error::conflict("username", user.username.as_str())
                    } else {
                        db(op)(e)
                    }
                })?;
                tx.commit().await.map_err(db(op))?;
                Ok(row)
            }

            async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
                let row: Option<UserRaw> =
                    sqlx::query_as(&format!("SELECT {USER_COLS} FROM users WHERE username = $1"))
                        .bind(username)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db("reading a user"))?;
                row.map(User::try_from).transpose()
            }

            async fn get_user_by_uuid(&self, uuid: &str) -> Result<Option<User>> {
                let row: Option<UserRaw> =
                    sqlx::query_as(&format!("SELECT {USER_COLS} FROM users WHERE uuid = $1"))
                        .bind(uuid)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db("reading a user"))?;
                row.map(User::try_from).transpose()
            }

            async fn list_users(&self) -> Result<Vec<User>> {
                let rows: Vec<UserRaw> =
                    sqlx::query_as(&format!("SELECT {USER_COLS} FROM users ORDER BY username"))
                        .fetch_all(&self.pool)
                        .await
                        .map_err(db("listing users"))?;
                convert(rows)
            }

            async fn update_user_password(
                &self,
                uuid: &str,
                password_hash: &str,
                must_change_password: bool,
            ) -> Result<bool> {
                limits::label("password hash", password_hash, limits::MAX_TEXT_LEN)?;
                let r = sqlx::query(
                    "UPDATE users SET password_hash = $2, must_change_password = $3 WHERE uuid = $1",
                )
                .bind(uuid)
                .bind(password_hash)
                .bind(must_change_password)
                .execute(&self.pool)
                .await
                .map_err(db("updating a password"))?;
                Ok(r.rows_affected() > 0)
            }

            async fn update_user_role(&self, uuid: &str, role: Role) -> Result<bool> {
                let r = sqlx::query("UPDATE users SET role = $2 WHERE uuid = $1")
                    .bind(uuid)
                    .bind(role.as_str())
                    .execute(&self.pool)
                    .await
                    .map_err(db("updating a role"))?;
                Ok(r.rows_affected() > 0)
            }

            async fn delete_user(&self, uuid: &str) -> Result<bool> {
                let r = sqlx::query("DELETE FROM users WHERE uuid = $1")
                    .bind(uuid)
                    .execute(&self.pool)
                    .await
                    .map_err(db("deleting a user"))?;
                Ok(r.rows_affected() > 0)
            }
        }

        #[async_trait]
        impl StateRepo for $store {
            async fn get_state(&self, key: &str) -> Result<Option<Value>> {
                let text: Option<String> =
                    sqlx::query_scalar("SELECT \"value\" FROM state WHERE \"key\" = $1")
                        .bind(key)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(db("reading state"))?;
                text.map(|t| json_value(&t)).transpose()
            }

            async fn set_state(&self, key: &str, value: &Value) -> Result<()> {
                let text = users::encode_state(key, value)?;
                sqlx::query(
                    "INSERT INTO state (\"key\", \"value\") VALUES ($1, $2) \
                     ON CONFLICT (\"key\") DO UPDATE SET \"value\" = excluded.\"value\"",
                )
                .bind(key)
                .bind(text)
                .execute(&self.pool)
                .await
                .map_err(db("writing state"))?;
                Ok(())
            }
        }
    };
}
