#!/usr/bin/env bash
# The benchmarks (DESIGN.md §7 item 4), in one run, written to docs/BENCHMARKS.md.
#
#   scripts/bench.sh [--quick] [--no-e2e] [--ports af_packet|af_xdp] [--only SECTIONS]
#
# SECTIONS is a comma-separated subset of flowtable,memory,fastpath,profile,e2e (default all).
# CT_BENCH_PARKED="P1 P2 ..." overrides the numbers of parked connections (default 1000
# 10000 50000; --quick: 1000 and 50000, once each).
#
#   1. flow-table lookups (ns) at 1k / 64k / 1M connections, hit and miss, burst prefetch or not
#   2. memory per spliced connection, measured (RSS) at 1M and 10M objects
#   3. the fast path, testpmd style: the box's worker on one lcore with 1k / 64k / 1M spliced
#      or pass objects, lookup only (ct-bench's kind `lookup`: ForwardMode::Lookup), and in
#      --forward-mode io, against dpdk-testpmd io and 5tswap and dpdk-l3fwd exact match (both
#      directions of every flow as rules), on the same net_pcap devices (infinite_rx, the same
#      captures), the same forwarding core, 66- and 1514-byte frames; plus a perf profile of
#      the spliced case at 1M flows, and perf stat's dTLB and LLC counters of its worker
#      thread with and without hugepages
#   4. end to end on the namespace testbed: iperf3 through kernel routing, HAProxy (TCP mode),
#      dpdk-testpmd io, and the box as pass (5201), spliced (9000) and full proxy (9001)
#
# Every figure is the median of several runs (--quick: 3, else 5) with min and max. --quick
# takes under 10 minutes on a 2-core machine, once it has the testbed lock
# (/run/cutthrough-testbed.lock, which the end-to-end tests take too: their box polls the same
# cores); it holds the lock throughout, and no process it starts inherits it. Run it on a
# quiet machine: whatever else runs shares the two cores. Benchmarks are not tests: nothing
# fails on a slow machine; the last line is the summary:
#   fastpath_vs_5tswap_1M=R fastpath_vs_l3fwd_em_1M=R own_cycles_per_pkt_1k=N own_cycles_per_pkt_1M=N
#   bytes_per_flow=N spliced_vs_testpmd_io=R spliced_vs_full_proxy=R splices_per_s=N
#
# With CARGO_TARGET_DIR set, the binaries are taken from there.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
e2e=1
ports=af_packet
only=flowtable,memory,fastpath,profile,e2e
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; shift ;;
    --no-e2e) e2e=0; shift ;;
    --ports) ports=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    *) echo "usage: $0 [--quick] [--no-e2e] [--ports af_packet|af_xdp] [--only SECTIONS]" >&2; exit 2 ;;
  esac
done
want() { [[ ",$only," == *",$1,"* ]]; }
if [ "$quick" = 1 ]; then runs=3; secs=1; warm=0.5; e2e_secs=3; else runs=5; secs=3; warm=1; e2e_secs=10; fi

# l3fwd's two exact-match tables (about 0.5 GiB) sit in hugepages beside the captures.
CT_HUGEPAGES=${CT_HUGEPAGES:-1024} bash scripts/setup.sh
# perf for the profile (best effort: the report says so when it is missing).
if ! command -v perf >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends linux-perf \
    >/dev/null 2>&1 || echo "bench: no perf (apt-get install linux-perf failed): no profile"
fi
export CARGO_TERM_COLOR=never
echo "== building (release)"
cargo build --release --quiet -p dataplane --bin ct-bench
cargo build --release --quiet --bin cutthrough
cargo bench --quiet -p dataplane --bench flow_table --no-run

out=target/bench
mkdir -p "$out" docs
results=$out/results.txt
: > "$results"
bin=${CARGO_TARGET_DIR:-target}/release
ctb=$bin/ct-bench
started=$(date +%s)

commands=()
note() { commands+=("$*"); }

# The testbed lock: the end-to-end tests take it, and they run a box that polls the same cores
# the fast-path runs use, so the whole benchmark holds it. Processes started here close fd 9,
# so none of them can keep it after the script.
echo "== waiting for the testbed lock (/run/cutthrough-testbed.lock, at most 30 min)"
exec 9>/run/cutthrough-testbed.lock
locked=0
if flock -w 1800 9; then
  locked=1
else
  echo "bench: the testbed lock stayed taken: measuring without it (figures may be disturbed)"
fi

# ---- end to end (section 4) ----------------------------------------------------------------
e2e_dir=
e2e_pids=()
conns_concurrency=32
box_pid=
old_forward=

cpu_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

e2e_cleanup() {
  [ -n "$box_pid" ] && { kill -TERM "$box_pid" 2>/dev/null; wait "$box_pid" 2>/dev/null || true; }
  box_pid=
  for p in "${e2e_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${e2e_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  e2e_pids=()
  [ -n "$old_forward" ] && sysctl -qw net.ipv4.ip_forward="$old_forward" || true
  old_forward=
  bash scripts/testbed.sh down >/dev/null 2>&1 || true
  [ -n "$e2e_dir" ] && rm -rf "$e2e_dir"
  e2e_dir=
}

