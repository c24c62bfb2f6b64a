"""The clients and servers of tests/e2e_proxy.rs (`python3 proxy_helper.py CMD ARGS...`).
Shares the exact-dialogue reader with the login helpers (dialogue.py, beside it)."""

import os, socket, sys, threading, time

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

    t0 = time.monotonic()
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
    elapsed = time.monotonic() - t0
    if sender.is_alive():
        errors.append("the sender is stuck after %d bytes" % sent[0])
    if errors:
        fail("; ".join(errors))
    if len(got) != n:
        fail("sent %d bytes, %d came back before EOF" % (n, len(got)))
    if got != data:
        first = next(i for i in range(n) if got[i] != data[i])
        fail("the echo differs from byte %d on" % first)
    print("%d bytes echoed byte-exact in %.2f s" % (n, elapsed), flush=True)


def echo_server(addr, port, log):
    """Echoes every connection; appends `peer` to `log` as each one is accepted."""
    srv = socket.create_server((addr, int(port)))
    srv.listen(16)

    def echo(c):
        try:
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

    while True:
        c, peer = srv.accept()
        with open(log, "a") as f:
            f.write("%s:%d\n" % peer)
        threading.Thread(target=echo, args=(c,), daemon=True).start()


COMMANDS = {
    "line-fail": line_fail,
    "line-echo": line_echo,
    "echo-server": echo_server,
    "http-server": http_server,
}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
