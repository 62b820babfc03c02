#!/usr/bin/env bash
# Benchmark of decnet-decky's ssh emulator against OpenSSH's sshd, and idle memory of the
# ssh and telnet emulators.
#
#   bench/honeypot-ssh.sh            build, measure, print the markdown section
#   bench/honeypot-ssh.sh --write    ... and replace our section of docs/benchmarks.md
#
# Measures, in one run on this machine:
#   - `hydra -t 16` with 1 000 wrong passwords against `decnet-decky serve ssh` (release
#     build, default persona: 2 s PAM-like failure delay) and against the Debian package's
#     /usr/sbin/sshd started here on another loopback port with a throwaway config
#     (PasswordAuthentication yes, UsePAM yes, a throwaway user, own host keys in a temp
#     dir, MaxStartups 100 so sshd does not shed hydra's 16 parallel connections);
#   - server CPU time per attempt (utime+stime of our process; for sshd utime+stime+
#     cutime+cstime of the listener, which reaps every per-connection child), peak memory
#     (our VmHWM; the peak over time of the summed Pss and Rss of sshd's whole process tree,
#     sampled every 100 ms) and attempts per minute;
#   - how long each server takes to answer a failed password under that load, seen on the
#     wire: a raw socket on lo (Python, no extra tools) timestamps every TCP segment with
#     data, and an answer's delay is the time from the client's last segment to the
#     server's first one; waits over 0.3 s are password answers (the key exchange and
#     the rest take milliseconds);
#   - connections ended at MaxAuthTries (our `max_auth_tries` events; sshd's "maximum
#     authentication attempts exceeded" lines);
#   - idle RSS of `decnet-decky serve ssh` and `serve telnet`.
# Everything listens on 127.0.0.1 only and stops when the script ends.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
WRITE=0
[ "${1:-}" = "--write" ] && WRITE=1
GUESSES="${BENCH_GUESSES:-1000}"
BENCH_USER=decnetbench

log() { echo "honeypot-ssh: $*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { log "missing $1 (run .ci/provision/41-clients-ssh.sh)"; exit 1; }; }
need hydra
need ssh-keygen
need python3
[ -x /usr/sbin/sshd ] || { log "missing /usr/sbin/sshd (run .ci/provision/41-clients-ssh.sh)"; exit 1; }
[ "$(id -u)" = 0 ] || { log "must run as root (sshd and a throwaway user)"; exit 1; }

log "building the release binary"
cargo build --release -p decnet-honeypot >&2
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET/release/decnet-decky"
# The binary that ships in deckies: the `decky` profile, statically linked with musl.
STATIC=""
if command -v musl-gcc >/dev/null 2>&1 && [ "${BENCH_SKIP_STATIC:-0}" != 1 ]; then
    log "building the static musl binary (decky profile)"
    CC_x86_64_unknown_linux_musl=musl-gcc cargo build --profile decky \
        --target x86_64-unknown-linux-musl -p decnet-honeypot --bin decnet-decky >&2
    STATIC="$TARGET/x86_64-unknown-linux-musl/decky/decnet-decky"
fi

WORK="$(mktemp -d)"
chmod 755 "$WORK"
PIDS=()
CREATED_USER=0
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if ((CREATED_USER)); then userdel "$BENCH_USER" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    log "port $1 never opened"; exit 1
}
ticks() { awk -v hz="$(getconf CLK_TCK)" "{print (\$14+\$15+\$16+\$17)/hz}" "/proc/$1/stat"; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.9f\", $* }"; }

# Peak of the summed Pss/Rss (KiB) of a process tree, sampled until the stop file appears.
cat > "$WORK/sample.py" <<'PY'
import os, sys, time
root, stop, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def tree():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except OSError:
                pass
    todo, seen = [root], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo.extend(kids.get(p, []))
    return seen
peak_pss = peak_rss = peak_n = 0
while not os.path.exists(stop):
    pss = rss = 0
    procs = tree()
    for p in procs:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"): pss += int(line.split()[1])
                    elif line.startswith("Rss:"): rss += int(line.split()[1])
        except OSError:
            pass
    peak_pss, peak_rss, peak_n = max(peak_pss, pss), max(peak_rss, rss), max(peak_n, len(procs))
    time.sleep(0.1)
with open(out, "w") as f:
    f.write(f"{peak_pss} {peak_rss} {peak_n}\n")
PY

