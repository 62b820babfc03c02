//! What the fake server says about itself: the per-decky facts (version, os, pid, run id,
//! uptime, memory figures), the `INFO` text in Redis 7.0's layout, the `CONFIG`
//! parameters, and the `CLIENT LIST` lines.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use sha2::Digest as _;

use crate::persona::Persona;

/// The version a decky reports when the persona names none.
pub const DEFAULT_VERSION: &str = "7.0.15";

/// Facts fixed for the life of the process.
#[derive(Debug, Clone)]
pub struct Facts {
    /// `redis_version`.
    pub version: String,
    /// `os`.
    pub os: String,
    /// `gcc_version`.
    pub gcc: &'static str,
    /// `redis_build_id` (the same for every install of one package build).
    pub build_id: String,
    /// `process_id`.
    pub process_id: u32,
    /// `run_id`.
    pub run_id: String,
    /// `master_replid`.
    pub replid: String,
    /// When the fake server started (unix seconds).
    pub started: u64,
    /// `total_system_memory`.
    pub total_memory: u64,
    /// `mem_allocator`.
    pub allocator: &'static str,
    /// Memory of the empty server (`used_memory_startup`).
    pub startup_memory: u64,
    /// RSS over used memory.
    pub rss_ratio: f64,
    /// CPU seconds per second of uptime, (sys, user).
    pub cpu_rate: (f64, f64),
    /// Connections received before this process's first real one.
    pub base_connections: u64,
    /// Calls per command before this process's first real client (the decky's own
    /// application traffic), in `cmdstat` order.
    pub base_calls: BTreeMap<&'static str, u64>,
    /// Keyspace hits and misses of that traffic.
    pub base_hits: (u64, u64),
    /// `rdb_last_save_time` at start.
    pub last_save: u64,
}

fn now_unix() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn hex_id(rng: &mut impl Rng, n: usize) -> String {
    (0..n)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect()
}

impl Facts {
    /// The facts of this decky: stable per decky (seeded), different across deckies; the
    /// uptime counts from a seeded boot 1 hour to 45 days before now.
    pub fn from_persona(persona: &Persona) -> Facts {
        let mut rng = persona.rng("redis-facts");
        let version = persona
            .get("redis_version")
            .or_else(|| persona.get("version"))
            .unwrap_or(DEFAULT_VERSION)
            .to_owned();
        let os = persona.get("os_string").map_or_else(
            || format!("Linux {} x86_64", persona.kernel.release),
            str::to_owned,
        );
        let slug = persona.distro.slug;
        let gcc = match slug {
            "ubuntu22" => "11.4.0",
            "ubuntu20" => "9.4.0",
            "rocky9" => "11.4.1",
            "centos7" => "4.8.5",
            "alpine" => "13.2.1",
            "fedora" => "13.2.1",
            "arch" => "13.2.1",
            _ => "12.2.0",
        };
        let build_id = if slug == "debian" && version == DEFAULT_VERSION {
            // The build id of Debian 12's redis-server 7.0.15 package.
            "ae4d7c971a948f0".to_owned()
        } else {
            let digest = sha2::Sha256::digest(format!("{slug}:{version}").as_bytes());
            hex::encode(&digest[..8])[..15].to_owned()
        };
        let uptime = rng.gen_range(3_600..45 * 86_400);
        let started = now_unix().as_secs().saturating_sub(uptime);
        let gib: u64 = [2, 4, 8, 16, 32][rng.gen_range(0..5)];
        // What `free -b` reports is a little under the nominal size.
        let total_memory = gib * 1024 * 1024 * 1024 - rng.gen_range(180..420) * 1024 * 1024;
        let per_hour = rng.gen_range(2_000..60_000u64);
        let hours = uptime / 3_600 + 1;
        let traffic = per_hour * hours;
        let mut base_calls = BTreeMap::new();
        let gets = traffic * rng.gen_range(50..70) / 100;
        let sets = traffic * rng.gen_range(10..20) / 100;
        base_calls.insert("get", gets);
        base_calls.insert("setex", sets);
        base_calls.insert("del", traffic * rng.gen_range(2..6) / 100);
        base_calls.insert("expire", traffic * rng.gen_range(3..8) / 100);
        base_calls.insert("incr", traffic * rng.gen_range(3..8) / 100);
        base_calls.insert("ping", hours * 60);
        base_calls.insert("info", hours);
        let hits = gets * rng.gen_range(70..95) / 100;
        Facts {
            version,
            os,
            gcc,
            build_id,
            process_id: rng.gen_range(400..4_000),
            run_id: hex_id(&mut rng, 40),
            replid: hex_id(&mut rng, 40),
            started,
            total_memory,
            allocator: if slug == "alpine" {
                "libc"
            } else {
                "jemalloc-5.3.0"
            },
            startup_memory: 862_000 + rng.gen_range(0..20_000),
            rss_ratio: rng.gen_range(1.6..4.2),
            cpu_rate: (rng.gen_range(0.0004..0.004), rng.gen_range(0.0003..0.003)),
            base_connections: hours * rng.gen_range(2..40),
            base_calls,
            base_hits: (hits, gets - hits),
            last_save: now_unix()
                .as_secs()
                .saturating_sub(rng.gen_range(60..3_600)),
        }
    }
}

