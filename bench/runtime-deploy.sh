#!/usr/bin/env bash
# Benchmark of the Docker runtime (run as root, with Docker and docker-compose v1:
# .ci/provision/10-docker.sh).
#
#   bench/runtime-deploy.sh            build, measure, print the markdown section
#   bench/runtime-deploy.sh --write    ... and replace our section of docs/benchmarks.md
#
# Measures, in one run on this machine, on a lab veth pair the script creates (198.18.212.0/24,
# never the operator's LAN) and removes at the end:
#   - wall time from nothing to all running of 20 deckies x 3 services (ssh, http, redis:
#     80 containers), `decnet deploy` against `docker-compose up -d` (compose v1, Debian)
#     on the compose file that very deploy exported (same images, same containers), runs
#     alternating, everything removed between runs; compose's time includes creating the
#     external network it needs (decnet's includes network, hairpin and state);
#   - memory of the idle 20-decky fleet: Pss of every decky process plus its
#     containerd-shim, per decky;
#   - `nmap -O` from the lab namespace against a linux-family and a windows-family decky.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
WRITE=0
[ "${1:-}" = "--write" ] && WRITE=1
RUNS="${BENCH_RUNS:-5}"
N=20
PREFIX=198.18.212
PARENT=dnbench0
PEER=dnbench0p
NS=dnbench
DATA="$(mktemp -d /tmp/decnet-bench.XXXXXX)"
WORK="$(mktemp -d /tmp/decnet-bench-work.XXXXXX)"

