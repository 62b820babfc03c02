-- DECNET store, initial schema (SQLite). Timestamps are UTC microseconds since the
-- Unix epoch in INTEGER columns; JSON is TEXT. Keep in step with ../postgres.

CREATE TABLE fleet_deckies (
    host_uuid     TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    services      TEXT    NOT NULL,
    decky_config  TEXT,
    decky_ip      TEXT,
    state         TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN
        ('pending', 'running', 'failed', 'torn_down', 'degraded', 'tearing_down',
         'teardown_failed', 'unknown')),
    last_error    TEXT,
    compose_hash  TEXT,
    last_seen     INTEGER,
    last_observed INTEGER,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (host_uuid, name)
);
CREATE INDEX fleet_deckies_state ON fleet_deckies (state);
CREATE INDEX fleet_deckies_name ON fleet_deckies (name);

CREATE TABLE swarm_hosts (
    uuid                     TEXT    NOT NULL PRIMARY KEY,
    name                     TEXT    NOT NULL UNIQUE,
    address                  TEXT    NOT NULL DEFAULT '',
    agent_port               INTEGER NOT NULL CHECK (agent_port BETWEEN 0 AND 65535),
    status                   TEXT    NOT NULL DEFAULT 'enrolled' CHECK (status IN
        ('enrolled', 'active', 'unreachable', 'decommissioning', 'decommissioned')),
    last_heartbeat           INTEGER,
    client_cert_fingerprint  TEXT    UNIQUE,
    updater_cert_fingerprint TEXT,
    cert_bundle_path         TEXT    NOT NULL DEFAULT '',
    enrolled_at              INTEGER NOT NULL,
    notes                    TEXT,
    use_ipvlan               BOOLEAN NOT NULL DEFAULT 0,
    agent_version            TEXT
);
CREATE INDEX swarm_hosts_status ON swarm_hosts (status);

CREATE TABLE revoked_fingerprints (
    fingerprint TEXT    NOT NULL PRIMARY KEY,
    host_uuid   TEXT,
    revoked_at  INTEGER NOT NULL,
    reason      TEXT
);

CREATE TABLE decky_shards (
    host_uuid    TEXT    NOT NULL REFERENCES swarm_hosts (uuid) ON DELETE CASCADE,
    decky_name   TEXT    NOT NULL,
    services     TEXT    NOT NULL,
    decky_config TEXT,
    decky_ip     TEXT,
    state        TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN
        ('pending', 'running', 'failed', 'torn_down', 'degraded', 'tearing_down',
         'teardown_failed', 'unknown')),
    last_error   TEXT,
    last_seen    INTEGER,
    updated_at   INTEGER NOT NULL,
    PRIMARY KEY (host_uuid, decky_name)
);
CREATE INDEX decky_shards_state ON decky_shards (state);

CREATE TABLE enrollment_tokens (
    token_sha256 TEXT    NOT NULL PRIMARY KEY,
    host_uuid    TEXT    NOT NULL REFERENCES swarm_hosts (uuid) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER
);
CREATE INDEX enrollment_tokens_host ON enrollment_tokens (host_uuid);
CREATE INDEX enrollment_tokens_expires ON enrollment_tokens (expires_at);

CREATE TABLE logs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key     TEXT    NOT NULL UNIQUE,
    timestamp     INTEGER NOT NULL,
    decky         TEXT    NOT NULL,
    service       TEXT    NOT NULL,
    event_type    TEXT    NOT NULL,
    attacker_ip   TEXT    NOT NULL,
    severity      INTEGER,
    fields        TEXT    NOT NULL,
    msg           TEXT,
    raw_line      TEXT    NOT NULL,
    source_worker TEXT,
    trace_id      TEXT,
    span_id       TEXT
);
CREATE INDEX logs_timestamp ON logs (timestamp);
CREATE INDEX logs_decky ON logs (decky);
CREATE INDEX logs_service ON logs (service);
CREATE INDEX logs_event_type ON logs (event_type);
CREATE INDEX logs_attacker_ip ON logs (attacker_ip);

CREATE TABLE attackers (
    uuid        TEXT    NOT NULL PRIMARY KEY,
    ip          TEXT    NOT NULL UNIQUE,
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    event_count INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX attackers_last_seen ON attackers (last_seen);

CREATE TABLE attacker_services (
    ip      TEXT NOT NULL REFERENCES attackers (ip) ON DELETE CASCADE,
    service TEXT NOT NULL,
    PRIMARY KEY (ip, service)
);
CREATE INDEX attacker_services_service ON attacker_services (service);

CREATE TABLE attacker_deckies (
    ip    TEXT NOT NULL REFERENCES attackers (ip) ON DELETE CASCADE,
    decky TEXT NOT NULL,
    PRIMARY KEY (ip, decky)
);
CREATE INDEX attacker_deckies_decky ON attacker_deckies (decky);

CREATE TABLE credentials (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    attacker_ip      TEXT    NOT NULL,
    attacker_uuid    TEXT,
    decky_name       TEXT    NOT NULL,
    service          TEXT    NOT NULL,
    principal        TEXT,
    principal_key    TEXT    NOT NULL,
    secret_kind      TEXT    NOT NULL,
    secret_sha256    TEXT    NOT NULL,
    secret_b64       TEXT,
    secret_printable TEXT,
    outcome          TEXT,
    fields           TEXT    NOT NULL,
    first_seen       INTEGER NOT NULL,
    last_seen        INTEGER NOT NULL,
    attempt_count    INTEGER NOT NULL DEFAULT 1,
    UNIQUE (attacker_ip, decky_name, service, secret_kind, secret_sha256, principal_key)
);
CREATE INDEX credentials_sha_service ON credentials (secret_sha256, service);
CREATE INDEX credentials_principal_service ON credentials (principal, service);
CREATE INDEX credentials_last_seen ON credentials (last_seen);

CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    attacker_ip TEXT    NOT NULL,
    decky       TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    sha256      TEXT    NOT NULL,
    stored_path TEXT    NOT NULL,
    size        INTEGER NOT NULL,
    observed_at INTEGER NOT NULL,
    meta        TEXT    NOT NULL,
    UNIQUE (attacker_ip, decky, service, sha256)
);
CREATE INDEX artifacts_ip_time ON artifacts (attacker_ip, observed_at);

CREATE TABLE users (
    uuid                 TEXT    NOT NULL PRIMARY KEY,
    username             TEXT    NOT NULL UNIQUE,
    password_hash        TEXT    NOT NULL,
    role                 TEXT    NOT NULL CHECK (role IN ('admin', 'viewer')),
    must_change_password BOOLEAN NOT NULL DEFAULT 0,
    tokens_valid_from    INTEGER,
    created_at           INTEGER NOT NULL
);

CREATE TABLE state (
    "key"   TEXT NOT NULL PRIMARY KEY,
    "value" TEXT NOT NULL
);