# Delays between a client's data and the server's next data on one loopback port, until
# the stop file appears; writes one delay (seconds) per line.
cat > "$WORK/sniff.py" <<'PY'
import os, socket, struct, sys, time
port, stop, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind(("lo", 0))
s.settimeout(0.2)
asked, delays = {}, []
while not os.path.exists(stop):
    try:
        data, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] == socket.PACKET_OUTGOING:  # lo shows each packet twice
        continue
    now, ip = time.monotonic(), data[14:]
    if len(ip) < 40 or ip[0] >> 4 != 4 or ip[9] != 6:
        continue
    ihl = (ip[0] & 15) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
    if total - ihl - (ip[ihl + 12] >> 4) * 4 <= 0:
        continue
    if dport == port:
        asked.setdefault(sport, now)
    elif sport == port and dport in asked:
        delays.append(now - asked.pop(dport))
with open(out, "w") as f:
    f.writelines(f"{d:.6f}\n" for d in delays)
PY
# "mean median p10 p90 n" of the answers over 0.3 s.
delay_stats() {
    python3 - "$1" <<'PY'
import statistics, sys
d = sorted(float(x) for x in open(sys.argv[1]) if float(x) > 0.3)
if not d:
    print("0 0 0 0 0"); sys.exit()
q = lambda p: d[min(len(d) - 1, int(p * len(d)))]
print(f"{statistics.mean(d):.3f} {statistics.median(d):.3f} {q(0.1):.3f} {q(0.9):.3f} {len(d)}")
PY
}

seq -f "pw%05g" 1 "$GUESSES" > "$WORK/words.txt"

hydra_run() { # port user -> seconds
    local start end
    start="$(now)"
    hydra -l "$2" -P "$WORK/words.txt" -t 16 -I -s "$1" 127.0.0.1 ssh > "$WORK/hydra-$1.log" 2>&1 || true
    end="$(now)"
    calc "$end - $start"
}

SEED="$(printf '5e%.0s' $(seq 1 32))"

# --- decnet-decky ssh --------------------------------------------------------------
DPORT="$(free_port)"
NODE_NAME=bench DECNET_SEED="$SEED" DECNET_DISTRO=debian \
    "$BIN" serve ssh --bind 127.0.0.1 --port "$DPORT" > "$WORK/decky-events.log" 2>/dev/null &
DPID=$!; PIDS+=("$DPID")
wait_port "$DPORT"
sleep 1
OURS_IDLE_RSS="$(awk '/VmRSS/ {print $2}' "/proc/$DPID/status")"
CPU0="$(ticks "$DPID")"
rm -f "$WORK/stop"; python3 "$WORK/sample.py" "$DPID" "$WORK/stop" "$WORK/peak-ours" & SP=$!
python3 "$WORK/sniff.py" "$DPORT" "$WORK/stop" "$WORK/delays-ours" & NP=$!
log "hydra against decnet-decky ssh on $DPORT"
OURS_S="$(hydra_run "$DPORT" root)"
touch "$WORK/stop"; wait "$SP" "$NP"
CPU1="$(ticks "$DPID")"
OURS_HWM="$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status")"
read -r OURS_PSS OURS_RSS _ < "$WORK/peak-ours"
# The request after the fifth failure is not read (like sshd, we answer it only with the
# disconnect) and is reported as a `max_auth_tries` request: it counts as an attempt, as
# sshd logs it as one.
OURS_MAXED="$(grep -c 'reason="max_auth_tries"' "$WORK/decky-events.log" || true)"
OURS_N="$(( $(grep -c ' auth_attempt ' "$WORK/decky-events.log" || true) + OURS_MAXED ))"
read -r OURS_DMEAN OURS_DMED OURS_D10 OURS_D90 OURS_DN <<< "$(delay_stats "$WORK/delays-ours")"
OURS_CPU="$(calc "$CPU1 - $CPU0")"
kill "$DPID"; wait "$DPID" 2>/dev/null || true

# --- OpenSSH sshd -------------------------------------------------------------------
if ! id "$BENCH_USER" >/dev/null 2>&1; then
    useradd -M -d /nonexistent -s /bin/sh "$BENCH_USER"
    CREATED_USER=1
