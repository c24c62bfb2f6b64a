#!/usr/bin/env bash
# The namespace testbed of DESIGN.md §9.
#
#   ct-inside: client 198.18.0.1/24 on ct-in1, default via 198.18.0.254
#   ct-outside: server 198.19.0.2/24 on ct-out1, default via 198.19.0.254
#   root namespace: ct-in0 and ct-out0, the box's two ports (no addresses, no routes)
#
# With --multiport, two more ports (the box on a list of ports, one with a VLAN):
#
#   ct-inside2: client 198.18.1.1/24 on ct-in3.100 (VLAN 100 on ct-in3; on a kernel without
#               802.1Q devices on ct-in3 itself, tagged by tc programs), via 198.18.1.254
#   ct-outside2: server 198.19.1.2/24 on ct-out3, default via 198.19.1.254
#   root namespace: ct-in2 (carries 802.1Q-tagged frames only) and ct-out2, the box's third
#               and fourth ports
#
#   scripts/testbed.sh up [--ports af_xdp|af_packet] [--queues N] [--multiport]
#                        (idempotent: rebuilds from scratch; N queue pairs per veth, 1..4,
#                        which the kernel spreads flows over by a hash of each direction, so
#                        the two directions of a connection mostly reach different queues)
#   scripts/testbed.sh down                            (idempotent; removes the four ports too)
#   scripts/testbed.sh eal-args                        EAL arguments for the chosen ports, one
#                        --vdev per port: ct-in0, ct-out0 (then ct-in2, ct-out2 if multiport)
set -euo pipefail

STATE=/run/cutthrough-testbed.ports
# Where the VLAN host's tc programs are compiled to (only when needed: see vlan_host).
VLAN_OBJ=/run/cutthrough-testbed-vlan

