#!/usr/bin/env bash
# Provision the real clients the ssh/telnet live tests and the ssh benchmark drive:
# OpenSSH client, sshpass, OpenSSH server (binary only: the benchmark starts its own sshd
# with a throwaway config; nothing is started here), hydra, nmap, telnet and expect-free
# Python pty driving needs nothing more. Installs only what is missing; prints no
# variables.
set -euo pipefail

log() { echo "41-clients-ssh: $*" >&2; }

declare -A want=(
    [ssh]=openssh-client
    [ssh-keyscan]=openssh-client
    [sshpass]=sshpass
    [/usr/sbin/sshd]=openssh-server
    [hydra]=hydra
    [nmap]=nmap
    [telnet]=telnet
)
missing=()
for tool in "${!want[@]}"; do
    if ! command -v "$tool" >/dev/null 2>&1 && [[ ! -x "$tool" ]]; then
        missing+=("${want[$tool]}")
    fi
done
if ((${#missing[@]} == 0)); then
    log "all clients present"
    exit 0
fi
# De-duplicate package names.
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)
log "installing ${pkgs[*]}"
# openssh-server's postinst would start sshd on port 22 under systemd; there is no
# systemd here, and policy-rc.d keeps it from being started anyway.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
    trap 'rm -f "$policy"' EXIT
fi
install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "${pkgs[@]}" >&2
}
if ! install; then
    DEBIAN_FRONTEND=noninteractive apt-get update -o DPkg::Lock::Timeout=600 >&2
    install
fi
log "done"
