#!/usr/bin/env bash
# Emulator throughput over loopback: POST /v3/payments and GET verify, with wrk.
# The emulator must never be the bottleneck of Sika's own benchmarks.
#   bench/emulator.sh            # from the repository root; needs wrk
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -q
TMP=$(mktemp -d); trap 'kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
export FLW_KEY="FLWSECK_TEST-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')-X"
HASH=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
target/release/sika emulator --listen "127.0.0.1:$PORT" --secret-key "$FLW_KEY" --secret-hash "$HASH" >"$TMP/out" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/_emulator/stats" && break; sleep 0.1; done
BASE="http://127.0.0.1:$PORT"
# One paid transaction to verify.
curl -s -X POST "$BASE/v3/payments" -H "Authorization: Bearer $FLW_KEY" -H 'content-type: application/json' \
  -d '{"tx_ref":"bench-verify","amount":100,"currency":"NGN","redirect_url":"https://shop.example/","customer":{"email":"a@example.com"}}' >/dev/null
ID=$(curl -s -X POST "$BASE/_emulator/charges" -H 'content-type: application/json' -d '{"tx_ref":"bench-verify","status":"successful"}' | python3 -c 'import json,sys;print(json.load(sys.stdin)["transaction_id"])')

echo "--- POST /v3/payments, 64 connections, 15 s"
wrk -t2 -c64 -d15s --latency -s bench/payments.lua "$BASE/v3/payments" | tee "$TMP/pay"
echo "--- GET /v3/transactions/$ID/verify, 64 connections, 15 s"
wrk -t2 -c64 -d15s --latency -s bench/auth.lua "$BASE/v3/transactions/$ID/verify" | tee "$TMP/verify"
echo "emulator peak RSS: $(( $(awk '/^VmHWM/{print $2}' /proc/$PID/status) / 1024 )) MiB"
echo "=== summary"
echo "payments req/s: $(awk '/Requests\/sec/{print $2}' "$TMP/pay")  p99: $(awk '$1=="99%"{print $2}' "$TMP/pay")"
echo "verify   req/s: $(awk '/Requests\/sec/{print $2}' "$TMP/verify")  p99: $(awk '$1=="99%"{print $2}' "$TMP/verify")"
