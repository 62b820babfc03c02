#!/usr/bin/env bash
# Provision systemd-analyze and systemd-tmpfiles for the decnet-systemd tests: `verify`
# checks every rendered unit, `security --offline=true` scores its sandbox, and
# `systemd-tmpfiles --root` applies the tmpfiles entry to a scratch root. All work without
# systemd running as PID 1, so nothing is started here.
set -euo pipefail

log() { echo "15-systemd: $*" >&2; }

apt_install() {
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; then
        DEBIAN_FRONTEND=noninteractive apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
    fi
}

if ! command -v systemd-analyze >/dev/null 2>&1; then
    log "installing systemd (for systemd-analyze)"
    apt_install systemd
fi

ANALYZE="$(command -v systemd-analyze)"
log "$("$ANALYZE" --version | head -n 1)"
echo "DECNET_TEST_SYSTEMD_ANALYZE=$ANALYZE"
echo "DECNET_TEST_SYSTEMD_TMPFILES=$(command -v systemd-tmpfiles)"