# iperf3 from the client to HOST:PORT for $e2e_secs; one RESULT line (throughput, system-wide
# CPU seconds per GB received: iperf3 on both ends, the kernel, the box or proxy).
iperf_run() { # label host port run
  local label=$1 host=$2 port=$3 run=$4 t0 t1 json
  t0=$(cpu_ticks)
  json=$(ip netns exec ct-inside timeout $((e2e_secs + 30)) iperf3 -c "$host" -p "$port" \
    -t "$e2e_secs" -J 2>/dev/null) || { echo "  $label: iperf3 failed"; return 1; }
  t1=$(cpu_ticks)
  local line
  line=$(python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
if "error" in d or "sum_received" not in d.get("end", {}):
    sys.exit("iperf3: %s" % d.get("error", "no sum_received"))
r = d["end"]["sum_received"]
cpu = (int(sys.argv[2]) - int(sys.argv[1])) / float(sys.argv[3])
gb = r["bytes"] / 1e9
print("RESULT impl=e2e kind=%s gbps=%.3f cpu_s_per_gb=%.2f bytes=%d secs=%.2f run=%s"
      % (sys.argv[4], r["bits_per_second"] / 1e9, cpu / gb if gb else 0, r["bytes"], r["seconds"], sys.argv[5]))
' "$t0" "$t1" "$(getconf CLK_TCK)" "$label" "$run" <<< "$json") || { echo "  $label: no result"; return 1; }
  echo "  $line"
  echo "$line" >> "$results"
}

# A short-connection load: CONCURRENCY clients each opening a connection, sending one line,
# reading the server's one-line answer and closing, over and over for SECS seconds. Prints
# "completed failed elapsed". The client closes first, so no server (and no proxy leg that
# outlives a restarted box) keeps TIME-WAIT state; the client's own TIME-WAIT ports are
# reused (tcp_tw_reuse=1 in its namespace) and its port range widened, or tens of thousands
# of connections would exhaust it.
write_conns_py() {
  cp scripts/bench_conns.py "$e2e_dir/conns.py"
}

conns_run() { # label host port run
  local out ok failed el line
  out=$(ip netns exec ct-inside timeout $((e2e_secs + 30)) python3 "$e2e_dir/conns.py" client \
    "$2" "$3" "$e2e_secs" "$conns_concurrency") || { echo "  $1: connection load failed"; return 1; }
  read -r ok failed el <<< "$out"
  line="RESULT impl=e2e kind=$1 conns_per_s=$(awk -v o="$ok" -v e="$el" 'BEGIN {printf "%.0f", o / e}') conns_ok=$ok conns_failed=$failed concurrency=$conns_concurrency run=$4"
  echo "  $line"
  echo "$line" >> "$results"
}

start_box() { # [config]
  # shellcheck disable=SC2046
  "$bin/cutthrough" run --config "${1:-config/testbed.yaml}" --stats-json "$e2e_dir/stats.json" \
    -- $(bash scripts/testbed.sh eal-args) > "$e2e_dir/box.out" 2> "$e2e_dir/box.log" 9>&- &
  box_pid=$!
  wait_ping 198.18.0.254 || { echo "box: no ping"; tail -5 "$e2e_dir/box.log"; return 1; }
}

stop_box() {
  kill -TERM "$box_pid" 2>/dev/null; wait "$box_pid" 2>/dev/null || true
  box_pid=
}

# The box's `connections.KEY` from its last --stats-json.
box_connections() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["connections"][sys.argv[2]])' \
    "$e2e_dir/stats.json" "$1" 2>/dev/null || echo 0
}

wait_ping() { # host
  for _ in $(seq 1 40); do
    ip netns exec ct-inside ping -c1 -W1 "$1" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  return 1
}

ns_mac() { ip -n "$1" -o link show "$2" | sed -n 's/.*link\/ether \([0-9a-f:]*\).*/\1/p'; }

