#!/usr/bin/env bash
# Benchmark of decnet-decky's database emulators (redis, mysql, postgres, vnc).
#
#   bench/honeypot-db.sh            build, measure, print the markdown section
#   bench/honeypot-db.sh --write    ... and replace our section of docs/benchmarks.md
#
# Measures, in one run on this machine:
#   - `redis-benchmark -t ping,get -c 50 -n 200000` against `decnet-decky serve redis`
#     (release build, events written to a file) and against `redis-server` from Debian
#     started here on another loopback port (no persistence), in alternation, ROUNDS
#     times each; the median counts;
#   - peak RSS (VmHWM) of both servers under that load;
#   - idle RSS (VmRSS, 1 s after start) of `decnet-decky serve <svc>` for redis, mysql,
#     postgres and vnc, for the release build, the shipped `decky` profile and, when
#     musl-tools is installed, the static musl build.
# Everything listens on 127.0.0.1 only and stops when the script ends.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
WRITE=0
[ "${1:-}" = "--write" ] && WRITE=1
ROUNDS="${BENCH_ROUNDS:-5}"
REQUESTS="${BENCH_REQUESTS:-200000}"

log() { echo "honeypot-db: $*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { log "missing $1 (run .ci/provision/40-clients-db.sh)"; exit 1; }; }
need redis-benchmark
need redis-server

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "building the release binary and the shipped (decky profile) binary"
    cargo build --release -p decnet-honeypot >&2
    cargo build --profile decky -p decnet-honeypot --bin decnet-decky >&2
    if command -v musl-gcc >/dev/null 2>&1; then
        log "building the static musl binary (musl-tools found)"
        CC_x86_64_unknown_linux_musl=musl-gcc cargo build --profile decky \
            --target x86_64-unknown-linux-musl -p decnet-honeypot --bin decnet-decky >&2
    fi
fi
BIN="$ROOT/target/release/decnet-decky"
SHIPPED="$ROOT/target/decky/decnet-decky"
STATIC="$ROOT/target/x86_64-unknown-linux-musl/decky/decnet-decky"
[ -x "$BIN" ] || { log "missing $BIN"; exit 1; }

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    log "port $1 never opened"; exit 1
}

SEED="$(printf '5e%.0s' $(seq 1 32))"
start_decky() { # service port binary events-file -> pid
    NODE_NAME=bench DECNET_SEED="$SEED" REDIS_VERSION=7.0.15 \
        "$3" serve "$1" --bind 127.0.0.1 --port "$2" >"$4" 2>/dev/null &
    echo $!
}
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# --- redis throughput, interleaved -------------------------------------------------
DPORT="$(free_port)"
DPID="$(start_decky redis "$DPORT" "$BIN" "$WORK/events.log")"; PIDS+=("$DPID")
RPORT="$(free_port)"
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
    >/dev/null 2>&1 &
RPID=$!; PIDS+=("$RPID")
wait_port "$DPORT"; wait_port "$RPORT"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

bench() { # port -> "ping_inline ping_mbulk get" requests/s
    redis-benchmark -h 127.0.0.1 -p "$1" -t ping,get -c 50 -n "$REQUESTS" --csv 2>/dev/null |
        awk -F'","' '/^"PING_INLINE/ {i=$2} /^"PING_MBULK/ {m=$2} /^"GET/ {g=$2} END {print i, m, g}'
}
: > "$WORK/ours"; : > "$WORK/real"
for round in $(seq 1 "$ROUNDS"); do
    log "round $round/$ROUNDS"
    bench "$DPORT" >> "$WORK/ours"
    bench "$RPORT" >> "$WORK/real"
done
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
col() { awk -v c="$2" '{print $c}' "$1" | median; }
OURS_I="$(col "$WORK/ours" 1)"; OURS_M="$(col "$WORK/ours" 2)"; OURS_G="$(col "$WORK/ours" 3)"
REAL_I="$(col "$WORK/real" 1)"; REAL_M="$(col "$WORK/real" 2)"; REAL_G="$(col "$WORK/real" 3)"
ALL_OURS="$(awk '{printf "%s%s/%s/%s", (NR>1?"; ":""), $1, $2, $3}' "$WORK/ours")"
ALL_REAL="$(awk '{printf "%s%s/%s/%s", (NR>1?"; ":""), $1, $2, $3}' "$WORK/real")"
OURS_HWM="$(status_kib "$DPID" VmHWM)"
OURS_RSS_LOADED="$(status_kib "$DPID" VmRSS)"
REAL_HWM="$(status_kib "$RPID" VmHWM)"
EVENT_LINES="$(wc -l < "$WORK/events.log")"
kill "$DPID" "$RPID" 2>/dev/null || true

