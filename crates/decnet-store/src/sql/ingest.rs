//! The backend-independent half of `IngestRepo::ingest` on SQL.
//
// Deduplicating the batch, folding attackers and credentials per key in Rust (one row per
// key per statement), and the multi-row statement texts in power-of-two chunk sizes (so
// each backend connection caches at most a dozen prepared texts per statement kind).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::telemetry::{
    AttackerTouched, CredentialUpserted, EncodedEvent, IngestEvent, NewCredential,
    attacker_ip_counts,
};

/// Largest chunk of rows per multi-row statement. With 14 columns, 1024 rows are 14 336
/// bind values: under SQLite's 32 766 and PostgreSQL's 65 535.
pub(crate) const MAX_CHUNK: usize = 1024;

/// Splits `n` rows into chunk sizes: as many [`MAX_CHUNK`]s as fit, then the powers of
/// two of the remainder, largest first.
pub(crate) fn chunk_sizes(n: usize) -> Vec<usize> {
    let mut out = vec![MAX_CHUNK; n / MAX_CHUNK];
    let rest = n % MAX_CHUNK;
    let mut bit = MAX_CHUNK;
    while bit > 0 {
        if rest & bit != 0 {
            out.push(bit);
        }
        bit >>= 1;
    }
    out
}

/// `head VALUES ($1, …, $cols), (…) × rows tail`, or with anonymous `?` placeholders
/// when `numbered` is false. SQLite needs the anonymous form for large statements: it
/// treats `$N` as a *named* parameter, found by a linear search of the names at prepare
/// time and at every `sqlite3_bind_parameter_name`, quadratic in the placeholders.
pub(crate) fn values_sql(
    head: &str,
    cols: usize,
    rows: usize,
    tail: &str,
    numbered: bool,
) -> String {
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * cols * 7 + 8);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = 0usize;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            if numbered {
                n += 1;
                sql.push('$');
                sql.push_str(&n.to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// One statement text per power-of-two chunk size up to [`MAX_CHUNK`], built on first
/// use.
pub(crate) struct ChunkedSql {
    texts: Vec<String>,
}

impl ChunkedSql {
    pub(crate) fn new(head: &str, cols: usize, tail: &str, numbered: bool) -> Self {
        let mut texts = Vec::new();
        let mut rows = 1;
        while rows <= MAX_CHUNK {
            texts.push(values_sql(head, cols, rows, tail, numbered));
            rows <<= 1;
        }
        Self { texts }
    }

    /// The text for `rows` rows (a power of two ≤ [`MAX_CHUNK`], as [`chunk_sizes`]
    /// yields).
    pub(crate) fn get(&self, rows: usize) -> &str {
        let i = rows.trailing_zeros() as usize;
        self.texts.get(i).map_or("", String::as_str)
    }
}

/// First occurrence of each dedup key, in batch order, and how many later events
/// repeated a key of the batch.
pub(crate) fn first_occurrences(batch: &[IngestEvent]) -> (Vec<usize>, u64) {
    let mut seen: HashSet<&str> = HashSet::with_capacity(batch.len());
    let mut firsts = Vec::with_capacity(batch.len());
    for (i, e) in batch.iter().enumerate() {
        if seen.insert(e.log.dedup_key.as_str()) {
            firsts.push(i);
        }
    }
    let repeated = (batch.len() - firsts.len()) as u64;
    (firsts, repeated)
}

/// Keeps the candidates whose key the database reported inserted, in batch order.
pub(crate) fn inserted_indexes(
    batch: &[IngestEvent],
    candidates: &[usize],
    inserted_keys: &HashSet<String>,
) -> Vec<usize> {
    candidates
        .iter()
        .copied()
        .filter(|&i| inserted_keys.contains(batch[i].log.dedup_key.as_str()))
        .collect()
}

/// The inserted events of one address, folded.
pub(crate) struct AttackerFold<'a> {
    pub(crate) ip: &'a str,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
    pub(crate) added: u64,
    /// The id used if this batch creates the row.
    pub(crate) fresh_uuid: String,
}

/// The attacker aggregates of the inserted events.
pub(crate) struct AttackerPlan<'a> {
    /// One per distinct address, sorted by address.
    pub(crate) rows: Vec<AttackerFold<'a>>,
    /// Distinct `(ip, decky)` pairs.
    pub(crate) deckies: Vec<(&'a str, &'a str)>,
    /// Distinct `(ip, service)` pairs.
    pub(crate) services: Vec<(&'a str, &'a str)>,
}

impl<'a> AttackerPlan<'a> {
    pub(crate) fn new(batch: &'a [IngestEvent], inserted: &[usize]) -> Self {
        let mut rows: BTreeMap<&str, AttackerFold<'a>> = BTreeMap::new();
        let mut deckies = BTreeSet::new();
        let mut services = BTreeSet::new();
        for &i in inserted {
            let log = &batch[i].log;
            if !attacker_ip_counts(&log.attacker_ip) {
                continue;
            }
            let ip = log.attacker_ip.as_str();
            let at = log.timestamp.as_unix_micros();
            let fold = rows.entry(ip).or_insert_with(|| AttackerFold {
                ip,
                first_seen: at,
                last_seen: at,
                added: 0,
                fresh_uuid: uuid::Uuid::new_v4().to_string(),
            });
            fold.first_seen = fold.first_seen.min(at);
            fold.last_seen = fold.last_seen.max(at);
            fold.added += 1;
            deckies.insert((ip, log.decky.as_str()));
            services.insert((ip, log.service.as_str()));
        }
        Self {
            rows: rows.into_values().collect(),
            deckies: deckies.into_iter().collect(),
            services: services.into_iter().collect(),
        }
    }

