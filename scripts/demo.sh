#!/usr/bin/env bash
# The main job: sets the machine up, builds the box, brings up the namespace testbed, runs
# the box on it and drives real traffic through it (ping, an iperf3 run through a `pass`
# rule, a denied connection), then stops the box and prints its counters.
#
#   scripts/demo.sh [--ports af_xdp|af_packet] [--seconds N]
set -euo pipefail
cd "$(dirname "$0")/.."

ports=af_packet
seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --ports) ports=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--ports af_xdp|af_packet] [--seconds N]" >&2; exit 2 ;;
  esac
done

bash scripts/setup.sh
cargo build --release --quiet
bin=target/release/cutthrough
work=$(mktemp -d)
box_pid=

cleanup() {
  [ -n "$box_pid" ] && kill -TERM "$box_pid" 2>/dev/null && wait "$box_pid" 2>/dev/null || true
  ip netns pids ct-outside 2>/dev/null | xargs -r kill 2>/dev/null || true
  bash scripts/testbed.sh down >/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

bash scripts/testbed.sh up --ports "$ports"
# shellcheck disable=SC2046
RUST_LOG=info "$bin" run --config config/testbed.yaml --stats-json "$work/stats.json" \
  -- $(bash scripts/testbed.sh eal-args) 2> "$work/box.log" &
box_pid=$!

echo "== waiting for the box to answer ARP and ping on 198.18.0.254"
for _ in $(seq 1 60); do
  ip netns exec ct-inside ping -c1 -W1 198.18.0.254 >/dev/null 2>&1 && break
  kill -0 "$box_pid" 2>/dev/null || { cat "$work/box.log"; exit 1; }
done
ip netns exec ct-inside ping -c1 -W1 198.18.0.254 >/dev/null || { cat "$work/box.log"; exit 1; }

echo "== ping through the box (ICMP pass)"
ip netns exec ct-inside ping -c 3 -i 0.2 198.19.0.2

echo "== iperf3 through the box for ${seconds}s (TCP 5201, pass: stateful inspection)"
ip netns exec ct-outside iperf3 -s -1 -p 5201 >/dev/null 2>&1 &
sleep 0.5
ip netns exec ct-inside timeout $((seconds + 20)) iperf3 -c 198.19.0.2 -p 5201 -t "$seconds" | tail -4

echo "== a denied port (TCP 7000): nothing gets through"
if ip netns exec ct-inside timeout 5 nc -z -w 2 198.19.0.2 7000; then
  echo "UNEXPECTED: port 7000 answered"; exit 1
else
  echo "refused by policy, as configured"
fi

kill -TERM "$box_pid"; wait "$box_pid" || true; box_pid=
echo "== the box's counters"
cat "$work/stats.json"
