#!/usr/bin/env bash
# The main job, end to end (the README's first command):
#
#   1. installs what is missing (scripts/setup.sh) and builds the box in release mode;
#   2. brings up the namespace testbed (client 198.18.0.1 in ct-inside, server 198.19.0.2 in
#      ct-outside) and starts the box on it with config/testbed.yaml;
#   3. checks the plain firewall: ping and a short iperf3 through `pass` rules, a denied port;
#   4. a client logs in with `line` on 2323 (Username:/Password:, spliced after the login) and
#      uploads a few hundred MiB; its login is listed and ended (`cutthrough auth list`,
#      `auth clear --all`); a web client (curl, as a browser does) is redirected by the
#      `http-basic` rule on port 80 to the box's own login page (virtual HTTP, port 8888),
#      logs in there and is sent back, `cutthrough auth list` shows the login, and the
#      client downloads a few hundred MiB without credentials (spliced after the request; the
#      server never sees the password); both transfers are checked byte for byte (SHA-256 at
#      both ends);
#   5. stops the box and shows, per connection, the phases it went through (proxied, draining,
#      spliced), its Δ1 and Δ2, and how many of its packets the participating stack handled
#      versus the fast path; then the box's counters.
#
# It prints its progress, tears everything down at the end and on Ctrl-C, and exits non-zero
# if any step failed. It takes the same lock as the end-to-end tests
# (/run/cutthrough-testbed.lock), so it never runs over them (it waits for them instead).
#
#   scripts/demo.sh [--ports af_packet|af_xdp] [--mib N] [--no-setup] [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

ports=af_packet
mib=256
setup=1
build=1
while [ $# -gt 0 ]; do
  case "$1" in
    --ports) ports=${2:-}; shift 2 ;;
    --mib) mib=${2:-}; shift 2 ;;
    --no-setup) setup=0; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [--ports af_packet|af_xdp] [--mib N] [--no-setup] [--no-build]" >&2; exit 2 ;;
  esac
done
case "$ports" in af_packet|af_xdp) ;; *) echo "demo: --ports af_packet|af_xdp" >&2; exit 2 ;; esac
case "$mib" in ''|*[!0-9]*) echo "demo: --mib takes a number of MiB" >&2; exit 2 ;; esac

LOCK=/run/cutthrough-testbed.lock
CLIENT=198.18.0.1
SERVER=198.19.0.2
BOX_IN=198.18.0.254
BIN=target/release/cutthrough
PY=python3
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3

steps=8
n=0
t_start=$(date +%s)
step() { n=$((n + 1)); printf '\n\033[1m==> [%d/%d] %s\033[0m\n' "$n" "$steps" "$*"; }
info() { printf '    %s\n' "$*"; }
# fail WHAT: the step failed (with `st` set to a command's status, 130 or 143 means it was
# interrupted: Ctrl-C reaches the foreground command before this shell's own trap runs).
fail() {
  case "${st:-1}" in
    130|143) printf '\ndemo: interrupted\n' >&2; exit 130 ;;
  esac
  printf '\n\033[1;31mdemo: FAILED: %s\033[0m\n' "$*" >&2
  exit 1
}

work=$(mktemp -d /tmp/cutthrough-demo.XXXXXX)
box_pid=
bg_pids=()
tb_up=0

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$box_pid" ] && kill -0 "$box_pid" 2>/dev/null; then
    kill -TERM "$box_pid" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$box_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$box_pid" 2>/dev/null
  fi
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null; done
  if [ "$tb_up" = 1 ]; then
    printf '\n==> tearing down the testbed\n'
    bash scripts/testbed.sh down >/dev/null 2>&1
  fi
  if [ "$status" -eq 1 ] && [ -s "$work/box.log" ]; then
    printf '\n--- the last lines the box logged ---\n' >&2
    grep -v 'leg \(in\|out\):' "$work/box.log" | tail -20 >&2
  fi
  rm -rf "$work"
  if [ "$status" -eq 0 ]; then
    printf '\n\033[1;32mdemo: OK\033[0m (%d s)\n' "$(($(date +%s) - t_start))"
  else
    printf '\n\033[1;31mdemo: FAILED\033[0m (exit status %d)\n' "$status" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'printf "\ndemo: interrupted\n" >&2; exit 130' INT TERM

# The demo's own client and servers (Python, standard library only).
cat > "$work/demo.py" <<'PY'
import hashlib, json, random, re, socket, sys, time


def serve_sink(addr, port):
    """Greets each client, reads until EOF, answers with the byte count and SHA-256."""
    srv = socket.create_server((addr, int(port)))
    while True:
        c, peer = srv.accept()
        c.settimeout(120)
        try:
            c.sendall(b"hello from the server %s:%s\r\n" % (addr.encode(), port.encode()))
            h, n = hashlib.sha256(), 0
            while True:
                d = c.recv(262144)
                if not d:
                    break
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


