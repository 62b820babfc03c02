//! decnet-store integration tests: one contract suite, run unchanged against the
//! in-memory double, SQLite and PostgreSQL, plus backend-specific checks.

// Test fixtures build known-good values; a panic is the right failure there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cancellation;
mod contract;
mod harness;
mod sqlite_only;

/// Generates one `#[tokio::test]` per contract case for a backend whose harness
/// function in [`harness`] has the backend's name.
macro_rules! backend_tests {
    ($backend:ident) => {
        mod $backend {
            backend_tests!(@cases $backend;
                fleet_upsert_is_on_conflict,
                fleet_host_scoping,
                fleet_summary_is_the_light_view_of_the_listing,
                fleet_update_returns_previous_state,
                fleet_concurrent_updates_chain_previous_states,
                fleet_round_trips_every_column,
                swarm_hosts_crud_and_conflicts,
                swarm_host_delete_removes_shards_and_tokens,
                stale_hosts_become_unreachable,
                revoked_fingerprints,
                shard_upsert_is_host_scoped,
                shard_snapshot_replacement,
                heartbeat_batches,
                token_single_use_and_expiry,
                token_concurrent_consumption_is_single,
                log_batch_idempotent_and_atomic,
                log_filters,
                log_pagination,
                log_page_size_is_capped,
                credential_dedup_counting,
                attackers_aggregate,
                artifacts_record_and_list,
                users_crud,
                state_kv,
                oversize_input_is_refused,
                ingest_replay_changes_nothing,
                ingest_duplicates_within_batch,
                ingest_partial_overlap_counts_only_new,
                ingest_attacker_sets_union,
                ingest_origin_round_trips,
                log_filters_origin_worker_after_id,
                ingest_bad_event_writes_nothing,
                ingest_agrees_with_the_separate_calls,
                ingest_large_batch,
            );
        }
    };
    (@cases $backend:ident; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() -> anyhow::Result<()> {
                crate::harness::$backend(crate::contract::$case).await
            }
        )*
    };
}

backend_tests!(memory);
backend_tests!(sqlite);
backend_tests!(postgres);
