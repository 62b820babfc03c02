//! The read-only bait tree an FTP login sees: seeded backup tarballs, SQL dumps and a
//! README, with believable names, sizes and dates, and content generated on demand.

use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use time::{Duration as TimeDuration, OffsetDateTime};

use crate::persona::Persona;

/// Largest bait file, in bytes (content is generated, never stored).
pub const MAX_BAIT_BYTES: u64 = 2 * 1024 * 1024;

/// What a bait file contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// Plain text given in full.
    Text(&'static str),
    /// A SQL dump of the named database.
    Sql,
    /// Compressed data (gzip framing, random payload).
    Gzip,
}

/// One entry of the bait tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Absolute path (`/backups/db.sql.gz`).
    pub path: String,
    /// Whether it is a directory.
    pub dir: bool,
    /// Size in bytes (4096 for directories).
    pub size: u64,
    /// Modification time.
    pub mtime: OffsetDateTime,
    /// Content kind (files).
    pub content: Content,
    /// Seed of the generated content.
    pub seed: [u8; 32],
}

impl Entry {
    /// The last path component.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or("")
    }

    /// The parent directory's path.
    pub fn parent(&self) -> &str {
        match self.path.rfind('/') {
            Some(0) | None => "/",
            Some(i) => &self.path[..i],
        }
    }
}

/// The whole tree.
#[derive(Debug, Clone)]
pub struct Tree {
    entries: Vec<Entry>,
}

const README: &str = "Backup share - read only\r\n\r\nNightly dumps are rotated after 14 days. Full site archives are kept\r\nfor the last three releases. Contact the ops team before restoring\r\nanything to production.\r\n";

impl Tree {
    /// The bait tree of this decky (stable per decky).
    pub fn for_persona(persona: &Persona) -> Tree {
        let mut rng = persona.rng("ftp-bait");
        let now = OffsetDateTime::now_utc();
        // Dates hang off the start of the current week so the share looks maintained
        // (nightly dumps) while staying stable for a week at a time.
        let week = now.unix_timestamp().div_euclid(7 * 86_400) * 7 * 86_400;
        let base = OffsetDateTime::from_unix_timestamp(week).unwrap_or(now)
            - TimeDuration::days(rng.gen_range(0..5));
        let date = |rng: &mut ChaCha20Rng, back: i64| {
            let t = base - TimeDuration::days(back)
                + TimeDuration::seconds(rng.gen_range(3600..20_000));
            if t > now {
                now - TimeDuration::days(1)
            } else {
                t
            }
        };
        let site = ["www", "portal", "intranet", "shop", "crm", "erp", "wiki"]
            .choose(&mut rng)
            .copied()
            .unwrap_or("www");
        let db = [
            "wordpress",
            "app_prod",
            "crm",
            "customers",
            "billing",
            "magento",
            "erp_live",
        ]
        .choose(&mut rng)
        .copied()
        .unwrap_or("app_prod");
        let mut entries = Vec::new();
        let mut push =
            |path: String, dir: bool, size: u64, mtime, content, rng: &mut ChaCha20Rng| {
                let mut seed = [0u8; 32];
                rng.fill_bytes(&mut seed);
                entries.push(Entry {
                    path,
                    dir,
                    size,
                    mtime,
                    content,
                    seed,
                });
            };
        let t = date(&mut rng, 2);
        push("/backups".into(), true, 4096, t, Content::Gzip, &mut rng);
        let t = date(&mut rng, 120);
        push("/pub".into(), true, 4096, t, Content::Gzip, &mut rng);
        let t = date(&mut rng, 400);
        push(
            "/README.txt".into(),
            false,
            README.len() as u64,
            t,
            Content::Text(README),
            &mut rng,
        );
        for back in [1i64, 8, 15] {
            let t = date(&mut rng, back);
            let name = format!(
                "/backups/{db}_{:04}{:02}{:02}.sql.gz",
                t.year(),
                u8::from(t.month()),
                t.day()
            );
            let size = rng.gen_range(180_000..900_000);
            push(name, false, size, t, Content::Gzip, &mut rng);
        }
        for back in [3i64, 34] {
            let t = date(&mut rng, back);
            let name = format!(
                "/backups/{site}-backup-{:04}-{:02}-{:02}.tar.gz",
                t.year(),
                u8::from(t.month()),
                t.day()
            );
            let size = rng.gen_range(900_000..MAX_BAIT_BYTES);
            push(name, false, size, t, Content::Gzip, &mut rng);
        }
        let t = date(&mut rng, 60);
        let size = rng.gen_range(40_000..300_000);
        push(
            format!("/backups/{db}_schema.sql"),
            false,
            size,
            t,
            Content::Sql,
            &mut rng,
        );
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Tree { entries }
    }

