"""The servers and the echo client of tests/e2e_options.rs (`python3 options_helper.py CMD ARGS...`).
Shares the echo exchange and the HTTP server class with the login helpers (dialogue.py, beside
it)."""

import hashlib, json, os, random, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler

from dialogue import QuietHTTPServer, echo_exchange

LOCK = threading.Lock()


def record(log, entry):
    with LOCK, open(log, "a") as f:
        f.write(json.dumps(entry) + "\n")


def echo_server(addr, ports, log):
    """Echoes every connection on each port of `ports` (comma-separated); logs one JSON line
    per connection when it ends: peer, rx_len, rx_sha (what it received), error."""

    def serve(c, peer):
        h = hashlib.sha256()
        n = 0
        err = None
        try:
            c.settimeout(60)
            for d in iter(lambda: c.recv(262144), b""):
                h.update(d)
                n += len(d)
                c.sendall(d)
            c.shutdown(socket.SHUT_WR)
        except OSError as e:
            err = "%s: %s" % (type(e).__name__, e)
        finally:
            c.close()
            record(log, {"peer": "%s:%d" % peer[:2], "rx_len": n, "rx_sha": h.hexdigest(),
                         "error": err})

    def listen(port):
        srv = socket.create_server((addr, int(port)), backlog=64)
        while True:
            c, peer = srv.accept()
            threading.Thread(target=serve, args=(c, peer), daemon=True).start()

    threads = [threading.Thread(target=listen, args=(p,), daemon=True) for p in ports.split(",")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def http_server(addr, ports, down, log):
    """On each port of `ports`: a POST's body is read and hashed, then answered with the file
    `down`; one JSON line per request: path, peer, rx_len, rx_sha, tx_len, authorization
    (whether the request still carried that header), error."""
    size = os.path.getsize(down)

    class Handler(BaseHTTPRequestHandler):
        timeout = 60

        def do_POST(self):
            entry = {"path": self.path, "peer": "%s:%d" % self.client_address[:2],
                     "rx_len": 0, "rx_sha": None, "tx_len": 0, "error": None,
                     "authorization": any(k.lower() == "authorization"
                                          for k in self.headers.keys())}
            try:
                n = int(self.headers.get("Content-Length", "0"))
                h = hashlib.sha256()
                got = 0
                while got < n:
                    d = self.rfile.read(min(262144, n - got))
                    if not d:
                        break
                    h.update(d)
                    got += len(d)
                entry["rx_len"], entry["rx_sha"] = got, h.hexdigest()
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size))
                self.send_header("Connection", "close")
                self.end_headers()
                with open(down, "rb") as f:
                    while True:
                        b = f.read(262144)
                        if not b:
                            break
                        self.wfile.write(b)
                        entry["tx_len"] += len(b)
                self.wfile.flush()
            except (OSError, ValueError) as e:
                entry["error"] = "%s: %s" % (type(e).__name__, e)
            finally:
                record(log, entry)

        def log_message(self, *args):
            pass

    servers = [QuietHTTPServer((addr, int(p)), Handler) for p in ports.split(",")]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Failed(Exception):
    pass


def echo_client(host, port, auth, nbytes, seed, timeout):
    """Logs in (auth `line`), then sends `nbytes` seeded random bytes while it reads the echo,
    and compares every byte. Prints one JSON line: sport, stage (where it failed), tx_len,
    tx_sha, rx_len, equal, error, elapsed; exits 1 unless the echo was byte-exact."""
    n, timeout = int(nbytes), float(timeout)
    res = {"sport": None, "stage": "connect", "tx_len": 0, "tx_sha": None, "rx_len": 0,
           "equal": False, "error": None}
    t0 = time.monotonic()
    s = None
    buf = bytearray()

    def fill():
        try:
            d = s.recv(65536)
        except socket.timeout:
            raise Failed("nothing for %.0f s (have %r)" % (timeout, bytes(buf[:200])))
        if not d:
            raise Failed("EOF (have %r)" % bytes(buf[:200]))
        buf.extend(d)

    def expect(token):
        while len(buf) < len(token) and token.startswith(bytes(buf)):
            fill()
        if not buf.startswith(token):
            raise Failed("expected %r, got %r" % (token, bytes(buf[:200])))
        del buf[:len(token)]

    try:
        s = socket.create_connection((host, int(port)), timeout=timeout)
        res["sport"] = s.getsockname()[1]
        if auth == "line":
            res["stage"] = "login"
            expect(b"Username: ")
            s.sendall(b"alice\r\n")
            expect(b"Password: ")
            s.sendall(b"wonderland\r\n")
            expect(b"Authenticated as alice.\r\n")
            if buf:
                raise Failed("unexpected bytes after the login: %r" % bytes(buf[:200]))
        res["stage"] = "transfer"
        data = random.Random(int(seed)).randbytes(n)
        res["tx_sha"] = hashlib.sha256(data).hexdigest()
        errors = echo_exchange(s, data, timeout, res)
        if errors:
            raise Failed("; ".join(errors))
        res["equal"] = True
        res["stage"] = "done"
    except (OSError, Failed) as e:
        res["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        res["elapsed"] = round(time.monotonic() - t0, 3)
        if s is not None:
            s.close()
        print(json.dumps(res), flush=True)
    sys.exit(0 if res["equal"] else 1)


COMMANDS = {"echo-server": echo_server, "http-server": http_server, "echo-client": echo_client}

if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
