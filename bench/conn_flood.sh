#!/usr/bin/env bash
# One client address floods Sika with idle connections: GET /healthz p99 from
# another address while it does, next to the unloaded p99. The per-address cap
# (SIKA_MAX_CONNECTIONS_PER_IP, default 256) keeps the flood to its share.
# Needs wrk and python3.   bench/conn_flood.sh [CONNECTIONS]   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
N="${1:-4400}"
ulimit -n 65536 2>/dev/null || true
cargo build --release --locked -q
TMP=$(mktemp -d); trap 'kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
SIKA_LOG=warn target/release/sika demo --data-dir "$TMP/demo" --listen "127.0.0.1:$PORT" >"$TMP/out" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sk -o /dev/null "https://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
URL="https://127.0.0.1:$PORT/healthz"
echo "--- healthz alone (10 connections, ~1,000 req/s, 15 s)"
DELAY_MS=10 wrk -t1 -c10 -d15s --latency -s bench/paced.lua "$URL" > "$TMP/alone"
grep -E "Requests/sec|99%" "$TMP/alone"
echo "--- healthz while 127.0.0.2 holds up to $N idle connections"
python3 bench/conn_flood.py 127.0.0.2 127.0.0.1 "$PORT" "$N" 25 > "$TMP/flood" &
FLOOD=$!
sleep 5
DELAY_MS=10 wrk -t1 -c10 -d15s --latency --timeout 20s -s bench/paced.lua "$URL" > "$TMP/loaded"
grep -E "Requests/sec|99%|timeout" "$TMP/loaded" || true
wait $FLOOD
cat "$TMP/flood"
echo "=== summary"
echo "healthz p99 alone: $(awk '$1=="99%"{print $2}' "$TMP/alone")  during the flood: $(awk '$1=="99%"{print $2}' "$TMP/loaded")"