/// Redis' `bytesToHuman`.
pub fn human(n: u64) -> String {
    let n_f = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if n_f < K * K {
        format!("{:.2}K", n_f / K)
    } else if n_f < K * K * K {
        format!("{:.2}M", n_f / (K * K))
    } else if n_f < K * K * K * K {
        format!("{:.2}G", n_f / (K * K * K))
    } else {
        format!("{:.2}T", n_f / (K * K * K * K))
    }
}

/// Replication role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Role {
    /// A master.
    #[default]
    Master,
    /// A replica of `(host, port)` since unix time `since` (never connected: the
    /// emulator does not connect out).
    Replica(String, String, u64),
}

/// Live figures the `INFO` text needs.
#[derive(Debug, Clone, Default)]
pub struct Live {
    /// Port the client connected to.
    pub tcp_port: u16,
    /// Clients connected (real and fake).
    pub clients: usize,
    /// Bytes in the keyspace.
    pub dataset: u64,
    /// Peak of `used_memory`.
    pub peak: u64,
    /// `maxmemory`.
    pub maxmemory: u64,
    /// `maxmemory-policy`.
    pub policy: String,
    /// Connections received by this process.
    pub connections: u64,
    /// Calls per command by this process.
    pub calls: BTreeMap<&'static str, u64>,
    /// Failed calls per command by this process.
    pub failed: BTreeMap<&'static str, u64>,
    /// Error replies by prefix.
    pub errors: BTreeMap<String, u64>,
    /// Hits and misses by this process.
    pub hits: (u64, u64),
    /// Bytes read and written by this process.
    pub net: (u64, u64),
    /// Keys changed since the last save.
    pub dirty: u64,
    /// Unix time of the last save.
    pub last_save: u64,
    /// Whether a BGSAVE was asked for.
    pub bgsaves: u64,
    /// Replication role.
    pub role: Role,
    /// `(db, keys, expires, avg_ttl)` of every non-empty database.
    pub keyspace: Vec<(usize, usize, usize, u64)>,
}

/// INFO sections in Redis 7.0's `INFO` / `INFO default` order.
pub const DEFAULT_SECTIONS: [&str; 11] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];

/// Which sections `INFO <args>` asks for, in output order.
pub fn sections(args: &[Vec<u8>]) -> Vec<&'static str> {
    let mut wanted: Vec<&'static str> = Vec::new();
    let all_order = [
        "server",
        "clients",
        "memory",
        "persistence",
        "stats",
        "replication",
        "cpu",
        "modules",
        "commandstats",
        "errorstats",
        "latencystats",
        "cluster",
        "keyspace",
    ];
    if args.is_empty() {
        return DEFAULT_SECTIONS.to_vec();
    }
    for a in args {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "default" => wanted.extend(DEFAULT_SECTIONS),
            "all" | "everything" => wanted.extend(all_order),
            other => {
                if let Some(s) = all_order.iter().find(|s| **s == other) {
                    wanted.push(s);
                }
            }
        }
    }
    all_order
        .iter()
        .copied()
        .filter(|s| wanted.contains(s))
        .collect()
}

