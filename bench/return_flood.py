"""Times how long N real payments take to be confirmed (webhook → verify →
paid) through a running demo. usage: return_flood.py BASE EMULATOR API_KEY CAFILE TAG N"""
import json
import ssl
import sys
import time
import urllib.request

base, emulator, key, cafile, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6])
ctx = ssl.create_default_context(cafile=cafile)


def call(url, body=None, auth=True, context=ctx):
    req = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None, method="POST" if body is not None else "GET")
    req.add_header("content-type", "application/json")
    if auth:
        req.add_header("authorization", f"Bearer {key}")
    with urllib.request.urlopen(req, context=context if url.startswith("https") else None, timeout=30) as r:
        return json.loads(r.read())


refs = [f"{tag}-{i}-{int(time.time())}" for i in range(n)]
for r in refs:
    call(f"{base}/api/v1/checkouts", {"reference": r, "amount": "100", "currency": "NGN", "customer": {"email": "b@example.com"}})
start = time.time()
for r in refs:
    call(f"{emulator}/_emulator/charges", {"tx_ref": r, "status": "successful"}, auth=False)
pending = set(refs)
while pending:
    for r in list(pending):
        if call(f"{base}/api/v1/checkouts/{r}")["status"] == "paid":
            pending.discard(r)
    if time.time() - start > 300:
        print(f"{tag}: {len(pending)} of {n} not confirmed after 300 s")
        sys.exit(1)
    time.sleep(0.05)
print(f"{tag}: {n} payments confirmed in {time.time() - start:.2f} s")
