#!/usr/bin/env bash
# Provision Docker for the runtime's live tests: the Debian engine (docker.io) when no
# engine answers, docker-compose v1 (the deploy benchmark's reference) when missing, and a
# running dockerd (started in the background when nothing manages it; an engine that
# already answers is reused). Prints the socket for the tests.
set -euo pipefail

SOCKET=/var/run/docker.sock

log() { echo "10-docker: $*" >&2; }

apt_install() {
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; then
        DEBIAN_FRONTEND=noninteractive apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
    fi
}

engine_answers() { docker -H "unix://$SOCKET" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

missing=()
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    engine_answers || missing+=(docker.io)
fi
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# The live tests build their lab with ip(8) and network namespaces.
command -v ip >/dev/null 2>&1 || missing+=(iproute2)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

if ! engine_answers; then
    if [ -d /run/systemd/system ] && systemctl start docker >&2 2>/dev/null; then
        log "started docker.service"
    else
        log "starting dockerd in the background (log: /var/log/dockerd.log)"
        setsid nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
    fi
    for _ in $(seq 1 120); do
        engine_answers && break
        sleep 0.5
    done
fi
if ! engine_answers; then
    log "the Docker engine did not come up; log follows"
    tail -n 50 /var/log/dockerd.log >&2 || true
    exit 1
fi
log "docker $(docker -H "unix://$SOCKET" version --format '{{.Server.Version}}') answers on $SOCKET"

echo "DECNET_TEST_DOCKER=$SOCKET"
