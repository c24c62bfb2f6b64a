#!/usr/bin/env python3
"""Drives a headless Chromium over the Chrome DevTools Protocol (CDP) for the browser test of
tests/e2e_login.rs: loads a page through the box, logging in at the box's virtual HTTP origin
when asked, and reports what the browser saw as one JSON object on stdout. Python 3 standard
library only: the WebSocket client (RFC 6455) is below.

  cdp.py --port PORT --url URL --user USER --password PASSWORD
         [--navigations N] [--timeout SECS] [--settle SECS] [--fetch URL]
         [--max-challenges N]

  --port PORT        Chromium's --remote-debugging-port, on 127.0.0.1 of the namespace this
                     runs in (Chromium must run in the same one).
  --url URL          the page to load.
  --user, --password the credentials for every HTTP authentication challenge
                     (`Fetch.authRequired`), whoever asks: the test checks WHO asked.
  --navigations N    1: navigate to URL; each further one reloads the page (ignoring the
                     cache). The browser's cache is disabled throughout, so every navigation
                     fetches the page and its images from the network.
  --timeout SECS     the whole run, including waiting for Chromium's endpoint (default 60).
  --settle SECS      after each load event, keep collecting events this long (late requests
                     such as /favicon.ico) (default 1.0).
  --fetch URL        after the last navigation, the page fetch()es URL and reports its length
                     and FNV-1a 32 hash (a larger download through the splice, checked by the
                     test against the file).
  --max-challenges N answer at most N challenges with the credentials, cancel the rest (so
                     wrong credentials cannot loop) (default 4).

What it does: waits (bounded) for http://127.0.0.1:PORT/json/version, attaches to the page
target over its WebSocket, enables `Network` (cache disabled), `Page` and `Fetch` with
`handleAuthRequests: true` for every URL; continues every paused request unchanged, answers
`Fetch.authRequired` with `ProvideCredentials`, navigates, waits for `Page.loadEventFired`,
settles, then evaluates the document: its URL, title and every <img> (src, complete,
naturalWidth, naturalHeight).

Output (one JSON object; also on failure, with "error" set, exit status 1):

  {"browser": "...", "navigations": [{"kind": "navigate"|"reload"|"fetch", "load_ms": ...,
    "document": {"url", "title", "images": [{"src", "complete", "naturalWidth",
    "naturalHeight"}]},
    "challenges": [{"url", "origin", "scheme", "realm", "source", "answer"}],
    "requests": [{"id", "url", "method", "status", "remote", "error", "redirected_to"}],
    "sent_headers": [{"id", "host", "authorization", "proxy_authorization"}]}],
   "fetch": {"url", "status", "length", "fnv1a32"} | null, "error": null | "..."}

`requests` holds one entry per hop (a redirect ends one hop and starts the next with the same
id); `sent_headers` are the headers Chromium put on the wire
(`Network.requestWillBeSentExtraInfo`), reduced to the Host and whether an Authorization or
Proxy-Authorization header was there. Every socket operation has a timeout and every loop is
bounded by the deadline.
"""

import argparse
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time
import urllib.parse

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Failure(Exception):
    pass


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return self.end - time.monotonic()

    def check(self, what):
        if self.left() <= 0:
            raise Failure("timed out " + what)


def http_get(port, path, deadline, method="GET"):
    """A plain HTTP/1.1 request to the DevTools endpoint; the body as text."""
    with socket.create_connection(("127.0.0.1", port), timeout=max(0.1, min(5, deadline.left()))) as s:
        s.sendall(
            ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % (method, path, port)).encode()
        )
        data = b""
        length = None
        # Chromium keeps the connection open despite `Connection: close`: read the head,
        # then Content-Length bytes.
        while len(data) < 1 << 22:
            deadline.check("reading " + path)
            head, sep, body = data.partition(b"\r\n\r\n")
            if sep and length is None:
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
            if length is not None and len(body) >= length:
                break
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if b" 200 " not in status + b" ":
        raise Failure("%s %s: %r" % (method, path, status))
    return body[:length].decode("utf-8", "replace")


