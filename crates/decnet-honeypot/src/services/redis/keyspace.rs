//! The fake keyspace: sixteen databases of strings, lists, hashes, sets and sorted sets
//! with expiry, capped in keys and bytes, seeded per decky with the content of a small
//! web application's cache (sessions, queues, counters, users, one bait credential).

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;

/// Databases, as Redis' default `databases 16`.
pub const DATABASES: usize = 16;
/// Most keys over all databases.
pub const MAX_KEYS: usize = 50_000;
/// Most bytes of keys and values over all databases.
pub const MAX_BYTES: usize = 4 * 1024 * 1024;
/// Most elements in one list, hash, set or sorted set.
pub const MAX_ELEMENTS: usize = 10_000;

/// A value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(Vec<u8>),
    /// A list.
    List(VecDeque<Vec<u8>>),
    /// A hash, fields in insertion order.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// A set, members in insertion order.
    Set(Vec<Vec<u8>>),
    /// A sorted set, kept sorted by (score, member).
    ZSet(Vec<(f64, Vec<u8>)>),
}

impl Value {
    /// The `TYPE` name.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// Bytes counted against [`MAX_BYTES`].
    pub fn size(&self) -> usize {
        match self {
            Value::Str(s) => s.len(),
            Value::List(l) => l.iter().map(|e| e.len() + 8).sum(),
            Value::Hash(h) => h.iter().map(|(k, v)| k.len() + v.len() + 8).sum(),
            Value::Set(s) => s.iter().map(|e| e.len() + 8).sum(),
            Value::ZSet(z) => z.iter().map(|(_, m)| m.len() + 16).sum(),
        }
    }

    /// Whether a collection has no elements (a string never is).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Elements in a collection (1 for a string).
    pub fn len(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::List(l) => l.len(),
            Value::Hash(h) => h.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
        }
    }
}

/// A key's value and expiry (unix milliseconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The value.
    pub value: Value,
    /// When it expires, if it does.
    pub expires_at: Option<u64>,
}

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// Over [`MAX_KEYS`] or [`MAX_BYTES`]: Redis' maxmemory error.
    OutOfMemory,
}

/// Sixteen databases.
#[derive(Debug, Default)]
pub struct Store {
    dbs: Vec<HashMap<Vec<u8>, Entry>>,
    keys: usize,
    bytes: usize,
}

/// A stable, unordered-looking position for a key (Redis lists keys in hash-table
/// order, not sorted).
pub fn scatter(key: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    h.finish()
}

impl Store {
    /// Empty databases.
    pub fn new() -> Store {
        Store {
            dbs: (0..DATABASES).map(|_| HashMap::new()).collect(),
            keys: 0,
            bytes: 0,
        }
    }

    fn db(&self, db: usize) -> Option<&HashMap<Vec<u8>, Entry>> {
        self.dbs.get(db)
    }

    /// Drops `key` if it has expired.
    fn expire_one(&mut self, db: usize, key: &[u8], now: u64) {
        let expired = self
            .dbs
            .get(db)
            .and_then(|d| d.get(key))
            .and_then(|e| e.expires_at)
            .is_some_and(|t| t <= now);
        if expired {
            self.remove(db, key);
        }
    }

    /// The live entry of `key`.
    pub fn get(&mut self, db: usize, key: &[u8], now: u64) -> Option<&Entry> {
        self.expire_one(db, key, now);
        self.dbs.get(db)?.get(key)
    }

    /// The live entry of `key`, for in-place changes that [`Store::resize`] accounts.
    pub fn get_mut(&mut self, db: usize, key: &[u8], now: u64) -> Option<&mut Entry> {
        self.expire_one(db, key, now);
        self.dbs.get_mut(db)?.get_mut(key)
    }

    /// Accounts a size change of an entry modified through [`Store::get_mut`].
    ///
    /// # Errors
    /// [`Full::OutOfMemory`] when the new size does not fit (the caller undoes the
    /// change).
    pub fn resize(&mut self, old: usize, new: usize) -> Result<(), Full> {
        let bytes = self.bytes - old.min(self.bytes) + new;
        if new > old && bytes > MAX_BYTES {
            return Err(Full::OutOfMemory);
        }
        self.bytes = bytes;
        Ok(())
    }

    /// Whether `extra` more bytes in one more key would fit.
    pub fn fits(&self, extra: usize, new_key: bool) -> bool {
        self.bytes + extra <= MAX_BYTES && (!new_key || self.keys < MAX_KEYS)
    }

