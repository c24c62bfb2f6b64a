#!/usr/bin/env python3
"""The clients and servers of tests/e2e_auth (`python3 auth_helper.py CMD ARGS...`, in the
testbed's namespaces). Every socket operation has a timeout; every failure exits non-zero with
a message. Times are seconds since the helper process started (CLOCK_MONOTONIC).

  auth_helper.py client HOST PORT NBYTES STEP...
      Sessions one after the other (`banner`, `prompt:PW1,...`, `sleep:SECS`), each echoing
      NBYTES; one JSON record per session on stdout.
  auth_helper.py echo-server ADDR PORT LOG
      Greets every connection with the banner, then echoes; appends each peer to LOG.
  auth_helper.py http-server ADDR PORT ROOT LOG
      Serves ROOT; appends one JSON line to LOG per connection and per request head.
"""

import json
import socket
import sys
import threading
import time

from dialogue import BANNER, TIMEOUT, Reader, echo_server, echo_through, fail, http_server

T0 = time.monotonic()


def now():
    """Seconds since this process started (CLOCK_MONOTONIC)."""
    return round(time.monotonic() - T0, 4)


def session(host, port, n, step, index):
    """One connection: `banner` (the server's banner must come first: no prompt) or
    `prompt:PW1,PW2,...` (Username:/Password: as alice with each password in turn, all but
    the last refused), then the banner and n bytes echoed."""
    rec = {"session": index, "step": step.split(":")[0], "t_start": now()}
    try:
        s = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    except OSError as e:
        fail("session %d: connect to %s:%s: %s" % (index, host, port, e))
    rec["t_connected"] = now()
    r = Reader(s)
    if step.startswith("prompt:"):
        passwords = step[len("prompt:"):].split(",")
        r.expect(b"Username: ")
        for i, pw in enumerate(passwords):
            s.sendall(b"alice\r\n")
            r.expect(b"Password: ")
            s.sendall(pw.encode() + b"\r\n")
            if i + 1 < len(passwords):
                r.expect(b"Login incorrect.\r\n")
                r.expect(b"Username: ")
            else:
                r.expect(b"Authenticated as alice.\r\n")
        rec["t_login"] = now()
    elif step != "banner":
        fail("unknown step %r" % step)
    r.expect(BANNER)
    if r.buf:
        fail("session %d: unexpected bytes after the banner: %r" % (index, r.buf[:200]))
    echo_through(s, n)
    s.close()
    rec["t_end"] = now()
    rec["echoed"] = n
    print(json.dumps(rec), flush=True)


def client(host, port, nbytes, *steps):
    """Sessions one after the other; `sleep:SECS` pauses between them."""
    index = 0
    for step in steps:
        if step.startswith("sleep:"):
            time.sleep(float(step[len("sleep:"):]))
            continue
        session(host, port, int(nbytes), step, index)
        index += 1


def echo_server_cmd(addr, port, log):
    """Greets every connection with BANNER, then echoes; logs each peer as it is accepted."""
    echo_server(addr, [port], log)


COMMANDS = {"client": client, "echo-server": echo_server_cmd, "http-server": http_server}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