def wait_endpoint(port, deadline):
    """Polls /json/version until Chromium answers (every 100 ms, until the deadline)."""
    last = None
    while deadline.left() > 0:
        try:
            return json.loads(http_get(port, "/json/version", deadline))
        except (OSError, ValueError, Failure) as e:
            last = e
        time.sleep(0.1)
    raise Failure("Chromium's DevTools endpoint on port %d did not answer: %s" % (port, last))


class WebSocket:
    """A minimal RFC 6455 client: the opening handshake, masked client frames, text frames
    (fragmented or not), ping answered with pong, close answered and reported."""

    def __init__(self, url, deadline):
        u = urllib.parse.urlsplit(url)
        if u.scheme != "ws":
            raise Failure("not a ws:// URL: " + url)
        self.deadline = deadline
        self.sock = socket.create_connection((u.hostname, u.port or 80), timeout=5)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        path = u.path + ("?" + u.query if u.query else "")
        self.sock.sendall(
            (
                "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, u.netloc, key)
            ).encode()
        )
        while b"\r\n\r\n" not in self.buf:
            self._fill("the WebSocket handshake")
            if len(self.buf) > 65536:
                raise Failure("WebSocket handshake: no end of head")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        if " 101 " not in lines[0] + " ":
            raise Failure("WebSocket handshake refused: %r" % head[:300])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != want:
            raise Failure("WebSocket handshake: bad Sec-WebSocket-Accept %r" % headers)
        self.closed = False

    def _fill(self, what, wait=None):
        """Reads more bytes into the buffer; False if `wait` passed with nothing."""
        self.deadline.check(what)
        limit = self.deadline.left() if wait is None else min(wait, self.deadline.left())
        self.sock.settimeout(max(0.01, limit))
        try:
            chunk = self.sock.recv(1 << 20)
        except socket.timeout:
            if wait is not None:
                return False
            raise Failure("timed out " + what)
        if not chunk:
            raise Failure("the WebSocket closed (EOF) while " + what)
        self.buf += chunk
        return True

    def _need(self, n, what):
        while len(self.buf) < n:
            self._fill(what)

    def send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        self.sock.settimeout(5)
        self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self.send_frame(0x1, text.encode())

    def recv_message(self, wait=None):
        """The next text message, or None if nothing arrived within `wait` seconds. Pings are
        answered; a close frame is answered and raises Failure."""
        message = b""
        fragmented = False
        # Bounded by the deadline (every read checks it) and by the frames' sizes.
        while True:
            if not self.buf and not fragmented:
                if not self._fill("waiting for a CDP message", wait):
                    return None
            self._need(2, "reading a frame")
            b0, b1 = self.buf[0], self.buf[1]
            fin, opcode, masked, n = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
            off = 2
            if n == 126:
                self._need(4, "reading a frame length")
                n = struct.unpack("!H", self.buf[2:4])[0]
                off = 4
            elif n == 127:
                self._need(10, "reading a frame length")
                n = struct.unpack("!Q", self.buf[2:10])[0]
                off = 10
            if n > 1 << 28:
                raise Failure("a %d-byte WebSocket frame" % n)
            mask = b""
            if masked:
                self._need(off + 4, "reading a frame mask")
                mask = self.buf[off:off + 4]
                off += 4
            self._need(off + n, "reading a frame payload")
            payload = self.buf[off:off + n]
            self.buf = self.buf[off + n:]
            if masked:
                payload = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
            if opcode == 0x9:
                self.send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                if not self.closed:
                    self.closed = True
                    try:
                        self.send_frame(0x8, payload[:2])
                    except OSError:
                        pass
                raise Failure("the browser closed the WebSocket: %r" % payload[2:].decode("utf-8", "replace"))
            if opcode in (0x1, 0x2) or (opcode == 0x0 and fragmented):
                message += payload
                if fin:
                    return message.decode("utf-8")
                fragmented = True
                continue
            raise Failure("unexpected WebSocket opcode %d" % opcode)

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.send_frame(0x8, struct.pack("!H", 1000))
            except OSError:
                pass
        self.sock.close()


