#!/usr/bin/env bash
# Provision logrotate for the decnet-systemd test that parses the rendered logrotate entry
# (`logrotate --debug`: reads and checks the configuration, rotates nothing).
set -euo pipefail

log() { echo "16-logrotate: $*" >&2; }

apt_install() {
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; then
        DEBIAN_FRONTEND=noninteractive apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
    fi
}

if ! command -v logrotate >/dev/null 2>&1; then
    log "installing logrotate"
    apt_install logrotate
fi

echo "DECNET_TEST_LOGROTATE=$(command -v logrotate)"
