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
ip netns exec ct-outside "$PY" scripts/demo.py serve-sink "$SERVER" 2323 > "$work/sink.log" 2>&1 9>&- &
bg_pids+=($!)
ip netns exec ct-outside "$PY" scripts/demo.py serve-http "$SERVER" 80 "$work/www/big.bin" \
  > "$work/http.log" 2>&1 9>&- &
bg_pids+=($!)
wait_listen 2323
wait_listen 80
count_rules 2323
count_rules 80
: > "$work/counts"

step "line authentication on 2323, then a $mib MiB upload after the splice"
zero_counts
ip netns exec ct-inside timeout --foreground 120 "$PY" scripts/demo.py line-client "$SERVER" 2323 "$mib" \
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
"$PY" scripts/demo.py report "$work/box.log" "$work/stats.json" "$work/counts" \
  || fail "a connection was not spliced, or a drain failed (see above)"