e2e_all() {
  command -v iperf3 >/dev/null || { echo "no iperf3"; return 1; }
  trap e2e_cleanup EXIT
  e2e_dir=$(mktemp -d)
  bash scripts/testbed.sh up --ports "$ports" >/dev/null || return 1
  ip netns exec ct-inside sysctl -qw net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range="1024 65000"
  note "scripts/testbed.sh up --ports $ports; ip netns exec ct-inside sysctl -w net.ipv4.tcp_tw_reuse=1 net.ipv4.ip_local_port_range='1024 65000'"
  for port in 5201 9000 9001; do
    ip netns exec ct-outside iperf3 -s -p "$port" >/dev/null 2>&1 9>&- &
    e2e_pids+=($!)
  done
  write_conns_py
  ip netns exec ct-outside python3 "$e2e_dir/conns.py" server 5203 >/dev/null 2>&1 9>&- &
  e2e_pids+=($!)
  note "ip netns exec ct-outside iperf3 -s -p 5201|9000|9001; the connection load's server on 5203 (later 9000, 9001)"

  # Kernel routing, and HAProxy (TCP mode, one thread) on the same addresses.
  old_forward=$(sysctl -n net.ipv4.ip_forward)
  ip addr add 198.18.0.254/24 dev ct-in0
  ip addr add 198.19.0.254/24 dev ct-out0
  sysctl -qw net.ipv4.ip_forward=1
  note "ip addr add 198.18.0.254/24 dev ct-in0; ip addr add 198.19.0.254/24 dev ct-out0; sysctl net.ipv4.ip_forward=1"
  local hap=
  if command -v haproxy >/dev/null; then
    cat > "$e2e_dir/haproxy.cfg" <<HAP
global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind 198.18.0.254:5202
  default_backend servers
backend servers
  server s1 198.19.0.2:5201
frontend conns
  bind 198.18.0.254:5204
  default_backend conns
backend conns
  # Close toward the server with a RST: HAProxy closes that side first, and its TIME-WAIT
  # ports in the root namespace would run out after a few tens of thousands of connections.
  option nolinger
  server s1 198.19.0.2:5203
HAP
    haproxy -f "$e2e_dir/haproxy.cfg" -db >/dev/null 2>&1 9>&- &
    hap=$!
    e2e_pids+=("$hap")
    note "haproxy -f haproxy.cfg -db   # mode tcp, nbthread 1, bind 198.18.0.254:5202 -> 198.19.0.2:5201"
  fi
  wait_ping 198.19.0.2 || { echo "kernel routing: no ping"; return 1; }
  for r in $(seq 1 "$runs"); do
    iperf_run kernel 198.19.0.2 5201 "$r"
    [ -n "$hap" ] && iperf_run haproxy 198.18.0.254 5202 "$r"
  done
  for r in $(seq 1 "$runs"); do
    conns_run kernel 198.19.0.2 5203 "$r"
    [ -n "$hap" ] && conns_run haproxy 198.18.0.254 5204 "$r"
  done
  note "ip netns exec ct-inside iperf3 -c 198.19.0.2 -p 5201 -t $e2e_secs -J   # kernel; haproxy: -c 198.18.0.254 -p 5202"
  note "ip netns exec ct-inside python3 conns.py client 198.19.0.2 5203 $e2e_secs 32   # kernel; haproxy: 198.18.0.254 5204"
  [ -n "$hap" ] && kill "$hap" 2>/dev/null
  ip addr del 198.18.0.254/24 dev ct-in0
  ip addr del 198.19.0.254/24 dev ct-out0
  sysctl -qw net.ipv4.ip_forward="$old_forward"
  old_forward=

  # dpdk-testpmd io between the box's two ports: a wire. Each host's gateway is the other
  # host's MAC, so frames cross unchanged.
  local in_mac out_mac tp
  in_mac=$(ns_mac ct-inside ct-in1)
  out_mac=$(ns_mac ct-outside ct-out1)
  ip -n ct-inside neigh replace 198.18.0.254 lladdr "$out_mac" dev ct-in1
  ip -n ct-outside neigh replace 198.19.0.254 lladdr "$in_mac" dev ct-out1
  # shellcheck disable=SC2046
  dpdk-testpmd -l 0,1 --no-pci --in-memory --file-prefix=ct-bench-e2e $(bash scripts/testbed.sh eal-args) \
    -- --forward-mode=io --nb-cores=1 --stats-period=5 > "$e2e_dir/testpmd.log" 2>&1 9>&- &
  tp=$!
  e2e_pids+=("$tp")
  note "dpdk-testpmd -l 0,1 --no-pci --in-memory $(bash scripts/testbed.sh eal-args) -- --forward-mode=io --nb-cores=1   # gateways: static neighbours to the other host's MAC"
  if wait_ping 198.19.0.2; then
    for r in $(seq 1 "$runs"); do iperf_run testpmd-io 198.19.0.2 5201 "$r"; done
    for r in $(seq 1 "$runs"); do conns_run testpmd-io 198.19.0.2 5203 "$r"; done
  else
    echo "testpmd io: no ping"; tail -5 "$e2e_dir/testpmd.log"
  fi
  kill -INT "$tp" 2>/dev/null; wait "$tp" 2>/dev/null || true
  rm -rf /var/run/dpdk/ct-bench-e2e
  ip -n ct-inside neigh del 198.18.0.254 dev ct-in1 2>/dev/null || true
  ip -n ct-outside neigh del 198.19.0.254 dev ct-out1 2>/dev/null || true

  # The box: pass (5201), spliced (9000: proxy, auth none, splice after-auth), full proxy
  # (9001: splice never).
  note "cutthrough run --config config/testbed.yaml --stats-json stats.json -- $(bash scripts/testbed.sh eal-args)"
  if start_box; then
    for r in $(seq 1 "$runs"); do
      iperf_run pass 198.19.0.2 5201 "$r"
      iperf_run spliced 198.19.0.2 9000 "$r"
      iperf_run full-proxy 198.19.0.2 9001 "$r"
    done
    note "ip netns exec ct-inside iperf3 -c 198.19.0.2 -p 5201|9000|9001 -t $e2e_secs -J"
    stop_box
    echo "  box: $(box_connections spliced) connections spliced, $(box_connections full_proxy) fully proxied"
  fi

  # Short connections through the box, and splices per second: a fresh box per run, so its
  # `spliced` counter is that run's 9000 load alone (the control plane is one lcore).
  for p in "${e2e_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${e2e_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  e2e_pids=()
  ip netns exec ct-outside python3 "$e2e_dir/conns.py" server 5203,9000,9001 >/dev/null 2>&1 9>&- &
  e2e_pids+=($!)
  sleep 0.5
  for r in $(seq 1 "$runs"); do
    start_box || break
    conns_run spliced 198.19.0.2 9000 "$r"
    conns_run full-proxy 198.19.0.2 9001 "$r"
    conns_run pass 198.19.0.2 5203 "$r"
    stop_box
    local spliced
    spliced=$(box_connections spliced)
    line="RESULT impl=splices kind=none per_s=$(awk -v n="$spliced" -v t="$e2e_secs" 'BEGIN {printf "%.0f", n / t}') spliced=$spliced run=$r"
    echo "  $line"
    echo "$line" >> "$results"
  done
  note "ip netns exec ct-inside python3 conns.py client 198.19.0.2 9000|9001|5203 $e2e_secs 32   # a fresh box per run; splices/s = its connections.spliced / $e2e_secs"

  # Splices per second while P other connections sit in the participating stack (parked at
  # the line login prompt on 2323, one client leg each): does the control core slow down?
  local parked_counts="1000 10000 50000" parked_runs=$runs
  # --quick: one run each (parking 50 000 logins takes most of a minute).
  [ "$quick" = 1 ] && parked_runs=1 && parked_counts="1000 50000"
  parked_counts=${CT_BENCH_PARKED:-$parked_counts}
  # The testbed's configuration admits 16 384 proxied connections at once; this one 60 000.
  sed 's/^  max_connections: .*/  max_connections: 60000/' config/testbed.yaml > "$e2e_dir/parked.yaml"
  ip netns exec ct-outside python3 "$e2e_dir/conns.py" server 2323 >/dev/null 2>&1 9>&- &
  e2e_pids+=($!)
  for p in $parked_counts; do
    for r in $(seq 1 "$parked_runs"); do
      start_box "$e2e_dir/parked.yaml" || break
      # Several parkers: a process may hold only so many sockets (ulimit -n, 20000 here).
      local parkers=() parked left share k=0
      rm -f "$e2e_dir"/park.*.out
      left=$p
      while [ "$left" -gt 0 ]; do
        share=$(( left < 15000 ? left : 15000 )); left=$(( left - share )); k=$(( k + 1 ))
        ip netns exec ct-inside python3 "$e2e_dir/conns.py" park 198.19.0.2 2323 "$share" \
          > "$e2e_dir/park.$k.out" 2>&1 9>&- &
        parkers+=($!)
      done
      for _ in $(seq 1 900); do
        [ "$(cat "$e2e_dir"/park.*.out 2>/dev/null | grep -c '^parked')" -ge "$k" ] && break
        sleep 0.2
      done
      # What the box holds (a parker cannot tell a login the box gave up on from a live one),
      # once its statistics snapshot (published every second) has caught up.
      sleep 1.5
      parked=$("$bin/cutthrough" stats --json 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["connections"]["in_proxy"])' 2>/dev/null || echo 0)
      conns_run "spliced-$p-parked" 198.19.0.2 9000 "$r" >/dev/null
      for pk in "${parkers[@]}"; do kill "$pk" 2>/dev/null; wait "$pk" 2>/dev/null || true; done
      stop_box
      spliced=$(box_connections spliced)
      line="RESULT impl=splices kind=parked flows=$p per_s=$(awk -v n="$spliced" -v t="$e2e_secs" 'BEGIN {printf "%.0f", n / t}') spliced=$spliced parked=${parked:-0} run=$r"
      echo "  $line"
      echo "$line" >> "$results"
    done
  done
  note "ip netns exec ct-inside python3 conns.py park 198.19.0.2 2323 P & conns.py client 198.19.0.2 9000 $e2e_secs 32   # P = $parked_counts; a fresh box per run"
  e2e_cleanup
  trap - EXIT
}

