#!/usr/bin/env bash
# Provision nats-server for the bus contract tests and the bus benchmark: install the
# Debian package when missing, start one server on loopback on a fixed unusual port
# (idempotent: a server already answering there is reused), print its URL.
set -euo pipefail

PORT="${DECNET_TEST_NATS_PORT:-14222}"
HOST=127.0.0.1
STATE_DIR="${DECNET_TEST_NATS_DIR:-/tmp/decnet-ci-nats}"

log() { echo "30-nats: $*" >&2; }

if ! command -v nats-server >/dev/null 2>&1; then
    log "installing nats-server"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nats-server >&2; then
        DEBIAN_FRONTEND=noninteractive apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nats-server >&2
    fi
fi

# True when something accepts TCP connections on HOST:PORT and greets like NATS (INFO).
answering() {
    local line
    # Braces keep the redirection of the failed-connect message local (a bare `exec ...
    # 2>/dev/null` would silence the whole script).
    { exec 3<>"/dev/tcp/$HOST/$PORT"; } 2>/dev/null || return 1
    IFS= read -r -t 2 line <&3 || line=""
    exec 3>&- 3<&-
    [[ "$line" == INFO* ]]
}

if answering; then
    log "nats-server already answering on $HOST:$PORT"
else
    mkdir -p "$STATE_DIR"
    log "starting nats-server on $HOST:$PORT (log $STATE_DIR/nats.log)"
    setsid nats-server -a "$HOST" -p "$PORT" -P "$STATE_DIR/nats.pid" \
        -l "$STATE_DIR/nats.log" </dev/null >/dev/null 2>&1 &
    for _ in $(seq 1 50); do
        answering && break
        sleep 0.1
    done
    if ! answering; then
        log "nats-server did not come up; log follows"
        cat "$STATE_DIR/nats.log" >&2 || true
        exit 1
    fi
    log "nats-server is up"
fi

echo "DECNET_TEST_NATS_URL=nats://$HOST:$PORT"
