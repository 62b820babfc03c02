//! [`RowCache`]: the host's rows as the worker's passes see them, read in full only when
//! something changed.

use std::time::{Duration, Instant};

use decnet_core::HostUuid;
use decnet_store::{FleetDecky, FleetRepo, HostScope};

use crate::Result;

/// How long the worker trusts its cached rows before it reads them in full again even
/// though no `updated_at` moved (a safety net against edits made behind the store's back).
pub const FULL_LIST_PERIOD: Duration = Duration::from_secs(600);

/// The full rows of one host, refreshed by a light listing.
///
/// A full listing decodes every row's services, address and config; at 10 000 rows that
/// is most of a pass (see `docs/benchmarks.md`). Every write through the store moves a
/// row's `updated_at`, except the `last_observed` stamp, so when the light listing
/// ([`FleetRepo::list_fleet_summary`]: names, states, stamps, `updated_at`) shows the same
/// rows with the same `updated_at` as the cached full rows, the cached config columns are
/// still the stored ones: the cache takes the fresh states and stamps and is used as is.
/// Any difference (a row added, removed or rewritten by anyone, this pass's own writes
/// included) costs one full listing. Either way a pass reads the rows with one query
/// when nothing changed.
#[derive(Debug)]
pub struct RowCache {
    host: HostUuid,
    rows: Vec<FleetDecky>,
    full_at: Option<Instant>,
    full_period: Duration,
    full_lists: u64,
}

impl RowCache {
    /// An empty cache for `host`: the first refresh reads the rows in full.
    pub fn new(host: HostUuid) -> Self {
        RowCache {
            host,
            rows: Vec::new(),
            full_at: None,
            full_period: FULL_LIST_PERIOD,
            full_lists: 0,
        }
    }

    /// The same cache with another full-read period (zero: always read in full).
    #[must_use]
    pub fn with_full_period(mut self, period: Duration) -> Self {
        self.full_period = period;
        self
    }

    /// How many full listings were made.
    pub fn full_lists(&self) -> u64 {
        self.full_lists
    }

    /// The host's rows as stored now.
    ///
    /// # Errors
    /// The store's error (the cache is then emptied, so the next refresh reads in full).
    pub async fn refresh(&mut self, repo: &dyn FleetRepo) -> Result<&[FleetDecky]> {
        let scope = HostScope::Host(self.host.clone());
        let due = self
            .full_at
            .is_none_or(|at| at.elapsed() >= self.full_period);
        if !due {
            let summary = match repo.list_fleet_summary(&scope).await {
                Ok(s) => s,
                Err(e) => {
                    self.clear();
                    return Err(e.into());
                }
            };
            // Both listings are ordered by (name, host), so a zip compares them.
            let same = summary.len() == self.rows.len()
                && summary.iter().zip(&self.rows).all(|(s, r)| {
                    s.name == r.name && s.host_uuid == r.host_uuid && s.updated_at == r.updated_at
                });
            if same {
                for (s, r) in summary.into_iter().zip(self.rows.iter_mut()) {
                    r.state = s.state;
                    r.last_observed = s.last_observed;
                }
                return Ok(&self.rows);
            }
        }
        match repo.list_fleet(&scope).await {
            Ok(rows) => {
                self.rows = rows;
                self.full_at = Some(Instant::now());
                self.full_lists += 1;
                Ok(&self.rows)
            }
            Err(e) => {
                self.clear();
                Err(e.into())
            }
        }
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.full_at = None;
    }
}
