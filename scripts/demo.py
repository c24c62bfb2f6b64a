"""The demo's own clients and servers (scripts/demo.sh; Python standard library only).

  demo.py serve-sink ADDR PORT             greets, reads to EOF, answers the byte count and SHA-256
  demo.py serve-http ADDR PORT FILE        a short page at /, FILE at any other path
  demo.py line-client HOST PORT MIB        logs in with `line`, uploads MIB MiB, checks the SHA-256
  demo.py report BOX_LOG STATS_JSON COUNTS per connection: phases, deltas, packets of each path
"""
import hashlib, json, os, random, re, socket, sys, time

# The end-to-end tests' helpers (tests/net/dialogue.py: the exact-dialogue reader).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "net"))
import dialogue  # noqa: E402

CLIENT_TIMEOUT = 60
# dialogue's failure messages name the timeout: the client's socket uses CLIENT_TIMEOUT.
dialogue.TIMEOUT = CLIENT_TIMEOUT


def serve_sink(addr, port):
    """Greets each client, reads until EOF, answers with the byte count and SHA-256."""
    srv = socket.create_server((addr, int(port)))
    while True:
        c, peer = srv.accept()
        c.settimeout(120)
        try:
            c.sendall(b"hello from the server %s:%s\r\n" % (addr.encode(), port.encode()))
            h, n = hashlib.sha256(), 0
            for d in iter(lambda: c.recv(262144), b""):
                h.update(d)
                n += len(d)
            c.sendall(b"received %d bytes, sha256 %s\r\n" % (n, h.hexdigest().encode()))
            c.shutdown(socket.SHUT_WR)
            print("server: %s:%d sent %d bytes" % (peer[0], peer[1], n), flush=True)
        except OSError as e:
            print("server: %s:%d: %s" % (peer[0], peer[1], e), flush=True)
        finally:
            c.close()


def serve_http(addr, port, path):
    """A minimal HTTP/1.1 server: a short page at /, the file at any other path; logs each
    request line and its header names."""
    srv = socket.create_server((addr, int(port)))
    while True:
        c, peer = srv.accept()
        c.settimeout(120)
        try:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                d = c.recv(65536)
                if not d:
                    break
                head += d
            lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            names = [l.split(":", 1)[0] for l in lines[1:] if ":" in l]
            print("server: %s:%d %s, headers %s" % (peer[0], peer[1], lines[0], ", ".join(names)),
                  flush=True)
            if lines[0].split(" ")[1:2] == ["/"]:
                page = b"<html><body>The server behind the box.</body></html>\n"
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                          b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                          % (len(page), page))
            else:
                with open(path, "rb") as f:
                    size = f.seek(0, 2)
                    f.seek(0)
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                              b"Content-Length: %d\r\nConnection: close\r\n\r\n" % size)
                    c.sendfile(f)
            c.shutdown(socket.SHUT_WR)
            while c.recv(65536):
                pass
        except OSError as e:
            print("server: %s:%d: %s" % (peer[0], peer[1], e), flush=True)
        finally:
            c.close()


class Dialog(dialogue.Reader):
    """The exact-dialogue reader of the end-to-end tests, printing each step as it reads it."""

    def __init__(self, sock):
        super().__init__(sock, "client")

    def expect(self, token, who):
        super().expect(token)
        print("    %-6s > %s" % (who, token.decode().rstrip()), flush=True)

    def line(self, who):
        while b"\r\n" not in self.buf:
            d = self.more("a line")
            if not d:
                self.fail("EOF while waiting for a line (got %r)" % self.buf)
            self.buf += d
        text, _, self.buf = self.buf.partition(b"\r\n")
        print("    %-6s > %s" % (who, text.decode()), flush=True)
        return text.decode()


def line_client(host, port, mib):
    """Logs in with `line`, uploads MIB MiB, compares the server's SHA-256 with its own."""
    s = socket.create_connection((host, int(port)), timeout=CLIENT_TIMEOUT)
    me = s.getsockname()
    print("    client %s:%d connected to %s:%s" % (me[0], me[1], host, port), flush=True)
    d = Dialog(s)
    d.expect(b"Username: ", "box")
    s.sendall(b"alice\r\n")
    print("    %-6s < alice" % "client", flush=True)
    d.expect(b"Password: ", "box")
    s.sendall(b"wonderland\r\n")
    print("    %-6s < **********" % "client", flush=True)
    d.expect(b"Authenticated as alice.\r\n", "box")
    d.line("server")
    total = int(mib) << 20
    rng = random.Random(int(time.time()))
    h, sent, t0, shown = hashlib.sha256(), 0, time.monotonic(), 0
    while sent < total:
        chunk = rng.randbytes(min(1 << 20, total - sent))
        s.sendall(chunk)
        h.update(chunk)
        sent += len(chunk)
        if sent * 4 // total > shown:
            shown = sent * 4 // total
            print("    upload: %4d of %d MiB" % (sent >> 20, total >> 20), flush=True)
    s.shutdown(socket.SHUT_WR)
    reply = d.line("server")
    secs = time.monotonic() - t0
    m = re.match(r"received (\d+) bytes, sha256 ([0-9a-f]+)", reply)
    if not m or int(m.group(1)) != total or m.group(2) != h.hexdigest():
        sys.exit("client: the server got other bytes than were sent (sent %d, sha256 %s)"
                 % (total, h.hexdigest()))
    print("    %d MiB uploaded in %.2f s (%.0f Mbit/s), SHA-256 identical at both ends"
          % (total >> 20, secs, total * 8 / secs / 1e6), flush=True)


