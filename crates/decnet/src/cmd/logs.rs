//! `decnet logs` (list, follow, JSON lines), `decnet logs import` and `decnet attackers`.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use decnet_fleet::logs::ingest::Ingester;
use decnet_fleet::logs::{CollectedEvent, EventSink as _, MAX_RAW_LINE, Origin};
use decnet_store::limits::MAX_PAGE_SIZE;
use decnet_store::{
    AttackerQuery, LogFilter, LogOrigin, LogQuery, LogRow, Order, Repository, Timestamp,
};
use serde::Serialize;

use super::live;
use super::reconcile::{close_bus, open_bus};
use super::swarmctl::shutdown_signal;
use crate::context::Ctx;
use crate::exit::{Status, invalid};
use crate::output;

/// `decnet logs`: the stored events, newest last.
#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LogsArgs {
    #[command(subcommand)]
    pub command: Option<LogsCommand>,
    #[command(flatten)]
    pub list: ListArgs,
}

/// `decnet logs` subcommands.
#[derive(Subcommand)]
pub enum LogsCommand {
    /// Ingest a file of RFC 5424 lines (a capture, or the reference implementation's
    /// decnet.log). Decky and service come from each line's HOSTNAME and APP-NAME (no
    /// container vouches for them); rows are marked `imported`. Importing the same file
    /// again inserts nothing new.
    Import(ImportArgs),
}

/// Filters and output of `decnet logs`.
#[derive(Args)]
pub struct ListArgs {
    /// Only this decky.
    #[arg(long, value_name = "NAME")]
    pub decky: Option<String>,
    /// Only this service (ssh, http, ...).
    #[arg(long, value_name = "SLUG")]
    pub service: Option<String>,
    /// Only this event type (auth_attempt, command, request, ...).
    #[arg(long, value_name = "TYPE")]
    pub event_type: Option<String>,
    /// Only events from this attacker address.
    #[arg(long, value_name = "IP")]
    pub attacker_ip: Option<String>,
    /// Only events at or after this time (RFC 3339, e.g. 2026-11-27T08:00:00Z) or this
    /// long ago (30s, 15m, 2h, 7d).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Only events forwarded by this swarm worker.
    #[arg(long, value_name = "NAME")]
    pub worker: Option<String>,
    /// Only events of this origin.
    #[arg(long, value_parser = ["local", "forwarded", "imported"])]
    pub origin: Option<String>,
    /// Only events whose raw line contains this text (case-insensitive).
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
    /// How many of the newest matching events to show (at most 1000).
    #[arg(short = 'n', long, default_value_t = 50, value_name = "N")]
    pub limit: u32,
    /// Keep printing new events as they are stored (Ctrl-C to stop).
    #[arg(short, long)]
    pub follow: bool,
    /// Print one JSON object per line (JSON lines) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `decnet logs import`.
#[derive(Args)]
pub struct ImportArgs {
    /// The file (`-` for standard input).
    pub file: PathBuf,
    /// Import lines that are not RFC 5424 as `unparsed` events of decky and service `-`
    /// instead of refusing the file.
    #[arg(long)]
    pub keep_unparsed: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `decnet attackers`: attacker addresses seen, most recent first.
#[derive(Args)]
pub struct AttackersArgs {
    /// Only addresses containing this text.
    #[arg(long, value_name = "TEXT")]
    pub ip: Option<String>,
    /// Only attackers that touched this service.
    #[arg(long, value_name = "SLUG")]
    pub service: Option<String>,
    /// Only attackers that touched this decky.
    #[arg(long, value_name = "NAME")]
    pub decky: Option<String>,
    /// How many to show (at most 1000).
    #[arg(short = 'n', long, default_value_t = 50, value_name = "N")]
    pub limit: u32,
    /// Keep printing attackers as they are first seen or seen again (Ctrl-C to stop).
    #[arg(short, long)]
    pub follow: bool,
    /// Print JSON instead of a table (with --follow: one object per line).
    #[arg(long)]
    pub json: bool,
}

/// How often `--follow` asks the database for new rows.
const FOLLOW_POLL: Duration = Duration::from_secs(1);
/// Lines per import batch.
const IMPORT_BATCH: usize = 1000;
/// Unparsable lines named in an import error.
const MAX_NAMED_LINES: usize = 10;

async fn open_store(ctx: &Ctx) -> Result<Arc<dyn Repository>> {
    super::db::open(&super::db::config(ctx)?).await
}

pub fn run(ctx: &Ctx, args: &LogsArgs) -> Result<Status> {
    match &args.command {
        Some(LogsCommand::Import(a)) => import(ctx, a),
        None => list(ctx, &args.list),
    }
}

fn filter_of(args: &ListArgs) -> Result<LogFilter> {
    let since = args
        .since
        .as_deref()
        .map(|s| {
            parse_since(s, Timestamp::now()).map_err(|e| invalid(format!("--since {s:?}: {e}")))
        })
        .transpose()?;
    let origin = match args.origin.as_deref() {
        None => None,
        Some("local") => Some(LogOrigin::Local),
        Some("forwarded") => Some(LogOrigin::Forwarded),
        Some("imported") => Some(LogOrigin::Imported),
        Some(o) => {
            return Err(invalid(format!(
                "--origin {o:?}: expected local, forwarded or imported"
            )));
        }
    };
    Ok(LogFilter {
        decky: args.decky.clone(),
        service: args.service.clone(),
        event_type: args.event_type.clone(),
        attacker_ip: args.attacker_ip.clone(),
        since,
        until: None,
        text: args.grep.clone(),
        origin,
        source_worker: args.worker.clone(),
        after_id: None,
    })
}

/// `WHEN` of `--since`: RFC 3339, or a duration before `now` (`90s`, `15m`, `2h`, `7d`).
fn parse_since(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    if let Ok(t) = Timestamp::parse_rfc3339(text) {
        return Ok(t);
    }
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| "expected RFC 3339 time or a duration like 15m".to_owned())?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => return Err("duration unit must be s, m, h or d".to_owned()),
    };
    Ok(now.minus(Duration::from_secs(secs)))
}

