#!/usr/bin/env python3
"""Floods POST /login with wrong passwords from N connections for S seconds
(each attempt with a fresh, valid CSRF pair, so every one costs an argon2
verification), and prints the attempts per second. Used by bench/login_flood.sh."""
import http.client, ssl, sys, threading, time, re, urllib.parse

host, port, conns, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
count = [0]; errors = [0]; lock = threading.Lock(); stop = time.time() + secs

def worker(i):
    c = http.client.HTTPSConnection(host, port, context=ctx, timeout=30)
    csrf = cookie = None
    while time.time() < stop:
        try:
            if csrf is None:
                c.request("GET", "/login"); r = c.getresponse(); body = r.read().decode()
                cookie = r.getheader("set-cookie").split(";")[0]
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', body).group(1)
            form = urllib.parse.urlencode({"email": f"nobody{i}@example.com", "password": "Wrong-Passw0rd!", "totp": "123456", "csrf_token": csrf})
            c.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie, "Origin": f"https://{host}:{port}"})
            r = c.getresponse(); body = r.read().decode()
            m = re.search(r'name="csrf_token" value="([^"]+)"', body)
            sc = r.getheader("set-cookie")
            csrf, cookie = (m.group(1), sc.split(";")[0]) if m and sc else (None, None)
            with lock: count[0] += 1
        except Exception:
            with lock: errors[0] += 1
            c = http.client.HTTPSConnection(host, port, context=ctx, timeout=30); csrf = None

ts = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
t0 = time.time(); [t.start() for t in ts]; [t.join() for t in ts]
print(f"login attempts: {count[0]} in {time.time()-t0:.1f} s = {count[0]/(time.time()-t0):.1f}/s, errors {errors[0]}")
