#!/usr/bin/env python3
"""Wire faults without `tc netem` (DESIGN.md §8): a user-space NFQUEUE verdict program.

This kernel has no sch_netem, but it has iptables' NFQUEUE, TEE and `statistic`. Rules
(installed by the caller, see `tests/net/mod.rs` `Faults`) send a random sample of a
namespace's TCP to queue N; this program, run in that namespace, gives every queued packet
one of three fates:

  drop   (probability --drop):  an NF_DROP verdict. The packet was already counted as sent
         by the local stack (or had already crossed the wire, for PREROUTING): real loss.
  hold   (probability --hold):  accepted after a uniform --hold-ms delay while later packets
         pass: real reordering.
  delay  (the rest):            accepted after a uniform --delay-ms delay (delay with jitter).

Duplication is TEE's job (`-j TEE --gateway GW`), in the kernel.

It talks nfnetlink_queue directly over an AF_NETLINK socket (no library, no package: only the
Python standard library), in NFQNL_COPY_META mode (the verdict needs the packet id, not the
bytes), with fail-open set, so a full queue or a dead program passes packets instead of
losing them silently. It runs until SIGTERM/SIGINT or --max-seconds (bounded), then accepts
everything it still holds, unbinds, and writes its counters as one JSON object to --stats
(and stdout).

  ip netns exec NS python3 scripts/nfq_faults.py --queue 7 --drop 0.1 --hold 0.4 \
      --hold-ms 2:6 --delay-ms 0.5:1.5 --stats /tmp/q7.json
"""

import argparse
import heapq
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET = 0
NFQNL_MSG_VERDICT = 1
NFQNL_MSG_CONFIG = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3
NFQA_PACKET_HDR = 1
NFQA_VERDICT_HDR = 2
NFQA_CFG_CMD = 1
NFQA_CFG_PARAMS = 2
NFQA_CFG_QUEUE_MAXLEN = 3
NFQA_CFG_MASK = 4
NFQA_CFG_FLAGS = 5
NFQNL_CFG_CMD_BIND = 1
NFQNL_CFG_CMD_UNBIND = 2
NFQNL_COPY_META = 1
NFQA_CFG_F_FAIL_OPEN = 0x1
NF_DROP = 0
NF_ACCEPT = 1
SOL_NETLINK = 270
NETLINK_NO_ENOBUFS = 5
SO_RCVBUFFORCE = 33

QUEUE_MAXLEN = 16384
# Verdicts are sent in batches of netlink messages (one sendto each).
BATCH = 256


def nla(kind, payload):
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def nfq_msg(mtype, flags, seq, queue, attrs):
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(queue)) + attrs
    head = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | mtype, flags, seq, 0)
    return head + body


def verdict_msg(queue, packet_id, verdict):
    return nfq_msg(NFQNL_MSG_VERDICT, NLM_F_REQUEST, 0, queue,
                   nla(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id)))


class Queue:
    def __init__(self, num):
        self.num = num
        self.seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        try:
            self.sock.setsockopt(SOL_NETLINK, NETLINK_NO_ENOBUFS, 1)
        except OSError:
            pass
        self.sock.bind((0, 0))
        self.config(nla(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, 0)))
        self.config(nla(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META)))
        self.config(nla(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", QUEUE_MAXLEN)))
        self.config(nla(NFQA_CFG_MASK, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN))
                    + nla(NFQA_CFG_FLAGS, struct.pack("!I", NFQA_CFG_F_FAIL_OPEN)))
        self.sock.setblocking(False)

    def config(self, attrs):
        """Sends a config message and waits (≤ 2 s) for the kernel's acknowledgement."""
        self.seq += 1
        self.sock.sendto(nfq_msg(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, self.seq,
                                 self.num, attrs), (0, 0))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.sock], [], [], 0.2)
            if not ready:
                continue
            data = self.sock.recv(65536)
            for mtype, seq, payload in split(data):
                if mtype == NLMSG_ERROR and seq == self.seq:
                    err = -struct.unpack("=i", payload[:4])[0]
                    if err:
                        raise OSError(err, "nfqueue config for queue %d: %s"
                                      % (self.num, os.strerror(err)))
                    return
        raise TimeoutError("no answer from nfnetlink_queue for queue %d" % self.num)

    def unbind(self):
        try:
            self.sock.setblocking(True)
            self.sock.settimeout(1.0)
            self.config(nla(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_UNBIND, 0, 0)))
        except (OSError, TimeoutError):
            pass


