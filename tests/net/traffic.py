#!/usr/bin/env python3
"""Traffic for the end-to-end tests (tests/e2e_faults.rs, tests/e2e_hostile.rs): a server and a
client that move seeded pseudo-random bytes both ways at once and report the SHA-256 of what
each side sent and received, so the test can compare them byte-exactly.

The exchange, the same on every port (the box's `http-basic` sees a real HTTP request head):

  [server, with --banner]   READY\\r\\n
  client -> server          POST /stream HTTP/1.1 ... X-Seed: S, Content-Length: UP, X-Down: DOWN
  server -> client          HTTP/1.1 200 OK ... Content-Length: DOWN, then DOWN bytes
  client -> server          UP bytes (pipelined right after the head with --pipeline, else
                            after the response head), then a FIN
  server                    reads UP bytes and the FIN, sends its DOWN bytes and a FIN

With `--auth line` the client first answers the box's `Username: `/`Password: ` prompts (or,
when the box has cached the login, sees the server's READY at once); with --pipeline the
request and the upload follow the password line in the same write, before the box has even
answered, so they are in flight while the box authenticates, connects and drains.

  traffic.py server ADDR PORT LOG [--banner]
      Serves forever (asyncio: thousands of idle connections cost nothing); appends one JSON
      line per finished connection to LOG: seed, peer, rx_len, rx_sha, tx_len, tx_sha, error.
  traffic.py client HOST PORT --conns N --up BYTES --down BYTES [--auth none|line|http]
                    [--pipeline] [--seed0 S] [--timeout SECS] [--banner] [--expect ok|reset]
      N concurrent connections (seeds S..S+N-1); one JSON line per connection on stdout, then
      a summary line; exits 1 if any connection failed (with --expect reset: if any was NOT
      reset).
  traffic.py echo-probe HOST PORT SECONDS
      One long-lived connection to `echo-server`: for SECONDS, sends 16 KiB every 100 ms and
      checks that exactly those bytes come back; exits 1 on the first mismatch or error.
  traffic.py echo-server ADDR PORT

Every socket operation has a timeout; every loop is bounded by bytes or by time.
"""

import asyncio
import base64
import hashlib
import json
import os
import random
import socket
import sys
import threading
import time

CHUNK = 65536
POOL_SIZE = 8 << 20
_pool = None


def pool():
    """8 MiB of pseudo-random bytes (fixed seed); streams are slices of it at seeded offsets."""
    global _pool
    if _pool is None:
        _pool = memoryview(random.Random(0x5EED).randbytes(POOL_SIZE))
    return _pool


def stream(seed, n):
    """Yields the n bytes of stream `seed` in chunks of at most CHUNK (memoryviews)."""
    p = pool()
    rng = random.Random(seed)
    left = n
    while left > 0:
        k = min(CHUNK, left)
        off = rng.randrange(0, POOL_SIZE - k)
        yield p[off:off + k]
        left -= k


def head_fields(head):
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return fields


# ---------------------------------------------------------------------------------------------
# server


async def serve_conn(reader, writer, log, banner):
    peer = writer.get_extra_info("peername")
    entry = {"peer": "%s:%d" % peer[:2], "seed": None, "rx_len": 0, "tx_len": 0,
             "rx_sha": None, "tx_sha": None, "error": None}
    t0 = time.monotonic()
    try:
        if banner:
            writer.write(b"READY\r\n")
            await writer.drain()
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
        except asyncio.IncompleteReadError as e:
            entry["error"] = "EOF before the request head (%d bytes)" % len(e.partial)
            return
        f = head_fields(head)
        seed, up, down = int(f["x-seed"]), int(f["content-length"]), int(f["x-down"])
        entry["seed"] = seed
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % down)

        async def receive():
            h = hashlib.sha256()
            n = 0
            while True:
                d = await asyncio.wait_for(reader.read(262144), 120)
                if not d:
                    break
                h.update(d)
                n += len(d)
                if n > up:
                    break
            entry["rx_len"], entry["rx_sha"] = n, h.hexdigest()

        async def send():
            h = hashlib.sha256()
            for chunk in stream(seed * 2 + 1, down):
                h.update(chunk)
                writer.write(chunk)
                entry["tx_len"] += len(chunk)
                await asyncio.wait_for(writer.drain(), 120)
            writer.write_eof()
            entry["tx_sha"] = h.hexdigest()

        await asyncio.gather(receive(), send())
    except (ConnectionError, OSError, asyncio.TimeoutError, ValueError, KeyError) as e:
        entry["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        entry["elapsed"] = round(time.monotonic() - t0, 3)
        with open(log, "a") as f:
            f.write(json.dumps(entry) + "\n")
        writer.close()


def server(addr, port, log, *flags):
    banner = "--banner" in flags

    async def main():
        srv = await asyncio.start_server(lambda r, w: serve_conn(r, w, log, banner),
                                         addr, int(port), backlog=4096, reuse_address=True)
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())