class Dialog:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def expect(self, token, who):
        while len(self.buf) < len(token) and token.startswith(self.buf):
            d = self.sock.recv(4096)
            if not d:
                sys.exit("client: EOF while waiting for %r (got %r)" % (token, self.buf))
            self.buf += d
        if not self.buf.startswith(token):
            sys.exit("client: expected %r, got %r" % (token, self.buf))
        self.buf = self.buf[len(token):]
        print("    %-6s > %s" % (who, token.decode().rstrip()), flush=True)

    def line(self, who):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                sys.exit("client: EOF while waiting for a line (got %r)" % self.buf)
            self.buf += d
        text, _, self.buf = self.buf.partition(b"\r\n")
        print("    %-6s > %s" % (who, text.decode()), flush=True)
        return text.decode()


def line_client(host, port, mib):
    """Logs in with `line`, uploads MIB MiB, compares the server's SHA-256 with its own."""
    s = socket.create_connection((host, int(port)), timeout=60)
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
PY

# Counts the packets of TCP port $1 in both namespaces: client -> box, box -> client,
# server -> box, box -> server.
count_rules() {
  local p=$1
  ip netns exec ct-inside iptables -A OUTPUT -p tcp --dport "$p"
  ip netns exec ct-inside iptables -A INPUT -p tcp --sport "$p"
  ip netns exec ct-outside iptables -A OUTPUT -p tcp --sport "$p"
  ip netns exec ct-outside iptables -A INPUT -p tcp --dport "$p"
}
zero_counts() {
  ip netns exec ct-inside iptables -Z
  ip netns exec ct-outside iptables -Z
}
read_counts() { # port -> "port client_out client_in server_out server_in"
  local p=$1 a b c d
  a=$(ip netns exec ct-inside iptables -L OUTPUT -v -x -n | awk -v p="dpt:$p" '$0 ~ p {print $1; exit}')
  b=$(ip netns exec ct-inside iptables -L INPUT -v -x -n | awk -v p="spt:$p" '$0 ~ p {print $1; exit}')
  c=$(ip netns exec ct-outside iptables -L OUTPUT -v -x -n | awk -v p="spt:$p" '$0 ~ p {print $1; exit}')
  d=$(ip netns exec ct-outside iptables -L INPUT -v -x -n | awk -v p="dpt:$p" '$0 ~ p {print $1; exit}')
  echo "$p ${a:-0} ${b:-0} ${c:-0} ${d:-0}"
}
# Waits (≤ 20 s) for a listener on TCP $1 in ct-outside.
wait_listen() {
  for _ in $(seq 1 100); do
    [ -n "$(ip netns exec ct-outside ss -Hltn "sport = :$1")" ] && return 0
    sleep 0.2
  done
  fail "no server listens on $1"
}

step "setting the machine up (scripts/setup.sh: packages, hugepages)"
if [ "$setup" = 1 ]; then bash scripts/setup.sh; else info "skipped (--no-setup)"; fi

step "building the box in release mode (cargo build --release)"
if [ "$build" = 1 ]; then
  cargo build --release --bin cutthrough
fi
[ -x "$BIN" ] || fail "$BIN was not built"
info "$("$BIN" --version)"

step "bringing up the namespace testbed (ports: $ports)"
exec 9> "$LOCK"
if ! flock -n 9; then
  info "waiting for $LOCK: an end-to-end test or another demo is using the testbed"
  flock -w 900 9 || fail "the testbed stayed busy for 15 minutes"
fi
tb_up=1
bash scripts/testbed.sh up --ports "$ports" | sed 's/^/    /'
info "client $CLIENT in ct-inside -- [ct-in0  box  ct-out0] -- server $SERVER in ct-outside"

step "starting the box: $BIN run --config config/testbed.yaml"
# shellcheck disable=SC2046
RUST_LOG=info,control::proxy::leg=trace "$BIN" run --config config/testbed.yaml \
  --stats-json "$work/stats.json" -- $(bash scripts/testbed.sh eal-args) \
  > "$work/box.out" 2> "$work/box.log" 9>&- &
box_pid=$!
ready=0
for _ in $(seq 1 30); do
  kill -0 "$box_pid" 2>/dev/null || { cat "$work/box.log" >&2; fail "the box exited at start"; }
  if ip netns exec ct-inside ping -c1 -W1 "$BOX_IN" >/dev/null 2>&1; then ready=1; break; fi
done
[ "$ready" = 1 ] || fail "the box did not answer ping on $BOX_IN within 30 s"
grep -E "port (inside|outside)|running" "$work/box.log" | sed 's/^\[[^]]*\] /    /' || true

step "the plain firewall: ping and iperf3 through \`pass\` rules, a denied port"
ip netns exec ct-inside ping -c 3 -i 0.2 -W 2 "$SERVER" > "$work/ping.txt" \
  || { st=$?; cat "$work/ping.txt"; fail "ping through the box"; }