fn list(ctx: &Ctx, args: &ListArgs) -> Result<Status> {
    let filter = filter_of(args)?;
    if args.limit > MAX_PAGE_SIZE {
        return Err(invalid(format!(
            "--limit {}: at most {MAX_PAGE_SIZE}",
            args.limit
        )));
    }
    live::runtime()?.block_on(async {
        let store = open_store(ctx).await?;
        let mut rows = store
            .query_logs(&LogQuery {
                filter: filter.clone(),
                order: Order::NewestFirst,
                cursor: None,
                offset: 0,
                limit: args.limit,
            })
            .await
            .context("read logs")?;
        rows.reverse();
        let mut last = rows.last().map(|r| r.id);
        print_rows(&rows, args.json, true)?;
        if !args.follow {
            return Ok(Status::Ok);
        }
        if last.is_none() {
            last = store.max_log_id().await.context("read logs")?;
        }
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return Ok(Status::Ok),
                () = tokio::time::sleep(FOLLOW_POLL) => {}
            }
            loop {
                let page = store
                    .query_logs(&LogQuery {
                        filter: LogFilter {
                            after_id: last,
                            ..filter.clone()
                        },
                        order: Order::OldestFirst,
                        cursor: None,
                        offset: 0,
                        limit: MAX_PAGE_SIZE,
                    })
                    .await
                    .context("read logs")?;
                if let Some(r) = page.last() {
                    last = Some(r.id);
                }
                print_rows(&page, args.json, false)?;
                if page.len() < MAX_PAGE_SIZE as usize {
                    break;
                }
            }
        }
    })
}

fn print_rows(rows: &[LogRow], json: bool, header: bool) -> Result<()> {
    let columns = [
        "ID",
        "TIME (UTC)",
        "DECKY",
        "SERVICE",
        "EVENT",
        "ATTACKER",
        "DETAIL",
    ];
    print_page(rows, json, header, &columns, "no events", |r| {
        vec![
            r.id.to_string(),
            r.timestamp.to_rfc3339().unwrap_or_default(),
            r.decky.clone(),
            r.service.clone(),
            r.event_type.clone(),
            r.attacker_ip.clone(),
            detail(r),
        ]
    })
}