# ---------------------------------------------------------------------------------------------
# client


class Failed(Exception):
    pass


class Conn:
    def __init__(self, sock, timeout):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout

    def fill(self):
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            raise Failed("timed out waiting (have %r)" % self.buf[:200])
        if not d:
            raise Failed("EOF (have %r)" % self.buf[:200])
        self.buf += d

    def expect(self, token):
        while len(self.buf) < len(token) and token.startswith(self.buf):
            self.fill()
        if not self.buf.startswith(token):
            raise Failed("expected %r, got %r" % (token, self.buf[:200]))
        self.buf = self.buf[len(token):]

    def until(self, token, limit=16384):
        while token not in self.buf:
            if len(self.buf) > limit:
                raise Failed("no %r in %r" % (token, self.buf[:200]))
            self.fill()
        i = self.buf.index(token) + len(token)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out


def one_client(host, port, seed, up, down, auth, pipeline, banner, timeout, result):
    t0 = time.monotonic()
    result.update({"seed": seed, "sport": None, "auth": None, "tx_len": 0, "rx_len": 0,
                   "tx_sha": None, "rx_sha": None, "error": None, "reset": False})
    sock = None
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
        result["sport"] = sock.getsockname()[1]
        c = Conn(sock, timeout)
        creds = base64.b64encode(b"alice:wonderland").decode()
        head = ("POST /stream HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: traffic.py\r\n"
                "Authorization: Basic %s\r\nX-Seed: %d\r\nX-Down: %d\r\n"
                "Content-Length: %d\r\n\r\n" % (host, port, creds, seed, down, up)).encode()
        body = stream(seed * 2, up)
        tx = hashlib.sha256()
        early = []  # the chunks sent together with the head

        def take_early(k):
            for chunk in body:
                tx.update(chunk)
                early.append(bytes(chunk))
                if len(early) >= k:
                    break
            return b"".join(early)

        if auth == "line":
            # The box prompts, or (login cached) the server's banner comes at once.
            first = (b"Username: ", b"READY\r\n")
            while not any(c.buf.startswith(t) for t in first):
                if not any(t.startswith(c.buf) for t in first):
                    raise Failed("expected a prompt or READY, got %r" % c.buf[:200])
                c.fill()
            if c.buf.startswith(b"Username: "):
                result["auth"] = "prompted"
                c.expect(b"Username: ")
                sock.sendall(b"alice\r\n")
                c.expect(b"Password: ")
                if pipeline:
                    sock.sendall(b"wonderland\r\n" + head + take_early(16))
                else:
                    sock.sendall(b"wonderland\r\n")
                c.expect(b"Authenticated as alice.\r\n")
            else:
                result["auth"] = "cached"
                if pipeline:
                    sock.sendall(head + take_early(16))
            c.expect(b"READY\r\n")
            if not pipeline:
                sock.sendall(head)
        else:
            result["auth"] = auth
            if banner:
                c.expect(b"READY\r\n")
            sock.sendall(head + (take_early(16) if pipeline else b""))
        if not pipeline:
            resp = c.until(b"\r\n\r\n")
            if not resp.startswith(b"HTTP/1.1 200 OK\r\n"):
                raise Failed("response head %r" % resp[:200])
        result["tx_len"] = sum(len(x) for x in early)
        errors = []

        def send():
            try:
                for chunk in body:
                    tx.update(chunk)
                    sock.sendall(chunk)
                    result["tx_len"] += len(chunk)
                sock.shutdown(socket.SHUT_WR)
                result["tx_sha"] = tx.hexdigest()
            except OSError as e:
                errors.append(e)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        if pipeline:
            resp = c.until(b"\r\n\r\n")
            if not resp.startswith(b"HTTP/1.1 200 OK\r\n"):
                raise Failed("response head %r" % resp[:200])
        rx = hashlib.sha256()
        n = len(c.buf)
        rx.update(c.buf)
        c.buf = b""
        while n <= down:
            try:
                d = sock.recv(262144)
            except socket.timeout:
                raise Failed("timed out receiving after %d bytes" % n)
            if not d:
                break
            rx.update(d)
            n += len(d)
        result["rx_len"], result["rx_sha"] = n, rx.hexdigest()
        sender.join(timeout)
        if sender.is_alive():
            raise Failed("the sender is stuck after %d bytes" % result["tx_len"])
        if errors:
            raise errors[0]
        if n != down:
            raise Failed("received %d of %d bytes" % (n, down))
    except ConnectionResetError as e:
        result["reset"] = True
        result["error"] = "reset: %s" % e
    except (OSError, Failed) as e:
        result["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        result["elapsed"] = round(time.monotonic() - t0, 3)
        if sock is not None:
            sock.close()


def client(host, port, *opts):
    args = {"--conns": "1", "--up": "0", "--down": "0", "--auth": "none", "--seed0": "1",
            "--timeout": "60", "--expect": "ok"}
    flags = set()
    it = iter(opts)
    for o in it:
        if o in ("--pipeline", "--banner"):
            flags.add(o)
        elif o in args:
            args[o] = next(it)
        else:
            raise SystemExit("unknown option %s" % o)
    n, seed0 = int(args["--conns"]), int(args["--seed0"])
    results = [{} for _ in range(n)]
    pool()
    t0 = time.monotonic()
    threads = [threading.Thread(target=one_client, args=(
        host, int(port), seed0 + i, int(args["--up"]), int(args["--down"]), args["--auth"],
        "--pipeline" in flags, "--banner" in flags, float(args["--timeout"]), results[i]),
        daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    limit = time.monotonic() + float(args["--timeout"]) * 4 + 60
    for t in threads:
        t.join(max(0.0, limit - time.monotonic()))
    elapsed = time.monotonic() - t0
    for r in results:
        print(json.dumps(r), flush=True)
    if args["--expect"] == "reset":
        bad = [r for r in results if not r.get("reset")]
    else:
        bad = [r for r in results if r.get("error") or r.get("elapsed") is None]
    moved = sum(r.get("tx_len", 0) + r.get("rx_len", 0) for r in results)
    print(json.dumps({"summary": True, "conns": n, "failed": len(bad), "bytes": moved,
                      "seconds": round(elapsed, 2),
                      "mbit_s": round(moved * 8 / max(elapsed, 1e-6) / 1e6, 1)}), flush=True)
    sys.exit(1 if bad else 0)


# ---------------------------------------------------------------------------------------------
# echo


def echo_server(addr, port):
    async def echo(reader, writer):
        try:
            while True:
                d = await reader.read(65536)
                if not d:
                    break
                writer.write(d)
                await writer.drain()
            writer.write_eof()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def main():
        srv = await asyncio.start_server(echo, addr, int(port), backlog=1024, reuse_address=True)
        async with srv:
            await srv.serve_forever()

    asyncio.run(main())


def echo_probe(host, port, seconds):
    sock = socket.create_connection((host, int(port)), timeout=10)
    c = Conn(sock, 10)
    rng = random.Random(7)
    end = time.monotonic() + float(seconds)
    rounds = 0
    t0 = time.monotonic()
    try:
        while time.monotonic() < end:
            msg = rng.randbytes(16384)
            sock.sendall(msg)
            while len(c.buf) < len(msg):
                c.fill()
            if c.buf[:len(msg)] != msg:
                raise Failed("round %d: the echo differs" % rounds)
            c.buf = c.buf[len(msg):]
            rounds += 1
            time.sleep(0.1)
        sock.shutdown(socket.SHUT_WR)
        c.sock.settimeout(10)
        while True:
            d = sock.recv(65536)
            if not d:
                break
    except (OSError, Failed) as e:
        print(json.dumps({"rounds": rounds, "error": "%s: %s" % (type(e).__name__, e),
                          "at": round(time.monotonic() - t0, 2)}), flush=True)
        sys.exit(1)
    print(json.dumps({"rounds": rounds, "error": None, "sport": sock.getsockname()[1]}),
          flush=True)


COMMANDS = {"server": server, "client": client, "echo-server": echo_server,
            "echo-probe": echo_probe}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