tail -2 "$work/ping.txt" | sed 's/^/    /'
ip netns exec ct-outside iperf3 -s -1 -p 5201 > /dev/null 2>&1 9>&- &
bg_pids+=($!)
sleep 0.5
ip netns exec ct-inside timeout --foreground 30 iperf3 -c "$SERVER" -p 5201 -t 3 | grep -E "sender|receiver" \
  | sed 's/^/    iperf3 /' || { st=$?; fail "iperf3 through the box"; }
if ip netns exec ct-inside timeout --foreground 5 nc -z -w 2 "$SERVER" 7000 2>/dev/null; then
  fail "TCP 7000 answered although the policy denies it"
fi
info "TCP 7000: no answer (policy default-deny)"

# The servers, the file to download, and packet counters per port in both namespaces.
mkdir -p "$work/www"
head -c "$((mib << 20))" /dev/urandom > "$work/www/big.bin"
sha_file=$(sha256sum "$work/www/big.bin" | cut -d' ' -f1)
ip netns exec ct-outside "$PY" "$work/demo.py" serve-sink "$SERVER" 2323 > "$work/sink.log" 2>&1 9>&- &
bg_pids+=($!)
ip netns exec ct-outside "$PY" "$work/demo.py" serve-http "$SERVER" 80 "$work/www/big.bin" \
  > "$work/http.log" 2>&1 9>&- &
bg_pids+=($!)
wait_listen 2323
wait_listen 80
count_rules 2323
count_rules 80
: > "$work/counts"

step "line authentication on 2323, then a $mib MiB upload after the splice"
zero_counts
ip netns exec ct-inside timeout --foreground 120 "$PY" "$work/demo.py" line-client "$SERVER" 2323 "$mib" \
  2> "$work/line.err" || { st=$?; cat "$work/line.err" >&2; fail "the line connection"; }
sleep 0.5
read_counts 2323 >> "$work/counts"

step "web login at the box's own origin (virtual HTTP), then a $mib MiB download without credentials"
# The line login above serves every rule (one login per client address): end it first.
info "cutthrough auth list; cutthrough auth clear --all:"
{ "$BIN" auth list && "$BIN" auth clear --all; } | sed 's/^/      /' || fail "cutthrough auth list/clear"
out=$(ip netns exec ct-inside timeout --foreground 20 curl -sS -i "http://$SERVER/" 2>&1 | tr -d '\r') \
  || { st=$?; fail "curl before the login: $out"; }
echo "$out" | grep -E "^HTTP/|^Location" | sed 's/^/    box    > /'
echo "$out" | head -1 | grep -q " 302" || fail "expected a redirect to the login page before the login"
# The credentials are the box's (machine $BOX_IN) only, as a browser holds them: curl cannot
# send them to the server.
printf 'machine %s login alice password wonderland\n' "$BOX_IN" > "$work/netrc"
out=$(ip netns exec ct-inside timeout --foreground 20 curl -sS -L --netrc-file "$work/netrc" \
  -w '\n%{http_code} after %{num_redirects} redirects, at %{url_effective}' "http://$SERVER/" 2>&1) \
  || { st=$?; fail "the login: $out"; }
info "curl -L (credentials for $BOX_IN only): $(echo "$out" | tail -1)"
echo "$out" | tail -1 | grep -q "^200 after 2 redirects, at http://$SERVER/$" \
  || fail "the login did not end on the server's page: $out"
info "cutthrough auth list:"
"$BIN" auth list | sed 's/^/      /' || fail "cutthrough auth list"
zero_counts
t0=$(date +%s.%N)
code=$(ip netns exec ct-inside timeout --foreground 120 curl -sS -o "$work/download.bin" \
  -w '%{http_code}' "http://$SERVER/big.bin") || { st=$?; fail "the download after the login"; }
t1=$(date +%s.%N)
[ "$code" = 200 ] || fail "the download after the login answered $code"
info "curl without credentials, logged in: HTTP $code"
sed 's/^/    /' "$work/http.log"
if grep -qi "authorization" "$work/http.log"; then fail "the server received credentials"; fi
info "the server saw no Authorization header"
[ "$(sha256sum "$work/download.bin" | cut -d' ' -f1)" = "$sha_file" ] \
  || fail "the download differs from the server's file"
awk -v s="$t0" -v e="$t1" -v m="$mib" \
  'BEGIN { d = e - s; printf "    %d MiB downloaded in %.2f s (%.0f Mbit/s), SHA-256 identical at both ends\n", m, d, m * 8 * 1.048576 / d }'
sleep 0.5
read_counts 80 >> "$work/counts"

step "stopping the box; what each connection went through"
kill -TERM "$box_pid"
for _ in $(seq 1 100); do kill -0 "$box_pid" 2>/dev/null || break; sleep 0.2; done
wait "$box_pid" || fail "the box exited with an error"
box_pid=
[ -s "$work/stats.json" ] || fail "the box wrote no statistics"
"$PY" "$work/demo.py" report "$work/box.log" "$work/stats.json" "$work/counts" \
  || fail "a connection was not spliced, or a drain failed (see above)"