fi
echo "$BENCH_USER:$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" | chpasswd
mkdir -p /run/sshd
for t in rsa ecdsa ed25519; do ssh-keygen -q -t "$t" -N '' -f "$WORK/ssh_host_${t}_key"; done
SPORT="$(free_port)"
cat > "$WORK/sshd_config" <<CONF
Port $SPORT
ListenAddress 127.0.0.1
HostKey $WORK/ssh_host_rsa_key
HostKey $WORK/ssh_host_ecdsa_key
HostKey $WORK/ssh_host_ed25519_key
PidFile $WORK/sshd.pid
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM yes
PermitRootLogin no
AllowUsers $BENCH_USER
MaxStartups 100
LogLevel INFO
CONF
/usr/sbin/sshd -D -f "$WORK/sshd_config" -E "$WORK/sshd.log" &
SPID=$!; PIDS+=("$SPID")
wait_port "$SPORT"
sleep 1
SSHD_IDLE_RSS="$(awk '/VmRSS/ {print $2}' "/proc/$SPID/status")"
CPU0="$(ticks "$SPID")"
rm -f "$WORK/stop"; python3 "$WORK/sample.py" "$SPID" "$WORK/stop" "$WORK/peak-sshd" & SP=$!
python3 "$WORK/sniff.py" "$SPORT" "$WORK/stop" "$WORK/delays-sshd" & NP=$!
log "hydra against sshd on $SPORT"
SSHD_S="$(hydra_run "$SPORT" "$BENCH_USER")"
sleep 1
touch "$WORK/stop"; wait "$SP" "$NP"
CPU1="$(ticks "$SPID")"
read -r SSHD_PSS SSHD_RSS SSHD_PROCS < "$WORK/peak-sshd"
SSHD_N="$(grep -c 'Failed password' "$WORK/sshd.log" || true)"
SSHD_MAXED="$(grep -c 'maximum authentication attempts exceeded' "$WORK/sshd.log" || true)"
read -r SSHD_DMEAN SSHD_DMED SSHD_D10 SSHD_D90 SSHD_DN <<< "$(delay_stats "$WORK/delays-sshd")"
SSHD_CPU="$(calc "$CPU1 - $CPU0")"
kill "$SPID"; wait "$SPID" 2>/dev/null || true

# --- idle RSS of ssh and telnet -------------------------------------------------------
idle_rss() { # binary service -> "rss anon" (KiB)
    local port pid rss
    port="$(free_port)"
    NODE_NAME=bench DECNET_SEED="$SEED" "$1" serve "$2" --bind 127.0.0.1 --port "$port" >/dev/null 2>&1 &
    pid=$!; PIDS+=("$pid")
    wait_port "$port"; sleep 1
    rss="$(awk '/VmRSS/ {r=$2} /RssAnon/ {a=$2} END {print r, a}' "/proc/$pid/status")"
    kill "$pid"; wait "$pid" 2>/dev/null || true
    echo "$rss"
}
read -r SSH_IDLE SSH_ANON <<< "$(idle_rss "$BIN" ssh)"
read -r TELNET_IDLE TELNET_ANON <<< "$(idle_rss "$BIN" telnet)"
SSH_STATIC="n/a"; TELNET_STATIC="n/a"
if [ -n "$STATIC" ]; then
    read -r r _ <<< "$(idle_rss "$STATIC" ssh)"; SSH_STATIC="$(calc "$r / 1024" | xargs printf '%.1f MiB')"
    read -r r _ <<< "$(idle_rss "$STATIC" telnet)"; TELNET_STATIC="$(calc "$r / 1024" | xargs printf '%.1f MiB')"
fi

# --- report ---------------------------------------------------------------------------
f() { printf "%.${2:-2}f" "$1"; }
mib() { f "$(calc "$1 / 1024")" 1; }
OURS_PER="$(calc "$OURS_CPU / ($OURS_N > 0 ? $OURS_N : 1)")"
SSHD_PER="$(calc "$SSHD_CPU / ($SSHD_N > 0 ? $SSHD_N : 1)")"
OURS_APM="$(calc "$OURS_N * 60 / $OURS_S")"
SSHD_APM="$(calc "$SSHD_N * 60 / $SSHD_S")"
CPU_RATIO="$(calc "$OURS_PER / ($SSHD_PER > 0 ? $SSHD_PER : 1)")"
APM_RATIO="$(calc "$OURS_APM / ($SSHD_APM > 0 ? $SSHD_APM : 1)")"
MEM_RATIO="$(calc "$OURS_HWM / ($SSHD_PSS > 0 ? $SSHD_PSS : 1)")"
DELAY_RATIO="$(calc "$OURS_DMEAN / ($SSHD_DMEAN > 0 ? $SSHD_DMEAN : 1)")"
MACHINE="$(nproc) vCPU $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), Linux $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME"), $(/usr/sbin/sshd -V 2>&1 | head -1 || true)"
SECTION="$(cat <<MD
<!-- bench:honeypot-ssh:start -->
## ssh emulator against OpenSSH sshd (\`bench/honeypot-ssh.sh\`)

