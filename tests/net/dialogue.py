"""What the login helpers share (tests/net/login_helper.py for tests/e2e_login,
tests/net/auth_helper.py for tests/e2e_auth): exiting on the first failure, reading an exact
dialogue, echoing bytes through a connection, the echo server with a banner that a client
whose login is cached must see first, and an HTTP server that logs every request's headers
(also used by tests/net/proxy_helper.py). Imported by those scripts (they run from this
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


def echo_through(s, n, what=None):
    """Sends n random bytes while reading them back; byte-exact, then a clean EOF. `what`, if
    given, starts every failure."""
    data = os.urandom(n)
    errors = []
    sent = [0]

    def send():
        try:
            view = memoryview(data)
            for off in range(0, n, 65536):
                s.sendall(view[off:off + 65536])
                sent[0] = min(off + 65536, n)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            errors.append("send after %d bytes: %s" % (sent[0], e))

    def failed(msg):
        fail(msg if what is None else "%s: %s" % (what, msg))

    sender = threading.Thread(target=send)
    sender.start()
    got = bytearray()
    try:
        while len(got) <= n:
            chunk = s.recv(262144)
            if not chunk:
                break
            got += chunk
    except OSError as e:
        errors.append("receive after %d bytes (%d sent): %s" % (len(got), sent[0], e))
    sender.join(TIMEOUT)
    if sender.is_alive():
        errors.append("the sender is stuck after %d bytes" % sent[0])
    if errors:
        failed("; ".join(errors))
    if len(got) != n:
        failed("sent %d bytes, %d came back before EOF" % (n, len(got)))
    if got != data:
        first = next(i for i in range(n) if got[i] != data[i])
        failed("the echo differs from byte %d on" % first)


def echo_server(addr, ports, log=None):
    """On each of `ports`: greets every connection with BANNER, then echoes. With `log`,
    appends each peer (`ADDR:PORT`) to that file as it is accepted. Serves forever."""

    def echo(c):
        try:
            c.settimeout(ECHO_SERVER_TIMEOUT)
            c.sendall(BANNER)
            while True:
                d = c.recv(262144)
                if not d:
                    break
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

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def server_bind(self):
            # HTTPServer.server_bind looks the name up in the DNS, which times out in a
            # namespace without a resolver.
            socketserver.TCPServer.server_bind(self)
            self.server_name = addr
            self.server_port = int(port)

        def process_request(self, request, client_address):
            record({"connection": "%s:%d" % client_address})
            super().process_request(request, client_address)

    handler = functools.partial(Handler, directory=root)
    Server((addr, int(port)), handler).serve_forever()
