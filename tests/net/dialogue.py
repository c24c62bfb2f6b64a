"""What the login helpers share (tests/net/login_helper.py for tests/e2e_login,
tests/net/auth_helper.py for tests/e2e_auth): exiting on the first failure, reading an exact
dialogue, echoing bytes through a connection, the echo server with a banner that a client
whose login is cached must see first, and an HTTP server that logs every request's headers
(also used by tests/net/proxy_helper.py and, the echo exchange and the HTTP server class, by
tests/net/options_helper.py). Imported by those scripts (they run from this
directory, so it is on their path); not run by itself.

Every socket operation has a timeout; every failure exits non-zero with a message.
(tests/net/traffic.py has the same exact-dialogue loop in its `Conn`, but it raises and
truncates what it got; these helpers exit at once, naming the step.)
"""

import functools
import json
import os
import socket
import socketserver
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

TIMEOUT = 10.0
# The echo server's greeting: what a client whose login is cached must see first.
BANNER = b"ECHO READY\r\n"
# How long the echo server waits for a client's next bytes.
ECHO_SERVER_TIMEOUT = 60


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


class Reader:
    """Reads an exact dialogue from a socket; `what`, if given, starts every failure."""

    def __init__(self, sock, what=None):
        self.sock = sock
        self.what = what
        self.buf = b""

    def fail(self, msg):
        fail(msg if self.what is None else "%s: %s" % (self.what, msg))

    def more(self, expecting):
        """The next bytes from the socket (b"" at EOF)."""
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            self.fail("no %r within %.0f s (got %r)" % (expecting, TIMEOUT, self.buf))
        except OSError as e:
            self.fail("%s while expecting %r (got %r)" % (e, expecting, self.buf))
        return chunk

    def expect(self, token):
        while len(self.buf) < len(token) and token.startswith(self.buf):
            chunk = self.more(token)
            if not chunk:
                self.fail("EOF while expecting %r (got %r)" % (token, self.buf))
            self.buf += chunk
        if not self.buf.startswith(token):
            self.fail("expected %r, got %r" % (token, self.buf))
        self.buf = self.buf[len(token):]

    def expect_eof(self):
        if self.buf:
            self.fail("expected EOF, got %r" % self.buf)
        chunk = self.more("EOF")
        if chunk:
            self.fail("expected EOF, got %r" % chunk)


def echo_exchange(s, data, timeout, counts):
    """Sends `data` and then a FIN from a thread while it reads the echo back, and compares it
    byte for byte. `counts` (a dict) follows the progress in `tx_len` and `rx_len`; a
    receive stalled for `timeout` ends the exchange. Returns what went wrong, as a list of
    messages (empty if the echo was byte-exact and ended with a clean EOF)."""
    n = len(data)
    errors = []
    counts["tx_len"] = counts["rx_len"] = 0

    def send():
        try:
            view = memoryview(data)
            for off in range(0, n, 65536):
                s.sendall(view[off:off + 65536])
                counts["tx_len"] = min(off + 65536, n)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append("send after %d bytes: %s: %s" % (counts["tx_len"], type(e).__name__, e))

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    got = bytearray()
    try:
        # One byte more than was sent is enough to tell that the echo is too long.
        while len(got) <= n:
            chunk = s.recv(262144)
            if not chunk:
                break
            got += chunk
            counts["rx_len"] = len(got)
    except socket.timeout:
        errors.append("receive stalled for %.0f s after %d bytes (%d sent)"
                      % (timeout, len(got), counts["tx_len"]))
    except OSError as e:
        errors.append("receive after %d bytes (%d sent): %s: %s"
                      % (len(got), counts["tx_len"], type(e).__name__, e))
    sender.join(timeout)
    if sender.is_alive():
        errors.append("the sender is stuck after %d bytes" % counts["tx_len"])
    if errors:
        return errors
    if len(got) != n:
        return ["sent %d bytes, %d came back before EOF" % (n, len(got))]
    if got != data:
        first = next(i for i in range(n) if got[i] != data[i])
        return ["the echo differs from byte %d on" % first]
    return []


def echo_through(s, n, what=None):
    """Sends n random bytes while reading them back; byte-exact, then a clean EOF. `what`, if
    given, starts every failure."""
    errors = echo_exchange(s, os.urandom(n), TIMEOUT, {})
    if errors:
        msg = "; ".join(errors)
        fail(msg if what is None else "%s: %s" % (what, msg))


def echo_server(addr, ports, log=None, banner=BANNER, timeout=ECHO_SERVER_TIMEOUT):
    """On each of `ports`: greets every connection with `banner` (if any), then echoes; a
    connection idle for `timeout` (None: no limit) ends. With `log`, appends each peer
    (`ADDR:PORT`) to that file as it is accepted. Serves forever."""

    def echo(c):
        try:
            c.settimeout(timeout)
            if banner:
                c.sendall(banner)
            for d in iter(lambda: c.recv(262144), b""):
                c.sendall(d)
            c.shutdown(socket.SHUT_WR)
        except OSError as e:
            print("echo: %s" % e, file=sys.stderr, flush=True)
        finally:
            c.close()

    def serve(srv):
        while True:
            c, peer = srv.accept()
            if log is not None:
                with open(log, "a") as f:
                    f.write("%s:%d\n" % peer)
            threading.Thread(target=echo, args=(c,), daemon=True).start()

    servers = [socket.create_server((addr, int(p))) for p in ports]
    for srv in servers[1:]:
        threading.Thread(target=serve, args=(srv,), daemon=True).start()
    serve(servers[0])


class QuietHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose threads do not keep the process alive and that binds
    without HTTPServer.server_bind's DNS lookup, which times out in a namespace without a
    resolver."""

    daemon_threads = True

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


def http_server(addr, port, root, log):
    """Serves `root`; appends one JSON line to `log` per connection and per request head."""
    lock = threading.Lock()

    def record(entry):
        with lock, open(log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    class Handler(SimpleHTTPRequestHandler):
        def parse_request(self):
            ok = super().parse_request()
            headers = getattr(self, "headers", None)
            record({
                "request": self.requestline,
                "headers": [[k, v] for k, v in headers.items()] if headers else [],
            })
            return ok

        def log_message(self, *args):
            pass

    class Server(QuietHTTPServer):
        def process_request(self, request, client_address):
            record({"connection": "%s:%d" % client_address})
            super().process_request(request, client_address)

    handler = functools.partial(Handler, directory=root)
    Server((addr, int(port)), handler).serve_forever()