Command: \`bench/honeypot-ssh.sh --write\` (release build; \`hydra -l <user> -P <$GUESSES wrong
passwords> -t 16 -I -s <port> 127.0.0.1 ssh\` against \`decnet-decky serve ssh\` with the
default persona, then against the Debian \`sshd\` with a throwaway config, UsePAM yes,
MaxStartups 100). Server CPU: our process's utime+stime; sshd: listener utime+stime+cutime+
cstime (every per-connection child is reaped into it). Peak memory: our VmHWM; sshd: peak
over time of the summed Pss (Rss in brackets) of its whole process tree.

Machine: $MACHINE.
Date: $(date -u +%Y-%m-%d).

| Figure | decnet-decky ssh | OpenSSH sshd | Ratio (ours / sshd) | Goal |
|---|---|---|---|---|
| attempts seen by the server | $OURS_N | $SSHD_N | | $GUESSES |
| run time (s) | $(f "$OURS_S" 1) | $(f "$SSHD_S" 1) | | |
| attempts per minute | $(f "$OURS_APM" 0) | $(f "$SSHD_APM" 0) | $(f "$APM_RATIO") | close to 1 |
| connections ended at MaxAuthTries | $OURS_MAXED | $SSHD_MAXED | | |
| failed-password answer, mean s (median; p10–p90; answers) | $OURS_DMEAN ($OURS_DMED; $OURS_D10–$OURS_D90; $OURS_DN) | $SSHD_DMEAN ($SSHD_DMED; $SSHD_D10–$SSHD_D90; $SSHD_DN) | $(f "$DELAY_RATIO") | close to 1 |
| server CPU per attempt (ms) | $(f "$(calc "$OURS_PER * 1000")") | $(f "$(calc "$SSHD_PER * 1000")") | $(f "$CPU_RATIO") | ≤ 0.25 (floor 1) |
| peak memory, all server processes (MiB) | $(mib "$OURS_HWM") (VmHWM) | $(mib "$SSHD_PSS") Pss [$(mib "$SSHD_RSS") Rss, $SSHD_PROCS processes] | $(f "$MEM_RATIO") | ≤ 16 MiB |
| idle RSS, listener, release build (MiB; the shipped build is below) | $(mib "$OURS_IDLE_RSS") | $(mib "$SSHD_IDLE_RSS") | | |

Failure timing: the delay follows the persona (\`failure_delay_ms\`, default 2 000 ms) through
Debian sshd's own timing: Linux-PAM randomizes it to 50–150 %, then sshd rounds the answer
up to the first doubling of its per-user minimum delay (5–9.3 ms, from a per-daemon secret
and the user name) that exceeds it, so a failed password is answered after about 1.3–2.4 s
or 2.6–4.8 s depending on that delay. The answer delays above are measured on the wire for
both servers during the same hydra runs. Which doubling a user lands on moves the mean
between about 2.7 s and 3.1 s for any sshd (a property of the daemon's secret and the
name, not of the emulator), which is most of what separates the two means in one run.

End of a connection: like sshd, the emulator does not answer the request after a
connection's fifth failure (MaxAuthTries 6); after the failure delay it sends only
DISCONNECT reason 2 "Too many authentication failures", so hydra sends that password again
on a new connection on both servers (about 1 200 attempts for 1 000 guesses). That request
is not decrypted: its password is captured when hydra repeats it.

Idle memory of one process, 1 s after start (goal ≤ 4 MiB RSS; RSS is mostly file-backed
pages of the binary, "anonymous" is the process's own heap and stacks, host keys included):

| Service | RSS, release build (glibc) | anonymous, release build | RSS, \`decky\` profile, static musl (what ships) |
|---|---|---|---|
| ssh | $(mib "$SSH_IDLE") MiB | $(mib "$SSH_ANON") MiB | $SSH_STATIC |
| telnet | $(mib "$TELNET_IDLE") MiB | $(mib "$TELNET_ANON") MiB | $TELNET_STATIC |
<!-- bench:honeypot-ssh:end -->
MD
)"
echo "$SECTION"
if ((WRITE)); then
    python3 - "$ROOT/docs/benchmarks.md" "$SECTION" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
pattern = re.compile(r"<!-- bench:honeypot-ssh:start -->.*?<!-- bench:honeypot-ssh:end -->", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
    log "wrote docs/benchmarks.md"
fi
