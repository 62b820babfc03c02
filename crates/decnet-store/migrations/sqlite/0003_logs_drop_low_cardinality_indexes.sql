-- Issue 8: `logs` is written at tens of thousands of rows per second; every index costs
-- a B-tree insert per row. Service and event type have a handful of values each: a
-- filter on them scans by id (pages are id-ordered) as fast as through the index, so
-- their indexes are dropped. Kept: dedup_key (idempotency), timestamp (time windows),
-- decky and attacker_ip (selective filters). Keep in step with ../postgres.
DROP INDEX IF EXISTS logs_service;
DROP INDEX IF EXISTS logs_event_type;