/// Prints `rows` as JSON lines, or as a table (with its header on the first page of a
/// listing, bare rows when following); `empty` when a first page has no row.
fn print_page<T: Serialize>(
    rows: &[T],
    json_lines: bool,
    header: bool,
    columns: &[&str],
    empty: &str,
    cells: impl Fn(&T) -> Vec<String>,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json_lines {
        for r in rows {
            serde_json::to_writer(&mut out, r)?;
            out.write_all(b"\n")?;
        }
        return Ok(out.flush()?);
    }
    if rows.is_empty() {
        if header {
            writeln!(out, "{empty}")?;
        }
        return Ok(());
    }
    let mut t = output::table(columns);
    if !header {
        t.load_preset(comfy_table::presets::NOTHING);
        t.set_header(Vec::<String>::new());
    }
    for r in rows {
        t.add_row(cells(r));
    }
    writeln!(out, "{t}")?;
    Ok(out.flush()?)
}

/// A short summary of an event: the credential, command, request or message.
fn detail(r: &LogRow) -> String {
    let f = |k: &str| r.fields.get(k).and_then(|v| v.as_str());
    let secret = f("secret_printable").map(str::to_owned).or_else(|| {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(f("secret_b64")?)
            .ok()?;
        Some(
            bytes
                .iter()
                .map(|&b| {
                    if (0x20..=0x7e).contains(&b) {
                        b as char
                    } else {
                        '?'
                    }
                })
                .collect::<String>(),
        )
    });
    let mut s = if let (Some(p), Some(s)) = (f("principal").or(f("username")), secret) {
        format!("{p} / {s}")
    } else if let Some(c) = f("command").or(f("cmd")) {
        c.to_owned()
    } else if let Some(p) = f("path") {
        format!("{} {p}", f("method").unwrap_or(""))
    } else {
        r.msg.clone().unwrap_or_default()
    };
    // Where it came from, and what a worker claimed that the master could not vouch for.
    let claim = match (f("claimed_decky"), f("claimed_service")) {
        (Some(d), Some(sv)) => Some(format!("claims {d}/{sv}")),
        (Some(d), None) => Some(format!("claims {d}")),
        (None, Some(sv)) => Some(format!("claims service {sv}")),
        (None, None) => None,
    };
    let tags: Vec<String> = [r.source_worker.as_ref().map(|w| format!("via {w}")), claim]
        .into_iter()
        .flatten()
        .collect();
    if !tags.is_empty() {
        s = format!("{s} [{}]", tags.join(", "));
    }
    let mut cut = s.len().min(80);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    if cut < s.len() {
        format!("{}…", &s[..cut])
    } else {
        s
    }
}

/// What an import did.
#[derive(Debug, Default, Serialize)]
struct ImportSummary {
    file: String,
    lines: u64,
    inserted: u64,
    duplicates: u64,
    unparsed: u64,
    blank: u64,
}

fn import(ctx: &Ctx, args: &ImportArgs) -> Result<Status> {
    let name = args.file.display().to_string();
    // Standard input is read once: keep it in a private temporary file for the two passes.
    let spooled;
    let path: &Path = if args.file == Path::new("-") {
        let mut tmp = tempfile::NamedTempFile::new().context("create a temporary file")?;
        std::io::copy(&mut std::io::stdin().lock(), &mut tmp).context("read standard input")?;
        spooled = tmp;
        spooled.path()
    } else {
        &args.file
    };
    let open = || -> Result<ImportReader<std::io::BufReader<std::fs::File>>> {
        let f = std::fs::File::open(path).map_err(|e| invalid(format!("{name}: {e}")))?;
        Ok(ImportReader::new(
            std::io::BufReader::new(f),
            &name,
            args.keep_unparsed,
            Timestamp::now(),
        ))
    };
    // Pass 1: check every line, so a bad file changes nothing.
    let mut check = open()?;
    while check.next_chunk()?.is_some() {}
    check.finish()?;
    let total = check.lines;
    let mut summary = ImportSummary {
        file: name.clone(),
        lines: check.lines,
        unparsed: check.unparsed,
        blank: check.blank,
        ..ImportSummary::default()
    };
    // Pass 2: store, batch by batch.
    let mut reader = open()?;
    live::runtime()?.block_on(async {
        let store = open_store(ctx).await?;
        let bus = open_bus(ctx, "decnet-import").await?;
        let ingester = Ingester::new(store, bus.clone());
        let progress = std::io::stderr().is_terminal() && !args.json;
        let started = Instant::now();
        let mut last_report = Instant::now();
        while let Some(chunk) = reader.next_chunk()? {
            let done = ingester
                .commit(&Origin::Imported, &chunk)
                .await
                .with_context(|| format!("store lines up to {}:{}", name, reader.lines))?;
            summary.inserted += done.inserted;
            summary.duplicates += done.duplicates;
            if progress && last_report.elapsed() > Duration::from_secs(1) {
                eprint!(
                    "\r{} / {total} lines ({:.0}/s)",
                    reader.lines,
                    reader.lines as f64 / started.elapsed().as_secs_f64()
                );
                last_report = Instant::now();
            }
        }
        if progress {
            eprint!("\r\x1b[K");
        }
        close_bus(bus.as_ref()).await;
        anyhow::Ok(())
    })?;
    if args.json {
        output::json(&summary)?;
    } else {
        println!(
            "{}: {} lines, {} events stored, {} already stored, {} unparsed, {} blank",
            summary.file,
            summary.lines,
            summary.inserted,
            summary.duplicates,
            summary.unparsed,
            summary.blank
        );
    }
    Ok(Status::Ok)
}

