#!/usr/bin/env bash
# Can strangers spend the Flutterwave budget through the return page? Ten real
# payments are confirmed alone, then during a 40-connection flood of return-page
# visits with random transaction ids (on pending references the attacker knows),
# at the default 5 requests/s budget. Prints both times and the calls the flood cost.
# Needs wrk and python3.   bench/return_flood.sh   (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release --locked -q
TMP=$(mktemp -d); trap 'kill $PID 2>/dev/null; rm -rf "$TMP"' EXIT
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
EPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
SIKA_LOG=warn SIKA_MAX_CONNECTIONS_PER_IP=0 target/release/sika demo --data-dir "$TMP/demo" --listen "127.0.0.1:$PORT" --emulator-listen "127.0.0.1:$EPORT" >"$TMP/out" 2>&1 &
PID=$!
for _ in $(seq 1 100); do curl -sk -o /dev/null "https://127.0.0.1:$PORT/healthz" && break; sleep 0.1; done
KEY=$(target/release/sika apikey create --data-dir "$TMP/demo" --name bench --scopes checkouts,read | sed -n 's/^api_key=//p')
BASE="https://127.0.0.1:$PORT"; EMU="http://127.0.0.1:$EPORT"; CA="$TMP/demo/tls/cert.pem"
python3 bench/return_flood.py "$BASE" "$EMU" "$KEY" "$CA" alone 10
# Pending checkouts whose references the attacker knows.
REFS=""
for i in $(seq 1 5); do
  curl -s --cacert "$CA" -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
    -d "{\"reference\":\"target-$i\",\"amount\":\"100\",\"currency\":\"NGN\",\"customer\":{\"email\":\"v@example.com\"}}" \
    "$BASE/api/v1/checkouts" >/dev/null
  REFS="$REFS${REFS:+,}target-$i"
done
curl -s -X POST "$EMU/_emulator/stats/reset" >/dev/null
REFS="$REFS" wrk -t2 -c40 -d25s -s bench/return_flood.lua "$BASE" > "$TMP/flood" &
WRK=$!
sleep 3
python3 bench/return_flood.py "$BASE" "$EMU" "$KEY" "$CA" flooded 10
wait $WRK
echo "flood: $(awk '/requests in/{print $1}' "$TMP/flood") return-page visits"
curl -s "$EMU/_emulator/stats" | python3 -c 'import json,sys; s=json.load(sys.stdin)["requests"]; print("upstream calls during the flood: verify_by_reference %s, verify by id %s" % (s.get("GET /v3/transactions/verify_by_reference", 0), s.get("GET /v3/transactions/{id}/verify", 0)))'
