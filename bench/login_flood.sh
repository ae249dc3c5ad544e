#!/usr/bin/env bash
# Login cost and isolation: GET /healthz p99 unloaded, then during a flood of
# wrong-password logins from 32 connections; and the raw argon2id rate.
# Needs wrk and python3.   bench/login_flood.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -q
cargo run --release --locked -q -p sika --example argon2_rate
TMP=$(mktemp -d); trap 'kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
# The per-IP throttle would stop the flood after 20 attempts; lift it to measure the pool itself.
SIKA_LOGIN_IP_LIMIT=1000000 SIKA_LOG=warn target/release/sika demo --data-dir "$TMP/demo" --listen "127.0.0.1:$PORT" >"$TMP/out" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sk -o /dev/null "https://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
URL="https://127.0.0.1:$PORT/healthz"
echo "--- healthz alone (10 connections, ~1,000 req/s, 15 s)"
DELAY_MS=10 wrk -t1 -c10 -d15s --latency -s bench/paced.lua "$URL" > "$TMP/alone"
grep -E "Requests/sec|99%" "$TMP/alone"
echo "--- healthz during a 32-connection wrong-password login flood"
python3 bench/login_flood.py 127.0.0.1 "$PORT" 32 20 > "$TMP/flood" &
FLOOD=$!
sleep 2
DELAY_MS=10 wrk -t1 -c10 -d15s --latency -s bench/paced.lua "$URL" > "$TMP/loaded"
wait $FLOOD
grep -E "Requests/sec|99%" "$TMP/loaded"
cat "$TMP/flood"
echo "peak RSS: $(( $(awk '/^VmHWM/{print $2}' /proc/$PID/status) / 1024 )) MiB"
echo "=== summary"
echo "healthz p99 alone: $(awk '$1=="99%"{print $2}' "$TMP/alone")  under flood: $(awk '$1=="99%"{print $2}' "$TMP/loaded")"
