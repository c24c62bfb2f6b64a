#!/usr/bin/env bash
# The namespace testbed of DESIGN.md §9.
#
#   ct-inside: client 198.18.0.1/24 on ct-in1, default via 198.18.0.254
#   ct-outside: server 198.19.0.2/24 on ct-out1, default via 198.19.0.254
#   root namespace: ct-in0 and ct-out0, the box's two ports (no addresses, no routes)
#
#   scripts/testbed.sh up [--ports af_xdp|af_packet] [--queues N]
#                        (idempotent: rebuilds from scratch; N queue pairs per veth, 1..4,
#                        which the kernel spreads flows over by a hash of each direction, so
#                        the two directions of a connection mostly reach different queues)
#   scripts/testbed.sh down                            (idempotent)
#   scripts/testbed.sh eal-args                        EAL arguments for the chosen ports
set -euo pipefail

STATE=/run/cutthrough-testbed.ports

down() {
  ip netns del ct-inside 2>/dev/null || true
  ip netns del ct-outside 2>/dev/null || true
  ip link del ct-in0 2>/dev/null || true
  ip link del ct-out0 2>/dev/null || true
  rm -f "$STATE"
}

# The offloads the testbed turns off, as `ethtool -k` names them.
OFFLOADS=(rx-checksumming tx-checksumming tcp-segmentation-offload generic-segmentation-offload
  generic-receive-offload)

offloads_off() { # [netns] dev
  local ns=() dev where said features feature state on=()
  if [ $# -eq 2 ]; then ns=(ip netns exec "$1"); dev=$2; where="$dev (netns $1)"; else dev=$1; where=$dev; fi
  # Checksums must be real on the wire (the box fixes them incrementally, never computes them),
  # and segments must be MTU-sized (no TSO/GSO super-frames reaching the PMD). Without that
  # every end-to-end result is suspect, so a testbed whose offloads stay on is not brought up.
  # What counts is the state afterwards, not ethtool's exit status: a feature the device does
  # not have (absent, or "off [fixed]") is off; one that stays on fails.
  if ! said=$("${ns[@]}" ethtool -K "$dev" rx off tx off tso off gso off gro off 2>&1); then
    echo "testbed: WARNING: ethtool -K $where: ${said//$'\n'/; } (checking the result)" >&2
  fi
  if ! features=$("${ns[@]}" ethtool -k "$dev" 2>&1); then
    echo "testbed: ethtool -k $where failed: $features" >&2
    exit 1
  fi
  for feature in "${OFFLOADS[@]}"; do
    state=$(awk -v f="$feature:" '$1 == f { $1 = ""; print substr($0, 2) }' <<<"$features")
    if [ "${state%% *}" = on ]; then on+=("$feature: $state"); fi
  done
  if [ ${#on[@]} -gt 0 ]; then
    echo "testbed: cannot turn offloads off on $where, still on: $(IFS=,; echo "${on[*]}")" >&2
    exit 1
  fi
}

host() { # ns dev peer addr gw queues
  local ns=$1 dev=$2 peer=$3 addr=$4 gw=$5 q=$6
  ip netns add "$ns"
  ip link add "$peer" numtxqueues "$q" numrxqueues "$q" type veth \
    peer name "$dev" numtxqueues "$q" numrxqueues "$q"
  ip link set "$dev" netns "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$addr" dev "$dev"
  ip -n "$ns" link set "$dev" up
  ip -n "$ns" route add default via "$gw"
  ip link set "$peer" up
  # The box's port carries no address of its own and must not answer anything itself.
  sysctl -qw "net.ipv6.conf.$peer.disable_ipv6=1" 2>/dev/null || true
  ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" 2>/dev/null || true
  offloads_off "$peer"
  offloads_off "$ns" "$dev"
}

up() {
  command -v ethtool >/dev/null || { echo "testbed: ethtool not found (run scripts/setup.sh)" >&2; exit 1; }
  local ports=af_packet queues=1
  while [ $# -gt 0 ]; do
    case "$1" in
      --ports) ports=${2:-}; shift 2 ;;
      --ports=*) ports=${1#--ports=}; shift ;;
      --queues) queues=${2:-}; shift 2 ;;
      --queues=*) queues=${1#--queues=}; shift ;;
      *) echo "testbed: unknown argument $1" >&2; exit 2 ;;
    esac
  done
  case "$ports" in af_xdp|af_packet) ;; *) echo "testbed: --ports af_xdp|af_packet" >&2; exit 2 ;; esac
  case "$queues" in 1|2|3|4) ;; *) echo "testbed: --queues 1..4" >&2; exit 2 ;; esac
  down
  host ct-inside ct-in1 ct-in0 198.18.0.1/24 198.18.0.254 "$queues"
  host ct-outside ct-out1 ct-out0 198.19.0.2/24 198.19.0.254 "$queues"
  echo "$ports $queues" > "$STATE"
  echo "testbed: up (ports $ports, $queues queue(s))"
}

eal_args() {
  local ports queues extra=""
  read -r ports queues < "$STATE" 2>/dev/null || true
  ports=${ports:-af_packet} queues=${queues:-1}
  case "$ports" in
    af_xdp)
      [ "$queues" -gt 1 ] && extra=",queue_count=$queues"
      echo "--vdev=net_af_xdp0,iface=ct-in0$extra --vdev=net_af_xdp1,iface=ct-out0$extra" ;;
    *)
      [ "$queues" -gt 1 ] && extra=",qpairs=$queues"
      echo "--vdev=net_af_packet0,iface=ct-in0$extra --vdev=net_af_packet1,iface=ct-out0$extra" ;;
  esac
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down; echo "testbed: down" ;;
  eal-args) eal_args ;;
  *) echo "usage: $0 up [--ports af_xdp|af_packet] [--queues N] | down | eal-args" >&2; exit 2 ;;
esac
