"""What the login helpers share (tests/net/login_helper.py for tests/e2e_login,
tests/net/auth_helper.py for tests/e2e_auth): exiting on the first failure, reading an exact
dialogue, echoing bytes through a connection, and the echo server with a banner that a client
whose login is cached must see first. Imported by those scripts (they run from this
directory, so it is on their path); not run by itself.

Every socket operation has a timeout; every failure exits non-zero with a message.
(tests/net/traffic.py has the same exact-dialogue loop in its `Conn`, but it raises and
truncates what it got; these helpers exit at once, naming the step.)
"""

import os
import socket
import sys
import threading

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
