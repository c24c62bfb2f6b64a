#!/usr/bin/env bash
# The test command: sets the machine up (idempotent), then runs the house checks and every
# test of the workspace. CI calls exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh

export CARGO_TERM_COLOR=never
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace -- --test-threads="${CT_TEST_THREADS:-2}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# One closing line over every test binary (cargo's last line is the doc tests' alone).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1) } }
     END { printf "%d passed, %d failed\n", p, f }' "$log"
exit "$status"