    /// The outcome entries from the rows the database returned:
    /// `ip → (uuid, event_count)`.
    pub(crate) fn touched(
        &self,
        returned: &HashMap<String, (String, i64)>,
    ) -> Option<Vec<AttackerTouched>> {
        self.rows
            .iter()
            .map(|f| {
                let (uuid, count) = returned.get(f.ip)?;
                Some(AttackerTouched {
                    ip: f.ip.to_owned(),
                    created: *uuid == f.fresh_uuid,
                    uuid: uuid.clone(),
                    added: f.added,
                    event_count: u64::try_from(*count).unwrap_or(0),
                })
            })
            .collect()
    }
}

/// The unique key of a credential row.
pub(crate) type CredentialKey = (String, String, String, String, String, String);

fn credential_key(c: &NewCredential) -> CredentialKey {
    (
        c.attacker_ip.clone(),
        c.decky.clone(),
        c.service.clone(),
        c.secret_kind.clone(),
        c.secret_sha256.to_ascii_lowercase(),
        c.principal_key().to_owned(),
    )
}

/// The attempts of one credential key in a batch, folded as if upserted one by one.
pub(crate) struct CredentialFold<'a> {
    pub(crate) key: CredentialKey,
    /// The first attempt (its `principal` is what an insert stores).
    pub(crate) first: &'a NewCredential,
    /// Batch indexes of the attempts, ascending.
    pub(crate) indexes: Vec<usize>,
    pub(crate) first_seen: i64,
    pub(crate) last_seen: i64,
    /// Latest non-null values.
    pub(crate) outcome: Option<&'a str>,
    pub(crate) secret_b64: Option<&'a str>,
    pub(crate) secret_printable: Option<&'a str>,
    /// Encoded `fields` of the latest attempt.
    pub(crate) fields: &'a str,
}

/// Groups the credentials of the inserted events by key, sorted by key.
pub(crate) fn fold_credentials<'a>(
    batch: &'a [IngestEvent],
    encoded: &'a [EncodedEvent],
    inserted: &[usize],
) -> Vec<CredentialFold<'a>> {
    let mut folds: Vec<CredentialFold<'a>> = Vec::new();
    let mut by_key: HashMap<CredentialKey, usize> = HashMap::new();
    for &i in inserted {
        let (Some(c), Some(fields)) = (&batch[i].credential, &encoded[i].credential_fields) else {
            continue;
        };
        let at = c.seen_at.as_unix_micros();
        let key = credential_key(c);
        let slot = match by_key.get(&key) {
            Some(&slot) => slot,
            None => {
                by_key.insert(key.clone(), folds.len());
                folds.push(CredentialFold {
                    key,
                    first: c,
                    indexes: Vec::new(),
                    first_seen: at,
                    last_seen: at,
                    outcome: None,
                    secret_b64: None,
                    secret_printable: None,
                    fields,
                });
                folds.len() - 1
            }
        };
        let f = &mut folds[slot];
        f.indexes.push(i);
        f.first_seen = f.first_seen.min(at);
        f.last_seen = f.last_seen.max(at);
        f.outcome = c.outcome.as_deref().or(f.outcome);
        f.secret_b64 = c.secret_b64.as_deref().or(f.secret_b64);
        f.secret_printable = c.secret_printable.as_deref().or(f.secret_printable);
        f.fields = fields;
    }
    // Upserted in key order, like the attacker rows in address order: concurrent
    // PostgreSQL transactions then lock shared rows in the same order (no deadlock).
    folds.sort_by(|a, b| a.key.cmp(&b.key));
    folds
}

/// Expands each fold's final `(id, attempt_count)` into per-attempt results, as
/// sequential upserts would have returned them, sorted by batch index.
pub(crate) fn credential_results(
    folds: &[CredentialFold<'_>],
    returned: &HashMap<CredentialKey, (i64, i64)>,
) -> Option<Vec<(usize, CredentialUpserted)>> {
    let mut out = Vec::new();
    for f in folds {
        let &(id, total) = returned.get(&f.key)?;
        let total = u64::try_from(total).unwrap_or(0);
        let n = f.indexes.len() as u64;
        for (k, &i) in f.indexes.iter().enumerate() {
            let attempt_count = (total + k as u64 + 1).saturating_sub(n);
            out.push((
                i,
                CredentialUpserted {
                    id,
                    attempt_count,
                    created: attempt_count == 1,
                },
            ));
        }
    }
    out.sort_by_key(|(i, _)| *i);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_cover_n_with_cached_sizes() {
        for n in [0, 1, 2, 3, 7, 1000, 1024, 1025, 2048, 2049, 4096] {
            let sizes = chunk_sizes(n);
            assert_eq!(sizes.iter().sum::<usize>(), n, "{n}");
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= MAX_CHUNK));
        }
        assert_eq!(chunk_sizes(1027), [1024, 2, 1]);
        assert_eq!(chunk_sizes(0), Vec::<usize>::new());
    }

    #[test]
    fn values_sql_numbers_placeholders() {
        assert_eq!(
            values_sql("INSERT INTO t (a, b)", 2, 2, "RETURNING a", true),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) RETURNING a"
        );
        assert_eq!(
            values_sql("INSERT INTO t (a, b)", 2, 2, "RETURNING a", false),
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?) RETURNING a"
        );
        let c = ChunkedSql::new("X", 1, "Y", true);
        assert_eq!(c.get(4), "X VALUES ($1), ($2), ($3), ($4) Y");
        assert_eq!(c.get(MAX_CHUNK).matches('$').count(), MAX_CHUNK);
    }
}