class Session:
    """One CDP connection to a page target: commands, events, and the Fetch handling."""

    def __init__(self, ws, args):
        self.ws = ws
        self.args = args
        self.next_id = 0
        # Ids of commands sent while handling events: their answers must not be errors.
        self.background = {}
        self.results = {}
        self.events = []
        self.nav = None
        self.challenges_answered = 0

    def send(self, method, params=None):
        self.next_id += 1
        self.ws.send_text(json.dumps({"id": self.next_id, "method": method, "params": params or {}}))
        return self.next_id

    def call(self, method, params=None):
        """Sends a command and waits for its answer, handling events meanwhile."""
        i = self.send(method, params)
        while i not in self.results:
            self.pump(None)
        r = self.results.pop(i)
        if "error" in r:
            raise Failure("%s: %s" % (method, r["error"]))
        return r.get("result", {})

    def pump(self, wait):
        """Handles one message (waiting at most `wait` seconds, or up to the deadline);
        False if none came."""
        text = self.ws.recv_message(wait)
        if text is None:
            return False
        msg = json.loads(text)
        if "id" in msg:
            if msg["id"] in self.background:
                what = self.background.pop(msg["id"])
                if "error" in msg:
                    # A request the page gave up on (navigation moved on) cannot be
                    # continued: recorded, not fatal.
                    if self.nav is not None:
                        self.nav["command_errors"].append({"command": what, "error": msg["error"]})
            else:
                self.results[msg["id"]] = msg
            return True
        self.event(msg.get("method"), msg.get("params", {}))
        return True

    def event(self, method, p):
        nav = self.nav
        if method == "Fetch.requestPaused":
            i = self.send("Fetch.continueRequest", {"requestId": p["requestId"]})
            self.background[i] = "Fetch.continueRequest " + p["request"]["url"]
        elif method == "Fetch.authRequired":
            c = p.get("authChallenge", {})
            answer = "ProvideCredentials"
            if self.challenges_answered >= self.args.max_challenges:
                answer = "CancelAuth"
            self.challenges_answered += 1
            if nav is not None:
                nav["challenges"].append(
                    {
                        "url": p["request"]["url"],
                        "origin": c.get("origin"),
                        "scheme": c.get("scheme"),
                        "realm": c.get("realm"),
                        "source": c.get("source"),
                        "answer": answer,
                    }
                )
            response = {"response": answer}
            if answer == "ProvideCredentials":
                response.update({"username": self.args.user, "password": self.args.password})
            i = self.send("Fetch.continueWithAuth", {"requestId": p["requestId"], "authChallengeResponse": response})
            self.background[i] = "Fetch.continueWithAuth " + p["request"]["url"]
        elif nav is None:
            return
        elif method == "Network.requestWillBeSent":
            rid = p["requestId"]
            redirect = p.get("redirectResponse")
            if redirect is not None:
                hop = self.last_hop(rid)
                if hop is not None:
                    self.response(hop, redirect)
                    hop["redirected_to"] = p["request"]["url"]
            nav["requests"].append(
                {
                    "id": rid,
                    "url": p["request"]["url"],
                    "method": p["request"]["method"],
                    "status": None,
                    "remote": None,
                    "error": None,
                    "redirected_to": None,
                }
            )
        elif method == "Network.responseReceived":
            hop = self.last_hop(p["requestId"])
            if hop is not None:
                self.response(hop, p["response"])
        elif method == "Network.loadingFailed":
            hop = self.last_hop(p["requestId"])
            if hop is not None:
                hop["error"] = p.get("errorText")
        elif method == "Network.requestWillBeSentExtraInfo":
            headers = {k.lower(): v for k, v in p.get("headers", {}).items()}
            nav["sent_headers"].append(
                {
                    "id": p["requestId"],
                    "host": headers.get("host") or headers.get(":authority"),
                    "authorization": "authorization" in headers,
                    "proxy_authorization": "proxy-authorization" in headers,
                }
            )
        elif method == "Page.loadEventFired":
            nav["loaded"] = True

    @staticmethod
    def response(hop, r):
        """What a hop's response says: status, peer, and the connection it came on (its id,
        whether it was reused, and when the browser started connecting it, in seconds of the
        browser's clock: `timing.requestTime` + `timing.connectStart` ms, -1 if reused)."""
        hop["status"] = r.get("status")
        hop["remote"] = r.get("remoteIPAddress")
        hop["connection_id"] = r.get("connectionId")
        hop["connection_reused"] = r.get("connectionReused")
        t = r.get("timing") or {}
        if "requestTime" in t:
            hop["request_time"] = t["requestTime"]
            start = t.get("connectStart", -1)
            hop["connect_start"] = t["requestTime"] + start / 1000.0 if start >= 0 else None
            send = t.get("sendStart", -1)
            hop["send_start"] = t["requestTime"] + send / 1000.0 if send >= 0 else None

    def last_hop(self, rid):
        for hop in reversed(self.nav["requests"]):
            if hop["id"] == rid:
                return hop
        return None

    def wait_load(self, deadline):
        while not self.nav["loaded"]:
            deadline.check("waiting for the load event")
            self.pump(min(0.5, max(0.01, deadline.left())))

    def settle(self, seconds, deadline):
        end = time.monotonic() + min(seconds, max(0, deadline.left() - 1))
        while time.monotonic() < end:
            self.pump(max(0.01, end - time.monotonic()))


