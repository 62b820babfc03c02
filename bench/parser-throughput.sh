#!/usr/bin/env bash
# RFC 5424 parser throughput on one core: decnet-wire's parser against a Python 3
# implementation of the reference collector's parsing approach (bench/rfc5424_reference.py),
# on the same generated file of realistic events.
#
#   bench/parser-throughput.sh            build, measure, print the markdown section
#   bench/parser-throughput.sh --write    ... and replace our section of docs/benchmarks.md
#
# The Rust bench (crates/decnet-wire/benches/rfc5424_parse.rs) generates the file
# deterministically (BENCH_LINES lines, default 100 000) and measures; then the Python
# reference reads the same file. Both run pinned to CPU 1 (taskset -c 1) under
# flock /tmp/decnet-bench.lock, BENCH_ROUNDS rounds each (default 5), median reported;
# the pair is run BENCH_PAIRS times (default 3) in alternation and the medians of the
# pairs are printed.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
WRITE=0
[ "${1:-}" = "--write" ] && WRITE=1
LINES="${BENCH_LINES:-100000}"
ROUNDS="${BENCH_ROUNDS:-5}"
PAIRS="${BENCH_PAIRS:-3}"
FILE="${BENCH_FILE:-$ROOT/target/rfc5424-bench.log}"
CPU="${BENCH_CPU:-1}"

log() { echo "parser-throughput: $*" >&2; }
need() { command -v "$1" >/dev/null 2>&1 || { log "missing $1"; exit 1; }; }
need python3
need taskset
need flock

log "building the bench (release)"
BIN="$(cargo bench -p decnet-wire --bench rfc5424_parse --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "rfc5424_parse":
        print(m["executable"])
' | tail -n 1)"
[ -x "$BIN" ] || { log "bench binary not found"; exit 1; }

RUST_OUT=()
PY_OUT=()
for pair in $(seq 1 "$PAIRS"); do
    log "pair $pair/$PAIRS: rust"
    RUST_OUT+=("$(flock /tmp/decnet-bench.lock taskset -c "$CPU" env RFC5424_BENCH_LINES="$LINES" \
        RFC5424_BENCH_ROUNDS="$ROUNDS" RFC5424_BENCH_FILE="$FILE" "$BIN" --bench)")
    log "pair $pair/$PAIRS: python reference"
    PY_OUT+=("$(flock /tmp/decnet-bench.lock taskset -c "$CPU" python3 bench/rfc5424_reference.py "$FILE" --rounds "$ROUNDS")")
done

field() { # field NAME TEXT... -> the values of NAME=value, one per line
    local name="$1"; shift
    printf '%s\n' "$@" | tr ' ' '\n' | sed -n "s/^$name=//p"
}
median() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

PARSE="$(field rust_parse_lines_per_s "${RUST_OUT[@]}" | median)"
EXTRACT="$(field rust_extract_lines_per_s "${RUST_OUT[@]}" | median)"
PY="$(field python_lines_per_s "${PY_OUT[@]}" | median)"
R_FIELDS="$(field rust_fields "${RUST_OUT[0]}")"
P_FIELDS="$(field python_fields "${PY_OUT[0]}")"
R_ADDR="$(field rust_with_addr "${RUST_OUT[0]}")"
P_ADDR="$(field python_with_addr "${PY_OUT[0]}")"
BYTES="$(field bytes "${RUST_OUT[0]}")"
PYVER="$(field python_version "${PY_OUT[0]}")"
ALL_PARSE="$(field rust_parse_lines_per_s "${RUST_OUT[@]}" | paste -sd/ -)"
ALL_EXTRACT="$(field rust_extract_lines_per_s "${RUST_OUT[@]}" | paste -sd/ -)"
ALL_PY="$(field python_lines_per_s "${PY_OUT[@]}" | paste -sd/ -)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", a / b}'; }
CPU_MODEL="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"

SECTION="$(cat <<EOF
<!-- rfc5424-parser:start -->
## RFC 5424 parser throughput (\`decnet-wire\`)

Command: \`bench/parser-throughput.sh --write\` (builds and runs
\`cargo bench -p decnet-wire --bench rfc5424_parse\`, then \`bench/rfc5424_reference.py\` on
the same file; both pinned with \`taskset -c $CPU\` under \`flock /tmp/decnet-bench.lock\`).
Machine: \`nproc\` = $(nproc), $CPU_MODEL, Linux $(uname -r), shared with other builds
(load average $(cut -d' ' -f1-3 /proc/loadavg) at the end of the run); Python $PYVER.
Date: $(date -u +%Y-%m-%dT%H:%MZ).

Input: $LINES generated lines ($BYTES bytes, deterministic): ssh \`auth_attempt\` with
\`secret_b64\` (30 %), http \`request\` with a JSON-list \`headers\` and POST bodies holding
\`]\` (20 %), \`http_request_fingerprint\` with \`headers_ordered\` and \`ja4h\` (10 %),
rsyslog double-wrapped bash \`command\` lines (15 %), \`connect\`/\`disconnect\` (25 %).
Reference: the reference collector's approach (services.md §4 step 4) in Python 3: header
regex, double-wrap re-match, \`CMD\` check, non-greedy \`\\[relay@55555 (.*?)\\]\`, a
\`k="v"\` regex with unescaping, attacker IP from the keys then MSG prose, timestamp
re-rendered. \`extract\` is the same work on our side (\`parse_line\`, \`effective\`,
\`timestamp_micros\`, \`attacker_addr\`). Median of $ROUNDS rounds per run, median of
$PAIRS alternating runs (all runs: parse $ALL_PARSE, extract $ALL_EXTRACT, reference $ALL_PY).

| One core | lines/s | ratio to reference |
|---|---|---|
| \`parse_line\` | $PARSE | $(ratio "$PARSE" "$PY") |
| \`parse_line\` + conventions + timestamp + attacker address (\`extract\`) | $EXTRACT | $(ratio "$EXTRACT" "$PY") |
| reference (Python regexes) | $PY | 1 |

What each recovers from the same file: SD fields $R_FIELDS (ours) against $P_FIELDS (the
reference's non-greedy match stops at the first \`]\`, escaped or not, and drops every later
field: SV-1); lines with an attacker address $R_ADDR against $P_ADDR (the reference also
takes one from the prose of the bash \`CMD … src=\` lines; we take addresses from SD keys
only: SV-3).
<!-- rfc5424-parser:end -->
EOF
)"

printf '%s\n' "$SECTION"
if [ "$WRITE" = 1 ]; then
    DOC="$ROOT/docs/benchmarks.md"
    SECTION="$SECTION" python3 - "$DOC" <<'PY'
import os, re, sys
path = sys.argv[1]
section = os.environ["SECTION"]
text = open(path, encoding="utf-8").read()
pattern = re.compile(r"<!-- rfc5424-parser:start -->.*?<!-- rfc5424-parser:end -->", re.DOTALL)
if pattern.search(text):
    text = pattern.sub(lambda _: section, text)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w", encoding="utf-8").write(text)
PY
    log "wrote $DOC"
fi
