#!/usr/bin/env python3
"""Raw Ethernet frames for the hostile-input tests (tests/e2e_hostile.rs), sent from a testbed
namespace straight onto its veth with an AF_PACKET socket (Python's standard library only).

  frames.py malformed IFACE DST_MAC SRC_IP DST_IP COUNT PPS
      COUNT frames of each malformed kind below, interleaved, paced at PPS in total. Prints
      one JSON object: frames sent per kind (the key) and per drop reason the box should count
      them under ("expect": {reason: n}).
  frames.py flood IFACE DST_MAC SRC_IP DST_IP DPORT SPORT_LO SPORT_HI SECONDS [MAX_PPS]
      SYNs to DST_IP:DPORT from SRC_IP, source ports cycling SPORT_LO..SPORT_HI, as fast as
      the socket takes them (or at most MAX_PPS) for SECONDS. Prints {"sent", "seconds", "pps"}.
  frames.py fill IFACE DST_MAC SRC_IP DST_IP DPORT SPORT_LO COUNT PPS
      COUNT SYNs with distinct source ports from SPORT_LO, paced at PPS: COUNT new flows.
  frames.py blind IFACE DST_MAC SRC_IP SRC_PORT DST_IP DST_PORT COUNT
      Watches IFACE (≤ 15 s) for a segment SRC_IP:SRC_PORT -> DST_IP:DST_PORT leaving this
      host, then forges COUNT of each of: RSTs a quarter of the sequence space ahead and behind
      the sender's sequence number, data a quarter ahead, an ACK acknowledging a quarter of the
      space beyond the receiver's data, pure ACKs at the observed numbers with malformed
      options (length 0, length 1, overrunning the header). Prints the observed numbers and
      what was sent, with the drop reason or counter each kind should land in.

Every loop is bounded by COUNT or SECONDS.
"""

import json
import os
import random
import socket
import struct
import sys
import time

ETH_P_IP = 0x0800
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def mac_bytes(text):
    return bytes(int(x, 16) for x in text.split(":"))


def ip_bytes(text):
    return socket.inet_aton(text)


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(src, dst, payload, proto=6, ttl=64, ident=0, flags_frag=0x4000, ihl=5,
         version=4, total_len=None, options=b""):
    hl = ihl * 4
    tl = 20 + len(options) + len(payload) if total_len is None else total_len
    head = struct.pack("!BBHHHBBH4s4s", (version << 4) | ihl, 0, tl, ident, flags_frag, ttl,
                       proto, 0, src, dst) + options
    head = head[:10] + struct.pack("!H", csum(head)) + head[12:]
    del hl
    return head + payload


def tcp(src, dst, sport, dport, seq, ack, flags, window=65535, payload=b"", options=b"",
        data_offset=None, bad_checksum=False):
    off = (20 + len(options)) // 4 if data_offset is None else data_offset
    head = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                       off << 4, flags, window, 0, 0) + options
    pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(head) + len(payload))
    c = csum(pseudo + head + payload)
    if bad_checksum:
        c ^= 0x5A5A
    return head[:16] + struct.pack("!H", c) + head[18:] + payload


def eth(dst_mac, src_mac, ethertype, payload):
    return dst_mac + src_mac + struct.pack("!H", ethertype) + payload


class Sender:
    def __init__(self, iface):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.sock.bind((iface, 0))
        self.src_mac = self.sock.getsockname()[4]
        self.sent = 0

    def send(self, frame):
        self.sock.send(frame)
        self.sent += 1


FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def malformed(iface, dst_mac, src_ip, dst_ip, count, pps):
    s = Sender(iface)
    dm, sm = mac_bytes(dst_mac), s.src_mac
    src, dst = ip_bytes(src_ip), ip_bytes(dst_ip)
    rng = random.Random(1)
    count, pps = int(count), float(pps)
    syn = lambda sport, **kw: tcp(src, dst, sport, 5209, rng.getrandbits(32), 0, SYN, **kw)

    def ip_frame(payload, **kw):
        return eth(dm, sm, ETH_P_IP, ipv4(src, dst, payload, **kw))

    def random_ethertype():
        while True:
            t = rng.getrandbits(16)
            if t not in (0x0800, 0x0806, 0x8100, 0x88A8, 0x9100) and t >= 0x0600:
                return t

    # kind -> (the reason or counter it should be counted under, a frame maker)
    kinds = {
        # Ethernet header and 10 bytes: no room for an IPv4 header.
        "ip_truncated": ("truncated", lambda: eth(dm, sm, ETH_P_IP, os.urandom(10))),
        # A valid IPv4 header and 10 bytes of TCP.
        "tcp_truncated": ("truncated", lambda: ip_frame(syn(4000)[:10])),
        "ihl_below_5": ("bad_ip_header", lambda: ip_frame(syn(4001), ihl=3)),
        "ihl_beyond_frame": ("bad_ip_header",
                             lambda: eth(dm, sm, ETH_P_IP, ipv4(src, dst, b"", ihl=15,
                                                                proto=6))),
        "version_6": ("bad_ip_header", lambda: ip_frame(syn(4002), version=6)),
        "total_len_beyond_frame": ("bad_ip_header",
                                   lambda: ip_frame(syn(4003), total_len=1400)),
        "total_len_below_header": ("bad_ip_header", lambda: ip_frame(syn(4004), total_len=12)),
        "data_offset_below_5": ("bad_tcp_header", lambda: ip_frame(syn(4005, data_offset=2))),
        "data_offset_beyond_segment": ("bad_tcp_header",
                                       lambda: ip_frame(syn(4006, data_offset=15))),
        "fragment_more": ("fragment", lambda: ip_frame(syn(4007), flags_frag=0x2000)),
        "fragment_offset": ("fragment", lambda: ip_frame(syn(4008)[:8], flags_frag=0x0010)),
        "three_vlan_tags": ("vlan_tags", lambda: dm + sm + b"\x81\x00\x00\x01\x81\x00\x00\x02"
                            + b"\x81\x00\x00\x03\x08\x00" + ipv4(src, dst, syn(4009))),
        "random_ethertype": ("unsupported_ethertype",
                             lambda: eth(dm, sm, random_ethertype(),
                                         os.urandom(rng.randrange(20, 200)))),
        "not_our_mac": ("not_for_us", lambda: eth(b"\x02\x00\x00\xde\xad\x01", sm, ETH_P_IP,
                                                  ipv4(src, dst, syn(4010)))),
        # An ACK for no connection.
        "ack_without_flow": ("no_flow",
                             lambda: ip_frame(tcp(src, dst, 4011, 5209, rng.getrandbits(32),
                                                  rng.getrandbits(32), ACK))),
        # A SYN to a port no rule allows.
        "syn_denied": ("policy_deny", lambda: ip_frame(tcp(src, dst, 4012, 7000,
                                                          rng.getrandbits(32), 0, SYN))),
        # TTL 0 and 1: not forwarded; the box answers ICMP time exceeded.
        "ttl_0": ("icmp_time_exceeded", lambda: ip_frame(syn(4013), ttl=0)),
        "ttl_1": ("icmp_time_exceeded", lambda: ip_frame(syn(4014), ttl=1)),
        # Random bytes as an IPv4 datagram: dropped, for one reason or another.
        "random_ipv4": ("any_drop", lambda: eth(dm, sm, ETH_P_IP,
                                                os.urandom(rng.randrange(1, 120)))),
    }
    sent = {k: 0 for k in kinds}
    order = [k for k in kinds for _ in range(count)]
    rng.shuffle(order)
    t0 = time.monotonic()
    for i, k in enumerate(order):
        s.send(kinds[k][1]())
        sent[k] += 1
        # Pace: frame i leaves no earlier than i / pps seconds after the start.
        ahead = i / pps - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    expect = {}
    for k, n in sent.items():
        reason = kinds[k][0]
        expect[reason] = expect.get(reason, 0) + n
    print(json.dumps({"sent": sent, "expect": expect, "total": s.sent,
                      "seconds": round(time.monotonic() - t0, 2)}), flush=True)


def flood(iface, dst_mac, src_ip, dst_ip, dport, lo, hi, seconds, max_pps="0"):
    s = Sender(iface)
    dm = mac_bytes(dst_mac)
    src, dst = ip_bytes(src_ip), ip_bytes(dst_ip)
    lo, hi, dport, max_pps = int(lo), int(hi), int(dport), float(max_pps)
    rng = random.Random(2)
    # One prebuilt frame per source port (a SYN with MSS, SACK-permitted, window scale).
    opts = b"\x02\x04\x05\xb4\x04\x02\x01\x03\x03\x07"
    opts += b"\x01" * (-len(opts) % 4)
    frames = [eth(dm, s.src_mac, ETH_P_IP,
                  ipv4(src, dst, tcp(src, dst, p, dport, rng.getrandbits(32), 0, SYN,
                                     window=64240, options=opts), ident=p))
              for p in range(lo, hi + 1)]
    t0 = time.monotonic()
    end = t0 + float(seconds)
    n = 0
    errors = 0
    while True:
        for f in frames:
            try:
                s.sock.send(f)
                n += 1
            except OSError:
                errors += 1
        now = time.monotonic()
        if now >= end:
            break
        if max_pps > 0:
            ahead = n / max_pps - (now - t0)
            if ahead > 0:
                time.sleep(min(ahead, end - now))
    secs = time.monotonic() - t0
    print(json.dumps({"sent": n, "errors": errors, "seconds": round(secs, 2),
                      "pps": round(n / secs), "distinct_ports": len(frames)}), flush=True)