    /// The entry at a normalised path (`/` is the root directory, not an entry).
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.path == path)
    }

    /// Whether `path` is a directory (the root included).
    pub fn is_dir(&self, path: &str) -> bool {
        path == "/" || self.get(path).is_some_and(|e| e.dir)
    }

    /// The entries directly inside directory `path`, sorted by name.
    pub fn list(&self, path: &str) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.parent() == path).collect()
    }
}

/// Generates the bytes of a bait file in chunks, exactly `entry.size` in total.
pub struct Generator {
    rng: ChaCha20Rng,
    content: Content,
    left: u64,
    sent: u64,
    pending: Vec<u8>,
    db: String,
}

impl Generator {
    /// A generator for `entry` (capped at [`MAX_BAIT_BYTES`]).
    pub fn new(entry: &Entry) -> Generator {
        let db = entry.name().split('_').next().unwrap_or("app").to_owned();
        Generator {
            rng: ChaCha20Rng::from_seed(entry.seed),
            content: entry.content,
            left: entry.size.min(MAX_BAIT_BYTES),
            sent: 0,
            pending: Vec::new(),
            db,
        }
    }

    /// The next chunk of at most `max` bytes, or `None` at the end.
    pub fn next_chunk(&mut self, max: usize) -> Option<Vec<u8>> {
        if self.left == 0 {
            return None;
        }
        let want = usize::try_from(self.left).unwrap_or(usize::MAX).min(max);
        while self.pending.len() < want {
            self.refill(want);
        }
        let chunk: Vec<u8> = self.pending.drain(..want).collect();
        self.left -= chunk.len() as u64;
        self.sent += chunk.len() as u64;
        Some(chunk)
    }

