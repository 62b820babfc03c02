#!/usr/bin/env bash
# Provision the database clients the redis/mysql/postgres/vnc live tests and the
# honeypot-db benchmark use: redis-cli and redis-benchmark (redis-tools), redis-server
# (the benchmark's reference daemon, not started here: the benchmark starts its own),
# the mysql client (mariadb-client), psql (postgresql-client) and nmap.
# Installs only what is missing; starts nothing; prints no variables.
set -euo pipefail

log() { echo "40-clients-db: $*" >&2; }

# command -> Debian package that provides it
declare -A WANT=(
    [redis-cli]=redis-tools
    [redis-benchmark]=redis-tools
    [redis-server]=redis-server
    [mysql]=mariadb-client
    [psql]=postgresql-client
    [nmap]=nmap
)

missing=()
for cmd in "${!WANT[@]}"; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        pkg="${WANT[$cmd]}"
        [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    log "all clients present"
    exit 0
fi

log "installing ${missing[*]}"
install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}
# Installing redis-server must not leave a daemon on 6379 behind (policy-rc.d 101 =
# "action forbidden" keeps the package scripts from starting services).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
fi
cleanup() { if ((created_policy)); then rm -f "$policy"; fi; }
trap cleanup EXIT

if ! install "${missing[@]}"; then
    DEBIAN_FRONTEND=noninteractive apt-get update >&2
    install "${missing[@]}"
fi

for cmd in "${!WANT[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || { log "$cmd still missing"; exit 1; }
done
log "done"
