#!/usr/bin/env bash
# Webhook burst: 10,000 signed charge.completed webhooks for distinct checkouts
# from 64 concurrent senders, Sika on SQLite, the emulator limited to R req/s.
#   bench/webhook_burst.sh [N] [R]     (defaults 10000 200; from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10000}; R=${2:-200}
cargo build --release --locked -q
TMP=$(mktemp -d); trap 'kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
P=$(port); E=$(port)
FLW_RATE_PER_SECOND=$R SIKA_LOG=warn target/release/sika demo --data-dir "$TMP/demo" --listen "127.0.0.1:$P" --emulator-listen "127.0.0.1:$E" >"$TMP/out" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sk -o /dev/null "https://127.0.0.1:$P/healthz" && break; sleep 0.1; done
export SIKA_BENCH_KEY=$(target/release/sika apikey create --data-dir "$TMP/demo" --name bench --scopes checkouts 2>/dev/null | sed -n 's/^api_key=//p')
python3 bench/webhook_burst.py "$P" "$E" "$TMP/demo" "$N" 64 "$R"
echo "sika peak RSS: $(( $(awk '/^VmHWM/{print $2}' /proc/$PID/status) / 1024 )) MiB"
