#!/usr/bin/env bash
# The test command: sets the machine up (idempotent), then runs the house checks and every
# test of the workspace. CI calls exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

export CARGO_TERM_COLOR=never
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The Python the tests and scripts run (frame generators, fault injector, FreeRADIUS harness)
# is only executed by the end-to-end tests: a syntax error must fail here, not minutes later.
# The bytecode goes to a scratch directory, not next to the sources.
echo "== python3 -m py_compile"
PYTHONPYCACHEPREFIX="$tmp/pycache" python3 -m py_compile tests/net/*.py scripts/*.py
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
# Everything but the DPDK parts builds on a machine without libdpdk (a laptop): keep it so.
echo "== cargo clippy --no-default-features (no libdpdk)"
PKG_CONFIG_LIBDIR=/nonexistent cargo clippy --workspace --all-targets --no-default-features \
  --quiet -- -D warnings
echo "== cargo test"
log="$tmp/cargo-test.log"
# Not under errexit: a failing test must still get the summary below and its exit status.
status=0
cargo test --workspace -- --test-threads="${CT_TEST_THREADS:-2}" 2>&1 | tee "$log" || status=$?
# One closing line over every test binary (cargo's last line is the doc tests' alone).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
