#!/usr/bin/env python3
"""The packet rate of a running DPDK application read through its telemetry socket (ct-bench
runs it beside dpdk-l3fwd, which prints no statistics of its own).

    python3 bench_telemetry.py SOCKET PORTS WARMUP SECS TIMEOUT

Waits (at most TIMEOUT seconds) for the socket and for the first transmitted packet: l3fwd
loads its rules and the PMD its captures before the ports start. Then lets WARMUP seconds
pass and reads the ports' counters twice, SECS seconds apart. Prints one line,
"RATE opackets ipackets seconds": the growth of both counters summed over ports 0..PORTS-1,
and the seconds between the two readings. The standard library only.
"""

import json
import socket
import sys
import time


def connect(path, deadline):
    # The socket appears at the end of the EAL's initialisation; the rules load before.
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            s.connect(path)
            info = json.loads(s.recv(4096).decode())
            return s, int(info.get("max_output_len", 16384))
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() > deadline:
                sys.exit("no telemetry socket at %s" % path)
            time.sleep(0.2)


def totals(s, maxlen, ports):
    out = inp = 0
    for p in range(ports):
        s.send(("/ethdev/stats,%d" % p).encode())
        stats = json.loads(s.recv(maxlen).decode()).get("/ethdev/stats")
        if not stats:
            return None
        out += stats["opackets"]
        inp += stats["ipackets"]
    return out, inp


def main():
    path, ports = sys.argv[1], int(sys.argv[2])
    warmup, secs, timeout = (float(v) for v in sys.argv[3:6])
    deadline = time.monotonic() + timeout
    s, maxlen = connect(path, deadline)
    while True:
        t = totals(s, maxlen, ports)
        if t is not None and t[0] > 0:
            break
        if time.monotonic() > deadline:
            sys.exit("the ports transmitted nothing within %.0f s" % timeout)
        time.sleep(0.1)
    time.sleep(warmup)
    a = totals(s, maxlen, ports)
    t0 = time.monotonic()
    time.sleep(secs)
    b = totals(s, maxlen, ports)
    t1 = time.monotonic()
    if a is None or b is None:
        sys.exit("the ports' statistics went away")
    print("RATE %d %d %.6f" % (b[0] - a[0], b[1] - a[1], t1 - t0), flush=True)


if __name__ == "__main__":
    main()