fn calls_total(facts: &Facts, live: &Live) -> BTreeMap<&'static str, u64> {
    let mut all = facts.base_calls.clone();
    for (k, v) in &live.calls {
        *all.entry(k).or_insert(0) += v;
    }
    all
}

/// Renders `INFO` for `sections`.
pub fn render(facts: &Facts, live: &Live, sections: &[&str]) -> String {
    let now = now_unix();
    let uptime = now.as_secs().saturating_sub(facts.started);
    let used =
        facts.startup_memory + live.dataset + live.dataset / 3 + 20_000 * live.clients as u64;
    let peak = live.peak.max(used);
    let rss = ((used as f64 * facts.rss_ratio) as u64 / 4096 + 1) * 4096;
    let calls = calls_total(facts, live);
    let total_commands: u64 = calls.values().sum();
    let mut blocks = Vec::new();
    for section in sections {
        let mut s = String::new();
        let mut kv = |k: &str, v: &dyn std::fmt::Display| {
            let _ = write!(s, "{k}:{v}\r\n");
        };
        match *section {
            "server" => {
                kv("redis_version", &facts.version);
                kv("redis_git_sha1", &"00000000");
                kv("redis_git_dirty", &0);
                kv("redis_build_id", &facts.build_id);
                kv("redis_mode", &"standalone");
                kv("os", &facts.os);
                kv("arch_bits", &64);
                kv("monotonic_clock", &"POSIX clock_gettime");
                kv("multiplexing_api", &"epoll");
                kv("atomicvar_api", &"c11-builtin");
                kv("gcc_version", &facts.gcc);
                kv("process_id", &facts.process_id);
                kv("process_supervised", &"systemd");
                kv("run_id", &facts.run_id);
                kv("tcp_port", &live.tcp_port);
                kv("server_time_usec", &now.as_micros());
                kv("uptime_in_seconds", &uptime);
                kv("uptime_in_days", &(uptime / 86_400));
                kv("hz", &10);
                kv("configured_hz", &10);
                kv("lru_clock", &(now.as_secs() & 0xff_ffff));
                kv("executable", &"/usr/bin/redis-server");
                kv("config_file", &"/etc/redis/redis.conf");
                kv("io_threads_active", &0);
            }
            "clients" => {
                kv("connected_clients", &live.clients);
                kv("cluster_connections", &0);
                kv("maxclients", &10_000);
                kv("client_recent_max_input_buffer", &20_480);
                kv("client_recent_max_output_buffer", &0);
                kv("blocked_clients", &0);
                kv("tracking_clients", &0);
                kv("clients_in_timeout_table", &0);
            }
            "memory" => {
                let overhead = facts.startup_memory + 20_000 * live.clients as u64;
                let dataset = used.saturating_sub(overhead);
                let allocated = used + used / 8;
                let active = allocated + allocated / 10;
                let resident = active + 2_600_000;
                kv("used_memory", &used);
                kv("used_memory_human", &human(used));
                kv("used_memory_rss", &rss);
                kv("used_memory_rss_human", &human(rss));
                kv("used_memory_peak", &peak);
                kv("used_memory_peak_human", &human(peak));
                kv(
                    "used_memory_peak_perc",
                    &format!("{:.2}%", used as f64 * 100.0 / peak as f64),
                );
                kv("used_memory_overhead", &overhead);
                kv("used_memory_startup", &facts.startup_memory);
                kv("used_memory_dataset", &dataset);
                kv(
                    "used_memory_dataset_perc",
                    &format!(
                        "{:.2}%",
                        dataset as f64 * 100.0 / (used - facts.startup_memory).max(1) as f64
                    ),
                );
                kv("allocator_allocated", &allocated);
                kv("allocator_active", &active);
                kv("allocator_resident", &resident);
                kv("total_system_memory", &facts.total_memory);
                kv("total_system_memory_human", &human(facts.total_memory));
                kv("used_memory_lua", &32_768);
                kv("used_memory_vm_eval", &32_768);
                kv("used_memory_lua_human", &"32.00K");
                kv("used_memory_scripts_eval", &0);
                kv("number_of_cached_scripts", &0);
                kv("number_of_functions", &0);
                kv("number_of_libraries", &0);
                kv("used_memory_vm_functions", &33_792);
                kv("used_memory_vm_total", &66_560);
                kv("used_memory_vm_total_human", &"65.00K");
                kv("used_memory_functions", &200);
                kv("used_memory_scripts", &200);
                kv("used_memory_scripts_human", &"200B");
                kv("maxmemory", &live.maxmemory);
                kv("maxmemory_human", &human(live.maxmemory));
                kv("maxmemory_policy", &live.policy);
                kv(
                    "allocator_frag_ratio",
                    &format!("{:.2}", active as f64 / allocated as f64),
                );
                kv("allocator_frag_bytes", &(active - allocated));
                kv(
                    "allocator_rss_ratio",
                    &format!("{:.2}", resident as f64 / active as f64),
                );
                kv("allocator_rss_bytes", &(resident - active));
                kv(
                    "rss_overhead_ratio",
                    &format!("{:.2}", rss as f64 / resident as f64),
                );
                kv("rss_overhead_bytes", &(rss as i64 - resident as i64));
                kv(
                    "mem_fragmentation_ratio",
                    &format!("{:.2}", rss as f64 / used as f64),
                );
                kv("mem_fragmentation_bytes", &(rss as i64 - used as i64));
                kv("mem_not_counted_for_evict", &0);
                kv("mem_replication_backlog", &0);
                kv("mem_total_replication_buffers", &0);
                kv("mem_clients_slaves", &0);
                kv("mem_clients_normal", &(20_000 * live.clients as u64));
                kv("mem_cluster_links", &0);
                kv("mem_aof_buffer", &0);
                kv("mem_allocator", &facts.allocator);
                kv("active_defrag_running", &0);
                kv("lazyfree_pending_objects", &0);
                kv("lazyfreed_objects", &0);
            }
            "persistence" => {
                for k in [
                    "loading",
                    "async_loading",
                    "current_cow_peak",
                    "current_cow_size",
                    "current_cow_size_age",
                ] {
                    kv(k, &0);
                }
                kv("current_fork_perc", &"0.00");
                kv("current_save_keys_processed", &0);
                kv("current_save_keys_total", &0);
                kv("rdb_changes_since_last_save", &live.dirty);
                kv("rdb_bgsave_in_progress", &0);
                kv("rdb_last_save_time", &live.last_save);
                kv("rdb_last_bgsave_status", &"ok");
                kv("rdb_last_bgsave_time_sec", &0);
                kv("rdb_current_bgsave_time_sec", &-1);
                kv("rdb_saves", &(uptime / 3_600 + live.bgsaves));
                kv("rdb_last_cow_size", &479_232);
                kv("rdb_last_load_keys_expired", &0);
                kv("rdb_last_load_keys_loaded", &0);
                kv("aof_enabled", &0);
                kv("aof_rewrite_in_progress", &0);
                kv("aof_rewrite_scheduled", &0);
                kv("aof_last_rewrite_time_sec", &-1);
                kv("aof_current_rewrite_time_sec", &-1);
                kv("aof_last_bgrewrite_status", &"ok");
                kv("aof_rewrites", &0);
                kv("aof_rewrites_consecutive_failures", &0);
                kv("aof_last_write_status", &"ok");
                kv("aof_last_cow_size", &0);
                kv("module_fork_in_progress", &0);
                kv("module_fork_last_cow_size", &0);
            }
            "stats" => {
                let errors: u64 = live.errors.values().sum();
                kv(
                    "total_connections_received",
                    &(facts.base_connections + live.connections),
                );
                kv("total_commands_processed", &total_commands);
                kv("instantaneous_ops_per_sec", &0);
                kv("total_net_input_bytes", &(total_commands * 38 + live.net.0));
                kv(
                    "total_net_output_bytes",
                    &(total_commands * 61 + live.net.1),
                );
                kv("total_net_repl_input_bytes", &0);
                kv("total_net_repl_output_bytes", &0);
                kv("instantaneous_input_kbps", &"0.00");
                kv("instantaneous_output_kbps", &"0.00");
                kv("instantaneous_input_repl_kbps", &"0.00");
                kv("instantaneous_output_repl_kbps", &"0.00");
                kv("rejected_connections", &0);
                kv("sync_full", &0);
                kv("sync_partial_ok", &0);
                kv("sync_partial_err", &0);
                kv(
                    "expired_keys",
                    &(facts.base_calls.get("setex").copied().unwrap_or(0) * 9 / 10),
                );
                kv("expired_stale_perc", &"0.00");
                kv("expired_time_cap_reached_count", &0);
                kv("expire_cycle_cpu_milliseconds", &(uptime / 90));
                kv("evicted_keys", &0);
                kv("evicted_clients", &0);
                kv("total_eviction_exceeded_time", &0);
                kv("current_eviction_exceeded_time", &0);
                kv("keyspace_hits", &(facts.base_hits.0 + live.hits.0));
                kv("keyspace_misses", &(facts.base_hits.1 + live.hits.1));
                kv("pubsub_channels", &0);
                kv("pubsub_patterns", &0);
                kv("pubsubshard_channels", &0);
                kv("latest_fork_usec", &412);
                kv("total_forks", &(uptime / 3_600 + live.bgsaves));
                for k in [
                    "migrate_cached_sockets",
                    "slave_expires_tracked_keys",
                    "active_defrag_hits",
                    "active_defrag_misses",
                    "active_defrag_key_hits",
                    "active_defrag_key_misses",
                    "total_active_defrag_time",
                    "current_active_defrag_time",
                    "tracking_total_keys",
                    "tracking_total_items",
                    "tracking_total_prefixes",
                    "unexpected_error_replies",
                ] {
                    kv(k, &0);
                }
                kv("total_error_replies", &errors);
                kv("dump_payload_sanitizations", &0);
                kv(
                    "total_reads_processed",
                    &(total_commands + live.connections),
                );
                kv("total_writes_processed", &total_commands);
                kv("io_threaded_reads_processed", &0);
                kv("io_threaded_writes_processed", &0);
                kv("reply_buffer_shrinks", &(uptime / 600));
                kv("reply_buffer_expands", &(uptime / 7_200));
            }
            "replication" => match &live.role {
                Role::Master => {
                    kv("role", &"master");
                    kv("connected_slaves", &0);
                    kv("master_failover_state", &"no-failover");
                    kv("master_replid", &facts.replid);
                    kv(
                        "master_replid2",
                        &"0000000000000000000000000000000000000000",
                    );
                    kv("master_repl_offset", &0);
                    kv("second_repl_offset", &-1);
                    kv("repl_backlog_active", &0);
                    kv("repl_backlog_size", &1_048_576);
                    kv("repl_backlog_first_byte_offset", &0);
                    kv("repl_backlog_histlen", &0);
                }
                Role::Replica(host, port, since) => {
                    kv("role", &"slave");
                    kv("master_host", host);
                    kv("master_port", port);
                    kv("master_link_status", &"down");
                    kv("master_last_io_seconds_ago", &-1);
                    kv("master_sync_in_progress", &0);
                    kv("slave_read_repl_offset", &1);
                    kv("slave_repl_offset", &1);
                    kv(
                        "master_link_down_since_seconds",
                        &now.as_secs().saturating_sub(*since).max(1),
                    );
                    kv("slave_priority", &100);
                    kv("slave_read_only", &1);
                    kv("replica_announced", &1);
                    kv("connected_slaves", &0);
                    kv("master_failover_state", &"no-failover");
                    kv("master_replid", &facts.replid);
                    kv(
                        "master_replid2",
                        &"0000000000000000000000000000000000000000",
                    );
                    kv("master_repl_offset", &0);
                    kv("second_repl_offset", &-1);
                    kv("repl_backlog_active", &0);
                    kv("repl_backlog_size", &1_048_576);
                    kv("repl_backlog_first_byte_offset", &0);
                    kv("repl_backlog_histlen", &0);
                }
            },
            "cpu" => {
                let sys = uptime as f64 * facts.cpu_rate.0;
                let user = uptime as f64 * facts.cpu_rate.1;
                kv("used_cpu_sys", &format!("{sys:.6}"));
                kv("used_cpu_user", &format!("{user:.6}"));
                kv("used_cpu_sys_children", &format!("{:.6}", sys / 150.0));
                kv("used_cpu_user_children", &format!("{:.6}", user / 90.0));
                kv("used_cpu_sys_main_thread", &format!("{:.6}", sys * 0.997));
                kv("used_cpu_user_main_thread", &format!("{:.6}", user * 0.998));
            }
            "modules" | "cluster" | "errorstats" | "keyspace" | "commandstats" | "latencystats" => {
            }
            _ => continue,
        }
        match *section {
            "cluster" => s.push_str("cluster_enabled:0\r\n"),
            "errorstats" => {
                for (prefix, n) in &live.errors {
                    let _ = write!(s, "errorstat_{prefix}:count={n}\r\n");
                }
            }
            "keyspace" => {
                for (db, keys, expires, avg) in &live.keyspace {
                    let _ = write!(s, "db{db}:keys={keys},expires={expires},avg_ttl={avg}\r\n");
                }
            }
            "commandstats" => {
                for (cmd, n) in &calls {
                    let usec = n * 3 / 2 + 1;
                    let failed = live.failed.get(cmd).copied().unwrap_or(0);
                    let _ = write!(
                        s,
                        "cmdstat_{cmd}:calls={n},usec={usec},usec_per_call={:.2},rejected_calls=0,failed_calls={failed}\r\n",
                        usec as f64 / (*n).max(1) as f64
                    );
                }
            }
            "latencystats" => {
                for cmd in calls.keys() {
                    let _ = write!(
                        s,
                        "latency_percentiles_usec_{cmd}:p50=1.003,p99=3.007,p99.9=10.047\r\n"
                    );
                }
            }
            _ => {}
        }
        let title = match *section {
            "cpu" => "CPU".to_owned(),
            other => {
                let mut t = other.to_owned();
                if let Some(first) = t.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                t
            }
        };
        blocks.push(format!("# {title}\r\n{s}"));
    }
    blocks.join("\r\n")
}