if want flowtable; then
  echo "== 1. flow-table lookups"
  ft_args=(--runs "$runs"); [ "$quick" = 1 ] && ft_args+=(--quick)
  note "cargo bench -p dataplane --bench flow_table -- ${ft_args[*]}"
  cargo bench --quiet -p dataplane --bench flow_table -- "${ft_args[@]}" 9>&- | tee "$out/flow_table.txt"
  grep '^RESULT' "$out/flow_table.txt" >> "$results"
fi

if want memory; then
  echo "== 2. memory per spliced connection"
  : > "$out/memory.txt"
  for args in "--flows 1000000" "--flows 10000000" "--flows 1000000 --fill max"; do
    # shellcheck disable=SC2086
    for _ in $(seq 1 "$runs"); do $ctb memory $args 9>&-; done | tee -a "$out/memory.txt" | grep '^RESULT' >> "$results"
    note "$ctb memory $args   # x$runs"
  done
  grep '^memory' "$out/memory.txt" | sort -u
fi

if want fastpath; then
  echo "== 3. fast path vs dpdk-testpmd (one forwarding core, net_pcap infinite_rx)"
  : > "$out/fastpath.txt"
  for size in 66 1514; do
    for flows in 1k 64k 1M; do
      a=(--flows "$flows" --size "$size" --runs "$runs" --seconds "$secs" --warmup "$warm")
      note "$ctb fastpath ${a[*]}"
      $ctb fastpath "${a[@]}" --results "$results" 9>&- | tee -a "$out/fastpath.txt" | grep -v '^RESULT\|^COMMAND'
    done
  done
fi

