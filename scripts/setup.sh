#!/usr/bin/env bash
# Installs every system package the build, the tests and the benchmarks need, and reserves
# hugepages for DPDK. Idempotent: a second run changes nothing and takes seconds.
set -euo pipefail

PACKAGES=(
  # build: the dpdk-sys binding (bindgen needs libclang, the C shim needs a compiler)
  build-essential pkg-config clang libclang-dev libdpdk-dev
  # the multiport testbed's VLAN host on kernels without 802.1Q devices (tc programs)
  libbpf-dev
  # reference tools: dpdk-testpmd, dpdk-proc-info, dpdk-dumpcap, dpdk-telemetry.py; the
  # examples' sources (dpdk-doc), from which l3fwd is built below
  dpdk dpdk-dev dpdk-doc
  # the namespace testbed and its traffic
  iproute2 iputils-ping traceroute ethtool iptables iperf3 curl netcat-openbsd socat tcpdump
  # the tests' and the demo's clients, servers, frame generator and NFQUEUE fault injector
  # (scripts/nfq_faults.py, tests/net/*.py: the standard library only)
  python3
  # benchmarks: a conventional user-space proxy to compare with
  haproxy
  # logins: a real web server whose request log shows every Authorization header, a real
  # browser, and a real RADIUS directory with its client tools
  nginx-light chromium freeradius freeradius-utils
  # UDP through the box: a real DNS server and client
  dnsmasq-base bind9-dnsutils
)

need=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# cargo-nextest is not required: the test command uses plain `cargo test`.

# dpdk-l3fwd, the benchmark's exact-match baseline (scripts/bench.sh), built from the sources
# dpdk-doc ships, into L3FWD_DIR. Two changes, so that it runs on the benchmark's net_pcap
# ports with the box's and testpmd's pool: the pool's size and mbuf size come from
# CT_L3FWD_MBUFS and CT_L3FWD_DATA_ROOM when set (stock l3fwd makes 8 k mbufs of 2 KiB, and
# net_pcap keeps whole captures in the pool), and it asks for RX checksum offload only where
# the port has it (net_pcap has none, and stock l3fwd then fails to configure the port; the
# checksums go unchecked, as in the box and testpmd). Rebuilt only when missing, older than
# its sources, or made with other changes; a failed build leaves the benchmark without l3fwd,
# nothing else.
L3FWD_DIR=/usr/local/lib/cutthrough/l3fwd
l3src=/usr/share/dpdk/examples
l3mark="pool from CT_L3FWD_MBUFS and CT_L3FWD_DATA_ROOM, RX offloads the port has: 2"
if [ -f "$l3src/l3fwd/main.c" ] && { [ ! -x "$L3FWD_DIR/dpdk-l3fwd" ] ||
    [ "$(cat "$L3FWD_DIR/built-with" 2>/dev/null)" != "$l3mark" ] ||
    [ -n "$(find "$l3src/l3fwd" "$l3src/common" -newer "$L3FWD_DIR/dpdk-l3fwd" -print -quit)" ]; }; then
  echo "setup: building dpdk-l3fwd into $L3FWD_DIR"
  b=$(mktemp -d)
  cp -r "$l3src/l3fwd" "$l3src/common" "$b/"
  cat > "$b/l3fwd/ct_pool.h" <<'EOF'
#include <stdlib.h>
static inline unsigned int ct_env_or(const char *name, unsigned int dflt)
{
	const char *v = getenv(name);
	return v != NULL && *v != '\0' ? (unsigned int)strtoul(v, NULL, 10) : dflt;
}
EOF
  sed -i -e 's/rte_pktmbuf_pool_create(s, nb_mbuf,/rte_pktmbuf_pool_create(s, ct_env_or("CT_L3FWD_MBUFS", nb_mbuf),/' \
    -e 's/RTE_MBUF_DEFAULT_BUF_SIZE, socketid);/ct_env_or("CT_L3FWD_DATA_ROOM", RTE_MBUF_DEFAULT_BUF_SIZE), socketid);/' \
    -e 's/^\(\t*\)\(if (dev_info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE)\)/\1local_port_conf.rxmode.offloads \&= dev_info.rx_offload_capa;\n\1\2/' \
    -e 's/rxq_conf.offloads = port_conf.rxmode.offloads;/rxq_conf.offloads = port_conf.rxmode.offloads \& dev_info.rx_offload_capa;/' \
    "$b/l3fwd/main.c"
  if [ "$(grep -c 'ct_env_or("CT_L3FWD_' "$b/l3fwd/main.c")" = 2 ] &&
      [ "$(grep -c '& dev_info.rx_offload_capa\|&= dev_info.rx_offload_capa' "$b/l3fwd/main.c")" = 2 ] &&
      CFLAGS="-include $b/l3fwd/ct_pool.h" make -s -C "$b/l3fwd" shared >"$b/build.log" 2>&1; then
    mkdir -p "$L3FWD_DIR"
    install -m 0755 "$b/l3fwd/build/l3fwd-shared" "$L3FWD_DIR/dpdk-l3fwd"
    echo "$l3mark" > "$L3FWD_DIR/built-with"
  else
    echo "setup: dpdk-l3fwd did not build (the benchmark leaves it out):"
    tail -5 "$b/build.log" 2>/dev/null || echo "  its sources are not what this script expects"
  fi
  rm -rf "$b"
fi

# Hugepages: DPDK runs two to three times faster with them, and its secondary processes
# (dpdk-dumpcap, dpdk-proc-info) attach only to a primary that uses them. Fall back silently
# where the kernel refuses (containers without the right to write the sysctl).
want=${CT_HUGEPAGES:-512}
have=$(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0)
if [ "$have" -lt "$want" ]; then
  echo "$want" > /proc/sys/vm/nr_hugepages 2>/dev/null || true
fi
if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
  mkdir -p /dev/hugepages
  mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null || true
fi
echo "setup: ok (hugepages: $(cat /proc/sys/vm/nr_hugepages 2>/dev/null || echo 0) x 2 MiB)"
