#!/usr/bin/env bash
# K instances of `sika serve` on one PostgreSQL sharing one Flutterwave rate
# (crates/sika/examples/instances_bench.rs): the largest rate Flutterwave saw,
# 429s, first webhook → all paid, calls per payment, the shared budget's
# database time per call, and webhook acknowledgements per second.
#   bench/instances.sh ["1 2 3 4"] [N] [R]     (defaults "1 2 3 4" 400 20; from the repository root)
# As root on Debian it starts PostgreSQL itself (scripts/postgres-for-tests).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SIKA_TEST_POSTGRES_URL:-}" ]; then
  # shellcheck source=scripts/postgres-for-tests
  source scripts/postgres-for-tests >/dev/null
fi
cargo build --release --locked -q
cargo run --release --locked -q -p sika --example instances_bench -- "${1:-1 2 3 4}" "${2:-400}" "${3:-20}"