def quad_of(line):
    m = re.search(r"(\d+\.\d+\.\d+\.\d+):(\d+) > (\d+\.\d+\.\d+\.\d+):(\d+)", line)
    return m and (m.group(1), int(m.group(2)), m.group(3), int(m.group(4)))


def report(box_log, stats_json, counts_file):
    """Per connection: phases, deltas, and packets of the participating stack vs the fast path."""
    log = open(box_log, errors="replace").read().splitlines()
    stats = json.load(open(stats_json))
    counts = {}
    for l in open(counts_file):
        port, *nums = l.split()
        counts[int(port)] = [int(x) for x in nums]
    ok = True
    conn_re = re.compile(r"^\[(\S+)\s+\w+\s+\S+\] (\S+):(\d+) -> (\S+):(\d+): (.*)$")
    events = {}
    for l in log:
        m = conn_re.match(l)
        if m:
            key = (m.group(2), int(m.group(3)), m.group(4), int(m.group(5)))
            events.setdefault(key, []).append((m.group(1), m.group(6)))
    names = {2323: "line, spliced after the login",
             80: "http-basic logged in at the virtual HTTP origin, spliced after the request"}
    for port, (c_out, c_in, s_out, s_in) in sorted(counts.items()):
        spliced = [(k, ev) for k, ev in events.items() if k[3] == port
                   and any(e.startswith("spliced") for _, e in ev)]
        print("\n  connection to 198.19.0.2:%d (%s)" % (port, names.get(port, "")))
        if not spliced:
            print("    NOT SPLICED: %s" % [ev for k, ev in events.items() if k[3] == port])
            ok = False
            continue
        key, ev = spliced[-1]
        print("    client %s:%d -> server %s:%d" % key)
        auth = [(t, e) for t, e in ev if "accepted" in e or "logged in before" in e]
        sp = [(t, e) for t, e in ev if e.startswith("spliced")][0]
        stack_in = stack_out = 0
        for l in log:
            if "leg in:" in l or "leg out:" in l:
                q = quad_of(l)
                if q and ((q[0], q[1], q[2], q[3]) == key or (q[2], q[3], q[0], q[1]) == key):
                    if "leg in:" in l:
                        stack_in += 1
                    else:
                        stack_out += 1
        d = re.search(r"delta1 (\d+) delta2 (\d+) timestamps (\w+) window shifts in "
                      r"\[(\d+), (\d+)\] out \[(\d+), (\d+)\]", sp[1])
        print("    1. proxied   the participating stack answered the SYN as the server "
              "and authenticated:")
        for t, e in auth:
            print("                 %s  %s" % (t, e))
        print("    2. draining  new data held back (not acknowledged) until both legs were "
              "quiet:")
        print("                 every byte the box sent acknowledged, every byte it "
              "acknowledged relayed")
        print("    3. spliced   %s  Δ1 = seq1 - ack1 = %s, Δ2 = seq2 - ack2 = %s"
              % (sp[0], d.group(1), d.group(2)))
        print("                 TCP timestamps %s; window scale: client and server announced "
              "%s and %s, each was told %s and %s by the box's legs,"
              % ("on (offsets applied both ways)" if d.group(3) == "true" else "off",
                 d.group(4), d.group(5), d.group(6), d.group(7)))
        print("                 so the fast path rescales every window field; the legs are freed")
        # Counted where the box delivers them (the receivers' INPUT: one count per wire
        # packet; a sender's OUTPUT sees TCP's GSO bursts before they are cut to size).
        delivered = c_in + s_in
        fast = max(delivered - stack_out, 0)
        print("    packets      participating stack: %d received, %d sent; fast path: %d carried "
              "(%.3f%% of the %d the box delivered)"
              % (stack_in, stack_out, fast, 100.0 * fast / max(delivered, 1), delivered))
    w = stats.get("workers", [])
    fwd = sum(x.get("forwarded", 0) for x in w)
    ctl = sum(x.get("to_control", 0) for x in w)
    c = stats.get("connections", {})
    drops = {k: v for k, v in stats.get("drops", {}).items() if v}
    print("\n  the box's counters (whole run, ping and iperf3 included):")
    print("    fast path forwarded %d packets; %d went to the control plane "
          "(participating stack, ARP, ICMP to the box)" % (fwd, ctl))
    print("    connections: %s" % ", ".join("%s %s" % kv for kv in c.items()))
    print("    drops: %s" % (", ".join("%s %d" % kv for kv in drops.items()) or "none"))
    if c.get("spliced", 0) < 2 or c.get("drain_timeout", 0) or c.get("fallback", 0):
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    try:
        {"serve-sink": serve_sink, "serve-http": serve_http, "line-client": line_client,
         "report": report}[sys.argv[1]](*sys.argv[2:])
    except KeyboardInterrupt:
        sys.exit(130)
