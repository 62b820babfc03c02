#!/usr/bin/env bash
# Provision PostgreSQL for the decnet-store contract tests: install the Debian package
# when missing, make sure one cluster exists and runs (idempotent: a running cluster is
# reused), create the login role `decnet_test` (CREATEDB) and its database, and print
# the URL. Each test creates and drops its own database through this role.
set -euo pipefail

ROLE=decnet_test
PASSWORD=decnet_test
DB=decnet_test

log() { echo "20-postgres: $*" >&2; }

apt_install() {
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; then
        DEBIAN_FRONTEND=noninteractive apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
    fi
}

if ! command -v pg_lsclusters >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    log "installing postgresql"
    apt_install postgresql
fi

# The newest installed server version.
VERSION="$(ls /usr/lib/postgresql | sort -n | tail -n 1)"

cluster_line() { pg_lsclusters -h 2>/dev/null | awk -v v="$VERSION" '$1 == v { print; exit }'; }

if [ -z "$(cluster_line)" ]; then
    log "creating cluster $VERSION/main"
    pg_createcluster "$VERSION" main >&2
fi

read -r _ CLUSTER PORT STATUS _ < <(cluster_line)

if [ "$STATUS" != "online" ]; then
    log "starting cluster $VERSION/$CLUSTER on port $PORT"
    # pg_ctlcluster refuses to start a running cluster; re-check instead of failing.
    pg_ctlcluster "$VERSION" "$CLUSTER" start >&2 || true
fi

for _ in $(seq 1 100); do
    pg_isready -q -h 127.0.0.1 -p "$PORT" && break
    sleep 0.1
done
if ! pg_isready -q -h 127.0.0.1 -p "$PORT"; then
    log "postgresql did not come up; log follows"
    tail -n 50 "/var/log/postgresql/postgresql-$VERSION-$CLUSTER.log" >&2 || true
    exit 1
fi
log "postgresql $VERSION/$CLUSTER is up on port $PORT"

as_postgres() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PORT" "$@"; }

as_postgres -d postgres >&2 <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
    ELSE
        ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
    END IF;
END
\$\$;
SQL

if [ "$(as_postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != "1" ]; then
    log "creating database $DB"
    as_postgres -d postgres -c "CREATE DATABASE $DB OWNER $ROLE" >&2
fi

echo "DECNET_TEST_PG_URL=postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DB"
