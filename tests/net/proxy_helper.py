"""The clients and servers of tests/e2e_proxy.rs (`python3 proxy_helper.py CMD ARGS...`).
Shares the exact-dialogue reader, the echo exchange and the servers with the login helpers
(dialogue.py, beside it)."""

import socket, sys, time

import dialogue
from dialogue import fail, http_server

TIMEOUT = 20.0
# dialogue's failure messages name the timeout: this helper's sockets use TIMEOUT.
dialogue.TIMEOUT = TIMEOUT


class Reader(dialogue.Reader):
    """dialogue.Reader (an exact dialogue from a socket), plus reading to a clean EOF."""

    def to_eof(self):
        """Everything until a clean EOF (a reset fails)."""
        rest = self.buf
        self.buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                fail("no EOF within %.0f s (got %r)" % (TIMEOUT, rest))
            except OSError as e:
                fail("%s instead of a clean EOF (got %r)" % (e, rest))
            if not chunk:
                return rest
            rest += chunk


def connect(host, port):
    try:
        return socket.create_connection((host, int(port)), timeout=TIMEOUT)
    except OSError as e:
        fail("connect to %s:%s: %s" % (host, port, e))


def line_fail(host, port):
    """Three wrong passwords: each `Login incorrect.`, then `Too many failures.` and a close."""
    s = connect(host, port)
    r = Reader(s)
    r.expect(b"Username: ")
    for attempt in (1, 2, 3):
        s.sendall(b"alice\r\n")
        r.expect(b"Password: ")
        s.sendall(b"not-wonderland\r\n")
        r.expect(b"Login incorrect.\r\n")
        print("attempt %d: Login incorrect." % attempt, flush=True)
        if attempt < 3:
            r.expect(b"Username: ")
    r.expect(b"Too many failures.\r\n")
    rest = r.to_eof()
    if rest:
        fail("after Too many failures.: %r before EOF" % rest)
    print("Too many failures., then EOF", flush=True)


def line_echo(host, port, nbytes):
    """The right password, then `nbytes` sent and echoed back concurrently, byte-exact."""
    n = int(nbytes)
    s = connect(host, port)
    r = Reader(s)
    r.expect(b"Username: ")
    s.sendall(b"alice\r\n")
    r.expect(b"Password: ")
    s.sendall(b"wonderland\r\n")
    r.expect(b"Authenticated as alice.\r\n")
    if r.buf:
        fail("unexpected bytes after Authenticated as alice.: %r" % r.buf[:200])
    print("Authenticated as alice.", flush=True)
    t0 = time.monotonic()
    dialogue.echo_through(s, n)
    print("%d bytes echoed byte-exact in %.2f s" % (n, time.monotonic() - t0), flush=True)


def echo_server(addr, port, log):
    """Echoes every connection (no banner, no idle limit); appends `peer` to `log` as each one
    is accepted."""
    dialogue.echo_server(addr, [port], log, banner=None, timeout=None)


COMMANDS = {
    "line-fail": line_fail,
    "line-echo": line_echo,
    "echo-server": echo_server,
    "http-server": http_server,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
