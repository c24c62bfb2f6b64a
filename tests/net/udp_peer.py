#!/usr/bin/env python3
"""UDP peers for the end-to-end tests of the box's UDP flows (tests/e2e_udp.rs).

  udp_peer.py serve ADDR PORT DELAY COUNT
      Answers COUNT datagrams on ADDR:PORT, each DELAY seconds after it came, with
      b"re:" + its payload, then exits. Prints "ready" once bound.
  udp_peer.py ask SRCPORT ADDR PORT WAIT
      Sends b"hello" from SRCPORT to ADDR:PORT on a connected socket and prints what came
      back within WAIT seconds: "reply <payload>", "refused" (an ICMP port unreachable
      reached the socket) or "silent".
  udp_peer.py listen PORT WAIT
      Counts the datagrams reaching PORT within WAIT seconds and prints "got N".
"""

import socket
import sys
import time


def serve(addr, port, delay, count):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    print("ready", flush=True)
    for _ in range(count):
        data, peer = s.recvfrom(2048)
        time.sleep(delay)
        s.sendto(b"re:" + data, peer)


def ask(srcport, addr, port, wait):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", srcport))
    s.connect((addr, port))
    s.settimeout(wait)
    s.send(b"hello")
    try:
        print("reply", s.recv(2048).decode(errors="replace"))
    except ConnectionRefusedError:
        print("refused")
    except socket.timeout:
        print("silent")


def listen(port, wait):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.settimeout(0.2)
    got = 0
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            s.recv(2048)
            got += 1
        except socket.timeout:
            pass
    print("got", got)


def main(argv):
    if len(argv) == 5 and argv[0] == "serve":
        serve(argv[1], int(argv[2]), float(argv[3]), int(argv[4]))
    elif len(argv) == 5 and argv[0] == "ask":
        ask(int(argv[1]), argv[2], int(argv[3]), float(argv[4]))
    elif len(argv) == 3 and argv[0] == "listen":
        listen(int(argv[1]), float(argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