    /// Sets `key` (replacing any value).
    ///
    /// # Errors
    /// [`Full::OutOfMemory`] over the caps; nothing changes then.
    pub fn set(&mut self, db: usize, key: &[u8], entry: Entry) -> Result<(), Full> {
        let Some(d) = self.dbs.get_mut(db) else {
            return Ok(());
        };
        let add = key.len() + entry.value.size();
        let old = d.get(key).map(|e| key.len() + e.value.size());
        let bytes = self.bytes - old.unwrap_or(0) + add;
        if bytes > MAX_BYTES || (old.is_none() && self.keys >= MAX_KEYS) {
            return Err(Full::OutOfMemory);
        }
        if old.is_none() {
            self.keys += 1;
        }
        self.bytes = bytes;
        d.insert(key.to_vec(), entry);
        Ok(())
    }

    /// Removes `key`; whether it existed.
    pub fn remove(&mut self, db: usize, key: &[u8]) -> bool {
        let Some(d) = self.dbs.get_mut(db) else {
            return false;
        };
        match d.remove(key) {
            Some(e) => {
                self.keys -= 1;
                self.bytes = self.bytes.saturating_sub(key.len() + e.value.size());
                true
            }
            None => false,
        }
    }

    /// Empties one database.
    pub fn flush_db(&mut self, db: usize) {
        let keys: Vec<Vec<u8>> = self
            .db(db)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        for k in keys {
            self.remove(db, &k);
        }
    }

    /// Empties every database.
    pub fn flush_all(&mut self) {
        for db in 0..DATABASES {
            self.flush_db(db);
        }
    }

