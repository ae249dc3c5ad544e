#!/usr/bin/env bash
# GET /healthz over TLS: throughput, p99 at a paced ~1,000 req/s, and RSS idle
# and under that load. Needs wrk (apt-get install wrk). Prints its figures.
#   bench/healthz.sh            # from the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -q
TMP=$(mktemp -d); trap 'kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
SIKA_LOG=warn target/release/sika demo --data-dir "$TMP/demo" --listen "127.0.0.1:$PORT" >"$TMP/out" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sk -o /dev/null "https://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
rss() { awk '/^VmRSS/{print $2}' /proc/$PID/status; }
hwm() { awk '/^VmHWM/{print $2}' /proc/$PID/status; }
sleep 1
echo "idle RSS: $(( $(rss) / 1024 )) MiB ($(rss) KiB)"
URL="https://127.0.0.1:$PORT/healthz"

echo "--- paced: 10 connections x 1 request / 10 ms (~1,000 req/s offered), 30 s"
DELAY_MS=10 wrk -t2 -c10 -d30s --latency -s bench/paced.lua "$URL" | tee "$TMP/paced"
echo "RSS after paced load: $(( $(rss) / 1024 )) MiB; peak so far: $(( $(hwm) / 1024 )) MiB"

echo "--- saturation: 64 connections, 15 s"
wrk -t2 -c64 -d15s --latency "$URL" | tee "$TMP/max"
echo "RSS after saturation: $(( $(rss) / 1024 )) MiB; peak: $(( $(hwm) / 1024 )) MiB"

echo "=== summary"
echo "paced req/s: $(awk '/Requests\/sec/{print $2}' "$TMP/paced")  p99: $(awk '$1=="99%"{print $2}' "$TMP/paced")"
echo "max req/s:   $(awk '/Requests\/sec/{print $2}' "$TMP/max")  p99: $(awk '$1=="99%"{print $2}' "$TMP/max")"