log() { echo "runtime-deploy: $*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { log "missing $1 (run .ci/provision/10-docker.sh)"; exit 1; }; }
need docker
need docker-compose
need nmap
[ "$(id -u)" = 0 ] || { log "run as root (veth, namespace, hairpin)"; exit 1; }

TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "building decnet (release) and the static decky binary"
    cargo build --release -p decnet >&2
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --profile decky --target "$TRIPLE" \
        -p decnet-honeypot --bin decnet-decky >&2
fi
DECNET="$ROOT/target/release/decnet"
JOBS="$("$DECNET" deploy --help | grep -e '--jobs' | sed -n 's/.*\[default: \([0-9]*\)\].*/\1/p')"
export DECNET_DECKY_BIN="$ROOT/target/$TRIPLE/decky/decnet-decky"
D() { "$DECNET" --data-dir "$DATA" "$@"; }
PROJECT="$(printf '%s' "$DATA" | sha256sum | cut -c1-8)"
PROJECT="decnet-$PROJECT"
NETWORK="${PROJECT//-/_}_lan"

cleanup() {
    D teardown --all >/dev/null 2>&1 || true
    if [ -f "$WORK/compose.yml" ]; then
        docker-compose -p "$PROJECT" -f "$WORK/compose.yml" down -t 1 >/dev/null 2>&1 || true
    fi
    for _ in 1 2 3 4 5; do
        docker network rm "$NETWORK" >/dev/null 2>&1 || true
        docker network inspect "$NETWORK" >/dev/null 2>&1 || break
        sleep 1
    done
    ip link del "$PARENT" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$DATA" "$WORK"
}
trap cleanup EXIT

ip netns add "$NS"
ip link add "$PARENT" type veth peer name "$PEER"
ip link set "$PEER" netns "$NS"
ip link set "$PARENT" up
ip -n "$NS" addr add "$PREFIX.1/24" dev "$PEER"
ip -n "$NS" link set "$PEER" up
ip -n "$NS" link set lo up

DEPLOY=(deploy -n "$N" --services ssh,http,redis --interface "$PARENT" --subnet "$PREFIX.0/24"
    --seed 1)

D image build >&2
log "warm-up deploy (creates the instance key; its export is compose's input)"
D "${DEPLOY[@]}" >/dev/null
cp "$DATA/lib/decnet-compose.yml" "$WORK/compose.yml"
SUBNET_ARGS=(--subnet "$PREFIX.0/24" --gateway "$PREFIX.1"
    --ip-range "$(sed -n 's/.*--ip-range \([^ ]*\).*/\1/p' "$WORK/compose.yml")")
D teardown --all >/dev/null

all_running() {
    [ "$(docker ps -q --filter "label=com.docker.compose.project=$PROJECT" \
        --filter status=running | wc -l)" -eq $((N * 4)) ]
}

now() { date +%s.%N; }
DECNET_T=()
COMPOSE_T=()
for i in $(seq 1 "$RUNS"); do
    t0=$(now)
    D "${DEPLOY[@]}" >/dev/null
    all_running || { log "decnet run $i: not all running"; exit 1; }
    t1=$(now)
    DECNET_T+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')")
    D teardown --all >/dev/null

    t0=$(now)
    docker network create -d macvlan -o parent="$PARENT" "${SUBNET_ARGS[@]}" \
        --label decnet.managed=true "$NETWORK" >/dev/null
    docker-compose -p "$PROJECT" -f "$WORK/compose.yml" up -d >/dev/null 2>&1
    until all_running; do sleep 0.05; done
    t1=$(now)
    COMPOSE_T+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')")
    docker-compose -p "$PROJECT" -f "$WORK/compose.yml" down -t 1 >/dev/null 2>&1
    until docker network rm "$NETWORK" >/dev/null 2>&1; do sleep 0.5; done
    log "run $i: decnet ${DECNET_T[-1]} s, docker-compose ${COMPOSE_T[-1]} s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
DM=$(median "${DECNET_T[@]}")
CM=$(median "${COMPOSE_T[@]}")
RATIO=$(awk -v a="$DM" -v b="$CM" 'BEGIN { printf "%.2f", a / b }')

log "memory of the idle fleet (its deploy also measures where the CPU goes)"
# CPU ticks of a process, and of the whole machine (busy = all but idle and iowait).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
DOCKERD=$(pgrep -o -x dockerd)
CONTAINERD=$(pgrep -o -x containerd)
c0=$(busy); d0=$(ticks "$DOCKERD"); k0=$(ticks "$CONTAINERD"); t0=$(now)
TIMEFORMAT='%U %S'
{ time D "${DEPLOY[@]}" >/dev/null 2>&1; } 2>"$WORK/decnet-cpu"
c1=$(busy); d1=$(ticks "$DOCKERD"); k1=$(ticks "$CONTAINERD"); t1=$(now)
HZ=$(getconf CLK_TCK)
CPU_WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
cpu_s() { awk -v t="$1" -v hz="$HZ" 'BEGIN { printf "%.1f", t / hz }'; }
CPU_BUSY=$(cpu_s $((c1 - c0)))
CPU_DOCKERD=$(cpu_s $((d1 - d0)))
CPU_CONTAINERD=$(cpu_s $((k1 - k0)))
DECNET_TICKS=$(awk -v hz="$HZ" '{ printf "%d", ($1 + $2) * hz }' "$WORK/decnet-cpu")
CPU_DECNET=$(cpu_s "$DECNET_TICKS")
# Each shim's own CPU plus that of the runc calls it waited for (cutime, cstime); each
# decky process's own: both live on after the deploy, so they are summed below.
SHIM_TICKS=0
DECKYP_TICKS=0
for id in $(docker ps -q --filter "label=com.docker.compose.project=$PROJECT"); do
    pid=$(docker inspect -f '{{.State.Pid}}' "$id")
    shim=$(awk '{print $4}' "/proc/$pid/stat")
    DECKYP_TICKS=$((DECKYP_TICKS + $(ticks "$pid")))
    SHIM_TICKS=$((SHIM_TICKS + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$shim/stat")))
done
CPU_SHIM=$(cpu_s "$SHIM_TICKS")
CPU_DECKYP=$(cpu_s "$DECKYP_TICKS")
CPU_REST=$(cpu_s $((c1 - c0 - (d1 - d0) - (k1 - k0) - DECNET_TICKS - SHIM_TICKS - DECKYP_TICKS)))
sleep 10
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
DECKY_KB=0
SHIM_KB=0
for id in $(docker ps -q --filter "label=com.docker.compose.project=$PROJECT"); do
    pid=$(docker inspect -f '{{.State.Pid}}' "$id")
    shim=$(awk '{print $4}' "/proc/$pid/stat")
    DECKY_KB=$((DECKY_KB + $(pss "$pid")))
    SHIM_KB=$((SHIM_KB + $(pss "$shim")))
done
PER_DECKY_KB=$(((DECKY_KB + SHIM_KB) / N))

log "nmap -O from the lab namespace"
osguess() {
    ip netns exec "$NS" nmap -O --osscan-guess -Pn -n --max-os-tries 2 -p 22,80,6379,1 "$1" 2>/dev/null |
        grep -E '^(Running|OS details|Aggressive OS guesses|No exact OS|Too many fingerprints)' |
        sed 's/^/    /' || echo "    (no guess)"
}
# The flag path gives every decky the linux family: a two-decky INI adds a windows one.
cat > "$WORK/win.ini" <<EOF
[general]
net = $PREFIX.0/24
gw = $PREFIX.1
interface = $PARENT

[lin-01]
ip = $PREFIX.50
services = ssh, http, redis

[win-01]
ip = $PREFIX.51
services = ssh, http, redis
nmap_os = windows
EOF
D teardown --all >/dev/null
D deploy -c "$WORK/win.ini" --seed 1 >/dev/null
sleep 2
LINUX_GUESS="$(osguess "$PREFIX.50")"
WIN_GUESS="$(osguess "$PREFIX.51")"

CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
SECTION="$(cat <<EOF
<!-- runtime-deploy:start -->
## Docker runtime deploy (\`decnet-runtime\`)

Command: \`bench/runtime-deploy.sh\` (as root; Docker and docker-compose v1 from
\`.ci/provision/10-docker.sh\`). The script creates its own lab LAN (a veth pair whose peer
sits in a network namespace, $PREFIX.0/24) and removes it at the end.

Machine: $(nproc) vCPU $CPU, $(uname -r), Debian $(cat /etc/debian_version),
Docker $(docker version --format '{{.Server.Version}}'), $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /'). Date: $(date -u +%Y-%m-%d).

**Deploy, 20 deckies x 3 services (80 containers), nothing to all running** (median of
$RUNS alternating runs, everything removed between runs; the reference is
\`docker-compose up -d\` on the compose file the same deploy exported, with the same image,
plus the \`docker network create\` it needs):

| | median | runs (s) |
|---|---|---|
| \`decnet deploy\` (network, hairpin, state; default \`--jobs\`: $JOBS deckies at a time) | ${DM} s | ${DECNET_T[*]} |
| \`docker-compose up -d\` (reference) | ${CM} s | ${COMPOSE_T[*]} |
| ratio decnet / compose | **${RATIO}** (goal ≤ 0.5) | |

Where the time goes (one more \`decnet deploy\` of the same fleet, CPU time from
\`/proc\`): ${CPU_WALL} s wall on $(nproc) CPUs, ${CPU_BUSY} s of CPU busy on the whole machine:

| | CPU s |
|---|---|
| dockerd | ${CPU_DOCKERD} |
| containerd | ${CPU_CONTAINERD} |
| containerd-shims with the runc calls they ran (80) | ${CPU_SHIM} |
| decky processes starting (80) | ${CPU_DECKYP} |
| \`decnet deploy\` itself | ${CPU_DECNET} |
| the rest (kernel work not charged to a process, other jobs on the machine) | ${CPU_REST} |

**Idle memory of the 20-decky fleet** (10 s after the deploy; Pss from
\`/proc/<pid>/smaps_rollup\`; 4 containers per decky: the base holding the address and
one per service):

| | total | per decky |
|---|---|---|
| decky processes (\`decnet-decky hold\` / \`serve\`) | $((DECKY_KB / 1024)) MiB | $((DECKY_KB / N)) KiB |
| containerd-shim, one per container | $((SHIM_KB / 1024)) MiB | $((SHIM_KB / N)) KiB |
| **sum** | $(((DECKY_KB + SHIM_KB) / 1024)) MiB | **${PER_DECKY_KB} KiB** |

**\`nmap -O\`** from the lab namespace (ports 22, 80, 6379 open, 1 closed):

- linux-family decky ($PREFIX.50):
$LINUX_GUESS
- windows-family decky ($PREFIX.51, \`nmap_os = windows\`: TTL 128, no TCP timestamps):
$WIN_GUESS
<!-- runtime-deploy:end -->
EOF
)"
echo "$SECTION"
if [ "$WRITE" = 1 ]; then
    DOC="$ROOT/docs/benchmarks.md"
    # Only the text between our own markers is replaced; without them the section is
    # appended. Other scripts own the other sections.
    python3 - "$DOC" "$SECTION" <<'PY'
import sys
path, section = sys.argv[1], sys.argv[2].rstrip("\n")
text = open(path).read()
start, end = "<!-- runtime-deploy:start -->", "<!-- runtime-deploy:end -->"
if start in text and end in text:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    text = head + section + tail
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
    log "docs/benchmarks.md updated"
fi
