#!/usr/bin/env bash
# 1,000 approved payouts dispatched with the emulator limited to R requests/s
# (crates/sika/tests/suite/payout_dispatch.rs, release build): time until all are
# final against 1.1 × (upstream calls)/R, 429s, duplicate transfers, and
# upstream calls per payout. Usage: bench/payouts.sh [N] [R]
set -euo pipefail
cd "$(dirname "$0")/.."
export SIKA_PAYOUT_BENCH_N="${1:-1000}" SIKA_PAYOUT_BENCH_RATE="${2:-50}"
cargo test --release --locked -q -p sika --test suite payout_dispatch:: -- --nocapture 2>&1 \
  | grep -E "approved payouts|test result|panicked" || true
