#!/usr/bin/env python3
"""ICMP errors about a spliced connection, for tests/e2e_workers.rs (standard library only).

  icmp_quote.py hold ADDR PORT SECONDS
      Opens a TCP connection to ADDR:PORT (an echo server), checks one echo, holds the
      connection open for SECONDS, closes it. Prints "held CLIENT_PORT" once the echo came back.
  icmp_quote.py send TO QSRC QSPORT QDST QDPORT QSEQ
      Sends TO an ICMP "fragmentation needed" (MTU 1400) quoting a TCP segment
      QSRC:QSPORT -> QDST:QDPORT with sequence number QSEQ, from this host's own address
      (the kernel's raw ICMP socket). Prints "sent".
  icmp_quote.py watch SECONDS
      Prints, as one JSON list, every ICMP destination-unreachable this host receives within
      SECONDS: the quoted segment's {"src", "sport", "dst", "dport", "seq"}.

Every loop is bounded by SECONDS.
"""

import json
import socket
import struct
import sys
import time

from frames import csum, ip_bytes, ipv4, tcp


def hold(addr, port, seconds):
    s = socket.create_connection((addr, int(port)), timeout=10)
    s.sendall(b"hello")
    got = b""
    while len(got) < 5:
        chunk = s.recv(5 - len(got))
        if not chunk:
            sys.exit("the echo server closed the connection")
        got += chunk
    if got != b"hello":
        sys.exit("echoed %r" % got)
    print("held", s.getsockname()[1], flush=True)
    time.sleep(float(seconds))
    s.close()


def send(to, qsrc, qsport, qdst, qdport, qseq):
    src, dst = ip_bytes(qsrc), ip_bytes(qdst)
    segment = tcp(src, dst, int(qsport), int(qdport), int(qseq), 0, 0x10)
    quoted = ipv4(src, dst, segment)[:28]
    body = struct.pack("!BBHHH", 3, 4, 0, 0, 1400) + quoted
    body = body[:2] + struct.pack("!H", csum(body)) + body[4:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.sendto(body, (to, 0))
    print("sent", flush=True)


def watch(seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.settimeout(0.2)
    seen = []
    end = time.monotonic() + float(seconds)
    while time.monotonic() < end:
        try:
            packet = s.recv(2048)
        except socket.timeout:
            continue
        ihl = (packet[0] & 0x0F) * 4
        icmp = packet[ihl:]
        if len(icmp) < 8 + 28 or icmp[0] != 3:
            continue
        q = icmp[8:]
        qihl = (q[0] & 0x0F) * 4
        sport, dport, seq = struct.unpack("!HHI", q[qihl:qihl + 8])
        seen.append({
            "src": socket.inet_ntoa(q[12:16]),
            "sport": sport,
            "dst": socket.inet_ntoa(q[16:20]),
            "dport": dport,
            "seq": seq,
        })
    print(json.dumps(seen), flush=True)


def main(argv):
    if len(argv) == 4 and argv[0] == "hold":
        hold(*argv[1:])
    elif len(argv) == 7 and argv[0] == "send":
        send(*argv[1:])
    elif len(argv) == 2 and argv[0] == "watch":
        watch(argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