/// One `CONFIG` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Any text.
    Text,
    /// `yes` / `no`.
    Bool,
    /// An integer.
    Int,
    /// A memory size (`100mb`, `1gb`, bytes).
    Memory,
    /// Refused by `CONFIG SET` (Redis 7 protected configs and start-up only ones).
    Protected,
    /// Refused by `CONFIG SET` as immutable.
    Immutable,
}

/// Parameters `CONFIG GET` knows, with their defaults on a Debian package install
/// opened to the network.
pub const PARAMS: &[(&str, Kind, &str)] = &[
    ("activerehashing", Kind::Bool, "yes"),
    ("appendfilename", Kind::Immutable, "appendonly.aof"),
    ("appendfsync", Kind::Text, "everysec"),
    ("appendonly", Kind::Bool, "no"),
    ("bind", Kind::Text, "* -::*"),
    ("daemonize", Kind::Immutable, "yes"),
    ("databases", Kind::Immutable, "16"),
    ("dbfilename", Kind::Protected, "dump.rdb"),
    ("dir", Kind::Protected, "/var/lib/redis"),
    ("enable-debug-command", Kind::Immutable, "no"),
    ("enable-module-command", Kind::Immutable, "no"),
    ("enable-protected-configs", Kind::Immutable, "no"),
    ("hz", Kind::Int, "10"),
    ("io-threads", Kind::Immutable, "1"),
    (
        "logfile",
        Kind::Immutable,
        "/var/log/redis/redis-server.log",
    ),
    ("loglevel", Kind::Text, "notice"),
    ("masterauth", Kind::Text, ""),
    ("masteruser", Kind::Text, ""),
    ("maxclients", Kind::Int, "10000"),
    ("maxmemory", Kind::Memory, "0"),
    ("maxmemory-policy", Kind::Text, "noeviction"),
    ("pidfile", Kind::Immutable, "/run/redis/redis-server.pid"),
    ("port", Kind::Int, "6379"),
    ("protected-mode", Kind::Bool, "no"),
    ("rdbcompression", Kind::Bool, "yes"),
    ("rdbchecksum", Kind::Bool, "yes"),
    ("replica-read-only", Kind::Bool, "yes"),
    ("replicaof", Kind::Text, ""),
    ("requirepass", Kind::Text, ""),
    ("save", Kind::Text, "3600 1 300 100 60 10000"),
    ("slave-read-only", Kind::Bool, "yes"),
    ("slaveof", Kind::Text, ""),
    ("slowlog-log-slower-than", Kind::Int, "10000"),
    ("slowlog-max-len", Kind::Int, "128"),
    ("stop-writes-on-bgsave-error", Kind::Bool, "yes"),
    ("supervised", Kind::Immutable, "systemd"),
    ("tcp-backlog", Kind::Immutable, "511"),
    ("tcp-keepalive", Kind::Int, "300"),
    ("timeout", Kind::Int, "0"),
    ("unixsocket", Kind::Immutable, ""),
];

