#!/usr/bin/env bash
# Provision the tools the decnet-systemd polkit tests use to evaluate the rendered rule
# 50-decnet-reaper.rules: node (a harness runs the rule against fake action/subject
# objects) and polkitd itself with pkcheck, on a private D-Bus system bus the test starts
# (dbus-daemon) inside a mount namespace of its own (unshare, setpriv). Nothing is started
# here and the host's polkit configuration is never touched.
set -euo pipefail

log() { echo "17-polkit: $*" >&2; }

apt_install() {
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2; then
        DEBIAN_FRONTEND=noninteractive apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
    fi
}

missing=()
[ -x /usr/lib/polkit-1/polkitd ] && command -v pkcheck >/dev/null 2>&1 || missing+=(polkitd)
command -v dbus-daemon >/dev/null 2>&1 || missing+=(dbus-daemon)
command -v unshare >/dev/null 2>&1 && command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
command -v node >/dev/null 2>&1 || command -v nodejs >/dev/null 2>&1 || missing+=(nodejs)
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

log "polkitd $(dpkg-query -W -f='${Version}' polkitd 2>/dev/null || echo '?'), node $(node --version 2>/dev/null || nodejs --version)"
echo "DECNET_TEST_NODE=$(command -v node || command -v nodejs)"
echo "DECNET_TEST_POLKITD=/usr/lib/polkit-1/polkitd"
echo "DECNET_TEST_PKCHECK=$(command -v pkcheck)"
echo "DECNET_TEST_DBUS_DAEMON=$(command -v dbus-daemon)"
