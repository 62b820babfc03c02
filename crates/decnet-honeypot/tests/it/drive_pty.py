#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal and drives it: expect text, send keys.

Usage: drive_pty.py TIMEOUT_S -- COMMAND [ARGS...]
Steps come as JSON on stdin: [["expect", "login: "], ["send", "root\\r"], ...].
Everything the command printed goes to stdout; the exit status is 0 when every
expectation was met, 3 when one timed out (its text is named on stderr).
"""
import json
import os
import pty
import select
import struct
import fcntl
import termios
import sys
import time


def main() -> int:
    timeout = float(sys.argv[1])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    steps = json.load(sys.stdin)
    pid, fd = pty.fork()
    if pid == 0:
        # A terminal of the usual size, set before the client asks for it.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.execvp(cmd[0], cmd)
    seen = b""
    status = 0

    def read_some(deadline: float) -> bool:
        nonlocal seen
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return False
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            return False
        if not chunk:
            return False
        seen += chunk
        return True

    pos = 0
    for kind, text in steps:
        if kind == "send":
            os.write(fd, text.encode())
            continue
        want = text.encode()
        deadline = time.monotonic() + timeout
        while want not in seen[pos:]:
            if not read_some(deadline):
                sys.stderr.write(f"timed out waiting for {text!r}\n")
                status = 3
                break
        if status:
            break
        pos = seen.index(want, pos) + len(want)
    # Drain what is left for a moment so the transcript is complete.
    end = time.monotonic() + 1.0
    while read_some(end):
        pass
    sys.stdout.write(seen.decode("utf-8", "replace"))
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except OSError:
        pass
    return status


if __name__ == "__main__":
    sys.exit(main())
