#!/usr/bin/env bash
# Provision the openssl command line for the swarm tests: `openssl s_client -tls1_1`
# shows that the agent refuses TLS 1.1. Nothing is started here.
set -euo pipefail

log() { echo "45-openssl: $*" >&2; }

apt_install() {
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; then
        DEBIAN_FRONTEND=noninteractive apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
    fi
}

if ! command -v openssl >/dev/null 2>&1; then
    log "installing openssl"
    apt_install openssl
fi

log "$(openssl version)"
echo "DECNET_TEST_OPENSSL=$(command -v openssl)"
