#!/usr/bin/env python3
"""Reference for the RFC 5424 parser benchmark: the reference collector's parsing approach
(services.md §4 step 4), written here for the comparison, run on the same file.

Per line: a header regex; "double-wrapped" lines (outer MSGID `-`, an inner RFC 5424 line
as the body) are parsed again from the body; a bare `CMD ...` body gives event type
`command`; the SD parameters come from the first `[relay@55555 ...]` block matched
non-greedily up to the first `]`, then a `k="v"` regex; the attacker IP is the first of
src_ip, src, client_ip, remote_ip, remote_addr, target_ip, ip (host:port split), else an
IP-named k=v pair in the body, else from/rhost=/client=/src= prose, else the first bare
IPv4 in the body, else "Unknown"; the timestamp is re-rendered as YYYY-MM-DD HH:MM:SS.

Usage: rfc5424_reference.py FILE [--rounds N]
Prints `python_lines_per_s=N` (median of the rounds) and what was recovered.
"""

import re
import statistics
import sys
import time
from datetime import datetime

HEADER = re.compile(r"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ?(.*)$", re.DOTALL)
SD_BLOCK = re.compile(r"\[relay@55555 (.*?)\]", re.DOTALL)
PARAM = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
UNESCAPE = re.compile(r'\\(["\\\]])')
IP_KEYS = ("src_ip", "src", "client_ip", "remote_ip", "remote_addr", "target_ip", "ip")
MSG_IP_PAIR = re.compile(r"\b(?:src_ip|src|client_ip|remote_ip|remote_addr|ip)=(\d{1,3}(?:\.\d{1,3}){3})")
PROSE_IP = re.compile(r"(?:from |rhost=|client=|src=)\[?(\d{1,3}(?:\.\d{1,3}){3})")
BARE_IP = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b")


def parse(line):
    m = HEADER.match(line)
    if not m:
        return None
    pri, ts, host, app, procid, msgid, rest = m.groups()
    if msgid == "-":
        body = rest[2:] if rest.startswith("- ") else rest
        inner = HEADER.match(body.lstrip())
        if inner:
            pri, ts, host, app, procid, msgid, rest = inner.groups()
    fields = {}
    sd = SD_BLOCK.search(rest)
    msg = rest
    if sd:
        for k, v in PARAM.findall(sd.group(1)):
            fields[k] = UNESCAPE.sub(r"\1", v)
        msg = rest[sd.end():].lstrip()
    elif rest.startswith("- "):
        msg = rest[2:]
    elif rest == "-":
        msg = ""
    event_type = msgid
    if msg.startswith("CMD "):
        event_type = "command"
    ip = None
    port = fields.get("src_port") or fields.get("remote_port")
    for k in IP_KEYS:
        v = fields.get(k)
        if v:
            if v.count(":") == 1:
                v, port = v.split(":", 1)
            ip = v
            break
    if ip is None:
        for rx in (MSG_IP_PAIR, PROSE_IP, BARE_IP):
            hit = rx.search(msg)
            if hit:
                ip = hit.group(1)
                break
    try:
        stamp = datetime.fromisoformat(ts).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        stamp = ts
    return {
        "timestamp": stamp,
        "decky": host,
        "service": app,
        "event_type": event_type,
        "attacker_ip": ip or "Unknown",
        "remote_port": port,
        "fields": fields,
        "msg": msg,
        "raw_line": line,
    }


def main():
    path = sys.argv[1]
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 5
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    rates = []
    for _ in range(rounds):
        t = time.perf_counter()
        for line in lines:
            parse(line)
        rates.append(len(lines) / (time.perf_counter() - t))
    records = [parse(line) for line in lines]
    fields = sum(len(r["fields"]) for r in records if r)
    with_ip = sum(1 for r in records if r and r["attacker_ip"] != "Unknown")
    commands = sum(1 for r in records if r and r["event_type"] == "command")
    print(f"python_lines_per_s={statistics.median(rates):.0f}")
    print(f"python_fields={fields} python_with_addr={with_ip} python_commands={commands}")
    print(f"python_version={sys.version.split()[0]}")


if __name__ == "__main__":
    main()