    fn refill(&mut self, want: usize) {
        match self.content {
            Content::Text(text) => {
                let start = usize::try_from(self.sent).unwrap_or(0) + self.pending.len();
                let bytes = text.as_bytes();
                if start < bytes.len() {
                    self.pending.extend_from_slice(&bytes[start..]);
                } else {
                    self.pending.resize(want, b'\n');
                }
            }
            Content::Gzip => {
                if self.sent == 0 && self.pending.is_empty() {
                    // gzip member header: magic, deflate, no flags, mtime, xfl, OS=Unix.
                    let mtime: u32 = self.rng.r#gen();
                    self.pending.extend_from_slice(&[0x1f, 0x8b, 0x08, 0x00]);
                    self.pending.extend_from_slice(&mtime.to_le_bytes());
                    self.pending.extend_from_slice(&[0x00, 0x03]);
                }
                let mut block = vec![0u8; want.max(4096)];
                self.rng.fill_bytes(&mut block);
                self.pending.extend_from_slice(&block);
            }
            Content::Sql => {
                if self.sent == 0 && self.pending.is_empty() {
                    let header = format!(
                        "-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost    Database: {db}\n-- ------------------------------------------------------\n-- Server version\t8.0.36\n\n/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;\n/*!40101 SET NAMES utf8mb4 */;\n\n--\n-- Table structure for table `users`\n--\n\nDROP TABLE IF EXISTS `users`;\nCREATE TABLE `users` (\n  `id` int NOT NULL AUTO_INCREMENT,\n  `email` varchar(190) NOT NULL,\n  `password_hash` varchar(255) NOT NULL,\n  `created_at` datetime NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;\n\nLOCK TABLES `users` WRITE;\n",
                        db = self.db
                    );
                    self.pending.extend_from_slice(header.as_bytes());
                }
                let names = [
                    "john", "maria", "admin", "s.keller", "ops", "backup", "anna", "li.wei",
                ];
                let domains = ["corp.local", "example.com", "mail.internal"];
                let mut line = String::from("INSERT INTO `users` VALUES ");
                for i in 0..20 {
                    let id = self.rng.gen_range(1..90_000);
                    let name = names.choose(&mut self.rng).copied().unwrap_or("user");
                    let domain = domains
                        .choose(&mut self.rng)
                        .copied()
                        .unwrap_or("corp.local");
                    let mut salt = [0u8; 16];
                    self.rng.fill_bytes(&mut salt);
                    let mut hash = [0u8; 23];
                    self.rng.fill_bytes(&mut hash);
                    if i > 0 {
                        line.push(',');
                    }
                    line.push_str(&format!(
                        "({id},'{name}{}@{domain}','$2y$10${}','2023-{:02}-{:02} {:02}:{:02}:{:02}')",
                        id % 97,
                        &hex::encode(hash)[..43],
                        self.rng.gen_range(1..13),
                        self.rng.gen_range(1..29),
                        self.rng.gen_range(0..24),
                        self.rng.gen_range(0..60),
                        self.rng.gen_range(0..60)
                    ));
                }
                line.push_str(";\n");
                self.pending.extend_from_slice(line.as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use decnet_core::catalog;

    fn persona(seed: &str) -> Persona {
        let s = seed.repeat(32);
        Persona::from_lookup(catalog::service("ftp").unwrap(), |k| {
            (k == "DECNET_SEED").then(|| s.clone())
        })
        .unwrap()
    }

    #[test]
    fn tree_is_stable_per_decky_and_differs_across_deckies() {
        let a = Tree::for_persona(&persona("01"));
        let b = Tree::for_persona(&persona("01"));
        let c = Tree::for_persona(&persona("02"));
        let names = |t: &Tree| {
            t.entries
                .iter()
                .map(|e| (e.path.clone(), e.size))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a), names(&b));
        assert_ne!(names(&a), names(&c));
        assert!(a.is_dir("/") && a.is_dir("/backups") && !a.is_dir("/README.txt"));
        let root: Vec<&str> = a.list("/").iter().map(|e| e.name()).collect();
        assert_eq!(root, ["README.txt", "backups", "pub"]);
        assert_eq!(a.list("/backups").len(), 6);
        assert!(a.entries.iter().all(|e| e.size <= MAX_BAIT_BYTES));
    }

    #[test]
    fn generators_produce_exactly_the_listed_size() {
        let tree = Tree::for_persona(&persona("03"));
        for entry in tree.entries.iter().filter(|e| !e.dir) {
            let mut g = Generator::new(entry);
            let mut total = 0u64;
            let mut first = None;
            while let Some(chunk) = g.next_chunk(32 * 1024) {
                assert!(chunk.len() <= 32 * 1024);
                first.get_or_insert_with(|| chunk.clone());
                total += chunk.len() as u64;
            }
            assert_eq!(total, entry.size, "{}", entry.path);
            let first = first.unwrap();
            match entry.content {
                Content::Gzip => assert_eq!(&first[..2], &[0x1f, 0x8b]),
                Content::Sql => assert!(first.starts_with(b"-- MySQL dump")),
                Content::Text(t) => assert_eq!(first, t.as_bytes()),
            }
        }
    }
}
