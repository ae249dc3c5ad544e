#!/usr/bin/env bash
# The chaos drill of crates/sika/tests/suite/chaos.rs with bigger numbers: the real
# emulator and serve binaries, two instances on PostgreSQL behind a TCP
# balancer and one on SQLite, every Flutterwave fault at once, SIGKILLs and
# restarts; prints the figures and fails if a money rule broke.
# Usage: bench/chaos.sh [CHECKOUTS] [KILLS]   (needs SIKA_TEST_POSTGRES_URL, or root to start PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SIKA_TEST_POSTGRES_URL:-}" ] && [ "$(id -u)" = 0 ]; then
  # shellcheck source=scripts/postgres-for-tests
  source scripts/postgres-for-tests
fi
export SIKA_CHAOS_CHECKOUTS="${1:-1000}" SIKA_CHAOS_KILLS="${2:-8}"
cargo test --release --locked -p sika --test suite chaos:: -- --nocapture --test-threads 1 2>&1 \
  | grep -E "chaos drill|^  |test result|panicked" || true
