#!/usr/bin/env python3
"""A small shop that takes payments through Sika, with nothing beyond Python's
standard library.

    GET  /buy?amount=2500.00&currency=NGN  creates a checkout, sends the customer to it (303)
    POST /sika/notifications               Sika's signed notification: verified, then acted on
    GET  /orders/<reference>               the order as the shop knows it (status read from Sika)

Environment: SIKA_URL (https://…), SIKA_API_KEY, SIKA_NOTIFY_SECRET (whsec_…),
SIKA_CA_FILE (only for a self-signed Sika, e.g. the demo's DIR/tls/cert.pem),
SHOP_PORT (default 8000). Orders live in memory: a real shop keeps them in its database.
"""
import hashlib
import hmac
import json
import os
import secrets
import ssl
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIKA_URL = os.environ["SIKA_URL"].rstrip("/")
API_KEY = os.environ["SIKA_API_KEY"]
NOTIFY_SECRET = os.environ["SIKA_NOTIFY_SECRET"].encode()
TOLERANCE_SECONDS = 300
TLS = ssl.create_default_context(cafile=os.environ.get("SIKA_CA_FILE") or None)

orders = {}  # reference -> {"status": ..., "notified": [event ids]}


def sika(method, path, body=None):
    """One call to Sika's API; returns (status, JSON)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(SIKA_URL + path, data=data, method=method)
    req.add_header("Authorization", "Bearer " + API_KEY)
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=TLS, timeout=30) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def verify(header, body):
    """Sika-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        t = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - t) > TOLERANCE_SECONDS:
        return False  # too old (or from the future): a replay
    expected = hmac.new(NOTIFY_SECRET, str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


class Shop(BaseHTTPRequestHandler):
    def reply(self, status, body=None, location=None):
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        text = json.dumps(body or {}).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/buy":
            q = urllib.parse.parse_qs(url.query)
            reference = "py-" + secrets.token_hex(8)
            status, checkout = sika("POST", "/api/v1/checkouts", {
                "reference": reference,
                "amount": q.get("amount", ["2500.00"])[0],
                "currency": q.get("currency", ["NGN"])[0],
                "customer": {"email": q.get("email", ["customer@example.com"])[0]},
            })
            if status not in (200, 201):  # 200: the same request again (idempotent)
                return self.reply(502, {"error": checkout})
            orders[reference] = {"status": "pending", "notified": []}
            return self.reply(303, {"reference": reference}, checkout["checkout_url"])
        if url.path.startswith("/orders/"):
            reference = url.path[len("/orders/"):]
            if reference not in orders:
                return self.reply(404)
            # Sika's word is the truth: read the status, never trust the redirect's query string.
            _, checkout = sika("GET", "/api/v1/checkouts/" + urllib.parse.quote(reference))
            return self.reply(200, {"reference": reference, "status": checkout.get("status"),
                                    "notified": orders[reference]["notified"]})
        self.reply(404)

    def do_POST(self):
        if self.path != "/sika/notifications":
            return self.reply(404)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if not verify(self.headers.get("Sika-Signature", ""), body):
            return self.reply(400, {"error": "bad signature"})
        event = json.loads(body)
        order = orders.get(event.get("reference"))
        if order is not None and event["id"] not in order["notified"]:  # each event once
            order["notified"].append(event["id"])
            order["status"] = event["status"]  # e.g. ship the goods when "paid"
        self.reply(200)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(os.environ.get("SHOP_PORT", "8000"))
    print(f"shop listening on http://127.0.0.1:{port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Shop).serve_forever()
