#!/usr/bin/env python3
"""Webhook burst against a running `sika demo` (see bench/webhook_burst.sh).

Creates N checkouts through the API, pays each on the emulator (no webhook),
then sends N signed charge.completed webhooks from C concurrent senders and
measures: answers (all must be 200), acknowledgement latency, and the time
until every checkout is paid, with the emulator limited to R requests/s."""
import http.client, json, os, sqlite3, ssl, sys, threading, time

sika_port, emu_port, data_dir, n, conns, rate = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
key = os.environ["SIKA_BENCH_KEY"]
secret_hash = open(os.path.join(data_dir, "secrets", "FLW_SECRET_HASH")).read().strip()
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE

def pool_run(items, fn, threads):
    lock = threading.Lock(); it = iter(items); out = []
    def worker():
        c = None
        while True:
            with lock:
                try: item = next(it)
                except StopIteration: return
            for _ in range(3):
                try:
                    c = c or fn.connect()
                    r = fn(c, item)
                    with lock: out.append(r)
                    break
                except (ConnectionError, http.client.HTTPException, OSError):
                    c = None
    ts = [threading.Thread(target=worker) for _ in range(threads)]
    [t.start() for t in ts]; [t.join() for t in ts]
    return out

def create(c, i):
    body = json.dumps({"reference": f"burst-{i}", "amount": "100", "currency": "NGN", "customer": {"email": "b@example.com"}})
    c.request("POST", "/api/v1/checkouts", body, {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    r = c.getresponse(); r.read(); return r.status
create.connect = lambda: http.client.HTTPSConnection("127.0.0.1", int(sika_port), context=ctx, timeout=60)

def charge(c, i):
    body = json.dumps({"tx_ref": f"burst-{i}", "status": "successful", "webhook": False})
    c.request("POST", "/_emulator/charges", body, {"Content-Type": "application/json"})
    r = c.getresponse(); return (i, json.loads(r.read())["transaction_id"])
charge.connect = lambda: http.client.HTTPConnection("127.0.0.1", int(emu_port), timeout=60)

def hook(c, item):
    i, tid = item
    body = json.dumps({"event": "charge.completed", "data": {"id": tid, "tx_ref": f"burst-{i}", "status": "successful", "amount": 100, "currency": "NGN"}})
    t0 = time.perf_counter()
    c.request("POST", "/webhooks/flutterwave", body, {"verif-hash": secret_hash, "Content-Type": "application/json"})
    r = c.getresponse(); r.read()
    return (r.status, time.perf_counter() - t0)
hook.connect = lambda: http.client.HTTPSConnection("127.0.0.1", int(sika_port), context=ctx, timeout=60)

def emu(path, body=None):
    c = http.client.HTTPConnection("127.0.0.1", int(emu_port), timeout=30)
    c.request("POST" if body is not None else "GET", path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    return json.loads(c.getresponse().read())

emu("/_emulator/faults", {"rate_limit_per_second": rate})
t0 = time.time(); statuses = pool_run(range(n), create, 32)
print(f"created {statuses.count(201)}/{n} checkouts in {time.time()-t0:.1f} s")
t0 = time.time(); txs = pool_run(range(n), charge, 16)
print(f"paid {len(txs)} on the emulator in {time.time()-t0:.1f} s")
emu("/_emulator/stats/reset", {})
db = sqlite3.connect(f"file:{os.path.join(data_dir, 'sika.db')}?mode=ro", uri=True)
start = time.time(); results = pool_run(txs, hook, conns); sent = time.time() - start
lat = sorted(l for _, l in results); ok = sum(1 for s, _ in results if s == 200)
print(f"webhooks: {ok}/{len(results)} answered 200 in {sent:.1f} s; ack latency p50 {lat[len(lat)//2]*1000:.1f} ms, p99 {lat[int(len(lat)*0.99)]*1000:.1f} ms")
while True:
    paid = db.execute("SELECT COUNT(*) FROM checkouts WHERE reference LIKE 'burst-%' AND status = 'paid'").fetchone()[0]
    if paid >= n or time.time() - start > 10 * n / rate + 60: break
    time.sleep(0.5)
elapsed = time.time() - start
stats = emu("/_emulator/stats")
print(f"paid: {paid}/{n} after {elapsed:.1f} s (bound N/R = {n/rate:.1f} s; target <= {1.1*n/rate:.1f} s)")
print(f"emulator: {stats['requests_total']} requests, max {stats['max_requests_in_one_second']}/s, 429s sent: {stats['rate_limited_429']}")
