#!/usr/bin/env bash
# Provision the real clients the http/https/ftp/smtp live tests and the http benchmark use:
# curl, nmap (-sV identification), openssl (s_client), python3 (ftplib, smtplib), wrk and
# nginx-light (the benchmark's reference server; installed, never started here).
set -euo pipefail

log() { echo "42-clients-web-mail: $*" >&2; }

missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v nmap >/dev/null 2>&1 || missing+=(nmap)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >&2; then
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update >&2
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${missing[@]}" >&2
    fi
    # The Debian package enables and may start nginx on port 80; the benchmark runs its own
    # instance on a private port, and port 80 must stay free for nothing else.
    if [ -x /usr/sbin/nginx ] && [ -f /run/nginx.pid ]; then
        log "stopping the packaged nginx the install started"
        /usr/sbin/nginx -s stop >&2 2>&1 || true
    fi
else
    log "curl, nmap, openssl, python3, wrk and nginx-light already installed"
fi