    /// Drops every expired key of `db`.
    pub fn purge(&mut self, db: usize, now: u64) {
        let dead: Vec<Vec<u8>> = self
            .db(db)
            .map(|d| {
                d.iter()
                    .filter(|(_, e)| e.expires_at.is_some_and(|t| t <= now))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default();
        for k in dead {
            self.remove(db, &k);
        }
    }

    /// Live keys of `db` in Redis-like unordered order.
    pub fn keys(&mut self, db: usize, now: u64) -> Vec<Vec<u8>> {
        self.purge(db, now);
        let mut keys: Vec<Vec<u8>> = self
            .db(db)
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort_by_key(|k| scatter(k));
        keys
    }

    /// `(keys, keys with expiry, mean remaining ttl in ms)` of `db`.
    pub fn stats(&self, db: usize, now: u64) -> (usize, usize, u64) {
        let Some(d) = self.db(db) else {
            return (0, 0, 0);
        };
        let ttls: Vec<u64> = d
            .values()
            .filter_map(|e| e.expires_at)
            .map(|t| t.saturating_sub(now))
            .collect();
        let avg = if ttls.is_empty() {
            0
        } else {
            ttls.iter().sum::<u64>() / ttls.len() as u64
        };
        (d.len(), ttls.len(), avg)
    }

    /// Bytes stored.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

const FIRST: [&str; 16] = [
    "james", "maria", "wei", "anna", "omar", "lucas", "sofia", "ivan", "chloe", "daniel", "fatima",
    "noah", "elena", "kenji", "laura", "mateo",
];
const LAST: [&str; 12] = [
    "smith", "garcia", "chen", "muller", "rossi", "novak", "kowalski", "dubois", "silva", "tanaka",
    "jensen", "walsh",
];
const DOMAINS: [&str; 6] = [
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "icloud.com",
    "gmx.de",
];
const PATHS: [&str; 8] = [
    "/",
    "/login",
    "/products",
    "/cart",
    "/api/v1/items",
    "/search",
    "/account",
    "/blog",
];

fn hex_string(rng: &mut ChaCha20Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect()
}

fn alnum(rng: &mut ChaCha20Rng, n: usize) -> String {
    const SET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..n)
        .map(|_| char::from(SET[rng.gen_range(0..SET.len())]))
        .collect()
}

fn uuid(rng: &mut ChaCha20Rng) -> String {
    let h = hex_string(rng, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..]
    )
}

fn person(rng: &mut ChaCha20Rng) -> (String, String) {
    let first = FIRST.choose(rng).copied().unwrap_or("james");
    let last = LAST.choose(rng).copied().unwrap_or("smith");
    let domain = DOMAINS.choose(rng).copied().unwrap_or("gmail.com");
    let n: u16 = rng.gen_range(1..99);
    (
        format!("{first} {last}"),
        format!("{first}.{last}{n}@{domain}"),
    )
}

fn put(store: &mut Store, db: usize, key: String, value: Value, ttl_ms: Option<u64>, now: u64) {
    // Seeding stays far below the caps; a refusal would only drop a bait key.
    let _ = store.set(
        db,
        key.as_bytes(),
        Entry {
            value,
            expires_at: ttl_ms.map(|t| now + t),
        },
    );
}

/// Seeds the keyspace of one decky: the same content on every start of the same decky,
/// different content on other deckies. `now` is unix milliseconds (expiries count from
/// it).
pub fn seed(rng: &mut ChaCha20Rng, now: u64) -> Store {
    let mut store = Store::new();
    let flavour = rng.gen_range(0..3);
    let n_sessions = rng.gen_range(4..14);
    for _ in 0..n_sessions {
        let (name, email) = person(rng);
        let uid = rng.gen_range(1000..9000);
        let ttl = rng.gen_range(60_000..86_400_000);
        match flavour {
            // PHP sessions (phpredis).
            0 => {
                let id = alnum(rng, 26);
                let body = format!(
                    "user_id|i:{uid};username|s:{}:\"{}\";email|s:{}:\"{email}\";logged_in|b:1;csrf|s:32:\"{}\";",
                    name.len(),
                    name,
                    email.len(),
                    hex_string(rng, 32)
                );
                put(
                    &mut store,
                    0,
                    format!("PHPREDIS_SESSION:{id}"),
                    Value::Str(body.into_bytes()),
                    Some(ttl),
                    now,
                );
            }
            // Express sessions (connect-redis).
            1 => {
                let id = uuid(rng);
                let body = format!(
                    "{{\"cookie\":{{\"originalMaxAge\":86400000,\"httpOnly\":true,\"path\":\"/\"}},\"userId\":{uid},\"email\":\"{email}\",\"role\":\"customer\"}}"
                );
                put(
                    &mut store,
                    0,
                    format!("sess:{id}"),
                    Value::Str(body.into_bytes()),
                    Some(ttl),
                    now,
                );
            }
            // Django cache sessions.
            _ => {
                let id = alnum(rng, 32);
                let body = format!(
                    "{{\"_auth_user_id\":\"{uid}\",\"_auth_user_backend\":\"django.contrib.auth.backends.ModelBackend\",\"_auth_user_hash\":\"{}\"}}",
                    hex_string(rng, 64)
                );
                put(
                    &mut store,
                    1,
                    format!(":1:django.contrib.sessions.cache{id}"),
                    Value::Str(body.into_bytes()),
                    Some(ttl),
                    now,
                );
            }
        }
    }
    let n_users = rng.gen_range(3..9);
    for _ in 0..n_users {
        let (name, email) = person(rng);
        let uid = rng.gen_range(1000..9000);
        let last_login = 1_700_000_000 + rng.gen_range(0..40_000_000u64);
        put(
            &mut store,
            0,
            format!("user:{uid}"),
            Value::Hash(vec![
                (b"name".to_vec(), name.into_bytes()),
                (b"email".to_vec(), email.into_bytes()),
                (
                    b"role".to_vec(),
                    if rng.gen_bool(0.15) {
                        b"admin".to_vec()
                    } else {
                        b"user".to_vec()
                    },
                ),
                (b"last_login".to_vec(), last_login.to_string().into_bytes()),
            ]),
            None,
            now,
        );
    }
    let n_pages = rng.gen_range(2..6);
    for path in PATHS
        .choose_multiple(rng, n_pages)
        .copied()
        .collect::<Vec<_>>()
    {
        let html = format!(
            "<!-- cached {path} --><div class=\"page\" data-rev=\"{}\">…</div>",
            hex_string(rng, 8)
        );
        put(
            &mut store,
            0,
            format!("cache:page:{path}"),
            Value::Str(html.into_bytes()),
            Some(rng.gen_range(30_000..3_600_000)),
            now,
        );
    }
    for _ in 0..rng.gen_range(1..5) {
        // Public-looking first octets only (no 10/8, 127/8, 172/12 or 192.168/16).
        let first = [
            23, 31, 45, 62, 77, 81, 89, 94, 103, 109, 141, 151, 185, 195, 203, 213,
        ][rng.gen_range(0..16)];
        let ip = format!(
            "{first}.{}.{}.{}",
            rng.gen_range(0..255),
            rng.gen_range(0..255),
            rng.gen_range(1..254)
        );
        put(
            &mut store,
            0,
            format!("ratelimit:{ip}"),
            Value::Str(rng.gen_range(1..60).to_string().into_bytes()),
            Some(rng.gen_range(1_000..60_000)),
            now,
        );
    }
    let day = 19_700 + rng.gen_range(0..400);
    put(
        &mut store,
        0,
        format!("stats:visits:{day}"),
        Value::Str(rng.gen_range(200..90_000).to_string().into_bytes()),
        None,
        now,
    );
    put(
        &mut store,
        0,
        "stats:signups".to_owned(),
        Value::Str(rng.gen_range(50..5_000).to_string().into_bytes()),
        None,
        now,
    );
    let mut queue = VecDeque::new();
    for _ in 0..rng.gen_range(0..6) {
        queue.push_back(
            format!(
                "{{\"id\":\"{}\",\"task\":\"mail.send_receipt\",\"args\":[{}],\"retries\":0}}",
                uuid(rng),
                rng.gen_range(10_000..99_999)
            )
            .into_bytes(),
        );
    }
    if !queue.is_empty() {
        put(
            &mut store,
            0,
            "queue:mail".to_owned(),
            Value::List(queue),
            None,
            now,
        );
    }
    put(
        &mut store,
        0,
        "workers".to_owned(),
        Value::Set(
            (0..rng.gen_range(1..4))
                .map(|i| format!("worker-{i}@{}", alnum(rng, 6)).into_bytes())
                .collect(),
        ),
        None,
        now,
    );
    let mut board: Vec<(f64, Vec<u8>)> = (0..rng.gen_range(3..8))
        .map(|_| {
            (
                f64::from(rng.gen_range(10..5_000u32)),
                person(rng).0.replace(' ', ".").into_bytes(),
            )
        })
        .collect();
    board.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    put(
        &mut store,
        0,
        "leaderboard:weekly".to_owned(),
        Value::ZSet(board),
        None,
        now,
    );
    // Bait: a credential an intruder will want to try elsewhere (never valid anywhere).
    let user = FIRST.choose(rng).copied().unwrap_or("mail");
    put(
        &mut store,
        0,
        "config:smtp".to_owned(),
        Value::Hash(vec![
            (b"host".to_vec(), b"smtp.sendgrid.net".to_vec()),
            (b"port".to_vec(), b"587".to_vec()),
            (b"user".to_vec(), b"apikey".to_vec()),
            (
                b"password".to_vec(),
                format!("SG.{}.{}", alnum(rng, 22), alnum(rng, 43)).into_bytes(),
            ),
            (
                b"from".to_vec(),
                format!("{user}@notifications.local").into_bytes(),
            ),
        ]),
        None,
        now,
    );
    if rng.gen_bool(0.5) {
        put(
            &mut store,
            0,
            "backup:s3".to_owned(),
            Value::Hash(vec![
                (
                    b"bucket".to_vec(),
                    format!("backups-{}", alnum(rng, 8)).into_bytes(),
                ),
                (
                    b"access_key_id".to_vec(),
                    format!("AKIA{}", alnum(rng, 16).to_ascii_uppercase()).into_bytes(),
                ),
                (b"secret_access_key".to_vec(), alnum(rng, 40).into_bytes()),
                (b"region".to_vec(), b"eu-west-1".to_vec()),
            ]),
            None,
            now,
        );
    }
    store
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn str_entry(v: &[u8]) -> Entry {
        Entry {
            value: Value::Str(v.to_vec()),
            expires_at: None,
        }
    }

    #[test]
    fn caps_and_accounting() {
        let mut s = Store::new();
        s.set(0, b"a", str_entry(&[0; 100])).unwrap();
        assert_eq!(s.bytes(), 101);
        s.set(0, b"a", str_entry(&[0; 10])).unwrap();
        assert_eq!(s.bytes(), 11);
        assert_eq!(
            s.set(0, b"b", str_entry(&vec![0; MAX_BYTES])),
            Err(Full::OutOfMemory)
        );
        assert!(s.remove(0, b"a"));
        assert_eq!(s.bytes(), 0);
        assert!(!s.remove(0, b"a"));
        assert!(s.set(DATABASES, b"x", str_entry(b"y")).is_ok());
        assert_eq!(s.stats(0, 0), (0, 0, 0));
    }

    #[test]
    fn expiry_is_lazy_and_exact() {
        let mut s = Store::new();
        s.set(
            0,
            b"k",
            Entry {
                value: Value::Str(b"v".to_vec()),
                expires_at: Some(1_000),
            },
        )
        .unwrap();
        assert!(s.get(0, b"k", 999).is_some());
        assert_eq!(s.stats(0, 500), (1, 1, 500));
        assert!(s.get(0, b"k", 1_000).is_none());
        assert_eq!(s.bytes(), 0);
    }

    #[test]
    fn seeding_is_per_decky() {
        let now = 1_790_000_000_000;
        let a = seed(&mut ChaCha20Rng::from_seed([1; 32]), now).keys(0, now);
        let a2 = seed(&mut ChaCha20Rng::from_seed([1; 32]), now).keys(0, now);
        let b = seed(&mut ChaCha20Rng::from_seed([2; 32]), now).keys(0, now);
        assert_eq!(a, a2);
        assert_ne!(a, b);
        assert!(a.iter().any(|k| k == b"config:smtp"));
        assert!(a.len() >= 8);
    }
}