# --- idle RSS ------------------------------------------------------------------------
declare -A RSS HWM SRSS MRSS
idle_rss() { # service binary -> "VmRSS VmHWM" in KiB, 1 s after the port opens
    local port pid out
    port="$(free_port)"
    pid="$(start_decky "$1" "$port" "$2" /dev/null)"; PIDS+=("$pid")
    wait_port "$port"
    sleep 1
    out="$(status_kib "$pid" VmRSS) $(status_kib "$pid" VmHWM)"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$out"
}
for svc in redis mysql postgres vnc; do
    read -r RSS[$svc] HWM[$svc] <<<"$(idle_rss "$svc" "$BIN")"
    SRSS[$svc]=0; MRSS[$svc]=0
    if [ -x "$SHIPPED" ]; then read -r SRSS[$svc] _ <<<"$(idle_rss "$svc" "$SHIPPED")"; fi
    if [ -x "$STATIC" ]; then read -r MRSS[$svc] _ <<<"$(idle_rss "$svc" "$STATIC")"; fi
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { if (k == 0) print "n/a"; else printf "%.1f MiB", k / 1024 }'; }
CPU="$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
REDIS_V="$(redis-server --version | awk '{print $3}' | sed 's/^v=//')"

SECTION="$(cat <<MD
<!-- honeypot-db:start -->
## decnet-decky: redis, mysql, postgres, vnc

Command: \`bench/honeypot-db.sh --write\` (release build; $ROUNDS rounds of
\`redis-benchmark -t ping,get -c 50 -n $REQUESTS\` per server, in alternation; medians).
Machine: $CPU, $(nproc) cores, $(uname -r). Date: $(date -u +%Y-%m-%dT%H:%MZ).
Load average before/after the throughput rounds: $LOAD_BEFORE / $LOAD_AFTER (other work
shares the machine; the servers and redis-benchmark share its cores).
Reference: redis-server $REDIS_V from Debian, started on another loopback port in the same
run without persistence. decnet-decky runs a single-threaded runtime and writes its events
to a file ($EVENT_LINES lines for all rounds: a run of identical commands on one
connection is one event plus one carrying the repeat count).

| Measure | decnet-decky | redis-server | Ratio |
|---|---|---|---|
| PING_INLINE requests/s (median) | $OURS_I | $REAL_I | $(ratio "$OURS_I" "$REAL_I") |
| PING_MBULK requests/s (median) | $OURS_M | $REAL_M | $(ratio "$OURS_M" "$REAL_M") |
| GET requests/s (median) | $OURS_G | $REAL_G | $(ratio "$OURS_G" "$REAL_G") |
| peak RSS (VmHWM) under the load | $(mib "$OURS_HWM") | $(mib "$REAL_HWM") | $(ratio "$OURS_HWM" "$REAL_HWM") |

RSS right after the load: $(mib "$OURS_RSS_LOADED") (goal: at most 16 MiB). All rounds
(PING_INLINE/PING_MBULK/GET requests/s): decnet-decky $ALL_OURS; redis-server $ALL_REAL.
Goal: at least 1x redis-server's requests/s (floor 0.5x).

Idle memory of one \`decnet-decky serve <svc>\` process (VmRSS 1 s after start; goal: at
most 4 MiB). Most of it is file-backed pages of the binary and the C library.

| Service | release build (glibc) | \`decky\` profile (glibc) | \`decky\` profile, static musl |
|---|---|---|---|
| redis | $(mib "${RSS[redis]}") | $(mib "${SRSS[redis]}") | $(mib "${MRSS[redis]}") |
| mysql | $(mib "${RSS[mysql]}") | $(mib "${SRSS[mysql]}") | $(mib "${MRSS[mysql]}") |
| postgres | $(mib "${RSS[postgres]}") | $(mib "${SRSS[postgres]}") | $(mib "${MRSS[postgres]}") |
| vnc | $(mib "${RSS[vnc]}") | $(mib "${SRSS[vnc]}") | $(mib "${MRSS[vnc]}") |
<!-- honeypot-db:end -->
MD
)"
echo "$SECTION"

if [ "$WRITE" = 1 ]; then
    DOC="$ROOT/docs/benchmarks.md"
    [ -f "$DOC" ] || printf '# Benchmarks\n' > "$DOC"
    python3 - "$DOC" "$SECTION" <<'PY'
import sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
start, end = "<!-- honeypot-db:start -->", "<!-- honeypot-db:end -->"
if start in text and end in text:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    text = head + section + tail
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
    log "wrote $DOC"
fi
