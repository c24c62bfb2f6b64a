#!/usr/bin/env bash
# Installs every system package the build, the tests and the benchmarks need, and reserves
# hugepages for DPDK. Idempotent: a second run changes nothing and takes seconds.
set -euo pipefail

PACKAGES=(
  # build: the dpdk-sys binding (bindgen needs libclang, the C shim needs a compiler)
  build-essential pkg-config clang libclang-dev libdpdk-dev
  # the multiport testbed's VLAN host on kernels without 802.1Q devices (tc programs)
  libbpf-dev
  # reference tools: dpdk-testpmd, dpdk-proc-info, dpdk-dumpcap, dpdk-telemetry.py
  dpdk dpdk-dev
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