def split(data):
    """Yields (type, seq, payload) for each netlink message in a datagram."""
    off = 0
    while off + 16 <= len(data):
        length, mtype, _flags, seq, _pid = struct.unpack_from("=IHHII", data, off)
        if length < 16:
            return
        yield mtype, seq, data[off + 16:off + length]
        off += (length + 3) & ~3


def packet_id(payload):
    """The id in NFQA_PACKET_HDR of an NFQNL_MSG_PACKET payload (after nfgenmsg)."""
    off = 4
    while off + 4 <= len(payload):
        length, kind = struct.unpack_from("=HH", payload, off)
        if length < 4:
            return None
        if (kind & 0x7FFF) == NFQA_PACKET_HDR:
            return struct.unpack_from("!I", payload, off + 4)[0]
        off += (length + 3) & ~3
    return None


def span(text):
    lo, _, hi = text.partition(":")
    lo = float(lo)
    return (lo / 1000.0, (float(hi) if hi else lo) / 1000.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queue", type=int, required=True)
    ap.add_argument("--drop", type=float, default=0.0, help="probability of NF_DROP")
    ap.add_argument("--hold", type=float, default=0.0, help="probability of a hold")
    ap.add_argument("--hold-ms", type=span, default=span("2:6"), help="MIN:MAX hold (ms)")
    ap.add_argument("--delay-ms", type=span, default=span("0.5:1.5"),
                    help="MIN:MAX delay of the other packets (ms)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--stats", default=None, help="write the counters here (JSON) on exit")
    ap.add_argument("--max-seconds", type=float, default=1800.0,
                    help="exit by itself after this long")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    q = Queue(args.queue)
    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    counts = {"queue": args.queue, "seen": 0, "dropped": 0, "held": 0, "delayed": 0,
              "max_pending": 0, "send_errors": 0}
    pending = []  # heap of (release time, tiebreak, packet id)
    tiebreak = 0
    out = []
    deadline = time.monotonic() + args.max_seconds
    print("nfq_faults: queue %d bound (drop %.3f, hold %.3f)" % (args.queue, args.drop, args.hold),
          flush=True)

    def flush():
        while out:
            chunk = b"".join(out[:BATCH])
            del out[:BATCH]
            try:
                q.sock.sendto(chunk, (0, 0))
            except BlockingIOError:
                select.select([], [q.sock], [], 0.05)
                try:
                    q.sock.sendto(chunk, (0, 0))
                except OSError:
                    counts["send_errors"] += 1
            except OSError:
                counts["send_errors"] += 1

    while not stop and time.monotonic() < deadline:
        now = time.monotonic()
        timeout = 0.2 if not pending else max(0.0, pending[0][0] - now)
        try:
            ready, _, _ = select.select([q.sock], [], [], min(timeout, 0.2))
        except InterruptedError:
            ready = []
        if ready:
            # Bounded: at most 512 datagrams per turn, so held packets are released on time.
            for _ in range(512):
                try:
                    data = q.sock.recv(262144)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                now = time.monotonic()
                for mtype, _seq, payload in split(data):
                    if mtype != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET):
                        continue
                    pid = packet_id(payload)
                    if pid is None:
                        continue
                    counts["seen"] += 1
                    r = rng.random()
                    if r < args.drop:
                        counts["dropped"] += 1
                        out.append(verdict_msg(q.num, pid, NF_DROP))
                        continue
                    if r < args.drop + args.hold:
                        counts["held"] += 1
                        lo, hi = args.hold_ms
                    else:
                        counts["delayed"] += 1
                        lo, hi = args.delay_ms
                    tiebreak += 1
                    heapq.heappush(pending, (now + rng.uniform(lo, hi), tiebreak, pid))
                counts["max_pending"] = max(counts["max_pending"], len(pending))
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            out.append(verdict_msg(q.num, heapq.heappop(pending)[2], NF_ACCEPT))
        flush()

    while pending:
        out.append(verdict_msg(q.num, heapq.heappop(pending)[2], NF_ACCEPT))
    flush()
    q.unbind()
    text = json.dumps(counts)
    if args.stats:
        with open(args.stats + ".tmp", "w") as f:
            f.write(text + "\n")
        os.replace(args.stats + ".tmp", args.stats)
    print(text, flush=True)


if __name__ == "__main__":
    try:
        main()
    except (OSError, TimeoutError) as e:
        print("nfq_faults: %s" % e, file=sys.stderr, flush=True)
        sys.exit(1)