DOCUMENT = """JSON.stringify({
  url: location.href,
  title: document.title,
  images: Array.from(document.images).map(i => ({
    src: i.src, complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight
  }))
})"""

FETCH = """(async () => {
  const r = await fetch(%s, {cache: "no-store"});
  const b = new Uint8Array(await r.arrayBuffer());
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) { h ^= b[i]; h = Math.imul(h, 0x01000193) >>> 0; }
  return JSON.stringify({url: r.url, status: r.status, length: b.length, fnv1a32: h >>> 0});
})()"""


def evaluate(session, expression, await_promise=False):
    r = session.call(
        "Runtime.evaluate",
        {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
    )
    if "exceptionDetails" in r:
        raise Failure("Runtime.evaluate: %s" % json.dumps(r["exceptionDetails"])[:2000])
    return json.loads(r["result"]["value"])


def run(args, out):
    deadline = Deadline(args.timeout)
    out["browser"] = wait_endpoint(args.port, deadline).get("Browser")
    targets = json.loads(http_get(args.port, "/json/list", deadline))
    pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
    if not pages:
        pages = [json.loads(http_get(args.port, "/json/new?about:blank", deadline, "PUT"))]
    ws = WebSocket(pages[0]["webSocketDebuggerUrl"], deadline)
    try:
        s = Session(ws, args)
        s.call("Network.enable")
        s.call("Network.setCacheDisabled", {"cacheDisabled": True})
        s.call("Page.enable")
        s.call("Fetch.enable", {"patterns": [{"urlPattern": "*"}], "handleAuthRequests": True})
        for n in range(args.navigations):
            nav = {
                "kind": "navigate" if n == 0 else "reload",
                "loaded": False,
                "challenges": [],
                "requests": [],
                "sent_headers": [],
                "command_errors": [],
            }
            out["navigations"].append(nav)
            s.nav = nav
            t0 = time.monotonic()
            if n == 0:
                r = s.call("Page.navigate", {"url": args.url})
                if r.get("errorText"):
                    raise Failure("Page.navigate: %s" % r["errorText"])
            else:
                s.call("Page.reload", {"ignoreCache": True})
            s.wait_load(deadline)
            nav["load_ms"] = round((time.monotonic() - t0) * 1000)
            s.settle(args.settle, deadline)
            nav["document"] = evaluate(s, DOCUMENT)
        if args.fetch:
            nav = {"kind": "fetch", "loaded": True, "challenges": [], "requests": [],
                   "sent_headers": [], "command_errors": []}
            out["navigations"].append(nav)
            s.nav = nav
            out["fetch"] = evaluate(s, FETCH % json.dumps(args.fetch), await_promise=True)
            s.settle(min(args.settle, 0.5), deadline)
    finally:
        ws.close()


def main():
    p = argparse.ArgumentParser(description="Load a page in Chromium over CDP, logging in when asked.")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--url", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--navigations", type=int, default=1)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--settle", type=float, default=1.0)
    p.add_argument("--fetch")
    p.add_argument("--max-challenges", type=int, default=4)
    args = p.parse_args()
    out = {"browser": None, "navigations": [], "fetch": None, "error": None}
    status = 0
    try:
        run(args, out)
    except (Failure, OSError, ValueError, KeyError) as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
        status = 1
    print(json.dumps(out), flush=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