def fill(iface, dst_mac, src_ip, dst_ip, dport, lo, count, pps):
    s = Sender(iface)
    dm = mac_bytes(dst_mac)
    src, dst = ip_bytes(src_ip), ip_bytes(dst_ip)
    lo, count, dport, pps = int(lo), int(count), int(dport), float(pps)
    rng = random.Random(3)
    t0 = time.monotonic()
    for i in range(count):
        s.send(eth(dm, s.src_mac, ETH_P_IP,
                   ipv4(src, dst, tcp(src, dst, lo + i, dport, rng.getrandbits(32), 0, SYN,
                                      window=64240))))
        ahead = i / pps - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
    print(json.dumps({"sent": s.sent, "seconds": round(time.monotonic() - t0, 2)}), flush=True)


def observe(iface, src, sport, dst, dport, limit=15.0):
    """The first TCP segment src:sport -> dst:dport leaving this host on iface."""
    r = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    r.bind((iface, 0))
    r.settimeout(0.5)
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            frame, addr = r.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] != PACKET_OUTGOING or len(frame) < 54:
            continue
        if struct.unpack("!H", frame[12:14])[0] != ETH_P_IP:
            continue
        ip = frame[14:]
        hl = (ip[0] & 0x0F) * 4
        if ip[9] != 6 or ip[12:16] != src or ip[16:20] != dst:
            continue
        t = ip[hl:]
        sp, dp, seq, ack = struct.unpack("!HHII", t[:12])
        if sp != sport or dp != dport or not (t[13] & ACK):
            continue
        win = struct.unpack("!H", t[14:16])[0]
        return seq, ack, win
    return None


def blind(iface, dst_mac, src_ip, sport, dst_ip, dport, count):
    src, dst = ip_bytes(src_ip), ip_bytes(dst_ip)
    sport, dport, count = int(sport), int(dport), int(count)
    seen = observe(iface, src, sport, dst, dport)
    if seen is None:
        print(json.dumps({"error": "no segment of the flow seen on %s" % iface}), flush=True)
        sys.exit(1)
    seq, ack, win = seen
    s = Sender(iface)
    dm = mac_bytes(dst_mac)
    q = 1 << 30

    def seg(sq, ak, flags, payload=b"", options=b""):
        return eth(dm, s.src_mac, ETH_P_IP,
                   ipv4(src, dst, tcp(src, dst, sport, dport, sq, ak, flags, window=win,
                                      payload=payload, options=options)))

    kinds = {
        "rst_ahead": ("rst_out_of_window", lambda: seg(seq + q, 0, RST)),
        "rst_ack_ahead": ("rst_out_of_window", lambda: seg(seq + q, ack, RST | ACK)),
        "rst_behind": ("rst_out_of_window", lambda: seg(seq - q, ack, RST | ACK)),
        "data_ahead": ("out_of_window",
                       lambda: seg(seq + q, ack, PSH | ACK, payload=b"EVIL" * 64)),
        "ack_beyond_data": ("ack_beyond_data", lambda: seg(seq, ack + q, ACK)),
        # NOP, NOP, then a kind with length 0 / 1 / running past the header.
        "option_len_0": ("options_malformed", lambda: seg(seq, ack, ACK,
                                                          options=b"\x01\x01\x08\x00")),
        "option_len_1": ("options_malformed", lambda: seg(seq, ack, ACK,
                                                          options=b"\x01\x01\x08\x01")),
        "option_overrun": ("options_malformed", lambda: seg(seq, ack, ACK,
                                                            options=b"\x01\x01\x08\x0c")),
    }
    sent = {k: 0 for k in kinds}
    for _ in range(count):
        for k, (_, make) in kinds.items():
            s.send(make())
            sent[k] += 1
        time.sleep(0.002)
    expect = {}
    for k, n in sent.items():
        expect[kinds[k][0]] = expect.get(kinds[k][0], 0) + n
    print(json.dumps({"observed": {"seq": seq, "ack": ack, "window": win}, "sent": sent,
                      "expect": expect}), flush=True)


COMMANDS = {"malformed": malformed, "flood": flood, "fill": fill, "blind": blind}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
