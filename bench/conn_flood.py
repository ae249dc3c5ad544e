"""Opens N idle TCP connections to HOST:PORT from SOURCE (another loopback
address, standing for one client) and holds them for SECONDS, reopening any
the server closes. Prints how many were held open at the end.
usage: conn_flood.py SOURCE HOST PORT N SECONDS"""
import socket
import sys
import time

source, host, port, n, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
socks = []
deadline = time.time() + seconds
attempts = 0
while time.time() < deadline:
    alive = []
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                s.close()
                continue
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        alive.append(s)
    socks = alive
    while len(socks) < n and time.time() < deadline:
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(1)
        attempts += 1
        try:
            s.connect((host, port))
            socks.append(s)
        except OSError:
            s.close()
            break
    time.sleep(0.2)
print(f"flood from {source}: {len(socks)} connections held open at the end, {attempts} connects tried")