/// Parses a Redis memory value (`100mb`, `1gb`, `512k`, plain bytes).
pub fn parse_memory(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul = match unit {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1_024,
        "m" => 1_000_000,
        "mb" => 1_024 * 1_024,
        "g" => 1_000_000_000,
        "gb" => 1_024 * 1_024 * 1_024,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// A client as `CLIENT LIST` shows it.
#[derive(Debug, Clone)]
pub struct ClientLine {
    /// `id`.
    pub id: u64,
    /// `addr`.
    pub addr: SocketAddr,
    /// `laddr`.
    pub laddr: SocketAddr,
    /// `fd`.
    pub fd: u32,
    /// `name`.
    pub name: String,
    /// Unix time connected.
    pub since: u64,
    /// Unix time of the last command.
    pub last: u64,
    /// `db`.
    pub db: usize,
    /// `cmd` (lower case, `container|sub` for subcommands).
    pub cmd: &'static str,
    /// `resp`.
    pub resp: u8,
}

impl ClientLine {
    /// The `CLIENT LIST` / `CLIENT INFO` line (with its trailing newline).
    pub fn render(&self, now: u64) -> String {
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=20474 argv-mem=0 multi-mem=0 rbs=1024 rbp=0 obl=0 oll=0 omem=0 tot-mem=22298 events=r cmd={} user=default redir=-1 resp={}\n",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            self.name,
            now.saturating_sub(self.since),
            now.saturating_sub(self.last),
            self.db,
            self.cmd,
            self.resp
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_like_redis() {
        assert_eq!(human(200), "200B");
        assert_eq!(human(941_656), "919.59K");
        assert_eq!(human(12_316_672), "11.75M");
        assert_eq!(human(25_276_514_304), "23.54G");
    }

    #[test]
    fn memory_values() {
        assert_eq!(parse_memory("100mb"), Some(104_857_600));
        assert_eq!(parse_memory("0"), Some(0));
        assert_eq!(parse_memory("1GB"), Some(1_073_741_824));
        assert_eq!(parse_memory("abc"), None);
    }

    #[test]
    fn section_selection() {
        assert_eq!(sections(&[]), DEFAULT_SECTIONS);
        assert_eq!(
            sections(&[b"clients".to_vec(), b"server".to_vec()]),
            ["server", "clients"]
        );
        assert_eq!(sections(&[b"nosuch".to_vec()]), Vec::<&str>::new());
        assert_eq!(sections(&[b"all".to_vec()]).len(), 13);
    }
}