/// Reads an import file in batches of events, counting what it skips and refusing lines
/// longer than [`MAX_RAW_LINE`], lines that are not UTF-8 and (unless `keep_unparsed`)
/// lines that are not RFC 5424, naming their numbers.
struct ImportReader<R> {
    reader: R,
    name: String,
    keep_unparsed: bool,
    now: Timestamp,
    lines: u64,
    unparsed: u64,
    blank: u64,
    bad: Vec<String>,
    buf: Vec<u8>,
}

impl<R: std::io::BufRead> ImportReader<R> {
    fn new(reader: R, name: &str, keep_unparsed: bool, now: Timestamp) -> Self {
        ImportReader {
            reader,
            name: name.to_owned(),
            keep_unparsed,
            now,
            lines: 0,
            unparsed: 0,
            blank: 0,
            bad: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// The next batch, or `None` at the end of the file.
    fn next_chunk(&mut self) -> Result<Option<Vec<CollectedEvent>>> {
        let mut out = Vec::with_capacity(IMPORT_BATCH);
        while out.len() < IMPORT_BATCH {
            self.buf.clear();
            let n = std::io::Read::take(&mut self.reader, MAX_RAW_LINE as u64 + 2)
                .read_until(b'\n', &mut self.buf)
                .with_context(|| format!("read {}", self.name))?;
            if n == 0 {
                break;
            }
            self.lines += 1;
            let line_no = self.lines;
            if self.buf.last() != Some(&b'\n') && self.buf.len() > MAX_RAW_LINE {
                return Err(invalid(format!(
                    "{}:{line_no}: line longer than {MAX_RAW_LINE} bytes; nothing was imported",
                    self.name
                )));
            }
            while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
                self.buf.pop();
            }
            let Ok(text) = std::str::from_utf8(&self.buf) else {
                return Err(invalid(format!(
                    "{}:{line_no}: not UTF-8; nothing was imported",
                    self.name
                )));
            };
            if text.trim().is_empty() {
                self.blank += 1;
                continue;
            }
            let key = CollectedEvent::import_key(line_no, text);
            let (decky, service) = match decnet_wire::rfc5424::parse_line(text) {
                Ok(line) => (line.hostname, line.app_name),
                Err(e) => {
                    self.unparsed += 1;
                    if self.bad.len() < MAX_NAMED_LINES {
                        self.bad.push(format!("line {line_no}: {e}"));
                    }
                    ("-".to_owned(), "-".to_owned())
                }
            };
            out.push(CollectedEvent {
                key,
                decky,
                service,
                received: self.now,
                raw_line: text.to_owned(),
                claimed: Default::default(),
            });
        }
        Ok((!out.is_empty()).then_some(out))
    }

    /// After the last chunk: the error naming unparsable lines, unless they are kept.
    fn finish(&self) -> Result<()> {
        if self.unparsed == 0 || self.keep_unparsed {
            return Ok(());
        }
        let more = if self.unparsed > self.bad.len() as u64 {
            format!(" (and {} more)", self.unparsed - self.bad.len() as u64)
        } else {
            String::new()
        };
        Err(invalid(format!(
            "{}: {} line(s) are not RFC 5424: {}{more}; nothing was imported \
             (--keep-unparsed imports them as `unparsed` events)",
            self.name,
            self.unparsed,
            self.bad.join("; ")
        )))
    }
}

pub fn attackers(ctx: &Ctx, args: &AttackersArgs) -> Result<Status> {
    if args.limit > MAX_PAGE_SIZE {
        return Err(invalid(format!(
            "--limit {}: at most {MAX_PAGE_SIZE}",
            args.limit
        )));
    }
    let query = AttackerQuery {
        ip_contains: args.ip.clone(),
        service: args.service.clone(),
        decky: args.decky.clone(),
        offset: 0,
        limit: args.limit,
    };
    live::runtime()?.block_on(async {
        let store = open_store(ctx).await?;
        let rows = store
            .list_attackers(&query)
            .await
            .context("read attackers")?;
        if !args.follow {
            if args.json {
                return output::json(&rows).map(|()| Status::Ok);
            }
            print_attackers(&rows, true, false)?;
            return Ok(Status::Ok);
        }
        // Newest activity last, like `logs`; then what changes, as it changes.
        let mut seen: std::collections::HashMap<String, (Timestamp, u64)> = rows
            .iter()
            .map(|a| (a.ip.clone(), (a.last_seen, a.event_count)))
            .collect();
        let mut first: Vec<_> = rows;
        first.reverse();
        print_attackers(&first, !args.json, args.json)?;
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return Ok(Status::Ok),
                () = tokio::time::sleep(FOLLOW_POLL) => {}
            }
            // The newest page by last activity holds every attacker that changed since
            // the last poll (unless more than a page changed in one second).
            let page = store
                .list_attackers(&AttackerQuery {
                    limit: MAX_PAGE_SIZE,
                    ..query.clone()
                })
                .await
                .context("read attackers")?;
            let mut changed: Vec<_> = page
                .into_iter()
                .filter(|a| seen.get(&a.ip) != Some(&(a.last_seen, a.event_count)))
                .collect();
            changed.reverse();
            for a in &changed {
                seen.insert(a.ip.clone(), (a.last_seen, a.event_count));
            }
            if seen.len() > 4 * MAX_PAGE_SIZE as usize {
                // Bounded memory: forget all but the newest activity.
                let mut newest: Vec<_> = seen.into_iter().collect();
                newest.sort_by_key(|e| std::cmp::Reverse(e.1.0));
                newest.truncate(MAX_PAGE_SIZE as usize);
                seen = newest.into_iter().collect();
            }
            print_attackers(&changed, false, args.json)?;
        }
    })
}

