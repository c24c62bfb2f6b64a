#!/usr/bin/env python3
"""The clients and servers of tests/e2e_login (`python3 login_helper.py CMD ARGS...`, in the
testbed's namespaces). Every socket operation has a timeout; every failure exits non-zero with
a message. Times are CLOCK_MONOTONIC seconds (`time.monotonic()`), comparable between helper
processes.

  login_helper.py sessions HOST SPEC...
      One after the other: `line:PORT:USER:PASSWORD:EXPECT` or `plain:PORT`; one JSON record
      per session on stdout (and a `password-sent` mark for each password sent).
  login_helper.py echo-server ADDR PORT...
      On each port: greets every connection with the banner, then echoes.
  login_helper.py held HOST PORT PATH SIGNAL
      An HTTP connection opened now whose request goes out once the file SIGNAL exists.
"""

import json
import os
import socket
import sys
import time

from dialogue import BANNER, TIMEOUT, Reader, echo_server, echo_through, fail

UNAVAILABLE = b"Authentication unavailable, try again later.\r\n"
ECHO_BYTES = 16 * 1024


def now():
    return round(time.monotonic(), 4)


def connect(host, port, what):
    try:
        return socket.create_connection((host, int(port)), timeout=TIMEOUT)
    except OSError as e:
        fail("%s: connect: %s" % (what, e))


def line(host, port, user, password, expect):
    """A `line` session. expect: `accepted` (then the banner and an echo), `incorrect`
    (`Login incorrect.`, the next `Username: `, then the client leaves), `unavailable` (the
    message, then the box's EOF), `banner` (no prompt: the server's banner first)."""
    what = "line %s:%s %s %s" % (host, port, user, expect)
    rec = {"kind": "line", "port": int(port), "user": user, "expect": expect, "t_start": now()}
    s = connect(host, port, what)
    rec["t_connected"] = now()
    r = Reader(s, what)
    if expect != "banner":
        r.expect(b"Username: ")
        s.sendall(user.encode() + b"\r\n")
        r.expect(b"Password: ")
        s.sendall(password.encode() + b"\r\n")
        rec["t_sent"] = now()
        print(json.dumps({"mark": "password-sent", "port": int(port), "t": rec["t_sent"]}), flush=True)
    if expect == "accepted":
        r.expect(b"Authenticated as " + user.encode() + b".\r\n")
        rec["t_answer"] = now()
    elif expect == "incorrect":
        r.expect(b"Login incorrect.\r\n")
        rec["t_answer"] = now()
        r.expect(b"Username: ")
    elif expect == "unavailable":
        r.expect(UNAVAILABLE)
        rec["t_answer"] = now()
        r.expect_eof()
        rec["t_eof"] = now()
    elif expect != "banner":
        fail("unknown expectation %r" % expect)
    if expect in ("accepted", "banner"):
        r.expect(BANNER)
        if r.buf:
            fail("%s: unexpected bytes after the banner: %r" % (what, r.buf[:200]))
        echo_through(s, ECHO_BYTES, what)
    s.close()
    rec["t_end"] = now()
    print(json.dumps(rec), flush=True)


def plain(host, port):
    """A connection without a login: the banner, an echo."""
    what = "plain %s:%s" % (host, port)
    rec = {"kind": "plain", "port": int(port), "t_start": now()}
    s = connect(host, port, what)
    rec["t_connected"] = now()
    r = Reader(s, what)
    r.expect(BANNER)
    echo_through(s, ECHO_BYTES, what)
    s.close()
    rec["t_end"] = now()
    print(json.dumps(rec), flush=True)


def sessions(host, *specs):
    """One after the other: `line:PORT:USER:PASSWORD:EXPECT` or `plain:PORT`."""
    for spec in specs:
        f = spec.split(":")
        if f[0] == "line" and len(f) == 5:
            line(host, *f[1:])
        elif f[0] == "plain" and len(f) == 2:
            plain(host, f[1])
        else:
            fail("bad session %r" % spec)


def echo_server_cmd(addr, *ports):
    """On each port: greets every connection with BANNER, then echoes."""
    echo_server(addr, ports)


def held(host, port, path, signal):
    """An HTTP connection opened now whose request goes out only once the file `signal`
    exists (≤ 30 s): connects, prints a `connected` mark, waits, sends `GET path` and reports
    the answer's status line and Location."""
    what = "held %s:%s%s" % (host, port, path)
    s = connect(host, port, what)
    print(json.dumps({"mark": "connected", "t": now()}), flush=True)
    deadline = time.monotonic() + 30
    while not os.path.exists(signal):
        if time.monotonic() > deadline:
            fail("%s: no signal within 30 s" % what)
        time.sleep(0.02)
    t_sent = now()
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: held\r\nConnection: close\r\n\r\n" % (path, host)).encode())
    r = Reader(s, what)
    data = b""
    while len(data) < 1 << 20:
        chunk = r.more("the answer")
        if not chunk:
            break
        data += chunk
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    location = None
    for l in lines[1:]:
        name, _, value = l.partition(":")
        if name.strip().lower() == "location":
            location = value.strip()
    print(json.dumps({"kind": "held", "path": path, "t_sent": t_sent, "status": lines[0],
                      "location": location, "bytes": len(data)}), flush=True)


COMMANDS = {"sessions": sessions, "echo-server": echo_server_cmd, "held": held}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