down() {
  local ns dev
  for ns in ct-inside ct-outside ct-inside2 ct-outside2; do ip netns del "$ns" 2>/dev/null || true; done
  for dev in ct-in0 ct-out0 ct-in2 ct-out2; do ip link del "$dev" 2>/dev/null || true; done
  rm -f "$STATE" "$VLAN_OBJ".*.o
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

# A namespace and a veth pair into it: `dev` in the namespace, `peer` (the box's port) in the
# root namespace; both up, IPv6 off, offloads off.
pair() { # ns dev peer queues
  local ns=$1 dev=$2 peer=$3 q=$4
  ip netns add "$ns"
  ip link add "$peer" numtxqueues "$q" numrxqueues "$q" type veth \
    peer name "$dev" numtxqueues "$q" numrxqueues "$q"
  ip link set "$dev" netns "$ns"
  ip -n "$ns" link set lo up
  # The box's port carries no address of its own and must not answer anything itself; and no
  # IPv6 (router solicitations, DAD) on either end to disturb the counters.
  sysctl -qw "net.ipv6.conf.$peer.disable_ipv6=1" 2>/dev/null || true
  ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" 2>/dev/null || true
  ip -n "$ns" link set "$dev" up
  ip link set "$peer" up
  offloads_off "$peer"
  offloads_off "$ns" "$dev"
}

host() { # ns dev peer addr gw queues
  local ns=$1 dev=$2 peer=$3 addr=$4 gw=$5 q=$6
  pair "$ns" "$dev" "$peer" "$q"
  ip -n "$ns" addr add "$addr" dev "$dev"
  ip -n "$ns" route add default via "$gw"
}

# A host on an 802.1Q VLAN: its address is on `dev.vid`, so the veth (and the box's port
# `peer`) carries tagged frames. On a kernel without 802.1Q devices (CONFIG_VLAN_8021Q unset)
# the address goes on `dev` itself, and two tc programs (scripts/testbed_vlan.bpf.c) tag what
# it sends and untag what it receives, dropping any other VLAN: the same on the wire.
vlan_host() { # ns dev peer vid addr gw queues
  local ns=$1 dev=$2 peer=$3 vid=$4 addr=$5 gw=$6 q=$7
  local vdev=$dev.$vid said obj
  pair "$ns" "$dev" "$peer" "$q"
  # The tag goes into the frame's bytes, not into the skb's metadata: a veth hands the
  # metadata across as it is, and XDP (net_af_xdp) sees only the bytes. net_af_packet does not
  # care: the kernel moves an in-band tag into the metadata on receive anyway, and the PMD puts
  # it back into the frame (unless the port is configured with VLAN stripping).
  if ! said=$(ip netns exec "$ns" ethtool -K "$dev" txvlan off 2>&1); then
    echo "testbed: WARNING: ethtool -K $dev (netns $ns) txvlan off: ${said//$'\n'/; }" >&2
  fi
  if ip -n "$ns" link add link "$dev" name "$vdev" type vlan id "$vid" 2>/dev/null; then
    # sysctl's dotted keys cannot name a device with a dot in its name: slashes can.
    ip netns exec "$ns" sysctl -qw "net/ipv6/conf/$vdev/disable_ipv6=1" 2>/dev/null || true
    ip -n "$ns" link set "$vdev" up
    offloads_off "$ns" "$vdev"
  else
    command -v clang >/dev/null || { echo "testbed: no 802.1Q devices and no clang" >&2; exit 1; }
    obj=$VLAN_OBJ.$vid.o
    clang -O2 -target bpf -I"/usr/include/$(uname -m)-linux-gnu" -DVID="$vid" \
      -c "$(dirname "$0")/testbed_vlan.bpf.c" -o "$obj"
    ip netns exec "$ns" tc qdisc add dev "$dev" clsact
    ip netns exec "$ns" tc filter add dev "$dev" egress bpf da obj "$obj" sec tc/egress
    ip netns exec "$ns" tc filter add dev "$dev" ingress bpf da obj "$obj" sec tc/ingress
    vdev=$dev
    echo "testbed: no 802.1Q devices in this kernel: VLAN $vid on $dev by tc programs" >&2
  fi
  ip -n "$ns" addr add "$addr" dev "$vdev"
  ip -n "$ns" route add default via "$gw"
}

up() {
  command -v ethtool >/dev/null || { echo "testbed: ethtool not found (run scripts/setup.sh)" >&2; exit 1; }
  local ports=af_packet queues=1 layout=two-port
  while [ $# -gt 0 ]; do
    case "$1" in
      --ports) ports=${2:-}; shift 2 ;;
      --ports=*) ports=${1#--ports=}; shift ;;
      --queues) queues=${2:-}; shift 2 ;;
      --queues=*) queues=${1#--queues=}; shift ;;
      --multiport) layout=multiport; shift ;;
      *) echo "testbed: unknown argument $1" >&2; exit 2 ;;
    esac
  done
  case "$ports" in af_xdp|af_packet) ;; *) echo "testbed: --ports af_xdp|af_packet" >&2; exit 2 ;; esac
  case "$queues" in 1|2|3|4) ;; *) echo "testbed: --queues 1..4" >&2; exit 2 ;; esac
  down
  host ct-inside ct-in1 ct-in0 198.18.0.1/24 198.18.0.254 "$queues"
  host ct-outside ct-out1 ct-out0 198.19.0.2/24 198.19.0.254 "$queues"
  if [ "$layout" = multiport ]; then
    vlan_host ct-inside2 ct-in3 ct-in2 100 198.18.1.1/24 198.18.1.254 "$queues"
    host ct-outside2 ct-out3 ct-out2 198.19.1.2/24 198.19.1.254 "$queues"
  fi
  echo "$ports $queues $layout" > "$STATE"
  echo "testbed: up (ports $ports, $queues queue(s), $layout)"
}

eal_args() {
  local ports queues layout pmd opt extra="" ifaces=(ct-in0 ct-out0) i
  read -r ports queues layout < "$STATE" 2>/dev/null || true
  ports=${ports:-af_packet} queues=${queues:-1} layout=${layout:-two-port}
  # The order is the box's port order in config/testbed-multiport.yaml.
  [ "$layout" = multiport ] && ifaces+=(ct-in2 ct-out2)
  case "$ports" in
    af_xdp) pmd=net_af_xdp opt=queue_count ;;
    *) pmd=net_af_packet opt=qpairs ;;
  esac
  [ "$queues" -gt 1 ] && extra=",$opt=$queues"
  for i in "${!ifaces[@]}"; do
    ifaces[i]="--vdev=$pmd$i,iface=${ifaces[i]}$extra"
  done
  echo "${ifaces[*]}"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down; echo "testbed: down" ;;
  eal-args) eal_args ;;
  *) echo "usage: $0 up [--ports af_xdp|af_packet] [--queues N] [--multiport] | down | eal-args" >&2; exit 2 ;;
esac