profile=$out/profile.txt
: > "$profile"

# perf stat on the worker lcore's thread alone, attached as soon as the thread exists: it runs
# only the measured loop (no warm-up, so its events are those of the packets it counts as
# received), while the objects go in on the main lcore. One RESULT impl=perfstat line; an
# event perf cannot count here is NA.
perf_events=dTLB-loads,dTLB-load-misses,LLC-loads,LLC-load-misses,task-clock
perf_stat_run() { # huge|no-huge dir
  local mem=$1 dir=$2 box tid= pf= line
  $ctb box --kind spliced --flows 1M --size 66 --inside "$dir/spliced-inside.pcap" \
    --outside "$dir/spliced-outside.pcap" --seconds 2 --warmup 0 --mem "$mem" \
    > "$dir/stat-$mem.out" 2> "$dir/stat-$mem.err" 9>&- &
  box=$!
  for _ in $(seq 1 1200); do
    tid=$(grep -lx rte-worker-1 /proc/"$box"/task/*/comm 2>/dev/null | head -1 | cut -d/ -f5)
    [ -n "$tid" ] && break
    kill -0 "$box" 2>/dev/null || break
    sleep 0.05
  done
  if [ -n "$tid" ]; then
    perf stat -x, -o "$dir/stat-$mem.csv" -e "$perf_events" -t "$tid" 9>&- &
    pf=$!
  fi
  wait "$box" || { tail -3 "$dir/stat-$mem.err"; }
  if [ -n "$pf" ]; then kill -INT "$pf" 2>/dev/null; wait "$pf" 2>/dev/null || true; fi
  line=$(grep -m1 '^RESULT ' "$dir/stat-$mem.out") || return 1
  [ -s "$dir/stat-$mem.csv" ] || return 1
  line="RESULT impl=perfstat kind=$mem $(tr ' ' '\n' <<< "$line" | grep -E '^(flows|size|mpps|rx|secs)=' | tr '\n' ' ')"
  line+=$(awk -F, '!/^#/ && NF >= 3 { e = $3; sub(/:.*/, "", e); v = ($1 ~ /^[0-9.]+$/) ? $1 : "NA"
                                      printf " %s=%s", e, v }' "$dir/stat-$mem.csv")
  echo "  $line"
  echo "$line" >> "$results"
}
if want profile && command -v perf >/dev/null; then
  echo "== perf profile: box, spliced, 1M flows, 66-byte frames"
  pdir=$(mktemp -d)
  $ctb pcap --flows 1M --size 66 --dir "$pdir" >/dev/null 9>&-
  note "perf record -- $ctb box --kind spliced --flows 1M --size 66 --inside spliced-inside.pcap --outside spliced-outside.pcap --seconds 2"
  if perf record -q -o "$pdir/perf.data" -- $ctb box --kind spliced --flows 1M --size 66 \
      --inside "$pdir/spliced-inside.pcap" --outside "$pdir/spliced-outside.pcap" \
      --seconds 2 --warmup 0.5 >/dev/null 2>&1 9>&-; then
    # The worker lcore's thread alone (the measured loop, not the set-up on the main lcore),
    # as shares of that thread's samples.
    perf report -i "$pdir/perf.data" --no-children --sort comm,dso,symbol --stdio 2>/dev/null \
      | awk 'BEGIN { n = 0 } $2 == "rte-worker-1" && $1 ~ /%$/ {
               v[n] = $1 + 0; tot += v[n]; s = $0
               sub(/^ *[0-9.]+% +rte-worker-1 +/, "", s); sub(/ +- +- *$/, "", s); l[n++] = s }
             END { for (i = 0; i < n; i++) printf "%6.2f%%  %s\n", v[i] * 100 / tot, l[i] }' \
      > "$pdir/all.txt" || true
    head -15 "$pdir/all.txt" > "$profile"
    # The hot path must not allocate or lock: any heap or lock symbol in the worker's samples?
    heap=$(grep -E 'malloc|calloc|realloc|\bfree\b|cfree|__rust_alloc|__rust_dealloc|pthread_mutex|futex|__lll_lock' \
      "$pdir/all.txt" | awk '{s += $1} END {printf "%.2f", s}' || true)
    echo "heap allocator and lock symbols in the worker thread's samples: ${heap:-0.00} %" >> "$profile"
    cat "$profile"
  fi
  echo "== perf stat: the worker thread's dTLB and LLC counters, box spliced, 1M flows, 66 B"
  for mem in huge no-huge; do perf_stat_run "$mem" "$pdir" || echo "  perf stat ($mem): no result"; done
  note "$ctb box --kind spliced --flows 1M --size 66 --inside spliced-inside.pcap --outside spliced-outside.pcap --seconds 2 --warmup 0 --mem huge|no-huge & perf stat -x, -e $perf_events -t TID   # TID: its rte-worker-1 thread; SIGINT after the box exits"
  rm -rf "$pdir"
fi

if [ "$e2e" = 1 ] && want e2e; then
  echo "== 4. end to end on the namespace testbed (ports $ports, iperf3 ${e2e_secs} s)"
  if [ "$locked" = 1 ]; then
    if e2e_all; then :; else echo "end to end: incomplete (see above)"; fi
  else
    echo "end to end: skipped (no testbed lock)"
  fi