fn print_attackers(rows: &[decnet_store::Attacker], header: bool, json_lines: bool) -> Result<()> {
    let columns = [
        "IP",
        "FIRST SEEN",
        "LAST SEEN",
        "EVENTS",
        "DECKIES",
        "SERVICES",
    ];
    print_page(rows, json_lines, header, &columns, "no attackers", |a| {
        vec![
            a.ip.clone(),
            a.first_seen.to_rfc3339().unwrap_or_default(),
            a.last_seen.to_rfc3339().unwrap_or_default(),
            a.event_count.to_string(),
            a.deckies.join(","),
            a.services.join(","),
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_micros(1_800_000_000_000_000);

    #[test]
    fn since_takes_times_and_durations() {
        assert_eq!(
            parse_since("90s", NOW).unwrap(),
            NOW.minus(Duration::from_secs(90))
        );
        assert_eq!(
            parse_since("2h", NOW).unwrap(),
            NOW.minus(Duration::from_secs(7200))
        );
        assert_eq!(
            parse_since("2026-11-27T08:00:00Z", NOW).unwrap(),
            Timestamp::parse_rfc3339("2026-11-27T08:00:00Z").unwrap()
        );
        for bad in ["", "m", "5w", "yesterday", "-5m"] {
            assert!(parse_since(bad, NOW).is_err(), "{bad}");
        }
    }

    fn row(fields: serde_json::Value, worker: Option<&str>) -> LogRow {
        LogRow {
            id: 1,
            dedup_key: "k".into(),
            timestamp: NOW,
            decky: "-".into(),
            service: "-".into(),
            event_type: "auth_attempt".into(),
            attacker_ip: "203.0.113.9".into(),
            severity: Some(6),
            fields: fields.as_object().cloned().unwrap_or_default(),
            msg: None,
            raw_line: String::new(),
            source_worker: worker.map(str::to_owned),
            trace_id: None,
            span_id: None,
            origin: LogOrigin::Forwarded,
        }
    }

    #[test]
    fn detail_names_the_worker_and_what_it_claimed() {
        let cred = serde_json::json!({"principal": "root", "secret_b64": "aHVudGVyMg=="});
        assert_eq!(
            detail(&row(cred.clone(), Some("w1"))),
            "root / hunter2 [via w1]"
        );
        let mut claimed = cred;
        claimed["claimed_decky"] = "db-01".into();
        claimed["claimed_service"] = "mysql".into();
        assert_eq!(
            detail(&row(claimed.clone(), Some("w1"))),
            "root / hunter2 [via w1, claims db-01/mysql]"
        );
        claimed.as_object_mut().unwrap().remove("claimed_decky");
        assert_eq!(
            detail(&row(claimed, Some("w1"))),
            "root / hunter2 [via w1, claims service mysql]"
        );
        let local = serde_json::json!({"command": "id"});
        assert_eq!(detail(&row(local, None)), "id");
    }

    const GOOD: &str = "<134>1 2026-11-27T08:00:00.000001+00:00 decky-01 ssh - auth_attempt [relay@55555 src_ip=\"203.0.113.9\"]";

    fn read_import_from(
        reader: &[u8],
        name: &str,
        keep: bool,
        now: Timestamp,
    ) -> Result<ImportFileForTest> {
        let mut r = ImportReader::new(reader, name, keep, now);
        let mut events = Vec::new();
        while let Some(c) = r.next_chunk()? {
            events.extend(c);
        }
        r.finish()?;
        Ok(ImportFileForTest {
            events,
            lines: r.lines,
            unparsed: r.unparsed,
            blank: r.blank,
        })
    }

    struct ImportFileForTest {
        events: Vec<CollectedEvent>,
        lines: u64,
        unparsed: u64,
        blank: u64,
    }

    #[test]
    fn import_reads_decky_and_service_from_the_line() {
        let text = format!("{GOOD}\n\n{GOOD}\r\n");
        let f = read_import_from(text.as_bytes(), "t", false, NOW).unwrap();
        assert_eq!((f.lines, f.blank, f.unparsed), (3, 1, 0));
        assert_eq!(f.events.len(), 2);
        assert_eq!(f.events[0].decky, "decky-01");
        assert_eq!(f.events[0].service, "ssh");
        assert_eq!(f.events[1].raw_line, GOOD);
        // Same text on two lines: two events (line numbers differ), stable keys.
        assert_ne!(f.events[0].key, f.events[1].key);
        let again = read_import_from(text.as_bytes(), "t", false, NOW).unwrap();
        assert_eq!(again.events[0].key, f.events[0].key);
    }

    #[test]
    fn import_refuses_a_bad_file_naming_the_lines() {
        let text = format!("{GOOD}\nnot syslog\n{GOOD}\nalso not\n");
        let err = read_import_from(text.as_bytes(), "cap.log", false, NOW)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("cap.log: 2 line(s)"), "{err}");
        assert!(err.contains("line 2") && err.contains("line 4"), "{err}");
        let kept = read_import_from(text.as_bytes(), "cap.log", true, NOW).unwrap();
        assert_eq!((kept.events.len(), kept.unparsed), (4, 2));
        assert_eq!(kept.events[1].decky, "-");

        let long = format!("{}\n", "x".repeat(MAX_RAW_LINE + 5));
        let err = read_import_from(long.as_bytes(), "big", true, NOW)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("big:1: line longer"), "{err}");
        let bad_utf8: &[u8] = b"<134>1 - h a - m - \xff\n";
        assert!(read_import_from(bad_utf8, "u", true, NOW).is_err());
    }
}