fi
[ "$locked" = 1 ] && flock -u 9
exec 9>&-

echo "== report"
$ctb report --results "$results" --svg docs/bench-fastpath.svg > "$out/tables.md"
summary=$(grep '^SUMMARY ' "$out/tables.md" | sed 's/^SUMMARY //')
elapsed=$(( $(date +%s) - started ))

hp_total=$(awk '/HugePages_Total/ {print $2}' /proc/meminfo)
hp_size=$(awk '/Hugepagesize/ {print $2}' /proc/meminfo)
{
  cat <<EOF
# Benchmarks

Written by \`scripts/bench.sh$([ "$quick" = 1 ] && echo " --quick")\` on $(date -u '+%Y-%m-%d %H:%M UTC') in ${elapsed} s
(commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ", with local changes")).
Every figure is the median of $runs runs, with the minimum and maximum in brackets. Absolute
numbers vary from machine to machine and run to run: compare within one run.
$([ "$locked" = 1 ] && echo "The run held the testbed lock throughout, so no end-to-end test ran beside it (unit tests or builds still may have)." || echo "The run could not take the testbed lock: other work may have shared the two cores.")
Load average when the report was written: $(cut -d' ' -f1-3 /proc/loadavg).

**Summary:** \`$summary\`

The summary's fields: \`fastpath_vs_5tswap_1M\` and \`fastpath_vs_l3fwd_em_1M\` are the box's
spliced rate at 1M flows and 66-byte frames divided by testpmd 5tswap's and by l3fwd EM's;
\`own_cycles_per_pkt_1k\` and \`own_cycles_per_pkt_1M\` are the box's own cycles per packet
(spliced, 66 B, 1k and 1M flows): its cycles per packet less testpmd io's, i.e. what it spends
beyond receiving and transmitting a packet on these devices; \`bytes_per_flow\` the worst
measured memory per spliced connection; \`spliced_vs_testpmd_io\` and \`spliced_vs_full_proxy\`
end-to-end throughput ratios; \`splices_per_s\` the control core's splice rate. \`NA\`: not
measured in this run.

## Machine

| | |
|---|---|
| CPUs (\`nproc\`) | $(nproc) |
| model (\`lscpu\`) | $(lscpu | sed -n 's/^Model name: *//p' | head -1) |
| caches | $(lscpu | awk -F: '/^L[123]/ {gsub(/^ +/, "", $2); printf "%s %s; ", $1, $2}') |
| kernel | $(uname -r) |
| memory | $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) |
| transparent hugepages | $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo unknown) |
| hugepages | ${hp_total} x $((hp_size / 1024)) MiB ($(grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts && echo "hugetlbfs on /dev/hugepages" || echo "not mounted")) |
| DPDK | $(dpkg-query -W -f='${Version}' dpdk 2>/dev/null || echo unknown) |
| rustc | $(rustc --version) |

## How the fast path is measured

- **Devices**: two \`net_pcap\` ports with \`infinite_rx=1\`, inside \`rx_pcap=\` the clients'
  segments, outside \`rx_pcap=\` the servers' segments, no TX capture (transmitted packets are
  counted and freed). Both the box and \`dpdk-testpmd\` get exactly these devices, the same EAL
  options (\`-l 0,1 --no-pci\`, hugepages through \`--in-memory\`, or \`--no-huge -m\` when too few
  are free: the \`mem\` field of every RESULT line says which), the same mempool size and mbuf
  size, and forward both directions on lcore 1 (lcore 0 is the main lcore).
- **Traffic**: TCP segments of the flows, all with the timestamp option: 66-byte frames (pure
  ACKs: the smallest TCP segment with timestamps, 14 + 20 + 32 bytes; the "64-byte" case) and
  1514-byte frames (1448 bytes of data). A capture holds at most 512 k (66 B) or 128 k (1514 B)
  segments per port, spread evenly over the flows, the two ports on different flows; every flow
  is in the table, and the lookups of the captured ones fall all over it.
- **The box**: one \`Worker\` (the same code \`cutthrough run\` runs), given the testbed's
  configuration, the neighbours by \`Command::Neighbour\` and N connection objects by
  \`Command::Install\` before the clock starts: *spliced* objects (Δ1, Δ2 ≠ 0, timestamp
  offsets ≠ 0, so sequence, acknowledgement and both timestamps are rewritten with incremental
  checksums, plus MACs and TTL), *pass* objects (Δ = 0: inspected and routed, TCP header
  untouched), or no objects in \`--forward-mode io\`. Every segment is in the tracker's window
  however often it is replayed; the drops column shows none was dropped.
- **Mpps** is packets transmitted per second over the measured seconds (after a warm-up);
  **cycles per packet** is TSC cycles of the polling loop divided by packets received (the
  loop polls without pause, so it is TSC Hz / packet rate); testpmd's is TSC Hz / its Tx-pps.
- **testpmd**: \`--forward-mode=io\` and \`--forward-mode=5tswap\` (swaps MACs, addresses and
  ports: the closest testpmd comes to touching every header the box rewrites), one forwarding
  core, \`--stats-period 1\`; its rate is the mean of both ports' Tx-pps over the measured
  seconds after its warm-up.
- **l3fwd EM** (the stateless exact-match baseline): DPDK 22.11's \`examples/l3fwd\` (Debian's
  \`dpdk-doc\`), built by \`scripts/setup.sh\` into \`/usr/local/lib/cutthrough/l3fwd\`, run
  with \`-E --parse-ptype\` (net_pcap sets no packet types) and \`--rule_ipv4\` holding both
  directions of every flow of the case (2 rules per flow: 2 k at 1k flows, 2 M at 1M; in
  22.11 \`--rule_ipv4\` is how EM gets rules, \`--hash-entry-num\` is ignored, and its table
  has 4 M entries whatever the rules), so every packet hits. Per packet it classifies the
  packet type, looks the 5-tuple up in a cuckoo hash (8 at a time, \`rte_hash_lookup_bulk\`),
  checks the IPv4 header, decrements the TTL with an incremental checksum and rewrites both
  MACs: a flow lookup and L3 forwarding, without tracking or TCP rewriting. Same devices,
  captures (the spliced ones), EAL memory mode, pool size and mbuf size, and the same
  forwarding core (the build changes two things only: its pool is sized from
  \`CT_L3FWD_MBUFS\` and \`CT_L3FWD_DATA_ROOM\` instead of 8 k mbufs of 2 KiB, too few to hold
  net_pcap's captures, and it asks for RX checksum offload only where the port offers it,
  which net_pcap does not, so checksums go unchecked as in the box and testpmd):
  lcore 1, which is l3fwd's only lcore: it opens one TX queue per lcore and a net_pcap port
  without a TX capture has one. l3fwd prints no statistics: its rate is both ports'
  \`opackets\` growth over the measured seconds after its warm-up, read through the EAL's
  telemetry socket (\`/ethdev/stats\`, \`scripts/bench_telemetry.py\`).
- **Lookup only** (\`box, lookup only\`): the box's worker in \`ForwardMode::Lookup\` (ct-bench
  \`box --kind lookup\`) over the same table as the spliced case, through the vector path's
  own stages (template test, hash, tag and slot prefetch, 16-tag probe, key compare), then
  port to port with no tracking and no rewrite.

$(cat "$out/tables.md" | grep -v '^SUMMARY ')

![fast-path Mpps against flows](bench-fastpath.svg)

### Where the cycles go (perf, box spliced, 1M flows, 66-byte frames: shares of the worker lcore's thread)

EOF
  if [ -s "$profile" ]; then
    echo '```'
    cat "$profile"
    echo '```'
  else
    echo "perf was not available or could not record here."
  fi
  cat <<'EOF'

## Reading the results

- **The targets, and why they are missed.** The common case takes the vector path
  (`dataplane/src/worker/vector.rs`): one template test and one hash per packet, every tag
  line of a burst asked for at once and the slot found by a 16-tag compare asked for 16
  packets ahead, the next hop from a cache by destination, a branch-free step of the tracker
  for in-window segments of established flows (`track::track_established`; anything else
  takes the whole tracker), and a rewrite at fixed offsets on fixed-size views of the
  headers, its checksums updated on the bytes as loaded (the one's-complement sum does not
  care about byte order) with one fold. Every spliced and `pass` packet of these captures
  fits the template. Against DPDK's exact-match forwarder at 1 M flows the box is still
  short, but its table is not: the *lookup only* column (the same template test, hash,
  probe and key compare, then port to port) is level with l3fwd EM. What the spliced
  column adds is the work on the object: at 1 M flows every packet writes its object (the
  tracked ends, `maxend`, the idle stamp), so each slot line comes in from memory and later
  goes back dirty, where l3fwd only reads. At 1 k flows everything is in cache and the own
  cycles are instructions. Taking each part out in turn (on this VM, not in this report):
  the template test, hash, probe, prefetches and hop lookup cost about 30 cycles above
  `--forward-mode io`; the rewrite with its parameters about 25; the tracker step about
  10; the key compare and the object's checks the rest. `--forward-mode io` itself is about
  10 cycles above testpmd io (the per-packet `handle` dispatch of that mode). Every part is
  branch-light and in L1; halving them needs fewer instructions per packet, e.g. keys
  compared and rewritten in network byte order (the object keeps them in host order) and
  the TX buffer filled by index rather than through `Option` slots. The object is 48 bytes
  (56 per flow at the table's maximum load, tag included).
- **What the fast path spends its cycles on.** Per packet of the template the box does what
  testpmd 5tswap does (read and write the headers) plus: the template test at fixed offsets
  (MAC, EtherType, IPv4 without options, no fragment, TTL, TCP flags, no options or NOP, NOP,
  timestamps), the next hop (the packet before's when it went to the same address, else a
  256-entry cache by destination; only a miss does the own-address and route checks and the
  neighbour lookup: here the server and one client address per 60 000 flows), the
  flow-table lookup (one 16-tag compare, then the key in both orientations), conntrack-style
  window tracking, the rewrite at fixed offsets with one checksum accumulator, TTL and MACs. Packets outside the template go through
  `Worker::process` (Ethernet, IPv4 and TCP validation, one walk of the TCP options, the
  same tracker, the general rewrite). At 1 M flows the table (56 MB) fits no cache: each
  lookup costs a tag line and one or two slot lines from memory, asked for a burst and 16
  packets ahead. What remains above the 1k case is the misses not hidden and net_pcap's copy out of
  a larger capture (testpmd 5tswap goes from about 50 to 120 cycles too). The profile above
  is the worker lcore's thread only; `Worker::turn`'s and `forward`'s self time include what
  the compiler inlined into it (the RX/TX burst handling, the vector path, and the expiry
  sweep: `FlowTable::expire` does not appear on its own). While RX bursts come back full,
  the loop (`Worker::turn`) reads the clock, checks its command and control rings and ages
  the table only once in 64 turns (up to 8 × 64 slots then). `--forward-mode io` runs the
  same loop without `process`.
- **1514-byte frames.** From 64k flows on every implementation, testpmd included, is held
  near the same rate by net_pcap's `infinite_rx` copy: each RX copies the frame out of the
  stored capture (more than 100 MB of mbufs) into a fresh mbuf. The 1514 B ratios understate
  the box's own per-packet cost; the 66 B rows show it.
- **Bytes per flow.** The object is 48 bytes and it is the table slot; beside each slot the
  table keeps one tag byte (7 bits of the key's hash): together the only per-connection
  memory of the fast path. A table made for N connections has N + N/7 slots (indexed by
  multiply-shift, not rounded up to a power of two) and accepts 7/8 of them, so every
  capacity costs about 56 B per connection (49 × 8/7). The 48 bytes hold the quad, both Δ,
  both timestamp offsets and both `end`s exactly; conntrack's `maxend` and `maxwin` rounded
  up (16 and 8 bits), the state with its FIN bits in 4, the flags, translations, split MSS
  and four window shifts, and a 13-bit idle stamp in units of each state's timeout
  (`common/src/conn.rs`). The tags are what make the exact size cheap in lookups: at 7/8
  load a probe run averages 4.5 slots, scanned in the tag array (one cache line), and only
  the slot whose tag matches is read, one or two lines (half the 48-byte slots straddle
  two; both are prefetched).
- **Short connections.** The client is one Python asyncio process running 32 connections
  at a time (open, send a line, read the answer, close); the kernel and
  HAProxy rows show that client's own ceiling. "ms per connection" is 32 divided by the rate.
  A port-9000 client sends its first data right after its handshake ACK, while the box
  drains the connection: the drain strips that data from the leg (so the box acknowledges
  nothing new) and keeps the segment, which goes on through the fast path as soon as the
  object is installed. Before it kept them (the first version of this report), the segment
  waited for the client's retransmission, 200 ms later (Linux's minimum RTO), and the box
  managed about 150 splices per second: that wait, not the control core.
- **Splices with connections parked.** A fresh box per run; P connections log in on 2323
  only as far as the `Username:` prompt and stay there (one client leg each, found by quad
  in a hash map), then the 32-at-a-time load runs on 9000 as above. The splice rate should
  not depend much on P: each packet costs one lookup, and a tick visits only the connections
  whose timers are due (it used to scan them all every 10 ms: with 48 000 parked that cut
  the rate from 3180 to 2030 splices/s). What P still costs is memory (each parked login's
  legs, about 150 KiB resident) and cache misses.
- **CPU seconds per GB** are the whole machine's (`/proc/stat`: iperf3 at both ends, the
  kernel, and the box, HAProxy or testpmd): the box and testpmd poll a core at 100 % whatever
  the load.
- **Own cycles per packet** (the table's last cycles column and the summary) subtract what
  testpmd io spends per packet on the same devices (TSC Hz over its rate: mostly net_pcap's
  RX copy and the TX free) from the box's spliced cycles per packet, leaving the box's own
  work; what it gains from 1k to 1M flows is what the larger table costs (misses).
- **TLB and last-level cache.** `perf stat -e dTLB-loads,dTLB-load-misses,LLC-loads,LLC-load-misses`
  on the worker lcore's thread alone (attached by thread id; the objects go in on the main
  lcore), spliced, 1M flows, 66 B, once with the EAL on hugepages (`--in-memory`) and once
  with `--no-huge`, per packet the worker received. The EAL's memory holds the mbufs and
  the captures; the flow table was a heap allocation of the worker when this text was
  written (on transparent hugepages or not as the kernel decides: see the machine table), so
  the two rows differ by the EAL's pages alone unless the table moved into them. Where the
  machine has no hardware counters (a VM without a virtual PMU), perf says
  `<not supported>` and so does the table.
- **Not measured yet**: the fast path on more than one worker (this machine has two cores:
  one worker and the control lcore).
EOF
  cat <<EOF

## Exact commands

\`\`\`sh
$(printf '%s\n' "${commands[@]}")
\`\`\`

The command lines \`ct-bench fastpath\` ran, for each case (\`PID\` stands for the process
id in the EAL file prefix, \`DIR\` for the temporary directory the captures were written to):

\`\`\`sh
$(sed -n 's/^COMMAND //p' "$out/fastpath.txt" 2>/dev/null | sed -e "s|$PWD/||g" -e 's|/tmp/ct-bench-[0-9]*/|DIR/|g' | awk '!seen[$0]++')
\`\`\`

Raw results (one \`RESULT\` line per run) are in \`target/bench/results.txt\` after a run.
EOF
} > docs/BENCHMARKS.md
echo "== wrote docs/BENCHMARKS.md and docs/bench-fastpath.svg (${elapsed} s)"
echo "$summary"
